import { getHeapSpaceStatistics, getHeapStatistics } from 'node:v8';
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { Endpoint, type Message, portTransport } from './endpoint.js';
import { gcSecondsTotal, startGcClock } from './gc-clock.js';
import { startIdleCollector } from './gc.js';
import { osThreadId } from './thread-id.js';
import { flushThreadLogs } from '../log/thread-flush.js';

/**
 * worker: the bootstrap every actor thread runs first. The supervisor (system.ts) starts the
 * thread with its name, its configuration and one MessagePort per actor it talks to; this wires
 * those ports into an Endpoint and gives the actor a way to say "ready" and to be stopped.
 */

/** ActorInit is the workerData the supervisor hands to every actor thread. */
export interface ActorInit<C> {
  name: string;
  generation: number;
  config: C;
  /** logConfig is the process's logging configuration, the same for every actor (opaque to
   * the runtime; actors hand it to src/log). */
  logConfig: unknown;
  /** ports: one MessagePort per connected actor, by the actor's name. */
  ports: Record<string, MessagePort>;
  /** shared: the generation's shared memory regions (system.ts SharedRegions). */
  shared: Readonly<Record<string, SharedArrayBuffer>>;
  /** spin: the actor's spin budget and its generation's spin slots (Endpoint setSpin). */
  spin?: { us: number; slots: SharedArrayBuffer; idleCoresMin?: number };
}

/** ControlMessage travels on the worker's parentPort, outside the actor protocol. */
export type ControlMessage =
  | { control: 'ready' }
  /** thread: the actor thread's OS thread id, sent once when the thread starts. */
  | { control: 'thread'; tid: number }
  | { control: 'stop' }
  | { control: 'stopped' }
  | { control: 'stats' }
  | { control: 'statsResp'; stats: import('./endpoint.js').EndpointStats }
  | { control: 'traces'; since: number; id: number }
  | { control: 'tracesResp'; report: import('./trace.js').TracesReport; id: number }
  | { control: 'fatal'; message: string };

/** ActorContext is what an actor's shell gets from startActor. */
export interface ActorContext<In extends Message, C> {
  name: string;
  generation: number;
  config: C;
  logConfig: unknown;
  ep: Endpoint<In>;
  /** shared: the generation's shared memory regions (system.ts SharedRegions). */
  shared: Readonly<Record<string, SharedArrayBuffer>>;
  /** ready tells the supervisor this actor has recovered and serves. */
  ready(): void;
  /** onStop installs the graceful-stop hook (flush, fsync, close). */
  onStop(fn: () => Promise<void> | void): void;
}

/** startActor connects this worker thread to the actors it talks to. */
export function startActor<In extends Message, C>(): ActorContext<In, C> {
  if (parentPort === null) throw new Error('runtime: startActor must run in a worker thread');
  const init = workerData as ActorInit<C>;
  const ep = new Endpoint<In>(init.name);
  for (const [name, port] of Object.entries(init.ports)) ep.connect(name, portTransport(port));
  if (init.spin !== undefined) {
    ep.setSpin(init.spin.us, new Int32Array(init.spin.slots),
      { idleCoresMin: init.spin.idleCoresMin });
  }
  let stopHook: () => Promise<void> | void = () => {};
  const control = parentPort;
  startGcClock();
  startIdleCollector();
  const tid = osThreadId();
  if (tid !== undefined) control.postMessage({ control: 'thread', tid } satisfies ControlMessage);
  control.on('message', (m: ControlMessage) => {
    if (m.control === 'stats') {
      const heap = getHeapStatistics();
      ep.stats.heapUsedBytes = heap.used_heap_size;
      ep.stats.heapTotalBytes = heap.total_heap_size;
      ep.stats.gcSecondsTotal = gcSecondsTotal();
      ep.stats.memoryBytes = threadMemory(ep.memoryReporter);
      const stats = ep.snapshotStats();
      control.postMessage({ control: 'statsResp', stats } satisfies ControlMessage);
      return;
    }
    if (m.control === 'traces') {
      const report = ep.tracer.report(m.since);
      control.postMessage({ control: 'tracesResp', report, id: m.id } satisfies ControlMessage);
      return;
    }
    if (m.control === 'stop') {
      // What the stop logged is written out before the supervisor hears of it: the process
      // may exit right after (src/log/thread-flush.ts).
      Promise.resolve()
        .then(() => stopHook())
        .then(() => {
          flushThreadLogs();
          ep.flushNow();
          control.postMessage({ control: 'stopped' } satisfies ControlMessage);
        })
        .catch((e: unknown) => {
          flushThreadLogs();
          control.postMessage({ control: 'fatal', message: String(e) } satisfies ControlMessage);
        });
    }
  });
  return {
    name: init.name,
    generation: init.generation,
    config: init.config,
    logConfig: init.logConfig,
    ep,
    shared: init.shared ?? {},
    ready() {
      control.postMessage({ control: 'ready' } satisfies ControlMessage);
    },
    onStop(fn) {
      stopHook = fn;
    },
  };
}

/** threadMemory is this thread's memory by part: in a worker, process.memoryUsage()'s heap,
 * external and arrayBuffers figures are the thread's own (rss is the whole process's);
 * newSpace is the part of heapTotal that is the young generation (its two semi-spaces). */
export function threadMemory(reporter?: () => Record<string, number>): Record<string, number> {
  const m = process.memoryUsage();
  const young = getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
  return {
    heapUsed: m.heapUsed, heapTotal: m.heapTotal, newSpace: young?.space_size ?? 0,
    external: m.external, arrayBuffers: m.arrayBuffers, ...reporter?.(),
  };
}
