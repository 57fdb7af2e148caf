import type HyperExpress from 'hyper-express';
import {
  unpackWatchEvents, type WatchMsg, type WatchOut, type WatchReplies, type WatchStatsResp,
} from '../../actors/watch/messages.js';
import { answerOf, EtcdError, grpcCodeName } from '../errors.js';
import type { AuthInfo } from '../auth/store.js';
import { parseJsonBody } from '../api/gojson.js';
import { decodeV1WatchQuery, decodeV1WatchRequest, encodeV1WatchEvent } from '../api/v1.js';
import { decodeWatchRequest, encodeWatchResponse } from '../api/v3.js';
import {
  watchBufferedBytesMax, watcherDebugMax, watchGenerationSweepMs, watchStreamIdStride,
  watchStreamsMax,
  watchStreamStallMsMax,
} from '../constants.js';
import type { ResponseHeader } from '../mvcc/types.js';
import type { ActorRef, Message } from '../runtime/endpoint.js';
import type { WatchCreateSpec, WatchResponse } from '../watch/types.js';
import { errorBody, streamErrorLine, v1ErrorBody } from './errors.js';
import type { ErrorBody, Routes } from './routes.js';
import { bodyText } from './http-guard.js';
import { bodyOpenError, ChunkedStream, readJsonStream } from './stream.js';

/**
 * watch-routes: the gateway's side of watch streams. Each HTTP stream gets a streamId; its
 * requests go to the watch hub as sends and the hub pushes WatchEvents back, which are
 * encoded and written in order, each push one message. After a message has been handed to
 * the socket (ChunkedStream's onFlushed, which waits for backpressure to clear) the stream
 * acknowledges its events with WatchAck: the hub never has more than watchStreamBufferEvents
 * events of one stream in flight, so a slow client costs bounded memory here and in the hub.
 *
 *  - POST /v3/watch (and /v3beta/watch): etcd 3.4's grpc-gateway. The request body is a stream
 *    of JSON WatchRequests ({"create_request":…}, {"cancel_request":…},
 *    {"progress_request":{}}), decoded by src/api as every /v3 body; the response one
 *    {"result":WatchResponse} line per message, open until the client goes away.
 *
 * Memory of all streams together: `bufferedBytes` counts what the streams wrote that their
 * sockets have not taken yet (uWS holds it in memory). It stays under watchBufferedBytesMax,
 * plus what dropped streams still hold — at most as much again, so under twice the bound: a
 * write that would pass the bound first drops the stream holding the most bytes, and a stream
 * whose socket took nothing for watchStreamStallMsMax is dropped too. A dropped stream's hub
 * state is released at once; its last message cancels each of its watches with a
 * `cancel_reason` telling the client to resume from its last revision + 1 (etcd's cancel
 * responses carry the reason the same way). Its connection ends once that message has left;
 * a client that never reads again is cut by uWS's timer (8–12 s after our last write), or at
 * once when dropped streams hold more than the bound.
 *
 *  - POST /v1/watch (body) and GET /v1/watch (query, for EventSource): the seed's API as
 *    Server-Sent Events with UTF-8 keys; `id:` is the header revision of responses with
 *    events, so EventSource's Last-Event-ID resumes from it + 1.
 */

/** Encoder writes one watch response as one message of a stream (a JSON or SSE text; the
 * gRPC gateway's is a protobuf message object). */
type Encoder = (h: ResponseHeader, r: WatchResponse) => unknown;

/**
 * SinkStream is where a Sink writes: an HTTP ChunkedStream, or a gRPC Watch call
 * (src/gateway/grpc-server.ts). `write` calls onFlushed once the transport took the
 * messages (the hub's flow control waits for it); `fail`, when present, ends the stream
 * with an error status instead of a last error message.
 */
export interface SinkStream {
  readonly closed: boolean;
  write(messages: unknown, onFlushed?: () => void): void;
  end(lastMessage?: unknown): void;
  fail?(e: unknown): void;
  /** destroy closes the connection at once (HTTP; a gRPC call is ended instead). */
  destroy?(): void;
}

/** messageBytes is what an encoded message holds in the transport's buffers: an HTTP
 * stream's JSON text; a gRPC message object is not counted here (HTTP/2 flow control bounds
 * what a gRPC call buffers). */
function messageBytes(m: unknown): number {
  return typeof m === 'string' ? m.length : 0;
}

/** WatchGateway routes the hub's pushes to HTTP streams; registerWatchRoutes returns it. */
export class WatchGateway {
  private readonly sinks = new Map<number, Sink>();
  /** bufferedBytes: written by every stream, not yet taken by its socket (see file comment). */
  bufferedBytes = 0;
  /** bufferedBytesPeak: the most bufferedBytes has been (for the overload test and bench). */
  bufferedBytesPeak = 0;
  /** lingeringBytes: the part of bufferedBytes that dropped streams hold. */
  lingeringBytes = 0;
  /** dropped counts streams dropped for reading too slowly (budget or stall). */
  dropped = 0;
  /** lingering: dropped streams whose last message has not left yet, oldest first. */
  readonly lingering = new Set<Sink>();
  private readonly hub: ActorRef<WatchMsg, unknown>;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly r: Routes,
    private readonly bufferedBytesMax = r.deps.watchBufferedBytesMax ?? watchBufferedBytesMax) {
    this.hub = r.deps.system.gateway.ref<WatchMsg, unknown>('watch');
    // The supervisor restarts every actor together: a new generation's hub knows none of
    // the old streams, so they are ended and their clients reconnect (from their last
    // revision + 1, which loses nothing).
    this.timer = setInterval(() => {
      this.closeGeneration();
      this.dropStalled();
    }, watchGenerationSweepMs);
    this.timer.unref();
  }

  /** streams is the number of open watch streams. */
  get streams(): number {
    return this.sinks.size;
  }

  /** deliverTo hands a stream its responses; false when the stream is not this gateway's
   * (another listener's, or closed meanwhile). */
  deliverTo(streamId: number, responses: WatchResponse[]): boolean {
    const sink = this.sinks.get(streamId);
    if (sink === undefined) return false;
    sink.deliver(responses);
    return true;
  }

  /** closeAll ends every stream (shutdown), each with `reason` as its last message when
   * given (a stop: etcd's "server stopped", so a client knows to go elsewhere). */
  closeAll(reason?: unknown): void {
    for (const s of [...this.sinks.values()]) {
      if (reason === undefined) s.end();
      else s.fail(reason);
    }
    clearInterval(this.timer);
  }

  /** open starts a stream on an HTTP response; undefined when refused (answered already). */
  open(req: HyperExpress.Request, res: HyperExpress.Response, encode: Encoder,
    contentType: string,
    onError: (e: unknown) => ErrorBody = errorBody): Sink | undefined {
    const refused = this.r.refusal(onError) ??
      (this.sinks.size >= watchStreamsMax
        ? onError(new EtcdError('TOO_MANY_REQUESTS')) : undefined);
    if (refused !== undefined) {
      res.status(refused.status).header('content-type', 'application/json').send(refused.body);
      return undefined;
    }
    const id = this.takeStreamId();
    const headers: Record<string, string> =
      contentType === 'text/event-stream' ? { 'cache-control': 'no-cache' } : {};
    const stream = new ChunkedStream(req, res, contentType, headers);
    const sink = new Sink(id, this, stream, encode, this.r.deps.system.currentGeneration);
    if (this.r.deps.auth !== undefined) {
      // Read the token now (the request's headers live only in this turn); checked per create.
      sink.by = this.r.deps.auth.who(req);
      sink.by.catch(() => undefined);
    }
    this.sinks.set(id, sink);
    stream.start();
    stream.onClose(() => sink.end());
    return sink;
  }

  /** openSink starts a stream on another transport (the gRPC gateway's Watch calls), in the
   * same stream id space and under the same limit; undefined when over watchStreamsMax. */
  openSink(stream: SinkStream, encode: Encoder): Sink | undefined {
    if (this.sinks.size >= watchStreamsMax) return undefined;
    const sink = new Sink(this.takeStreamId(), this, stream, encode,
      this.r.deps.system.currentGeneration);
    this.sinks.set(sink.id, sink);
    return sink;
  }

  private takeStreamId(): number {
    return takeStreamId(this.r.deps.gatewayIndex ?? 0);
  }

  /** send passes a stream's request to the hub (a full mailbox ends the stream). */
  send(sink: Sink, msg: WatchMsg): void {
    try {
      this.hub.send(msg);
    } catch (e) {
      sink.fail(e);
    }
  }

  /** forget drops a stream and tells the hub. */
  forget(sink: Sink): void {
    if (!this.sinks.delete(sink.id)) return;
    try {
      this.hub.sendUnbounded({ type: 'WatchStreamClose', streamId: sink.id });
    } catch {
      // the hub is restarting: it has forgotten the stream already
    }
  }

  /**
   * admit makes room for `bytes` more from `sink` under watchBufferedBytesMax: while they do
   * not fit, the stream holding the most unsent bytes is dropped. False when that is `sink`
   * (it must not write). A stream alone is always admitted (its responses must be able to
   * leave, however large).
   */
  admit(sink: Sink, bytes: number): boolean {
    while (this.bufferedBytes - this.lingeringBytes + bytes > this.bufferedBytesMax) {
      let victim: Sink | undefined;
      for (const s of this.sinks.values()) {
        if (s.pendingBytes > 0 && (victim === undefined || s.pendingBytes > victim.pendingBytes)) {
          victim = s;
        }
      }
      if (victim === undefined) break;
      victim.drop(`myetcd: watch stream dropped: the client read too slowly (all watch streams ${
        ''}together may hold ${this.bufferedBytesMax} unsent bytes); watch again from the last ${
        ''}revision received + 1`);
      if (victim === sink) return false;
    }
    // Dropped streams hold at most as much again: past it, the oldest are closed at once.
    for (const s of this.lingering) {
      if (this.lingeringBytes <= this.bufferedBytesMax) break;
      s.destroy();
    }
    return true;
  }

  /** debugState lists the streams with what their sockets have not taken yet (GET
   * /debug/watch); at most watcherDebugMax of them. */
  debugState(): { streams: number; bufferedBytes: number; dropped: number;
    sinks: { id: number; pendingBytes: number; stalledMs?: number; generation: number;
      closed: boolean }[]; } {
    const now = performance.now();
    return {
      streams: this.sinks.size, bufferedBytes: this.bufferedBytes, dropped: this.dropped,
      sinks: [...this.sinks.values()].slice(0, watcherDebugMax).map((s) => ({
        id: s.id, pendingBytes: s.pendingBytes, generation: s.generation, closed: s.gone,
        ...(s.stalledSinceMs === undefined ? {} : {
          stalledMs: Math.round(now - s.stalledSinceMs) }),
      })),
    };
  }

  /** debugHub asks the hub for its state with every watcher's cursor. */
  debugHub(): Promise<WatchStatsResp> {
    return this.r.deps.system.gateway.ref<WatchMsg, WatchReplies>('watch')
      .ask({ type: 'WatchStats', detail: true }, 2_000);
  }

  /** dropStalled drops the streams whose socket took nothing for watchStreamStallMsMax. */
  private dropStalled(): void {
    const now = performance.now();
    for (const s of [...this.sinks.values()]) {
      if (s.stalledSinceMs !== undefined && now - s.stalledSinceMs > watchStreamStallMsMax) {
        s.drop(`myetcd: watch stream dropped: the client read nothing for ${
          watchStreamStallMsMax / 1000} s; watch again from the last revision received + 1`);
      }
    }
  }

  /** checkWatch checks read access to a watch's range: undefined when allowed, else the
   * cancel reason etcd 3.4 sends (the gRPC status text, recorded). */
  async checkWatch(by: Promise<AuthInfo>, spec: WatchCreateSpec): Promise<string | undefined> {
    const gate = this.r.deps.auth;
    if (gate === undefined) return undefined;
    try {
      gate.checkRange(await by, spec.key, spec.rangeEnd);
      return undefined;
    } catch (e) {
      const a = answerOf(e);
      return `rpc error: code = ${grpcCodeName(a.grpcCode)} desc = ${a.text}`;
    }
  }

  /** header fills etcd's response header. */
  header(revision: number): ResponseHeader {
    return this.r.deps.kv.header(revision);
  }

  /** knownRevision is the newest revision the gateway has seen applied. */
  get knownRevision(): number {
    return this.r.deps.kv.knownRevision;
  }

  /** ack returns written events to the stream's budget in the hub. */
  ack(sink: Sink, events: number): void {
    if (events === 0 || !this.sinks.has(sink.id)) return;
    try {
      this.hub.sendUnbounded({ type: 'WatchAck', streamId: sink.id, events });
    } catch {
      // restarting
    }
  }

  private closeGeneration(): void {
    const gen = this.r.deps.system.currentGeneration;
    // Also sweeps streams whose client vanished without a 'close' event.
    for (const s of [...this.sinks.values()]) if (s.generation !== gen || s.gone) s.end();
  }
}

/** nextStreamIds: this thread's next stream id for each gateway index. A thread's stream ids
 * are owner + k·watchStreamIdStride (k ≥ 1), so the hub knows which gateway thread's they
 * are (actors/watch/actor.ts); every listener of the thread (one per --listen-client-urls)
 * takes from the same sequence, so no two of its streams share an id. */
const nextStreamIds = new Map<number, number>();

function takeStreamId(owner: number): number {
  const id = nextStreamIds.get(owner) ?? watchStreamIdStride + owner;
  nextStreamIds.set(owner, id + watchStreamIdStride);
  return id;
}

/**
 * WatchPushes routes the hub's pushes on one thread to the watch streams of every listener
 * there (one WatchGateway per --listen-client-urls); what is not the hub's goes to
 * `other`. The endpoint has one push handler, so the listeners share it.
 */
export class WatchPushes {
  private readonly gateways: WatchGateway[] = [];
  constructor(private readonly other: (msg: Message) => void) {}

  /** add routes pushes to one more listener's streams. */
  add(g: WatchGateway): void {
    this.gateways.push(g);
  }

  /** dispatch handles one pushed message. */
  dispatch(msg: Message): void {
    if (msg.type !== 'WatchEvents') {
      this.other(msg);
      return;
    }
    for (const { streamId, responses } of unpackWatchEvents(msg as WatchOut)) {
      for (const g of this.gateways) if (g.deliverTo(streamId, responses)) break;
    }
  }
}

/** Sink is one open HTTP watch stream. */
export class Sink {
  private ended = false;
  /** dropping: dropped for reading too slowly; only its last message is still on its way. */
  private dropping = false;
  /** pendingBytes: written, not yet taken by the socket (its part of bufferedBytes). */
  pendingBytes = 0;
  /** stalledSinceMs: since when the socket has taken nothing while pendingBytes > 0. */
  stalledSinceMs: number | undefined;
  /** watchIds: the stream's live watches (from the created and canceled answers it wrote),
   * for the last message of a drop. */
  private readonly watchIds = new Set<number>();
  /** by is the stream's caller, when the gateway checks auth; `chain` keeps the stream's
   * requests in order while a create waits for its check. */
  by?: Promise<AuthInfo>;
  private chain: Promise<void> = Promise.resolve();
  constructor(
    readonly id: number,
    private readonly gw: WatchGateway,
    readonly stream: SinkStream,
    private readonly encode: Encoder,
    readonly generation: number,
  ) {}

  /** gone: the client's connection is closed. */
  get gone(): boolean {
    return this.stream.closed;
  }

  /** create, cancel, progress: the client's requests. */
  create(req: WatchCreateSpec): void {
    const by = this.by;
    if (by === undefined) {
      this.gw.send(this, { type: 'WatchCreate', streamId: this.id, req });
      return;
    }
    this.chain = this.chain.then(async () => {
      const reason = await this.gw.checkWatch(by, req);
      if (reason === undefined) {
        this.gw.send(this, { type: 'WatchCreate', streamId: this.id, req });
      } else {
        // etcd 3.4 answers a refused create with watch id -1, created and canceled.
        this.deliver([{
          watchId: -1, revision: this.gw.knownRevision, events: [], created: true,
          canceled: true, cancelReason: reason,
        }]);
      }
    });
  }
  cancel(watchId: number): void {
    this.ordered(() => this.gw.send(this, { type: 'WatchCancel', streamId: this.id, watchId }));
  }
  progress(): void {
    this.ordered(() => this.gw.send(this, { type: 'WatchProgress', streamId: this.id,
      atLeast: this.gw.knownRevision }));
  }

  private ordered(fn: () => void): void {
    if (this.by === undefined) fn();
    else this.chain = this.chain.then(fn);
  }

  /** deliver writes one push, each response its own message (as etcd flushes each), and
   * acks its events once the socket took them. */
  deliver(responses: WatchResponse[]): void {
    if (this.ended || this.dropping || this.stream.closed) return;
    const messages: unknown[] = [];
    let events = 0;
    let bytes = 0;
    for (const r of responses) {
      const m = this.encode(this.gw.header(r.revision), r);
      messages.push(m);
      bytes += messageBytes(m);
      events += r.events.length;
      if (r.canceled === true) this.watchIds.delete(r.watchId);
      else if (r.created === true) this.watchIds.add(r.watchId);
    }
    if (!this.gw.admit(this, bytes)) return;
    this.writeCounted(messages, bytes, () => this.gw.ack(this, events));
  }

  /** writeCounted writes and counts the bytes until the socket has taken them. */
  private writeCounted(messages: unknown[], bytes: number, onFlushed: () => void): void {
    this.pendingBytes += bytes;
    this.gw.bufferedBytes += bytes;
    this.gw.bufferedBytesPeak = Math.max(this.gw.bufferedBytesPeak, this.gw.bufferedBytes);
    if (this.dropping) this.gw.lingeringBytes += bytes;
    let flushed = false;
    this.stream.write(messages, () => {
      flushed = true;
      this.release(bytes);
      onFlushed();
    });
    if (!flushed && this.stalledSinceMs === undefined) this.stalledSinceMs = performance.now();
  }

  /** release: the socket took `bytes` (progress: the stall clock restarts). */
  private release(bytes: number): void {
    const n = Math.min(bytes, this.pendingBytes);
    this.pendingBytes -= n;
    this.gw.bufferedBytes -= n;
    if (this.dropping) this.gw.lingeringBytes -= n;
    this.stalledSinceMs = this.pendingBytes > 0 ? performance.now() : undefined;
  }

  /**
   * drop ends a stream whose client reads too slowly: the hub forgets it now (no more events
   * for it), its last message cancels each watch with `reason`, and the response ends once
   * that has left (see the file comment for a client that never reads again).
   */
  drop(reason: string): void {
    if (this.ended || this.dropping) return;
    this.dropping = true;
    this.gw.dropped++;
    this.gw.forget(this);
    this.gw.lingering.add(this);
    this.gw.lingeringBytes += this.pendingBytes;
    const rev = this.gw.knownRevision;
    const last = [...this.watchIds].map((watchId) => this.encode(this.gw.header(rev),
      { watchId, revision: rev, events: [], canceled: true, cancelReason: reason }));
    if (last.length === 0) {
      this.end();
      return;
    }
    let bytes = 0;
    for (const m of last) bytes += messageBytes(m);
    this.writeCounted(last, bytes, () => this.end());
  }

  /** destroy closes the connection at once (a dropped stream whose client never read). */
  destroy(): void {
    this.stream.destroy?.();
    this.end();
  }

  /** fail ends the stream with a last error message (grpc-gateway's error line), or the
   * stream's own error status. */
  fail(e: unknown): void {
    if (this.stream.fail === undefined) {
      this.end(streamErrorLine(e));
      return;
    }
    if (this.ended) return;
    this.ended = true;
    this.gw.forget(this);
    this.stream.fail(e);
  }

  /** end closes the stream on both sides (idempotent). */
  end(lastMessage?: unknown): void {
    if (this.ended) return;
    this.ended = true;
    this.gw.forget(this);
    this.stream.end(lastMessage);
    // What the socket had not taken is no longer ours to count: the client is gone (uWS freed
    // it) or the response has ended (uWS sends it, then closes).
    this.release(this.pendingBytes);
    if (this.gw.lingering.delete(this)) this.dropping = false;
    this.stalledSinceMs = undefined;
  }
}

/** registerWatchRoutes adds /v3/watch, /v3beta/watch and /v1/watch. The hub's pushes reach
 * the returned gateway through WatchPushes, the gateway endpoint's one push handler, which
 * buildGateway (server.ts) joins it to. */
export function registerWatchRoutes(r: Routes): WatchGateway {
  const gw = new WatchGateway(r);
  for (const base of ['/v3', '/v3beta']) {
    r.server.post(`${base}/watch`, (req, res) => {
      const sink = gw.open(req, res, encodeWatchResponse, 'application/json');
      if (sink !== undefined) readV3Requests(req, sink);
    });
  }
  const v1Watch = (req: HyperExpress.Request, res: HyperExpress.Response,
    decode: () => WatchCreateSpec): void => {
    let spec: WatchCreateSpec;
    try {
      spec = decode();
    } catch (e) {
      const eb = v1ErrorBody(e);
      res.status(eb.status).header('content-type', 'application/json').send(eb.body);
      return;
    }
    const start = (): void => {
      const sink = gw.open(req, res, encodeV1WatchEvent, 'text/event-stream', v1ErrorBody);
      if (sink === undefined) return;
      sink.by = undefined; // checked below, before the stream opened
      sink.stream.write(': watching\n\n');
      sink.create(spec);
    };
    const gate = r.deps.auth;
    if (gate === undefined) {
      start();
      return;
    }
    gate.who(req).then((by) => {
      gate.checkRange(by, spec.key, spec.rangeEnd);
      start();
    }).catch((e: unknown) => {
      const eb = v1ErrorBody(e);
      if (!res.completed) {
        res.status(eb.status).header('content-type', 'application/json').send(eb.body);
      }
    });
  };
  r.server.post('/v1/watch', async (req, res) => {
    let body: string;
    try {
      body = await bodyText(req, res);
    } catch {
      return; // the client went away mid-body
    }
    v1Watch(req, res,
      () => decodeV1WatchRequest(parseJsonBody(body), req.header('last-event-id')));
  });
  // GET /debug/watch: the hub's cursors and the streams' buffers, to tell why a watch is
  // silent (the generation is the actors' restart count the stream was opened in).
  r.json('get', '/debug/watch', async () => [200, JSON.stringify({
    generation: r.deps.system.currentGeneration, gateway: gw.debugState(),
    hub: await gw.debugHub(),
  })]);
  r.server.get('/v1/watch', (req, res) => {
    v1Watch(req, res,
      () => decodeV1WatchQuery(req.query_parameters, req.header('last-event-id')));
  });
  return gw;
}

/** readV3Requests feeds a /v3/watch request body to its stream, one WatchRequest at a time. */
function readV3Requests(req: HyperExpress.Request, sink: Sink): void {
  readJsonStream(req, {
    values(texts) {
      for (const text of texts) {
        const m = decodeWatchRequest(parseJsonBody(text));
        if (m.type === 'create') sink.create(m.spec);
        else if (m.type === 'cancel') sink.cancel(m.watchId);
        else if (m.type === 'progress') sink.progress();
        // 'none': etcd's watch server skips a message that names no request
      }
    },
    end(truncated) {
      // The requests are all in; the stream stays open for the answers. A body cut inside a
      // request fails as Go's decoder does at its end (it used to leave the stream silent).
      if (truncated) sink.fail(new EtcdError('MALFORMED_JSON', 'unexpected EOF'));
    },
    error(e) {
      sink.fail(e);
    },
    deadline() {
      sink.fail(bodyOpenError());
    },
  });
}
