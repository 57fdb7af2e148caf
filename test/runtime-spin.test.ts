import test from 'ava';
import { EnvelopeKind, packBatch } from '../src/runtime/codec.js';
import {
  Endpoint, idleCoresBetween, parseCpuTimes, type Transport,
} from '../src/runtime/endpoint.js';
import { ActorSystem } from '../src/runtime/system.js';

/** A transport on this thread whose poll hands over a queued batch, and counts its calls. */
class PolledTransport implements Transport {
  posted: Uint8Array[] = [];
  waiting: Uint8Array[] = [];
  polls = 0;
  /** pollsBeforeReady: polls that find nothing before a queued batch is handed over. */
  pollsBeforeReady = 0;
  private cb: ((b: Uint8Array) => void) | undefined;
  post(batch: Uint8Array): void {
    this.posted.push(batch);
  }
  onBatch(cb: (b: Uint8Array) => void): void {
    this.cb = cb;
  }
  poll(): boolean {
    this.polls++;
    if (this.waiting.length === 0 || this.polls <= this.pollsBeforeReady) return false;
    this.cb!(this.waiting.shift()!);
    return true;
  }
  close(): void {}
}

function replyBatch(id: number, body: unknown): Uint8Array {
  return packBatch([[EnvelopeKind.Reply, id, 'y', body]]);
}

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

test('spin: a thread awaiting a reply polls for it, and takes it without sleeping', async (t) => {
  const ep = new Endpoint('x');
  const tr = new PolledTransport();
  ep.connect('y', tr);
  const slots = new Int32Array(new SharedArrayBuffer(4));
  // A budget no test waits out: only the reply ends the spin.
  ep.setSpin(1_000_000, slots, { idle: () => true });
  const answer = ep.ask('y', { type: 'Q' });
  // The reply turns up on the 50th poll, while the thread spins after its turn.
  tr.waiting.push(replyBatch(1, { v: 42 }));
  tr.pollsBeforeReady = 50;
  t.deepEqual(await answer, { v: 42 });
  t.is(tr.posted.length, 1, 'the spin flushed the ask before polling');
  t.is(tr.polls, 51);
  t.is(ep.stats.spinHits, 1);
  t.is(ep.stats.spinMisses, undefined);
  t.is(slots[0], 0, 'the slot is given back');
});

test('spin: it ends after its budget, and never runs without a reply awaited or a free slot',
  async (t) => {
    const ep = new Endpoint('x');
    const tr = new PolledTransport();
    ep.connect('y', tr);
    const slots = new Int32Array(new SharedArrayBuffer(4));
    ep.setSpin(200, slots, { idle: () => machineIdle });
    let machineIdle = true;
    // Only a send: nothing is awaited, so the thread sleeps at once.
    ep.ref<{ type: 'S' }, object>('y').send({ type: 'S' });
    await turn();
    t.is(tr.polls, 0);
    // An ask with no reply coming: one spin of about 200 µs, then a miss.
    const started = performance.now();
    void ep.ask('y', { type: 'Q' }).catch(() => undefined);
    await turn();
    t.true(tr.polls > 0);
    t.true(performance.now() - started >= 0.2);
    t.is(ep.stats.spinMisses, 1);
    t.is(slots[0], 0);
    // Another thread holds the process's one slot: no polling, no spin counted.
    slots[0] = 1;
    const polls = tr.polls;
    void ep.ask('y', { type: 'Q' }).catch(() => undefined);
    await turn();
    t.is(tr.polls, polls);
    t.is(ep.stats.spinMisses, 1);
    t.is(slots[0], 1, 'a refused spin leaves the count as it found it');
    // The machine has no core to spare: no spin either.
    slots[0] = 0;
    machineIdle = false;
    void ep.ask('y', { type: 'Q' }).catch(() => undefined);
    await turn();
    t.is(tr.polls, polls);
    // Budget 0 turns spinning off.
    machineIdle = true;
    ep.setSpin(0, slots);
    void ep.ask('y', { type: 'Q' }).catch(() => undefined);
    await turn();
    t.is(tr.polls, polls);
    ep.close();
  });

test('spin: across real threads, replies taken by spinning arrive whole and in order',
  async (t) => {
    const url = new URL('./actors/echo.js', import.meta.url);
    const sys = new ActorSystem([
      { name: 'a', url, config: {}, connects: ['b'] },
      { name: 'b', url, config: {}, connects: ['a'] },
    ], { logger: { info() {}, warn() {}, error() {} }, onFatal: () => undefined, spinUs: 10_000,
      spinIdleCoresMin: 0 }); // spin however busy the machine is
    await sys.start();
    try {
      const a = sys.gateway.ref<{ type: 'Relay'; v: number; to: string },
        { Relay: { v: number; by: string } }>('a');
      // One at a time, so that actor a awaits b's answer with nothing else to do.
      const got: number[] = [];
      for (let v = 0; v < 200; v++) got.push((await a.ask({ type: 'Relay', v, to: 'b' })).v);
      t.deepEqual(got, Array.from({ length: 200 }, (_, v) => v));
      const stats = await sys.actorStats();
      const st = stats.get('a')!;
      t.true((st.spinHits ?? 0) > 0, `a took no reply by spinning (misses ${st.spinMisses})`);
      t.is(stats.get('b')!.spinHits, undefined, 'b never awaited a reply, so never spun');
    } finally {
      await sys.stop();
    }
  });

test('spin: the machine\'s idle cores are read from /proc/stat\'s text', (t) => {
  const stat = (user: number, idle: number, iowait: number): string =>
    `cpu  ${user} 0 100 ${idle} ${iowait} 0 5 0 0 0\ncpu0 1 2 3 4 5\ncpu1 1 2 3 4 5\nintr 1\n`;
  const a = parseCpuTimes(stat(1000, 5000, 10))!;
  t.deepEqual(a, { total: 6115, idle: 5010, cores: 2 });
  // 100 ticks pass: 30 busy, 60 idle, 10 waiting on the disk: 70 %, 1.4 of 2 cores, idle.
  const b = parseCpuTimes(stat(1030, 5060, 20))!;
  t.is(idleCoresBetween(a, b)!.toFixed(3), '1.400');
  t.is(idleCoresBetween(b, b), undefined, 'no time passed');
  t.is(parseCpuTimes('intr 1 2\n'), undefined);
  t.is(parseCpuTimes('cpu  1 x 3 4 5\n'), undefined);
});
