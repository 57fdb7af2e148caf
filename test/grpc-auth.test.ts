import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import { execFile } from 'node:child_process';
import { loadEtcdServices } from '../src/grpc/proto.js';
import { b64, call } from './helpers/auth.js';
import { grpcUrl, startServer, type TestServer } from './helpers/server.js';

/**
 * Auth on the gRPC port: once auth is enabled (through the JSON gateway), a gRPC call is
 * served only for a caller the permissions allow — the same checks as /v3 — so the gRPC port
 * is no way around them. Checked with Debian's etcdctl (no token: refused) and a raw grpc-js
 * client sending etcd's `token` metadata.
 */

let server: TestServer;
let grpcAddr: string;
const tokens: Record<string, string> = {};

test.before(async () => {
  server = await startServer({ args: ['--bcrypt-cost', '4'] });
  grpcAddr = (await grpcUrl(server)).replace(/^http:\/\//, '');
  const auth = (path: string, body: object) => call(`${server.url}/v3/auth/${path}`, body);
  for (const [path, body] of [
    ['user/add', { name: 'root', password: 'r' }], ['user/grant', { user: 'root', role: 'root' }],
    ['user/add', { name: 'reader', password: 'r' }], ['role/add', { name: 'reader' }],
    ['role/grant', { name: 'reader', perm: { key: b64('/a/'), range_end: b64('/a0') } }],
    ['user/grant', { user: 'reader', role: 'reader' }], ['enable', {}],
  ] as [string, object][]) {
    const r = await auth(path, body);
    if (r.status !== 200) throw new Error(`${path}: ${JSON.stringify(r.json)}`);
  }
  for (const name of ['root', 'reader']) {
    tokens[name] = (await auth('authenticate', { name, password: 'r' })).json.token as string;
  }
});

test.after.always(async () => {
  await server?.shutdown();
});

/** etcdctl runs Debian's etcdctl 3.4 against the gRPC port: exit code and output. */
function etcdctl(...args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile('/usr/bin/etcdctl', [`--endpoints=${grpcAddr}`, '--command-timeout=10s', ...args],
      { env: { ...process.env, ETCDCTL_API: '3' } }, (err, stdout, stderr) => {
        resolve({ code: err === null ? 0 : 1, out: stdout + stderr });
      });
  });
}

/** unary calls one KV method with `token` metadata (none: no metadata). */
function kvCall(method: string, req: object, token?: string): Promise<any> {
  const KV = loadEtcdServices().clients['KV']!;
  const c = new KV(grpcAddr, grpc.credentials.createInsecure()) as unknown as Record<string,
    (r: object, m: grpc.Metadata, cb: (e: grpc.ServiceError | null, r: any) => void) => void>;
  const md = new grpc.Metadata();
  if (token !== undefined) md.set('token', token);
  return new Promise((resolve) => {
    c[method]!.call(c, req, md, (e, r) => {
      (c as unknown as grpc.Client).close();
      resolve(e ?? r);
    });
  });
}

test.serial('grpc auth: etcdctl without credentials is refused, nothing written', async (t) => {
  const put = await etcdctl('put', '/a/1', 'v');
  t.is(put.code, 1);
  t.regex(put.out, /user name is empty|permission denied/);
  const get = await etcdctl('get', '/a/1');
  t.is(get.code, 1);
  const r = await call(`${server.url}/v3/kv/range`, { key: b64('/a/1') },
    { token: tokens['root'] });
  t.is(r.json.count, undefined, 'the refused put wrote nothing');
});

test.serial('grpc auth: a token in the metadata gets exactly its permissions', async (t) => {
  const key = Buffer.from('/a/2');
  const ok = await kvCall('Put', { key, value: Buffer.from('v') }, tokens['root']);
  t.truthy(ok.header, JSON.stringify(ok));
  const read = await kvCall('Range', { key }, tokens['reader']);
  t.is(read.kvs?.[0]?.value?.toString(), 'v');
  const denied = await kvCall('Put', { key, value: Buffer.from('w') }, tokens['reader']);
  t.is(denied.code, grpc.status.PERMISSION_DENIED);
  t.is(denied.details, 'etcdserver: permission denied');
  const outside = await kvCall('Range', { key: Buffer.from('/b/1') }, tokens['reader']);
  t.is(outside.code, grpc.status.PERMISSION_DENIED);
  const forged = await kvCall('Range', { key }, 'not-a-token');
  t.is(forged.code, grpc.status.UNAUTHENTICATED);
  const after = await kvCall('Range', { key }, tokens['root']);
  t.is(after.kvs?.[0]?.value?.toString(), 'v', 'the denied put changed nothing');
});

test.serial('grpc auth: streams (watch) and admin services need root', async (t) => {
  const w = await etcdctl('watch', '/a/', '--prefix');
  t.is(w.code, 1);
  const members = await etcdctl('member', 'list');
  t.is(members.code, 1);
  t.regex(members.out, /user name is empty|permission denied/);
});
