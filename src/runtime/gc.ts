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
import { performance } from 'node:perf_hooks';
import { getHeapSpaceStatistics, getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import {
  idleCompactGapMs, idleGcBusyMax, idleGcCheckMs, idleGcGrowthBytes, idleGcLiveBytesMax,
  idleShrinkAfterChecks, idleShrinkCollectionsMax, idleShrinkNewSpaceBytes,
} from '../constants.js';

/** gcAfterGrowthDelayMs: after a store replaces columns or an arena, the collection waits
 * this long, so that a burst of writes replacing several pays one collection. */
export const gcAfterGrowthDelayMs = 1_000;

/** gcAfterDroppedBytesMin: the buffers a store replaced must add up to this much before a full
 * collection is queued for them. Smaller ones are left to V8, which starts a collection of its
 * own once external memory has grown by 64 MiB. A small store that rewrote its value arena
 * every few thousand writes queued a full collection each time: four in five seconds of PUTs
 * to one key, 8–21 ms each on the Raft thread (docs/performance.md, "Session 11"). */
export const gcAfterDroppedBytesMin = 32 * 1024 * 1024;

/**
 * DroppedBytesWatch decides when what a store dropped is worth a full collection: `notice`
 * takes the store's running total of replaced bytes (droppedBytes) and queues one collection
 * once gcAfterDroppedBytesMin more have been dropped since the last one it queued.
 */
export class DroppedBytesWatch {
  private counted = 0;
  constructor(private readonly queue: (delayMs: number) => void) {}

  /** notice looks at the store's total of dropped bytes. A total below the last one counted is
   * a new store's (a restore replaced it), which counts from zero. */
  notice(droppedTotal: number): void {
    if (droppedTotal < this.counted) this.counted = 0;
    if (droppedTotal - this.counted < gcAfterDroppedBytesMin) return;
    this.counted = droppedTotal;
    this.queue(gcAfterGrowthDelayMs);
  }
}

let gcFn: (() => void) | null | undefined;
let queued = false;

/** gcFunction is V8's gc function of this thread (null when it cannot be had). */
export function gcFunction(): (() => void) | null {
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

/** collections counts the collections collectGarbageSoon ran on this thread. */
let collections = 0;

/** collectGarbageSoon queues one full garbage collection of this thread's heap. */
export function collectGarbageSoon(delayMs = 0): void {
  if (queued) return;
  queued = true;
  setTimeout(() => {
    queued = false;
    const gc = gcFunction();
    if (gc === null) return;
    gc();
    collections++;
  }, delayMs).unref();
}

/** collectIdleGarbageSoon is collectGarbageSoon for an idle thread after a key repack's pass:
 * a second full collection follows the first by idleCompactGapMs, which returns the pages the
 * first left committed (idleCompactGapMs). */
export function collectIdleGarbageSoon(): void {
  collectGarbageSoon();
  setTimeout(() => collectGarbageSoon(), idleCompactGapMs).unref();
}

/** collectionsTotal is the number of collections collectGarbageSoon ran on this thread. */
export function collectionsTotal(): number {
  return collections;
}

/** IdleHeap is what the idle collector knows of its thread at one check. */
export interface IdleHeap {
  /** heapUsed: V8's used heap size now (live and dead objects alike). */
  heapUsed: number;
  /** liveAfterGc: the used heap size right after the last full collection it ran (or when it
   * started): the live heap as last measured. */
  liveAfterGc: number;
  /** busy: the thread's event-loop utilisation since the previous check (0..1). */
  busy: number;
}

/** shouldCollectIdle decides one check: collect when the thread is idle, its heap grew by
 * idleGcGrowthBytes since its last full collection, and its live heap is small enough for the
 * pause to be short. */
export function shouldCollectIdle(h: IdleHeap): boolean {
  return h.busy < idleGcBusyMax && h.liveAfterGc <= idleGcLiveBytesMax &&
    h.heapUsed - h.liveAfterGc >= idleGcGrowthBytes;
}

/** IdleYoung is what the idle collector knows of its thread's young generation at one check. */
export interface IdleYoung {
  /** idleChecks: the checks in a row, this one included, that found the thread idle. */
  idleChecks: number;
  /** budget: the collections still allowed for shrinking since the thread was last busy. */
  budget: number;
  /** newSpace: the young generation's size now (V8's new space, both semi-spaces). */
  newSpace: number;
  /** liveAfterGc: as in IdleHeap. */
  liveAfterGc: number;
}

/**
 * shouldShrinkIdle decides whether an idle thread runs one more full collection to give back
 * its young generation. V8 grows a thread's new space under allocation (the gateway's to 32
 * MiB in a burst of writes) and shrinks it only in a collection that finds the allocation
 * rate of the last seconds low; a thread that stops allocating runs no collection, so the
 * space stays committed. A collection a second while the thread stays idle lets V8 see the
 * low rate (measured: the sixth or seventh gives the gateway's 32 MiB back, RSS −31 MiB).
 * Bounded: only past idleShrinkNewSpaceBytes, after idleShrinkAfterChecks idle checks, and at
 * most idleShrinkCollectionsMax collections each time the thread has been busy.
 */
export function shouldShrinkIdle(y: IdleYoung): boolean {
  return y.idleChecks >= idleShrinkAfterChecks && y.budget > 0 &&
    y.newSpace > idleShrinkNewSpaceBytes && y.liveAfterGc <= idleGcLiveBytesMax;
}

/** newSpaceBytes is this thread's young generation's size (0 if V8 does not name it). */
function newSpaceBytes(): number {
  return getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0;
}

let idleTimer: NodeJS.Timeout | undefined;
/** idleCollections counts the collections the idle collector ran on this thread (both kinds:
 * for a grown heap and for a grown young generation). */
let idleCollections = 0;

/** startIdleCollector makes this thread run one full collection when it goes idle after its
 * heap grew (shouldCollectIdle), so that a burst's dead objects do not stay resident: V8 runs
 * no collection on a thread that stops allocating. Once per thread; idempotent. */
export function startIdleCollector(): void {
  if (idleTimer !== undefined) return;
  let liveAfterGc = getHeapStatistics().used_heap_size;
  let elu = performance.eventLoopUtilization();
  let idleChecks = 0;
  let budget = 0;
  idleTimer = setInterval(() => {
    const now = performance.eventLoopUtilization();
    const busy = performance.eventLoopUtilization(now, elu).utilization;
    elu = now;
    const idle = busy < idleGcBusyMax;
    idleChecks = idle ? idleChecks + 1 : 0;
    if (!idle) budget = idleShrinkCollectionsMax;
    const heapUsed = getHeapStatistics().used_heap_size;
    // A collection V8 ran on its own may have found the heap smaller: that is the live heap.
    liveAfterGc = Math.min(liveAfterGc, heapUsed);
    const grown = shouldCollectIdle({ heapUsed, liveAfterGc, busy });
    if (!grown &&
      !shouldShrinkIdle({ idleChecks, budget, newSpace: newSpaceBytes(), liveAfterGc })) return;
    const gc = gcFunction();
    if (gc === null) return;
    gc();
    if (!grown) budget--;
    idleCollections++;
    liveAfterGc = getHeapStatistics().used_heap_size;
  }, idleGcCheckMs).unref();
}

/** idleCollectionsTotal is the number of collections startIdleCollector ran on this thread. */
export function idleCollectionsTotal(): number {
  return idleCollections;
}
