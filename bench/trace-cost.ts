import { Endpoint, type Transport } from '../src/runtime/endpoint.js';

/**
 * trace-cost: what request tracing costs the actor runtime per message, in one process (two
 * endpoints joined by an in-process transport, so that only the runtime's own work is timed:
 * packing, unpacking, dispatch, and the tracing on top). Rounds of `--burst` asks, answered
 * by the other endpoint, alternate between modes; the median of the rounds is printed.
 *
 *   node dist/bench/trace-cost.js [--rounds 60] [--burst 1000]
 *                                 [--baseline /path/to/old/dist/src/runtime/endpoint.js]
 *
 * Modes: `off` (tracing compiled in, not used — every request of a member that is not
 * traced), `on` (every ask traced: a root span, a span on the receiver, one on the reply),
 * and with --baseline, `baseline`: the same rounds through another build's Endpoint, e.g. the
 * commit before tracing, to compare `off` against code that has no tracing at all.
 * Not a test: nothing is asserted about speed (docs/observability.md has figures).
 */

interface EndpointLike {
  connect(target: string, t: Transport): void;
  onMessage(h: (msg: { type: string; v: number }, token: unknown) => void): void;
  reply(token: unknown, body: unknown): void;
  ask(target: string, msg: { type: string; v: number }): Promise<unknown>;
  close(): void;
}
type EndpointCtor = new (name: string) => EndpointLike;

/** pair joins two endpoints: a batch posted by one is received by the other at once. */
function pair(Ctor: EndpointCtor): { a: EndpointLike; b: EndpointLike } {
  const a = new Ctor('a');
  const b = new Ctor('b');
  const wire = (): [Transport, Transport] => {
    let toA: ((buf: Uint8Array) => void) | undefined;
    let toB: ((buf: Uint8Array) => void) | undefined;
    return [
      { post: (buf) => toB!(buf), onBatch: (cb) => { toA = cb; }, close: () => undefined },
      { post: (buf) => toA!(buf), onBatch: (cb) => { toB = cb; }, close: () => undefined },
    ];
  };
  const [ta, tb] = wire();
  a.connect('b', ta);
  b.connect('a', tb);
  b.onMessage((msg, token) => b.reply(token, { v: msg.v }));
  a.onMessage(() => undefined);
  return { a, b };
}

async function round(a: EndpointLike, burst: number, traced: Endpoint | undefined):
  Promise<number> {
  const t0 = process.hrtime.bigint();
  const asks: Promise<unknown>[] = [];
  for (let i = 0; i < burst; i++) {
    if (traced === undefined) asks.push(a.ask('b', { type: 'Echo', v: i }));
    else {
      const root = traced.startSpan('bench', [])!;
      asks.push(traced.withTrace(root.refs, () => a.ask('b', { type: 'Echo', v: i })));
      root.end();
    }
  }
  await Promise.all(asks);
  return Number(process.hrtime.bigint() - t0) / burst;
}

function median(xs: number[]): number {
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.floor(s.length / 2)]!;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const opt = (name: string, dflt: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1]! : dflt;
  };
  const rounds = Number(opt('rounds', '60'));
  const burst = Number(opt('burst', '1000'));
  const baselinePath = opt('baseline', '');
  const modes: { name: string; a: EndpointLike; traced?: Endpoint }[] = [];
  const off = pair(Endpoint as unknown as EndpointCtor);
  modes.push({ name: 'off', a: off.a });
  const on = pair(Endpoint as unknown as EndpointCtor);
  modes.push({ name: 'on', a: on.a, traced: on.a as unknown as Endpoint });
  if (baselinePath !== '') {
    const mod = await import(baselinePath) as { Endpoint: EndpointCtor };
    modes.push({ name: 'baseline', a: pair(mod.Endpoint).a });
  }
  const times = new Map<string, number[]>(modes.map((m) => [m.name, []]));
  for (let r = 0; r < rounds + 5; r++) {
    for (const m of modes) {
      const ns = await round(m.a, burst, m.traced);
      if (r >= 5) times.get(m.name)!.push(ns); // the first rounds warm the JIT up
    }
  }
  console.log(`ask round trips in one process, ${rounds} rounds of ${burst} (median ns/ask):`);
  for (const m of modes) {
    console.log(`  ${m.name.padEnd(9)} ${median(times.get(m.name)!).toFixed(0)}`);
  }
  for (const m of modes) m.a.close();
}

void main();
