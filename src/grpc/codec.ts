/**
 * codec: etcd 3.4's gRPC messages (etcdserverpb, mvccpb) as @grpc/proto-loader hands them
 * over, mapped to and from the internal request and response types the JSON gateway uses
 * (src/mvcc/types.ts, src/api/lease-types.ts, src/watch/types.ts). Pure: no I/O.
 *
 * The loader's options (src/grpc/proto.ts) fix the shapes: proto field names (`range_end`),
 * 64-bit integers as decimal strings (`longs: String`: a lease id or revision beyond 2^53 is
 * refused with UNSAFE_INTEGER instead of being rounded), enums as numbers, bytes as Buffers,
 * absent fields undefined (`defaults: false`), a oneof's member named in the oneof's field
 * (`request: 'request_put'`). Answers are plain objects the loader serializes; zero values
 * are left out as protobuf leaves them out on the wire.
 *
 * Requests are normalised exactly as the JSON decoders normalise theirs (src/api/v3-decode.ts:
 * zero or negative limits and revisions are unset, an empty range_end is a single key, an
 * unnamed sort order sorts nothing) and then pass the SAME etcd checks (checkRangeRequest,
 * checkPutRequest, checkTxnRequest, …), so the two gateways cannot disagree on what a request
 * means or on the error it gets.
 */
import { emptyRequestOp } from '../api/v3-decode.js';
import { bufferFromBytes, bytesFromBuffer } from '../bytes.js';
import { EtcdError } from '../errors.js';
import type {
  Compare, CompareResult, CompareTarget, CompactionRequest, DeleteRangeRequest, KeyValue,
  PutRequest, RangeRequest, RangeResponse, RequestOp, ResponseHeader, ResponseOp, SortOrder,
  SortTarget, TxnRequest, TxnResponse, WriteResponse,
} from '../mvcc/types.js';
import type { Bytes } from '../types.js';
import type { WatchCreateSpec, WatchFilter, WatchResponse } from '../watch/types.js';
import type { Member } from '../cluster/membership.js';
import type { Change } from '../mvcc/types.js';

/** Int64 is a 64-bit integer as the loader gives it (a decimal string), or a plain number. */
export type Int64 = string | number | undefined | null;

/** Pb is a decoded protobuf message: fields by proto name, absent when not sent. */
export type Pb = { [field: string]: unknown };

/** int64 reads a 64-bit integer field; 0 when absent. Beyond ±2^53 MyEtcd cannot hold it. */
export function int64(v: unknown): number {
  if (v === undefined || v === null || v === '' || v === 0) return 0;
  const n = typeof v === 'number' ? v : Number(v as string);
  if (!Number.isSafeInteger(n)) {
    throw new EtcdError('UNSAFE_INTEGER',
      `myetcd: integer ${String(v)} is outside ±2^53, which this server cannot represent`);
  }
  return n;
}

/** bytes reads a bytes field as the internal binary string; '' when absent. */
export function bytes(v: unknown): Bytes {
  if (v === undefined || v === null) return '';
  return bytesFromBuffer(v as Uint8Array);
}

function bool(v: unknown): boolean {
  return v === true;
}

function positive(n: number): number | undefined {
  return n > 0 ? n : undefined;
}

const SORT_ORDERS: readonly SortOrder[] = ['NONE', 'ASCEND', 'DESCEND'];
const SORT_TARGETS: readonly SortTarget[] = ['KEY', 'VERSION', 'CREATE', 'MOD', 'VALUE'];
const COMPARE_RESULTS: readonly CompareResult[] = ['EQUAL', 'GREATER', 'LESS', 'NOT_EQUAL'];
const COMPARE_TARGETS: readonly CompareTarget[] = ['VERSION', 'CREATE', 'MOD', 'VALUE', 'LEASE'];
const FILTER_TYPES: readonly WatchFilter[] = ['NOPUT', 'NODELETE'];

function knownEnum<T>(v: unknown, names: readonly T[], goType: string): T {
  const n = typeof v === 'number' ? v : 0;
  const name = names[n];
  if (name === undefined) {
    throw new EtcdError('INVALID_FIELD', `unknown value ${n} for enum ${goType}`);
  }
  return name;
}

// ---- requests ----

/** rangeRequest maps etcdserverpb.RangeRequest (unchecked: see checkRangeRequest). */
export function rangeRequest(m: Pb): RangeRequest {
  const r: RangeRequest = { type: 'range', key: bytes(m['key']) };
  const rangeEnd = bytes(m['range_end']);
  if (rangeEnd !== '') r.rangeEnd = rangeEnd;
  const limit = positive(int64(m['limit']));
  if (limit !== undefined) r.limit = limit;
  const revision = positive(int64(m['revision']));
  if (revision !== undefined) r.revision = revision;
  // An unnamed sort order sorts nothing in etcd, exactly like NONE.
  const order = SORT_ORDERS[typeof m['sort_order'] === 'number' ? m['sort_order'] : 0] ?? 'NONE';
  if (order !== 'NONE') r.sortOrder = order;
  const target = knownEnum(m['sort_target'], SORT_TARGETS, 'etcdserverpb.RangeRequest_SortTarget');
  if (target !== 'KEY') r.sortTarget = target;
  if (bool(m['serializable'])) r.serializable = true;
  if (bool(m['keys_only'])) r.keysOnly = true;
  if (bool(m['count_only'])) r.countOnly = true;
  const minMod = positive(int64(m['min_mod_revision']));
  if (minMod !== undefined) r.minModRevision = minMod;
  const maxMod = positive(int64(m['max_mod_revision']));
  if (maxMod !== undefined) r.maxModRevision = maxMod;
  const minCreate = positive(int64(m['min_create_revision']));
  if (minCreate !== undefined) r.minCreateRevision = minCreate;
  const maxCreate = positive(int64(m['max_create_revision']));
  if (maxCreate !== undefined) r.maxCreateRevision = maxCreate;
  return r;
}

/** putRequest maps etcdserverpb.PutRequest (unchecked: see checkPutRequest). */
export function putRequest(m: Pb): PutRequest {
  const r: PutRequest = { type: 'put', key: bytes(m['key']), value: bytes(m['value']) };
  const lease = int64(m['lease']);
  if (lease !== 0) r.lease = lease;
  if (bool(m['prev_kv'])) r.prevKv = true;
  if (bool(m['ignore_value'])) r.ignoreValue = true;
  if (bool(m['ignore_lease'])) r.ignoreLease = true;
  return r;
}

/** deleteRangeRequest maps etcdserverpb.DeleteRangeRequest. */
export function deleteRangeRequest(m: Pb): DeleteRangeRequest {
  const r: DeleteRangeRequest = { type: 'deleteRange', key: bytes(m['key']) };
  const rangeEnd = bytes(m['range_end']);
  if (rangeEnd !== '') r.rangeEnd = rangeEnd;
  if (bool(m['prev_kv'])) r.prevKv = true;
  return r;
}

function compare(m: Pb): Compare {
  const target = knownEnum(m['target'], COMPARE_TARGETS, 'etcdserverpb.Compare_CompareTarget');
  const result = knownEnum(m['result'], COMPARE_RESULTS, 'etcdserverpb.Compare_CompareResult');
  const c: Compare = { key: bytes(m['key']), target, result };
  const rangeEnd = bytes(m['range_end']);
  if (rangeEnd !== '') c.rangeEnd = rangeEnd;
  // etcd compares against the target's field only when the oneof holds that field; another
  // member (or none) means the zero value.
  const union = m['target_union'];
  switch (target) {
    case 'VERSION': c.version = union === 'version' ? int64(m['version']) : 0; break;
    case 'CREATE':
      c.createRevision = union === 'create_revision' ? int64(m['create_revision']) : 0;
      break;
    case 'MOD': c.modRevision = union === 'mod_revision' ? int64(m['mod_revision']) : 0; break;
    case 'LEASE': c.lease = union === 'lease' ? int64(m['lease']) : 0; break;
    case 'VALUE': c.value = union === 'value' ? bytes(m['value']) : ''; break;
  }
  return c;
}

function requestOp(m: Pb): RequestOp {
  switch (m['request']) {
    case 'request_range': return rangeRequest(m['request_range'] as Pb);
    case 'request_put': return putRequest(m['request_put'] as Pb);
    case 'request_delete_range': return deleteRangeRequest(m['request_delete_range'] as Pb);
    case 'request_txn': return txnRequest(m['request_txn'] as Pb);
    // A RequestOp naming no operation: checkTxnRequest refuses it with etcd's words.
    default: return emptyRequestOp();
  }
}

const list = (v: unknown): Pb[] => (Array.isArray(v) ? v as Pb[] : []);

/** txnRequest maps etcdserverpb.TxnRequest, nested txns included (unchecked). */
export function txnRequest(m: Pb): TxnRequest {
  return {
    type: 'txn',
    compare: list(m['compare']).map(compare),
    success: list(m['success']).map(requestOp),
    failure: list(m['failure']).map(requestOp),
  };
}

/** compactionRequest maps etcdserverpb.CompactionRequest (a non-positive revision is 0, which
 * etcd answers "compacted"). */
export function compactionRequest(m: Pb): CompactionRequest {
  const revision = int64(m['revision']);
  const r: CompactionRequest = { type: 'compaction', revision: revision > 0 ? revision : 0 };
  if (bool(m['physical'])) r.physical = true;
  return r;
}

/** WatchRequest is one message of a Watch stream, as the JSON gateway's decodeWatchRequest
 * gives it. */
export type WatchRequest =
  | { type: 'create'; spec: WatchCreateSpec; fragment: boolean }
  | { type: 'cancel'; watchId: number }
  | { type: 'progress' }
  | { type: 'none' };

/** watchRequest maps etcdserverpb.WatchRequest's oneof request_union. */
export function watchRequest(m: Pb): WatchRequest {
  switch (m['request_union']) {
    case 'create_request': {
      const c = m['create_request'] as Pb;
      const spec: WatchCreateSpec = { key: bytes(c['key']) };
      const rangeEnd = bytes(c['range_end']);
      if (rangeEnd !== '') spec.rangeEnd = rangeEnd;
      const start = int64(c['start_revision']);
      if (start !== 0) spec.startRevision = start;
      const watchId = int64(c['watch_id']);
      if (watchId !== 0) spec.watchId = watchId;
      if (bool(c['prev_kv'])) spec.prevKv = true;
      if (bool(c['progress_notify'])) spec.progressNotify = true;
      const filters: WatchFilter[] = [];
      for (const f of Array.isArray(c['filters']) ? c['filters'] as unknown[] : []) {
        // A number without a name is dropped, as etcd's FiltersFromRequest ignores it.
        const name = typeof f === 'number' ? FILTER_TYPES[f] : undefined;
        if (name !== undefined && !filters.includes(name)) filters.push(name);
      }
      if (filters.length > 0) spec.filters = filters;
      return { type: 'create', spec, fragment: bool(c['fragment']) };
    }
    case 'cancel_request':
      return { type: 'cancel', watchId: int64((m['cancel_request'] as Pb)['watch_id']) };
    case 'progress_request':
      return { type: 'progress' };
    default:
      return { type: 'none' };
  }
}

// ---- responses ----

/** header writes etcdserverpb.ResponseHeader (zero fields left out). */
export function header(h: ResponseHeader): Pb {
  const o: Pb = {};
  if (h.clusterId) o['cluster_id'] = h.clusterId;
  if (h.memberId) o['member_id'] = h.memberId;
  if (h.revision) o['revision'] = h.revision;
  if (h.raftTerm) o['raft_term'] = h.raftTerm;
  return o;
}

/** keyValue writes mvccpb.KeyValue. */
export function keyValue(kv: KeyValue): Pb {
  const o: Pb = { key: bufferFromBytes(kv.key) };
  if (kv.createRevision) o['create_revision'] = kv.createRevision;
  if (kv.modRevision) o['mod_revision'] = kv.modRevision;
  if (kv.version) o['version'] = kv.version;
  if (kv.value.length) o['value'] = bufferFromBytes(kv.value);
  if (kv.lease) o['lease'] = kv.lease;
  return o;
}

function rangeBody(o: Pb, r: RangeResponse): Pb {
  if (r.kvs.length) o['kvs'] = r.kvs.map(keyValue);
  if (r.more) o['more'] = true;
  if (r.count) o['count'] = r.count;
  return o;
}

/** rangeResponse writes etcdserverpb.RangeResponse. */
export function rangeResponse(h: ResponseHeader, r: RangeResponse): Pb {
  return rangeBody({ header: header(h) }, r);
}

function writeBody(o: Pb, r: WriteResponse | ResponseOp, st: TxnRevs): Pb {
  switch (r.type) {
    case 'range': return rangeBody(o, r);
    case 'put':
      if (r.prevKv) o['prev_kv'] = keyValue(r.prevKv);
      return o;
    case 'deleteRange':
      if (r.deleted) o['deleted'] = r.deleted;
      if (r.prevKvs && r.prevKvs.length) o['prev_kvs'] = r.prevKvs.map(keyValue);
      return o;
    case 'txn': return txnBody(o, r, st);
    case 'compaction': return o;
  }
}

/** writeResponse writes the answer to Put, DeleteRange, Txn or Compact. */
export function writeResponse(h: ResponseHeader, r: WriteResponse): Pb {
  const begin = r.type === 'txn' && writes(r.responses) ? h.revision - 1 : h.revision;
  return writeBody({ header: header(h) }, r, { begin, wrote: false });
}

interface TxnRevs {
  /** begin is the store revision when the txn started. */
  begin: number;
  /** wrote becomes true at the txn's first change. */
  wrote: boolean;
}

function writes(ops: readonly ResponseOp[]): boolean {
  for (const op of ops) {
    if (op.type === 'put' || (op.type === 'deleteRange' && op.deleted > 0)) return true;
    if (op.type === 'txn' && writes(op.responses)) return true;
  }
  return false;
}

/**
 * txnBody writes a txn's responses. As etcd does (and the JSON gateway's encodeTxnResponse
 * says in its comment), each nested response has a header holding only the revision it saw:
 * a range the txn's start revision, or start+1 once the txn has written; a put start+1; a
 * delete start+1 if it or an earlier op wrote; a nested txn no header revision.
 */
function txnBody(o: Pb, r: TxnResponse, st: TxnRevs): Pb {
  if (r.succeeded) o['succeeded'] = true;
  if (r.responses.length === 0) return o;
  o['responses'] = r.responses.map((op): Pb => {
    switch (op.type) {
      case 'range': {
        const rev = st.wrote ? st.begin + 1 : st.begin;
        return { response_range: rangeBody({ header: { revision: rev } }, op) };
      }
      case 'put':
        st.wrote = true;
        return { response_put: writeBody({ header: { revision: st.begin + 1 } }, op, st) };
      case 'deleteRange': {
        if (op.deleted > 0) st.wrote = true;
        const rev = st.wrote ? st.begin + 1 : st.begin;
        return { response_delete_range: writeBody({ header: { revision: rev } }, op, st) };
      }
      case 'txn':
        return { response_txn: txnBody({ header: {} }, op, st) };
    }
  });
  return o;
}

/** event writes mvccpb.Event (PUT is the zero value). */
export function event(c: Change): Pb {
  const o: Pb = { kv: keyValue(c.kv) };
  if (c.kind === 'delete') o['type'] = 1;
  if (c.prevKv !== undefined) o['prev_kv'] = keyValue(c.prevKv);
  return o;
}

/** watchResponse writes etcdserverpb.WatchResponse. A watch cancelled because its start
 * revision was compacted has no header revision (etcd's mvcc sends revision 0). */
export function watchResponse(h: ResponseHeader, r: WatchResponse): Pb {
  const hh = r.canceled === true && r.compactRevision ? { ...h, revision: 0 } : h;
  const o: Pb = { header: header(hh as ResponseHeader) };
  if (r.watchId !== 0) o['watch_id'] = r.watchId;
  if (r.created === true) o['created'] = true;
  if (r.canceled === true) o['canceled'] = true;
  if (r.compactRevision) o['compact_revision'] = r.compactRevision;
  if (r.cancelReason !== undefined) o['cancel_reason'] = r.cancelReason;
  if (r.events.length > 0) o['events'] = r.events.map(event);
  return o;
}

/** member writes etcdserverpb.Member; clientURLs are the URLs gRPC clients dial. */
export function member(m: Member, clientURLs: readonly string[] = m.clientURLs): Pb {
  const o: Pb = { ID: m.id };
  if (m.name !== '') o['name'] = m.name;
  if (m.peerURLs.length) o['peerURLs'] = m.peerURLs;
  if (clientURLs.length) o['clientURLs'] = clientURLs;
  if (m.isLearner) o['isLearner'] = true;
  return o;
}

/** encodedSize approximates a response's protobuf size for the fragment rule (keys and values
 * dominate; 32 bytes per key-value for its framing and integers). */
export function eventsSize(events: readonly Change[]): number {
  let n = 0;
  for (const e of events) {
    n += 64 + e.kv.key.length + e.kv.value.length;
    if (e.prevKv !== undefined) n += 32 + e.prevKv.key.length + e.prevKv.value.length;
  }
  return n;
}
