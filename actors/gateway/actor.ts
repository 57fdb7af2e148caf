import { parentPort } from 'node:worker_threads';
import { Registry } from 'prom-client';
import { setRequestLimits } from '../../src/api/limits.js';
import { assertNever } from '../../src/assert.js';
import {
  gatewayFlushIntervalMs, gatewayObservationsMax, shutdownDrainMsMax,
} from '../../src/constants.js';
import { EtcdError } from '../../src/errors.js';
import { startAuth } from '../../src/gateway/auth-gate.js';
import { KvService } from '../../src/gateway/kv-service.js';
import type { GatewayDeps, GatewaySystem } from '../../src/gateway/routes.js';
import { type Gateway, gatewayLoad, startGateway } from '../../src/gateway/server.js';
import { type Message, portTransport } from '../../src/runtime/endpoint.js';
import type { ThreadInfo } from '../../src/runtime/thread-id.js';
import type { TracesReport } from '../../src/runtime/trace.js';
import { startActor } from '../../src/runtime/worker.js';
import { readPointRegion } from '../raft/messages.js';
import type {
  GatewayThreadConfig, GwCallKind, GwListen, GwObservation, GwObserved, GwToMain, GwToThread,
} from './messages.js';

/**
 * A gateway thread (--experimental-gateway-threads): the HTTP front end of the main thread's
 * gateway (src/gateway/server.ts, the same routes), on a worker thread of its own, serving
 * the client port next to its sibling threads (the kernel spreads connections over them:
 * SO_REUSEPORT). Its KvService batches its own requests per turn toward the Raft node and the
 * shards over its own channels; its watch streams get their events from the hub directly
 * (stream ids ≡ its index, actors/watch/actor.ts); its auth gate follows the Raft node's
 * AuthChanged pushes, which go to every gateway thread.
 *
 * What exists once stays on the main thread, asked over the control channel (messages.ts):
 * /metrics, the dashboard and the traces of every thread. Requests answered here are handed to
 * the main thread in batches (GwObserved) for the request metrics and the dashboard.
 */
const ctx = startActor<Message, GatewayThreadConfig>();
const cfg = ctx.config;
const ep = ctx.ep;
const control = parentPort!;
setRequestLimits(cfg.maxRequestBytes, cfg.maxTxnOps);

const state = { serving: false, stopping: false, generation: 0 };
const calls = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
let callIds = 0;

/** post sends the main thread one message of the gateway protocol. */
function post(m: GwToMain): void {
  control.postMessage(m);
}

/** call asks the main thread for what only it computes (bounded by the main thread's own
 * deadlines: every kind answers within its scrape timeouts, or with an error). */
function call(kind: GwCallKind): Promise<unknown> {
  const id = ++callIds;
  return new Promise((resolve, reject) => {
    calls.set(id, { resolve, reject });
    post({ gw: 'call', id, kind });
  });
}

const system: GatewaySystem = {
  gateway: ep,
  get serving() { return state.serving; },
  get stopping() { return state.stopping; },
  get currentGeneration() { return state.generation; },
  actorTraces: async () => (await call('traces')) as Map<string, TracesReport>,
  threads: async () => (await call('threads')) as ThreadInfo[],
};
const kv = new KvService(ep, cfg.shardCount, cfg.memberId, cfg.clusterId);
const authReady = startAuth(cfg.auth, kv, new Registry()).then((gate) => {
  gate.catchUp = () => kv.status().then(() => undefined);
  gate.onFailure = () => { bytes.authFailures++; };
  return gate;
});
authReady.catch(() => undefined);

let observations: GwObservation[] = [];
let dropped = 0;
let requests = 0;
const bytes = { received: 0, sent: 0, refused: 0, authFailures: 0 };
const gateways: Gateway[] = [];

/** observed builds the report of what was answered since the last one. */
function observed(flush: number): GwObserved {
  const m: GwObserved = {
    gw: 'observed', requests, observations, dropped, flush, readPoints: { ...kv.readPoints },
    authFailures: bytes.authFailures, receivedBytes: bytes.received, sentBytes: bytes.sent,
    bodiesRefused: bytes.refused, ...gatewayLoad(gateways),
  };
  observations = [];
  dropped = 0;
  bytes.received = bytes.sent = bytes.refused = bytes.authFailures = 0;
  return m;
}

setInterval(() => {
  if (observations.length > 0 || dropped > 0 || bytes.authFailures > 0) post(observed(0));
}, gatewayFlushIntervalMs).unref();

async function listen(m: GwListen): Promise<void> {
  try {
    const auth = await authReady;
    const deps: GatewayDeps = {
      kv, system, version: cfg.version, auth, gatewayIndex: cfg.index,
      receivingShared: cfg.receivingShared,
      metricsText: async () => (await call('metrics')) as { contentType: string; body: string },
      observe: (route, method, code, seconds) => {
        requests++;
        if (observations.length >= gatewayObservationsMax) {
          observations.shift();
          dropped++;
        }
        observations.push([route, method, code, seconds]);
      },
      countBytes: (received, sent) => {
        bytes.received += received;
        bytes.sent += sent;
      },
      onBodyRefused: () => { bytes.refused++; },
      traceSampleRate: cfg.traceSampleRate,
      dashboard: {
        name: cfg.name,
        snapshot: async () => (await call('dashboard')) as never,
      },
      watchBufferedBytesMax: cfg.watchBufferedBytesMax,
      cors: cfg.cors,
    };
    const ports: number[] = [];
    for (const u of m.urls) {
      const g = await startGateway(deps, u.host, u.port, undefined, u.tls, true);
      gateways.push(g);
      ports.push(g.port);
    }
    post({ gw: 'listened', ports });
  } catch (e) {
    post({ gw: 'listened', ports: [], error: e instanceof Error ? e.message : String(e) });
  }
}

/** close stops accepting, ends the watch streams with "server stopped" and waits (bounded)
 * until no request is in flight. */
async function close(): Promise<void> {
  for (const g of gateways) g.watches.closeAll(new EtcdError('STOPPED'));
  for (const g of gateways) g.server.close();
  const deadline = Date.now() + shutdownDrainMsMax;
  while (gateways.some((g) => g.routes.admission.inflight > 0) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 5));
  }
  // Every connection closes now (idle keep-alive ones included): a uWS socket still open
  // when the thread is terminated aborts the process (Node's CheckedUvLoopClose).
  for (const g of gateways) (g.server.uws_instance as unknown as { close(): void }).close();
  post({ gw: 'closed' });
}

function handle(m: GwToThread): void {
  switch (m.gw) {
    case 'ports':
      for (const [name, port] of Object.entries(m.ports)) {
        ep.failActor(name);
        ep.connect(name, portTransport(port));
      }
      kv.setReadPoint(m.shared[readPointRegion]);
      break;
    case 'state': {
      const wasServing = state.serving;
      Object.assign(state, { serving: m.serving, stopping: m.stopping,
        generation: m.generation });
      ep.stopping = m.stopping;
      if (wasServing && !m.serving && !m.stopping) {
        // The actors are being restarted: what they were asked will never be answered.
        for (const name of ep.targetNames()) ep.failActor(name);
      }
      if (!wasServing && m.serving) void kv.refresh().catch(() => undefined);
      break;
    }
    case 'listen':
      void listen(m);
      break;
    case 'callResp': {
      const c = calls.get(m.id);
      calls.delete(m.id);
      if (m.error !== undefined) c?.reject(new Error(m.error));
      else c?.resolve(m.value);
      break;
    }
    case 'flush':
      post(observed(m.id));
      break;
    case 'close':
      void close();
      break;
    default:
      assertNever(m);
  }
}

control.on('message', (m: GwToThread | { control: string }) => {
  if ('gw' in m) handle(m);
});
ctx.ready();
