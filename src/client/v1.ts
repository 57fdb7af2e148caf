import { setTimeout as sleep } from 'node:timers/promises';
import { ClientError, grpcCodes } from './errors.js';
import { resumable } from './stream.js';
import { Transport } from './transport.js';

/**
 * V1Client: a typed client for MyEtcd's own REST API under /v1 (docs/api.md, "/v1: the seed's
 * REST API"). Keys and values are UTF-8 text, numbers are JSON numbers, every answer is one
 * envelope — `{"ok":true,"revision":N,"data":…}` or `{"ok":false,"error":{"code","message"}}`
 * — and every failure is thrown as a V1Error carrying the envelope's `code`.
 *
 *   const v1 = new V1Client('http://127.0.0.1:2379');
 *   await v1.put('app/db/host', '10.0.0.1');            // keys may contain '/'
 *   const { kv } = await v1.get('app/db/host');
 *   for await (const page of v1.pages({ prefix: 'app/', limit: 100 })) console.log(page.kvs);
 *   for await (const r of v1.watch('app/', { prefix: true })) console.log(r.events);
 *
 * For etcd's own /v3 JSON API (which also works against a real etcd), use Client.
 */

/** V1ErrorCode is the envelope's stable error code (the table in docs/api.md), or one of the
 * client's own: NETWORK (no answer), TIMEOUT (no answer in time), BAD_RESPONSE (an answer
 * that is not a /v1 envelope, e.g. a proxy's page or a 404 for an unknown route), CANCELED (a
 * watch the server canceled). */
export type V1ErrorCode =
  | 'EMPTY_KEY'
  | 'KEY_NOT_FOUND'
  | 'VALUE_PROVIDED'
  | 'LEASE_PROVIDED'
  | 'TOO_MANY_OPS'
  | 'DUPLICATE_KEY'
  | 'COMPACTED'
  | 'FUTURE_REV'
  | 'LEASE_NOT_FOUND'
  | 'LEASE_EXISTS'
  | 'LEASE_TTL_TOO_LARGE'
  | 'REQUEST_TOO_LARGE'
  | 'TOO_MANY_REQUESTS'
  | 'TIMEOUT'
  | 'NO_LEADER'
  | 'BAD_REQUEST'
  | 'INTERNAL'
  | 'NETWORK'
  | 'BAD_RESPONSE'
  | 'CANCELED'
  | (string & {});

/** V1Error is every failure of a V1Client call. */
export class V1Error extends Error {
  /** code is the envelope's `error.code` (see V1ErrorCode). */
  readonly code: V1ErrorCode;
  /** status is the HTTP status, or 0 when the server did not answer. */
  readonly status: number;
  constructor(code: V1ErrorCode, message: string, status: number, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'V1Error';
    this.code = code;
    this.status = status;
  }
}

/** V1KeyValue is a key's state, as /v1 writes it (`value` is absent with keysOnly). */
export interface V1KeyValue {
  key: string;
  value: string;
  createRevision: number;
  modRevision: number;
  version: number;
  /** lease is the attached lease id (0 for none). */
  lease: number;
}

/** V1Result is an answer's data with the store revision it reflects. */
export type V1Result<T> = T & { revision: number };

/** V1ListOptions select the keys of list() and pages(): `prefix`, or `from`/`to` (to
 * omitted: to the end), or neither (every key). */
export interface V1ListOptions {
  prefix?: string;
  from?: string;
  to?: string;
  /** limit is the page size (server default 100, at most 10000). */
  limit?: number;
  /** revision reads at a past revision (pages() pins every page to the first's revision). */
  revision?: number;
  keysOnly?: boolean;
  /** cursor is a previous page's `cursor`: where this page starts. */
  cursor?: string;
}

/** V1Page is one page of GET /v1/keys. */
export interface V1Page {
  revision: number;
  kvs: V1KeyValue[];
  /** count is the number of keys from this page's start to the end of the range. */
  count: number;
  more: boolean;
  /** cursor (present when more) starts the next page. */
  cursor?: string;
}

/** V1Compare is one compare of a txn: `target` of `key` `op` `value`. */
export interface V1Compare {
  key: string;
  target: 'value' | 'version' | 'createRevision' | 'modRevision' | 'lease';
  /** op defaults to '=='. */
  op?: '==' | '!=' | '>' | '<';
  /** value: text for target 'value', a number otherwise. */
  value: string | number;
  /** prefix compares every key with the prefix `key`. */
  prefix?: boolean;
}

/** V1Op is one operation of a txn (get, put, delete) or a batch (put, delete). */
export type V1Op =
  | { op: 'get'; key: string; prefix?: boolean }
  | { op: 'put'; key: string; value: string; lease?: number; prevKV?: boolean }
  | { op: 'delete'; key: string; prefix?: boolean; prevKV?: boolean };

/** V1OpResponse is one operation's answer inside a txn or batch. */
export type V1OpResponse =
  | { op: 'get'; kvs: V1KeyValue[]; count: number; more: boolean }
  | { op: 'put'; prevKv?: V1KeyValue }
  | { op: 'delete'; deleted: number; prevKvs?: V1KeyValue[] };

/** V1Txn is the body of POST /v1/txn. */
export interface V1Txn {
  compare?: V1Compare[];
  success?: V1Op[];
  failure?: V1Op[];
}

/** V1WatchEvent is one change seen by a watch. */
export interface V1WatchEvent extends V1KeyValue {
  type: 'PUT' | 'DELETE';
  prevKv?: V1KeyValue;
}

/** V1WatchResponse is one Server-Sent Event with events. */
export interface V1WatchResponse {
  revision: number;
  watchId: number;
  events: V1WatchEvent[];
}

/** V1WatchOptions tune watch(). */
export interface V1WatchOptions {
  /** prefix watches every key with the prefix `key`. */
  prefix?: boolean;
  /** prevKV adds each changed key's previous state to its event. */
  prevKV?: boolean;
  /** startRevision replays history from this revision (0: from now). */
  startRevision?: number;
  /** signal ends the watch, as close() does. */
  signal?: AbortSignal;
  /** reconnectsMax bounds consecutive failed reconnects (default 5; 0: never reconnect). */
  reconnectsMax?: number;
}

/** V1LeaseInfo is GET /v1/leases/<id>. */
export interface V1LeaseInfo {
  id: number;
  /** ttl is the remaining time to live in seconds. */
  ttl: number;
  grantedTtl: number;
  keys: string[];
}

/** V1ClientOptions configure a V1Client. */
export interface V1ClientOptions {
  /** endpoint: 'http://host:port' or 'host:port'. */
  endpoint: string;
  /** timeoutMs bounds each request (default 5 s; watch streams: only until the headers). */
  timeoutMs?: number;
}

type Json = Record<string, unknown>;

/** V1Client: see the file comment. */
export class V1Client {
  readonly endpoint: string;
  readonly timeoutMs: number;
  /** transport is the one the /v3 Client uses: timeouts, network errors (and failover). */
  readonly transport: Transport;

  constructor(opts: string | V1ClientOptions) {
    const o = typeof opts === 'string' ? { endpoint: opts } : opts;
    this.transport = new Transport([o.endpoint], o.timeoutMs);
    this.endpoint = this.transport.endpoint;
    this.timeoutMs = this.transport.timeoutMs;
  }

  // ---- keys ----

  /** put writes `key` = `value`; `prevKV` returns the key's previous state. */
  async put(
    key: string,
    value: string,
    opts: { lease?: number; prevKV?: boolean } = {},
  ): Promise<V1Result<{ prevKv?: V1KeyValue }>> {
    const body: Json = { value };
    if (opts.lease !== undefined && opts.lease !== 0) body['lease'] = opts.lease;
    if (opts.prevKV) body['prevKV'] = true;
    return this.call('PUT', keyPath(key), body);
  }

  /** get reads one key; a missing key throws V1Error KEY_NOT_FOUND (404). */
  async get(key: string, opts: { revision?: number } = {}): Promise<V1Result<{ kv: V1KeyValue }>> {
    const { revision, ...kv } = await this.call<V1KeyValue>(
      'GET',
      keyPath(key) + query({ revision: opts.revision }),
    );
    return { revision, kv };
  }

  /** getValue reads one key's value, or undefined when the key does not exist. */
  async getValue(key: string, opts: { revision?: number } = {}): Promise<string | undefined> {
    try {
      return (await this.get(key, opts)).kv.value;
    } catch (e) {
      if (e instanceof V1Error && e.code === 'KEY_NOT_FOUND') return undefined;
      throw e;
    }
  }

  /** delete removes a key (or, with `prefix`, every key with that prefix). */
  async delete(
    key: string,
    opts: { prefix?: boolean; prevKV?: boolean } = {},
  ): Promise<V1Result<{ deleted: number; prevKvs?: V1KeyValue[] }>> {
    return this.call('DELETE', keyPath(key) + query({ prefix: opts.prefix, prevKV: opts.prevKV }));
  }

  /** list reads one page of keys (see pages() to read them all). */
  async list(opts: V1ListOptions = {}): Promise<V1Page> {
    return this.call<V1Page>(
      'GET',
      '/v1/keys' +
        query({
          prefix: opts.prefix,
          from: opts.from,
          to: opts.to,
          limit: opts.limit,
          cursor: opts.cursor,
          revision: opts.revision,
          keysOnly: opts.keysOnly,
        }),
    );
  }

  /**
   * pages iterates over every page of a range, following the cursor. Every page is read at
   * the first page's revision (or `opts.revision`), so together they are one consistent
   * snapshot even while others write.
   */
  async *pages(opts: V1ListOptions = {}): AsyncGenerator<V1Page> {
    let page = await this.list(opts);
    yield page;
    const revision = opts.revision ?? page.revision;
    while (page.more && page.cursor !== undefined) {
      page = await this.list({ ...opts, revision, cursor: page.cursor });
      yield page;
    }
  }

  /** all iterates over every key-value of a range, page by page (see pages()). */
  async *all(opts: V1ListOptions = {}): AsyncGenerator<V1KeyValue> {
    for await (const page of this.pages(opts)) yield* page.kvs;
  }

  /** txn runs a transaction: if every compare holds, `success`, else `failure`. */
  async txn(t: V1Txn): Promise<V1Result<{ succeeded: boolean; responses: V1OpResponse[] }>> {
    return this.call('POST', '/v1/txn', {
      compare: t.compare ?? [],
      success: t.success ?? [],
      failure: t.failure ?? [],
    });
  }

  /** batch applies puts and deletes atomically, at one revision (at most 128; no key
   * written twice: DUPLICATE_KEY). */
  async batch(
    ops: Array<Exclude<V1Op, { op: 'get' }>>,
  ): Promise<V1Result<{ responses: V1OpResponse[] }>> {
    return this.call('POST', '/v1/batch', { ops });
  }

  // ---- watch ----

  /** watch streams the changes of `key` (or of a prefix) as Server-Sent Events; iterate it
   * with `for await`. See V1Watch. */
  watch(key: string, opts: V1WatchOptions = {}): V1Watch {
    return new V1Watch(this, key, opts);
  }

  // ---- leases ----

  /** leaseGrant creates a lease of `ttl` seconds (below 2 is raised to 2); `id` 0 (the
   * default) lets the server choose one. */
  async leaseGrant(ttl: number, id = 0): Promise<V1Result<{ id: number; ttl: number }>> {
    const body: Json = { ttl };
    if (id !== 0) body['id'] = id;
    return this.call('POST', '/v1/leases', body);
  }

  /** leaseRevoke ends a lease now and deletes its keys. */
  async leaseRevoke(id: number): Promise<V1Result<object>> {
    return this.call('DELETE', `/v1/leases/${id}`);
  }

  /** leaseKeepAliveOnce renews a lease once; a lease that is gone throws LEASE_NOT_FOUND. */
  async leaseKeepAliveOnce(id: number): Promise<V1Result<{ id: number; ttl: number }>> {
    return this.call('POST', `/v1/leases/${id}/keepalive`);
  }

  /** leaseInfo reports a lease's remaining and granted TTL and its keys. */
  async leaseInfo(id: number): Promise<V1Result<V1LeaseInfo>> {
    return this.call('GET', `/v1/leases/${id}`);
  }

  /** leases lists the ids of the live leases. */
  async leases(): Promise<number[]> {
    const r = await this.call<{ leases: Array<{ id: number }> }>('GET', '/v1/leases');
    return r.leases.map((l) => l.id);
  }

  /** keepAlive renews a lease every third of its TTL until closed; see V1KeepAlive. */
  keepAlive(id: number, opts: V1KeepAliveOptions = {}): V1KeepAlive {
    return new V1KeepAlive(this, id, opts);
  }

  // ---- transport ----

  /**
   * call sends one request and unwraps the envelope: its `data` with its `revision`, or a
   * thrown V1Error with the envelope's code.
   */
  async call<T>(method: string, path: string, body?: unknown): Promise<V1Result<T>> {
    const init: RequestInit = { method };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers = { 'content-type': 'application/json' };
    }
    let res: Response;
    let text: string;
    try {
      const opts = { idempotent: method === 'GET', errors: 'return' } as const;
      res = (await this.transport.fetch(path, init, opts)).response;
      text = await res.text();
    } catch (e) {
      throw networkError(e);
    }
    const env = envelope(text, res.status);
    return { ...(env.data as T), revision: env.revision };
  }

  /** open starts a streaming request (watch); an error answer throws a V1Error. */
  async open(
    path: string,
    body: unknown,
    headers: Record<string, string>,
    signal: AbortSignal,
  ): Promise<Response> {
    try {
      const init = {
        method: 'POST',
        body: JSON.stringify(body),
        headers: { 'content-type': 'application/json', ...headers },
      };
      const opts = { stream: true, idempotent: true, errors: 'return', signal } as const;
      const res = (await this.transport.fetch(path, init, opts)).response;
      if (!res.ok) envelope(await res.text(), res.status); // throws
      return res;
    } catch (e) {
      if (e instanceof V1Error) throw e;
      throw networkError(e);
    }
  }
}

/** keyPath is `/v1/key/<key>`, percent-encoded, with the key's '/' kept readable. */
export function keyPath(key: string): string {
  if (key === '') throw new V1Error('EMPTY_KEY', 'etcdserver: key is not provided', 0);
  return '/v1/key/' + encodeURIComponent(key).replace(/%2F/g, '/');
}

function query(params: Record<string, string | number | boolean | undefined>): string {
  const q = new URLSearchParams();
  for (const [name, v] of Object.entries(params)) {
    if (v === undefined || v === false || v === '') continue;
    q.set(name, String(v));
  }
  const s = q.toString();
  return s === '' ? '' : '?' + s;
}

interface Envelope {
  ok: boolean;
  revision: number;
  data?: unknown;
  error?: { code: string; message: string };
}

/** envelope reads a /v1 answer; a failure envelope (or no envelope) throws a V1Error. */
function envelope(text: string, status: number): Envelope {
  let env: Envelope | undefined;
  try {
    const j = JSON.parse(text) as unknown;
    if (typeof j === 'object' && j !== null && typeof (j as Envelope).ok === 'boolean') {
      env = j as Envelope;
    }
  } catch {
    // not JSON: below
  }
  if (env === undefined) {
    const what = text.trim().slice(0, 200) || `HTTP ${status}`;
    throw new V1Error('BAD_RESPONSE', `not a /v1 answer (HTTP ${status}): ${what}`, status);
  }
  if (!env.ok) {
    const e = env.error ?? { code: 'INTERNAL', message: 'error without details' };
    throw new V1Error(e.code, e.message, status);
  }
  return env;
}

/** networkError is a transport failure (no answer, or none in time) as a V1Error. */
function networkError(e: unknown): V1Error {
  if (e instanceof ClientError && e.code === grpcCodes.DeadlineExceeded) {
    return new V1Error('TIMEOUT', `no answer from ${e.endpoint} in time`, 0, e);
  }
  return new V1Error('NETWORK', e instanceof Error ? e.message : String(e), 0, e);
}

// ---- watch ----

/**
 * V1Watch is one watch over POST /v1/watch (Server-Sent Events): an async iterable of the
 * responses that carry events. It connects when iteration starts; `created` then resolves
 * with the revision the watch starts after (every later change is seen). When the stream
 * breaks it reconnects with `Last-Event-ID` (the last revision seen), so nothing is lost or
 * repeated. The iteration throws a V1Error COMPACTED when the start revision was compacted,
 * CANCELED when the server cancels the watch; it ends after close().
 */
export class V1Watch implements AsyncIterable<V1WatchResponse> {
  /** created resolves with the store revision when the server has registered the watch. */
  readonly created: Promise<number>;
  private resolveCreated!: (revision: number) => void;
  private rejectCreated!: (e: unknown) => void;
  private readonly ctl = new AbortController();
  private started = false;

  constructor(
    private readonly client: V1Client,
    private readonly key: string,
    private readonly opts: V1WatchOptions,
  ) {
    this.created = new Promise((resolve, reject) => {
      this.resolveCreated = resolve;
      this.rejectCreated = reject;
    });
    this.created.catch(() => undefined);
    opts.signal?.addEventListener('abort', () => this.close(), { once: true });
  }

  /** close ends the watch; a pending iteration ends without error. */
  close(): void {
    this.ctl.abort();
    this.rejectCreated(new V1Error('CANCELED', 'watch closed', 0));
  }

  [Symbol.asyncIterator](): AsyncIterator<V1WatchResponse> {
    if (this.started) throw new TypeError('client: a V1Watch can be iterated once');
    this.started = true;
    return this.run();
  }

  private async *run(): AsyncGenerator<V1WatchResponse> {
    const signal = this.ctl.signal;
    const body: Json = { key: this.key };
    if (this.opts.prefix) body['prefix'] = true;
    if (this.opts.prevKV) body['prevKV'] = true;
    if (this.opts.startRevision) body['startRevision'] = this.opts.startRevision;
    let lastEventId: string | undefined;
    const messages = resumable<{ id?: string; r: Json }>({
      signal,
      reconnectsMax: this.opts.reconnectsMax ?? 5,
      open: async (sig) => {
        const headers: Record<string, string> = { accept: 'text/event-stream' };
        // Resume after the last event seen.
        if (lastEventId !== undefined) headers['last-event-id'] = lastEventId;
        const res = await this.client.open('/v1/watch', body, headers, sig);
        return parsed(sseEvents(res.body!));
      },
      // A refusal (bad request, full server…) is final; no answer may be transient.
      final: (e) => e instanceof V1Error && e.status !== 0,
      healthy: (m) => m.r['created'] === true,
      lost: (e) =>
        e instanceof V1Error
          ? e
          : e instanceof Error && e.message === 'stream ended'
            ? new V1Error('NETWORK', 'watch stream ended', 0)
            : networkError(e),
    });
    try {
      for await (const { id, r } of messages) {
        if (id !== undefined) lastEventId = id;
        if (r['created'] === true) this.resolveCreated(Number(r['revision']));
        if (typeof r['compactRevision'] === 'number' && r['compactRevision'] > 0) {
          throw new V1Error(
            'COMPACTED',
            'etcdserver: mvcc: required revision has been compacted',
            200,
          );
        }
        if (r['canceled'] === true) {
          const reason = String(r['cancelReason'] ?? '') || 'watch canceled by the server';
          throw new V1Error('CANCELED', reason, 200);
        }
        const events = (r['events'] ?? []) as V1WatchEvent[];
        if (events.length > 0) {
          yield { revision: Number(r['revision']), watchId: Number(r['watchId'] ?? 0), events };
        }
      }
    } catch (e) {
      this.rejectCreated(e);
      throw e;
    } finally {
      this.ctl.abort();
    }
  }
}

/** parsed reads each event's JSON data (a parse error breaks the stream, which reopens). */
async function* parsed(
  events: AsyncIterable<{ id?: string; data: string }>,
): AsyncGenerator<{ id?: string; r: Json }> {
  for await (const ev of events) {
    const r = JSON.parse(ev.data) as Json;
    yield ev.id === undefined ? { r } : { id: ev.id, r };
  }
}

/** sseEvents yields each Server-Sent Event of a stream (comments skipped). */
export async function* sseEvents(
  body: ReadableStream<Uint8Array>,
): AsyncGenerator<{ id?: string; data: string }> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  let id: string | undefined;
  let data: string[] = [];
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      buf += decoder.decode(value, { stream: true });
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).replace(/\r$/, '');
        buf = buf.slice(nl + 1);
        if (line === '') {
          if (data.length > 0)
            yield id === undefined ? { data: data.join('\n') } : { id, data: data.join('\n') };
          id = undefined;
          data = [];
        } else if (line.startsWith('data:')) {
          data.push(line.slice(5).replace(/^ /, ''));
        } else if (line.startsWith('id:')) {
          id = line.slice(3).trim();
        }
      }
    }
  } finally {
    reader.cancel().catch(() => undefined);
  }
}

// ---- keep-alive ----

/** V1KeepAliveOptions tune a V1KeepAlive. */
export interface V1KeepAliveOptions {
  /** ttl is the lease's TTL in seconds if known (the first renewal is due at a third). */
  ttl?: number;
  /** onRenew sees each renewal. */
  onRenew?: (r: { id: number; ttl: number }) => void;
  /** onError sees each failed attempt (it retries until the TTL runs out). */
  onError?: (e: unknown) => void;
}

/**
 * V1KeepAlive renews a lease every third of its TTL until close(). `done` resolves with
 * undefined after close(), with a V1Error LEASE_NOT_FOUND when the lease is gone (revoked or
 * expired), or with the last error when no renewal succeeded before the TTL ran out.
 */
export class V1KeepAlive {
  readonly done: Promise<Error | undefined>;
  private readonly ctl = new AbortController();

  constructor(
    private readonly client: V1Client,
    readonly id: number,
    private readonly opts: V1KeepAliveOptions,
  ) {
    this.done = this.run();
  }

  /** close stops renewing (the lease then expires after its TTL unless revoked). */
  close(): void {
    this.ctl.abort();
  }

  private async run(): Promise<Error | undefined> {
    const signal = this.ctl.signal;
    const ttl0 = this.opts.ttl ?? 5;
    let deadline = Date.now() + ttl0 * 1000;
    let waitMs = this.opts.ttl === undefined ? 0 : (ttl0 * 1000) / 3;
    while (!signal.aborted) {
      try {
        await sleep(waitMs, undefined, { signal });
      } catch {
        break;
      }
      try {
        const r = await this.client.leaseKeepAliveOnce(this.id);
        if (signal.aborted) break;
        this.opts.onRenew?.({ id: r.id, ttl: r.ttl });
        deadline = Date.now() + r.ttl * 1000;
        waitMs = Math.max(100, (r.ttl * 1000) / 3);
      } catch (e) {
        if (signal.aborted) break;
        if (e instanceof V1Error && e.code === 'LEASE_NOT_FOUND') return e;
        this.opts.onError?.(e);
        if (Date.now() >= deadline) return e instanceof Error ? e : new Error(String(e));
        waitMs = 500;
      }
    }
    return undefined;
  }
}
