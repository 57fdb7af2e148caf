/**
 * heap-sampling: a preload that records where one thread of a member allocates, with V8's
 * sampling heap profiler, keeping the objects later collected (which a plain sampling profile
 * drops): with BENCH_HEAP_MINOR=0 only those a full collection freed. Mind that a full
 * collection also frees the young generation's dead objects: besides what outlived the young
 * generation (the garbage that costs promotion and full GCs), that count holds up to a young
 * generation's worth of short-lived garbage per full GC, in proportion to where the thread
 * allocates most (`--trace-gc-nvp`'s promoted= is the amount that was promoted). It starts
 * BENCH_HEAP_DELAY_S seconds after the thread starts (3), records BENCH_HEAP_SECONDS (6) and
 * writes the profile to BENCH_HEAP_OUT; `node dist/bench/heap-sampling.js PROFILE` prints the
 * top allocation sites (self size, four frames each).
 *
 *   BENCH_HEAP_THREAD=gateway BENCH_HEAP_OUT=/tmp/h.json \
 *     node --import ./dist/bench/heap-sampling.js dist/src/main.js --data-dir D   (load it)
 *   node dist/bench/heap-sampling.js /tmp/h.json [top=25]
 *
 * BENCH_HEAP_THREAD names the actor (gateway is the main thread; raft, wal, shard-0, …).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { isMainThread, workerData } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';

interface CallFrame { functionName: string; url: string; lineNumber: number }
interface ProfileNode { id: number; callFrame: CallFrame; children?: ProfileNode[] }
interface Profile { head: ProfileNode; samples: { size: number; nodeId: number }[] }

const env = process.env;
const self = isMainThread ? 'gateway' : (workerData as { name?: string } | null)?.name;
const asMain = process.argv[1] !== undefined &&
  fileURLToPath(import.meta.url) === process.argv[1];

/** record samples this thread's heap for a while and writes the profile. */
function record(): void {
  const s = new Session();
  s.connect();
  const post = (method: string, params?: object): Promise<unknown> =>
    new Promise((resolve, reject) => s.post(method, params ?? {},
      (e: Error | null, r?: unknown) => (e !== null ? reject(e) : resolve(r))));
  setTimeout(() => {
    void (async () => {
      await post('HeapProfiler.enable');
      await post('HeapProfiler.startSampling', {
        samplingInterval: 4096, includeObjectsCollectedByMajorGC: true,
        includeObjectsCollectedByMinorGC: env['BENCH_HEAP_MINOR'] === '1',
      });
      setTimeout(() => {
        void post('HeapProfiler.stopSampling').then((r) => {
          writeFileSync(env['BENCH_HEAP_OUT'] ?? 'heap.json',
            JSON.stringify((r as { profile: Profile }).profile));
          process.stderr.write(`heap-sampling: wrote the profile of ${self}\n`);
        });
      }, Number(env['BENCH_HEAP_SECONDS'] ?? 6) * 1000).unref();
    })();
  }, Number(env['BENCH_HEAP_DELAY_S'] ?? 3) * 1000).unref();
}

/** summarize prints the allocation sites of a profile, largest first. */
function summarize(path: string, top: number): void {
  const p = JSON.parse(readFileSync(path, 'utf8')) as Profile;
  const stacks = new Map<number, string[]>();
  const walk = (n: ProfileNode, stack: string[]): void => {
    const f = n.callFrame;
    const here = [...stack, `${f.functionName || '(anon)'} ${f.url.split('/').pop()}:` +
      `${f.lineNumber + 1}`];
    stacks.set(n.id, here);
    for (const c of n.children ?? []) walk(c, here);
  };
  walk(p.head, []);
  const bySite = new Map<string, number>();
  let total = 0;
  for (const s of p.samples) {
    const site = stacks.get(s.nodeId)!.slice(-4).reverse().join(' < ');
    bySite.set(site, (bySite.get(site) ?? 0) + s.size);
    total += s.size;
  }
  console.log(`total ${(total / 2 ** 20).toFixed(1)} MiB sampled`);
  for (const [site, bytes] of [...bySite].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`${(bytes / 2 ** 20).toFixed(1).padStart(8)} MiB  ${site}`);
  }
}

if (asMain) summarize(process.argv[2]!, Number(process.argv[3] ?? 25));
else if (self === (env['BENCH_HEAP_THREAD'] ?? 'gateway')) record();
