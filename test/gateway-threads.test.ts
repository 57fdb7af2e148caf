import test from 'ava';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { loadConfig } from '../src/config/index.js';
import { gatewayThreadsFor } from '../src/gateway/pool.js';
import { metricValue } from './helpers/metrics.js';
import { b64, post, startServer, type TestServer, unb64 } from './helpers/server.js';
import { LineStream } from './helpers/streams.js';
import { until } from './helpers/wait.js';

// One real member with two gateway threads (--experimental-gateway-threads 2) serving the
// client port together (SO_REUSEPORT): the kernel spreads connections over them by a hash of
// the connection's addresses, so the tests open connections until each thread has some,
// however the hash falls (each request of helpers/server.ts's post is a connection of its own).
let srv: TestServer;
test.before(async () => {
  srv = await startServer({ args: ['--experimental-gateway-threads', '2'] });
});
test.after.always(async () => {
  await srv?.shutdown();
});

const gateways = ['gateway-1', 'gateway-2'];

async function metrics(): Promise<string> {
  const r = await fetch(`${srv.url}/metrics`);
  return r.text();
}

/** perGateway reads one labelled series per gateway thread (0 while absent). */
async function perGateway(name: string): Promise<number[]> {
  const body = await metrics();
  return gateways.map((g) => metricValue(body, `${name}{gateway="${g}"}`) ?? 0);
}

test.serial('gateway threads: connections are served by every thread, and each thread ' +
  'reports in /metrics', async (t) => {
  let sent = 0;
  await until(async () => {
    const r = await post(`${srv.url}/v3/kv/put`, { key: b64(`gw/${sent}`), value: b64('v') });
    t.is(r.status, 200);
    sent++;
    return (await perGateway('myetcd_gateway_requests_total')).every((n) => n > 0);
  }, 'both gateway threads served a request');
  const counts = await perGateway('myetcd_gateway_requests_total');
  // Every put was answered and counted by one thread or the other (the /metrics scrapes are
  // counted too, by whichever thread served them).
  t.true(counts[0]! + counts[1]! >= sent, `${counts} for ${sent} puts`);
  const body = await metrics();
  for (const g of gateways) {
    t.true((metricValue(body, `myetcd_actor_heap_used_bytes{actor="${g}"}`) ?? 0) > 0, g);
  }
  const r = await post(`${srv.url}/v3/kv/range`, { key: b64('gw/'), range_end: b64('gw0') });
  t.is(r.json.count, String(sent));
});

test.serial('gateway threads: every linearizable read sees the put acknowledged before it, ' +
  'whichever thread serves either, at the read point the Raft node shares', async (t) => {
  const shared = async () =>
    metricValue(await metrics(), 'myetcd_linearizable_reads_total{read_point="shared"}') ?? 0;
  const asked = async () =>
    metricValue(await metrics(), 'myetcd_linearizable_reads_total{read_point="read_index"}') ?? 0;
  const [shared0, asked0] = [await shared(), await asked()];
  let reads = 0;
  const before = await perGateway('myetcd_gateway_requests_total');
  await until(async () => {
    for (let i = 0; i < 10; i++) {
      // Each post is a connection of its own: the put and the read land on either thread.
      const p = await post(`${srv.url}/v3/kv/put`, { key: b64('gw-lin'), value: b64(`${reads}`) });
      t.is(p.status, 200);
      const r = await post(`${srv.url}/v3/kv/range`, { key: b64('gw-lin') });
      t.is(r.status, 200);
      t.is(r.json.kvs[0].mod_revision, p.json.header.revision, `read ${reads}`);
      t.is(unb64(r.json.kvs[0].value), `${reads}`);
      reads++;
    }
    const now = await perGateway('myetcd_gateway_requests_total');
    return now.every((n, i) => n - before[i]! >= 10);
  }, 'both gateway threads served puts and reads');
  // Every read took the shared point: the member is the only voter.
  t.is(await asked(), asked0);
  t.true(await shared() - shared0 >= reads, `${await shared() - shared0} shared for ${reads}`);
});

test.serial('gateway threads: a watch on one thread sees a put made through another, and ' +
  'all watches end with "server stopped" on SIGTERM', async (t) => {
  const watches: LineStream[] = [];
  try {
    // Open watch streams, one connection each, until both threads hold one.
    await until(async () => {
      const s = new LineStream(srv.url, '/v3/watch');
      watches.push(s);
      s.send({ create_request: { key: b64('gw-watch/k') } });
      t.true((await s.result()).created);
      s.end(); // no more requests: the response stays open, uWS's body timeout does not apply
      return (await perGateway('myetcd_gateway_watch_streams')).every((n) => n > 0);
    }, 'a watch stream on each gateway thread');
    const p = await post(`${srv.url}/v3/kv/put`, { key: b64('gw-watch/k'), value: b64('x') });
    t.is(p.status, 200);
    for (const s of watches) {
      const ev = await s.result();
      t.is(unb64(ev.events[0].kv.value), 'x');
      t.is(ev.events[0].kv.mod_revision, p.json.header.revision);
    }
    const stopped = srv.stop();
    for (const s of watches) {
      const last = await s.next();
      t.like(last.error, { grpc_code: 14, message: 'etcdserver: server stopped' });
    }
    const code = await stopped;
    t.is(code, 0, `signal ${srv.proc.signalCode}: ${srv.logs.slice(-8).join('\n')}`);
  } finally {
    for (const s of watches) s.close();
  }
});

test('gateway threads: the shared client port is refused to another member and to a plain ' +
  'listener', async (t) => {
  const other = await startServer({ args: ['--experimental-gateway-threads', '2'] });
  try {
    const port = Number(new URL(other.url).port);
    // A plain (exclusive, no SO_REUSEPORT) listener cannot bind it.
    const probe = net.createServer();
    const err = await new Promise<NodeJS.ErrnoException>((resolve, reject) => {
      probe.once('error', resolve);
      probe.listen({ host: '127.0.0.1', port, exclusive: true }, () => {
        probe.close();
        reject(new Error('bound a port the gateway threads hold'));
      });
    });
    t.is(err.code, 'EADDRINUSE');
    // Nor can another member, whatever its own gateway threads: its exclusive reservation
    // fails first, with the one-line error, before it creates anything.
    const second = spawn(process.execPath, [new URL('../src/main.js', import.meta.url).pathname,
      '--data-dir', `${other.dataDir}-second`, '--listen-client-urls', other.url,
      '--listen-peer-urls', 'http://127.0.0.1:0', '--experimental-gateway-threads', '2'],
    { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    second.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    const code = await new Promise<number | null>((resolve) => second.on('exit', resolve));
    t.is(code, 1);
    t.is(stderr, `myetcd: --listen-client-urls ${other.url}: cannot listen: address already ` +
      'in use (EADDRINUSE); another member or program listens there\n');
    const r = await post(`${other.url}/v3/kv/put`, { key: b64('still'), value: b64('mine') });
    t.is(r.status, 200);
  } finally {
    await other.shutdown();
  }
});

test('gateway threads: the default is sized to the cores; the flag, the environment and ' +
  'client-cert-auth decide otherwise', (t) => {
  const cfg = (argv: string[], env: NodeJS.ProcessEnv = {}) => loadConfig(argv, env);
  t.is(cfg([]).gatewayThreads, 0);
  t.is(gatewayThreadsFor(cfg([]), 2), 1);
  t.is(gatewayThreadsFor(cfg([]), 4), 2);
  t.is(gatewayThreadsFor(cfg([]), 64), 4);
  t.is(gatewayThreadsFor(cfg(['--experimental-gateway-threads', '3']), 2), 3);
  t.is(gatewayThreadsFor(cfg([], { MYETCD_EXPERIMENTAL_GATEWAY_THREADS: '2' }), 2), 2);
  t.is(gatewayThreadsFor(cfg(['--experimental-gateway-threads', '1']), 64), 1);
  t.throws(() => cfg(['--experimental-gateway-threads', '17']));
  t.is(gatewayThreadsFor(cfg(['--experimental-gateway-threads', '2', '--listen-client-urls',
    'https://127.0.0.1:2379', '--client-cert-auth', '--trusted-ca-file', '/ca.pem',
    '--cert-file', '/c.pem', '--key-file', '/k.pem']), 8), 1);
});
