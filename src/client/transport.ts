import { ClientError, grpcCodes, grpcOfHttpStatus } from './errors.js';
import { type ClientTlsOptions, httpsFetch } from './tls.js';

/**
 * transport: JSON over HTTP to one of several endpoints, with failover.
 *
 * Endpoints are tried in turn, starting with the last one that answered. A request moves on
 * to the next endpoint when it surely did not reach the server (connection refused, unknown
 * host), and — only for requests that are safe to repeat (reads, status, keep-alives) — also
 * when the endpoint timed out, dropped the connection or answered 503 Unavailable. A write
 * that may have been applied is never sent twice: its caller gets the error.
 */

/** requestTimeoutMsDefault is etcdctl's --command-timeout default (5 s). */
export const requestTimeoutMsDefault = 5_000;
/** dialTimeoutMsDefault is etcdctl's --dial-timeout default (2 s); used for streams. */
export const dialTimeoutMsDefault = 2_000;

/** RequestOptions tune one request. */
export interface RequestOptions {
  /** idempotent allows failover after a timeout, reset or 503. */
  idempotent?: boolean;
  /** errors 'return' hands an HTTP error answer to the caller instead of throwing it (the
   * /v1 client reads its own error envelope). */
  errors?: 'throw' | 'return';
  timeoutMs?: number;
  signal?: AbortSignal;
}

const notSentCodes = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
]);

/** Transport sends JSON requests to a set of endpoints (see the file comment). */
export class Transport {
  readonly endpoints: readonly string[];
  readonly timeoutMs: number;
  private current = 0;

  /** auth: TLS options for https endpoints, and a token sent as etcd's Authorization. */
  constructor(endpoints: string[], timeoutMs = requestTimeoutMsDefault,
    readonly auth: { tls?: ClientTlsOptions; token?: string } = {}) {
    if (endpoints.length === 0) throw new TypeError('client: at least one endpoint is needed');
    this.endpoints = endpoints.map(normalizeEndpoint);
    this.timeoutMs = timeoutMs;
  }

  private send(url: string, init: RequestInit): Promise<Response> {
    if (this.auth.token !== undefined) {
      const h = new Headers(init.headers);
      h.set('authorization', this.auth.token);
      init = { ...init, headers: h };
    }
    const t = this.auth.tls;
    return t !== undefined && url.startsWith('https:') ? httpsFetch(url, init, t)
      : fetch(url, init);
  }

  /** endpoint is the endpoint requests go to first. */
  get endpoint(): string {
    return this.endpoints[this.current]!;
  }

  /** post sends `body` as JSON to `path` and returns the parsed JSON answer. */
  async post<T>(path: string, body: unknown, opts: RequestOptions = {}): Promise<T> {
    const res = await this.fetch(
      path,
      {
        method: 'POST',
        body: JSON.stringify(body),
        headers: { 'content-type': 'application/json' },
      },
      opts,
    );
    return await readJson<T>(res.response, res.endpoint);
  }

  /**
   * fetch sends one HTTP request with failover and returns the response of the endpoint that
   * answered; an HTTP error status with an etcd error body becomes a ClientError.
   * For streams, pass `stream: true`: the timeout then covers only the response headers.
   */
  async fetch(
    path: string,
    init: RequestInit,
    opts: RequestOptions & { stream?: boolean } = {},
  ): Promise<{ response: Response; endpoint: string }> {
    let last: unknown;
    for (let tried = 0; tried < this.endpoints.length; tried++) {
      const index = (this.current + tried) % this.endpoints.length;
      const endpoint = this.endpoints[index]!;
      const ctl = new AbortController();
      const onAbort = () => ctl.abort(opts.signal?.reason);
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      const timer = setTimeout(
        () => ctl.abort(new TimeoutError()),
        opts.timeoutMs ?? this.timeoutMs,
      );
      let response: Response;
      try {
        response = await this.send(endpoint + path, { ...init, signal: ctl.signal });
        if (!opts.stream) {
          // Read the body under the same deadline.
          const text = await response.text();
          response = new Response(text, { status: response.status, headers: response.headers });
        }
      } catch (e) {
        if (opts.signal?.aborted) throw e;
        last = e;
        const timedOut = ctl.signal.reason instanceof TimeoutError;
        if (isNotSent(e) || opts.idempotent === true) continue;
        throw networkError(endpoint, e, timedOut);
      } finally {
        clearTimeout(timer);
        // A stream's body is read later: the caller's signal must still be able to end it.
        if (!opts.stream) opts.signal?.removeEventListener('abort', onAbort);
      }
      if (
        response.status === 503 &&
        opts.idempotent === true &&
        tried + 1 < this.endpoints.length
      ) {
        last = await errorOf(response, endpoint);
        continue;
      }
      this.current = index;
      if (!response.ok && opts.errors !== 'return') throw await errorOf(response, endpoint);
      return { response, endpoint };
    }
    if (last instanceof ClientError) throw last;
    throw networkError(
      this.endpoints.join(','),
      last,
      last instanceof Error && last.name === 'AbortError',
    );
  }
}

class TimeoutError extends Error {
  constructor() {
    super('context deadline exceeded');
  }
}

function isNotSent(e: unknown): boolean {
  const cause = (e as { cause?: { code?: string; message?: string } }).cause;
  // fetch refuses some ports outright ("bad port") before sending anything.
  if (cause?.message === 'bad port') return true;
  return cause?.code !== undefined && notSentCodes.has(cause.code);
}

function networkError(endpoint: string, e: unknown, timedOut: boolean): ClientError {
  if (timedOut) {
    return new ClientError('context deadline exceeded', grpcCodes.DeadlineExceeded, 0, endpoint, e);
  }
  const cause = (e as { cause?: { code?: string; message?: string } }).cause;
  const why = cause?.message ?? (e instanceof Error ? e.message : String(e));
  return new ClientError(
    `all endpoints failed: ${endpoint}: ${why}`,
    grpcCodes.Unavailable,
    0,
    endpoint,
    e,
  );
}

/** errorOf turns an HTTP error answer into a ClientError, reading etcd's gateway error body
 * `{"error": ..., "message": ..., "code": n}` (or our /v1 envelope's `error` object). */
export async function errorOf(response: Response, endpoint: string): Promise<ClientError> {
  const text = await response.text();
  let message = text.trim() === '' ? response.statusText : text.trim();
  let code = grpcOfHttpStatus(response.status);
  try {
    const j = JSON.parse(text) as Record<string, unknown>;
    const err = j.error;
    if (typeof j.message === 'string' && j.message !== '') message = j.message;
    else if (typeof err === 'string' && err !== '') message = err;
    else if (err !== null && typeof err === 'object') {
      const m = (err as Record<string, unknown>).message;
      if (typeof m === 'string') message = m;
      const c = (err as Record<string, unknown>).code;
      if (typeof c === 'number') code = c;
    }
    if (typeof j.code === 'number') code = j.code;
  } catch {
    // a plain-text error: keep the text
  }
  return new ClientError(message, code, response.status, endpoint);
}

async function readJson<T>(response: Response, endpoint: string): Promise<T> {
  const text = await response.text();
  try {
    return (text === '' ? {} : JSON.parse(text)) as T;
  } catch (e) {
    throw new ClientError(
      `invalid JSON from ${endpoint}: ${text.slice(0, 200)}`,
      grpcCodes.Internal,
      response.status,
      endpoint,
      e,
    );
  }
}

/** normalizeEndpoint accepts 'host:port' or a URL and drops a trailing slash. */
export function normalizeEndpoint(e: string): string {
  const withScheme = /^[a-z]+:\/\//i.test(e) ? e : `http://${e}`;
  return withScheme.replace(/\/+$/, '');
}
