/**
 * secure.ts — TLS with client certificates, and etcd's auth: users, roles, a token
 * (docs/security.md).
 *
 * The example makes a CA, a server certificate and a client certificate with openssl, starts
 * its own member (node dist/src/main.js --client-cert-auth, data in a temporary directory, a
 * port chosen by the OS), enables auth, and shows what a limited user may and may not do.
 *
 *   npm run build && node dist/examples/secure.js
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, ClientError } from '../src/client/index.js';

const mainJs = fileURLToPath(new URL('../src/main.js', import.meta.url));
const base = mkdtempSync(join(tmpdir(), 'myetcd-example-secure-'));
const f = (name: string) => join(base, name);
let member: ChildProcess | undefined;

/** stop kills the member and removes the temporary directory. */
function stop(): void {
  member?.kill('SIGKILL');
  rmSync(base, { recursive: true, force: true });
}
process.once('SIGTERM', () => {
  stop();
  process.exit(143);
});

// Certificates: a CA, then the server's (for 127.0.0.1) and a client's (CN "app") from it.
const ssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
writeFileSync(f('ext.cnf'),
  'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n');
ssl('req', '-x509', ...ec, '-keyout', f('ca-key.pem'), '-out', f('ca.pem'), '-days', '1',
  '-subj', '/CN=example-ca');
for (const [name, cn] of [['server', '127.0.0.1'], ['app', 'app']]) {
  ssl('req', ...ec, '-keyout', f(`${name}-key.pem`), '-out', f(`${name}.csr`),
    '-subj', `/CN=${cn}`);
  ssl('x509', '-req', '-in', f(`${name}.csr`), '-CA', f('ca.pem'), '-CAkey', f('ca-key.pem'),
    '-CAcreateserial', '-out', f(`${name}.pem`), '-days', '1', '-extfile', f('ext.cnf'));
}
console.log('made a CA, a server certificate and a client certificate (CN app)');

try {
  const url = await new Promise<string>((resolve, reject) => {
    const p = spawn(process.execPath, [mainJs, '--data-dir', f('data'),
      '--listen-client-urls', 'https://127.0.0.1:0', '--cert-file', f('server.pem'),
      '--key-file', f('server-key.pem'), '--trusted-ca-file', f('ca.pem'), '--client-cert-auth',
      '--storage-shards', '1'], { stdio: ['ignore', 'ignore', 'pipe'] });
    member = p;
    let log = '';
    p.stderr!.on('data', (d: Buffer) => {
      log += d.toString();
      const m = /"url":"(https:[^"]+)","msg":"ready to serve client requests"/.exec(log);
      if (m) resolve(m[1]!);
    });
    p.once('exit', (code) => reject(new Error(`the member exited with ${code}:\n${log}`)));
  });
  console.log(`member serves ${url} and wants a client certificate from the CA`);

  const tls = { ca: readFileSync(f('ca.pem')), cert: readFileSync(f('app.pem')),
    key: readFileSync(f('app-key.pem')) };
  try {
    await new Client({ endpoints: [url], tls: { ca: tls.ca } }).get('x');
  } catch (e) {
    console.log(`without a client certificate: refused (${(e as Error).message.slice(0, 40)}…)`);
  }
  const admin = new Client({ endpoints: [url], tls });
  // Auth: root (needed to enable auth), a role with READWRITE on the prefix app/, a user.
  const call = (path: string, body: object, c = admin) => c.transport.post(path, body);
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  await call('/v3/auth/user/add', { name: 'root', password: 'rootpw' });
  await call('/v3/auth/user/grant', { user: 'root', role: 'root' });
  await call('/v3/auth/role/add', { name: 'app' });
  await call('/v3/auth/role/grant', { name: 'app',
    perm: { permType: 'READWRITE', key: b64('app/'), range_end: b64('app0') } });
  await call('/v3/auth/user/add', { name: 'svc', password: 'svcpw' });
  await call('/v3/auth/user/grant', { user: 'svc', role: 'app' });
  await call('/v3/auth/enable', {});
  console.log('auth enabled: root, role app (READWRITE on app/), user svc');

  const { token } = await admin.transport.post<{ token: string }>('/v3/auth/authenticate',
    { name: 'svc', password: 'svcpw' });
  const svc = new Client({ endpoints: [url], tls, token });
  await svc.put('app/config', 'v1');
  console.log(`svc put app/config = ${await svc.getString('app/config')}`);
  try {
    await svc.put('other/key', 'x');
  } catch (e) {
    console.log(`svc put other/key: ${(e as ClientError).message}`);
  }
  // With no token, the client certificate's common name is the user: "app" is no user here.
  try {
    await admin.get('app/config');
  } catch (e) {
    console.log(`certificate CN app, no token: ${(e as ClientError).message}`);
  }
} finally {
  stop();
}
