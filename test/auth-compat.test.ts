import test from 'ava';
import { b64, call } from './helpers/auth.js';
import { type EtcdCluster, haveEtcd, needsEtcd, startEtcd } from './helpers/etcd-ref.js';
import { startServer, type TestServer } from './helpers/server.js';

/**
 * auth-compat: the same sequence of /v3/auth and KV requests against a real etcd 3.4 and
 * against MyEtcd; every answer (status and body, with the member's ids, the Raft term and the
 * tokens taken out) must be identical. The sequence walks etcd's auth API through its
 * errors: enable without root, duplicate and empty names, grants of missing roles, reads by
 * a non-root user of itself and of others, revokes of what was never granted, the root
 * user's protections, and disable.
 */

if (!haveEtcd) test.skip(`auth-compat: ${needsEtcd}`, () => {});

/** Step is one request: path, body, and the user whose latest token goes with it. */
type Step = [path: string, body: object, as?: string];

const perm = (permType: string, key: string, end?: string) =>
  ({ ...(permType === '' ? {} : { permType }), key: b64(key),
    ...(end === undefined ? {} : { range_end: b64(end) }) });

const steps: Step[] = [
  ['/v3/auth/enable', {}],
  ['/v3/auth/user/add', { name: 'root', password: 'rootpw' }],
  ['/v3/auth/user/add', { name: 'root', password: 'rootpw' }],
  ['/v3/auth/user/add', { name: '', password: 'x' }],
  ['/v3/auth/enable', {}],
  ['/v3/auth/user/grant', { user: 'root', role: 'root' }],
  ['/v3/auth/user/get', { name: 'root' }],
  ['/v3/auth/role/get', { role: 'root' }],
  ['/v3/auth/role/add', { name: 'r1' }],
  ['/v3/auth/role/add', { name: '' }],
  ['/v3/auth/role/add', { name: 'r1' }],
  ['/v3/auth/role/grant', { name: 'r1', perm: perm('READ', '/a/', '/b/') }],
  ['/v3/auth/role/grant', { name: 'r1', perm: perm('WRITE', '/b/', '/b0') }],
  ['/v3/auth/role/grant', { name: 'r1', perm: { perm_type: 'READWRITE', key: b64('key') } }],
  ['/v3/auth/role/grant', { name: 'r1', perm: { permType: 'BAD', key: b64('x') } }],
  ['/v3/auth/role/grant', { name: 'nope', perm: perm('READ', 'x') }],
  ['/v3/auth/role/get', { role: 'r1' }],
  ['/v3/auth/role/list', {}],
  ['/v3/auth/user/list', {}],
  ['/v3/auth/user/add', { name: 'u1', password: 'p1' }],
  ['/v3/auth/user/add', { name: 'np0', options: { no_password: true } }],
  ['/v3/auth/user/grant', { user: 'u1', role: 'r1' }],
  ['/v3/auth/user/grant', { user: 'u1', role: 'r1' }],
  ['/v3/auth/user/grant', { user: 'u1', role: 'nope' }],
  ['/v3/auth/user/grant', { user: 'nope', role: 'r1' }],
  ['/v3/auth/user/changepw', { name: 'zz', password: 'q' }],
  ['/v3/auth/authenticate', { name: 'root', password: 'rootpw' }],
  ['/v3/auth/enable', {}],
  ['/v3/auth/enable', {}],
  ['/v3/kv/range', { key: b64('foo') }],
  ['/v3/auth/authenticate', { name: 'root', password: 'bad' }],
  ['/v3/auth/authenticate', { name: 'nouser', password: 'bad' }],
  ['/v3/auth/authenticate', { name: 'root', password: 'rootpw' }],
  ['/v3/auth/authenticate', { name: 'u1', password: 'p1' }],
  ['/v3/auth/authenticate', { name: 'np0', password: '' }],
  ['/v3/auth/enable', {}, 'root'],
  ['/v3/kv/put', { key: b64('foo'), value: b64('bar') }, 'root'],
  ['/v3/kv/put', { key: b64('foo'), value: b64('bar') }, 'u1'],
  ['/v3/kv/range', { key: b64('foo') }, 'u1'],
  ['/v3/kv/range', { key: b64('/a/'), range_end: b64('/b/') }, 'u1'],
  ['/v3/kv/put', { key: b64('/b/x'), value: b64('v') }, 'u1'],
  ['/v3/kv/put', { key: b64('/b/x'), value: b64('v'), prev_kv: true }, 'u1'],
  ['/v3/kv/txn', { compare: [{ key: b64('key'), target: 'VERSION', version: '0' }],
    success: [{ request_put: { key: b64('key'), value: b64('1') } }] }, 'u1'],
  ['/v3/kv/txn', { compare: [{ key: b64('foo'), target: 'VERSION', version: '0' }],
    success: [{ request_put: { key: b64('key'), value: b64('1') } }] }, 'u1'],
  ['/v3/kv/deleterange', { key: b64('/b/'), range_end: b64('/b0') }, 'u1'],
  ['/v3/auth/user/get', { name: 'u1' }, 'u1'],
  ['/v3/auth/user/get', { name: 'root' }, 'u1'],
  ['/v3/auth/role/get', { role: 'r1' }, 'u1'],
  ['/v3/auth/role/get', { role: 'zz' }, 'u1'],
  ['/v3/auth/user/list', {}, 'u1'],
  ['/v3/auth/user/changepw', { name: 'u1', password: 'p2' }, 'u1'],
  ['/v3/auth/disable', {}, 'u1'],
  ['/v3/auth/role/revoke', { role: 'r1', key: b64('key') }, 'root'],
  ['/v3/auth/role/revoke', { role: 'r1', key: b64('key') }, 'root'],
  ['/v3/auth/user/revoke', { name: 'u1', role: 'r1' }, 'root'],
  ['/v3/auth/user/revoke', { name: 'u1', role: 'r1' }, 'root'],
  ['/v3/auth/user/changepw', { name: 'u1', password: 'p2' }, 'root'],
  ['/v3/kv/range', { key: b64('/a/') }, 'u1'],
  ['/v3/auth/user/delete', { name: 'u1' }, 'root'],
  ['/v3/auth/user/delete', { name: 'u1' }, 'root'],
  ['/v3/auth/role/delete', { role: 'r1' }, 'root'],
  ['/v3/auth/role/delete', { role: 'r1' }, 'root'],
  ['/v3/auth/role/delete', { role: 'root' }, 'root'],
  ['/v3/auth/user/revoke', { name: 'root', role: 'root' }, 'root'],
  ['/v3/auth/user/delete', { name: 'root' }, 'root'],
  ['/v3/auth/disable', {}, 'root'],
  ['/v3/auth/disable', {}, 'root'],
  ['/v3/auth/authenticate', { name: 'root', password: 'rootpw' }],
  ['/v3/auth/user/get', { name: 'zz' }],
  ['/v3/auth/role/add', { name: 'root' }],
  ['/v3/auth/role/get', { role: 'root' }],
  ['/v3/auth/user/add', { name: 'np', options: { no_password: true } }],
  ['/v3/auth/user/get', { name: 'np' }],
  ['/v3/auth/user/list', {}],
];

/** replay runs the steps against one endpoint and returns the normalized answers. */
async function replay(url: string): Promise<string[]> {
  const tokens = new Map<string, string>();
  const out: string[] = [];
  for (const [path, body, as] of steps) {
    const r = await call(`${url}${path}`, body, as === undefined ? {} : {
      token: tokens.get(as) ?? 'none' });
    const j = r.json as Record<string, any>;
    if (typeof j === 'object' && j !== null) {
      if (j['header'] !== undefined) {
        delete j['header']['cluster_id'];
        delete j['header']['member_id'];
        delete j['header']['raft_term'];
      }
      if (typeof j['token'] === 'string') {
        tokens.set((body as { name: string }).name, j['token']);
        j['token'] = '<token>';
      }
    }
    out.push(`${path} ${JSON.stringify(body)}${as ? ` as ${as}` : ''} → ${r.status} ` +
      JSON.stringify(j));
  }
  return out;
}

let etcd: EtcdCluster | undefined;
let server: TestServer | undefined;

test.after.always(async () => {
  await server?.shutdown();
  await etcd?.stop();
});

(haveEtcd ? test : test.skip)('auth-compat: the auth API answers as etcd 3.4 on the same ' +
  'sequence', async (t) => {
  [etcd, server] = await Promise.all([startEtcd(1), startServer({ args: ['--bcrypt-cost', '4'] })]);
  const [want, got] = await Promise.all([replay(etcd.endpoints[0]!), replay(server.url)]);
  t.is(got.length, steps.length);
  // The reference really walked the API: successes and each kind of refusal occur.
  for (const status of [200, 400, 401, 403, 412, 500]) {
    t.true(want.some((l) => l.includes(`→ ${status} `)), `etcd answered ${status} somewhere`);
  }
  for (let i = 0; i < steps.length; i++) t.is(got[i], want[i]);
});
