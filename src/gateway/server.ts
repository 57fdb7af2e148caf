import HyperExpress from 'hyper-express';
import { ApiError, overloadError } from '../api/errors.js';
import { encodeHealth, encodeVersion, maxHttpBodyBytes } from '../api/v3.js';
import { gatewayInflightMax } from '../constants.js';
import type { ActorSystem } from '../runtime/system.js';
import type { KvService } from './kv-service.js';
import { errorBody } from './errors.js';
import { registerV1Routes } from './v1-routes.js';
import { registerV3Routes } from './v3-routes.js';
import { registerClusterRoutes } from './cluster-routes.js';
import { registerLeaseRoutes } from './lease-routes.js';
import { registerWatchRoutes, type WatchGateway } from './watch-routes.js';

/**
 * server: the gateway thread's HTTP server (hyper-express on uWebSockets). It parses and
 * validates requests, admits them against the in-flight limit, hands them to KvService, and
 * writes the answer. It never blocks on the actors: every handler awaits a reply, and a burst
 * of requests in one poll phase leaves for the actors as one batch.
 */

/** etcdServerVersion / etcdClusterVersion: the etcd release whose API we answer as. */
export const etcdServerVersion = '3.4.23';
export const etcdClusterVersion = '3.4.0';

/** GatewayDeps is what the routes need. */
export interface GatewayDeps {
  kv: KvService;
  system: ActorSystem;
  version: string;
  metricsText: () => Promise<{ contentType: string; body: string }>;
  observe?: (route: string, method: string, code: number, seconds: number) => void;
}

/** Admission tracks requests accepted but not answered (bounded: gatewayInflightMax). */
export class Admission {
  inflight = 0;
  constructor(private readonly deps: GatewayDeps) {}

  /** refuse returns the error to answer instead of serving, or undefined. */
  refuse(): Error | undefined {
    if (!this.deps.system.serving) {
      return new ApiError('STOPPED', 'etcdserver: server is restarting');
    }
    if (this.inflight >= gatewayInflightMax || this.deps.kv.mailboxDepth >= gatewayInflightMax) {
      return overloadError();
    }
    return undefined;
  }
}

/** JsonHandler turns a parsed request body into [status, JSON text]. */
export type JsonHandler = (body: string, req: HyperExpress.Request) => Promise<[number, string]>;

/** Route registers handlers with the shared admission, error mapping and metrics. */
export class Routes {
  readonly admission: Admission;
  constructor(readonly server: HyperExpress.Server, readonly deps: GatewayDeps) {
    this.admission = new Admission(deps);
  }

  /** json serves a route whose answer is one JSON document. */
  json(
    method: 'get' | 'post' | 'put' | 'delete', path: string, fn: JsonHandler,
    onError: (e: unknown) => { status: number; body: string } = errorBody,
  ): void {
    const route = path;
    this.server[method](path, async (req, res) => {
      const t0 = performance.now();
      let status = 200;
      let text: string;
      const refused = this.admission.refuse();
      if (refused !== undefined) {
        ({ status, body: text } = onError(refused));
      } else {
        this.admission.inflight++;
        try {
          const body = method === 'get' || method === 'delete' ? '' : await req.text();
          [status, text] = await fn(body, req);
        } catch (e) {
          ({ status, body: text } = onError(e));
        } finally {
          this.admission.inflight--;
        }
      }
      if (res.closed) return;
      res.status(status).header('content-type', 'application/json').send(text);
      this.deps.observe?.(route, method, status, (performance.now() - t0) / 1000);
    });
  }
}

/** startGateway builds the server and listens on host:port (port 0 picks a free port). */
export async function startGateway(
  deps: GatewayDeps, host: string, port: number,
): Promise<{ server: HyperExpress.Server; port: number; routes: Routes; watches: WatchGateway }> {
  const server = new HyperExpress.Server({
    // Accept more than etcd's limits so that an oversized request gets etcd's own error
    // (from the decoders) instead of a bare 413 from the HTTP layer.
    max_body_length: maxHttpBodyBytes,
    fast_buffers: true,
  });
  const routes = new Routes(server, deps);
  registerV3Routes(routes);
  registerV1Routes(routes);
  const watches = registerWatchRoutes(routes, { installHandler: false });
  deps.system.gateway.onMessage((msg) => {
    if (!watches.dispatch(msg)) deps.kv.onPush(msg);
  });
  registerLeaseRoutes(routes);
  registerClusterRoutes(routes);
  server.get('/health', async (_req, res) => {
    let healthy = false;
    if (deps.system.serving) {
      try {
        healthy = (await deps.kv.status()).leader !== 0;
      } catch {
        healthy = false;
      }
    }
    // etcd 3.4 answers {"health":"true"} / {"health":"false"} as text/plain.
    res.status(healthy ? 200 : 503).type('text').send(encodeHealth(healthy));
  });
  server.get('/version', (_req, res) => {
    res.header('content-type', 'application/json')
      .send(encodeVersion(etcdServerVersion, etcdClusterVersion));
  });
  server.get('/metrics', async (_req, res) => {
    const m = await deps.metricsText();
    res.header('content-type', m.contentType).send(m.body);
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
    if (!res.closed) res.status(eb.status).header('content-type', 'application/json').send(eb.body);
  });
  await server.listen(port, host);
  return { server, port: server.port, routes, watches };
}
