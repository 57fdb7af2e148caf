/**
 * gc: an actor thread's way to return large dead ArrayBuffers to the system. V8 frees an
 * ArrayBuffer's backing store only when a garbage collection finds it dead, and a thread whose
 * JS heap barely grows runs none for a long time: after a snapshot (a shard's 100+ MiB dump,
 * the Raft thread's packed body, the WAL writer's copy) or a recovery (the WAL files read
 * whole), hundreds of MiB stayed resident as garbage with a million keys (docs/performance.md,
 * "Memory and restart, measured per thread"). collectGarbageSoon runs one full collection of
 * this thread's heap on a later turn (when the caller's locals are gone), at most one queued
 * at a time. It needs V8's gc function, which is exposed to contexts created after the
 * --expose-gc flag is set; without it, it does nothing.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** gcAfterGrowthDelayMs: after columns grow, the collection waits this long, so that a burst
 * of writes growing several columns pays one collection. */
export const gcAfterGrowthDelayMs = 1_000;

let gcFn: (() => void) | null | undefined;
let queued = false;

function gcFunction(): (() => void) | null {
  if (gcFn === undefined) {
    try {
      setFlagsFromString('--expose-gc');
      gcFn = runInNewContext('gc') as () => void;
    } catch {
      gcFn = null;
    }
  }
  return gcFn;
}

/** collectGarbageSoon queues one full garbage collection of this thread's heap. */
export function collectGarbageSoon(delayMs = 0): void {
  if (queued) return;
  queued = true;
  setTimeout(() => {
    queued = false;
    gcFunction()?.();
  }, delayMs).unref();
}
