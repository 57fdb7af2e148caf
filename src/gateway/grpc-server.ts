import * as grpc from '@grpc/grpc-js';
import * as net from 'node:net';
import { Duplex } from 'node:stream';
import type { LeaseMsg, LeaseReplies } from '../../actors/lease/messages.js';
import type { RaftMembersResp, RaftMsg, RaftReplies } from '../../actors/raft/messages.js';
import {
  checkCompactionRequest, checkDeleteRangeRequest, checkPutRequest, checkRangeRequest,
  checkTxnRequest,
} from '../api/v3-decode.js';
import { etcdClusterVersion, etcdServerVersion } from '../api/v3.js';
import { createHash } from 'node:crypto';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { type Config, grpcKeepaliveMs } from '../config/index.js';
import { urlProblem } from '../config/values.js';
import { countGrpc, type GrpcCounts, type Metrics } from '../metrics/index.js';
import {
  grpcConcurrentStreamsMax, grpcHttp1PassedMax, grpcOpeningBytesMax, grpcOverheadBytes,
  grpcStreamWritesPendingMax, requestBytesMax,
  allKvsAttemptsMax, allKvsPageKeys, snapshotChunkBytes, snapshotStepMs,
} from '../constants.js';
import {
  answerOf, EtcdError, errorTable, grpcCodeName, GrpcCode, toEtcdError,
} from '../errors.js';
import type { AuthorityRewriter } from '../grpc/authority.js';
import { ConnectionOpening, type Opened } from '../grpc/opening.js';
import { splice } from './splice.js';
import * as pb from '../grpc/codec.js';
import {
  rangeEntriesResponse, rangeResponseBytes, watchResponseBytes,
} from '../grpc/wire.js';
import { entriesRangeable } from '../mvcc/shard-store.js';
import { SnapshotKeys, snapshotDbSteps } from '../grpc/snapshot.js';
import { loadEtcdServices } from '../grpc/proto.js';
import type { Member } from '../cluster/membership.js';
import { bindError, type Reservation } from '../server/listen.js';
import type { ActorRef } from '../runtime/endpoint.js';
import type { AuthInfo } from '../auth/store.js';
import type {
  KeyValue, RequestOp, ResponseHeader, WriteRequest,
} from '../mvcc/types.js';
import type { Revision } from '../types.js';
import type { WatchResponse } from '../watch/types.js';
import { Admission, type GatewayDeps } from './routes.js';
import { askAlarm } from './alarm-routes.js';
import { runAuthCall } from './auth-routes.js';
import { type AuthPath, decodeAuthRequest } from '../api/auth.js';
import type { JsonValue } from '../api/gojson.js';
import { permTypes } from '../auth/store.js';
import { bufferFromBytes } from '../bytes.js';
import type { AlarmRequest } from '../api/alarm.js';
import { alarmActions, alarmTypes } from '../alarms.js';
import type { Sink, SinkStream, WatchGateway } from './watch-routes.js';

/**
 * grpc-server: etcd 3.4's gRPC API (etcdserverpb's KV, Watch, Lease, Cluster and Maintenance
 * services, and grpc.health.v1) on @grpc/grpc-js, so that etcdctl and etcd's client libraries
 * work against MyEtcd unchanged. It is a second front door of the gateway thread, not a second
 * path to the data: every call is mapped by src/grpc/codec.ts to the same internal request the
 * JSON gateway builds, passes the same etcd checks (src/api/v3-decode.ts), and goes to the same
 * KvService (read-index batching, shard fan-out), lease actor, Raft node and watch hub
 * (WatchGateway: one stream id space, one flow control). Errors come from the one table
 * (src/errors.ts: answerOf gives the gRPC code and etcd's text).
 *
 * It listens on its own port (--listen-client-grpc-urls): etcd multiplexes gRPC and HTTP on
 * one port, but hyper-express (uWebSockets) parses every connection itself as HTTP/1.1 and
 * cannot hand an HTTP/2 connection over to another server (docs/configuration.md). The other
 * way round works: an HTTP/1.x connection to this port is passed to the HTTP listener
 * (passHttp1), so this port answers what etcd's client port answers.
 *
 * Limits: a request message over --max-request-bytes + 512 KiB is refused by grpc-js
 * (ResourceExhausted, as grpc-go refuses it for etcd), a write over --max-request-bytes gets
 * etcd's "request is too large"; at most grpcConcurrentStreamsMax calls per connection; a
 * Watch stream holds at most watchStreamEventsMax unflushed events (the hub waits for the
 * writes' callbacks), a LeaseKeepAlive stream stops reading its requests while
 * grpcStreamWritesPendingMax answers are unflushed. A message that is not valid protobuf
 * fails its call (Internal, "Error deserializing request"); the server keeps serving.
 */

/** GrpcGatewayDeps is what the gRPC gateway needs: the HTTP gateway's deps and its watches. */
export interface GrpcGatewayDeps extends GatewayDeps {
  watches: WatchGateway;
  /** grpcClientUrls: the URLs gRPC clients dial (this member's, for MemberList). */
  grpcClientUrls: () => string[];
  /** grpcCounts gives a method's counting record of RPCs and messages (Metrics.grpcCounts). */
  grpcCounts?: (type: string, service: string, method: string) => GrpcCounts;
  /** maxRequestBytes is --max-request-bytes (the receive limit adds grpcOverheadBytes). */
  maxRequestBytes?: number;
  /** maxConcurrentStreams is --max-concurrent-streams (calls open at once on a connection). */
  maxConcurrentStreams?: number;
  /** keepalive: --grpc-keepalive-interval and --grpc-keepalive-timeout (interval 0: no pings). */
  keepalive?: { intervalMs: number; timeoutMs: number };
  /** onConnection counts a client connection by how it was handed over (src/grpc/opening.ts). */
  onConnection?: (handover: Handover) => void;
  /** http1: where an HTTP/1.x connection to this port is passed (this member's HTTP client
   * listener, as etcd serves both on one port); absent, the HTTP/2 server refuses it. */
  http1?: { host: string; port: number };
}

/** Handover is how a client connection reached its server: grpc-js with the bare socket or
 * through the authority rewriter, or the HTTP listener (an HTTP/1.x client). */
export type Handover = 'bare' | 'rewritten' | 'http1';

/** GrpcGateway is a started gRPC server. */
export interface GrpcGateway {
  server: grpc.Server;
  port: number;
  admission: Admission;
  /** close stops accepting calls and ends open streams. */
  close(): void;
}

type Handler = grpc.UntypedHandleCall;
type UnaryCall = grpc.ServerUnaryCall<pb.Pb, pb.Pb>;
type DuplexCall = grpc.ServerDuplexStream<pb.Pb, pb.Pb>;

/** statusOf is a thrown value as a gRPC status: the error table's code and etcd's text. */
export function statusOf(e: unknown): Partial<grpc.StatusObject> {
  const a = answerOf(e);
  return { code: a.grpcCode, details: a.text };
}

const noLeader = new EtcdError('NO_LEADER');

/** startGrpcGateway serves the gRPC API on the reservation's port (released and bound in one
 * step; a port taken meanwhile is the same one-line startup error as for HTTP). */
export async function startGrpcGateway(deps: GrpcGatewayDeps, r: Reservation):
  Promise<GrpcGateway> {
  const services = loadEtcdServices();
  // Pings as etcd's server sends them (--grpc-keepalive-interval): a connection that does
  // not answer is closed — among them one whose HTTP/2 session Node stopped reading after a
  // protocol error, which would otherwise stay open after its client left.
  const ka = deps.keepalive;
  const server = new grpc.Server({
    'grpc.max_receive_message_length': (deps.maxRequestBytes ?? requestBytesMax) +
      grpcOverheadBytes,
    'grpc.max_concurrent_streams': deps.maxConcurrentStreams ?? grpcConcurrentStreamsMax,
    ...(ka !== undefined && ka.intervalMs > 0 ? { 'grpc.keepalive_time_ms': ka.intervalMs,
      'grpc.keepalive_timeout_ms': ka.timeoutMs } : {}),
  });
  const g = new Handlers(deps);
  server.addService(encodedAllowed(services.KV), g.kv());
  server.addService(encodedAllowed(services.Watch), g.watch());
  server.addService(services.Lease, g.lease());
  server.addService(services.Cluster, g.cluster());
  server.addService(services.Maintenance, g.maintenance());
  server.addService(services.Health, g.health());
  if (deps.auth !== undefined) server.addService(services.Auth, g.auth());
  // Our own listener hands each connection to grpc-js (its connection injector), the bare
  // socket or through the rewriter of etcdctl's `http://` authority (src/grpc/opening.ts).
  const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  const opening = new Set<net.Socket>();
  const passed = new Set<net.Socket>();
  const listener = net.createServer({ noDelay: true }, (socket) => accept(socket, injector,
    opening, (kind, first) => {
      if (kind !== 'http1' || deps.http1 === undefined) return false;
      passHttp1(socket, first, deps.http1, passed);
      return true;
    }, deps.onConnection));
  r.release();
  await new Promise<void>((resolve, reject) => {
    listener.once('error', (e) => reject(bindError(r.setting, r.url, e)));
    listener.listen({ host: r.host, port: r.port, exclusive: true }, () => resolve());
  });
  const port = (listener.address() as net.AddressInfo).port;
  return {
    server, port, admission: g.admission,
    close() {
      listener.close();
      for (const socket of [...opening, ...passed]) socket.destroy();
      g.closeStreams();
      injector.destroy();
      server.forceShutdown();
    },
  };
}

/**
 * accept reads a new connection's opening (src/grpc/opening.ts: it answers the preface with a
 * SETTINGS frame and waits for the first request's headers), then hands it to grpc-js: the
 * bare socket, whose bytes nghttp2 then reads and writes natively, with what was read put
 * back in front; or, when the authority needs fixing (etcdctl 3.4), a RewritingSocket. Until
 * then the socket is in `opening`, which the server's close destroys.
 */
function accept(socket: net.Socket, injector: grpc.ConnectionInjector, opening: Set<net.Socket>,
  pass: (kind: Opened['kind'], first: Uint8Array[]) => boolean,
  counted?: (handover: Handover) => void): void {
  const watch = new ConnectionOpening(grpcOpeningBytesMax);
  const gone = () => socket.destroy();
  const onData = (d: Buffer) => {
    const step = watch.push(d);
    if (step.send !== undefined) socket.write(step.send);
    const opened = step.opened;
    if (opened === undefined) return;
    socket.pause();
    socket.off('data', onData);
    socket.off('end', gone);
    socket.off('error', gone);
    opening.delete(socket);
    if (pass(opened.kind, opened.first)) {
      counted?.('http1');
    } else if (opened.kind !== 'rewrite') {
      socket.unshift(Buffer.concat(opened.first));
      injector.injectConnection(socket);
      counted?.('bare');
    } else {
      injector.injectConnection(new RewritingSocket(socket, opened.rewriter, opened.first));
      counted?.('rewritten');
    }
  };
  opening.add(socket);
  socket.on('data', onData);
  socket.on('end', gone);
  socket.on('error', gone);
  socket.once('close', () => opening.delete(socket));
}

/**
 * passHttp1 joins an HTTP/1.x client connection to the member's HTTP listener (`to`), the
 * bytes read so far first: that server answers it as it answers its own clients (routes,
 * limits, errors), so one port serves gRPC and HTTP as etcd's client port does. At most
 * grpcHttp1PassedMax at once (`passed`); past it, or when the listener cannot be reached, the
 * client's connection is closed. Either side ending or failing ends the other.
 */
function passHttp1(socket: net.Socket, first: Uint8Array[], to: { host: string; port: number },
  passed: Set<net.Socket>): void {
  if (passed.size >= grpcHttp1PassedMax) {
    socket.destroy();
    return;
  }
  const upstream = net.connect({ host: to.host, port: to.port, noDelay: true });
  upstream.write(Buffer.concat(first));
  splice(socket, upstream, passed);
  socket.resume();
}

/** RewritingSocket is a client connection whose incoming bytes pass an AuthorityRewriter. */
class RewritingSocket extends Duplex {
  constructor(private readonly socket: net.Socket, rw: AuthorityRewriter, first: Uint8Array[]) {
    super();
    for (const b of first) this.push(b);
    socket.on('data', (d: Buffer) => {
      let more = true;
      for (const b of rw.push(d)) more = this.push(b) && more;
      if (!more) socket.pause();
    });
    socket.on('end', () => this.push(null));
    socket.on('error', (e) => this.destroy(e));
    socket.on('close', () => this.destroy());
  }

  get remoteAddress(): string | undefined {
    return this.socket.remoteAddress;
  }

  get remotePort(): number | undefined {
    return this.socket.remotePort;
  }

  override _read(): void {
    this.socket.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    this.socket.write(chunk, cb);
  }

  override _final(cb: (e?: Error | null) => void): void {
    this.socket.end();
    cb();
  }

  override _destroy(e: Error | null, cb: (e?: Error | null) => void): void {
    this.socket.destroy();
    cb(e);
  }
}

/** GrpcStartDeps is what main hands startGrpcGateways. */
export interface GrpcStartDeps {
  kv: GatewayDeps['kv'];
  system: GatewayDeps['system'] & import('../metrics/index.js').ActorStatsSource;
  version: string;
  config: Config;
  metrics: Metrics;
  log: { info(o: object, msg: string): void };
  /** watches: the HTTP gateway's WatchGateway, the one the hub's pushes reach. */
  watches: WatchGateway;
  /** auth: the JSON gateway's auth gate (tokens, permissions); absent: no auth. */
  auth?: GatewayDeps['auth'];
  /** servers and admissions: main's lists to stop and drain at shutdown (appended to). */
  servers: { close(): boolean }[];
  admissions: { inflight: number }[];
  /** http1: the HTTP client listener HTTP/1.x connections to a gRPC port are passed to. */
  http1?: { host: string; port: number };
}

/** startGrpcGateways serves the gRPC API on every reserved --listen-client-grpc-urls URL,
 * logs "ready to serve gRPC client requests" with each URL, adds each server to main's
 * lists of servers to close and admissions to drain, and returns the gRPC URLs to publish
 * (--advertise-client-grpc-urls, a port 0 resolved). */
export async function startGrpcGateways(d: GrpcStartDeps, reserved: Reservation[]):
  Promise<string[]> {
  const ports: number[] = [];
  // An advertised URL with port 0 (the default when --listen-client-urls is given) gets the
  // port actually bound at the same position.
  const grpcClientUrls = (): string[] => d.config.advertiseClientGrpcUrls.map((u, i) => {
    const url = new URL(u);
    if (url.port !== '0' || ports[i] === undefined) return u;
    return `${url.protocol}//${url.host.replace(/:0$/, '')}:${ports[i]}`;
  });
  for (const r of reserved) {
    const g = await startGrpcGateway({
      kv: d.kv, system: d.system, version: d.version, watches: d.watches, grpcClientUrls,
      auth: d.auth,
      metricsText: () => d.metrics.render(d.system, d.kv),
      grpcCounts: (type, service, method) => d.metrics.grpcCounts(type, service, method),
      maxRequestBytes: d.config.maxRequestBytes,
      maxConcurrentStreams: d.config.maxConcurrentStreams,
      onConnection: (handover) => d.metrics.grpcConnections.inc({ handover }),
      keepalive: grpcKeepaliveMs(d.config),
      ...(d.http1 === undefined ? {} : { http1: d.http1 }),
    }, r);
    d.servers.push({ close: () => { g.close(); return true; } });
    d.admissions.push(g.admission);
    ports.push(g.port);
    const url = new URL(r.url);
    d.log.info({ url: `${url.protocol}//${url.hostname}:${g.port}` },
      'ready to serve gRPC client requests');
  }
  return grpcClientUrls();
}

/** AdmittedCall is what streamAdmitted needs of a streaming call. */
interface AdmittedCall {
  metadata: grpc.Metadata;
  emit(event: 'error', status: unknown): boolean;
}

/** Handlers builds each service's implementation over the shared deps. */
class Handlers {
  readonly admission: Admission;
  private readonly lessor: ActorRef<LeaseMsg, LeaseReplies>;
  private readonly raft: ActorRef<RaftMsg, RaftReplies>;
  private readonly streams = new Set<() => void>();

  constructor(private readonly deps: GrpcGatewayDeps) {
    this.admission = new Admission(deps);
    this.lessor = deps.system.gateway.ref<LeaseMsg, LeaseReplies>('lease');
    this.raft = deps.system.gateway.ref<RaftMsg, RaftReplies>('raft');
  }

  closeStreams(): void {
    for (const end of [...this.streams]) end();
  }

  private count(event: 'started' | 'received' | 'sent' | 'handled', type: string,
    service: string, method: string, code?: string): void {
    countGrpc(this.counts(type, service, method), event, code);
  }

  /** counts is a method's counting record (a throwaway one without metrics). */
  private counts(type: string, service: string, method: string): GrpcCounts {
    return this.deps.grpcCounts?.(type, service, method) ??
      { type, service, method, started: 0, received: 0, sent: 0, handled: new Map() };
  }

  /** refusal is what to answer instead of serving: restarting, overloaded, or no leader when
   * the client asked for one (etcd's `hasleader` metadata). */
  private async refusal(metadata: grpc.Metadata): Promise<EtcdError | undefined> {
    const refused = this.admission.refuse();
    if (refused !== undefined) return refused;
    if (metadata.get('hasleader')[0] === 'true') {
      const st = await this.deps.kv.status();
      if (st.leader === 0) return noLeader;
    }
    return undefined;
  }

  /** caller is who sent a call while auth is enabled (etcd's `token` metadata, from
   * Authenticate over the JSON gateway); undefined while auth is off. */
  private async caller(metadata: grpc.Metadata): Promise<AuthInfo | undefined> {
    const gate = this.deps.auth;
    if (gate === undefined || !gate.store.enabled) return undefined;
    const token = metadata.get('token')[0];
    return gate.whoByToken(typeof token === 'string' ? token : undefined);
  }

  /** admitted checks a call against auth before it is served: KV calls check their keys
   * (`by` goes on with the write, checked again at apply time); the Auth service's calls
   * ('open') are checked by the auth store itself; every other service needs the root role
   * while auth is on (stricter than etcd for lease and status calls, which etcd lets any
   * user make). */
  private async admitted(metadata: grpc.Metadata, access: Access):
    Promise<AuthInfo | undefined> {
    const by = await this.caller(metadata);
    if (by !== undefined && access === 'admin') this.deps.auth!.checkAdmin(by);
    return by;
  }

  /** checkKv checks a KV request's keys for the caller (nothing while auth is off). */
  private checkKv(by: AuthInfo | undefined, req: RequestOp | WriteRequest): void {
    if (by !== undefined) this.deps.auth!.checkKv(by, req);
  }

  /** streamAdmitted serves a streaming call once auth admits it (root while auth is on);
   * otherwise the call ends with the refusal's status. */
  private streamAdmitted<C extends AdmittedCall>(call: C, serve: (c: C) => void): void {
    if (this.deps.auth?.store.enabled !== true) {
      serve(call);
      return;
    }
    this.admitted(call.metadata, 'admin').then(() => serve(call),
      (e: unknown) => call.emit('error', statusOf(e)));
  }

  /** unary wraps one request/response method: admission, auth, errors, metrics. */
  private unary(service: string, method: string,
    fn: (m: pb.Pb, by: AuthInfo | undefined) => Promise<pb.Pb | Encoded>,
    access: Access = 'admin'): Handler {
    const counts = this.counts('unary', service, method);
    const handler = (call: UnaryCall, callback: grpc.sendUnaryData<pb.Pb>): void => {
      counts.started++;
      counts.received++;
      const done = (e: unknown, res?: pb.Pb | Encoded): void => {
        if (e === undefined) {
          counts.sent++;
          countGrpc(counts, 'handled', 'OK');
          callback(null, res as pb.Pb);
          return;
        }
        const st = statusOf(e);
        countGrpc(counts, 'handled', grpcCodeName(st.code!));
        callback(st);
      };
      this.admission.inflight++;
      this.refusal(call.metadata).then(async (refused) => {
        if (refused !== undefined) throw refused;
        return fn(call.request, await this.admitted(call.metadata, access));
      }).then((res) => done(undefined, res), (e: unknown) => done(e))
        .finally(() => this.admission.inflight--);
    };
    return handler as Handler;
  }

  private header(revision?: number): ResponseHeader {
    return this.deps.kv.header(revision ?? this.deps.kv.knownRevision);
  }

  kv(): grpc.UntypedServiceImplementation {
    const kv = this.deps.kv;
    const s = 'etcdserverpb.KV';
    /** write serves one write method: decode, etcd's checks, the write through raft. */
    const write = <R extends WriteRequest>(method: string, decode: (m: pb.Pb) => R,
      check: (r: R) => void): Handler => this.unary(s, method, async (m, by) => {
      const req = decode(m);
      check(req);
      this.checkKv(by, req);
      const { header, response } = await kv.write(req, by);
      return pb.writeResponse(header, response);
    }, 'kv');
    return {
      Range: this.unary(s, 'Range', async (m, by) => {
        const req = pb.rangeRequest(m);
        checkRangeRequest(req);
        this.checkKv(by, req);
        if (req.rangeEnd !== undefined && req.rangeEnd !== '' && entriesRangeable(req)) {
          // A range in key order: the shards write the answer's key-values as bytes
          // themselves (a single key's answer is one: it gains nothing, measured).
          const { header, response: r } = await kv.rangeEntries(req);
          const bytes = r && rangeEntriesResponse(header, r.entries, r.more, r.count);
          if (bytes) return new Encoded(bytes);
        }
        const { header, response } = await kv.range(req);
        const bytes = rangeResponseBytes(header, response);
        return bytes !== undefined ? new Encoded(bytes) : pb.rangeResponse(header, response);
      }, 'kv'),
      Put: write('Put', pb.putRequest, checkPutRequest),
      DeleteRange: write('DeleteRange', pb.deleteRangeRequest, checkDeleteRangeRequest),
      Txn: write('Txn', pb.txnRequest, checkTxnRequest),
      Compact: write('Compact', pb.compactionRequest, checkCompactionRequest),
    };
  }

  lease(): grpc.UntypedServiceImplementation {
    const lessor = this.lessor;
    const s = 'etcdserverpb.Lease';
    return {
      LeaseGrant: this.unary(s, 'LeaseGrant', async (m) => {
        const res = await lessor.ask({
          type: 'LeaseGrant', id: pb.int64(m['ID']), ttlSeconds: pb.int64(m['TTL']),
        });
        const granted = res.response as { id: number; ttlSeconds: number };
        return { header: pb.header(this.header(res.revision)), ID: granted.id,
          TTL: granted.ttlSeconds };
      }),
      LeaseRevoke: this.unary(s, 'LeaseRevoke', async (m) => {
        const res = await lessor.ask({ type: 'LeaseRevoke', id: pb.int64(m['ID']) });
        return { header: pb.header(this.header(res.revision)) };
      }),
      LeaseTimeToLive: this.unary(s, 'LeaseTimeToLive', async (m) => {
        const t = await lessor.ask({
          type: 'LeaseTimeToLive', id: pb.int64(m['ID']), keys: m['keys'] === true,
        });
        const o: pb.Pb = { header: pb.header(this.header()), ID: t.id, TTL: t.ttlSeconds };
        if (t.grantedTtlSeconds) o['grantedTTL'] = t.grantedTtlSeconds;
        if (t.keys && t.keys.length) o['keys'] = t.keys.map((k) => Buffer.from(k, 'latin1'));
        return o;
      }),
      LeaseLeases: this.unary(s, 'LeaseLeases', async () => {
        const { ids } = await lessor.ask({ type: 'LeaseLeases' });
        return { header: pb.header(this.header()), leases: ids.map((id) => ({ ID: id })) };
      }),
      LeaseKeepAlive: (call: DuplexCall) => this.streamAdmitted(call, (c) => this.keepAlive(c)),
    };
  }

  /**
   * keepAlive serves LeaseKeepAlive: each request renews its lease once and is answered in
   * order (a missing lease answers TTL 0, as etcd does). Answers are written as they come;
   * while grpcStreamWritesPendingMax of them are unflushed the stream stops reading.
   */
  private keepAlive(call: DuplexCall): void {
    const s = 'etcdserverpb.Lease';
    const m = 'LeaseKeepAlive';
    this.count('started', 'bidi_stream', s, m);
    let chain: Promise<void> = Promise.resolve();
    let pending = 0;
    let paused = false;
    const close = (): void => end(new EtcdError('STOPPED'));
    const { end, isEnded } = this.finisher(call, s, m, close);
    const refused = this.admission.refuse();
    if (refused !== undefined) {
      end(refused);
      return;
    }
    call.on('data', (req: pb.Pb) => {
      this.count('received', 'bidi_stream', s, m);
      let ask: Promise<{ id: number; ttlSeconds: number }>;
      try {
        ask = this.lessor.ask({ type: 'LeaseKeepAlive', id: pb.int64(req['ID']) });
      } catch (e) {
        end(e);
        return;
      }
      pending++;
      if (pending >= grpcStreamWritesPendingMax && !paused) {
        paused = true;
        call.pause();
      }
      chain = chain.then(async () => {
        let r: { id: number; ttlSeconds: number };
        try {
          r = await ask;
        } catch (e) {
          end(e);
          return;
        }
        if (isEnded() || call.cancelled) return;
        const o: pb.Pb = { header: pb.header(this.header()), ID: r.id };
        if (r.ttlSeconds) o['TTL'] = r.ttlSeconds;
        call.write(o, () => {
          this.count('sent', 'bidi_stream', s, m);
          pending--;
          if (paused && pending < grpcStreamWritesPendingMax / 2) {
            paused = false;
            call.resume();
          }
        });
      });
    });
    // The client closed its side: answer what is in flight, then end with OK (etcd's recvLoop
    // returns on EOF and the call ends).
    call.on('end', () => {
      void chain.then(() => end());
    });
    call.on('cancelled', () => end(new EtcdError('STOPPED')));
    call.on('error', () => end(new EtcdError('STOPPED')));
  }

  watch(): grpc.UntypedServiceImplementation {
    return {
      Watch: (call: DuplexCall) => this.streamAdmitted(call, (c) => this.watchStream(c)),
    };
  }

  /**
   * watchStream serves one Watch call on the shared WatchGateway: create, cancel and progress
   * requests at any time; the hub's answers written in order, each event batch acknowledged
   * to the hub once grpc-js has flushed it. A watcher created with `fragment` has responses
   * larger than --max-request-bytes split into several, all but the last marked fragment.
   */
  private watchStream(call: DuplexCall): void {
    const s = 'etcdserverpb.Watch';
    const m = 'Watch';
    this.count('started', 'bidi_stream', s, m);
    let sink: Sink | undefined;
    const close = (): void => {
      if (sink !== undefined) sink.end();
      else finish(new EtcdError('STOPPED'));
    };
    const { end: finish, isEnded } = this.finisher(call, s, m, close);
    const encode = fragmenter(this.deps.maxRequestBytes ?? requestBytesMax);
    void this.refusal(call.metadata).then((refused) => {
      if (isEnded()) return;
      if (refused !== undefined) {
        finish(refused);
        return;
      }
      sink = this.deps.watches.openSink(this.sinkStream(call, finish, isEnded), encode.encode);
      if (sink === undefined) {
        finish(new EtcdError('TOO_MANY_REQUESTS'));
        return;
      }
      const open = sink;
      call.on('data', (req: pb.Pb) => {
        this.count('received', 'bidi_stream', s, m);
        let w: pb.WatchRequest;
        try {
          w = pb.watchRequest(req);
        } catch (e) {
          open.fail(e);
          return;
        }
        if (w.type === 'create') {
          encode.wanted.push(w.fragment);
          open.create(w.spec);
        } else if (w.type === 'cancel') open.cancel(w.watchId);
        else if (w.type === 'progress') open.progress();
        // 'none': etcd's watch server skips a message that names no request
      });
    }, (e: unknown) => finish(e));
    // The client closed its side: etcd's recvLoop returns on EOF and the call ends with OK.
    call.on('end', () => {
      if (sink !== undefined) sink.end();
      else finish();
    });
    call.on('cancelled', () => {
      if (sink !== undefined) sink.end();
      else finish();
    });
    call.on('error', () => {
      if (sink !== undefined) sink.end();
    });
  }

  /** finisher ends a stream call once: OK (`end()`) or an error status (`end(e)`), counted;
   * `close` is registered for shutdown until then. */
  private finisher(call: DuplexCall, service: string, method: string, close: () => void):
    { end: (e?: unknown) => void; isEnded: () => boolean } {
    let ended = false;
    this.streams.add(close);
    const end = (e?: unknown): void => {
      if (ended) return;
      ended = true;
      this.streams.delete(close);
      if (e === undefined) {
        this.count('handled', 'bidi_stream', service, method, 'OK');
        if (!call.cancelled) call.end();
        return;
      }
      const st = statusOf(e);
      this.count('handled', 'bidi_stream', service, method, grpcCodeName(st.code!));
      if (!call.cancelled) call.emit('error', st);
    };
    return { end, isEnded: () => ended };
  }

  /** sinkStream is a Watch call as the WatchGateway's SinkStream: each push's messages are
   * written in order, and onFlushed (the hub's acknowledgement) waits for grpc-js to have
   * flushed the last of them. */
  private sinkStream(call: DuplexCall, finish: (e?: unknown) => void, isEnded: () => boolean):
    SinkStream {
    return {
      get closed() {
        return isEnded() || call.cancelled;
      },
      write: (messages: unknown, onFlushed?: () => void) => {
        const all = (messages as pb.Pb[][]).flat();
        if (all.length === 0) {
          onFlushed?.();
          return;
        }
        let left = all.length;
        for (const msg of all) {
          call.write(msg, () => {
            this.count('sent', 'bidi_stream', 'etcdserverpb.Watch', 'Watch');
            if (--left === 0) onFlushed?.();
          });
        }
      },
      end: () => finish(),
      fail: (e: unknown) => finish(e),
    };
  }

  cluster(): grpc.UntypedServiceImplementation {
    const raft = this.raft;
    const kv = this.deps.kv;
    const s = 'etcdserverpb.Cluster';
    const answer = (res: RaftMembersResp, withMember: boolean): pb.Pb => {
      const h = pb.header({ clusterId: kv.clusterId, memberId: kv.memberId,
        revision: 0 as Revision, raftTerm: res.raftTerm });
      const o: pb.Pb = { header: h };
      if (withMember && res.response.member !== undefined) {
        o['member'] = this.member(res.response.member);
      }
      o['members'] = res.response.members.map((x) => this.member(x));
      return o;
    };
    const memberId = (v: unknown): number => {
      const id = memberIdOf(v);
      if (id <= 0) throw new EtcdError('MEMBER_NOT_FOUND');
      return id;
    };
    return {
      MemberList: this.unary(s, 'MemberList', async () =>
        answer(await raft.ask({ type: 'RaftMemberList' }), false)),
      MemberAdd: this.unary(s, 'MemberAdd', async (m) => answer(await raft.ask({
        type: 'RaftMemberAdd', peerURLs: peerUrls(m['peerURLs']),
        isLearner: m['isLearner'] === true,
      }), true)),
      MemberRemove: this.unary(s, 'MemberRemove', async (m) =>
        answer(await raft.ask({ type: 'RaftMemberRemove', id: memberId(m['ID']) }), false)),
      MemberUpdate: this.unary(s, 'MemberUpdate', async (m) => answer(await raft.ask({
        type: 'RaftMemberUpdate', id: memberId(m['ID']), peerURLs: peerUrls(m['peerURLs']),
      }), false)),
      MemberPromote: this.unary(s, 'MemberPromote', async (m) =>
        answer(await raft.ask({ type: 'RaftMemberPromote', id: memberId(m['ID']) }), false)),
    };
  }

  /** member writes one member with its gRPC URLs as its client URLs, since the client
   * reading them speaks gRPC: this member's own, the others' as they published them (a
   * member that has not published any yet shows its HTTP ones). */
  private member(m: Member): pb.Pb {
    return pb.member(m, m.id === this.deps.kv.memberId ? this.deps.grpcClientUrls()
      : m.grpcClientURLs ?? m.clientURLs);
  }

  /**
   * auth serves etcd's Auth service through the JSON gateway's code (runAuthCall): each
   * request is read by the same decoder as /v3/auth/<path> (its protobuf fields as JSON, bytes
   * as base64), so both answer the same; the sender comes from the `token` metadata (no token:
   * the anonymous user, whom the auth store refuses what needs root while auth is on).
   */
  auth(): grpc.UntypedServiceImplementation {
    const gate = this.deps.auth!;
    const kv = this.deps.kv;
    const s = 'etcdserverpb.Auth';
    const method = (name: string, path: AuthPath): Handler =>
      this.unary(s, name, async (m, by) => {
        const call = decodeAuthRequest(path, pbAsJson(m));
        const res = await runAuthCall(gate, kv, call, async () => by ?? anonymousCaller);
        const o: pb.Pb = { header: pb.header(kv.header(res.revision)) };
        const r = res.response;
        if (r.token !== undefined && r.token !== '') o['token'] = r.token;
        if (r.roles !== undefined && r.roles.length > 0) o['roles'] = r.roles;
        if (r.users !== undefined && r.users.length > 0) o['users'] = r.users;
        if (r.perms !== undefined && r.perms.length > 0) {
          o['perm'] = r.perms.map((p) => ({
            permType: permTypes.indexOf(p.permType), key: bufferFromBytes(p.key),
            range_end: bufferFromBytes(p.rangeEnd ?? ''),
          }));
        }
        return o;
      }, 'open');
    return {
      AuthEnable: method('AuthEnable', 'enable'),
      AuthDisable: method('AuthDisable', 'disable'),
      Authenticate: method('Authenticate', 'authenticate'),
      UserAdd: method('UserAdd', 'user/add'),
      UserGet: method('UserGet', 'user/get'),
      UserList: method('UserList', 'user/list'),
      UserDelete: method('UserDelete', 'user/delete'),
      UserChangePassword: method('UserChangePassword', 'user/changepw'),
      UserGrantRole: method('UserGrantRole', 'user/grant'),
      UserRevokeRole: method('UserRevokeRole', 'user/revoke'),
      RoleAdd: method('RoleAdd', 'role/add'),
      RoleGet: method('RoleGet', 'role/get'),
      RoleList: method('RoleList', 'role/list'),
      RoleDelete: method('RoleDelete', 'role/delete'),
      RoleGrantPermission: method('RoleGrantPermission', 'role/grant'),
      RoleRevokePermission: method('RoleRevokePermission', 'role/revoke'),
    };
  }

  maintenance(): grpc.UntypedServiceImplementation {
    const kv = this.deps.kv;
    const s = 'etcdserverpb.Maintenance';
    return {
      Status: this.unary(s, 'Status', async () => {
        const [st, dbSize] = await Promise.all([kv.status(), kv.dbSizeBytes()]);
        const o: pb.Pb = {
          header: pb.header(kv.header(st.revision)), version: etcdServerVersion,
        };
        if (dbSize) o['dbSize'] = dbSize;
        if (st.leader) o['leader'] = st.leader;
        if (st.raftIndex) o['raftIndex'] = st.raftIndex;
        if (st.raftTerm) o['raftTerm'] = st.raftTerm;
        if (st.raftAppliedIndex) o['raftAppliedIndex'] = st.raftAppliedIndex;
        if (st.leader === 0) o['errors'] = [errorTable.NO_LEADER.text];
        if (dbSize) o['dbSizeInUse'] = dbSize;
        if (st.isLearner) o['isLearner'] = true;
        return o;
      }),
      // The cluster's alarms (src/alarms.ts), as the JSON gateway's /v3/maintenance/alarm.
      Alarm: this.unary(s, 'Alarm', async (m) => {
        const res = await askAlarm(this.raft, alarmRequestOf(m));
        const o: pb.Pb = { header: pb.header(kv.header(res.revision)) };
        if (res.response.alarms.length > 0) {
          o['alarms'] = res.response.alarms.map((a) => ({
            memberID: String(a.memberId), alarm: alarmTypes.indexOf(a.alarm),
          }));
        }
        return o;
      }),
      // The shards keep their history in memory and the WAL is append-only: there is no file
      // to defragment. The answer says so by being empty, as etcd's is.
      Defragment: this.unary(s, 'Defragment', async () => ({ header: pb.header(this.header()) })),
      Hash: this.unary(s, 'Hash', async () => {
        const st = await kv.status();
        return { header: pb.header(kv.header(st.revision)),
          hash: await this.stateHash(st.revision) };
      }),
      HashKV: this.unary(s, 'HashKV', (m) => this.hashKv(m)),
      MoveLeader: this.unary(s, 'MoveLeader', async (m) => {
        const to = memberIdOf(m['targetID']);
        const st = await kv.status();
        if (!st.isLeader) throw new EtcdError('NOT_LEADER');
        if (to <= 0) throw new EtcdError('BAD_LEADER_TRANSFEREE');
        await this.raft.ask({ type: 'RaftTransferLeader', to });
        return { header: pb.header(this.header()) };
      }),
      Snapshot: ((call: grpc.ServerWritableStream<pb.Pb, pb.Pb>) => {
        this.count('started', 'server_stream', s, 'Snapshot');
        this.count('received', 'server_stream', s, 'Snapshot');
        this.admitted(call.metadata, 'admin').then(() => this.snapshot(call)).then(() => {
          this.count('handled', 'server_stream', s, 'Snapshot', 'OK');
        }, (e: unknown) => {
          const st = statusOf(e);
          this.count('handled', 'server_stream', s, 'Snapshot', grpcCodeName(st.code!));
          call.emit('error', st);
        });
      }) as Handler,
    };
  }

  /** forEachKvPage reads every key-value at `revision` in key order, in pages of at most
   * allKvsPageKeys (a page is one message from the shards; the store's own cap,
   * rangeResultKvsMax, is far larger), and hands each page to `use` as it comes. */
  private async forEachKvPage(revision: number, use: (kvs: KeyValue[]) => void): Promise<void> {
    let key = '\0';
    for (;;) {
      const { response } = await this.deps.kv.range({
        type: 'range', key, rangeEnd: '\0', revision, limit: allKvsPageKeys, uncounted: true,
      });
      use(response.kvs);
      if (!response.more || response.kvs.length === 0) return;
      key = response.kvs[response.kvs.length - 1]!.key + '\0';
    }
  }

  /** hashKv answers HashKV. A revision the client named fails as etcd's does once compacted;
   * the newest one is read again at the new newest when a compaction passes it meanwhile. */
  private async hashKv(m: pb.Pb): Promise<pb.Pb> {
    const kv = this.deps.kv;
    const asked = pb.int64(m['revision']);
    const hashed = async () => {
      const st = await kv.status();
      return { st, hash: await this.stateHash(asked || st.revision) };
    };
    const { st, hash } = await retryCompacted(hashed, asked > 0 ? 1 : allKvsAttemptsMax);
    return { header: pb.header(kv.header(st.revision)), hash,
      compact_revision: st.compactRevision };
  }

  /** stateHash is HashKV's hash of every key-value at `revision` (src/grpc/digest.ts: the
   * shards hash their own keys; equal on members that hold the same data). */
  private async stateHash(revision: number): Promise<number> {
    return (await this.deps.kv.digest(revision, allKvsPageKeys)).hash;
  }

  /**
   * snapshot streams the member's state as etcd's backend file (src/grpc/snapshot.ts) and
   * then its SHA-256, as etcd does: chunks of snapshotChunkBytes, each with the bytes still to
   * come, the checksum last. The keys are read and encoded a page at a time; the file is
   * hashed as it is sent. Written one chunk at a time, each after the previous was flushed,
   * so a client that reads slowly holds up only this call.
   */
  private async snapshot(call: grpc.ServerWritableStream<pb.Pb, pb.Pb>): Promise<void> {
    const kv = this.deps.kv;
    const read = async (): Promise<{ st: Awaited<ReturnType<typeof kv.status>>;
      keys: SnapshotKeys; }> => {
      const st = await kv.status();
      const keys = new SnapshotKeys();
      // The shards encode their own pages (no key-value crosses a thread); a store holding a
      // number their encoder cannot write (none does) is read the general way.
      const pages = await kv.exportPages(st.revision, allKvsPageKeys);
      if (pages === undefined) await this.forEachKvPage(st.revision, (kvs) => keys.add(kvs));
      for (const { shard, page } of pages ?? []) {
        keys.addEncoded(shard, page.bytes, page.index, page.keys);
      }
      return { st, keys };
    };
    const [{ st, keys }, { ids }, members] = await Promise.all([
      retryCompacted(read, allKvsAttemptsMax),
      this.lessor.ask({ type: 'LeaseLeases' }), this.raft.ask({ type: 'RaftMemberList' }),
    ]);
    const leases = await Promise.all(ids.map(async (id) => {
      const t = await this.lessor.ask({ type: 'LeaseTimeToLive', id, keys: false });
      return { id, ttlSeconds: t.grantedTtlSeconds };
    }));
    const steps = snapshotDbSteps({
      keys, leases: leases.filter((l) => l.ttlSeconds > 0), members: members.response.members,
      consistentIndex: st.raftAppliedIndex, compactRevision: st.compactRevision,
      clusterVersion: etcdClusterVersion,
    });
    const db = await runSteps(steps, snapshotStepMs);
    const hash = createHash('sha256');
    const header = pb.header(kv.header(st.revision));
    const send = (o: pb.Pb): Promise<void> => new Promise((resolve) => {
      call.write(o, () => {
        this.count('sent', 'server_stream', 'etcdserverpb.Maintenance', 'Snapshot');
        resolve();
      });
    });
    const sumBytes = 32;
    for (let at = 0; at < db.length; at += snapshotChunkBytes) {
      if (call.cancelled) return;
      const end = Math.min(db.length, at + snapshotChunkBytes);
      const blob = Buffer.from(db.buffer, db.byteOffset + at, end - at);
      hash.update(blob);
      await send({ header, remaining_bytes: db.length - end + sumBytes, blob });
    }
    await send({ header, remaining_bytes: 0, blob: hash.digest() });
    call.end();
  }

  health(): grpc.UntypedServiceImplementation {
    const check = async (): Promise<number> => {
      if (!this.deps.system.serving) return 2;
      try {
        return (await this.deps.kv.status()).leader !== 0 ? 1 : 2;
      } catch {
        return 2;
      }
    };
    return {
      Check: ((call: UnaryCall, cb: grpc.sendUnaryData<pb.Pb>) => {
        const service = call.request['service'];
        if (service !== undefined && service !== '') {
          cb({ code: GrpcCode.NotFound, details: 'unknown service' });
          return;
        }
        void check().then((status) => cb(null, { status }));
      }) as Handler,
      Watch: ((call: grpc.ServerWritableStream<pb.Pb, pb.Pb>) => {
        void check().then((status) => call.write({ status }));
      }) as Handler,
    };
  }
}

/**
 * fragmenter encodes a Watch stream's responses. As etcd's sendFragments: a watcher created
 * with `fragment` has a response larger than `limit` split into as many messages as needed,
 * each with as many events as fit (at least one), all but the last marked fragment. `wanted`
 * holds the creates' fragment flags in request order; the hub answers creates in that order.
 */
/** Encoded is an answer already in protobuf's bytes (src/grpc/wire.ts): the service's
 * serializer sends them as they are. */
class Encoded {
  constructor(readonly bytes: Buffer) {}
}

/** encodedAllowed is a service definition whose methods also send Encoded answers. */
function encodedAllowed(service: grpc.ServiceDefinition): grpc.ServiceDefinition {
  return Object.fromEntries(Object.entries(service).map(([name, m]) => {
    const serialize = m.responseSerialize;
    return [name, { ...m,
      responseSerialize: (v: unknown) => (v instanceof Encoded ? v.bytes : serialize(v)) }];
  }));
}

/**
 * retryCompacted runs `read` again, up to `attempts` runs in all, while it fails because a
 * compaction removed the revision it read at: reading every key (Maintenance.Snapshot,
 * HashKV) takes seconds with a million keys, and a compaction may pass the revision meanwhile
 * (etcd's snapshot is one bbolt read transaction and cannot meet this).
 */
export async function retryCompacted<T>(read: () => Promise<T>, attempts: number):
  Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await read();
    } catch (e) {
      // Crossed from a shard's thread, the error may be a RemoteError: its code tells.
      if (attempt >= attempts || toEtcdError(e).code !== 'COMPACTED') throw e;
    }
  }
}

/** runSteps runs a generator to its result, giving the event loop a turn whenever a run of
 * steps has taken `sliceMs`: a long build never holds up the requests this thread serves. */
async function runSteps<T>(steps: Generator<void, T, void>, sliceMs: number): Promise<T> {
  let since = performance.now();
  for (;;) {
    const r = steps.next();
    if (r.done === true) return r.value;
    if (performance.now() - since >= sliceMs) {
      await nextTurn();
      since = performance.now();
    }
  }
}

function fragmenter(limit: number): {
  wanted: boolean[];
  encode: (h: ResponseHeader, r: WatchResponse) => (pb.Pb | Encoded)[];
} {
  const wanted: boolean[] = [];
  const ids = new Set<number>();
  /** one answer, in bytes written by hand when its numbers allow it (src/grpc/wire.ts). */
  const one = (h: ResponseHeader, r: WatchResponse, fragment: boolean): pb.Pb | Encoded => {
    const bytes = watchResponseBytes(h, r, fragment);
    if (bytes !== undefined) return new Encoded(bytes);
    return fragment ? { ...pb.watchResponse(h, r), fragment: true } : pb.watchResponse(h, r);
  };
  const encode = (h: ResponseHeader, r: WatchResponse): (pb.Pb | Encoded)[] => {
    if (r.created === true && wanted.shift() === true && r.canceled !== true) ids.add(r.watchId);
    if (r.canceled === true) ids.delete(r.watchId);
    if (!ids.has(r.watchId) || pb.eventsSize(r.events) <= limit) return [one(h, r, false)];
    const out: (pb.Pb | Encoded)[] = [];
    let part: typeof r.events = [];
    let size = 0;
    for (const ev of r.events) {
      const n = pb.eventsSize([ev]);
      if (part.length > 0 && size + n > limit) {
        out.push(one(h, { ...r, events: part }, true));
        part = [];
        size = 0;
      }
      part.push(ev);
      size += n;
    }
    out.push(one(h, { ...r, events: part }, false));
    return out;
  };
  return { wanted, encode };
}

/** memberIdOf reads a uint64 member id (a decimal string); ids beyond 2^53 name no member. */
/** alarmRequestOf reads etcd's AlarmRequest (enums as numbers, uint64 as a string). */
function alarmRequestOf(m: pb.Pb): AlarmRequest {
  const pick = <T>(v: unknown, names: readonly T[], goType: string): T => {
    const n = v === undefined || v === null ? 0 : Number(v);
    const t = names[n];
    if (!Number.isSafeInteger(n) || t === undefined) {
      throw new EtcdError('BAD_REQUEST', `etcdserver: invalid argument: ${goType} has no value ` +
        String(v));
    }
    return t;
  };
  const memberId = memberIdOf(m['memberID']);
  if (memberId < 0) {
    throw new EtcdError('UNSAFE_INTEGER', `etcdserver: memberID ${String(m['memberID'])} is ` +
      'beyond 2^53');
  }
  return {
    action: pick(m['action'], alarmActions, 'etcdserverpb.AlarmRequest_AlarmAction'),
    memberId, alarm: pick(m['alarm'], alarmTypes, 'etcdserverpb.AlarmType'),
  };
}

/** Access is what a call needs while auth is on (see Handlers.admitted). */
type Access = 'kv' | 'admin' | 'open';

/** anonymousCaller is the sender of an Auth call without a token while auth is off. */
const anonymousCaller: AuthInfo = Object.freeze({ user: '', rev: 0 });

/** pbAsJson turns a decoded protobuf message into what the JSON gateway's decoders read:
 * bytes as base64, everything else as it is (proto field names, enums as numbers). */
function pbAsJson(v: unknown): JsonValue {
  if (Buffer.isBuffer(v)) return v.toString('base64');
  if (Array.isArray(v)) return v.map(pbAsJson);
  if (v !== null && typeof v === 'object') {
    const o: { [k: string]: JsonValue } = {};
    for (const [k, x] of Object.entries(v)) if (x !== undefined) o[k] = pbAsJson(x);
    return o;
  }
  return v as JsonValue;
}

function memberIdOf(v: unknown): number {
  if (v === undefined || v === null) return 0;
  const n = Number(v);
  return Number.isSafeInteger(n) ? n : -1;
}

/** peerUrls checks MemberAdd/MemberUpdate's peer URLs as the JSON gateway does. */
function peerUrls(v: unknown): string[] {
  if (!Array.isArray(v) || v.length === 0) throw new EtcdError('MEMBER_BAD_URLS');
  for (const u of v) {
    if (typeof u !== 'string' || urlProblem(u, true) !== undefined) {
      throw new EtcdError('MEMBER_BAD_URLS');
    }
  }
  return v as string[];
}
