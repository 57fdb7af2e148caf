/**
 * Decoders for etcd 3.4's JSON gateway requests (/v3/kv/*, /v3/lease/*), producing the
 * internal request types. They accept what etcd's gateway (grpc-gateway v1 + golang/protobuf
 * jsonpb) accepts and fail with its exact words, in its order:
 *
 * 1. JSON syntax (parseJsonBody, Go's messages); an empty body or `null` is `{}`.
 * 2. Fields in proto field order, each by its proto name (`range_end`) or else its JSON name
 *    (`rangeEnd`); unknown fields are IGNORED (recorded: put-unknown-field); `null` is unset;
 *    int64 as number or string (the string's content is re-read as JSON: "abc" gives
 *    "invalid character 'a' looking for beginning of value"); enums by name (exact case) or
 *    number; bytes as standard base64 only (or an array of byte numbers, as Go allows).
 *    Oneofs (RequestOp, Compare's target value) come after the other fields.
 * 3. grpc's 2 MiB message limit (429), then etcd's checks (empty key, value/lease provided,
 *    too many txn ops, empty txn op, duplicate keys), then the raft proposal limit for writes.
 *
 * Normalisation into the internal types: zero/negative `limit`, `revision` and revision
 * filters are left out (etcd treats them as unset); an empty range_end is left out; enum
 * numbers without a name (sort_order 7) become the default where etcd behaves as the default,
 * and are refused where etcd would misbehave (sort_target, compare target/result).
 */
import { requestLimits } from './limits.js';
import type { Bytes } from '../types.js';
import type {
  Compare,
  CompareResult,
  CompareTarget,
  CompactionRequest,
  DeleteRangeRequest,
  PutRequest,
  RangeRequest,
  RequestOp,
  SortOrder,
  SortTarget,
  TxnRequest,
} from '../mvcc/types.js';
import {
  EtcdError, ErrDuplicateKey, ErrEmptyKey, ErrKeyNotFound, ErrLeaseProvided, ErrTooManyOps,
  ErrValueProvided,
} from '../errors.js';
import { goBase64Decode } from './gobase64.js';
import { GoNumber, goQuote, goScan, parseJsonBody, type JsonValue } from './gojson.js';
import type {
  LeaseGrantRequest,
  LeaseKeepAliveRequest,
  LeaseLeasesRequest,
  LeaseRevokeRequest,
  LeaseTimeToLiveRequest,
} from './lease-types.js';
import {
  checkGrpcSize,
  checkRaftSize,
  compactionRequestBytes,
  deleteRangeRequestBytes,
  putRequestBytes,
  rangeRequestBytes,
  txnRequestBytes,
} from './v3-size.js';
import type { WatchCreateSpec, WatchFilter } from '../watch/types.js';

export { parseJsonBody };

type Obj = { [k: string]: JsonValue };

function kindOf(v: JsonValue): string {
  if (v === null) return 'null';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'number' || v instanceof GoNumber) return 'number';
  if (typeof v === 'string') return 'string';
  return Array.isArray(v) ? 'array' : 'object';
}

class Kind {
  constructor(readonly kind: string) {}
}

/** typeError is Go's UnmarshalTypeError text; `kind` is a value or "number <literal>". */
function typeError(v: JsonValue | Kind, goType: string): EtcdError {
  const kind = v instanceof Kind ? v.kind : kindOf(v);
  const text = `json: cannot unmarshal ${kind} into Go value of type ${goType}`;
  return new EtcdError('INVALID_FIELD', text);
}

/** get reads a field jsonpb-style: the proto name wins if present (even as null). */
function get(o: Obj, orig: string, json: string): JsonValue | undefined {
  const v = Object.hasOwn(o, orig) ? o[orig] : Object.hasOwn(o, json) ? o[json] : undefined;
  return v === null ? undefined : v;
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

function intFromLiteral(raw: string, goType: string): number {
  if (/^-?\d+$/.test(raw)) {
    const big = BigInt(raw);
    const bits = goType === 'int64' ? [INT64_MIN, INT64_MAX] : [-(2n ** 31n), 2n ** 31n - 1n];
    if (big >= bits[0]! && big <= bits[1]!) {
      const n = Number(big);
      if (!Number.isSafeInteger(n)) {
        throw new EtcdError(
          'UNSAFE_INTEGER',
          `myetcd: integer ${raw} is outside ±2^53, which this server cannot represent`,
        );
      }
      return n;
    }
  }
  throw typeError(new Kind(`number ${raw}`), goType);
}

/** int64 reads an int64 field: a number, or a string holding one (jsonpb re-reads it). */
function int64(v: JsonValue | undefined, goType = 'int64'): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'number') {
    // Fast path: parseJsonBody guarantees a plain integer of at most 15 digits here.
    return v === 0 ? 0 : v;
  }
  if (v instanceof GoNumber) return intFromLiteral(v.raw, goType);
  if (typeof v === 'string') {
    // jsonpb strips the quotes and hands the raw content to json.Unmarshal.
    const raw = v.includes('\\') || v.includes('"') ? JSON.stringify(v).slice(1, -1) : v;
    const r = goScan(raw, 0, 'unmarshal');
    if (r.error !== undefined) throw new EtcdError('INVALID_FIELD', r.error);
    const lit = raw.slice(r.start, r.end).trim();
    switch (lit.charCodeAt(0)) {
      case 0x6e: return undefined; // null
      case 0x74: case 0x66: throw typeError(new Kind('bool'), goType);
      case 0x22: throw typeError(new Kind('string'), goType);
      case 0x7b: throw typeError(new Kind('object'), goType);
      case 0x5b: throw typeError(new Kind('array'), goType);
    }
    return intFromLiteral(lit, goType);
  }
  throw typeError(v, goType);
}

function bool(v: JsonValue | undefined): boolean | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'boolean') return v;
  throw typeError(v, 'bool');
}

function bytes(v: JsonValue | undefined): Bytes | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') {
    const r = goBase64Decode(v);
    if ('error' in r) throw new EtcdError('INVALID_BASE64', r.error);
    return r.bytes;
  }
  if (Array.isArray(v)) {
    // Go's encoding/json fills a []byte from an array of numbers 0..255.
    let out = '';
    for (const e of v) {
      if (e === null) {
        out += '\0';
        continue;
      }
      if (typeof e !== 'number' && !(e instanceof GoNumber)) throw typeError(e, 'uint8');
      const raw = typeof e === 'number' ? String(e) : e.raw;
      if (!/^\d+$/.test(raw) || Number(raw) > 255) {
        throw typeError(new Kind(`number ${raw}`), 'uint8');
      }
      out += String.fromCharCode(Number(raw));
    }
    return out;
  }
  throw typeError(v, '[]uint8');
}

function enumValue(
  v: JsonValue | undefined,
  goType: string,
  names: readonly string[],
): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') {
    const i = names.indexOf(v);
    if (i < 0) {
      throw new EtcdError('INVALID_FIELD', `unknown value ${goQuote(v)} for enum ${goType}`);
    }
    return i;
  }
  if (typeof v === 'number' || v instanceof GoNumber) {
    return intFromLiteral(typeof v === 'number' ? String(v) : v.raw, goType);
  }
  throw typeError(v, goType);
}

function message(v: JsonValue | undefined): Obj | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'object' && !Array.isArray(v) && !(v instanceof GoNumber)) return v;
  throw typeError(v, 'map[string]json.RawMessage');
}

function repeated(v: JsonValue | undefined): JsonValue[] {
  if (v === undefined || v === null) return [];
  if (Array.isArray(v)) return v;
  throw typeError(v, '[]json.RawMessage');
}

/** body turns the parsed body (or undefined for an empty one) into the top-level object. */
function body(json: unknown): Obj {
  return message(json as JsonValue | undefined) ?? {};
}

const SORT_ORDERS: readonly SortOrder[] = ['NONE', 'ASCEND', 'DESCEND'];
const SORT_TARGETS: readonly SortTarget[] = ['KEY', 'VERSION', 'CREATE', 'MOD', 'VALUE'];
const COMPARE_RESULTS: readonly CompareResult[] = ['EQUAL', 'GREATER', 'LESS', 'NOT_EQUAL'];
const COMPARE_TARGETS: readonly CompareTarget[] = ['VERSION', 'CREATE', 'MOD', 'VALUE', 'LEASE'];

function knownEnum<T>(n: number | undefined, names: readonly T[], goType: string): T | undefined {
  if (n === undefined) return undefined;
  const name = names[n];
  if (name === undefined) {
    throw new EtcdError('INVALID_FIELD', `unknown value ${n} for enum ${goType}`);
  }
  return name;
}

function positive(n: number | undefined): number | undefined {
  return n !== undefined && n > 0 ? n : undefined;
}

// ---- field-level decoders (no validation) ----

function rangeFields(o: Obj): RangeRequest {
  const r: RangeRequest = { type: 'range', key: bytes(get(o, 'key', 'key')) ?? '' };
  const rangeEnd = bytes(get(o, 'range_end', 'rangeEnd'));
  const limit = positive(int64(get(o, 'limit', 'limit')));
  const revision = positive(int64(get(o, 'revision', 'revision')));
  const orderN = enumValue(get(o, 'sort_order', 'sortOrder'), 'etcdserverpb.RangeRequest_SortOrder',
    SORT_ORDERS);
  const targetN = enumValue(get(o, 'sort_target', 'sortTarget'),
    'etcdserverpb.RangeRequest_SortTarget', SORT_TARGETS);
  const serializable = bool(get(o, 'serializable', 'serializable'));
  const keysOnly = bool(get(o, 'keys_only', 'keysOnly'));
  const countOnly = bool(get(o, 'count_only', 'countOnly'));
  const minMod = positive(int64(get(o, 'min_mod_revision', 'minModRevision')));
  const maxMod = positive(int64(get(o, 'max_mod_revision', 'maxModRevision')));
  const minCreate = positive(int64(get(o, 'min_create_revision', 'minCreateRevision')));
  const maxCreate = positive(int64(get(o, 'max_create_revision', 'maxCreateRevision')));
  if (rangeEnd) r.rangeEnd = rangeEnd;
  if (limit !== undefined) r.limit = limit;
  if (revision !== undefined) r.revision = revision;
  // An unnamed sort order sorts nothing in etcd, exactly like NONE (range-sort-out-of-enum).
  const order = orderN === undefined ? undefined : (SORT_ORDERS[orderN] ?? 'NONE');
  if (order !== undefined && order !== 'NONE') r.sortOrder = order;
  const target = knownEnum(targetN, SORT_TARGETS, 'etcdserverpb.RangeRequest_SortTarget');
  if (target !== undefined && target !== 'KEY') r.sortTarget = target;
  if (serializable) r.serializable = true;
  if (keysOnly) r.keysOnly = true;
  if (countOnly) r.countOnly = true;
  if (minMod !== undefined) r.minModRevision = minMod;
  if (maxMod !== undefined) r.maxModRevision = maxMod;
  if (minCreate !== undefined) r.minCreateRevision = minCreate;
  if (maxCreate !== undefined) r.maxCreateRevision = maxCreate;
  return r;
}

function putFields(o: Obj): PutRequest {
  const key = bytes(get(o, 'key', 'key')) ?? '';
  const value = bytes(get(o, 'value', 'value')) ?? '';
  const lease = int64(get(o, 'lease', 'lease'));
  const prevKv = bool(get(o, 'prev_kv', 'prevKv'));
  const ignoreValue = bool(get(o, 'ignore_value', 'ignoreValue'));
  const ignoreLease = bool(get(o, 'ignore_lease', 'ignoreLease'));
  const r: PutRequest = { type: 'put', key, value };
  if (lease) r.lease = lease;
  if (prevKv) r.prevKv = true;
  if (ignoreValue) r.ignoreValue = true;
  if (ignoreLease) r.ignoreLease = true;
  return r;
}

function deleteFields(o: Obj): DeleteRangeRequest {
  const key = bytes(get(o, 'key', 'key')) ?? '';
  const rangeEnd = bytes(get(o, 'range_end', 'rangeEnd'));
  const prevKv = bool(get(o, 'prev_kv', 'prevKv'));
  const r: DeleteRangeRequest = { type: 'deleteRange', key };
  if (rangeEnd) r.rangeEnd = rangeEnd;
  if (prevKv) r.prevKv = true;
  return r;
}

function compareFields(o: Obj): Compare {
  const resultN = enumValue(get(o, 'result', 'result'), 'etcdserverpb.Compare_CompareResult',
    COMPARE_RESULTS);
  const targetN = enumValue(get(o, 'target', 'target'), 'etcdserverpb.Compare_CompareTarget',
    COMPARE_TARGETS);
  const key = bytes(get(o, 'key', 'key')) ?? '';
  const rangeEnd = bytes(get(o, 'range_end', 'rangeEnd'));
  // The oneof target_union: the last one present wins (jsonpb's order is a Go map's).
  let unionField: CompareTarget | undefined;
  let unionInt = 0;
  let unionValue: Bytes = '';
  const unionInts: [string, string, CompareTarget][] = [
    ['version', 'version', 'VERSION'],
    ['create_revision', 'createRevision', 'CREATE'],
    ['mod_revision', 'modRevision', 'MOD'],
  ];
  for (const [orig, json, t] of unionInts) {
    const n = int64(get(o, orig, json));
    if (n !== undefined) {
      unionField = t;
      unionInt = n;
    }
  }
  const value = bytes(get(o, 'value', 'value'));
  if (value !== undefined) {
    unionField = 'VALUE';
    unionValue = value;
  }
  const lease = int64(get(o, 'lease', 'lease'));
  if (lease !== undefined) {
    unionField = 'LEASE';
    unionInt = lease;
  }
  const target = knownEnum(targetN ?? 0, COMPARE_TARGETS, 'etcdserverpb.Compare_CompareTarget')!;
  const result = knownEnum(resultN ?? 0, COMPARE_RESULTS, 'etcdserverpb.Compare_CompareResult')!;
  const c: Compare = { key, target, result };
  if (rangeEnd) c.rangeEnd = rangeEnd;
  // etcd compares against the target's field only when the union holds that field; any
  // other union member (or none) means the zero value (recorded: txn-compare-wrong-union).
  const matches = unionField === target;
  switch (target) {
    case 'VERSION': c.version = matches ? unionInt : 0; break;
    case 'CREATE': c.createRevision = matches ? unionInt : 0; break;
    case 'MOD': c.modRevision = matches ? unionInt : 0; break;
    case 'LEASE': c.lease = matches ? unionInt : 0; break;
    case 'VALUE': c.value = matches ? unionValue : ''; break;
  }
  return c;
}

/** emptyOps marks RequestOps that named no operation (etcd: "etcdserver: key not found"). */
const emptyOps = new WeakSet<object>();

/** emptyRequestOp is a RequestOp that named no operation, marked for checkTxnRequest (the
 * gRPC gateway's codec builds its txns with it too). */
export function emptyRequestOp(): RequestOp {
  const op: RequestOp = { type: 'range', key: '' };
  emptyOps.add(op);
  return op;
}

function requestOpFields(o: Obj): RequestOp {
  let op: RequestOp | undefined;
  const range = message(get(o, 'request_range', 'requestRange'));
  if (range) op = rangeFields(range);
  const put = message(get(o, 'request_put', 'requestPut'));
  if (put) op = putFields(put);
  const del = message(get(o, 'request_delete_range', 'requestDeleteRange'));
  if (del) op = deleteFields(del);
  const txn = message(get(o, 'request_txn', 'requestTxn'));
  if (txn) op = txnFields(txn);
  return op ?? emptyRequestOp();
}

function txnFields(o: Obj): TxnRequest {
  const compare = repeated(get(o, 'compare', 'compare')).map((c) =>
    compareFields(message(c) ?? {}));
  const success = repeated(get(o, 'success', 'success')).map((u) =>
    requestOpFields(message(u) ?? {}));
  const failure = repeated(get(o, 'failure', 'failure')).map((u) =>
    requestOpFields(message(u) ?? {}));
  return { type: 'txn', compare, success, failure };
}

// ---- etcd's request checks (etcdserver/api/v3rpc/key.go) ----

function checkRange(r: RangeRequest): void {
  if (r.key.length === 0) throw new ErrEmptyKey();
}

function checkPut(r: PutRequest): void {
  if (r.key.length === 0) throw new ErrEmptyKey();
  if (r.ignoreValue && r.value.length !== 0) throw new ErrValueProvided();
  if (r.ignoreLease && r.lease) throw new ErrLeaseProvided();
}

function checkDelete(r: DeleteRangeRequest): void {
  if (r.key.length === 0) throw new ErrEmptyKey();
}

/** checkTxn is etcd's checkTxnRequest: a nested txn's budget is what its parent leaves. */
function checkTxn(r: TxnRequest, opsMax: number): void {
  const opc = Math.max(r.compare.length, r.success.length, r.failure.length);
  if (opc > opsMax) throw new ErrTooManyOps();
  for (const c of r.compare) if (c.key.length === 0) throw new ErrEmptyKey();
  for (const u of r.success) checkOp(u, opsMax - opc);
  for (const u of r.failure) checkOp(u, opsMax - opc);
}

function checkOp(u: RequestOp, opsMax: number): void {
  if (emptyOps.has(u)) throw new ErrKeyNotFound();
  switch (u.type) {
    case 'range': return checkRange(u);
    case 'put': return checkPut(u);
    case 'deleteRange': return checkDelete(u);
    case 'txn': return checkTxn(u, opsMax);
  }
}

interface Interval {
  begin: Bytes;
  /** end undefined: the single key `begin`. */
  end: Bytes | undefined;
}

function hits(dels: Interval[], key: Bytes): boolean {
  for (const d of dels) {
    // etcd's interval tree compares plain strings: a range_end of "\0" ("to the end") is an
    // empty interval there, so such a delete never conflicts with a put. We keep the quirk.
    if (d.end === undefined ? d.begin === key : d.begin <= key && key < d.end) return true;
  }
  return false;
}

/**
 * checkIntervals is etcd's: within one branch no key may be put twice, nor put and deleted;
 * a nested txn's then/else may put the same key (only one of them runs).
 */
function checkIntervals(reqs: RequestOp[]): { puts: Set<Bytes>; dels: Interval[] } {
  const dels: Interval[] = [];
  for (const u of reqs) {
    if (u.type === 'deleteRange') dels.push({ begin: u.key, end: u.rangeEnd || undefined });
  }
  const puts = new Set<Bytes>();
  for (const u of reqs) {
    if (u.type !== 'txn') continue;
    const then = checkIntervals(u.success);
    const otherwise = checkIntervals(u.failure);
    for (const k of then.puts) {
      if (puts.has(k) || hits(dels, k)) throw new ErrDuplicateKey();
      puts.add(k);
    }
    for (const k of otherwise.puts) {
      if ((puts.has(k) && !then.puts.has(k)) || hits(dels, k)) {
        throw new ErrDuplicateKey();
      }
      puts.add(k);
    }
    dels.push(...then.dels, ...otherwise.dels);
  }
  for (const u of reqs) {
    if (u.type !== 'put' || emptyOps.has(u)) continue;
    if (puts.has(u.key) || hits(dels, u.key)) throw new ErrDuplicateKey();
    puts.add(u.key);
  }
  return { puts, dels };
}

/** isTxnReadOnly: only ranges, recursively (etcd serves these without raft). */
export function isTxnReadOnly(r: TxnRequest): boolean {
  const ro = (ops: RequestOp[]): boolean =>
    ops.every((u) => u.type === 'range' || (u.type === 'txn' && isTxnReadOnly(u)));
  return ro(r.success) && ro(r.failure);
}

// ---- public decoders ----

/**
 * decodeRangeRequest decodes a /v3/kv/range body. `json` is parseJsonBody's result (undefined
 * for an empty body). Throws EtcdError with etcd's message and status.
 */
export function decodeRangeRequest(json: unknown): RangeRequest {
  const r = rangeFields(body(json));
  checkGrpcSize(rangeRequestBytes(r));
  checkRange(r);
  return r;
}

/** checkRangeRequest runs etcd's range checks and the gRPC size limit (shared with gRPC). */
export function checkRangeRequest(r: RangeRequest): void {
  checkGrpcSize(rangeRequestBytes(r));
  checkRange(r);
}

/** checkDeleteRangeRequest runs etcd's delete checks and size limits (shared with gRPC). */
export function checkDeleteRangeRequest(r: DeleteRangeRequest): void {
  const size = deleteRangeRequestBytes(r);
  checkGrpcSize(size);
  checkDelete(r);
  checkRaftSize(size);
}

/** checkCompactionRequest runs the size limits on a compaction (shared with gRPC). */
export function checkCompactionRequest(r: CompactionRequest): void {
  const size = compactionRequestBytes(r);
  checkGrpcSize(size);
  checkRaftSize(size);
}

/** decodePutRequest decodes a /v3/kv/put body (see decodeRangeRequest). */
export function decodePutRequest(json: unknown): PutRequest {
  const r = putFields(body(json));
  checkPutRequest(r);
  return r;
}

/** checkPutRequest runs etcd's put checks and size limits (shared with /v1). */
export function checkPutRequest(r: PutRequest): void {
  const size = putRequestBytes(r);
  checkGrpcSize(size);
  checkPut(r);
  checkRaftSize(size);
}

/** decodeDeleteRangeRequest decodes a /v3/kv/deleterange body. */
export function decodeDeleteRangeRequest(json: unknown): DeleteRangeRequest {
  const r = deleteFields(body(json));
  const size = deleteRangeRequestBytes(r);
  checkGrpcSize(size);
  checkDelete(r);
  checkRaftSize(size);
  return r;
}

/** decodeTxnRequest decodes a /v3/kv/txn body, with etcd's txn checks (ops ≤ txnOpsMax per
 * branch, no empty ops or keys, no duplicate writes). */
export function decodeTxnRequest(json: unknown): TxnRequest {
  const r = txnFields(body(json));
  checkTxnRequest(r);
  return r;
}

/**
 * checkTxnRequest runs etcd's txn checks on a TxnRequest built elsewhere (the /v1 txn and
 * batch decoders): op counts, empty keys, duplicate writes, and both size limits.
 */
export function checkTxnRequest(r: TxnRequest): void {
  const size = txnRequestBytes(r);
  checkGrpcSize(size);
  checkTxn(r, requestLimits().txnOpsMax);
  checkIntervals(r.success);
  checkIntervals(r.failure);
  if (!isTxnReadOnly(r)) checkRaftSize(size);
}

/** decodeCompactionRequest decodes /v3/kv/compaction. A missing or non-positive revision
 * is passed as 0; etcd answers "compacted" for it (recorded: err-compaction-zero). */
export function decodeCompactionRequest(json: unknown): CompactionRequest {
  const o = body(json);
  const revision = int64(get(o, 'revision', 'revision')) ?? 0;
  const physical = bool(get(o, 'physical', 'physical'));
  const r: CompactionRequest = { type: 'compaction', revision: revision > 0 ? revision : 0 };
  if (physical) r.physical = true;
  const size = compactionRequestBytes(r);
  checkGrpcSize(size);
  checkRaftSize(size);
  return r;
}

// Lease messages use the proto names "TTL" and "ID" as JSON names too: `ttl`/`id` are
// unknown fields and silently ignored (recorded: lease-grant-lowercase-ignored).

/** decodeLeaseGrantRequest decodes /v3/lease/grant: {TTL, ID}. */
export function decodeLeaseGrantRequest(json: unknown): LeaseGrantRequest {
  const o = body(json);
  const ttlSeconds = int64(get(o, 'TTL', 'TTL')) ?? 0;
  const id = int64(get(o, 'ID', 'ID')) ?? 0;
  return { type: 'leaseGrant', ttlSeconds, id };
}

/** decodeLeaseRevokeRequest decodes /v3/lease/revoke (alias /v3/kv/lease/revoke): {ID}. */
export function decodeLeaseRevokeRequest(json: unknown): LeaseRevokeRequest {
  return { type: 'leaseRevoke', id: int64(get(body(json), 'ID', 'ID')) ?? 0 };
}

/** decodeLeaseKeepAliveRequest decodes one message of /v3/lease/keepalive: {ID}. */
export function decodeLeaseKeepAliveRequest(json: unknown): LeaseKeepAliveRequest {
  return { type: 'leaseKeepAlive', id: int64(get(body(json), 'ID', 'ID')) ?? 0 };
}

/**
 * decodeLeaseKeepAliveStream splits a keepalive body into its messages: etcd's gateway reads
 * concatenated JSON values and answers each (recorded: lease-keepalive-two). An error after
 * the first message ends the stream; one before it is the whole answer (see
 * streamErrorResponse). Returns the requests decoded before any error, and that error.
 */
export function decodeLeaseKeepAliveStream(text: string): {
  requests: LeaseKeepAliveRequest[];
  error?: EtcdError;
} {
  const requests: LeaseKeepAliveRequest[] = [];
  let at = 0;
  for (;;) {
    const r = goScan(text, at, 'decoder');
    if (r.error !== undefined) {
      return { requests, error: new EtcdError('MALFORMED_JSON', r.error) };
    }
    if (r.end < 0) return { requests };
    try {
      requests.push(decodeLeaseKeepAliveRequest(parseJsonBody(text.slice(r.start, r.end))));
    } catch (e) {
      return { requests, error: e instanceof EtcdError ? e : new EtcdError('INTERNAL') };
    }
    at = r.end;
  }
}

/** decodeLeaseTimeToLiveRequest decodes /v3/lease/timetolive (alias under /v3/kv/lease):
 * {ID, keys}. */
export function decodeLeaseTimeToLiveRequest(json: unknown): LeaseTimeToLiveRequest {
  const o = body(json);
  const id = int64(get(o, 'ID', 'ID')) ?? 0;
  const keys = bool(get(o, 'keys', 'keys')) ?? false;
  return { type: 'leaseTimeToLive', id, keys };
}

/** decodeLeaseLeasesRequest decodes /v3/lease/leases (alias /v3/kv/lease/leases): {}. */
export function decodeLeaseLeasesRequest(json: unknown): LeaseLeasesRequest {
  body(json);
  return { type: 'leaseLeases' };
}

/** decodeStatusRequest decodes /v3/maintenance/status: {} (fields ignored). */
export function decodeStatusRequest(json: unknown): Record<string, never> {
  body(json);
  return {};
}

// ---- /v3/watch: the request body is a stream of WatchRequest objects ----

/** WatchRequest is one decoded message of a /v3/watch request stream: the oneof
 * request_union of etcd's WatchRequest. `none` is a message that names no request, which
 * etcd's watch server skips. */
export type WatchRequest =
  | { type: 'create'; spec: WatchCreateSpec }
  | { type: 'cancel'; watchId: number }
  | { type: 'progress' }
  | { type: 'none' };

const FILTER_TYPES: readonly WatchFilter[] = ['NOPUT', 'NODELETE'];
const FILTER_ENUM = 'etcdserverpb.WatchCreateRequest_FilterType';

/**
 * watchCreateFields reads etcd's WatchCreateRequest with the same field rules as every
 * other /v3 request (jsonpb: proto or JSON name, int64 as number or string, Go's errors).
 * Filters are names or numbers; a number without a name is dropped, as etcd's
 * FiltersFromRequest ignores it. `fragment` is read and ignored: responses are never split.
 */
function watchCreateFields(o: Obj): WatchCreateSpec {
  const key = bytes(get(o, 'key', 'key')) ?? '';
  const rangeEnd = bytes(get(o, 'range_end', 'rangeEnd'));
  const start = int64(get(o, 'start_revision', 'startRevision'));
  const progressNotify = bool(get(o, 'progress_notify', 'progressNotify'));
  const filterValues = repeated(get(o, 'filters', 'filters'));
  const prevKv = bool(get(o, 'prev_kv', 'prevKv'));
  const watchId = int64(get(o, 'watch_id', 'watchId'));
  bool(get(o, 'fragment', 'fragment'));
  const spec: WatchCreateSpec = { key };
  if (rangeEnd) spec.rangeEnd = rangeEnd;
  if (start) spec.startRevision = start;
  if (watchId) spec.watchId = watchId;
  if (prevKv) spec.prevKv = true;
  if (progressNotify) spec.progressNotify = true;
  const filters: WatchFilter[] = [];
  for (const f of filterValues) {
    const n = enumValue(f, FILTER_ENUM, FILTER_TYPES);
    const name = n === undefined ? undefined : FILTER_TYPES[n];
    if (name !== undefined && !filters.includes(name)) filters.push(name);
  }
  if (filters.length > 0) spec.filters = filters;
  return spec;
}

/**
 * decodeWatchRequest decodes one message of a /v3/watch body (parseJsonBody's result):
 * {"create_request":…}, {"cancel_request":{"watch_id"}} or {"progress_request":{}}. Of
 * several oneof members the last in proto order wins, as for a txn's RequestOp.
 */
export function decodeWatchRequest(json: unknown): WatchRequest {
  const o = body(json);
  const create = message(get(o, 'create_request', 'createRequest'));
  const cancel = message(get(o, 'cancel_request', 'cancelRequest'));
  const progress = message(get(o, 'progress_request', 'progressRequest'));
  if (progress) return { type: 'progress' };
  if (cancel) return { type: 'cancel', watchId: int64(get(cancel, 'watch_id', 'watchId')) ?? 0 };
  if (create) return { type: 'create', spec: watchCreateFields(create) };
  return { type: 'none' };
}

/** The field readers, for the other etcd message decoders (src/api/auth.ts). */
export {
  body as jsonBody, get as jsonField, bytes as jsonBytes, enumValue as jsonEnum,
  message as jsonMessage, typeError as jsonTypeError, bool as jsonBool,
};
