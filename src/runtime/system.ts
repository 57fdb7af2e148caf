import { MessageChannel, Worker } from 'node:worker_threads';
import {
  actorSemiSpaceMiB, actorStartTimeoutMs, actorStatsTimeoutMs, actorStopTimeoutMs,
} from '../constants.js';
import {
  restartBackoffMsMax, restartBackoffMsMin, restartsMax, restartWindowMs,
} from '../constants.js';
import { Endpoint, type EndpointStats, type Message, portTransport } from './endpoint.js';
import type { TracesReport } from './trace.js';
import { osThreadId, type ThreadInfo } from './thread-id.js';
import { gcSecondsTotal, startGcClock } from './gc-clock.js';
import { startIdleCollector } from './gc.js';
import type { ActorInit, ControlMessage } from './worker.js';

/**
 * system: the supervisor. It starts one worker thread per actor, connects every pair of
 * actors (and the gateway) with their own MessageChannel, waits until all report ready, and
 * restarts them when one crashes.
 *
 * Strategy: one-for-all (Erlang's term). The actors of the storage pipeline hold state
 * derived from the same log — the Raft node's applier, the shards' history, the watch hub's
 * position — so restarting a single one would leave the others ahead of it. Instead every
 * actor is restarted together and each recovers from the snapshot and the WAL, the same code
 * path as a process start. The gateway keeps serving meanwhile: requests in flight fail with
 * a 503 "actor ... is restarting" and new ones get 503 until the actors are ready again.
 * Restarts back off exponentially; more than restartsMax within restartWindowMs escalates to
 * a clean process exit with a clear log line.
 */

/** ActorSpec names an actor and the compiled module its thread runs. */
export interface ActorSpec {
  name: string;
  url: URL;
  config: unknown;
  /** connects lists the actors this one talks to; the gateway is always connected. */
  connects: string[];
  /** shares: shared memory regions this actor writes and every thread of its generation
   * (actors and gateways) may read, by name: their sizes in bytes. See SharedRegions. */
  shares?: Readonly<Record<string, number>>;
}

/**
 * SharedRegions are one generation's shared memory regions (ActorSpec.shares), by name. A
 * new set is made for every generation: a thread of a dead generation may have left a region
 * half written. The first Int32 of every region is the supervisor's: it stores 1 there once
 * the generation is over (restarting or stopped), before the next one starts, and readers
 * treat a region so marked as saying nothing.
 */
export type SharedRegions = Readonly<Record<string, SharedArrayBuffer>>;

/** SystemLogger is the subset of pino the supervisor uses. */
export interface SystemLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** SystemOptions configure the supervisor. */
export interface SystemOptions {
  logger: SystemLogger;
  /** onFatal is called when the restart limit is exceeded (default: exit the process). */
  onFatal?: (reason: string) => void;
  /** onGeneration is called each time a new generation of actors is ready. */
  onGeneration?: (generation: number) => void;
  startTimeoutMs?: number;
  /** logConfig is handed to every actor (see ActorInit). */
  logConfig?: unknown;
  /** gateways names the gateway threads besides the main one ('gateway-1', …): every actor
   * gets a channel to each, and onGatewayPorts hands their ends over (src/gateway/pool.ts). */
  gateways?: readonly string[];
  /** onGatewayPorts receives, per gateway thread, its end of each actor's channel, for every
   * generation, before the actors are ready. */
  onGatewayPorts?: (generation: number,
    ports: Map<string, Record<string, import('node:worker_threads').MessagePort>>,
    shared: SharedRegions) => void;
  /** onShared hears each generation's shared regions, before its actors start (the main
   * thread's gateway reads them). */
  onShared?: (generation: number, shared: SharedRegions) => void;
  /** onState hears every change of serving/stopping (the gateway threads mirror them). */
  onState?: (s: { serving: boolean; stopping: boolean; generation: number }) => void;
  /** spinUs: how long an actor thread awaiting a reply polls before it sleeps (Endpoint
   * setSpin; 0 or absent: never). */
  spinUs?: number;
  /** spinIdleCoresMin: spin only while this many cores are idle (default: constants.ts's). */
  spinIdleCoresMin?: number;
}

/** ActorSystem: see the file comment. */
export class ActorSystem {
  /** gateway is the main thread's endpoint, connected to every actor. */
  readonly gateway = new Endpoint<Message>('gateway');
  /** restarts counts restarts per actor whose crash caused them. */
  readonly restarts = new Map<string, number>();
  private workers = new Map<string, Worker>();
  /** attached: threads that are not actors but answer the same control asks (stats, traces):
   * the gateway threads. They live across generations. */
  private readonly attached = new Map<string, Worker>();
  private generation = 0;
  /** shared: the current generation's shared regions (SharedRegions). */
  private shared: SharedRegions = {};
  private state: 'idle' | 'starting' | 'running' | 'restarting' | 'stopping' | 'stopped' = 'idle';
  private restartTimes: number[] = [];
  private backoffMs = restartBackoffMsMin;
  private tracesAsks = 0;
  /** tids: each actor thread's OS thread id, as it reported it (worker.ts), by actor name. */
  private readonly tids = new Map<string, number>();
  /** attachedTids: the OS thread ids the attached (gateway) threads reported. */
  private readonly attachedTids = new Map<string, number>();
  /** mainTid is the OS thread id of the thread that runs the supervisor and the gateway. */
  private readonly mainTid = osThreadId();

  constructor(
    private readonly specs: ActorSpec[],
    readonly opts: SystemOptions,
  ) {
    startGcClock();
    startIdleCollector();
    const names = new Set(specs.map((s) => s.name));
    for (const s of specs) {
      for (const p of s.connects) {
        if (!names.has(p)) throw new Error(`runtime: ${s.name} names unknown actor ${p}`);
      }
    }
  }

  /** stopping: a stop has begun (markStopping or stop): the gateway answers "etcdserver:
   * server stopped", not "server is restarting". */
  get stopping(): boolean {
    return this.gateway.stopping;
  }

  /** markStopping announces a stop before it starts (main's drain of requests in flight). */
  markStopping(): void {
    this.gateway.stopping = true;
    this.announce();
  }

  /** attach adds a thread that answers the stats and traces control asks (a gateway thread)
   * to what actorStats and actorTraces collect; detach removes it. */
  attach(name: string, w: Worker): void {
    this.attached.set(name, w);
    // An attached thread reports its OS thread id as an actor does (GET /debug/threads).
    w.on('message', (m: ControlMessage) => {
      if (m.control !== 'thread' || this.attached.get(name) !== w) return;
      this.attachedTids.set(name, m.tid);
    });
  }

  detach(name: string): void {
    this.attached.delete(name);
    this.attachedTids.delete(name);
  }

  /** announce tells opts.onState where the system stands. */
  private announce(): void {
    this.opts.onState?.({ serving: this.serving, stopping: this.stopping,
      generation: this.generation });
  }

  /** serving reports whether the actors are up (the gateway answers 503 otherwise). */
  get serving(): boolean {
    return this.state === 'running';
  }

  /** currentGeneration increments with every (re)start. */
  get currentGeneration(): number {
    return this.generation;
  }

  /** start spawns every actor and resolves once all are ready. */
  async start(): Promise<void> {
    this.state = 'starting';
    await this.spawnAll();
    this.state = 'running';
    this.announce();
    this.opts.onGeneration?.(this.generation);
  }

  /** threads lists the process's named threads: the gateway (this thread) and each running
   * actor thread with its OS thread id (GET /debug/threads; a thread that could not read its
   * id, off Linux, is left out). */
  threads(): ThreadInfo[] {
    const out: ThreadInfo[] = [];
    if (this.mainTid !== undefined) out.push({ name: 'gateway', tid: this.mainTid });
    for (const s of this.specs) {
      const tid = this.tids.get(s.name);
      if (tid !== undefined && this.workers.has(s.name)) out.push({ name: s.name, tid });
    }
    for (const [name, tid] of this.attachedTids) out.push({ name, tid });
    return out;
  }

  /** actorStats collects every actor thread's runtime counters (for /metrics). */
  async actorStats(timeoutMs = actorStatsTimeoutMs): Promise<Map<string, EndpointStats>> {
    const out = new Map<string, EndpointStats>();
    out.set('gateway', { ...this.gateway.snapshotStats(), gcSecondsTotal: gcSecondsTotal() });
    await this.askEachWorker(timeoutMs, () => ({ control: 'stats' }), (name, m) => {
      if (m.control !== 'statsResp') return false;
      out.set(name, m.stats);
      return true;
    });
    return out;
  }

  /** actorTraces collects every thread's recorded spans (src/runtime/trace.ts), the gateway's
   * included; `since` gives, per thread, the seq after which to report (export cursors). */
  async actorTraces(since: ReadonlyMap<string, number> = new Map(),
    timeoutMs = actorStatsTimeoutMs): Promise<Map<string, TracesReport>> {
    const out = new Map<string, TracesReport>();
    out.set('gateway', this.gateway.tracer.report(since.get('gateway') ?? 0));
    const id = ++this.tracesAsks;
    await this.askEachWorker(timeoutMs,
      (name) => ({ control: 'traces', since: since.get(name) ?? 0, id }), (name, m) => {
        if (m.control !== 'tracesResp' || m.id !== id) return false;
        out.set(name, m.report);
        return true;
      });
    return out;
  }

  /** askEachWorker posts ask(name) to every actor thread and waits until take accepts its
   * answer (take returns true) or timeoutMs passes; a thread that does not answer is left out. */
  private async askEachWorker(timeoutMs: number, ask: (name: string) => ControlMessage,
    take: (name: string, m: ControlMessage) => boolean): Promise<void> {
    const all = [...this.workers, ...this.attached];
    await Promise.all(all.map(([name, w]) => new Promise<void>((resolve) => {
      const timer = setTimeout(done, timeoutMs);
      function onMsg(m: ControlMessage): void {
        if (take(name, m)) done();
      }
      function done(): void {
        clearTimeout(timer);
        w.off('message', onMsg);
        resolve();
      }
      w.on('message', onMsg);
      w.postMessage(ask(name));
    })));
  }

  /** restartAll restarts every actor as if `culprit` had crashed (a gateway thread died: its
   * successor needs channels to the actors, which a new generation brings). */
  restartAll(culprit: string, why: string): void {
    void this.restart(culprit, why);
  }

  /** stop asks every actor to stop gracefully (in spec order), then terminates threads. */
  async stop(): Promise<void> {
    if (this.state === 'stopped' || this.state === 'stopping') return;
    this.state = 'stopping';
    this.closeRegions();
    this.gateway.stopping = true;
    this.announce();
    this.gateway.flushNow();
    for (const spec of this.specs) {
      const w = this.workers.get(spec.name);
      if (w === undefined) continue;
      await stopWorker(w, actorStopTimeoutMs).catch((e: unknown) => {
        this.opts.logger.warn({ actor: spec.name, err: String(e) }, 'actor did not stop cleanly');
      });
    }
    await this.terminateAll();
    this.gateway.close();
    this.state = 'stopped';
  }

  private async spawnAll(): Promise<void> {
    this.generation++;
    const gen = this.generation;
    const ports = new Map<string, Record<string, import('node:worker_threads').MessagePort>>();
    for (const s of this.specs) ports.set(s.name, {});
    // One channel per connected pair: the gateway to every actor, and each declared pair.
    for (const s of this.specs) {
      const ch = new MessageChannel();
      ports.get(s.name)!['gateway'] = ch.port1;
      this.gateway.failActor(s.name);
      this.gateway.connect(s.name, portTransport(ch.port2));
    }
    const gwPorts = new Map<string, Record<string, import('node:worker_threads').MessagePort>>();
    for (const g of this.opts.gateways ?? []) {
      const own: Record<string, import('node:worker_threads').MessagePort> = {};
      for (const s of this.specs) {
        const ch = new MessageChannel();
        ports.get(s.name)![g] = ch.port1;
        own[s.name] = ch.port2;
      }
      gwPorts.set(g, own);
    }
    const shared = this.newRegions();
    this.opts.onShared?.(gen, shared);
    if (gwPorts.size > 0) this.opts.onGatewayPorts?.(gen, gwPorts, shared);
    const done = new Set<string>();
    for (const s of this.specs) {
      for (const p of s.connects) {
        const key = [s.name, p].sort().join('|');
        if (done.has(key)) continue;
        done.add(key);
        const ch = new MessageChannel();
        ports.get(s.name)![p] = ch.port1;
        ports.get(p)![s.name] = ch.port2;
      }
    }
    const readies: Promise<void>[] = [];
    // The spin slot count (Endpoint setSpin) shared by this generation's actor threads; a new
    // one each generation, since a thread terminated while it spun never gave its slot back.
    const spinSlots = new SharedArrayBuffer(4);
    for (const s of this.specs) {
      const ownPorts = ports.get(s.name)!;
      const init: ActorInit<unknown> = {
        name: s.name, generation: gen, config: s.config, ports: ownPorts, shared,
        logConfig: this.opts.logConfig ?? { logLevel: 'info' },
        spin: { us: this.opts.spinUs ?? 0, slots: spinSlots,
          idleCoresMin: this.opts.spinIdleCoresMin },
      };
      const w = new Worker(s.url, {
        workerData: init,
        transferList: Object.values(ownPorts),
        name: `myetcd-${s.name}`,
        resourceLimits: actorResourceLimits(),
      });
      this.workers.set(s.name, w);
      readies.push(this.watchWorker(s.name, w, gen));
    }
    const timeoutMs = this.opts.startTimeoutMs ?? actorStartTimeoutMs;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      const fail = () => reject(new Error(`actors not ready within ${timeoutMs} ms`));
      timer = setTimeout(fail, timeoutMs);
    });
    try {
      await Promise.race([Promise.all(readies), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** newRegions closes the last generation's shared regions and makes this one's. */
  private newRegions(): SharedRegions {
    this.closeRegions();
    const out: Record<string, SharedArrayBuffer> = {};
    for (const s of this.specs) {
      for (const [name, bytes] of Object.entries(s.shares ?? {})) {
        if (name in out) throw new Error(`runtime: shared region ${name} declared twice`);
        out[name] = new SharedArrayBuffer(Math.max(4, bytes));
      }
    }
    this.shared = out;
    return out;
  }

  /** closeRegions marks the current generation's regions as over (SharedRegions). */
  private closeRegions(): void {
    for (const b of Object.values(this.shared)) Atomics.store(new Int32Array(b, 0, 1), 0, 1);
  }

  private watchWorker(name: string, w: Worker, gen: number): Promise<void> {
    return new Promise((resolve, reject) => {
      let ready = false;
      w.on('message', (m: ControlMessage) => {
        if (m.control === 'ready') {
          ready = true;
          resolve();
        } else if (m.control === 'thread') {
          if (gen === this.generation) this.tids.set(name, m.tid);
        } else if (m.control === 'fatal') {
          this.opts.logger.error({ actor: name }, m.message);
        }
      });
      const onDeath = (why: string) => {
        if (gen !== this.generation) return; // an older generation, already replaced
        if (this.state === 'stopping' || this.state === 'stopped') return;
        if (!ready) {
          reject(new Error(`actor ${name} failed while starting: ${why}`));
          return;
        }
        void this.restart(name, why);
      };
      w.on('error', (err) => {
        onDeath(err instanceof Error ? (err.stack ?? err.message) : String(err));
      });
      w.on('exit', (code) => onDeath(`exited with code ${code}`));
    });
  }

  private async restart(culprit: string, why: string): Promise<void> {
    if (this.state !== 'running') return;
    this.state = 'restarting';
    this.restarts.set(culprit, (this.restarts.get(culprit) ?? 0) + 1);
    const t = Date.now();
    this.restartTimes = this.restartTimes.filter((x) => t - x < restartWindowMs);
    this.restartTimes.push(t);
    this.opts.logger.error({ actor: culprit, err: why }, 'actor crashed; restarting all actors');
    this.closeRegions();
    this.announce();
    if (this.restartTimes.length > restartsMax) {
      const reason = `actor ${culprit} crashed ${this.restartTimes.length} times within ` +
        `${restartWindowMs} ms; giving up: ${why}`;
      this.opts.logger.error({ actor: culprit }, reason);
      this.state = 'stopped';
      await this.terminateAll();
      (this.opts.onFatal ?? (() => process.exit(1)))(reason);
      return;
    }
    await this.terminateAll();
    for (const s of this.specs) this.gateway.failActor(s.name);
    await sleep(this.backoffMs);
    this.backoffMs = Math.min(this.backoffMs * 2, restartBackoffMsMax);
    try {
      await this.spawnAll();
      this.state = 'running';
      this.announce();
      this.opts.logger.info({ generation: this.generation }, 'actors restarted');
      this.opts.onGeneration?.(this.generation);
      // A generation that stays up for a window earns the backoff back.
      setTimeout(() => { this.backoffMs = restartBackoffMsMin; }, restartWindowMs).unref();
    } catch (e) {
      this.state = 'running';
      void this.restart(culprit, `restart failed: ${String(e)}`);
    }
  }

  private async terminateAll(): Promise<void> {
    const ws = [...this.workers.values()];
    this.workers.clear();
    await Promise.all(ws.map((w) => w.terminate().catch(() => 0)));
  }
}

/** actorResourceLimits gives an actor thread a young generation of three semi-spaces of
 * actorSemiSpaceMiB (V8's young generation: two semi-spaces and as much again for large new
 * objects); the old generation keeps V8's default. */
export function actorResourceLimits(): { maxYoungGenerationSizeMb: number } {
  return { maxYoungGenerationSizeMb: 3 * actorSemiSpaceMiB };
}

function stopWorker(w: Worker, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('stop timed out')), timeoutMs);
    w.on('message', (m: ControlMessage) => {
      if (m.control === 'stopped') {
        clearTimeout(timer);
        resolve();
      }
    });
    w.postMessage({ control: 'stop' } satisfies ControlMessage);
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
