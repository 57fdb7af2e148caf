import test from 'ava';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadConfig } from '../src/config/index.js';
import { ConfigError } from '../src/config/errors.js';
import type { TraceJson, TraceSpanJson } from '../src/gateway/trace-routes.js';
import { startRequestTrace } from '../src/gateway/request-trace.js';
import { Endpoint } from '../src/runtime/endpoint.js';
import { startServer, type TestServer, waitForSpans } from './helpers/server.js';
import { until } from './helpers/wait.js';

// Request tracing on a real server (issue 16): a traced PUT and a traced GET show every hop
// across the actor threads with their parents; untraced requests record nothing; the spans
// reach an OTLP/HTTP receiver through the official OpenTelemetry exporter.

/** OtlpSpan is a span as OTLP/JSON carries it. */
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes: { key: string; value: Record<string, unknown> }[];
}
interface OtlpBody {
  resourceSpans: {
    resource: { attributes: { key: string; value: { stringValue?: string } }[] };
    scopeSpans: { scope: { name: string }; spans: OtlpSpan[] }[];
  }[];
}

let srv: TestServer;
let receiver: http.Server;
const received: { contentType: string; body: OtlpBody }[] = [];

test.before(async () => {
  // A small OTLP/HTTP receiver: accepts POST /v1/traces and keeps what it decodes.
  receiver = http.createServer((req, res) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => {
      text += d;
    });
    req.on('end', () => {
      if (req.method === 'POST' && req.url === '/v1/traces') {
        received.push({ contentType: req.headers['content-type'] ?? '',
          body: JSON.parse(text) as OtlpBody });
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      } else {
        res.writeHead(404).end();
      }
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  const port = (receiver.address() as AddressInfo).port;
  srv = await startServer({
    args: ['--otlp-endpoint', `http://127.0.0.1:${port}/v1/traces`],
  });
});

test.after.always(async () => {
  await srv?.shutdown();
  await new Promise((r) => receiver?.close(r));
});

async function request(method: string, path: string, body?: string,
  traced = true): Promise<{ status: number; traceId: string | null; text: string }> {
  const r = await fetch(srv.url + path, {
    method, body, headers: traced ? { 'x-myetcd-trace': '1' } : {},
  });
  return { status: r.status, traceId: r.headers.get('x-myetcd-trace-id'), text: await r.text() };
}

function one(t: TraceJson, name: string): TraceSpanJson {
  const s = t.spans.find((x) => x.name === name);
  if (s === undefined) throw new Error(`no span ${name} in ${t.spans.map((x) => x.name)}`);
  return s;
}

test.serial('a traced PUT shows its hops: gateway → raft → wal (fsync) → raft apply → shard → ' +
  'watch → gateway, each under the one that caused it', async (t) => {
  // A watcher on the key, so that the change also travels to the watch hub and back.
  const ac = new AbortController();
  const watch = await fetch(`${srv.url}/v1/watch?key=traced%2F&prefix=true`,
    { signal: ac.signal });
  t.teardown(() => ac.abort());
  const reader = watch.body!.getReader();
  let seen = '';
  const created = (async () => {
    while (!seen.includes('"created":true')) {
      seen += new TextDecoder().decode((await reader.read()).value);
    }
  })();
  await created;
  const r = await request('PUT', '/v1/key/traced/a', JSON.stringify({ value: 'v' }));
  t.is(r.status, 200);
  t.regex(r.traceId ?? '', /^[0-9a-f]{32}$/);
  const tr = await waitForSpans(srv.url, r.traceId!, ['PUT /v1/key/*', 'RaftPropose', 'WalAppend',
    'wal write+fsync', 'raft commit+apply', 'ShardApply', 'WatchChanges', 'WatchEvents',
    'RaftPropose reply']);
  t.log(tr.spans.map((s) => `${s.attributes['actor']} ${s.name} +${s.startMs} ${s.durationMs}ms`)
    .join('\n'));
  const root = one(tr, 'PUT /v1/key/*');
  const propose = one(tr, 'RaftPropose');
  const append = one(tr, 'WalAppend');
  const fsync = one(tr, 'wal write+fsync');
  const apply = one(tr, 'raft commit+apply');
  const shard = one(tr, 'ShardApply');
  const watchHop = one(tr, 'WatchChanges');
  const answer = one(tr, 'RaftPropose reply');
  const events = one(tr, 'WatchEvents');
  t.is(root.parentSpanId, undefined);
  t.is(root.attributes['http.status_code'], 200);
  t.is(propose.parentSpanId, root.spanId);
  t.is(append.parentSpanId, propose.spanId);
  t.is(fsync.parentSpanId, append.spanId);
  t.is(apply.parentSpanId, propose.spanId);
  t.is(shard.parentSpanId, apply.spanId);
  t.is(watchHop.parentSpanId, apply.spanId);
  t.is(answer.parentSpanId, propose.spanId);
  t.is(events.parentSpanId, watchHop.spanId);
  // The gateway's spans are the main thread's, or a gateway thread's when the suite runs with
  // MYETCD_EXPERIMENTAL_GATEWAY_THREADS.
  t.deepEqual([root, propose, append, fsync, apply, shard, watchHop, events, answer]
    .map((s) => String(s.attributes['thread']).replace(/^myetcd-gateway-\d+$/, 'main')),
  ['main', 'myetcd-raft', 'myetcd-wal', 'myetcd-wal', 'myetcd-raft',
    shard.attributes['thread'], 'myetcd-watch', 'main', 'main']);
  t.regex(String(shard.attributes['thread']), /^myetcd-shard-\d$/);
  t.is(fsync.attributes['wal.appends'], 1);
  t.true((fsync.attributes['wal.records'] as number) >= 1);
  for (const s of [propose, append, shard, watchHop, events, answer]) {
    t.is(typeof s.attributes['queue.wait_ms'], 'number', `${s.name}: queue wait`);
    t.is(typeof s.attributes['batch.size'], 'number', `${s.name}: batch size`);
    t.is(typeof s.attributes['handle_ms'], 'number', `${s.name}: handling time`);
  }
  // The fsync happens inside the append, the answer after the fsync, all inside the request.
  t.true(fsync.startMs >= append.startMs && answer.startMs >= fsync.startMs);
  t.true(root.startMs + root.durationMs >= answer.startMs);
  ac.abort();
});

test.serial('a traced GET on a lone member shows the shard read, with no read-index round ' +
  'trip (the Raft node publishes its read point)', async (t) => {
  await request('PUT', '/v1/key/traced/b', JSON.stringify({ value: 'v' }), false);
  const r = await request('GET', '/v1/key/traced/b');
  t.is(r.status, 200);
  const tr = await waitForSpans(srv.url, r.traceId!,
    ['GET /v1/key/*', 'ShardRange', 'ShardRange reply']);
  const root = one(tr, 'GET /v1/key/*');
  const range = one(tr, 'ShardRange');
  t.is(range.parentSpanId, root.spanId);
  t.regex(String(range.attributes['thread']), /^myetcd-shard-\d$/);
  t.false(tr.spans.some((s) => s.name.startsWith('RaftReadIndex')),
    tr.spans.map((s) => s.name).join(', '));
  // (A read-index round trip is traced in a cluster: test/dashboard-cluster.test.ts.)
});

test.serial('untraced requests record nothing and name no trace', async (t) => {
  const before = await fetch(`${srv.url}/debug/traces?limit=200`)
    .then((r) => r.json() as Promise<{ traces: TraceJson[] }>);
  const r1 = await request('PUT', '/v1/key/plain', JSON.stringify({ value: 'v' }), false);
  const r2 = await request('GET', '/v1/key/plain', undefined, false);
  t.is(r1.status, 200);
  t.is(r2.status, 200);
  t.is(r1.traceId, null);
  t.is(r2.traceId, null);
  // Ordered after both: a traced request whose spans are all in once the next line passes.
  const marker = await request('GET', '/v1/key/plain');
  await waitForSpans(srv.url, marker.traceId!, ['ShardRange reply']);
  const after = await fetch(`${srv.url}/debug/traces?limit=200`)
    .then((r) => r.json() as Promise<{ traces: TraceJson[] }>);
  t.deepEqual(after.traces.map((x) => x.traceId).filter((id) => id !== marker.traceId),
    before.traces.map((x) => x.traceId));
});

test.serial('/debug/traces lists newest first and refuses a bad limit with a 400 JSON error',
  async (t) => {
    const a = await request('GET', '/v1/key/plain');
    const b = await request('GET', '/v1/key/plain');
    await waitForSpans(srv.url, b.traceId!, ['ShardRange reply']);
    const j = await fetch(`${srv.url}/debug/traces?limit=2`)
      .then((r) => r.json() as Promise<{ traces: TraceJson[] }>);
    t.deepEqual(j.traces.map((x) => x.traceId), [b.traceId, a.traceId]);
    for (const limit of ['0', 'x', '100000']) {
      const r = await fetch(`${srv.url}/debug/traces?limit=${limit}`);
      t.is(r.status, 400, limit);
      t.regex(((await r.json()) as { error: string }).error, /limit must be an integer/);
    }
  });

test.serial('--otlp-endpoint: the official exporter delivers a traced PUT to an OTLP receiver',
  async (t) => {
    const r = await request('PUT', '/v1/key/traced/otlp', JSON.stringify({ value: 'v' }));
    const id = r.traceId!;
    const spansOf = () => received.flatMap((x) => x.body.resourceSpans.flatMap(
      (rs) => rs.scopeSpans.flatMap((ss) => ss.spans))).filter((s) => s.traceId === id);
    await until(() => ['PUT /v1/key/*', 'RaftPropose', 'wal write+fsync', 'ShardApply']
      .every((n) => spansOf().some((s) => s.name === n)), 'the PUT\'s spans at the receiver');
    t.true(received.every((x) => x.contentType.startsWith('application/json')));
    const spans = spansOf();
    const root = spans.find((s) => s.name === 'PUT /v1/key/*')!;
    const propose = spans.find((s) => s.name === 'RaftPropose')!;
    t.falsy(root.parentSpanId);
    t.is(propose.parentSpanId, root.spanId);
    t.true(BigInt(root.endTimeUnixNano) > BigInt(root.startTimeUnixNano));
    const thread = propose.attributes.find((a) => a.key === 'thread')?.value;
    t.deepEqual(thread, { stringValue: 'myetcd-raft' });
    const rs = received.find((x) => x.body.resourceSpans.some((y) => y.scopeSpans.some(
      (ss) => ss.spans.some((s) => s.traceId === id))))!.body.resourceSpans[0]!;
    t.deepEqual(rs.resource.attributes.find((a) => a.key === 'service.name')?.value,
      { stringValue: 'myetcd' });
    // Each span is exported once, however many pulls it took.
    t.is(new Set(spans.map((s) => s.spanId)).size, spans.length);
  });

test('--trace-sample-rate: 1 traces every request, 0 only those asking; bad values refused',
  (t) => {
    const ep = new Endpoint('gateway');
    const req = (headers: Record<string, string>) => ({ headers }) as never;
    t.truthy(startRequestTrace(ep, req({}), 'get', '/r', 1));
    t.is(startRequestTrace(ep, req({}), 'get', '/r', 0), undefined);
    t.truthy(startRequestTrace(ep, req({ 'x-myetcd-trace': '1' }), 'get', '/r', 0));
    const base = ['--data-dir', '/tmp/x'];
    t.is(loadConfig([...base, '--trace-sample-rate', '0.25'], {}).traceSampleRate, '0.25');
    for (const bad of ['2', '-0.1', 'half', '']) {
      t.throws(() => loadConfig([...base, `--trace-sample-rate=${bad}`], {}),
        { instanceOf: ConfigError }, bad);
    }
    t.throws(() => loadConfig([...base, '--otlp-endpoint', 'ftp://x'], {}),
      { instanceOf: ConfigError, message: /--otlp-endpoint: invalid value/ });
    ep.close();
  });
