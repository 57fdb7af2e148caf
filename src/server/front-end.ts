/**
 * front-end: the client-facing half of a member's start, loaded by main while the actor
 * threads start (main.ts): metrics, authentication, observability, the HTTP gateways and the
 * gRPC front end, and the orderly stop on SIGINT/SIGTERM.
 */
import type pino from 'pino';
import type { ShardMsg, ShardReplies } from '../../actors/shard/messages.js';
import { peerMetricsHook } from '../cluster/metrics.js';
import { publishClientUrls } from '../cluster/setup.js';
import type { Config } from '../config/index.js';
import { bootStatusAsksMax, shutdownDrainMsMax } from '../constants.js';
import { EtcdError } from '../errors.js';
import { startAuth } from '../gateway/auth-gate.js';
import { type GrpcStartDeps, startGrpcGateways } from '../gateway/grpc-server.js';
import type { KvService } from '../gateway/kv-service.js';
import { setupObservability } from '../gateway/observability.js';
import { type GatewayPool, type PoolHooks, poolHooks } from '../gateway/pool.js';
import type { GatewayDeps } from '../gateway/routes.js';
import {
  buildGateway, type Gateway, gatewayLoad, startGateway, startMetricsServer,
} from '../gateway/server.js';
import { tlsFor } from '../gateway/tls.js';
import { closeLogger } from '../log/index.js';
import { createMetrics, type Metrics } from '../metrics/index.js';
import { AskTimeoutError } from '../runtime/endpoint.js';
import type { ActorSystem } from '../runtime/system.js';
import type { Reservation } from './listen.js';
import { apiVersion, clusterVersion, serverVersion as version } from './version.js';

/** Logger is the member's pino logger (and its children). */
type Logger = pino.Logger;

/** FrontEndDeps is what main hands over once the actors run. */
export interface FrontEndDeps {
  config: Config;
  clientUrls: Reservation[];
  grpcUrls: Reservation[];
  metricsUrls: Reservation[];
  lock: { release(): Promise<void> };
  logger: Logger;
  log: Logger;
  system: ActorSystem;
  kv: KvService;
  pool: GatewayPool | undefined;
  hooks: { set(h: PoolHooks): void };
  memberId: number;
  clusterId: number;
}

/** serve starts everything that faces clients, once the actors run, and installs the
 * signal handlers that stop the member. */
export async function serve(deps: FrontEndDeps): Promise<void> {
  const { config, clientUrls, grpcUrls, logger, log, system, kv, pool, hooks, memberId } =
    deps;
  const metrics = createMetrics({ version: apiVersion, buildVersion: version, clusterVersion,
    quotaBackendBytes: config.quotaBackendBytes });
  const auth = await startAuth(config, kv, metrics.registry);
  await refreshWhileRestoring(kv, log);
  system.opts.onGeneration = () => { void kv.refresh().catch(() => undefined); };
  metrics.onScrape(peerMetricsHook(metrics.registry, system.gateway));
  metrics.onScrape(() => scrapeKv(metrics, kv));
  const obs = setupObservability({ system, kv, metrics, config, memberId, logger });
  hooks.set(poolHooks(system, kv, metrics, auth, obs.gatewayDeps));
  for (let i = 0; i < config.storageShards; i++) {
    const shard = system.gateway.ref<ShardMsg, ShardReplies>(`shard-${i}`);
    metrics.onScrape(async () => {
      const st = await shard.ask({ type: 'ShardStats' }, 2_000);
      metrics.ingestMvccStats(shard.target, { keys: st.keys, dbSizeBytes: st.bytes });
    });
  }

  const metricsText = () => metrics.render(system, kv);
  const { gateways, listened } = await serveClients(config, clientUrls, pool, log, {
    kv, system, version,
    metricsText,
    ...obs.gatewayDeps,
    countBytes: (received, sent) => metrics.addClientBytes(received, sent),
    onBodyRefused: () => metrics.httpBodyRefused.inc(),
    watchBufferedBytesMax: config.watchBufferedBytesMax,
    cors: config.cors,
    auth,
  });
  metrics.onScrape(async () => {
    await pool?.flush();
    metrics.ingestGateway(gatewayLoad(gateways, pool?.last.values()));
  });
  // The gRPC and metrics listeners, closed with the gateways on a stop.
  const others: Listeners = { servers: [], admissions: [] };
  stopOnSignals(deps, gateways, others, obs);
  const http1 = http1Target(clientUrls, listened);
  publishClientUrls(system.gateway, config, listened, await startGrpcGateways({ kv, system,
    version, config, metrics, log, auth, ...others, watches: gateways.at(-1)!.watches,
    ...(http1 === undefined ? {} : { http1 }) }, grpcUrls));
  for (const r of deps.metricsUrls) {
    const m = await startMetricsServer({ kv, system, metricsText }, r);
    others.servers.push({ close: () => { m.server.close(); return true; } });
    const url = new URL(r.url);
    log.info({ url: `${url.protocol}//${url.hostname}:${m.port}` },
      'ready to serve metrics requests');
  }
}

/** http1Target is where the gRPC ports pass HTTP/1.x clients: the first plain-HTTP client
 * listener (a TLS one would not understand them), dialled on loopback when it listens on
 * every address. */
export function http1Target(clientUrls: readonly Pick<Reservation, 'url' | 'host'>[],
  ports: readonly number[]): { host: string; port: number } | undefined {
  const i = clientUrls.findIndex((r) => new URL(r.url).protocol === 'http:');
  if (i < 0 || ports[i] === undefined) return undefined;
  const host = clientUrls[i]!.host;
  const any = { '0.0.0.0': '127.0.0.1', '::': '::1' } as Record<string, string>;
  return { host: any[host] ?? host, port: ports[i]! };
}

/** Listeners are the gRPC and metrics servers beside the HTTP gateways, and the gRPC ones'
 * admissions (requests in flight, drained on a stop). */
type Listeners = Pick<GrpcStartDeps, 'servers' | 'admissions'>;

/** stopOnSignals stops the member on SIGINT or SIGTERM: the listeners close, requests in
 * flight finish against the actors (a bounded wait), then the actors stop in order (the Raft
 * node first, the WAL writer flushing and fsyncing its queue last), and the process exits. */
function stopOnSignals(deps: FrontEndDeps, gateways: Gateway[], others: Listeners,
  obs: { stop(): Promise<void> }): void {
  const { system, pool, lock, log, logger } = deps;
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'received signal; shutting down');
    system.markStopping();
    for (const g of gateways) g.watches.closeAll(new EtcdError('STOPPED'));
    for (const g of [...gateways.map((x) => x.server), ...others.servers]) g.close();
    const admissions = [...gateways.map((g) => g.routes.admission), ...others.admissions];
    void Promise.all([drain(admissions, shutdownDrainMsMax), pool?.close()])
      .then(() => obs.stop()).then(() => system.stop()).then(() => pool?.terminate())
      .then(async () => {
      await lock.release();
      log.info({}, 'stopped');
      return closeLogger(logger).then(() => process.exit(0));
    }, (e: unknown) => {
      log.error({ err: String(e) }, 'unclean stop');
      return closeLogger(logger).then(() => process.exit(1));
    });
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM')); // before gRPC: a stop once HTTP is ready is clean
}

/** drain resolves once no request is in flight, or after timeoutMs. */
async function drain(admissions: { inflight: number }[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (admissions.some((a) => a.inflight > 0) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * refreshWhileRestoring reads the Raft node's status at start-up. Restoring a large store
 * (snapshot load, WAL replay) can keep the Raft node busy past one ask's deadline on a loaded
 * machine: keep asking, up to bootStatusAsksMax times, rather than exit.
 */
async function refreshWhileRestoring(
  kv: KvService, log: { warn(o: object, msg: string): void },
): Promise<void> {
  for (let tries = 1; ; tries++) {
    try {
      await kv.refresh();
      return;
    } catch (e) {
      if (!(e instanceof AskTimeoutError) || tries >= bootStatusAsksMax) throw e;
      log.warn({ tries }, 'the Raft node is still restoring; asking again');
    }
  }
}

/** serveClients starts the HTTP front end on the reserved client URLs: the main thread's
 * gateway, or the gateway threads (the main thread then keeps an unlistened gateway for the
 * gRPC front end's watch streams). */
async function serveClients(config: Config, clientUrls: Reservation[],
  pool: GatewayPool | undefined, log: { info(o: object, m: string): void }, deps: GatewayDeps):
  Promise<{ gateways: Gateway[]; listened: number[] }> {
  const gateways: Gateway[] = [];
  const listened: number[] = [];
  // Said once main has its signal handlers (after this turn): a SIGTERM sent on reading the
  // line must find them (the main thread's uWS server, when there is one, also catches it).
  const ready = (raw: string, port: number) => setImmediate(() => {
    const u = new URL(raw);
    log.info({ url: `${u.protocol}//${u.hostname}:${port}`, ...(pool === undefined ? {}
      : { gatewayThreads: pool.names.length }) }, 'ready to serve client requests');
  });
  if (pool !== undefined) {
    const { server, routes, watches } = buildGateway(deps);
    gateways.push({ server, routes, watches, port: 0 });
    const ports = await pool.listen(clientUrls, (r) => tlsFor(config, new URL(r.url)));
    clientUrls.forEach((r, i) => ready(r.url, ports[i]!));
    return { gateways, listened: ports };
  }
  for (const reserved of clientUrls) {
    const g = await startGateway(deps, reserved.host, reserved.port, reserved,
      tlsFor(config, new URL(reserved.url)));
    gateways.push(g);
    ready(reserved.url, g.port);
    listened.push(g.port);
  }
  return { gateways, listened };
}

/** scrapeKv feeds /metrics what the Raft node and the main thread's gateway count. */
async function scrapeKv(metrics: Metrics, kv: KvService): Promise<void> {
  const st = await kv.status();
  metrics.ingestMvccStats('raft', {
    putTotal: st.putTotal, deleteTotal: st.deleteTotal, txnTotal: st.txnTotal,
    rangeTotal: kv.rangeTotal,
  });
  metrics.ingestReadPoints('gateway', kv.readPoints);
}
