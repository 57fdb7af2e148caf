import test from 'ava';
import { execFile } from 'node:child_process';
import { Worker, type WorkerOptions } from 'node:worker_threads';
import {
  EntryNormal, MemoryStorage, errSnapshotTemporarilyUnavailable, type Entry,
} from '../src/raft/index.js';
import { createMetrics } from '../src/metrics/index.js';
import { actorResourceLimits } from '../src/runtime/system.js';
import {
  DroppedBytesWatch, gcAfterDroppedBytesMin, gcAfterGrowthDelayMs, shouldCollectIdle,
  shouldShrinkIdle,
} from '../src/runtime/gc.js';
import {
  actorSemiSpaceMiB, idleGcBusyMax, idleGcGrowthBytes, idleGcLiveBytesMax,
  idleShrinkAfterChecks, idleShrinkNewSpaceBytes,
} from '../src/constants.js';
import type { Index, MemberId, Term } from '../src/types.js';
import { metricValue as value } from './helpers/metrics.js';

/** firstMessage runs `code` in a worker thread and resolves with the first message it posts
 * (rejects with its error), then ends the thread. */
async function firstMessage<T>(code: string, options: WorkerOptions = {}): Promise<T> {
  const w = new Worker(code, { ...options, eval: true });
  try {
    return await new Promise<T>((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
    });
  } finally {
    await w.terminate();
  }
}

/** churnYoung runs in a worker: it allocates objects of which many outlive a scavenge (as a
 * burst of requests in flight does), which makes V8 grow the young generation to its bound,
 * then reports the thread's memory parts. */
const churnYoung = `
  const { parentPort } = require('node:worker_threads');
  import(${JSON.stringify(new URL('../src/runtime/worker.js', import.meta.url).href)})
    .then(({ threadMemory }) => {
      let kept = [];
      for (let i = 0; i < 2e6; i++) {
        kept.push({ i, s: 'k' + i });
        if (kept.length >= 3e5) kept = [];
      }
      parentPort.postMessage(threadMemory());
    });`;

const cs = () => ({ voters: [1 as MemberId], learners: [] as MemberId[] });
const entry = (index: number, bytes: number): Entry => ({
  term: 1 as Term, index: index as Index, type: EntryNormal, data: new Uint8Array(bytes),
});

test('raft storage: a released snapshot answers "temporarily unavailable" and asks for its ' +
  'data until it is put back; the metadata stays readable', (t) => {
  const s = new MemoryStorage();
  s.append([entry(1, 10), entry(2, 20), entry(3, 30)]);
  const data = new Uint8Array([1, 2, 3, 4]);
  s.createSnapshot(2 as Index, cs(), data);
  t.deepEqual(s.memory(), { entries: 3, entryBytes: 60, snapshotBytes: 4 });
  let wanted = 0;
  s.releaseSnapshotData(() => wanted++);
  t.is(s.memory().snapshotBytes, 0);
  t.throws(() => s.snapshot(), { is: errSnapshotTemporarilyUnavailable });
  t.throws(() => s.snapshot(), { is: errSnapshotTemporarilyUnavailable });
  t.is(wanted, 2);
  t.is(s.snapshotMetadata().index, 2 as Index);
  t.deepEqual(s.snapshotMetadata().confState.voters, [1 as MemberId]);
  // Data of another snapshot is refused; the right one is taken back.
  t.false(s.restoreSnapshotData(1 as Index, data));
  t.true(s.restoreSnapshotData(2 as Index, data));
  t.is(s.snapshot().data, data);
  t.false(s.restoreSnapshotData(2 as Index, data)); // not released any more
  // A new snapshot (taken or installed) is held again until released.
  s.releaseSnapshotData(() => wanted++);
  s.createSnapshot(3 as Index, cs(), new Uint8Array(7));
  t.is(s.snapshot().data.length, 7);
  s.releaseSnapshotData(() => wanted++);
  s.applySnapshot({ data: new Uint8Array(9),
    metadata: { index: 5 as Index, term: 2 as Term, confState: cs() } });
  t.is(s.snapshot().data.length, 9);
  t.is(wanted, 2);
  // Nothing to release before any snapshot.
  const fresh = new MemoryStorage();
  fresh.releaseSnapshotData(() => wanted++);
  t.is(fresh.snapshot().metadata.index, 0 as Index);
});

test('memory accounting: a thread reports its heap, ArrayBuffers and its own parts, and ' +
  '/metrics shows them per actor and part', async (t) => {
  // In a thread of its own: in the test runner's thread, a collection between the two
  // readings could free other ArrayBuffers and hide the held one.
  const held = 8 * 2 ** 20;
  const { before, m } = await firstMessage<Record<'before' | 'm', Record<string, number>>>(`
    const { parentPort } = require('node:worker_threads');
    import(${JSON.stringify(new URL('../src/runtime/worker.js', import.meta.url).href)})
      .then(({ threadMemory }) => {
        const before = threadMemory();
        const held = new Uint8Array(${held});
        held.fill(1);
        const m = threadMemory(() => ({ storeColumns: held.byteLength }));
        parentPort.postMessage({ before, m });
      });`);
  t.true(m['heapUsed']! > 0 && m['heapTotal']! >= m['heapUsed']!);
  // Not the difference of the two readings: the allocation may start a collection that frees
  // the thread's dead buffers. The thread held far less than `held` before it.
  t.true(before['arrayBuffers']! < held / 4, `${before['arrayBuffers']} before`);
  t.true(m['arrayBuffers']! >= held, `${m['arrayBuffers']} after`);
  t.is(m['storeColumns'], held);
  const metrics = createMetrics({ defaultMetrics: false });
  metrics.ingestActorStats('shard-0', {
    messagesIn: 0, messagesOut: 0, batchesIn: 0, batchesOut: 0, handleSecondsTotal: 0,
    depth: {}, memoryBytes: m,
  });
  const { body } = await metrics.render();
  t.is(value(body, 'myetcd_actor_memory_bytes{actor="shard-0",part="storeColumns"}'),
    held);
  t.is(value(body, 'myetcd_actor_memory_bytes{actor="shard-0",part="heapUsed"}'), m['heapUsed']);
});

test('an actor thread\'s young generation stays within two semi-spaces of actorSemiSpaceMiB; ' +
  'V8\'s default lets the same load grow it further', async (t) => {
  const bound = 2 * actorSemiSpaceMiB * 2 ** 20;
  const limited = await firstMessage<Record<string, number>>(churnYoung,
    { resourceLimits: actorResourceLimits() });
  t.true(limited['newSpace']! > 0 && limited['newSpace']! <= bound, `${limited['newSpace']}`);
  const free = await firstMessage<Record<string, number>>(churnYoung);
  t.true(free['newSpace']! > bound, `${free['newSpace']} without the limit`);
});

test('gc: collectGarbageSoon frees a dead ArrayBuffer in a worker thread whose heap is idle',
  async (t) => {
    const code = `
      const { parentPort } = require('node:worker_threads');
      import(${JSON.stringify(new URL('../src/runtime/gc.js', import.meta.url).href)})
        .then(({ collectGarbageSoon }) => {
          let dead = new Uint8Array(64 * 2 ** 20);
          dead.fill(1);
          const live = process.memoryUsage().arrayBuffers;
          dead = undefined;
          collectGarbageSoon();
          // The sweeper frees backing stores after the collection: poll until it has.
          const poll = () => {
            const now = process.memoryUsage().arrayBuffers;
            if (live - now >= 64 * 2 ** 20) parentPort.postMessage({ live, now });
            else setTimeout(poll, 10);
          };
          setTimeout(poll, 0);
        });`;
    const r = await firstMessage<{ live: number; now: number }>(code);
    t.true(r.live - r.now >= 64 * 2 ** 20);
  });

test('gc: after a key repack\'s pass an idle thread runs two full collections, not one',
  async (t) => {
    const code = `
      const { parentPort } = require('node:worker_threads');
      import(${JSON.stringify(new URL('../src/runtime/gc.js', import.meta.url).href)})
        .then(({ collectIdleGarbageSoon, collectionsTotal }) => {
          const before = collectionsTotal();
          collectIdleGarbageSoon();
          const seen = [];
          const poll = () => {
            const n = collectionsTotal() - before;
            if (seen.at(-1) !== n) seen.push(n);
            if (n >= 2) parentPort.postMessage({ seen });
            else setTimeout(poll, 5);
          };
          poll();
        });`;
    const r = await firstMessage<{ seen: number[] }>(code);
    t.is(r.seen.at(-1), 2, `collections seen: ${r.seen.join(', ')}`);
  });

test('gc: the idle collector collects only an idle thread whose heap grew and whose live heap ' +
  'is small', (t) => {
  const grown = { heapUsed: 10 * 2 ** 20 + idleGcGrowthBytes, liveAfterGc: 10 * 2 ** 20, busy: 0 };
  t.true(shouldCollectIdle(grown));
  t.false(shouldCollectIdle({ ...grown, busy: idleGcBusyMax }), 'a busy thread');
  t.false(shouldCollectIdle({ ...grown, heapUsed: grown.heapUsed - 1 }), 'too little growth');
  t.false(shouldCollectIdle({ heapUsed: idleGcLiveBytesMax + 1 + idleGcGrowthBytes,
    liveAfterGc: idleGcLiveBytesMax + 1, busy: 0 }), 'a live heap too large to mark briefly');
  t.true(shouldCollectIdle({ heapUsed: idleGcLiveBytesMax + idleGcGrowthBytes,
    liveAfterGc: idleGcLiveBytesMax, busy: 0 }));
});

test('gc: the idle collector shrinks only an idle thread\'s grown young generation, a few ' +
  'times after each busy spell', (t) => {
  const y = { idleChecks: idleShrinkAfterChecks, budget: 1, newSpace: 32 * 2 ** 20,
    liveAfterGc: 10 * 2 ** 20 };
  t.true(shouldShrinkIdle(y));
  t.false(shouldShrinkIdle({ ...y, idleChecks: idleShrinkAfterChecks - 1 }), 'idle too briefly');
  t.false(shouldShrinkIdle({ ...y, budget: 0 }), 'no collections left since it was busy');
  t.false(shouldShrinkIdle({ ...y, newSpace: idleShrinkNewSpaceBytes }), 'already small');
  t.false(shouldShrinkIdle({ ...y, liveAfterGc: idleGcLiveBytesMax + 1 }), 'a large live heap');
});

test('gc: a thread whose young generation grew in a burst gives it back once idle', async (t) => {
  // Short-lived objects, many surviving one scavenge (requests in flight), over many turns:
  // V8 grows the young generation to its bound and keeps it once the thread stops. In a
  // process of its own with V8's memory reducer off (which may shrink it much later on its
  // own, or not: the gateway's stayed at 32 MiB 12 s after a million writes), so that only
  // the idle collector can be what gives it back.
  const code = `
    import { getHeapSpaceStatistics } from 'node:v8';
    const young = () => getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')
      .space_size;
    const { startIdleCollector } =
      await import(${JSON.stringify(new URL('../src/runtime/gc.js', import.meta.url).href)});
    startIdleCollector();
    let peak = 0;
    const until = Date.now() + 2500;
    while (Date.now() < until) {
      let kept = [];
      for (let i = 0; i < 200000; i++) {
        kept.push({ i, s: 'k' + i });
        if (kept.length > 20000) kept = [];
      }
      peak = Math.max(peak, young());
      await new Promise((r) => setImmediate(r));
    }
    const deadline = Date.now() + 60000;
    const poll = () => {
      const now = young();
      if (now <= ${idleShrinkNewSpaceBytes} || Date.now() > deadline) {
        process.stdout.write(JSON.stringify({ peak, now }));
      } else setTimeout(poll, 100);
    };
    poll();`;
  const out = await new Promise<string>((resolve, reject) => {
    execFile(process.execPath, ['--no-memory-reducer', '--input-type=module', '-e', code],
      { timeout: 120_000 }, (err, stdout) => (err ? reject(err) : resolve(stdout)));
  });
  const r = JSON.parse(out) as { peak: number; now: number };
  t.true(r.peak > idleShrinkNewSpaceBytes, `grown to ${r.peak}`);
  t.true(r.now <= idleShrinkNewSpaceBytes, `young generation ${r.peak} → ${r.now} bytes`);
});

test('gc: a worker thread that went idle after a burst of dead objects collects them itself',
  async (t) => {
    // The burst keeps its objects across several turns, so that they reach the old space (where
    // nothing collects them once the thread stops allocating), then drops them all.
    const code = `
      const { parentPort } = require('node:worker_threads');
      const { getHeapStatistics } = require('node:v8');
      import(${JSON.stringify(new URL('../src/runtime/gc.js', import.meta.url).href)})
        .then(async ({ startIdleCollector, idleCollectionsTotal }) => {
          startIdleCollector();
          let held = [];
          for (let turn = 0; turn < 40; turn++) {
            for (let i = 0; i < 20000; i++) held.push({ k: 'key/' + turn + '/' + i, v: [i, turn] });
            await new Promise((r) => setImmediate(r));
          }
          const peak = getHeapStatistics().used_heap_size;
          held = undefined;
          const poll = () => {
            const now = getHeapStatistics().used_heap_size;
            if (idleCollectionsTotal() > 0) parentPort.postMessage({ peak, now });
            else setTimeout(poll, 100);
          };
          poll();
        });`;
    const r = await firstMessage<{ peak: number; now: number }>(code);
    t.true(r.peak - r.now >= idleGcGrowthBytes / 2, `peak ${r.peak}, after ${r.now}`);
  });

test('gc: the buffers a store dropped queue a collection only once they add up to the minimum',
  (t) => {
    const queued: number[] = [];
    const w = new DroppedBytesWatch((delayMs) => queued.push(delayMs));
    const mib = 1024 * 1024;
    // Small rebuilds (a small store rewriting its arena) add up before anything is queued.
    for (let total = mib; total < gcAfterDroppedBytesMin; total += mib) w.notice(total);
    t.deepEqual(queued, []);
    w.notice(gcAfterDroppedBytesMin);
    t.deepEqual(queued, [gcAfterGrowthDelayMs]);
    // Counting starts again from what was queued: the same total queues nothing more.
    w.notice(gcAfterDroppedBytesMin);
    w.notice(gcAfterDroppedBytesMin + mib);
    t.is(queued.length, 1);
    // One large replacement (a million keys' arena) queues at once.
    w.notice(3 * gcAfterDroppedBytesMin);
    t.is(queued.length, 2);
    // A restored store counts from zero again: its first large drop still queues.
    w.notice(mib);
    t.is(queued.length, 2);
    w.notice(gcAfterDroppedBytesMin + mib);
    t.is(queued.length, 3);
  });
