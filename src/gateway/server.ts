import HyperExpress from 'hyper-express';
import {
  encodeHealth, encodeVersion, etcdClusterVersion, etcdServerVersion,
} from '../api/v3.js';
import { requestLimits } from '../api/limits.js';
import type { GatewayLoad } from '../metrics/index.js';
import { bodyBytesReceivingMax } from '../constants.js';
import { exclusiveApp, listenExclusive, type ListenApp, type Reservation }
  from '../server/listen.js';
import { errorBody } from './errors.js';
import { installGuard } from './http-guard.js';
import { registerLeaseRoutes } from './lease-routes.js';
import { type GatewayDeps, Routes } from './routes.js';
import { registerV1Routes } from './v1-routes.js';
import { registerV3Routes } from './v3-routes.js';
import { registerClusterRoutes } from './cluster-routes.js';
import { registerTraceRoutes } from './trace-routes.js';
import { registerDashboardRoutes } from './dashboard-routes.js';
import { registerThreadRoutes } from './thread-routes.js';
import { registerAuthRoutes } from './auth-routes.js';
import { type ClientTls, guardInner, listenRelayed, uwsTlsOptions } from './tls.js';
import { registerAlarmRoutes } from './alarm-routes.js';
import { registerWatchRoutes, type WatchGateway, WatchPushes } from './watch-routes.js';

/**
 * server: the gateway thread's HTTP server (hyper-express on uWebSockets). It parses and
 * validates requests, admits them against the in-flight limit, hands them to KvService, and
 * writes the answer. It never blocks on the actors: every handler awaits a reply, and a burst
 * of requests in one poll phase leaves for the actors as one batch.
 *
 * The route modules import routes.ts (the registry) and stream.ts (long-lived responses),
 * never this file; startGateway below is the one list of them.
 */

/** Gateway is one client listener's server with its registry and watch streams. */
export interface Gateway {
  server: HyperExpress.Server;
  port: number;
  routes: Routes;
  watches: WatchGateway;
}

/** gatewayLoad sums the load of `gateways`, plus `more` (another thread's reports). */
export function gatewayLoad(gateways: readonly Gateway[], more: Iterable<GatewayLoad> = []):
  GatewayLoad {
  const sum: GatewayLoad = {
    inflight: 0, watchStreams: 0, watchBufferedBytes: 0, watchBufferedBytesPeak: 0,
    watchStreamsDropped: 0,
  };
  const add = (l: GatewayLoad) => {
    sum.inflight += l.inflight;
    sum.watchStreams += l.watchStreams;
    sum.watchBufferedBytes += l.watchBufferedBytes;
    sum.watchBufferedBytesPeak += l.watchBufferedBytesPeak;
    sum.watchStreamsDropped += l.watchStreamsDropped;
  };
  for (const l of more) add(l);
  for (const { routes, watches } of gateways) {
    add({
      inflight: routes.admission.inflight, watchStreams: watches.streams,
      watchBufferedBytes: watches.bufferedBytes, watchBufferedBytesPeak: watches.bufferedBytesPeak,
      watchStreamsDropped: watches.dropped,
    });
  }
  return sum;
}

/** startGateway builds the server and listens exclusively on host:port (port 0 picks a free
 * port), or on the port a reservation holds (src/server/listen.ts), handed over without a gap.
 * With reusePort (the gateway threads of src/gateway/pool.ts) it binds with SO_REUSEPORT
 * instead, next to its sibling threads, and takes no reservation. */
export async function startGateway(
  deps: GatewayDeps, host: string, port: number, reservation?: Reservation, tls?: ClientTls,
  reusePort = false,
): Promise<Gateway> {
  const { server, routes, watches, setRelay } = buildGateway(deps, tls);
  if (tls !== undefined && setRelay !== undefined) {
    const { relay, port: bound } = await listenRelayed(server, tls, host, port, reservation,
      setRelay);
    deps.auth?.certUsers.push((ip) => relay.userOf(ip));
    return { server, port: bound, routes, watches };
  }
  if (reservation !== undefined) await listenExclusive(server, reservation);
  else {
    if (!reusePort) exclusiveApp(server.uws_instance as unknown as ListenApp);
    await server.listen(port, host);
  }
  return { server, port: server.port, routes, watches };
}

/** buildGateway builds the server and its routes without listening (the main thread's gRPC
 * front end uses its watch streams when the gateway threads serve HTTP). */
export function buildGateway(deps: GatewayDeps, tls?: ClientTls): Omit<Gateway, 'port'> & {
  setRelay: ReturnType<typeof guardInner> | undefined;
} {
  const limits = requestLimits();
  const server = new HyperExpress.Server({
    ...uwsTlsOptions(tls),
    // Accept more than etcd's limits so that an oversized request gets etcd's own error
    // (from the decoders) instead of a bare 413 from the HTTP layer; past this, the guard
    // answers 413 without reading on (http-guard.ts).
    max_body_length: limits.httpBodyBytesMax,
    fast_buffers: true,
  });
  installGuard(server, {
    bodyBytesMax: limits.httpBodyBytesMax,
    receivingBytesMax: Math.max(bodyBytesReceivingMax, 4 * limits.httpBodyBytesMax),
    streamPaths: new Set(['/v3/watch', '/v3beta/watch', '/v3/lease/keepalive',
      '/v3beta/lease/keepalive']),
    onRefused: deps.onBodyRefused,
    cors: deps.cors ?? ['*'],
    ...(deps.receivingShared === undefined ? {} : { receivingShared: deps.receivingShared }),
  });
  // With client-cert-auth only the TLS relay's connections reach uWS (src/gateway/tls.ts).
  const setRelay = tls?.clientCertAuth === true ? guardInner(server) : undefined;
  const routes = new Routes(server, deps);
  registerV3Routes(routes);
  registerV1Routes(routes);
  const watches = registerWatchRoutes(routes);
  pushesOf(deps).add(watches);
  registerLeaseRoutes(routes);
  registerClusterRoutes(routes);
  registerAlarmRoutes(routes);
  registerTraceRoutes(routes);
  registerDashboardRoutes(routes);
  registerThreadRoutes(routes);
  registerAuthRoutes(routes);
  registerServerRoutes(server, deps);
  return { server, routes, watches, setRelay };
}

/** pushes: each thread's WatchPushes, by the endpoint the hub pushes to. */
const pushes = new WeakMap<object, WatchPushes>();

/** pushesOf gives the endpoint's push router, installing it as the endpoint's one push
 * handler the first time (the first listener); later listeners join it. */
function pushesOf(deps: GatewayDeps): WatchPushes {
  const ep = deps.system.gateway;
  let p = pushes.get(ep);
  if (p === undefined) {
    const router = new WatchPushes((msg) => deps.kv.onPush(msg));
    ep.onMessage((msg) => router.dispatch(msg));
    pushes.set(ep, p = router);
  }
  return p;
}

/** startMetricsServer serves etcd's --listen-metrics-urls: /metrics and /health alone, as the
 * client port answers them; any other path is 404. */
export async function startMetricsServer(
  deps: Pick<GatewayDeps, 'system' | 'kv' | 'metricsText'>, reservation: Reservation,
): Promise<{ server: HyperExpress.Server; port: number }> {
  const server = new HyperExpress.Server({ max_body_length: 4096 });
  registerHealthAndMetrics(server, deps);
  server.set_not_found_handler((_req, res) => {
    res.status(404).type('text').send('Not Found\n');
  });
  await listenExclusive(server, reservation);
  return { server, port: server.port };
}

/** registerServerRoutes adds /health, /version, /metrics and the answers for unknown paths,
 * wrong methods and thrown errors. */
function registerServerRoutes(server: HyperExpress.Server, deps: GatewayDeps): void {
  registerHealthAndMetrics(server, deps);
  server.get('/version', (_req, res) => {
    res.header('content-type', 'application/json')
      .send(encodeVersion(etcdServerVersion, etcdClusterVersion));
  });
  // As etcd: any OPTIONS (a browser's preflight) is answered 200 with nothing more; its CORS
  // headers come from the guard, as every answer's (http-guard.ts).
  server.options('/*', (_req, res) => {
    res.status(200).send();
  });
  // Unknown paths and wrong methods answer as etcd's Go HTTP mux does.
  const known = (path: string): boolean => {
    const table = server.routes as unknown as Record<string, Record<string, unknown>>;
    return Object.values(table).some((byPath) => byPath[path] !== undefined);
  };
  server.set_not_found_handler((req, res) => {
    if (known(req.path)) res.status(405).type('text').send('Method Not Allowed\n');
    else res.status(404).type('text').send('Not Found\n');
  });
  server.set_error_handler((_req, res, err) => {
    const eb = errorBody(err);
    if (!res.completed) {
      res.status(eb.status).header('content-type', 'application/json').send(eb.body);
    }
  });
}

/** registerHealthAndMetrics adds /health and /metrics (the client port's and the metrics
 * listeners'). */
function registerHealthAndMetrics(server: HyperExpress.Server,
  deps: Pick<GatewayDeps, 'system' | 'kv' | 'metricsText'>): void {
  server.get('/health', async (_req, res) => {
    let healthy = false;
    if (deps.system.serving) {
      try {
        // etcd 3.4 is unhealthy while any alarm is active (NOSPACE too).
        const st = await deps.kv.status();
        healthy = st.leader !== 0 && st.alarms.length === 0;
      } catch {
        healthy = false;
      }
    }
    // etcd 3.4 answers {"health":"true"} / {"health":"false"} as text/plain.
    res.status(healthy ? 200 : 503).type('text').send(encodeHealth(healthy));
  });
  server.get('/metrics', async (_req, res) => {
    const m = await deps.metricsText();
    res.header('content-type', m.contentType).send(m.body);
  });
}
