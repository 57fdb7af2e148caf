import test from 'ava';
import { execFile, execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { b64, call } from './helpers/auth.js';
import { useServer } from './helpers/server.js';
import { fastRaft, startCluster, waitForLeader } from './helpers/cluster.js';
import tls from 'node:tls';
import { myetcdctlBin, runCtl } from './helpers/etcd-ref.js';
import { Client } from '../src/client/index.js';

/**
 * tls: the client port over TLS with etcd's flags, with certificates made by openssl here: a
 * CA, another CA, a server certificate for 127.0.0.1, client certificates (CN root and
 * reader), one from the other CA and an expired one. With --client-cert-auth a client
 * without a good certificate is refused at the handshake; with auth enabled the
 * certificate's common name is the user.
 */

let dir = '';
const f = (name: string) => join(dir, name);
const pem = (name: string) => readFileSync(f(name));

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'myetcd-tls-'));
  const ssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
  writeFileSync(f('ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' +
    'extendedKeyUsage=serverAuth,clientAuth\n');
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  for (const ca of ['ca', 'ca2']) {
    ssl('req', '-x509', ...ec, '-keyout', f(`${ca}-key.pem`), '-out', f(`${ca}.pem`),
      '-days', '2', '-subj', `/CN=${ca}`);
  }
  const cert = (name: string, cn: string, ca: string, days: string) => {
    ssl('req', ...ec, '-keyout', f(`${name}-key.pem`), '-out', f(`${name}.csr`), '-subj',
      `/CN=${cn}`);
    ssl('x509', '-req', '-in', f(`${name}.csr`), '-CA', f(`${ca}.pem`), '-CAkey',
      f(`${ca}-key.pem`), '-CAcreateserial', '-out', f(`${name}.pem`), '-days', days,
      '-extfile', f('ext.cnf'));
  };
  cert('server', 'localhost', 'ca', '2');
  cert('root', 'root', 'ca', '2');
  cert('reader', 'reader', 'ca', '2');
  cert('stranger', 'root', 'ca2', '2');
  cert('expired', 'root', 'ca', '-1'); // notAfter yesterday
});

test.after.always(async () => {
  if (dir !== '') await rm(dir, { recursive: true, force: true });
});

/** as is a client's TLS identity: trusting `ca`, presenting `cert` (if any). */
const as = (cert?: string, ca = 'ca.pem') => ({
  ca: pem(ca),
  ...(cert === undefined ? {} : { cert: pem(`${cert}.pem`), key: pem(`${cert}-key.pem`) }),
});

/** refused resolves to the error a request met (undefined if it was answered). */
async function refused(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

test('tls: --client-cert-auth refuses no, foreign and expired certificates at the handshake',
  async (t) => {
    const srv = await useServer(t, { args: ['--listen-client-urls', 'https://127.0.0.1:0',
      '--cert-file', f('server.pem'), '--key-file', f('server-key.pem'),
      '--trusted-ca-file', f('ca.pem'), '--client-cert-auth', '--bcrypt-cost', '4'] });
    t.true(srv.url.startsWith('https://127.0.0.1:'));
    const range = (tls: object) => call(`${srv.url}/v3/kv/range`, { key: b64('x') }, { tls });
    t.is((await range(as('root'))).status, 200);
    for (const who of [undefined, 'stranger', 'expired']) {
      t.truthy(await refused(range(as(who))), `${who ?? 'no certificate'} is refused`);
    }
    // The client checks the server too: a client trusting another CA refuses it.
    t.regex((await refused(range(as('root', 'ca2.pem'))))!, /certificate/);

    // Auth on: with no token, the certificate's common name is the user.
    const admin = (path: string, body: object) => call(`${srv.url}/v3/auth/${path}`, body,
      { tls: as('root') });
    for (const [path, body] of [
      ['user/add', { name: 'root', password: 'r' }], ['user/grant', { user: 'root', role: 'root' }],
      ['user/add', { name: 'reader', password: 'r' }], ['role/add', { name: 'reader' }],
      ['role/grant', { name: 'reader', perm: { key: b64('/a/'), range_end: b64('/a0') } }],
      ['user/grant', { user: 'reader', role: 'reader' }], ['enable', {}],
    ] as [string, object][]) {
      t.is((await admin(path, body)).status, 200, path);
    }
    const put = (who: string) => call(`${srv.url}/v3/kv/put`,
      { key: b64('/a/1'), value: b64('v') }, { tls: as(who) });
    t.is((await put('root')).status, 200);
    t.is((await put('reader')).status, 403);
    t.is((await call(`${srv.url}/v3/kv/range`, { key: b64('/a/1') }, { tls: as('reader') }))
      .status, 200);
    t.is((await call(`${srv.url}/v3/auth/user/list`, {}, { tls: as('reader') })).status, 403);
  });

test('tls: https without client certificates (uWebSockets), and --auto-tls', async (t) => {
  const [plain, auto] = await Promise.all([
    useServer(t, { args: ['--listen-client-urls', 'https://127.0.0.1:0',
      '--cert-file', f('server.pem'), '--key-file', f('server-key.pem')] }),
    useServer(t, { args: ['--listen-client-urls', 'https://127.0.0.1:0', '--auto-tls'] }),
  ]);
  const put = (url: string, tls: object) => call(`${url}/v3/kv/put`,
    { key: b64('k'), value: b64('v') }, { tls });
  t.is((await put(plain.url, as())).status, 200);
  t.is((await put(plain.url, as('root'))).status, 200);
  t.truthy(await refused(put(plain.url, as(undefined, 'ca2.pem'))));
  // Plain HTTP on a TLS port gets no answer.
  t.truthy(await refused(call(plain.url.replace('https:', 'http:') + '/health', '',
    { method: 'GET' })));
  // --auto-tls: a self-signed certificate, which a verifying client refuses.
  t.regex((await refused(put(auto.url, as())))!, /certificate/);
  t.is((await put(auto.url, { rejectUnauthorized: false })).status, 200);
});

test('tls: flags that do not hang together are refused at start', async (t) => {
  const { loadConfig } = await import('../src/config/index.js');
  const load = (...argv: string[]) => () => loadConfig(argv, {});
  t.throws(load('--listen-client-urls', 'https://127.0.0.1:0'), { message: /--auto-tls/ });
  t.throws(load('--cert-file', 'a.pem'), { message: /together/ });
  t.throws(load('--client-cert-auth'), { message: /--trusted-ca-file/ });
  t.throws(load('--listen-peer-urls', 'https://127.0.0.1:0'), { message: /--peer-auto-tls/ });
  t.throws(load('--peer-client-cert-auth'), { message: /--peer-trusted-ca-file/ });
  t.is(loadConfig(['--client-cert-auth', '--trusted-ca-file', 'ca.pem'], {}).clientCertAuth,
    'true');
  t.is(loadConfig(['--client-cert-auth=false'], {}).clientCertAuth, 'false');
});

test('tls: the SDK and myetcdctl speak TLS (--cacert, --cert, --key, ' +
  '--insecure-skip-tls-verify)', async (t) => {
  const [srv, auto] = await Promise.all([
    useServer(t, { args: ['--listen-client-urls', 'https://127.0.0.1:0',
      '--cert-file', f('server.pem'), '--key-file', f('server-key.pem'),
      '--trusted-ca-file', f('ca.pem'), '--client-cert-auth'] }),
    useServer(t, { args: ['--listen-client-urls', 'https://127.0.0.1:0', '--auto-tls'] }),
  ]);
  const client = new Client({ endpoints: [srv.url], tls: as('root') });
  const watcher = client.watch('k');
  const events = watcher[Symbol.asyncIterator]();
  const first = events.next(); // the created answer is not yielded; the first events are
  await watcher.created;
  await client.put('k', 'v1');
  t.is((await client.get('k')).kvs[0]?.value.toString(), 'v1');
  const got = await first;
  t.is(got.value?.events[0]?.kv.value.toString(), 'v1');
  watcher.cancel();
  const noCert = new Client({ endpoints: [srv.url], tls: { ca: pem('ca.pem') } });
  await t.throwsAsync(noCert.get('k'));
  const ctl = (url: string, ...args: string[]) => runCtl(process.execPath,
    [myetcdctlBin, '--endpoints', url, ...args]);
  const tlsArgs = ['--cacert', f('ca.pem'), '--cert', f('root.pem'), '--key', f('root-key.pem')];
  t.is((await ctl(srv.url, ...tlsArgs, 'put', 'c', 'ok')).code, 0);
  const get = await ctl(srv.url, ...tlsArgs, 'get', 'c', '--print-value-only');
  t.is(get.out.toString(), 'ok\n');
  t.not((await ctl(srv.url, '--cacert', f('ca.pem'), 'get', 'c')).code, 0);
  t.not((await ctl(auto.url, 'get', 'c')).code, 0);
  t.is((await ctl(auto.url, '--insecure-skip-tls-verify', 'put', 'c', 'ok')).code, 0);
});

test('tls: peers over TLS with --peer-client-cert-auth replicate; a stranger is refused',
  async (t) => {
    const c = await startCluster({ size: 3, scheme: 'https', args: [...fastRaft,
      '--peer-cert-file', f('server.pem'), '--peer-key-file', f('server-key.pem'),
      '--peer-trusted-ca-file', f('ca.pem'), '--peer-client-cert-auth'] });
    t.teardown(() => c.stopAll());
    await waitForLeader(c);
    const [a, b] = [c.nodes[0]!.server!, c.nodes[1]!.server!];
    const put = await call(`${a.url}/v3/kv/put`, { key: b64('p'), value: b64('tls') });
    t.is(put.status, 200, `${JSON.stringify(put.json)}\n${a.logs.filter((l) =>
      /warn|error/.test(l)).slice(-5).join('\n')}`);
    // A linearizable read on another member sees it: the members talk over TLS.
    const r = await call(`${b.url}/v3/kv/range`, { key: b64('p') });
    t.is(r.json.kvs?.[0]?.value, b64('tls'));
    // The peer port refuses a handshake with a certificate from another CA (TLS 1.2: the
    // client certificate is checked before the handshake completes), accepts ours.
    const port = Number(new URL(c.nodes[2]!.peerUrl).port);
    const handshake = (who: string) => new Promise<string>((resolve) => {
      const s = tls.connect({ host: '127.0.0.1', port, ...as(who), maxVersion: 'TLSv1.2' });
      s.on('secureConnect', () => {
        resolve('connected');
        s.destroy();
      });
      s.on('error', (e) => resolve(e.message));
    });
    t.is(await handshake('root'), 'connected');
    t.not(await handshake('stranger'), 'connected');
  });

test('tls: clients we did not write — curl and Python\'s ssl — with and without a client ' +
  'certificate', async (t) => {
  const srv = await useServer(t, { args: ['--listen-client-urls', 'https://127.0.0.1:0',
    '--cert-file', f('server.pem'), '--key-file', f('server-key.pem'),
    '--trusted-ca-file', f('ca.pem'), '--client-cert-auth'] });
  const curl = (...extra: string[]) => runFile('curl', ['-sS', '--max-time', '20',
    '--cacert', f('ca.pem'), ...extra, '-X', 'POST', '-d', '{"key":"eA==","value":"eQ=="}',
    `${srv.url}/v3/kv/put`]);
  const ok = await curl('--cert', f('root.pem'), '--key', f('root-key.pem'));
  t.is(ok.code, 0, ok.stderr);
  t.regex(ok.stdout, /"revision":"2"/);
  // No certificate: the handshake fails (curl exits non-zero, with no HTTP answer).
  const none = await curl();
  t.not(none.code, 0);
  t.is(none.stdout, '');
  // Python's standard library, presenting the certificate, reads the key back.
  const py = await runFile('python3', ['-c', [
    'import http.client, ssl, sys',
    'ctx = ssl.create_default_context(cafile=sys.argv[1])',
    'ctx.load_cert_chain(sys.argv[2], sys.argv[3])',
    'c = http.client.HTTPSConnection("127.0.0.1", int(sys.argv[4]), context=ctx, timeout=20)',
    'c.request("POST", "/v3/kv/range", body=\'{"key":"eA=="}\')',
    'r = c.getresponse(); print(r.status, r.read().decode())',
  ].join('\n'), f('ca.pem'), f('root.pem'), f('root-key.pem'), new URL(srv.url).port]);
  t.is(py.code, 0, py.stderr);
  t.regex(py.stdout, /^200 .*"value":"eQ=="/);
});

/** runFile runs a program to its end: exit code and output (never throws on a failure). */
function runFile(cmd: string, args: string[]):
  Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
      resolve({ code, stdout, stderr });
    });
  });
}
