/**
 * The seed's REST API under /v1 (docs/api.md): keys and values as UTF-8 text, one envelope
 *   success: {"ok":true,"revision":N,"data":…}
 *   failure: {"ok":false,"error":{"code":"KEY_NOT_FOUND","message":"…"}}
 * with the same stable error codes and HTTP statuses as /v3 (src/api/errors.ts), except that
 * a missing key on GET is 404 KEY_NOT_FOUND. Decoders produce the same internal requests as
 * /v3 and run the same etcd checks, so both APIs behave alike on the store.
 */
import { GoNumber } from './gojson.js';
import { bytesFromUtf8, prefixEnd, utf8FromBytes } from '../bytes.js';
import { v1ListLimitDefault, v1ListLimitMax } from '../constants.js';
import { requestLimits } from './limits.js';
import type { Bytes } from '../types.js';
import type {
  Change,
  Compare,
  CompareResult,
  CompareTarget,
  DeleteRangeRequest,
  DeleteRangeResponse,
  KeyValue,
  PutRequest,
  PutResponse,
  RangeRequest,
  RangeResponse,
  RequestOp,
  ResponseOp,
  ResponseHeader,
  TxnRequest,
  TxnResponse,
} from '../mvcc/types.js';
import {
  answerOf, EtcdError, ErrEmptyKey, ErrKeyNotFound, ErrTooManyOps, type ErrorCode,
} from '../errors.js';
import { checkPutRequest, checkTxnRequest } from './v3-decode.js';
import type { WatchCreateSpec, WatchResponse } from '../watch/types.js';


/** V1Query is a route's query string: URLSearchParams or a plain record. */
export type V1Query = URLSearchParams | Readonly<Record<string, string | undefined>>;

function q(query: V1Query | undefined, name: string): string | undefined {
  if (query === undefined) return undefined;
  if (query instanceof URLSearchParams) return query.get(name) ?? undefined;
  return query[name];
}

function bad(message: string): EtcdError {
  return new EtcdError('BAD_REQUEST', message);
}

function intParam(query: V1Query | undefined, name: string, min: number): number | undefined {
  const s = q(query, name);
  if (s === undefined || s === '') return undefined;
  if (!/^\d+$/.test(s)) throw bad(`query parameter ${name} must be a non-negative integer`);
  const n = Number(s);
  if (!Number.isSafeInteger(n) || n < min) {
    throw bad(`query parameter ${name} must be an integer ≥ ${min}`);
  }
  return n;
}

function boolParam(query: V1Query | undefined, name: string): boolean {
  const s = q(query, name);
  if (s === undefined || s === '' || s === 'false' || s === '0') return false;
  if (s === 'true' || s === '1') return true;
  throw bad(`query parameter ${name} must be true or false`);
}

/**
 * decodeV1Key turns the path after `/v1/key/` into the key: percent-decoded UTF-8, slashes
 * kept (`/v1/key/a/b%20c` is the key "a/b c"). Empty is EMPTY_KEY.
 */
export function decodeV1Key(rawPathSuffix: string): Bytes {
  let text: string;
  try {
    text = decodeURIComponent(rawPathSuffix);
  } catch {
    throw bad('key is not valid percent-encoded UTF-8');
  }
  if (text.length === 0) throw new ErrEmptyKey();
  return bytesFromUtf8(text);
}

type Obj = Record<string, unknown>;

function obj(json: unknown, what: string): Obj {
  if (json === undefined || json === null) return {};
  if (typeof json !== 'object' || Array.isArray(json)) throw bad(`${what} must be a JSON object`);
  return json as Obj;
}

function str(o: Obj, name: string, required: boolean): string | undefined {
  const v = o[name];
  if (v === undefined || v === null) {
    if (required) throw bad(`field ${name} is required`);
    return undefined;
  }
  if (typeof v !== 'string') throw bad(`field ${name} must be a string`);
  return v;
}

function int(o: Obj, name: string): number | undefined {
  const v = o[name];
  if (v === undefined || v === null) return undefined;
  // Integers beyond what a double holds exactly arrive as GoNumber (their raw text).
  const text = typeof v === 'string' ? v : v instanceof GoNumber ? v.raw : undefined;
  const n = text !== undefined && /^-?\d+$/.test(text) ? Number(text) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n)) {
    throw bad(`field ${name} must be a safe integer`);
  }
  return n;
}

function flag(o: Obj, ...names: string[]): boolean {
  for (const name of names) {
    const v = o[name];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'boolean') throw bad(`field ${name} must be true or false`);
    return v;
  }
  return false;
}

/**
 * decodeV1PutRequest: PUT /v1/key/<key> with body {"value": text, "lease"?: id,
 * "prevKV"?: bool}. A `key` in the body (as in the seed's example) must equal the path's.
 */
export function decodeV1PutRequest(key: Bytes, json: unknown): PutRequest {
  const o = obj(json, 'body');
  const bodyKey = str(o, 'key', false);
  if (bodyKey !== undefined && bytesFromUtf8(bodyKey) !== key) {
    throw bad('field key differs from the key in the path');
  }
  const value = str(o, 'value', true)!;
  const r: PutRequest = { type: 'put', key, value: bytesFromUtf8(value) };
  const lease = int(o, 'lease');
  if (lease) r.lease = lease;
  if (flag(o, 'prevKV', 'prevKv')) r.prevKv = true;
  checkPutRequest(r);
  return r;
}

/** decodeV1GetRequest: GET /v1/key/<key>[?revision=N]. */
export function decodeV1GetRequest(key: Bytes, query?: V1Query): RangeRequest {
  const r: RangeRequest = { type: 'range', key };
  const revision = intParam(query, 'revision', 1);
  if (revision !== undefined) r.revision = revision;
  return r;
}

/** decodeV1DeleteRequest: DELETE /v1/key/<key>[?prevKV=true][&prefix=true]. */
export function decodeV1DeleteRequest(key: Bytes, query?: V1Query): DeleteRangeRequest {
  const r: DeleteRangeRequest = { type: 'deleteRange', key };
  if (boolParam(query, 'prefix')) r.rangeEnd = prefixEnd(key);
  if (boolParam(query, 'prevKV')) r.prevKv = true;
  return r;
}

/**
 * decodeV1ListRequest: GET /v1/keys — `prefix=p`, or `from=a&to=b` (to omitted: to the end),
 * or neither (every key); `limit` (default 100, max 10000); `cursor` (the `cursor` of the
 * previous page: where this page starts); `revision` (pin pages to one snapshot: pass the
 * first page's revision); `keysOnly=true`.
 */
export function decodeV1ListRequest(query?: V1Query): RangeRequest {
  const prefix = q(query, 'prefix');
  const from = q(query, 'from');
  const to = q(query, 'to');
  if (prefix !== undefined && (from !== undefined || to !== undefined)) {
    throw bad('use either prefix or from/to, not both');
  }
  let key: Bytes;
  let rangeEnd: Bytes;
  if (prefix !== undefined && prefix !== '') {
    key = bytesFromUtf8(prefix);
    rangeEnd = prefixEnd(key);
  } else {
    key = from ? bytesFromUtf8(from) : '\0';
    rangeEnd = to ? bytesFromUtf8(to) : '\0';
  }
  const cursor = q(query, 'cursor');
  if (cursor !== undefined && cursor !== '') {
    const c = decodeCursor(cursor);
    if (c < key) throw bad('cursor is before the start of the range');
    key = c;
  }
  const limit = intParam(query, 'limit', 1) ?? v1ListLimitDefault;
  if (limit > v1ListLimitMax) throw bad(`limit must be at most ${v1ListLimitMax}`);
  const r: RangeRequest = { type: 'range', key, rangeEnd, limit };
  const revision = intParam(query, 'revision', 1);
  if (revision !== undefined) r.revision = revision;
  if (boolParam(query, 'keysOnly')) r.keysOnly = true;
  return r;
}

/** The cursor is base64url of the next key's bytes: opaque, and safe in a query string. */
function encodeCursor(nextKey: Bytes): string {
  return Buffer.from(nextKey, 'latin1').toString('base64url');
}
function decodeCursor(cursor: string): Bytes {
  if (!/^[A-Za-z0-9_-]+$/.test(cursor)) throw bad('cursor is not one this server gave');
  return Buffer.from(cursor, 'base64url').toString('latin1');
}

const V1_TARGETS: Record<string, CompareTarget> = {
  value: 'VALUE', version: 'VERSION', createRevision: 'CREATE', modRevision: 'MOD',
  lease: 'LEASE',
};
const V1_OPS: Record<string, CompareResult> = {
  '==': 'EQUAL', '=': 'EQUAL', '!=': 'NOT_EQUAL', '>': 'GREATER', '<': 'LESS',
};

function v1Compare(json: unknown): Compare {
  const o = obj(json, 'compare');
  const key = bytesFromUtf8(str(o, 'key', true)!);
  const targetName = str(o, 'target', true)!;
  const target = V1_TARGETS[targetName];
  if (target === undefined) {
    throw bad(`compare target must be one of ${Object.keys(V1_TARGETS).join(', ')}`);
  }
  const result = V1_OPS[str(o, 'op', false) ?? '=='];
  if (result === undefined) throw bad('compare op must be one of ==, !=, >, <');
  const c: Compare = { key, target, result };
  if (flag(o, 'prefix')) c.rangeEnd = prefixEnd(key);
  if (target === 'VALUE') {
    c.value = bytesFromUtf8(str(o, 'value', true)!);
  } else {
    const n = int(o, 'value');
    if (n === undefined) throw bad(`compare on ${targetName} needs an integer value`);
    if (target === 'VERSION') c.version = n;
    else if (target === 'CREATE') c.createRevision = n;
    else if (target === 'MOD') c.modRevision = n;
    else c.lease = n;
  }
  return c;
}

function v1Op(json: unknown, allowGet: boolean): RequestOp {
  const o = obj(json, 'operation');
  const op = str(o, 'op', true)!;
  const key = bytesFromUtf8(str(o, 'key', true)!);
  if (key.length === 0) throw new ErrEmptyKey();
  switch (op) {
    case 'put': {
      const r: PutRequest = { type: 'put', key, value: bytesFromUtf8(str(o, 'value', true)!) };
      const lease = int(o, 'lease');
      if (lease) r.lease = lease;
      if (flag(o, 'prevKV', 'prevKv')) r.prevKv = true;
      return r;
    }
    case 'delete': {
      const r: DeleteRangeRequest = { type: 'deleteRange', key };
      if (flag(o, 'prefix')) r.rangeEnd = prefixEnd(key);
      if (flag(o, 'prevKV', 'prevKv')) r.prevKv = true;
      return r;
    }
    case 'get':
      if (allowGet) {
        const r: RangeRequest = { type: 'range', key };
        if (flag(o, 'prefix')) r.rangeEnd = prefixEnd(key);
        return r;
      }
  }
  throw bad(`op must be one of ${allowGet ? 'get, ' : ''}put, delete`);
}

function list(o: Obj, name: string): unknown[] {
  const v = o[name];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw bad(`field ${name} must be an array`);
  return v;
}

/**
 * decodeV1TxnRequest: POST /v1/txn with
 * {"compare":[{"key","target":"value|version|createRevision|modRevision|lease","op":"==|!=|>|<",
 *   "value"}], "success":[op…], "failure":[op…]}, op = {"op":"get|put|delete","key",…}.
 */
export function decodeV1TxnRequest(json: unknown): TxnRequest {
  const o = obj(json, 'body');
  const r: TxnRequest = {
    type: 'txn',
    compare: list(o, 'compare').map(v1Compare),
    success: list(o, 'success').map((u) => v1Op(u, true)),
    failure: list(o, 'failure').map((u) => v1Op(u, true)),
  };
  checkTxnRequest(r);
  return r;
}

/**
 * decodeV1BatchRequest: POST /v1/batch with {"ops":[{"op":"put","key","value",…} |
 * {"op":"delete","key",…}]}: applied atomically as one txn, at one revision. At most
 * txnOpsMax (128) operations; no key written twice.
 */
export function decodeV1BatchRequest(json: unknown): TxnRequest {
  const o = obj(json, 'body');
  const ops = list(o, 'ops');
  if (ops.length === 0) throw bad('field ops must hold at least one operation');
  if (ops.length > requestLimits().txnOpsMax) throw new ErrTooManyOps();
  const r: TxnRequest = {
    type: 'txn',
    compare: [],
    success: ops.map((u) => v1Op(u, false)),
    failure: [],
  };
  checkTxnRequest(r);
  return r;
}

// ---- encoders ----

/** encodeV1Kv writes one key-value in /v1's friendly form (text, numbers). */
export function encodeV1Kv(kv: KeyValue, keysOnly = false): string {
  let s = `{"key":${JSON.stringify(utf8FromBytes(kv.key))}`;
  if (!keysOnly) s += `,"value":${JSON.stringify(utf8FromBytes(kv.value))}`;
  s += `,"createRevision":${kv.createRevision},"modRevision":${kv.modRevision}`;
  s += `,"version":${kv.version},"lease":${kv.lease}}`;
  return s;
}

function kvs(list: readonly KeyValue[], keysOnly = false): string {
  let s = '[';
  for (let i = 0; i < list.length; i++) s += (i ? ',' : '') + encodeV1Kv(list[i]!, keysOnly);
  return s + ']';
}

/** encodeV1Ok wraps already-encoded data in the success envelope. */
export function encodeV1Ok(revision: number, dataJson: string): string {
  return `{"ok":true,"revision":${revision},"data":${dataJson}}`;
}

/** encodeV1PutResponse: data {"prevKv"?: kv}. */
export function encodeV1PutResponse(header: ResponseHeader, resp: PutResponse): string {
  return encodeV1Ok(header.revision, resp.prevKv ? `{"prevKv":${encodeV1Kv(resp.prevKv)}}` : '{}');
}

/** encodeV1GetResponse: data is the kv; throws KEY_NOT_FOUND (404) when there is none —
 * call it inside the same try as the request so v1ErrorResponse answers it. */
export function encodeV1GetResponse(header: ResponseHeader, resp: RangeResponse): string {
  const kv = resp.kvs[0];
  if (kv === undefined) throw new ErrKeyNotFound();
  return encodeV1Ok(header.revision, encodeV1Kv(kv));
}

/** encodeV1DeleteResponse: data {"deleted": n, "prevKvs"?: [kv]}. */
export function encodeV1DeleteResponse(header: ResponseHeader, resp: DeleteRangeResponse): string {
  const prev = resp.prevKvs && resp.prevKvs.length ? `,"prevKvs":${kvs(resp.prevKvs)}` : '';
  return encodeV1Ok(header.revision, `{"deleted":${resp.deleted}${prev}}`);
}

/**
 * encodeV1ListResponse: data {"kvs":[…],"count":n,"more":bool,"cursor"?: string}. `count` is
 * every key in the range from this page's start; `cursor` (present when more) starts the
 * next page. `req` is the decoded request (for keysOnly and to compute the cursor).
 */
export function encodeV1ListResponse(
  header: ResponseHeader,
  req: RangeRequest,
  resp: RangeResponse,
): string {
  let data = `{"kvs":${kvs(resp.kvs, req.keysOnly)},"count":${resp.count},"more":${resp.more}`;
  const last = resp.kvs[resp.kvs.length - 1];
  if (resp.more && last !== undefined) data += `,"cursor":"${encodeCursor(last.key + '\0')}"`;
  return encodeV1Ok(header.revision, data + '}');
}

function v1OpResponse(op: ResponseOp): string {
  switch (op.type) {
    case 'range':
      return `{"op":"get","kvs":${kvs(op.kvs)},"count":${op.count},"more":${op.more}}`;
    case 'put':
      return op.prevKv ? `{"op":"put","prevKv":${encodeV1Kv(op.prevKv)}}` : '{"op":"put"}';
    case 'deleteRange': {
      const prev = op.prevKvs && op.prevKvs.length ? `,"prevKvs":${kvs(op.prevKvs)}` : '';
      return `{"op":"delete","deleted":${op.deleted}${prev}}`;
    }
    case 'txn':
      return `{"op":"txn",${txnData(op).slice(1)}`;
  }
}

function txnData(resp: TxnResponse): string {
  let s = `{"succeeded":${resp.succeeded},"responses":[`;
  for (let i = 0; i < resp.responses.length; i++) {
    s += (i ? ',' : '') + v1OpResponse(resp.responses[i]!);
  }
  return s + ']}';
}

/** encodeV1TxnResponse: data {"succeeded": bool, "responses":[{"op":"get|put|delete",…}]}. */
export function encodeV1TxnResponse(header: ResponseHeader, resp: TxnResponse): string {
  return encodeV1Ok(header.revision, txnData(resp));
}

/** encodeV1BatchResponse: data {"responses":[…]} (as txn, without `succeeded`). */
export function encodeV1BatchResponse(header: ResponseHeader, resp: TxnResponse): string {
  let s = '{"responses":[';
  for (let i = 0; i < resp.responses.length; i++) {
    s += (i ? ',' : '') + v1OpResponse(resp.responses[i]!);
  }
  return encodeV1Ok(header.revision, s + ']}');
}

// ---- leases ----

/** decodeV1LeaseGrantRequest: POST /v1/leases with body {"ttl": s, "id"?: n} (absent: 0, the
 * server picks the id; a ttl below the minimum is raised, as etcd does). */
export function decodeV1LeaseGrantRequest(json: unknown): { id: number; ttlSeconds: number } {
  const o = obj(json, 'body');
  return { id: int(o, 'id') ?? 0, ttlSeconds: int(o, 'ttl') ?? 0 };
}

/** decodeV1LeaseId reads the `<id>` of /v1/leases/<id>: a decimal integer. */
export function decodeV1LeaseId(text: string): number {
  const n = Number(text);
  if (!/^-?\d+$/.test(text) || !Number.isSafeInteger(n)) throw bad('lease id must be an integer');
  return n;
}

/** encodeV1Lease writes a lease answer's data: {"id","ttl"} plus, for a lookup,
 * "grantedTtl" and "keys" (UTF-8). */
export function encodeV1Lease(revision: number, l: { id: number; ttlSeconds: number;
  grantedTtlSeconds?: number; keys?: readonly Bytes[] }): string {
  let s = `{"id":${l.id},"ttl":${l.ttlSeconds}`;
  if (l.grantedTtlSeconds !== undefined) s += `,"grantedTtl":${l.grantedTtlSeconds}`;
  if (l.keys !== undefined) {
    s += `,"keys":[${l.keys.map((k) => JSON.stringify(utf8FromBytes(k))).join(',')}]`;
  }
  return encodeV1Ok(revision, s + '}');
}

/** encodeV1LeaseList writes GET /v1/leases's data: {"leases":[{"id"}]}. */
export function encodeV1LeaseList(revision: number, ids: readonly number[]): string {
  return encodeV1Ok(revision, `{"leases":[${ids.map((id) => `{"id":${id}}`).join(',')}]}`);
}

// ---- watch: Server-Sent Events ----

/**
 * decodeV1WatchRequest: POST /v1/watch with body {"key", "prefix"?: bool, "prevKV"?: bool,
 * "startRevision"?: n}. `lastEventId` is the request's Last-Event-ID header: an EventSource
 * that reconnects sends the `id:` of the last event it saw, and the watch resumes after it.
 */
export function decodeV1WatchRequest(json: unknown, lastEventId?: string): WatchCreateSpec {
  const o = obj(json, 'body');
  const key = o['key'] === undefined || o['key'] === '' ? undefined : str(o, 'key', false);
  const start = int(o, 'startRevision');
  if (start !== undefined && start < 0) throw bad('field startRevision must not be negative');
  return v1WatchSpec(key, flag(o, 'prefix'), flag(o, 'prevKV', 'prevKv'), start, lastEventId);
}

/**
 * decodeV1WatchQuery: GET /v1/watch?key=k[&prefix=true][&prevKV=true][&startRevision=n], the
 * form a browser's EventSource can open (it only sends GET).
 */
export function decodeV1WatchQuery(query: V1Query, lastEventId?: string): WatchCreateSpec {
  const key = q(query, 'key');
  const start = intParam(query, 'startRevision', 0);
  return v1WatchSpec(key || undefined, boolParam(query, 'prefix'), boolParam(query, 'prevKV'),
    start, lastEventId);
}

function v1WatchSpec(key: string | undefined, prefix: boolean, prevKv: boolean,
  start: number | undefined, lastEventId: string | undefined): WatchCreateSpec {
  if (key === undefined) throw new EtcdError('EMPTY_KEY');
  const spec: WatchCreateSpec = { key: bytesFromUtf8(key) };
  if (prefix) spec.rangeEnd = prefixEnd(spec.key);
  if (prevKv) spec.prevKv = true;
  if (start) spec.startRevision = start;
  if (lastEventId !== undefined && /^\d+$/.test(lastEventId)) {
    const last = Number(lastEventId);
    if (Number.isSafeInteger(last + 1)) spec.startRevision = last + 1;
  }
  return spec;
}

function v1WatchEvent(c: Change): string {
  const kv = encodeV1Kv(c.kv);
  let s = `{"type":"${c.kind === 'put' ? 'PUT' : 'DELETE'}",${kv.slice(1, -1)}`;
  if (c.prevKv !== undefined) s += `,"prevKv":${encodeV1Kv(c.prevKv)}`;
  return s + '}';
}

/**
 * encodeV1WatchEvent writes one Server-Sent Event for a watch response: `data:` the JSON
 * {"revision", "watchId"?, "created"?, "canceled"?, "compactRevision"?, "cancelReason"?,
 * "events": [{"type", key, value, revisions…, "prevKv"?}]}, preceded by `id: <revision>` when
 * it carries events (so Last-Event-ID resumes after it), and the blank line that ends it.
 */
export function encodeV1WatchEvent(header: ResponseHeader, r: WatchResponse): string {
  let s = `{"revision":${header.revision}`;
  if (r.watchId !== 0) s += `,"watchId":${r.watchId}`;
  if (r.created === true) s += ',"created":true';
  if (r.canceled === true) s += ',"canceled":true';
  if (r.compactRevision !== undefined) s += `,"compactRevision":${r.compactRevision}`;
  if (r.cancelReason !== undefined) s += `,"cancelReason":${JSON.stringify(r.cancelReason)}`;
  s += ',"events":[';
  for (let i = 0; i < r.events.length; i++) s += (i ? ',' : '') + v1WatchEvent(r.events[i]!);
  const id = r.events.length > 0 ? `id: ${header.revision}\n` : '';
  return `${id}data: ${s}]}\n\n`;
}

/** V1ErrorResponse is what the server writes for a failed /v1 request. */
export interface V1ErrorResponse {
  status: number;
  body: string;
  code: ErrorCode;
}

/**
 * v1ErrorResponse maps any thrown value to the /v1 failure envelope, with the shared code
 * table; statuses as /v3 except KEY_NOT_FOUND (404 here: the resource is missing).
 */
export function v1ErrorResponse(err: unknown): V1ErrorResponse {
  const a = answerOf(err);
  const status = a.code === 'KEY_NOT_FOUND' ? 404 : a.httpStatus;
  return {
    status,
    body: `{"ok":false,"error":{"code":"${a.code}","message":${JSON.stringify(a.text)}}}`,
    code: a.code,
  };
}
