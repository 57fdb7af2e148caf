import test from 'ava';
import {
  ctlStderr, type EtcdCluster, etcdctlBin, haveEtcd, needsEtcd, normIds, runCtl, startEtcd,
} from './helpers/etcd-ref.js';
import { grpcUrl, startServer, type TestServer } from './helpers/server.js';

/**
 * etcd's gRPC Auth service, with Debian's etcdctl 3.4 against MyEtcd and a real etcd 3.4:
 * the same session of user and role administration, `auth enable`, calls with `--user`
 * (etcdctl authenticates over gRPC, then sends the token), refusals, and `auth disable` must
 * print the same on both after replacing the ids and the endpoint. Skipped, visibly, without
 * etcd.
 */

const serial = haveEtcd ? test.serial : test.serial.skip;
if (!haveEtcd) test.skip(`grpc-auth-etcdctl: ${needsEtcd}`, () => {});

let etcd: EtcdCluster | undefined;
let server: TestServer | undefined;

test.after.always(async () => {
  await server?.stop();
  await server?.cleanup();
  await etcd?.stop();
});

/** session is the command lines, run in order on each side. */
const session: string[][] = [
  ['user', 'add', 'root:pw', '--interactive=false'],
  ['user', 'grant-role', 'root', 'root'],
  ['role', 'add', 'r1'],
  ['role', 'grant-permission', 'r1', 'readwrite', '/a/', '--prefix=true'],
  ['role', 'grant-permission', 'r1', 'read', '/c', '/d'],
  ['role', 'get', 'r1'],
  ['role', 'list'],
  ['user', 'add', 'u1:pw1', '--interactive=false'],
  ['user', 'grant-role', 'u1', 'r1'],
  ['user', 'get', 'u1'],
  ['user', 'list'],
  ['user', 'add', 'u1:again', '--interactive=false'],
  ['role', 'get', 'nope'],
  ['auth', 'enable'],
  ['put', '/a/x', 'anonymous'],
  ['--user', 'root:pw', 'put', '/a/x', 'v'],
  ['--user', 'u1:pw1', 'get', '/a/x'],
  ['--user', 'u1:pw1', 'put', '/a/y', 'w'],
  ['--user', 'u1:pw1', 'put', '/b/x', 'denied'],
  ['--user', 'u1:pw1', 'get', '/c'],
  ['--user', 'u1:wrong', 'get', '/a/x'],
  ['--user', 'u1:pw1', 'user', 'list'],
  ['--user', 'root:pw', 'role', 'revoke-permission', 'r1', '/a/', '--prefix=true'],
  ['--user', 'u1:pw1', 'get', '/a/x'],
  ['--user', 'root:pw', 'user', 'passwd', 'u1', '--interactive=false'],
  ['--user', 'u1:pw1', 'get', '/c'],
  ['--user', 'root:pw', 'user', 'revoke-role', 'u1', 'r1'],
  ['--user', 'root:pw', 'user', 'delete', 'u1'],
  ['--user', 'root:pw', 'role', 'delete', 'r1'],
  ['--user', 'root:pw', 'auth', 'disable'],
  ['get', '/a/x'],
];

/** run plays the session against one endpoint and returns each step, normalised. */
async function run(endpoint: string): Promise<string[]> {
  const tokens: Array<[string, string]> = [];
  const st = await runCtl(etcdctlBin, ['--endpoints', endpoint, 'endpoint', 'status', '-w',
    'json']);
  for (const field of ['cluster_id', 'member_id']) {
    const id = new RegExp(`"${field}":(\\d+)`).exec(st.out.toString())?.[1];
    if (id === undefined) throw new Error(`${endpoint}: ${st.out.toString()} ${st.err}`);
    const hex = BigInt(id).toString(16);
    tokens.push([id, `<${field}>`], [hex.padStart(16, '0'), `<${field}>`], [hex, `<${field}>`]);
  }
  const host = endpoint.replace(/^http:\/\//, '');
  const out: string[] = [];
  for (const args of session) {
    // `user passwd` reads the new password from stdin when not interactive.
    const stdin = args.includes('passwd') ? 'pw2\n' : undefined;
    const r = await runCtl(etcdctlBin, ['--endpoints', endpoint, ...args], { stdin });
    const text = `${args.join(' ')} → ${r.code}\n${r.out.toString()}${ctlStderr(r.err)}`;
    out.push(normIds(text.split(host).join('<ep>'), tokens));
  }
  return out;
}

serial('grpc auth: etcdctl user and role administration, --user calls and refusals print ' +
  'the same as etcd 3.4', async (t) => {
  etcd = await startEtcd(1);
  server = await startServer({ args: ['--bcrypt-cost', '4'] });
  const ref = await run(etcd.endpoints[0]!);
  const mine = await run(await grpcUrl(server));
  for (let i = 0; i < session.length; i++) t.is(mine[i], ref[i]);
  // The session did what it says on etcd (so the comparison compares something).
  t.regex(ref[15]!, /→ 0\nOK/);
  t.regex(ref[18]!, /permission denied/);
  t.regex(ref[20]!, /authentication failed/);
});
