import test from 'ava';
import { spawnSync } from 'node:child_process';
import { connect } from 'node:net';
import { http1Target } from '../src/server/front-end.js';
import { etcdctlBin, haveEtcd, needsEtcd, runCtl } from './helpers/etcd-ref.js';
import { metricValue } from './helpers/metrics.js';
import { b64, grpcUrl, startServer, type TestServer } from './helpers/server.js';

/**
 * HTTP/1.x on the gRPC port. etcd serves gRPC and HTTP on one client port, and tools rely on
 * it: `etcdctl check datascale` reads `/metrics` from the endpoint it writes to over gRPC,
 * Prometheus and curl scrape and probe the URL clients dial. MyEtcd's gRPC listener passes
 * a connection that does not open with HTTP/2's preface to its HTTP client listener
 * (src/grpc/opening.ts, passHttp1 in src/gateway/grpc-server.ts). Checked with clients we
 * did not write: curl, Node's fetch (undici), a raw socket, and etcdctl itself.
 */

let server: TestServer | undefined;
let grpc = '';

test.before(async () => {
  server = await startServer();
  grpc = await grpcUrl(server);
});

test.after.always(async () => {
  await server?.stop();
  await server?.cleanup();
});

const passed = async () => metricValue(await (await fetch(`${server!.url}/metrics`)).text(),
  'myetcd_grpc_connections_total{handover="http1"}') ?? 0;

const hasCurl = spawnSync('curl', ['--version']).status === 0;

test.serial('http1: fetch on the gRPC port gets the JSON gateway, /health and /metrics, each ' +
  'connection counted as passed', async (t) => {
  const before = await passed();
  const put = await fetch(`${grpc}/v3/kv/put`, { method: 'POST',
    body: JSON.stringify({ key: b64('h1/a'), value: b64('one') }) });
  t.is(put.status, 200);
  const range = await fetch(`${server!.url}/v3/kv/range`, { method: 'POST',
    body: JSON.stringify({ key: b64('h1/a') }) });
  const kvs = ((await range.json()) as { kvs: { value: string }[] }).kvs;
  t.is(Buffer.from(kvs[0]!.value, 'base64').toString(), 'one', 'written through the gRPC port');
  const health = await fetch(`${grpc}/health`);
  t.deepEqual(await health.json(), { health: 'true' });
  const metrics = await (await fetch(`${grpc}/metrics`)).text();
  t.true((metricValue(metrics, 'process_resident_memory_bytes') ?? 0) > 0);
  t.true(await passed() > before, `passed ${before} → ${await passed()}`);
});

(hasCurl ? test.serial : test.serial.skip)('http1: curl on the gRPC port, an error answered ' +
  'as on the client port', async (t) => {
  const run = (url: string) => spawnSync('curl', ['-sS', '--noproxy', '*', '-X', 'POST', url,
    '-d', '{"key": 5}'], { encoding: 'utf8' });
  const viaGrpc = run(`${grpc}/v3/kv/range`);
  const direct = run(`${server!.url}/v3/kv/range`);
  t.is(viaGrpc.status, 0, viaGrpc.stderr);
  t.regex(viaGrpc.stdout, /"code":3/);
  t.is(viaGrpc.stdout, direct.stdout, 'the same answer either way');
});

test.serial('http1: a raw socket keeps its connection for one request after another, and ' +
  'gRPC still works beside it', async (t) => {
  const u = new URL(grpc);
  const sock = connect(Number(u.port), u.hostname);
  let got = '';
  let closed = false;
  sock.on('data', (d: Buffer) => { got += d.toString('latin1'); });
  sock.on('close', () => { closed = true; });
  // One at a time: uWS closes a connection that pipelines behind a pending answer, on the
  // client port as here (docs/reliability.md).
  for (let i = 1; i <= 2; i++) {
    sock.write(`GET /health HTTP/1.1\r\nHost: ${u.host}\r\n\r\n`);
    while ((got.match(/"health":"true"/g) ?? []).length < i && !closed) {
      await new Promise((r) => { sock.once('data', r); sock.once('close', r); });
    }
  }
  t.false(closed, 'the connection stays open');
  sock.destroy();
  t.is((got.match(/HTTP\/1\.1 200/g) ?? []).length, 2, got);
  if (haveEtcd) {
    const r = await runCtl(etcdctlBin, ['--endpoints', grpc, 'get', 'h1/a', '--print-value-only']);
    t.is(r.out.toString().trim(), 'one', r.err);
  }
});

(haveEtcd ? test.serial : test.serial.skip)('http1: etcdctl check datascale passes against ' +
  'the gRPC endpoint (it reads /metrics there)', async (t) => {
  const r = await runCtl(etcdctlBin, ['--endpoints', grpc, 'check', 'datascale', '--load=s']);
  const out = r.out.toString();
  t.is(r.code, 0, `${out.slice(-400)} ${r.err}`);
  t.regex(out, /PASS: Approximate system memory used/);
});
if (!haveEtcd) test.skip(`http1 etcdctl: ${needsEtcd}`, () => {});

test('http1Target: the first plain-HTTP client listener, on loopback when it listens on ' +
  'every address', (t) => {
  t.deepEqual(http1Target([{ url: 'http://0.0.0.0:2379', host: '0.0.0.0' }], [2379]),
    { host: '127.0.0.1', port: 2379 });
  t.deepEqual(http1Target([{ url: 'https://10.0.0.1:2379', host: '10.0.0.1' },
    { url: 'http://[::]:0', host: '::' }], [2379, 41000]), { host: '::1', port: 41000 });
  t.is(http1Target([{ url: 'https://10.0.0.1:2379', host: '10.0.0.1' }], [2379]), undefined);
});
