/**
 * store-memory: `npm run bench:store` — what the MVCC store alone costs per key, without
 * threads, HTTP or the WAL. It writes N keys (100-byte values, 128-put txns, as the restart
 * workload of bench/run.ts) through an Applier into one ShardStore, then reports, after a full
 * GC, the V8 heap and the off-heap bytes (ArrayBuffers) held, per key; then the time to dump
 * the shard (toSnapshot + msgpack) and to load it back (shard + applier), as a restart does.
 *
 *   node --expose-gc dist/bench/store-memory.js [keys=1000000] [value bytes=100] [shuffled]
 *
 * With `shuffled`, the keys are written in a random order (a fixed seed) instead of ascending:
 * a dump must then put them in order itself (docs/performance.md, session 7).
 */
import { performance } from 'node:perf_hooks';
import { Applier, decodeShardSnapshot, ShardStore } from '../src/mvcc/index.js';
import { pack, unpack } from '../src/runtime/codec.js';
import type { Revision } from '../src/types.js';

const keys = Number(process.argv[2] ?? 1_000_000);
const valueBytes = Number(process.argv[3] ?? 100);
const shuffled = process.argv[4] === 'shuffled';
/** keyNo maps the j-th key written to its number: j, or a fixed shuffle of 0..keys-1. */
const keyNo = Int32Array.from({ length: keys }, (_, j) => j);
if (shuffled) {
  let seed = 12345;
  for (let i = keys - 1; i > 0; i--) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    const j = seed % (i + 1);
    [keyNo[i], keyNo[j]] = [keyNo[j]!, keyNo[i]!];
  }
}
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with node --expose-gc');

/** measure reads the heap and the off-heap bytes after a full GC. V8 does not count resizable
 * ArrayBuffers (the stores' columns, arenas and change logs) in process.memoryUsage(), so
 * the stores' own accounting of them (by capacity) is added to the ArrayBuffers it counts. */
function measure(): { heap: number; offHeap: number } {
  gc!();
  gc!();
  const m = process.memoryUsage();
  const columns = (applier?.memoryBytes() ?? 0) + (shard?.offHeapBytes() ?? 0);
  return { heap: m.heapUsed, offHeap: m.arrayBuffers + columns };
}

/** cpuMs is this process's user + system CPU time: on a shared machine the wall clock
 * measures the neighbours as much as the code. */
const cpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const mib = (n: number): string => `${(n / 2 ** 20).toFixed(1)} MiB`;
const perKey = (n: number): string => `${(n / keys).toFixed(0)} B/key`;

let applier: Applier | undefined;
let shard: ShardStore | undefined;
const before = measure();
applier = new Applier();
shard = new ShardStore();
const value = 'x'.repeat(valueBytes);
const t0 = performance.now();
const c0 = cpuMs();
for (let i = 0; i < keys; i += 128) {
  const success = [];
  for (let j = i; j < Math.min(keys, i + 128); j++) {
    success.push({ type: 'put' as const, key: `bench/restart/${String(keyNo[j]).padStart(8, '0')}`,
      value });
  }
  const r = applier.execute({ type: 'txn', compare: [], success, failure: [] });
  shard.apply(r.revision, r.changes);
}
const writeMs = performance.now() - t0;
const writeCpuMs = cpuMs() - c0;
const after = measure();
const heap = after.heap - before.heap;
const offHeap = after.offHeap - before.offHeap;
console.log(`${keys} keys written in ${(writeMs / 1000).toFixed(1)} s wall, ` +
  `${(writeCpuMs / 1000).toFixed(1)} s CPU (${(writeCpuMs * 1000 / keys).toFixed(2)} µs/key ` +
  'of CPU, applier + shard)');
console.log(`applier + shard: heap ${mib(heap)} (${perKey(heap)}), off-heap ${mib(offHeap)} ` +
  `(${perKey(offHeap)}), total ${perKey(heap + offHeap)}`);
const m = (shard as { memory?: () => object }).memory?.();
if (m !== undefined) console.log('shard.memory():', JSON.stringify(m));

const t1 = cpuMs();
const dump = pack(shard.toSnapshot());
const dumpMs = cpuMs() - t1;
const t2 = cpuMs();
const revision = applier.revision;
shard = ShardStore.fromSnapshot(unpack(dump));
const shardMs = cpuMs() - t2;
const t3 = cpuMs();
const fromColumns = (Applier as { fromSnapshotColumns?: typeof Applier.fromSnapshotColumns })
  .fromSnapshotColumns;
applier = fromColumns !== undefined
  ? fromColumns([decodeShardSnapshot(unpack(dump))], revision, 0 as Revision, [])
  : Applier.fromLatest([...shard.latest()], revision, 0 as Revision, []);
const applierMs = cpuMs() - t3;
console.log(`dump ${mib(dump.length)} in ${dumpMs.toFixed(0)} ms of CPU; load: shard ` +
  `${shardMs.toFixed(0)} ms, applier ${applierMs.toFixed(0)} ms of CPU (GC included)`);
const loaded = measure();
console.log(`after reload: heap ${perKey(loaded.heap - before.heap)}, off-heap ` +
  `${perKey(loaded.offHeap - before.offHeap)} (dump bytes included until collected: ` +
  `${perKey(dump.length)})`);
if (applier.keyCount() !== keys) throw new Error(`applier has ${applier.keyCount()} keys`);

// The WAL tail a restart replays after loading the snapshot: up to snapshotBytesMax (32 MiB)
// of entries, here 1,800 txns of 128 puts to existing keys (≈ 230,000 puts, as in the restart
// workload of bench/run.ts), applied by the reloaded applier and shard.
const replayTxns = Math.min(1_800, Math.floor(keys / 128));
const t4 = cpuMs();
for (let t = 0; t < replayTxns; t++) {
  const success = [];
  for (let j = t * 128; j < (t + 1) * 128; j++) {
    success.push({ type: 'put' as const, key: `bench/restart/${String(keyNo[j]).padStart(8, '0')}`,
      value });
  }
  const r = applier.execute({ type: 'txn', compare: [], success, failure: [] });
  shard.apply(r.revision, r.changes);
}
console.log(`replay of ${replayTxns} txns of 128 puts after the reload: ` +
  `${(cpuMs() - t4).toFixed(0)} ms of CPU (applier + shard)`);
