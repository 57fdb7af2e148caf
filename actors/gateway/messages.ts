import type { MessagePort } from 'node:worker_threads';
import type { ReadPointCounts } from '../../src/gateway/kv-service.js';
import type { AuthGateOptions } from '../../src/gateway/auth-gate.js';
import type { ClientTls } from '../../src/gateway/tls.js';
import type { GatewayLoad } from '../../src/metrics/index.js';

/**
 * The gateway thread's protocol (--experimental-gateway-threads). A gateway thread serves the
 * client port's HTTP next to its siblings (SO_REUSEPORT, src/gateway/pool.ts) and talks to
 * the actors over its own channels, like the main thread's gateway. With the main thread (the
 * supervisor) it speaks on the worker's control channel, beside the runtime's own control
 * messages (stats, traces, stop: src/runtime/worker.ts), with these:
 *
 *  main → gateway: GwPorts (each generation's channels to the actors), GwState (serving,
 *    stopping), GwListen (bind the client URLs), GwClose (stop accepting, end the watch
 *    streams with "server stopped"), GwCallResp (the answer to a GwCall), GwFlush.
 *  gateway → main: GwListened, GwCall (what only the main thread can answer: /metrics, the
 *    dashboard, the traces of every thread), GwObserved (answered requests, for /metrics and
 *    the dashboard; also the answer to GwFlush), GwClosed (no request in flight any more).
 */

/** GwListenUrl is one client URL a gateway thread binds (already reserved and resolved). */
export interface GwListenUrl {
  url: string;
  host: string;
  port: number;
  tls?: ClientTls;
}

/** GatewayThreadConfig is a gateway thread's start-up configuration (its workerData.config). */
export interface GatewayThreadConfig {
  /** index: this thread is 'gateway-<index>' (1 …); its watch stream ids are ≡ index. */
  index: number;
  shardCount: number;
  memberId: number;
  clusterId: number;
  version: string;
  maxRequestBytes: number;
  maxTxnOps: number;
  watchBufferedBytesMax: number;
  /** cors: --cors (the main thread's Config.cors). */
  cors: string[];
  traceSampleRate: number;
  auth: AuthGateOptions;
  /** name is the member's name (the dashboard's /debug/member line). */
  name: string;
  /** receivingShared: the body bytes being received, counted by all gateway threads. */
  receivingShared: SharedArrayBuffer;
}

/** GwPorts hands over one generation's channels to the actors, by actor name. */
export interface GwPorts {
  gw: 'ports';
  generation: number;
  ports: Record<string, MessagePort>;
  /** shared: the generation's shared memory regions (src/runtime/system.ts SharedRegions). */
  shared: Readonly<Record<string, SharedArrayBuffer>>;
}

/** GwState mirrors the supervisor's state (src/runtime/system.ts onState). */
export interface GwState {
  gw: 'state';
  serving: boolean;
  stopping: boolean;
  generation: number;
}

/** GwListen asks the thread to bind its client URLs (SO_REUSEPORT: shared with its siblings). */
export interface GwListen {
  gw: 'listen';
  urls: GwListenUrl[];
}

/** GwListened answers GwListen: the ports bound, or why not. */
export interface GwListened {
  gw: 'listened';
  ports: number[];
  error?: string;
}

/** GwCallKind names what a gateway thread asks the main thread to compute. */
export type GwCallKind = 'metrics' | 'dashboard' | 'traces' | 'threads';

/** GwCall asks the main thread for something only it has (answered by GwCallResp). */
export interface GwCall {
  gw: 'call';
  id: number;
  kind: GwCallKind;
}

/** GwCallResp answers a GwCall: the value (structured-cloned) or an error message. */
export interface GwCallResp {
  gw: 'callResp';
  id: number;
  value?: unknown;
  error?: string;
}

/** GwObservation is one answered request: route, method, status and seconds. */
export type GwObservation = [string, string, number, number];

/** GwObserved carries the requests answered since the last one (bounded: the oldest are
 * dropped past gatewayObservationsMax, counted in `dropped`), and the thread's gauges. */
export interface GwObserved extends GatewayLoad {
  gw: 'observed';
  /** requests counts every request this thread answered since it started. */
  requests: number;
  observations: GwObservation[];
  dropped: number;
  /** receivedBytes / sentBytes: the JSON bodies read and answered since the last one. */
  receivedBytes: number;
  sentBytes: number;
  bodiesRefused: number;
  /** authFailures: authentications refused (myetcd_auth_failures_total). */
  authFailures: number;
  /** flush: the GwFlush id this answers (0: sent on the thread's own timer). */
  flush: number;
  /** readPoints: how this thread's linearizable reads found their read point, since it
   * started (KvService.readPoints). */
  readPoints: ReadPointCounts;
}

/** GwFlush asks for a GwObserved now (before /metrics renders). */
export interface GwFlush {
  gw: 'flush';
  id: number;
}

/** GwClose stops accepting connections and ends every watch stream with "server stopped". */
export interface GwClose {
  gw: 'close';
}

/** GwClosed: the thread has no request in flight any more (or gave up waiting). */
export interface GwClosed {
  gw: 'closed';
}

/** GwToThread is what the main thread sends a gateway thread. */
export type GwToThread = GwPorts | GwState | GwListen | GwCallResp | GwFlush | GwClose;

/** GwToMain is what a gateway thread sends the main thread. */
export type GwToMain = GwListened | GwCall | GwObserved | GwClosed;
