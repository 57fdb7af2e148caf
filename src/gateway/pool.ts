import { type MessagePort, Worker } from 'node:worker_threads';
import HyperExpress from 'hyper-express';
import { Counter, Gauge } from 'prom-client';
import type {
  GatewayThreadConfig, GwCallKind, GwListenUrl, GwObserved, GwToMain, GwToThread,
} from '../../actors/gateway/messages.js';
import type { Config } from '../config/index.js';
import { traceSampleRateOf } from '../config/index.js';
import { shutdownDrainMsMax } from '../constants.js';
import { bindError, type Reservation, whyNotBindable } from '../server/listen.js';
import type { ActorInit, ControlMessage } from '../runtime/worker.js';
import type { ActorSystem, SharedRegions, SystemOptions } from '../runtime/system.js';
import type { Metrics } from '../metrics/index.js';
import type { KvService } from './kv-service.js';
import type { Dashboard } from './dashboard.js';
import type { AuthGate } from './auth-gate.js';
import { type ClientTls, uwsTlsOptions } from './tls.js';

/**
 * pool: the gateway threads of --experimental-gateway-threads, seen from the main thread (the
 * supervisor). Each thread (actors/gateway/actor.ts) serves the client port's HTTP with the
 * same routes as the main thread's gateway; the kernel spreads connections over them
 * (SO_REUSEPORT). The main thread keeps what exists once: the gRPC server, the peer
 * transport, /metrics (the threads' numbers merged in), the dashboard and the traces.
 *
 * The port handover keeps the safe-to-run guarantee (src/server/listen.ts): the client port
 * is reserved exclusively (a plain Node listener: a port held by anyone is refused) before
 * anything else starts. At the handover, in one synchronous step, the reservation is released
 * and a placeholder uWS listener of the main thread binds the port with SO_REUSEPORT; the
 * gateway threads then bind beside it, and the placeholder closes. The port is never free
 * in between. The placeholder drops any connection it gets (only clients that connect
 * before the member says it is ready can reach it).
 *
 * Afterwards, on Linux, a socket may join the port only if it sets SO_REUSEPORT itself AND
 * runs under the same user id (the kernel's rule); any other bind — another MyEtcd (whose
 * reservation is exclusive), etcd, most programs — fails with EADDRINUSE. What a process of
 * the same user that deliberately sets SO_REUSEPORT can do (share the port) it could also do
 * to the main thread's single uWS listener without the flag: that is the same user's choice.
 */

export { gatewayThreadsFor } from './pool-size.js';

/** PoolOptions are what the pool needs from main.ts. */
export interface PoolOptions {
  threads: number;
  config: Config;
  memberId: number;
  clusterId: number;
  version: string;
  logConfig: unknown;
  log: { info(o: object, m: string): void; error(o: object, m: string): void };
}

/** PoolHooks connect the pool to the rest of the main thread (wirePool sets them). */
export interface PoolHooks {
  /** onCall computes what a thread asked of the main thread (GwCall). */
  onCall(kind: GwCallKind): Promise<unknown>;
  /** onObserved takes a thread's report of answered requests. */
  onObserved(name: string, m: GwObserved): void;
  /** onCrash: a gateway thread died (it is started again; the actors restart with it so
   * that the new thread gets channels to them). */
  onCrash(name: string, why: string): void;
  /** onAttach tells the supervisor of a (new) thread, for stats and traces. */
  onAttach(name: string, w: Worker): void;
}

/** GatewayPool: see the file comment. */
export class GatewayPool {
  readonly names: string[];
  private readonly workers = new Map<string, Worker>();
  /** last is each thread's latest report (its gauges and request count). */
  readonly last = new Map<string, GwObserved>();
  private state = { serving: false, stopping: false, generation: 0 };
  private urls: GwListenUrl[] = [];
  private closing = false;
  private flushIds = 0;
  private readonly waiters = new Set<(name: string, m: GwToMain) => void>();

  private hooks: PoolHooks | undefined;
  /** receivingShared: the threads' one count of body bytes being received (http-guard.ts). */
  private readonly receivingShared = new SharedArrayBuffer(8);

  constructor(private readonly o: PoolOptions) {
    this.names = Array.from({ length: o.threads }, (_, i) => `gateway-${i + 1}`);
  }

  /** systemOptions are the ActorSystem options that connect the actors to the threads. */
  get systemOptions(): Pick<SystemOptions, 'gateways' | 'onGatewayPorts' | 'onState'> {
    return { gateways: this.names, onGatewayPorts: this.onGatewayPorts, onState: this.onState };
  }

  /** start spawns every thread (before the actors start: their channels go to the threads). */
  start(hooks: PoolHooks): void {
    this.hooks = hooks;
    for (const name of this.names) this.spawn(name);
  }

  /** onGatewayPorts hands a generation's channels over (ActorSystem's option). */
  readonly onGatewayPorts = (generation: number, ports: Map<string, Record<string, MessagePort>>,
    shared: SharedRegions): void => {
    for (const [name, own] of ports) {
      const m: GwToThread = { gw: 'ports', generation, ports: own, shared };
      this.workers.get(name)?.postMessage(m, Object.values(own));
    }
  };

  /** onState mirrors the supervisor's state in every thread (ActorSystem's option). */
  readonly onState = (s: { serving: boolean; stopping: boolean; generation: number }): void => {
    this.state = { ...s };
    this.broadcast({ gw: 'state', ...s });
  };

  /** listen hands the client ports over from their reservations to the threads (see the file
   * comment); resolves with the ports, throws a StartupError naming the URL on failure. */
  async listen(rs: readonly Reservation[], tlsOf: (r: Reservation) => ClientTls | undefined):
    Promise<number[]> {
    const holders: HyperExpress.Server[] = [];
    try {
      for (const r of rs) {
        const h = new HyperExpress.Server({ ...uwsTlsOptions(tlsOf(r)), auto_close: false });
        h.set_not_found_handler((_req, res) => { res.close(); });
        r.release();
        try {
          await h.listen(r.port, r.host);
        } catch {
          throw bindError(r.setting, r.url, await whyNotBindable(r.host, r.port));
        }
        holders.push(h);
      }
      this.urls = rs.map((r) => {
        const tls = tlsOf(r);
        return { url: r.url, host: r.host, port: r.port, ...(tls === undefined ? {} : { tls }) };
      });
      await Promise.all(this.names.map((n) => this.listenOne(n)));
      return rs.map((r) => r.port);
    } finally {
      for (const h of holders) h.close();
    }
  }

  /** flush asks every thread for its report now (before /metrics renders; bounded). */
  async flush(timeoutMs = 2_000): Promise<void> {
    const id = ++this.flushIds;
    await this.askAll({ gw: 'flush', id }, (m) => m.gw === 'observed' && m.flush === id,
      timeoutMs);
  }

  /** close stops every thread's listeners and ends its watch streams ("server stopped"), and
   * waits until none has a request in flight (bounded). */
  async close(): Promise<void> {
    this.closing = true;
    await this.askAll({ gw: 'close' }, (m) => m.gw === 'closed', shutdownDrainMsMax + 1_000);
  }

  /** terminate ends the threads (after the actors stopped). */
  async terminate(): Promise<void> {
    this.closing = true;
    const ws = [...this.workers.values()];
    this.workers.clear();
    await Promise.all(ws.map((w) => w.terminate().catch(() => 0)));
  }

  private broadcast(m: GwToThread): void {
    for (const w of this.workers.values()) w.postMessage(m);
  }

  private async askAll(m: GwToThread, done: (m: GwToMain) => boolean, timeoutMs: number):
    Promise<void> {
    const left = new Set(this.workers.keys());
    if (left.size === 0) return;
    await new Promise<void>((resolve) => {
      const waiter = (name: string, r: GwToMain): void => {
        if (done(r) && left.delete(name) && left.size === 0) finish();
      };
      const finish = (): void => {
        clearTimeout(timer);
        this.waiters.delete(waiter);
        resolve();
      };
      const timer = setTimeout(finish, timeoutMs);
      this.waiters.add(waiter);
      this.broadcast(m);
    });
  }

  private listenOne(name: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const waiter = (from: string, m: GwToMain): void => {
        if (from !== name || m.gw !== 'listened') return;
        this.waiters.delete(waiter);
        if (m.error === undefined) resolve();
        else {
          const u = this.urls[0]!;
          reject(bindError('listen-client-urls', u.url, new Error(m.error)));
        }
      };
      this.waiters.add(waiter);
      this.workers.get(name)!.postMessage({ gw: 'listen', urls: this.urls } satisfies GwToThread);
    });
  }

  private threadConfig(index: number): GatewayThreadConfig {
    const c = this.o.config;
    return {
      index, shardCount: c.storageShards, memberId: this.o.memberId, clusterId: this.o.clusterId,
      version: this.o.version, maxRequestBytes: c.maxRequestBytes, maxTxnOps: c.maxTxnOps,
      watchBufferedBytesMax: c.watchBufferedBytesMax, cors: c.cors,
      traceSampleRate: traceSampleRateOf(c.traceSampleRate), name: c.name,
      receivingShared: this.receivingShared,
      auth: { authToken: c.authToken, authTokenTtl: c.authTokenTtl, bcryptCost: c.bcryptCost },
    };
  }

  private spawn(name: string): void {
    const index = Number(name.slice('gateway-'.length));
    const init: ActorInit<GatewayThreadConfig> = {
      name, generation: this.state.generation, config: this.threadConfig(index), ports: {},
      shared: {}, logConfig: this.o.logConfig,
    };
    const w = new Worker(new URL('../../actors/gateway/actor.js', import.meta.url), {
      workerData: init, name: `myetcd-${name}`,
    });
    this.workers.set(name, w);
    this.hooks!.onAttach(name, w);
    w.postMessage({ gw: 'state', ...this.state } satisfies GwToThread);
    w.on('message', (m: GwToMain | ControlMessage) => {
      if (!('gw' in m)) return;
      if (m.gw === 'call') this.answer(w, m.id, m.kind);
      else if (m.gw === 'observed') {
        this.last.set(name, m);
        this.hooks!.onObserved(name, m);
      }
      for (const f of [...this.waiters]) f(name, m);
    });
    let dead = false;
    const onDeath = (why: string): void => {
      if (dead || this.closing || this.workers.get(name) !== w) return;
      dead = true;
      this.o.log.error({ thread: name, err: why }, 'gateway thread died; starting it again');
      this.spawn(name);
      if (this.urls.length > 0) void this.listenOne(name).catch((e: unknown) => {
        this.o.log.error({ thread: name, err: String(e) }, 'gateway thread cannot listen');
      });
      this.hooks!.onCrash(name, why);
    };
    w.on('error', (e) => onDeath(e instanceof Error ? (e.stack ?? e.message) : String(e)));
    w.on('exit', (code) => onDeath(`exited with code ${code}`));
  }

  private answer(w: Worker, id: number, kind: GwCallKind): void {
    this.hooks!.onCall(kind).then((value) => {
      w.postMessage({ gw: 'callResp', id, value } satisfies GwToThread);
    }, (e: unknown) => {
      const error = e instanceof Error ? e.message : String(e);
      w.postMessage({ gw: 'callResp', id, error } satisfies GwToThread);
    });
  }
}

/** poolHooks wires the pool to the main thread's supervisor, metrics and dashboard: calls are
 * answered from them, reports feed the request metrics (and myetcd_gateway_requests_total,
 * per thread), and a dead thread restarts the actors so that its successor is connected. */
export function poolHooks(system: ActorSystem, kv: KvService, metrics: Metrics,
  auth: AuthGate, { dashboard, observe }: {
    dashboard: Pick<Dashboard, 'snapshot'>;
    observe: (route: string, method: string, code: number, s: number) => void;
  }): PoolHooks {
  const requests = new Counter({
    name: 'myetcd_gateway_requests_total',
    help: 'HTTP requests answered by each gateway thread (--experimental-gateway-threads).',
    labelNames: ['gateway'], registers: [metrics.registry],
  });
  const streams = new Gauge({
    name: 'myetcd_gateway_watch_streams',
    help: 'Watch streams open on each gateway thread (--experimental-gateway-threads).',
    labelNames: ['gateway'], registers: [metrics.registry],
  });
  return {
    onCall: async (kind) => kind === 'metrics' ? metrics.render(system, kv)
      : kind === 'dashboard' ? dashboard.snapshot()
        : kind === 'threads' ? system.threads() : system.actorTraces(),
    onObserved: (name, m) => {
      for (const [route, method, code, seconds] of m.observations) {
        observe(route, method, code, seconds);
      }
      requests.inc({ gateway: name }, m.observations.length + m.dropped);
      streams.set({ gateway: name }, m.watchStreams);
      metrics.addClientBytes(m.receivedBytes, m.sentBytes);
      metrics.ingestReadPoints(name, m.readPoints);
      if (m.bodiesRefused > 0) metrics.httpBodyRefused.inc(m.bodiesRefused);
      for (let i = 0; i < m.authFailures; i++) {
        auth.failures++;
        auth.onFailure?.();
      }
    },
    onCrash: (name, why) => system.restartAll(name, why),
    onAttach: (name, w) => system.attach(name, w),
  };
}
