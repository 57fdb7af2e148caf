import type HyperExpress from 'hyper-express';
import {
  unpackWatchEvents, type WatchMsg, type WatchOut,
} from '../../actors/watch/messages.js';
import { EtcdError } from '../errors.js';
import { parseJsonBody } from '../api/gojson.js';
import { decodeV1WatchQuery, decodeV1WatchRequest, encodeV1WatchEvent } from '../api/v1.js';
import { decodeWatchRequest, encodeWatchResponse } from '../api/v3.js';
import { watchGenerationSweepMs, watchStreamsMax } from '../constants.js';
import type { ResponseHeader } from '../mvcc/types.js';
import type { ActorRef, Message } from '../runtime/endpoint.js';
import type { WatchCreateSpec, WatchResponse } from '../watch/types.js';
import { errorBody, streamErrorLine, v1ErrorBody } from './errors.js';
import type { ErrorBody, Routes } from './routes.js';
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
}

/** WatchGateway routes the hub's pushes to HTTP streams; registerWatchRoutes returns it. */
export class WatchGateway {
  private readonly sinks = new Map<number, Sink>();
  private nextStreamId = 1;
  private readonly hub: ActorRef<WatchMsg, unknown>;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly r: Routes) {
    this.hub = r.deps.system.gateway.ref<WatchMsg, unknown>('watch');
    // The supervisor restarts every actor together: a new generation's hub knows none of
    // the old streams, so they are ended and their clients reconnect (from their last
    // revision + 1, which loses nothing).
    this.timer = setInterval(() => this.closeGeneration(), watchGenerationSweepMs);
    this.timer.unref();
  }

  /** streams is the number of open watch streams. */
  get streams(): number {
    return this.sinks.size;
  }

  /** dispatch handles one message pushed to the gateway; false when it is not the hub's. */
  dispatch(msg: Message): boolean {
    if (msg.type !== 'WatchEvents') return false;
    for (const { streamId, responses } of unpackWatchEvents(msg as WatchOut)) {
      this.sinks.get(streamId)?.deliver(responses); // undefined: closed meanwhile
    }
    return true;
  }

  /** closeAll ends every stream (shutdown, restart). */
  closeAll(): void {
    for (const s of [...this.sinks.values()]) s.end();
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
    const id = this.nextStreamId++;
    const headers: Record<string, string> =
      contentType === 'text/event-stream' ? { 'cache-control': 'no-cache' } : {};
    const stream = new ChunkedStream(req, res, contentType, headers);
    const sink = new Sink(id, this, stream, encode, this.r.deps.system.currentGeneration);
    this.sinks.set(id, sink);
    stream.start();
    stream.onClose(() => sink.end());
    return sink;
  }

  /** openSink starts a stream on another transport (the gRPC gateway's Watch calls), in the
   * same stream id space and under the same limit; undefined when over watchStreamsMax. */
  openSink(stream: SinkStream, encode: Encoder): Sink | undefined {
    if (this.sinks.size >= watchStreamsMax) return undefined;
    const sink = new Sink(this.nextStreamId++, this, stream, encode,
      this.r.deps.system.currentGeneration);
    this.sinks.set(sink.id, sink);
    return sink;
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

  /** header fills etcd's response header. */
  header(revision: number): ResponseHeader {
    return this.r.deps.kv.header(revision);
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

/** Sink is one open HTTP watch stream. */
export class Sink {
  private ended = false;
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
    this.gw.send(this, { type: 'WatchCreate', streamId: this.id, req });
  }
  cancel(watchId: number): void {
    this.gw.send(this, { type: 'WatchCancel', streamId: this.id, watchId });
  }
  progress(): void {
    this.gw.send(this, { type: 'WatchProgress', streamId: this.id });
  }

  /** deliver writes one push, each response its own message (as etcd flushes each), and
   * acks its events once the socket took them. */
  deliver(responses: WatchResponse[]): void {
    if (this.ended || this.stream.closed) return;
    const messages: unknown[] = [];
    let events = 0;
    for (const r of responses) {
      messages.push(this.encode(this.gw.header(r.revision), r));
      events += r.events.length;
    }
    this.stream.write(messages, () => this.gw.ack(this, events));
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
  }
}

/** registerWatchRoutes adds /v3/watch, /v3beta/watch and /v1/watch. The hub's pushes reach
 * the returned gateway through its `dispatch`, which the gateway endpoint's one push handler
 * calls (startGateway in server.ts). */
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
    const sink = gw.open(req, res, encodeV1WatchEvent, 'text/event-stream', v1ErrorBody);
    if (sink === undefined) return;
    sink.stream.write(': watching\n\n');
    sink.create(spec);
  };
  r.server.post('/v1/watch', async (req, res) => {
    const body = await req.text();
    v1Watch(req, res,
      () => decodeV1WatchRequest(parseJsonBody(body), req.header('last-event-id')));
  });
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
    end() {
      // The requests are all in; the stream stays open for the answers.
    },
    error(e) {
      sink.fail(e);
    },
    deadline() {
      sink.fail(bodyOpenError());
    },
  });
}
