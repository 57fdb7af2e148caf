import test from 'ava';
import { EnvelopeKind, packBatch, unpackBatch } from '../src/runtime/codec.js';
import { Endpoint, type Transport } from '../src/runtime/endpoint.js';
import { ActorSystem } from '../src/runtime/system.js';
import type { SpanRecord } from '../src/runtime/trace.js';

// Request tracing through the actor runtime (issue 16, src/runtime/trace.ts): on real worker
// threads, a traced ask yields one span per hop, parented hop by hop; untraced, the encoded
// messages carry no trace field at all (the deterministic form of "no overhead when off").

type EchoMsg =
  | { type: 'Echo'; v: number }
  | { type: 'Forward'; v: number; to: string };
interface EchoReplies {
  Echo: { v: number; by: string };
  Forward: { v: number; by: string };
}

const echoUrl = new URL('./actors/echo.js', import.meta.url);
const quiet = { info() {}, warn() {}, error() {} };

function system(): ActorSystem {
  return new ActorSystem([
    { name: 'a', url: echoUrl, config: {}, connects: ['b'] },
    { name: 'b', url: echoUrl, config: {}, connects: ['a'] },
  ], { logger: quiet, onFatal: () => undefined });
}

async function spansOf(sys: ActorSystem, traceId: string): Promise<SpanRecord[]> {
  const out: SpanRecord[] = [];
  for (const r of (await sys.actorTraces()).values()) {
    out.push(...r.spans.filter((s) => s.traceId === traceId));
  }
  return out;
}

/** capture is a Transport that keeps what the endpoint posts. */
function capture(): Transport & { posted: Uint8Array[] } {
  const posted: Uint8Array[] = [];
  return { posted, post: (b) => posted.push(b), onBatch: () => undefined, close: () => undefined };
}

test('trace: a traced ask across two threads yields a span per hop, each under the one before',
  async (t) => {
    const sys = system();
    await sys.start();
    try {
      const gw = sys.gateway;
      const root = gw.startSpan('test request', [])!;
      const traceId = root.refs[0]![0];
      const a = gw.ref<EchoMsg, EchoReplies>('a');
      const r = await gw.withTrace(root.refs, () => a.ask({ type: 'Forward', v: 1, to: 'b' }));
      root.end();
      t.deepEqual(r, { v: 2, by: 'b', gen: 1 } as unknown as typeof r);
      const spans = await spansOf(sys, traceId);
      const byName = (n: string) => spans.find((s) => s.name === n);
      const rootSpan = byName('test request')!;
      const fwd = byName('Forward')!;
      const echo = byName('Echo')!;
      const back = byName('Forward reply')!;
      t.truthy(rootSpan && fwd && echo && back, JSON.stringify(spans.map((s) => s.name)));
      t.is(rootSpan.parentSpanId, undefined);
      t.is(rootSpan.attributes['thread'], 'main');
      t.is(fwd.parentSpanId, rootSpan.spanId);
      t.is(fwd.attributes['thread'], 'myetcd-a');
      t.is(fwd.attributes['forwarded'], 'b');
      t.is(echo.parentSpanId, fwd.spanId);
      t.is(echo.attributes['thread'], 'myetcd-b');
      t.is(echo.attributes['message.type'], 'Echo');
      // b answered the gateway directly: the reply's span hangs under b's span.
      t.is(back.parentSpanId, echo.spanId);
      t.is(back.attributes['thread'], 'main');
      for (const s of [fwd, echo, back]) {
        t.true(typeof s.attributes['queue.wait_ms'] === 'number' &&
          s.attributes['queue.wait_ms'] >= 0, `${s.name} has a queue wait`);
        t.true(typeof s.attributes['handle_ms'] === 'number', `${s.name} has a handling time`);
        t.true((s.attributes['batch.size'] as number) >= 1, `${s.name} has a batch size`);
        t.true(s.endMs >= s.startMs);
      }
      // Causality on one clock: a hop starts after the one that sent it.
      t.true(fwd.startMs >= rootSpan.startMs && echo.startMs >= fwd.startMs);
      t.true(back.startMs >= echo.startMs && rootSpan.endMs >= back.startMs);
    } finally {
      await sys.stop();
    }
  });

test('trace: asks traced by different requests in one batch each get their own span', async (t) => {
  const sys = system();
  await sys.start();
  try {
    const gw = sys.gateway;
    const a = gw.ref<EchoMsg, EchoReplies>('a');
    const roots = [1, 2, 3].map(() => gw.startSpan('req', [])!);
    // Three traced asks and one untraced, in one turn: one batch to thread a.
    await Promise.all([
      ...roots.map((r, v) => gw.withTrace(r.refs, () => a.ask({ type: 'Echo', v }))),
      a.ask({ type: 'Echo', v: 9 }),
    ]);
    for (const r of roots) r.end();
    for (const r of roots) {
      const spans = await spansOf(sys, r.refs[0]![0]);
      const echo = spans.filter((s) => s.name === 'Echo');
      t.is(echo.length, 1, 'one Echo span per traced request');
      t.is(echo[0]!.parentSpanId, r.refs[0]![1]);
      t.is(echo[0]!.attributes['batch.size'], 4, 'all four asks crossed in one batch');
    }
  } finally {
    await sys.stop();
  }
});

test('trace: untraced messages are encoded with no trace field, byte for byte as before', (t) => {
  const ep = new Endpoint('x');
  const tr = capture();
  ep.connect('y', tr);
  ep.ref<EchoMsg, EchoReplies>('y').send({ type: 'Echo', v: 1 });
  void ep.ask('y', { type: 'Echo', v: 2 } as EchoMsg).catch(() => undefined);
  ep.reply({ from: 'y', id: 7 }, { v: 3 });
  ep.flushNow();
  t.is(tr.posted.length, 1);
  const batch = unpackBatch(tr.posted[0]!);
  t.deepEqual(batch.map((e) => e.length), [4, 4, 4]);
  // The same bytes as the four-element envelopes the runtime sent before tracing existed.
  t.deepEqual([...tr.posted[0]!], [...packBatch([
    [EnvelopeKind.Send, 0, '', { type: 'Echo', v: 1 }],
    [EnvelopeKind.Ask, 1, 'x', { type: 'Echo', v: 2 }],
    [EnvelopeKind.Reply, 7, 'x', { v: 3 }],
  ])]);
  t.deepEqual(ep.tracer.report().spans, [], 'nothing was recorded');
  ep.close();
});

test('trace: a traced message carries its post time and parents, and only it', (t) => {
  const ep = new Endpoint('x');
  const tr = capture();
  ep.connect('y', tr);
  const y = ep.ref<EchoMsg, EchoReplies>('y');
  const root = ep.startSpan('r', [])!;
  ep.withTrace(root.refs, () => y.send({ type: 'Echo', v: 1 }));
  y.send({ type: 'Echo', v: 2 });
  ep.flushNow();
  const [traced, plain] = unpackBatch(tr.posted[0]!);
  t.is(traced!.length, 5);
  const [at, parents] = traced![4]!;
  t.true(typeof at === 'number' && at > 0);
  t.deepEqual(parents, root.refs);
  t.is(plain!.length, 4, 'the context ended with withTrace');
  t.is(ep.startSpan('s', undefined), undefined, 'no span without a context');
  ep.close();
});

test('trace: withTraceAcrossAwaits keeps the context across awaits and ends it when fn settles',
  async (t) => {
    const ep = new Endpoint('x');
    const tr = capture();
    ep.connect('y', tr);
    const y = ep.ref<EchoMsg, EchoReplies>('y');
    const root = ep.startSpan('r', [])!;
    let resume!: () => void;
    const gate = new Promise<void>((r) => { resume = r; });
    const run = ep.withTraceAcrossAwaits(root.refs, async () => {
      await gate;
      y.send({ type: 'Echo', v: 1 });
    });
    t.is(ep.traceContext, undefined, 'outside the run, nothing is active');
    resume();
    await run;
    y.send({ type: 'Echo', v: 2 });
    t.is(ep.traceContext, undefined, 'the run settled: its context is gone');
    ep.flushNow();
    const [traced, plain] = unpackBatch(tr.posted[0]!);
    t.deepEqual(traced![4]![1], root.refs, 'the post after the await continues the trace');
    t.is(plain!.length, 4);
    await t.throwsAsync(ep.withTraceAcrossAwaits(root.refs, async () => {
      throw new Error('boom');
    }), { message: 'boom' });
    t.is(ep.traceContext, undefined, 'a rejected run ends its context too');
    ep.close();
  });
