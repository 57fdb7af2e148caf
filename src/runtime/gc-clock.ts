import { PerformanceObserver } from 'node:perf_hooks';

/**
 * gc-clock: the time this thread's V8 isolate spent in garbage-collection pauses, from
 * perf_hooks' 'gc' entries (one per collection; the pause on this thread, not the concurrent
 * marking that V8's helper threads do meanwhile — /proc shows that under the unnamed threads).
 * Each thread has its own isolate and heap, so each has its own clock: the runtime starts it
 * in every actor thread (worker.ts) and on the main thread (system.ts), and reports it as
 * `gcSecondsTotal` in the thread's stats (`myetcd_actor_gc_seconds_total`).
 */

let observer: PerformanceObserver | undefined;
let gcMs = 0;

/** startGcClock starts counting this thread's GC pauses (once per thread; idempotent). */
export function startGcClock(): void {
  if (observer !== undefined) return;
  observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcMs += e.duration;
  });
  observer.observe({ entryTypes: ['gc'] });
}

/** gcSecondsTotal is the GC pause time counted on this thread since startGcClock. */
export function gcSecondsTotal(): number {
  return gcMs / 1000;
}
