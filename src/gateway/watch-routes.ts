import { Writable } from 'node:stream';
import type HyperExpress from 'hyper-express';
import {
  unpackWatchEvents, type WatchMsg, type WatchOut,
} from '../../actors/watch/messages.js';
import { ApiError } from '../api/errors.js';
import {
  base64FromBytes, bytesFromBase64, bytesFromUtf8, prefixEnd, utf8FromBytes,
} from '../bytes.js';
import { streamWriteBytesMax, watchStreamsMax } from '../constants.js';
import type { Change, KeyValue, ResponseHeader } from '../mvcc/types.js';
import type { ActorRef, Message } from '../runtime/endpoint.js';
import type { WatchCreateSpec, WatchFilter, WatchResponse } from '../watch/types.js';
import { errorBody, v1ErrorBody } from './errors.js';
import type { Routes } from './server.js';

/**
 * watch-routes: the gateway's side of watch streams. Each HTTP stream gets a streamId; its
 * requests go to the watch hub as sends and the hub pushes WatchEvents back, which are
 * encoded and written in order. After a chunk has been handed to the socket (the write
 * callback, which waits for uWS backpressure to clear) the stream acknowledges its events
 * with WatchAck: the hub never has more than watchStreamBufferEvents events of one stream in
 * flight, so a slow client costs bounded memory here and in the hub.
 *
 *  - POST /v3/watch (and /v3beta/watch): etcd 3.4's grpc-gateway. The request body is a stream
 *    of JSON WatchRequests ({"create_request":…}, {"cancel_request":…},
 *    {"progress_request":{}}), the response one {"result":WatchResponse} per line, open until
 *    the client goes away.
 *  - POST /v1/watch: the seed's API as Server-Sent Events; body {"key","prefix","prevKV",
 *    "startRevision"} with UTF-8 keys; one `data:` JSON per response, `id:` the header revision
 *    of responses with events, so EventSource's Last-Event-ID resumes from it + 1.
 */

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
    this.timer = setInterval(() => this.closeGeneration(), 500);
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
  open(res: HyperExpress.Response, encode: (r: WatchResponse, h: ResponseHeader) => string,
    contentType: string, onError: typeof errorBody = errorBody): Sink | undefined {
    const refused = refusal(this.r, onError) ??
      (this.sinks.size >= watchStreamsMax
        ? onError(new ApiError('TOO_MANY_REQUESTS')) : undefined);
    if (refused !== undefined) {
      res.status(refused.status).header('content-type', 'application/json').send(refused.body);
      return undefined;
    }
    const id = this.nextStreamId++;
    const sink = new Sink(id, this, res, encode, this.r.deps.system.currentGeneration);
    this.sinks.set(id, sink);
    res.status(200).header('content-type', contentType);
    res.on('close', () => sink.end());
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
    // Also sweeps streams whose client vanished before the first write (uWS reports the
    // abort, but hyper-express emits 'close' only once the response has started streaming).
    for (const s of [...this.sinks.values()]) if (s.generation !== gen || s.gone) s.end();
  }
}

/** Sink is one open HTTP watch stream. */
export class Sink {
  private ended = false;
  constructor(
    readonly id: number,
    private readonly gw: WatchGateway,
    private readonly res: HyperExpress.Response,
    private readonly encode: (r: WatchResponse, h: ResponseHeader) => string,
    readonly generation: number,
  ) {}

  /** gone: the client's connection is closed. */
  get gone(): boolean {
    return this.res.closed;
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

  /** deliver writes one push (one chunk) and acks its events once the socket took it. */
  deliver(responses: WatchResponse[]): void {
    if (this.ended || this.res.closed) return;
    let text = '';
    let events = 0;
    for (const r of responses) {
      text += this.encode(r, this.gw.header(r.revision));
      events += r.events.length;
    }
    // In pieces that fit uWS's cork buffer: a larger write can be lost when the client reads
    // slowly (see streamWriteBytesMax). The ack waits for the last piece.
    const ack = () => this.gw.ack(this, events);
    if (text.length * 3 <= streamWriteBytesMax) {
      this.res.write(text, ack); // at most 3 UTF-8 bytes per UTF-16 unit: fits
      return;
    }
    const bytes = Buffer.from(text, 'utf8');
    for (let i = 0; i < bytes.length; i += streamWriteBytesMax) {
      const piece = bytes.subarray(i, i + streamWriteBytesMax);
      if (i + streamWriteBytesMax >= bytes.length) this.res.write(piece, ack);
      else this.res.write(piece);
    }
  }

  /** writeRaw writes text outside the hub's flow (stream errors). */
  writeRaw(text: string): void {
    if (!this.ended && !this.res.closed) this.res.write(text);
  }

  /** fail writes a stream error and ends the stream. */
  fail(e: unknown): void {
    const eb = errorBody(e);
    const err = JSON.parse(eb.body) as { message: string; code: number };
    this.writeRaw(JSON.stringify({ error: {
      grpc_code: err.code, http_code: eb.status, message: err.message,
      http_status: httpStatusText(eb.status),
    } }) + '\n');
    this.end();
  }

  /** end closes the stream on both sides (idempotent). */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.gw.forget(this);
    if (!this.res.closed) {
      try {
        this.res.end();
      } catch {
        // the socket is gone already
      }
    }
  }
}

/** registerWatchRoutes adds /v3/watch, /v3beta/watch and /v1/watch, and installs the
 * gateway endpoint's push handler (see WatchGateway.dispatch to compose with others). */
export function registerWatchRoutes(r: Routes, opts: { installHandler?: boolean } = {}):
  WatchGateway {
  const gw = new WatchGateway(r);
  if (opts.installHandler !== false) {
    r.deps.system.gateway.onMessage((msg) => {
      gw.dispatch(msg);
    });
  }
  for (const base of ['/v3', '/v3beta']) {
    r.server.post(`${base}/watch`, (req, res) => {
      const sink = gw.open(res, encodeV3Result, 'application/json');
      if (sink === undefined) return;
      const splitter = new JsonStreamSplitter();
      // hyper-express streams a request body only through pipe(): its Request is not a
      // plain Readable ('data' listeners alone never fire).
      req.pipe(new Writable({
        write(chunk: Buffer, _enc, done) {
          try {
            for (const text of splitter.push(chunk.toString('utf8'))) handleV3Request(sink, text);
          } catch (e) {
            sink.fail(e);
          }
          done();
        },
      }));
    });
  }
  r.server.post('/v1/watch', async (req, res) => {
    let spec: WatchCreateSpec;
    try {
      spec = decodeV1Watch(await req.text(), req.header('last-event-id'));
    } catch (e) {
      const eb = v1ErrorBody(e);
      res.status(eb.status).header('content-type', 'application/json').send(eb.body);
      return;
    }
    const sink = gw.open(res, encodeV1Event, 'text/event-stream', v1ErrorBody);
    if (sink === undefined) return;
    res.header('cache-control', 'no-cache');
    sink.writeRaw(': watching\n\n');
    sink.create(spec);
  });
  return gw;
}

// ---- /v3 codec (etcd 3.4 grpc-gateway: jsonpb, OrigName, int64 as strings, zero omitted) ----

function handleV3Request(sink: Sink, text: string): void {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new ApiError('MALFORMED_JSON', 'invalid character in watch request');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new ApiError('BAD_REQUEST', 'watch request must be an object');
  }
  const o = v as Record<string, unknown>;
  if (isObj(o['create_request'])) sink.create(decodeCreate(o['create_request']));
  else if (isObj(o['cancel_request'])) {
    sink.cancel(int64(o['cancel_request']['watch_id'], 'watch_id'));
  }
  else if (isObj(o['progress_request'])) sink.progress();
}

/** decodeCreate reads etcd's WatchCreateRequest JSON. */
export function decodeCreate(o: Record<string, unknown>): WatchCreateSpec {
  const spec: WatchCreateSpec = { key: b64(o['key'], 'key') };
  const rangeEnd = b64(o['range_end'], 'range_end');
  if (rangeEnd !== '') spec.rangeEnd = rangeEnd;
  const start = int64(o['start_revision'], 'start_revision');
  if (start !== 0) spec.startRevision = start;
  const id = int64(o['watch_id'], 'watch_id');
  if (id !== 0) spec.watchId = id;
  if (bool(o['prev_kv'])) spec.prevKv = true;
  if (bool(o['progress_notify'])) spec.progressNotify = true;
  const f = o['filters'];
  if (Array.isArray(f)) {
    const filters: WatchFilter[] = [];
    for (const x of f) {
      if (x === 'NOPUT' || x === 0) filters.push('NOPUT');
      else if (x === 'NODELETE' || x === 1) filters.push('NODELETE');
      else throw new ApiError('INVALID_FIELD', `unknown value ${JSON.stringify(x)} for filters`);
    }
    if (filters.length > 0) spec.filters = filters;
  }
  return spec;
}

/** encodeV3Result is one line of the /v3/watch response. */
export function encodeV3Result(r: WatchResponse, h: ResponseHeader): string {
  let s = `{"result":{"header":${encodeHeader(h)}`;
  if (r.watchId !== 0) s += `,"watch_id":"${r.watchId}"`;
  if (r.created === true) s += ',"created":true';
  if (r.canceled === true) s += ',"canceled":true';
  if (r.compactRevision !== undefined && r.compactRevision !== 0) {
    s += `,"compact_revision":"${r.compactRevision}"`;
  }
  if (r.cancelReason !== undefined) s += `,"cancel_reason":${JSON.stringify(r.cancelReason)}`;
  if (r.events.length > 0) s += `,"events":[${r.events.map(encodeEvent).join(',')}]`;
  return s + '}}\n';
}

let lastHeader: { h: ResponseHeader; text: string } | undefined;

/** encodeHeader is etcd's ResponseHeader in jsonpb form (int64 as strings, zeros omitted).
 * The last answer is cached: a fan-out writes the same header to every stream. */
export function encodeHeader(h: ResponseHeader): string {
  const c = lastHeader;
  if (c !== undefined && c.h.revision === h.revision && c.h.raftTerm === h.raftTerm &&
    c.h.memberId === h.memberId && c.h.clusterId === h.clusterId) return c.text;
  const text = encodeHeaderNow(h);
  lastHeader = { h, text };
  return text;
}

function encodeHeaderNow(h: ResponseHeader): string {
  const parts: string[] = [];
  if (h.clusterId !== 0) parts.push(`"cluster_id":"${h.clusterId}"`);
  if (h.memberId !== 0) parts.push(`"member_id":"${h.memberId}"`);
  if (h.revision !== 0) parts.push(`"revision":"${h.revision}"`);
  if (h.raftTerm !== 0) parts.push(`"raft_term":"${h.raftTerm}"`);
  return `{${parts.join(',')}}`;
}

/** encodedEvents caches each event's JSON by identity: events fanned out to many streams
 * are one object (unpackWatchEvents), encoded once. */
const encodedEvents = new WeakMap<Change, string>();

function encodeEvent(c: Change): string {
  let text = encodedEvents.get(c);
  if (text === undefined) encodedEvents.set(c, (text = encodeEventNow(c)));
  return text;
}

function encodeEventNow(c: Change): string {
  let s = c.kind === 'delete' ? '{"type":"DELETE",' : '{';
  s += `"kv":${encodeKv(c.kv)}`;
  if (c.prevKv !== undefined) s += `,"prev_kv":${encodeKv(c.prevKv)}`;
  return s + '}';
}

/** encodeKv is etcd's mvccpb.KeyValue in jsonpb form. */
export function encodeKv(kv: KeyValue): string {
  const parts = [`"key":"${base64FromBytes(kv.key)}"`];
  if (kv.createRevision !== 0) parts.push(`"create_revision":"${kv.createRevision}"`);
  if (kv.modRevision !== 0) parts.push(`"mod_revision":"${kv.modRevision}"`);
  if (kv.version !== 0) parts.push(`"version":"${kv.version}"`);
  if (kv.value !== '') parts.push(`"value":"${base64FromBytes(kv.value)}"`);
  if (kv.lease !== 0) parts.push(`"lease":"${kv.lease}"`);
  return `{${parts.join(',')}}`;
}

// ---- /v1 codec (UTF-8 keys, camelCase, SSE) ----

/** decodeV1Watch reads {"key","prefix","prevKV","startRevision"}; Last-Event-ID resumes. */
export function decodeV1Watch(body: string, lastEventId: string | undefined): WatchCreateSpec {
  let v: unknown;
  try {
    v = body.trim() === '' ? {} : JSON.parse(body);
  } catch {
    throw new ApiError('BAD_REQUEST', 'body is not valid JSON');
  }
  if (!isObj(v)) throw new ApiError('BAD_REQUEST', 'body must be a JSON object');
  if (typeof v['key'] !== 'string' || v['key'] === '') throw new ApiError('EMPTY_KEY');
  const key = bytesFromUtf8(v['key']);
  const spec: WatchCreateSpec = { key };
  if (v['prefix'] === true) spec.rangeEnd = prefixEnd(key);
  if (v['prevKV'] === true) spec.prevKv = true;
  const start = v['startRevision'];
  if (start !== undefined) {
    if (typeof start !== 'number' || !Number.isSafeInteger(start) || start < 0) {
      throw new ApiError('BAD_REQUEST', 'startRevision must be a non-negative integer');
    }
    if (start > 0) spec.startRevision = start;
  }
  if (lastEventId !== undefined && /^\d+$/.test(lastEventId)) {
    spec.startRevision = Number(lastEventId) + 1;
  }
  return spec;
}

/** encodeV1Event is one Server-Sent Event. */
export function encodeV1Event(r: WatchResponse, h: ResponseHeader): string {
  const o: Record<string, unknown> = { revision: h.revision };
  if (r.watchId !== 0) o['watchId'] = r.watchId;
  if (r.created === true) o['created'] = true;
  if (r.canceled === true) o['canceled'] = true;
  if (r.compactRevision !== undefined) o['compactRevision'] = r.compactRevision;
  if (r.cancelReason !== undefined) o['cancelReason'] = r.cancelReason;
  o['events'] = r.events.map((c) => {
    const e: Record<string, unknown> = { type: c.kind === 'put' ? 'PUT' : 'DELETE', ...v1Kv(c.kv) };
    if (c.prevKv !== undefined) e['prevKv'] = v1Kv(c.prevKv);
    return e;
  });
  const id = r.events.length > 0 ? `id: ${h.revision}\n` : '';
  return `${id}data: ${JSON.stringify(o)}\n\n`;
}

function v1Kv(kv: KeyValue): Record<string, unknown> {
  return {
    key: utf8FromBytes(kv.key), value: utf8FromBytes(kv.value),
    createRevision: kv.createRevision, modRevision: kv.modRevision, version: kv.version,
    lease: kv.lease,
  };
}

// ---- helpers ----

/** refusal asks admission whether to serve; either shape of its answer (an error, or a
 * ready status and body) becomes status and body. */
export function refusal(r: Routes, onError: typeof errorBody = errorBody):
  { status: number; body: string } | undefined {
  const x = r.admission.refuse() as unknown;
  if (x === undefined) return undefined;
  if (typeof x === 'object' && x !== null && 'status' in x && 'body' in x) {
    return x as { status: number; body: string };
  }
  return onError(x);
}

/**
 * JsonStreamSplitter cuts a stream of concatenated JSON objects (what Go's json.Decoder reads
 * from grpc-gateway's request body) into one text per top-level object, across chunk
 * boundaries. It tracks only nesting and strings; each piece is then parsed whole.
 */
export class JsonStreamSplitter {
  private buf = '';
  private depth = 0;
  private inString = false;
  private escaped = false;
  private start = -1;
  private scanned = 0;

  /** pending: an object has started and not ended (a truncated stream). */
  get pending(): boolean {
    return this.depth > 0;
  }

  /** push adds text and returns every object completed by it. */
  push(text: string): string[] {
    this.buf += text;
    const out: string[] = [];
    for (let i = this.scanned; i < this.buf.length; i++) {
      const c = this.buf.charCodeAt(i);
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === 0x5c) this.escaped = true;
        else if (c === 0x22) this.inString = false;
        continue;
      }
      if (c === 0x22) this.inString = true;
      else if (c === 0x7b || c === 0x5b) {
        if (this.depth === 0) this.start = i;
        this.depth++;
      } else if (c === 0x7d || c === 0x5d) {
        this.depth--;
        if (this.depth < 0) {
          throw new ApiError('MALFORMED_JSON',
            `invalid character '${this.buf[i]}' looking for beginning of value`);
        }
        if (this.depth === 0) out.push(this.buf.slice(this.start, i + 1));
      } else if (this.depth === 0 && c > 0x20) {
        throw new ApiError('MALFORMED_JSON',
          `invalid character '${this.buf[i]}' looking for beginning of value`);
      }
    }
    if (this.depth === 0) {
      this.buf = '';
      this.scanned = 0;
    } else {
      this.buf = this.buf.slice(this.start);
      this.scanned = this.buf.length;
      this.start = 0;
    }
    if (this.buf.length > 4 * 1024 * 1024) throw new ApiError('REQUEST_TOO_LARGE');
    return out;
  }
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function b64(v: unknown, field: string): string {
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') throw new ApiError('INVALID_FIELD', `bad ${field}`);
  const b = bytesFromBase64(v);
  if (b === undefined) throw new ApiError('INVALID_BASE64', `illegal base64 data in ${field}`);
  return b;
}

function int64(v: unknown, field: string): number {
  if (v === undefined || v === null) return 0;
  const n = typeof v === 'string' && /^-?\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n)) {
    throw new ApiError('INVALID_FIELD', `bad ${field}`);
  }
  return n;
}

function bool(v: unknown): boolean {
  return v === true;
}

function httpStatusText(status: number): string {
  const t: Record<number, string> = {
    400: 'Bad Request', 404: 'Not Found', 412: 'Precondition Failed', 429: 'Too Many Requests',
    500: 'Internal Server Error', 503: 'Service Unavailable',
  };
  return t[status] ?? 'Error';
}
