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
 *    and hyper-express never sees the request; uWS closes the connection after the answer
 *    (closeConnection), so the rest of the body is never read;
 *  - a chunked body is counted as it arrives; the chunk that passes the limit is not handed
 *    on: the client gets the same 413 (or, if the route has begun to answer already, a
 *    closed connection) and the connection closes. hyper-express is told the client went
 *    away (its own abort path), so the route writes nothing more.
 * The streamed bodies of /v3/watch and /v3/lease/keepalive are sequences of requests bounded
 * one by one (JsonStreamSplitter) and in time (stream.ts): only their declared length is
 * checked here.
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
  /** onRefused counts a refusal (metrics). */
  onRefused?: () => void;
}

/** aborts holds the abort listeners of responses whose body is still arriving. */
const aborts = new WeakMap<object, (() => void)[]>();

/** installGuard puts the guard in front of every route of `server`. */
export function installGuard(server: HyperExpress.Server, opts: GuardOptions): void {
  const s = server as unknown as { _handle_uws_request: Handle };
  const inner = s._handle_uws_request.bind(server);
  s._handle_uws_request = (route, req, res, socket) => {
    const declared = Number(req.getHeader('content-length'));
    if (declared > opts.bodyBytesMax) {
      opts.onRefused?.();
      refuse(res, route.pattern);
      return;
    }
    const chunked = req.getHeader('transfer-encoding') !== '';
    if (chunked || declared > 0) watch(res, route.pattern, opts, chunked);
    inner(route, req, res, socket);
  };
}

/** watch wraps res's onData and onAborted (see the file comment). */
function watch(res: UwsResponse, pattern: string, opts: GuardOptions, chunked: boolean): void {
  let abortHandler: (() => void) | undefined;
  let refused = false;
  const onAborted = res.onAborted.bind(res);
  const onData = res.onData.bind(res);
  const aborted = (): void => {
    abortHandler?.();
    const fns = aborts.get(res);
    aborts.delete(res);
    for (const fn of fns ?? []) fn();
  };
  res.onAborted = (h) => {
    abortHandler = h;
    return onAborted(() => { if (!refused) aborted(); });
  };
  if (!chunked || opts.streamPaths.has(pattern)) return;
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
    if (bytes <= opts.bodyBytesMax) {
      h(chunk, isLast);
      return;
    }
    refused = true;
    opts.onRefused?.();
    // hyper-express first learns that its client has gone (it will write nothing), then
    // uWS answers and closes: the rest of the body is never read.
    aborted();
    if (!answering) refuse(res, pattern);
    else res.close();
  });
}

/** refuse answers 413 in the route's envelope and closes the connection. */
function refuse(res: UwsResponse, pattern: string): void {
  const e = new EtcdError('REQUEST_TOO_LARGE');
  const { body } = pattern.startsWith('/v1/') ? v1ErrorBody(e) : errorBody(e);
  try {
    res.cork(() => {
      res.writeStatus('413 Payload Too Large').writeHeader('content-type', 'application/json')
        .end(body, true);
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
    req.text().then(resolve, reject);
  });
}
