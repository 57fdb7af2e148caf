import type HyperExpress from 'hyper-express';
import type { ThreadInfo } from '../runtime/thread-id.js';
import { EtcdError } from '../errors.js';
import { gatewayInflightMax } from '../constants.js';
import type { ActorSystem } from '../runtime/system.js';
import { errorBody } from './errors.js';
import type { Dashboard } from './dashboard.js';
import { bodyText } from './http-guard.js';
import type { KvService } from './kv-service.js';
import { startRequestTrace, traceIdHeader } from './request-trace.js';
import type { AuthGate } from './auth-gate.js';
import type { AuthInfo } from '../auth/store.js';
import type { RequestOp, WriteRequest } from '../mvcc/types.js';

/**
 * routes: the registry every route module registers with. A route module exports one
 * `register…Routes(r: Routes)` function and imports this file, never server.ts; server.ts
 * creates the registry and calls each module's function (the list in server.ts is the table
 * of contents). The registry owns what every route shares: admission against the in-flight
 * limit, the error mapping, and the request metrics.
 */

/** GatewaySystem is what the routes use of the supervisor: the ActorSystem on the main
 * thread, its mirror on a gateway thread (actors/gateway/actor.ts). */
export type GatewaySystem = Pick<ActorSystem,
  'gateway' | 'serving' | 'stopping' | 'currentGeneration' | 'actorTraces'> & {
  /** threads lists every named thread's OS id (a gateway thread asks the main thread). */
  threads(): ThreadInfo[] | Promise<ThreadInfo[]>;
};

/** GatewayDeps is what the routes need. */
export interface GatewayDeps {
  kv: KvService;
  system: GatewaySystem;
  version: string;
  metricsText: () => Promise<{ contentType: string; body: string }>;
  observe?: (route: string, method: string, code: number, seconds: number) => void;
  /** countBytes counts a JSON request's body and answer (the API's JSON is ASCII, so string
   * lengths are bytes): etcd_network_client_grpc_{received,sent}_bytes_total. */
  countBytes?: (received: number, sent: number) => void;
  /** traceSampleRate: the fraction of requests traced without asking (--trace-sample-rate). */
  traceSampleRate?: number;
  /** dashboard computes GET /debug/dashboard (src/gateway/dashboard.ts). */
  dashboard?: Pick<Dashboard, 'snapshot' | 'name'>;
  /** onBodyRefused counts a body refused for its size (413). */
  onBodyRefused?: () => void;
  /** watchBufferedBytesMax: --experimental-watch-buffered-bytes-max (default: constants.ts). */
  watchBufferedBytesMax?: number;
  /** cors: --cors, the origins whose browser pages may call the API (absent: '*', any). */
  cors?: readonly string[];
  /** auth checks tokens and permissions (src/gateway/auth-gate.ts); absent: no auth. */
  auth?: AuthGate;
  /** gatewayIndex: this gateway thread's number (0: the main thread; i: 'gateway-i'). */
  gatewayIndex?: number;
  /** receivingShared: the gateway threads' shared count of body bytes being received. */
  receivingShared?: SharedArrayBuffer;
}

/** ErrorBody is an HTTP error answer: status and complete JSON body. */
export type ErrorBody = { status: number; body: string };

// The refusals are built once: under overload every request is refused, and each would
// otherwise capture a stack trace that no answer shows.
const restarting = new EtcdError('RESTARTING');
const stopped = new EtcdError('STOPPED');
const overloaded = new EtcdError('TOO_MANY_REQUESTS');

/** Admission tracks requests accepted but not answered (bounded: gatewayInflightMax). */
export class Admission {
  inflight = 0;
  constructor(private readonly deps: GatewayDeps) {}

  /** refuse returns the error to answer instead of serving, or undefined. */
  refuse(): EtcdError | undefined {
    if (this.deps.system.stopping) return stopped;
    if (!this.deps.system.serving) return restarting;
    if (this.inflight >= gatewayInflightMax || this.deps.kv.mailboxDepth >= gatewayInflightMax) {
      return overloaded;
    }
    return undefined;
  }
}

/** JsonHandler turns a parsed request body into [status, JSON text]. */
export type JsonHandler = (body: string, req: HyperExpress.Request) => Promise<[number, string]>;

/** Routes registers handlers with the shared admission, error mapping and metrics. */
export class Routes {
  readonly admission: Admission;
  constructor(readonly server: HyperExpress.Server, readonly deps: GatewayDeps) {
    this.admission = new Admission(deps);
  }

  /** json serves a route whose answer is one JSON document. */
  json(
    method: 'get' | 'post' | 'put' | 'delete', path: string, fn: JsonHandler,
    onError: (e: unknown) => ErrorBody = errorBody,
  ): void {
    const route = path;
    this.server[method](path, async (req, res) => {
      const t0 = performance.now();
      let status = 200;
      let text: string;
      let received = 0;
      const refused = this.admission.refuse();
      const trace = refused === undefined ? startRequestTrace(this.deps.system.gateway, req,
        method, route, this.deps.traceSampleRate ?? 0) : undefined;
      if (refused !== undefined) {
        ({ status, body: text } = onError(refused));
      } else {
        this.admission.inflight++;
        try {
          const body = method === 'get' || method === 'delete' ? '' : await bodyText(req, res);
          received = body.length;
          [status, text] = await (trace === undefined ? fn(body, req)
            : trace.run(() => fn(body, req)));
        } catch (e) {
          ({ status, body: text } = onError(e));
        } finally {
          this.admission.inflight--;
        }
      }
      // `completed`: the client went away (hyper-express's `closed` is a Writable's getter:
      // reading it built a stream per request and never became true).
      if (trace !== undefined) {
        trace.end(status);
        if (!res.completed) res.header(traceIdHeader, trace.traceId);
      }
      if (!res.completed) res.status(status).header('content-type', 'application/json').send(text);
      this.deps.observe?.(route, method, status, (performance.now() - t0) / 1000);
      this.deps.countBytes?.(received, text.length);
    });
  }

  /** checkKv resolves the caller's token and checks a KV request's permissions (every front
   * end calls it before serving); the AuthInfo to send with a write, undefined without auth. */
  checkKv(req: HyperExpress.Request, q: RequestOp | WriteRequest):
    AuthInfo | undefined | Promise<AuthInfo | undefined> {
    const gate = this.deps.auth;
    if (gate === undefined) return undefined;
    // Without a token (auth disabled, the usual case) no promise is made per request.
    const now = gate.whoNow(req);
    if (now === undefined) return gate.who(req).then((by) => (gate.checkKv(by, q), by));
    gate.checkKv(now, q);
    return now;
  }

  /** checkAdmin resolves the caller's token and requires the root role (while auth is on). */
  async checkAdmin(req: HyperExpress.Request): Promise<void> {
    const gate = this.deps.auth;
    if (gate === undefined) return;
    gate.checkAdmin(await gate.who(req));
  }

  /** who resolves the caller's token (undefined without auth; invalid: "invalid auth token"). */
  async who(req: HyperExpress.Request): Promise<AuthInfo | undefined> {
    return this.deps.auth?.who(req);
  }

  /** refusal is admission's answer for a stream route, as an error body (undefined: serve). */
  refusal(onError: (e: unknown) => ErrorBody = errorBody): ErrorBody | undefined {
    const refused = this.admission.refuse();
    return refused === undefined ? undefined : onError(refused);
  }
}
