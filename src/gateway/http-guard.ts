import type HyperExpress from 'hyper-express';
import { EtcdError } from '../errors.js';
import { errorBody, v1ErrorBody } from './errors.js';

/**
 * http-guard: what the gateway checks on a request before hyper-express reads its body.
 *
 * Oversized bodies. hyper-express (6.18) enforces its max_body_length only once the whole body
 * has arrived: a 100 MiB Content-Length got its 413 after 100 MiB were read, and a chunked
 * body was counted but read to its end (4 GiB streamed, 413 after the terminator). The guard
 * sits in front of hyper-express's request handler instead:
 *  - a declared Content-Length over the limit is answered at once — 413, etcd's wording
 *    ("etcdserver: request is too large") in the route's JSON envelope, `Connection: close` —
 *    and hyper-express never sees the request; the connection is read no more (uWS closes it
 *    8–12 s later; see `refuse`), so the rest of the body is never read;
 *  - a chunked body is counted as it arrives; the chunk that passes the limit is not handed
 *    on: the client gets the same 413 (or, if the route has begun to answer already, a
 *    closed connection) and the connection closes. hyper-express is told the client went
 *    away (its own abort path), so the route writes nothing more.
 * The streamed bodies of /v3/watch and /v3/lease/keepalive are sequences of requests bounded
 * one by one (JsonStreamSplitter) and in time (stream.ts): only their declared length is
 * checked here.
 *
 * Bodies arriving at once. Every connection may be receiving a body, and hyper-express holds
 * each until it is complete (a fixed-length one allocated whole at once): bodies trickled in
 * just fast enough to keep uWS's timer from firing (16 KiB/s) on thousands of connections
 * would hold gigabytes. All bodies being received together are bounded by
 * bodyBytesReceivingMax: a request whose body would pass it gets 429 "etcdserver: too many
 * requests" and its connection closes (a fixed-length body at once, a chunked one when the
 * chunk that passes it arrives). Complete bodies are then bounded by gatewayInflightMax.
 *
 * Aborts. hyper-express's body promises (`req.text()`) never settle when the client goes away
 * mid-body (a slowloris body cut by uWS's timeout, a refused chunked body): `bodyText` races
 * them with the abort, so a route's admission slot is always released.
 *
 * The hook is hyper-express's `_handle_uws_request` (its one entry from uWS for every route),
 * replaced on the instance; uWS's response object gets wrappers for `onData` and `onAborted`
 * before hyper-express registers its handlers through them.
 */

/** UwsResponse is the part of uWS's HttpResponse the guard uses. */
interface UwsResponse {
  onData(h: (chunk: ArrayBuffer, isLast: boolean) => void): unknown;
  onAborted(h: () => void): unknown;
  cork(fn: () => void): unknown;
  writeStatus(s: string): UwsResponse;
  writeHeader(k: string, v: string): UwsResponse;
  end(body?: string, closeConnection?: boolean): unknown;
  close(): unknown;
  pause(): unknown;
}
interface UwsRequest { getHeader(name: string): string }
interface Route { pattern: string }
type Handle = (route: Route, req: UwsRequest, res: UwsResponse, socket: unknown) => void;

/** GuardOptions: the limit and the routes whose bodies are streams. */
export interface GuardOptions {
  /** bodyBytesMax: a larger body is refused with 413 (requestLimits().httpBodyBytesMax). */
  bodyBytesMax: number;
  /** streamPaths: route patterns whose bodies are streams of requests. */
  streamPaths: ReadonlySet<string>;
  /** receivingBytesMax bounds the bodies being received, all together (bodyBytesReceivingMax,
   * or more when --max-request-bytes makes one body larger). */
  receivingBytesMax: number;
  /** onRefused counts a refusal (metrics). */
  onRefused?: () => void;
  /** receivingShared: the count of bytes being received, shared by the gateway threads of
   * --experimental-gateway-threads (8 bytes), so that the bound holds for the process. */
  receivingShared?: SharedArrayBuffer;
  /** cors: --cors, '*' or the origins allowed (corsOrigin); absent: no CORS headers. */
  cors?: readonly string[];
}

/** aborts holds the abort listeners of responses whose body is still arriving. An entry is
 * deleted as soon as its body has arrived, not left to the map's weakness: V8's young-generation
 * collections keep a WeakMap entry's value alive while its key lives in the young generation, so
 * every request's objects reachable from the listener (hyper-express's Request and Response,
 * the route's closures) survived to the old generation and waited for a full collection; at
 * 50 connections ≈ 25 % of everything the gateway allocated survived a scavenge, and most of
 * that was promoted (docs/performance.md, "Session 11"). */
const aborts = new WeakMap<object, (() => void)[]>();

/** Receiving counts the bytes of request bodies being received (all connections). */
interface Receiving {
  readonly bytes: number;
  add(n: number): void;
}

/** receivingOf is this thread's count, or the one the gateway threads share (atomic). */
function receivingOf(shared: SharedArrayBuffer | undefined): Receiving {
  if (shared === undefined) {
    return { bytes: 0, add(n) { (this as { bytes: number }).bytes += n; } };
  }
  const cell = new BigInt64Array(shared, 0, 1);
  return {
    get bytes() { return Number(Atomics.load(cell, 0)); },
    add(n) { Atomics.add(cell, 0, BigInt(n)); },
  };
}

/** installGuard puts the guard in front of every route of `server`. */
export function installGuard(server: HyperExpress.Server, opts: GuardOptions): void {
  const s = server as unknown as { _handle_uws_request: Handle };
  const inner = s._handle_uws_request.bind(server);
  const receiving = receivingOf(opts.receivingShared);
  const cors = opts.cors === undefined ? undefined : new Set(opts.cors);
  s._handle_uws_request = (route, req, res, socket) => {
    const origin = cors === undefined ? undefined : corsOrigin(cors, req.getHeader('origin'));
    if (origin !== undefined) withCorsHeaders(res, origin);
    const declared = Number(req.getHeader('content-length'));
    if (declared > opts.bodyBytesMax) {
      opts.onRefused?.();
      refuse(res, route.pattern, 'REQUEST_TOO_LARGE');
      return;
    }
    const streamed = opts.streamPaths.has(route.pattern);
    if (!streamed && declared > 0 && receiving.bytes + declared > opts.receivingBytesMax) {
      refuse(res, route.pattern, 'TOO_MANY_REQUESTS');
      return;
    }
    const chunked = req.getHeader('transfer-encoding') !== '';
    if (chunked || declared > 0) {
      watch(res, route.pattern, opts, chunked, streamed ? undefined : receiving, declared);
    }
    inner(route, req, res, socket);
  };
}

/** corsOrigin is the Access-Control-Allow-Origin a request from `origin` gets under --cors
 * `allowed`: '*' when any origin is, the origin itself when it is listed as written; else
 * none. Only a request that names its origin (a browser's) gets one: etcd adds the headers to
 * every answer when any origin is allowed, which other clients ignore. */
export function corsOrigin(allowed: ReadonlySet<string>, origin: string): string | undefined {
  if (origin === '') return undefined;
  if (allowed.has('*')) return '*';
  return allowed.has(origin) ? origin : undefined;
}

/** corsHeaders are etcd's CORS headers but the origin's, as it writes them. */
const corsHeaders: readonly [string, string][] = [
  ['Access-Control-Allow-Methods', 'POST, GET, OPTIONS, PUT, DELETE'],
  ['Access-Control-Allow-Headers', 'accept, content-type, authorization'],
];

/** withCorsHeaders makes res carry the CORS headers for `origin`, right after its status (or
 * before its first header or its end, when the route leaves the status at 200 unwritten). */
function withCorsHeaders(res: UwsResponse, origin: string): void {
  const writeStatus = res.writeStatus.bind(res);
  const writeHeader = res.writeHeader.bind(res);
  const end = res.end.bind(res);
  let written = false;
  const add = (): void => {
    if (written) return;
    written = true;
    for (const [k, v] of corsHeaders) writeHeader(k, v);
    writeHeader('Access-Control-Allow-Origin', origin);
  };
  res.writeStatus = (status) => {
    writeStatus(status);
    add();
    return res;
  };
  res.writeHeader = (k, v) => {
    add();
    return writeHeader(k, v);
  };
  res.end = (body, close) => {
    add();
    return end(body, close);
  };
}

/** watch wraps res's onData and onAborted (see the file comment). A body counts against
 * `receiving` until it is complete: a fixed-length body its declared length from the start
 * (hyper-express allocates it whole), a chunked body what has come. */
function watch(res: UwsResponse, pattern: string, opts: GuardOptions, chunked: boolean,
  receiving: Receiving | undefined, declared: number): void {
  let held = 0;
  const hold = (n: number): void => {
    if (receiving === undefined) return;
    held += n;
    receiving.add(n);
  };
  const release = (): void => {
    if (receiving !== undefined) receiving.add(-held);
    held = 0;
  };
  if (!chunked) hold(declared);
  let abortHandler: (() => void) | undefined;
  let refused = false;
  const onAborted = res.onAborted.bind(res);
  const onData = res.onData.bind(res);
  const aborted = (): void => {
    release();
    abortHandler?.();
    const fns = aborts.get(res);
    aborts.delete(res);
    for (const fn of fns ?? []) fn();
  };
  res.onAborted = (h) => {
    abortHandler = h;
    return onAborted(() => { if (!refused) aborted(); });
  };
  if (receiving === undefined) return; // a stream: bounded per request and in time instead
  // A route may answer before the body has arrived (a 404): then the answer has begun and a
  // refusal can only close the connection.
  let answering = false;
  const writeStatus = res.writeStatus.bind(res);
  res.writeStatus = (status) => {
    answering = true;
    return writeStatus(status);
  };
  let bytes = 0;
  res.onData = (h) => onData((chunk, isLast) => {
    if (refused) return;
    bytes += chunk.byteLength;
    if (chunked) hold(chunk.byteLength);
    const tooLarge = bytes > opts.bodyBytesMax;
    if (!tooLarge && receiving.bytes <= opts.receivingBytesMax) {
      if (isLast) release();
      h(chunk, isLast);
      return;
    }
    refused = true;
    if (tooLarge) opts.onRefused?.();
    // hyper-express first learns that its client has gone (it will write nothing), then
    // uWS answers and closes: the rest of the body is never read.
    aborted();
    if (!answering) refuse(res, pattern, tooLarge ? 'REQUEST_TOO_LARGE' : 'TOO_MANY_REQUESTS');
    else res.close();
  });
}

/** refuse answers 413 (too large) or 429 (too many bodies arriving at once) in the route's
 * envelope, with etcd's text, and reads nothing more from the connection. */
function refuse(res: UwsResponse, pattern: string,
  code: 'REQUEST_TOO_LARGE' | 'TOO_MANY_REQUESTS'): void {
  const e = new EtcdError(code);
  const { body } = pattern.startsWith('/v1/') ? v1ErrorBody(e) : errorBody(e);
  const status = code === 'REQUEST_TOO_LARGE' ? '413 Payload Too Large' : '429 Too Many Requests';
  try {
    // Read no more, answer, and leave the close to uWS's timer (8–12 s): closing now, with
    // the client still sending, would reset the connection — and a reset discards the unread
    // input at the client, the answer with it. Paused, the connection costs only the kernel's
    // socket buffers until then.
    res.pause();
    res.cork(() => {
      res.writeStatus(status).writeHeader('content-type', 'application/json')
        .writeHeader('connection', 'close').end(body);
    });
  } catch {
    // the client is gone already
  }
}

/** bodyText is `req.text()`, or a rejection once the client has gone (a body cut short never
 * settles hyper-express's promise). */
export function bodyText(req: HyperExpress.Request, res: HyperExpress.Response): Promise<string> {
  if (req.received) return req.text();
  return new Promise((resolve, reject) => {
    const raw = res.raw as unknown as object;
    let list = aborts.get(raw);
    if (list === undefined) aborts.set(raw, (list = []));
    list.push(() => reject(new EtcdError('BAD_REQUEST', 'client closed the request')));
    const done = (text: string): void => {
      aborts.delete(raw);
      resolve(text);
    };
    if (!receiveText(req, done)) req.text().then(done, reject);
  });
}

/** HyperBodyParser is the part of hyper-express 6.18's Request body parser (fields of
 * Request.js) that receiveText drives; `_received_data_promise` is set once req.text(),
 * json() or buffer() has started reading. */
interface HyperBodyParser {
  _body_chunked_transfer: boolean;
  _body_expected_bytes: number;
  _body_parser_mode: number;
  _body_parser_buffered: Uint8Array[] | null;
  _body_parser_passthrough: ((chunk: Uint8Array, isLast: boolean) => void) | undefined;
  _received_data_promise: Promise<Uint8Array> | undefined;
}

/**
 * receiveText reads a fixed-length body that has not begun to arrive straight from uWS's
 * chunks, as hyper-express's own buffering mode does (mode 1, a passthrough per chunk), but
 * a body that comes in one chunk — nearly every API request — is decoded from that chunk
 * with no copy: req.text() allocates a new ArrayBuffer of the body's length (≈ 0.8 µs for
 * 100+ bytes) and a TextDecoder per request. Decoding is Buffer's UTF-8 (invalid bytes become
 * U+FFFD, as with TextDecoder; a leading BOM is kept, as Go's decoder keeps it and then
 * refuses the body). Returns false, reading nothing, when the body is chunked or empty, has
 * begun to arrive, or is being read already: the caller then uses req.text().
 */
function receiveText(req: HyperExpress.Request, resolve: (text: string) => void): boolean {
  const p = req as unknown as HyperBodyParser;
  const expected = p._body_expected_bytes;
  if (p._body_chunked_transfer || !(expected > 0) || p._body_parser_mode !== 0 ||
    p._received_data_promise !== undefined || p._body_parser_buffered?.length !== 0) {
    return false;
  }
  let whole: Buffer | undefined;
  let offset = 0;
  p._body_parser_buffered = null;
  p._body_parser_mode = 1;
  p._body_parser_passthrough = (chunk, isLast) => {
    if (whole === undefined && isLast) {
      resolve(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).toString('utf8'));
      return;
    }
    // uWS's chunk is valid only during this call: a body in several chunks is copied.
    whole ??= Buffer.allocUnsafe(expected);
    whole.set(chunk, offset);
    offset += chunk.byteLength;
    if (isLast) resolve(whole.toString('utf8', 0, offset));
  };
  return true;
}
