import test from 'ava';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { b64, call, firstWatchMessage, type Reply } from './helpers/auth.js';
import { etcdctlBin, haveEtcd, runCtl } from './helpers/etcd-ref.js';
import { startServer, useServer } from './helpers/server.js';
import { until } from './helpers/wait.js';

/**
 * auth: etcd's users, roles and permissions on a real server. The permission matrix runs
 * every operation as four users — READ on /a/, WRITE on /b/, READWRITE on the key /c, and
 * root — and expects each allowed exactly when etcd allows it, refused with etcd's 403
 * "permission denied" otherwise.
 */

const denied = { error: 'etcdserver: permission denied', message: 'etcdserver: permission denied',
  code: 7 };

/** setup creates root and the three users, and enables auth; returns their tokens. */
async function setup(url: string): Promise<Record<string, string>> {
  const ok = async (path: string, body: object, token?: string) => {
    const r = await call(`${url}${path}`, body, token === undefined ? {} : { token });
    if (r.status !== 200) throw new Error(`${path}: ${r.status} ${JSON.stringify(r.json)}`);
    return r.json;
  };
  await ok('/v3/auth/user/add', { name: 'root', password: 'rootpw' });
  await ok('/v3/auth/user/grant', { user: 'root', role: 'root' });
  const roles: [string, object][] = [
    ['reader', { permType: 'READ', key: b64('/a/'), range_end: b64('/a0') }],
    ['writer', { permType: 'WRITE', key: b64('/b/'), range_end: b64('/b0') }],
    ['rw', { permType: 'READWRITE', key: b64('/c') }],
  ];
  for (const [name, perm] of roles) {
    await ok('/v3/auth/user/add', { name, password: `${name}pw` });
    await ok('/v3/auth/role/add', { name });
    await ok('/v3/auth/role/grant', { name, perm });
    await ok('/v3/auth/user/grant', { user: name, role: name });
  }
  await ok('/v3/auth/enable', {});
  const tokens: Record<string, string> = {};
  for (const name of ['root', 'reader', 'writer', 'rw']) {
    tokens[name] = (await ok('/v3/auth/authenticate', { name, password: `${name}pw` })).token;
  }
  return tokens;
}

/** fast: bcrypt's cheapest cost, so that the tests spend little CPU on hashing. */
const fast = ['--bcrypt-cost', '4'];

type User = 'root' | 'reader' | 'writer' | 'rw';

interface Case {
  name: string;
  allowed: User[];
  run(url: string, token: string): Promise<Reply>;
}

const kv = (path: string, body: object) => (url: string, token: string) =>
  call(`${url}/v3/kv/${path}`, body, { token });

const cases: Case[] = [
  { name: 'get /a/1', allowed: ['root', 'reader'], run: kv('range', { key: b64('/a/1') }) },
  { name: 'range over /a/', allowed: ['root', 'reader'],
    run: kv('range', { key: b64('/a/'), range_end: b64('/a0') }) },
  { name: 'range from /a/ to /b0 (part not readable)', allowed: ['root'],
    run: kv('range', { key: b64('/a/'), range_end: b64('/b0') }) },
  { name: 'get /b/1', allowed: ['root'], run: kv('range', { key: b64('/b/1') }) },
  { name: 'put /a/1', allowed: ['root'], run: kv('put', { key: b64('/a/1'), value: b64('x') }) },
  { name: 'put /b/1', allowed: ['root', 'writer'],
    run: kv('put', { key: b64('/b/1'), value: b64('x') }) },
  { name: 'put /b/1 with prev_kv (needs read too)', allowed: ['root'],
    run: kv('put', { key: b64('/b/1'), value: b64('x'), prev_kv: true }) },
  { name: 'put /c', allowed: ['root', 'rw'], run: kv('put', { key: b64('/c'), value: b64('x') }) },
  { name: 'get /c', allowed: ['root', 'rw'], run: kv('range', { key: b64('/c') }) },
  { name: 'delete /b/ prefix', allowed: ['root', 'writer'],
    run: kv('deleterange', { key: b64('/b/'), range_end: b64('/b0') }) },
  { name: 'delete /a/1', allowed: ['root'], run: kv('deleterange', { key: b64('/a/1') }) },
  { name: 'txn on /c only', allowed: ['root', 'rw'], run: kv('txn', {
    compare: [{ key: b64('/c'), target: 'VERSION', version: '0' }],
    success: [{ request_put: { key: b64('/c'), value: b64('t') } }],
    failure: [{ request_range: { key: b64('/c') } }],
  }) },
  { name: 'txn on /c whose other branch writes /b/x', allowed: ['root'], run: kv('txn', {
    compare: [{ key: b64('/c'), target: 'VERSION', version: '0' }],
    success: [{ request_put: { key: b64('/c'), value: b64('t') } }],
    failure: [{ request_put: { key: b64('/b/x'), value: b64('t') } }],
  }) },
  { name: 'compaction', allowed: ['root'], run: kv('compaction', { revision: '1' }) },
  { name: 'lease grant', allowed: ['root', 'reader', 'writer', 'rw'],
    run: (url, token) => call(`${url}/v3/lease/grant`, { TTL: '60' }, { token }) },
  { name: 'member remove (of no member: root gets 404)', allowed: ['root'],
    run: (url, token) => call(`${url}/v3/cluster/member/remove`, { ID: '12345' }, { token }) },
  { name: 'user list', allowed: ['root'],
    run: (url, token) => call(`${url}/v3/auth/user/list`, {}, { token }) },
  { name: '/v1 get /a/1', allowed: ['root', 'reader'],
    run: (url, token) => call(`${url}/v1/key/%2Fa%2F1`, '', { token, method: 'GET' }) },
  { name: '/v1 put /b/1', allowed: ['root', 'writer'],
    run: (url, token) => call(`${url}/v1/key/%2Fb%2F1`, { value: 'v' }, { token, method: 'PUT' }) },
];

test('auth: the permission matrix — each operation allowed exactly for its users', async (t) => {
  const srv = await useServer(t, { args: fast });
  const tokens = await setup(srv.url);
  for (const c of cases) {
    for (const user of ['root', 'reader', 'writer', 'rw'] as User[]) {
      const r = await c.run(srv.url, tokens[user]!);
      const want = c.allowed.includes(user);
      const label = `${c.name} as ${user}: ${r.status} ${JSON.stringify(r.json)}`;
      if (want) t.not(r.status, 403, label);
      else {
        t.is(r.status, 403, label);
        if (!c.name.startsWith('/v1')) t.deepEqual(r.json, denied, label);
        else t.is(r.json.error.code, 'PERMISSION_DENIED', label);
      }
    }
  }
  // Watches: a refused create is canceled with etcd's reason; an allowed one is created.
  const w = async (user: User, key: string, end?: string) => (await firstWatchMessage(srv.url,
    { key: b64(key), ...(end ? { range_end: b64(end) } : {}) }, tokens[user])).result;
  t.like(await w('reader', '/a/', '/a0'), { created: true });
  t.is((await w('reader', '/a/', '/a0')).canceled, undefined);
  t.like(await w('writer', '/a/', '/a0'), { watch_id: '-1', created: true, canceled: true,
    cancel_reason: 'rpc error: code = PermissionDenied desc = etcdserver: permission denied' });
  t.like(await w('rw', '/c'), { created: true });
  t.like(await w('rw', '/b/'), { canceled: true });
});

test('auth: a denied txn applies nothing; lease revoke needs write on every key', async (t) => {
  const srv = await useServer(t, { args: fast });
  const tk = await setup(srv.url);
  const get = async (key: string) => (await call(`${srv.url}/v3/kv/range`, { key: b64(key) },
    { token: tk['root']! })).json.kvs?.[0]?.value;
  await call(`${srv.url}/v3/kv/put`, { key: b64('/c'), value: b64('before') },
    { token: tk['rw']! });
  const r = await call(`${srv.url}/v3/kv/txn`, {
    success: [{ request_put: { key: b64('/c'), value: b64('after') } },
      { request_put: { key: b64('/b/1'), value: b64('after') } }],
  }, { token: tk['rw']! });
  t.is(r.status, 403);
  t.is(await get('/c'), b64('before'));
  t.is(await get('/b/1'), undefined);
  // A lease holding /b/1 and /b/2: the writer may revoke it, the reader may not.
  const lease = (await call(`${srv.url}/v3/lease/grant`, { TTL: '600' },
    { token: tk['writer']! })).json.ID;
  for (const k of ['/b/1', '/b/2']) {
    t.is((await call(`${srv.url}/v3/kv/put`, { key: b64(k), value: b64('l'), lease },
      { token: tk['writer']! })).status, 200);
  }
  t.is((await call(`${srv.url}/v3/lease/revoke`, { ID: lease }, { token: tk['reader']! })).status,
    403);
  t.is(await get('/b/1'), b64('l'));
  t.is((await call(`${srv.url}/v3/lease/revoke`, { ID: lease }, { token: tk['writer']! })).status,
    200);
  t.is(await get('/b/1'), undefined);
});

test('auth: tokens — missing, malformed, revoked permissions, changed password, metric',
  async (t) => {
    const srv = await useServer(t, { args: fast });
    // Auth disabled: no token passes; a token that does not resolve is refused (etcd 3.4.23
    // does the same, recorded).
    t.is((await call(`${srv.url}/v3/kv/range`, { key: b64('x') })).status, 200);
    const garbage = await call(`${srv.url}/v3/kv/range`, { key: b64('x') }, { token: 'nope.1' });
    t.is(garbage.status, 401);
    t.is(garbage.json.error, 'etcdserver: invalid auth token');
    const tk = await setup(srv.url);
    t.like((await call(`${srv.url}/v3/kv/range`, { key: b64('/a/1') })).json,
      { error: 'etcdserver: user name is empty', code: 3 });
    t.is((await call(`${srv.url}/v3/kv/range`, { key: b64('/a/1') },
      { token: `Bearer ${tk['reader']!}` })).status, 401);
    // A token issued before a permission change sees the new permissions.
    const read = () => call(`${srv.url}/v3/kv/range`, { key: b64('/a/1') },
      { token: tk['reader']! });
    t.is((await read()).status, 200);
    t.is((await call(`${srv.url}/v3/auth/role/revoke`, {
      role: 'reader', key: b64('/a/'), range_end: b64('/a0') }, { token: tk['root']! })).status,
    200);
    t.is((await read()).status, 403);
    // A changed password voids the user's tokens.
    t.is((await call(`${srv.url}/v3/auth/user/changepw`, { name: 'reader', password: 'new' },
      { token: tk['root']! })).status, 200);
    t.is((await read()).status, 401);
    // Wrong passwords are refused and counted.
    for (const password of ['bad', 'worse']) {
      t.like((await call(`${srv.url}/v3/auth/authenticate`, { name: 'reader', password })).json,
        { error: 'etcdserver: authentication failed, invalid user ID or password', code: 3 });
    }
    const metrics = await call(`${srv.url}/metrics`, '', { method: 'GET' });
    t.regex(metrics.json as string, /^myetcd_auth_failures_total 2$/m);
    t.regex(metrics.json as string, /^etcd_debugging_auth_revision \d+$/m);
  });

test('auth: users, roles and permissions survive a restart from a snapshot', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'myetcd-auth-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  // Snapshots every 5 entries, keeping 1 behind: the auth entries are gone from the log and
  // live only in the snapshot when the member restarts.
  const args = ['--snapshot-count', '5', '--experimental-snapshot-catchup-entries', '1', ...fast];
  const first = await startServer({ dataDir: dir, args });
  try {
    const tk = await setup(first.url);
    const put = async (i: number) => Number((await call(`${first.url}/v3/kv/put`,
      { key: b64('/b/k'), value: b64(`${i}`) }, { token: tk['writer']! })).json.header.revision);
    // Written until a snapshot taken after the setup is saved (one at a time is taken, and on
    // a loaded machine the first may outlast a dozen writes).
    const afterSetup = await put(0);
    const snapshotAt = () => first.logs.filter((l) => l.includes('snapshot taken'))
      .map((l) => Number(/"revision":(\d+)/.exec(l)?.[1] ?? 0));
    let i = 1;
    await until(async () => {
      if (snapshotAt().some((rev) => rev >= afterSetup)) return true;
      await put(i++);
      return false;
    }, 'a snapshot after the auth setup', { intervalMs: 10 });
    t.is(await first.stop(), 0);
  } finally {
    await first.close();
  }
  const snaps = (await readdir(join(dir, 'member', 'snap'))).filter((f) => f.endsWith('.snap'));
  t.true(snaps.length > 0, `a snapshot was cut: ${snaps.join(', ')}`);
  const srv = await useServer(t, { dataDir: dir, args: [...args, '--auth-token-ttl', '2'] });
  // Auth is still on; the users, their passwords and the roles came back.
  t.is((await call(`${srv.url}/v3/kv/range`, { key: b64('/a/x') })).status, 400);
  const login = async (name: string) => (await call(`${srv.url}/v3/auth/authenticate`,
    { name, password: `${name}pw` })).json.token as string;
  const root = await login('root');
  t.like((await call(`${srv.url}/v3/auth/role/get`, { role: 'reader' }, { token: root })).json,
    { perm: [{ key: b64('/a/'), range_end: b64('/a0') }] });
  const tBefore = Date.now();
  const token = await login('reader');
  const r = await call(`${srv.url}/v3/kv/range`, { key: b64('/a/x') }, { token });
  // The token lives 2 s from its last use: only an answer inside that window proves it valid.
  if (Date.now() - tBefore < 2000) t.is(r.status, 200);
  const lastUse = Date.now();
  t.is((await call(`${srv.url}/v3/kv/put`, { key: b64('/a/x'), value: b64('v') },
    { token: await login('reader') })).status, 403);
  // Simple tokens expire when unused for --auth-token-ttl seconds.
  await new Promise((res) => setTimeout(res, Math.max(0, 2100 - (Date.now() - lastUse))));
  t.is((await call(`${srv.url}/v3/kv/range`, { key: b64('/a/x') }, { token })).status, 401);
});

test('auth: JWT tokens (RS256) — verified by signature, carry the auth revision', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'myetcd-jwt-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  await writeFile(join(dir, 'pub.pem'), publicKey.export({ type: 'spki', format: 'pem' }));
  await writeFile(join(dir, 'priv.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }));
  const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  const srv = await useServer(t, { args: [...fast, '--auth-token',
    `jwt,pub-key=${join(dir, 'pub.pem')},priv-key=${join(dir, 'priv.pem')},sign-method=RS256`] });
  const tk = await setup(srv.url);
  t.is(tk['writer']!.split('.').length, 3);
  const put = (token: string) => call(`${srv.url}/v3/kv/put`,
    { key: b64('/b/1'), value: b64('v') }, { token });
  t.is((await put(tk['writer']!)).status, 200);
  // A token signed with another key is not ours.
  const { SignJWT } = await import('jose');
  const forged = await new SignJWT({ username: 'root', revision: 99 })
    .setProtectedHeader({ alg: 'RS256' }).setExpirationTime('5m').sign(other);
  t.is((await put(forged)).status, 401);
  // After a permission change, a JWT issued before it is refused for writes, as etcd does.
  t.is((await call(`${srv.url}/v3/auth/role/add`, { name: 'extra' }, { token: tk['root']! }))
    .status, 200);
  const old = await put(tk['writer']!);
  t.is(old.status, 400);
  t.is(old.json.error, 'etcdserver: revision of auth store is old');
});

// etcdctl is the gRPC client (skipped, and shown as skipped, where it is not installed).
(haveEtcd ? test : test.skip)('auth: gRPC KV calls are checked too (no token: refused)',
  async (t) => {
  const srv = await useServer(t, { args: fast });
  const tk = await setup(srv.url);
  let url = '';
  await until(() => {
    for (const line of srv.logs) {
      const m = /"url":"([^"]+)","msg":"ready to serve gRPC client requests"/.exec(line);
      if (m) url = m[1]!;
    }
    return url !== '';
  }, 'the gRPC listener');
  const put = await runCtl(etcdctlBin, ['--endpoints', url, 'put', '/c', 'anonymous']);
  t.not(put.code, 0);
  t.regex(put.err, /user name is empty|permission denied/);
  const get = await runCtl(etcdctlBin, ['--endpoints', url, 'get', '/a/1']);
  t.not(get.code, 0);
  t.regex(get.err, /user name is empty|permission denied/);
  const r = await call(`${srv.url}/v3/kv/range`, { key: b64('/c') }, { token: tk['root']! });
  t.is(r.json.kvs, undefined);
});
