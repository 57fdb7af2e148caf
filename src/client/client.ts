import { setTimeout as sleep } from 'node:timers/promises';
import {
  type Json,
  deleteResult,
  header,
  id,
  idParam,
  int,
  keyValue,
  member,
  memberListResult,
  putResult,
  rangeOf,
  rangeResult,
} from './codec.js';
import { ClientError, grpcCodes } from './errors.js';
import { jsonLines, resumable } from './stream.js';
import { deleteRequest, putRequest, rangeRequest, TxnBuilder } from './txn.js';
import { dialTimeoutMsDefault, Transport } from './transport.js';
import type { ClientTlsOptions } from './tls.js';
import type {
  Bytesish,
  DeleteOptions,
  DeleteResult,
  GetOptions,
  LeaseGrantResult,
  LeaseKeepAliveResult,
  LeaseTimeToLiveResult,
  MemberAddResult,
  MemberListResult,
  PutOptions,
  PutResult,
  RangeResult,
  ResponseHeader,
  StatusResult,
  WatchEvent,
  WatchOptions,
  WatchResponse,
} from './types.js';

/**
 * Client: a typed client for etcd 3.4's JSON gateway (/v3), which MyEtcd serves too. It
 * works unchanged against a real etcd, which is how it was checked.
 *
 *   const client = new Client({ endpoints: ['http://127.0.0.1:2379'] });
 *   await client.put('greeting', 'hello');
 *   const { kvs } = await client.get('greet', { prefix: true });
 *   for await (const r of client.watch('greeting')) console.log(r.events);
 */

/** ClientOptions configure a Client. */
export interface ClientOptions {
  /** endpoints are tried in turn (see transport.ts for when a request fails over). */
  endpoints: string[];
  /** requestTimeoutMs bounds each unary request (etcdctl's --command-timeout, 5 s). */
  requestTimeoutMs?: number;
  /** dialTimeoutMs bounds connecting a stream (etcdctl's --dial-timeout, 2 s). */
  dialTimeoutMs?: number;
  /** tls: CA, client certificate and key (PEM) for https endpoints (docs/security.md). */
  tls?: ClientTlsOptions;
  /** token: an auth token (from authenticate) sent with every request. */
  token?: string;
}

/** Client: see the file comment. */
export class Client {
  readonly transport: Transport;
  private readonly dialTimeoutMs: number;

  constructor(opts: ClientOptions) {
    this.transport = new Transport(opts.endpoints, opts.requestTimeoutMs, {
      ...(opts.tls === undefined ? {} : { tls: opts.tls }),
      ...(opts.token === undefined ? {} : { token: opts.token }),
    });
    this.dialTimeoutMs = opts.dialTimeoutMs ?? dialTimeoutMsDefault;
  }

  private post(path: string, body: Json, idempotent: boolean): Promise<Json> {
    return this.transport.post<Json>(path, body, { idempotent });
  }

  /** get reads a key or a range (etcd's Range). */
  async get(key: Bytesish, opts: GetOptions = {}): Promise<RangeResult> {
    return rangeResult(await this.post('/v3/kv/range', rangeRequest(key, opts), true));
  }

  /** getString reads one key's value as UTF-8 text, or undefined when absent. */
  async getString(
    key: Bytesish,
    opts: Omit<GetOptions, 'prefix' | 'rangeEnd' | 'fromKey'> = {},
  ): Promise<string | undefined> {
    const r = await this.get(key, opts);
    return r.kvs[0]?.value.toString('utf8');
  }

  /** put writes a key. */
  async put(key: Bytesish, value: Bytesish, opts: PutOptions = {}): Promise<PutResult> {
    return putResult(await this.post('/v3/kv/put', putRequest(key, value, opts), false));
  }

  /** delete removes a key or a range. */
  async delete(key: Bytesish, opts: DeleteOptions = {}): Promise<DeleteResult> {
    return deleteResult(await this.post('/v3/kv/deleterange', deleteRequest(key, opts), false));
  }

  /** txn starts a transaction builder; see txn.ts. */
  txn(): TxnBuilder {
    return new TxnBuilder((req) => this.post('/v3/kv/txn', req, false));
  }

  /** compact discards history before `revision`. */
  async compact(
    revision: number,
    opts: { physical?: boolean } = {},
  ): Promise<{ header: ResponseHeader }> {
    const body: Json = { revision: String(revision) };
    if (opts.physical) body.physical = true;
    return { header: header((await this.post('/v3/kv/compaction', body, false)).header) };
  }

  /** status asks the first endpoint that answers for its status (maintenance/status). */
  async status(): Promise<StatusResult> {
    return statusResult(await this.post('/v3/maintenance/status', {}, true));
  }

  /** statusOf asks one given endpoint, without failover (etcdctl endpoint status). */
  async statusOf(endpoint: string): Promise<StatusResult> {
    return statusResult(await this.transportOf(endpoint).post<Json>('/v3/maintenance/status', {}));
  }

  /** transportOf is a transport to one endpoint alone, with this client's timeout. */
  private transportOf(endpoint: string): Transport {
    return new Transport([endpoint], this.transport.timeoutMs, this.transport.auth);
  }

  // ---- cluster ----

  /** memberList lists the cluster's members (cluster/member/list). */
  async memberList(): Promise<MemberListResult> {
    return memberListResult(await this.post('/v3/cluster/member/list', {}, true));
  }

  /** memberAdd adds a member with these peer URLs, as a learner with `isLearner`. */
  async memberAdd(
    peerURLs: string[],
    opts: { isLearner?: boolean } = {},
  ): Promise<MemberAddResult> {
    const body: Json = { peerURLs };
    if (opts.isLearner) body.isLearner = true;
    const j = await this.post('/v3/cluster/member/add', body, false);
    return { ...memberListResult(j), member: member(j.member) };
  }

  /** memberRemove removes a member (id: its uint64 id as a decimal string). */
  async memberRemove(memberId: string | bigint): Promise<MemberListResult> {
    const body = { ID: uintParam(memberId) };
    return memberListResult(await this.post('/v3/cluster/member/remove', body, false));
  }

  /** memberUpdate changes a member's peer URLs. */
  async memberUpdate(memberId: string | bigint, peerURLs: string[]): Promise<MemberListResult> {
    const body = { ID: uintParam(memberId), peerURLs };
    return memberListResult(await this.post('/v3/cluster/member/update', body, false));
  }

  /** memberPromote makes a learner a voting member. */
  async memberPromote(memberId: string | bigint): Promise<MemberListResult> {
    const body = { ID: uintParam(memberId) };
    return memberListResult(await this.post('/v3/cluster/member/promote', body, false));
  }

  /** moveLeader asks the leader to hand leadership to `targetId`. Only the leader accepts it:
   * `endpoint` names the leader's endpoint (find it with statusOf); without it the request
   * goes to the endpoints in turn. */
  async moveLeader(
    targetId: string | bigint,
    endpoint?: string,
  ): Promise<{ header: ResponseHeader }> {
    const body = { targetID: uintParam(targetId) };
    const t = endpoint === undefined ? this.transport : this.transportOf(endpoint);
    const j = await t.post<Json>('/v3/maintenance/transfer-leadership', body);
    return { header: header(j.header) };
  }

  // ---- leases ----

  /** leaseGrant creates a lease of `ttl` seconds (id '0' lets the server choose). */
  async leaseGrant(ttl: number, leaseId: string | number | bigint = 0): Promise<LeaseGrantResult> {
    const body: Json = { TTL: String(ttl) };
    if (String(leaseId) !== '0') body.ID = idParam(leaseId);
    const j = await this.post('/v3/lease/grant', body, false);
    if (typeof j.error === 'string' && j.error !== '') {
      throw new ClientError(j.error, grpcCodes.Unknown, 200, this.transport.endpoint);
    }
    return { header: header(j.header), id: id(j.ID), ttl: int(j.TTL) };
  }

  /** leaseRevoke revokes a lease and deletes its keys. */
  async leaseRevoke(leaseId: string | number | bigint): Promise<{ header: ResponseHeader }> {
    const j = await this.post('/v3/lease/revoke', { ID: idParam(leaseId) }, false);
    return { header: header(j.header) };
  }

  /** leaseKeepAliveOnce renews a lease once. Throws NotFound if the lease is gone. */
  async leaseKeepAliveOnce(leaseId: string | number | bigint): Promise<LeaseKeepAliveResult> {
    const { response, endpoint } = await this.transport.fetch(
      '/v3/lease/keepalive',
      {
        method: 'POST',
        body: JSON.stringify({ ID: idParam(leaseId) }),
        headers: { 'content-type': 'application/json' },
      },
      { idempotent: true, stream: true },
    );
    let first: Json | undefined;
    if (response.body !== null) {
      for await (const m of jsonLines(response.body)) {
        first = m;
        break;
      }
    }
    if (first === undefined)
      throw new ClientError('lease keepalive: empty answer', 2, 200, endpoint);
    if (first.error !== undefined) throw streamError(first.error, endpoint);
    const r = (first.result ?? first) as Json;
    const ttl = int(r.TTL);
    if (ttl <= 0) {
      throw new ClientError(
        'etcdserver: requested lease not found',
        grpcCodes.NotFound,
        200,
        endpoint,
      );
    }
    return { header: header(r.header), id: id(r.ID), ttl };
  }

  /** leaseTimeToLive reports a lease's remaining and granted TTL (and keys with `keys`).
   * ttl is -1 when the lease has expired or does not exist, as in etcd. */
  async leaseTimeToLive(
    leaseId: string | number | bigint,
    opts: { keys?: boolean } = {},
  ): Promise<LeaseTimeToLiveResult> {
    const body: Json = { ID: idParam(leaseId) };
    if (opts.keys) body.keys = true;
    const j = await this.post('/v3/lease/timetolive', body, true);
    return {
      header: header(j.header),
      id: id(j.ID),
      ttl: int(j.TTL),
      grantedTtl: int(j.grantedTTL),
      keys: ((j.keys ?? []) as string[]).map((k) => Buffer.from(k, 'base64')),
    };
  }

  /** leases lists the ids of all live leases. */
  async leases(): Promise<{ header: ResponseHeader; leases: string[] }> {
    const j = await this.post('/v3/lease/leases', {}, true);
    return { header: header(j.header), leases: ((j.leases ?? []) as Json[]).map((l) => id(l.ID)) };
  }

  /** keepAlive renews a lease until closed or lost; see KeepAlive. */
  keepAlive(leaseId: string | number | bigint, opts: KeepAliveOptions = {}): KeepAlive {
    return new KeepAlive(this, idParam(leaseId), opts);
  }

  /** leaseWithKeepAlive grants a lease and keeps it alive until `close()` (which also
   * revokes it unless `{ revoke: false }`). */
  async leaseWithKeepAlive(
    ttl: number,
    opts: KeepAliveOptions = {},
  ): Promise<
    LeaseGrantResult & { keepAlive: KeepAlive; close(o?: { revoke?: boolean }): Promise<void> }
  > {
    const g = await this.leaseGrant(ttl);
    const keepAlive = this.keepAlive(g.id, { ...opts, ttlSeconds: g.ttl });
    return {
      ...g,
      keepAlive,
      close: async (o = {}) => {
        keepAlive.close();
        if (o.revoke !== false) await this.leaseRevoke(g.id).catch(() => undefined);
      },
    };
  }

  // ---- watch ----

  /** watch streams changes of a key or range; iterate it with `for await`. Reconnects
   * (to the next endpoint if need be) from the revision after the last one seen. */
  watch(key: Bytesish, opts: WatchOptions = {}): Watcher {
    return new Watcher(this.transport, key, opts, this.dialTimeoutMs);
  }
}

/** uintParam encodes a member id (uint64) for a request: a decimal string. */
function uintParam(v: string | bigint): string {
  const s = typeof v === 'string' ? v : v.toString();
  if (!/^\d+$/.test(s)) throw new TypeError(`client: member id must be a decimal uint64: ${s}`);
  return s;
}

function statusResult(j: Json): StatusResult {
  return {
    header: header(j.header),
    version: String(j.version ?? ''),
    dbSize: int(j.dbSize),
    leader: id(j.leader),
    raftIndex: int(j.raftIndex),
    raftTerm: int(j.raftTerm),
    raftAppliedIndex: int(j.raftAppliedIndex),
    dbSizeInUse: int(j.dbSizeInUse),
    isLearner: j.isLearner === true,
    errors: (j.errors ?? []) as string[],
  };
}

function streamError(e: unknown, endpoint: string): ClientError {
  const err = (e ?? {}) as Json;
  const message = String(err.message ?? err.error ?? 'stream error');
  const code =
    typeof err.grpc_code === 'number'
      ? err.grpc_code
      : typeof err.code === 'number'
        ? err.code
        : grpcCodes.Unknown;
  return new ClientError(
    message,
    code,
    typeof err.http_code === 'number' ? err.http_code : 200,
    endpoint,
  );
}

/** KeepAliveOptions tune a KeepAlive. */
export interface KeepAliveOptions {
  /** onResponse sees each renewal (etcdctl prints "lease … keepalived with TTL(n)"). */
  onResponse?: (r: LeaseKeepAliveResult) => void;
  /** onError sees each failed renewal attempt (the KeepAlive retries until the TTL runs out). */
  onError?: (e: unknown) => void;
  /** ttlSeconds is the lease's TTL if known (sets the first retry deadline). */
  ttlSeconds?: number;
}

/** keepAliveRetryMs is the pause between failed renewal attempts. */
export const keepAliveRetryMs = 500;

/**
 * KeepAlive renews a lease every third of its TTL (as clientv3 does) until closed. It ends
 * by itself when the lease is gone (revoked or expired: `done` resolves with the NotFound
 * error) or when no renewal succeeded before the TTL ran out (`done` resolves with the last
 * error). `done` resolves with undefined after close().
 */
export class KeepAlive {
  readonly done: Promise<ClientError | Error | undefined>;
  private readonly ctl = new AbortController();

  constructor(
    private readonly client: Client,
    readonly leaseId: string,
    private readonly opts: KeepAliveOptions,
  ) {
    this.done = this.run();
  }

  /** close stops renewing (the lease then expires after its TTL unless revoked). */
  close(): void {
    this.ctl.abort();
  }

  private async run(): Promise<ClientError | Error | undefined> {
    const signal = this.ctl.signal;
    let deadline = Date.now() + (this.opts.ttlSeconds ?? 5) * 1000;
    while (!signal.aborted) {
      let waitMs: number;
      try {
        const r = await this.client.leaseKeepAliveOnce(this.leaseId);
        if (signal.aborted) break;
        this.opts.onResponse?.(r);
        deadline = Date.now() + r.ttl * 1000;
        waitMs = Math.max(100, (r.ttl * 1000) / 3);
      } catch (e) {
        if (signal.aborted) break;
        if (e instanceof ClientError && e.code === grpcCodes.NotFound) return e;
        this.opts.onError?.(e);
        if (Date.now() >= deadline) return e instanceof Error ? e : new Error(String(e));
        waitMs = keepAliveRetryMs;
      }
      try {
        await sleep(waitMs, undefined, { signal });
      } catch {
        break;
      }
    }
    return undefined;
  }
}

/** WatchCanceledError ends a watch the server canceled: its start revision was compacted
 * (code 11, `compactRevision` the oldest revision left) or another reason (code 1). */
export class WatchCanceledError extends ClientError {
  constructor(
    message: string,
    code: number,
    endpoint: string,
    /** header is the canceling response's header. */
    readonly header: ResponseHeader,
    /** compactRevision is the compacted revision when the start revision was compacted. */
    readonly compactRevision: number,
  ) {
    super(message, code, 200, endpoint);
    this.name = 'WatchCanceledError';
  }
}

/** watchReconnectsMax bounds consecutive failed reconnects of one watch. */
export const watchReconnectsMax = 10;

/**
 * Watcher is one watch over /v3/watch: an async iterable of WatchResponses (each with at
 * least one event). The watch connects when iteration starts (the first `next()`);
 * `created` then resolves when the server has registered it (every later change is seen).
 * The iteration throws a ClientError when the start revision
 * was compacted (code 11, "etcdserver: mvcc: required revision has been compacted") or the
 * server cancels the watch; it ends after cancel().
 */
export class Watcher implements AsyncIterable<WatchResponse> {
  /** created resolves with the header of the server's "created" answer. */
  readonly created: Promise<ResponseHeader>;
  private resolveCreated!: (h: ResponseHeader) => void;
  private rejectCreated!: (e: unknown) => void;
  private readonly ctl = new AbortController();
  private started = false;

  constructor(
    private readonly transport: Transport,
    private readonly key: Bytesish,
    private readonly opts: WatchOptions,
    private readonly dialTimeoutMs: number,
  ) {
    this.created = new Promise((resolve, reject) => {
      this.resolveCreated = resolve;
      this.rejectCreated = reject;
    });
    this.created.catch(() => undefined);
    opts.signal?.addEventListener('abort', () => this.cancel(), { once: true });
  }

  /** cancel ends the watch; a pending iteration ends without error. */
  cancel(): void {
    this.ctl.abort();
    this.rejectCreated(
      new ClientError('watch canceled', grpcCodes.Canceled, 0, this.transport.endpoint),
    );
  }

  [Symbol.asyncIterator](): AsyncIterator<WatchResponse> {
    if (this.started) throw new TypeError('client: a Watcher can be iterated once');
    this.started = true;
    return this.run();
  }

  private request(startRevision: number): Json {
    const r: Json = { ...rangeOf(this.key, this.opts) };
    if (startRevision > 0) r.start_revision = String(startRevision);
    if (this.opts.prevKv) r.prev_kv = true;
    if (this.opts.progressNotify) r.progress_notify = true;
    if (this.opts.filters !== undefined && this.opts.filters.length > 0)
      r.filters = this.opts.filters;
    return { create_request: r };
  }

  private async *run(): AsyncGenerator<WatchResponse> {
    const signal = this.ctl.signal;
    let next = this.opts.startRevision ?? 0;
    let endpoint = this.transport.endpoint;
    let createdOnce = false;
    const messages = resumable<Json>({
      signal,
      reconnectsMax: watchReconnectsMax,
      open: async (sig) => {
        const r = await this.transport.fetch(
          '/v3/watch',
          {
            method: 'POST',
            body: JSON.stringify(this.request(next)),
            headers: { 'content-type': 'application/json' },
          },
          { stream: true, idempotent: true, signal: sig, timeoutMs: this.dialTimeoutMs },
        );
        endpoint = r.endpoint;
        return jsonLines(r.response.body!);
      },
      // An error answer is final, unless no member answered or it was unavailable.
      final: (e) => e instanceof ClientError && e.status !== 0 && e.status !== 503,
      healthy: (m) => (m.result as Json | undefined)?.created === true,
    });
    try {
      for await (const m of messages) {
        if (m.error !== undefined) throw streamError(m.error, endpoint);
        const r = (m.result ?? {}) as Json;
        const h = header(r.header);
        if (r.created === true) {
          if (next === 0) next = h.revision + 1;
          if (!createdOnce) {
            createdOnce = true;
            this.resolveCreated(h);
          }
        }
        const compactRevision = int(r.compact_revision);
        if (compactRevision > 0) {
          throw new WatchCanceledError(
            'etcdserver: mvcc: required revision has been compacted',
            grpcCodes.OutOfRange,
            endpoint,
            h,
            compactRevision,
          );
        }
        if (r.canceled === true) {
          const reason = String(r.cancel_reason ?? '') || 'watch canceled by the server';
          throw new WatchCanceledError(reason, grpcCodes.Canceled, endpoint, h, 0);
        }
        const events = ((r.events ?? []) as Json[]).map(watchEvent);
        if (events.length > 0) {
          next = events[events.length - 1]!.kv.modRevision + 1;
          yield { header: h, watchId: id(r.watch_id), events };
        } else if (r.created !== true && h.revision + 1 > next) {
          next = h.revision + 1; // a progress notification
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

function watchEvent(e: Json): WatchEvent {
  const ev: WatchEvent = { type: e.type === 'DELETE' ? 'DELETE' : 'PUT', kv: keyValue(e.kv) };
  if (e.prev_kv !== undefined) ev.prevKv = keyValue(e.prev_kv);
  return ev;
}
