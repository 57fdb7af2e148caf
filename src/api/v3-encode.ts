/**
 * Encoders producing the exact JSON text etcd 3.4's gateway writes (jsonpb with OrigName,
 * EmitDefaults off): proto field names and order, zero values omitted (`count`, `more`,
 * `kvs`, `value`, `lease`, `succeeded`… absent when zero/empty), 64-bit integers as decimal
 * strings, bytes as standard padded base64. Built by hand, not JSON.stringify: one string
 * concatenation per field and no intermediate objects on the gateway's hot path.
 *
 * Txn responses: etcd gives every nested response its own header holding only `revision`
 * (a nested txn's header is `{}`): a range sees the txn's start revision, or start+1 once the
 * txn has written; a put always start+1; a delete start+1 if it or an earlier op wrote.
 * We derive those from the response itself (see encodeTxnResponse), so the store need not
 * carry them. Recorded: txn-mixed, txn-put-then-range, txn-read-only-nested.
 */
import { base64FromBytes } from '../bytes.js';
import { AsciiWriter } from './ascii-writer.js';
import type {
  Change,
  CompactionResponse,
  DeleteRangeResponse,
  KeyValue,
  PutResponse,
  RangeResponse,
  ResponseHeader,
  ResponseOp,
  TxnResponse,
} from '../mvcc/types.js';
import { goJsonString } from './errors.js';
import type {
  LeaseGrantResponse,
  LeaseKeepAliveResponse,
  LeaseLeasesResponse,
  LeaseRevokeResponse,
  LeaseTimeToLiveResponse,
  StatusResponse,
} from './lease-types.js';
import type { WatchResponse } from '../watch/types.js';
import type { Revision } from '../types.js';

/** encodeHeader writes etcd's ResponseHeader; zero fields are omitted as jsonpb does. */
export function encodeHeader(h: ResponseHeader): string {
  let s = '';
  if (h.clusterId) s += `"cluster_id":"${h.clusterId}"`;
  if (h.memberId) s += `${s ? ',' : ''}"member_id":"${h.memberId}"`;
  if (h.revision) s += `${s ? ',' : ''}"revision":"${h.revision}"`;
  if (h.raftTerm) s += `${s ? ',' : ''}"raft_term":"${h.raftTerm}"`;
  return `{${s}}`;
}

/** kvText writes the KeyValue texts of the gateway's answers (AsciiWriter). */
const kvText = new AsciiWriter();

/** encodeKeyValue writes mvccpb.KeyValue: key, create_revision, mod_revision, version,
 * value, lease — each omitted when zero or empty. */
export function encodeKeyValue(kv: KeyValue): string {
  kvText.start();
  writeKeyValue(kvText, kv);
  return kvText.text();
}

/** writeKeyValue is encodeKeyValue into a writer. */
function writeKeyValue(w: AsciiWriter, kv: KeyValue): void {
  w.ascii('{');
  let sep = false;
  if (kv.key.length) sep = quotedField(w, sep, '"key":"', kv.key);
  if (kv.createRevision) sep = quotedField(w, sep, '"create_revision":"', kv.createRevision);
  if (kv.modRevision) sep = quotedField(w, sep, '"mod_revision":"', kv.modRevision);
  if (kv.version) sep = quotedField(w, sep, '"version":"', kv.version);
  if (kv.value.length) sep = quotedField(w, sep, '"value":"', kv.value);
  if (kv.lease) quotedField(w, sep, '"lease":"', kv.lease);
  w.ascii('}');
}

/** quotedField writes `"name":"…"`, after a comma when `sep`; `head` is the field's
 * `"name":"`. A number is written in decimal (jsonpb writes 64-bit integers as strings),
 * bytes in base64. It returns true: a comma is due before the next field. */
function quotedField(w: AsciiWriter, sep: boolean, head: string, v: number | string): true {
  if (sep) w.ascii(',');
  w.ascii(head);
  if (typeof v === 'number') w.int(v);
  else w.base64(v);
  w.ascii('"');
  return true;
}

/** kvList writes a list of KeyValues as one JSON array, in one writer. */
function kvList(kvs: readonly KeyValue[]): string {
  kvText.start();
  kvText.ascii('[');
  for (let i = 0; i < kvs.length; i++) {
    if (i > 0) kvText.ascii(',');
    writeKeyValue(kvText, kvs[i]!);
  }
  kvText.ascii(']');
  return kvText.text();
}

function rangeBody(r: RangeResponse): string {
  let s = '';
  if (r.kvs.length) s += `,"kvs":${kvList(r.kvs)}`;
  if (r.more) s += ',"more":true';
  if (r.count) s += `,"count":"${r.count}"`;
  return s;
}

function putBody(r: PutResponse): string {
  return r.prevKv ? `,"prev_kv":${encodeKeyValue(r.prevKv)}` : '';
}

function deleteBody(r: DeleteRangeResponse): string {
  let s = '';
  if (r.deleted) s += `,"deleted":"${r.deleted}"`;
  if (r.prevKvs && r.prevKvs.length) s += `,"prev_kvs":${kvList(r.prevKvs)}`;
  return s;
}

/** encodeRangeResponse writes /v3/kv/range's answer. */
export function encodeRangeResponse(header: ResponseHeader, resp: RangeResponse): string {
  return `{"header":${encodeHeader(header)}${rangeBody(resp)}}`;
}

/** encodePutResponse writes /v3/kv/put's answer. */
export function encodePutResponse(header: ResponseHeader, resp: PutResponse): string {
  return `{"header":${encodeHeader(header)}${putBody(resp)}}`;
}

/** encodeDeleteRangeResponse writes /v3/kv/deleterange's answer. */
export function encodeDeleteRangeResponse(
  header: ResponseHeader,
  resp: DeleteRangeResponse,
): string {
  return `{"header":${encodeHeader(header)}${deleteBody(resp)}}`;
}

/** encodeCompactionResponse writes /v3/kv/compaction's answer (a header only). */
export function encodeCompactionResponse(
  header: ResponseHeader,
  _resp?: CompactionResponse,
): string {
  return `{"header":${encodeHeader(header)}}`;
}

function writes(ops: readonly ResponseOp[]): boolean {
  for (const op of ops) {
    if (op.type === 'put' || (op.type === 'deleteRange' && op.deleted > 0)) return true;
    if (op.type === 'txn' && writes(op.responses)) return true;
  }
  return false;
}

interface TxnRevs {
  /** begin is the store revision when the txn started. */
  begin: number;
  /** wrote becomes true at the txn's first change. */
  wrote: boolean;
}

function txnBody(r: TxnResponse, st: TxnRevs): string {
  let s = r.succeeded ? ',"succeeded":true' : '';
  if (r.responses.length === 0) return s;
  s += ',"responses":[';
  for (let i = 0; i < r.responses.length; i++) {
    const op = r.responses[i]!;
    if (i) s += ',';
    switch (op.type) {
      case 'range': {
        const rev = st.wrote ? st.begin + 1 : st.begin;
        s += `{"response_range":{"header":{"revision":"${rev}"}${rangeBody(op)}}}`;
        break;
      }
      case 'put':
        st.wrote = true;
        s += `{"response_put":{"header":{"revision":"${st.begin + 1}"}${putBody(op)}}}`;
        break;
      case 'deleteRange': {
        if (op.deleted > 0) st.wrote = true;
        const rev = st.wrote ? st.begin + 1 : st.begin;
        s += `{"response_delete_range":{"header":{"revision":"${rev}"}${deleteBody(op)}}}`;
        break;
      }
      case 'txn':
        s += `{"response_txn":{"header":{}${txnBody(op, st)}}}`;
        break;
    }
  }
  return s + ']';
}

/**
 * encodeTxnResponse writes /v3/kv/txn's answer. `header.revision` is the store revision after
 * the txn (as for every write); the nested headers are derived from it (see file comment).
 */
export function encodeTxnResponse(header: ResponseHeader, resp: TxnResponse): string {
  const begin = writes(resp.responses) ? header.revision - 1 : header.revision;
  return `{"header":${encodeHeader(header)}${txnBody(resp, { begin, wrote: false })}}`;
}

/** encodeStatusResponse writes /v3/maintenance/status's answer (camelCase proto names). */
export function encodeStatusResponse(header: ResponseHeader, r: StatusResponse): string {
  let s = `{"header":${encodeHeader(header)}`;
  if (r.version) s += `,"version":${goJsonString(r.version)}`;
  if (r.dbSizeBytes) s += `,"dbSize":"${r.dbSizeBytes}"`;
  if (r.leader) s += `,"leader":"${r.leader}"`;
  if (r.raftIndex) s += `,"raftIndex":"${r.raftIndex}"`;
  if (r.raftTerm) s += `,"raftTerm":"${r.raftTerm}"`;
  if (r.raftAppliedIndex) s += `,"raftAppliedIndex":"${r.raftAppliedIndex}"`;
  if (r.errors && r.errors.length) s += `,"errors":[${r.errors.map(goJsonString).join(',')}]`;
  if (r.dbSizeInUseBytes) s += `,"dbSizeInUse":"${r.dbSizeInUseBytes}"`;
  if (r.isLearner) s += ',"isLearner":true';
  return s + '}';
}

/** encodeLeaseGrantResponse writes /v3/lease/grant's answer: header, ID, TTL, error. */
export function encodeLeaseGrantResponse(header: ResponseHeader, r: LeaseGrantResponse): string {
  let s = `{"header":${encodeHeader(header)}`;
  if (r.id) s += `,"ID":"${r.id}"`;
  if (r.ttlSeconds) s += `,"TTL":"${r.ttlSeconds}"`;
  if (r.error) s += `,"error":${goJsonString(r.error)}`;
  return s + '}';
}

/** encodeLeaseRevokeResponse writes /v3/lease/revoke's answer (a header only). */
export function encodeLeaseRevokeResponse(
  header: ResponseHeader,
  _r?: LeaseRevokeResponse,
): string {
  return `{"header":${encodeHeader(header)}}`;
}

/**
 * encodeLeaseKeepAliveResponse writes ONE message of /v3/lease/keepalive's streamed answer:
 * `{"result":{header, ID, TTL}}` and a newline (etcd streams one line per request message).
 * A lease that does not exist answers TTL 0, omitted (recorded: lease-keepalive-missing).
 */
export function encodeLeaseKeepAliveResponse(
  header: ResponseHeader,
  r: LeaseKeepAliveResponse,
): string {
  let s = `{"result":{"header":${encodeHeader(header)}`;
  if (r.id) s += `,"ID":"${r.id}"`;
  if (r.ttlSeconds) s += `,"TTL":"${r.ttlSeconds}"`;
  return s + '}}\n';
}

/** encodeLeaseTimeToLiveResponse writes /v3/lease/timetolive's answer: header, ID, TTL,
 * grantedTTL, keys (base64). A missing lease is 200 with TTL -1, not an error. */
export function encodeLeaseTimeToLiveResponse(
  header: ResponseHeader,
  r: LeaseTimeToLiveResponse,
): string {
  let s = `{"header":${encodeHeader(header)}`;
  if (r.id) s += `,"ID":"${r.id}"`;
  if (r.ttlSeconds) s += `,"TTL":"${r.ttlSeconds}"`;
  if (r.grantedTtlSeconds) s += `,"grantedTTL":"${r.grantedTtlSeconds}"`;
  if (r.keys && r.keys.length) {
    s += ',"keys":[';
    for (let i = 0; i < r.keys.length; i++) {
      s += `${i ? ',' : ''}"${base64FromBytes(r.keys[i]!)}"`;
    }
    s += ']';
  }
  return s + '}';
}

/** encodeLeaseLeasesResponse writes /v3/lease/leases's answer: `leases: [{"ID":"…"}]`. */
export function encodeLeaseLeasesResponse(header: ResponseHeader, r: LeaseLeasesResponse): string {
  let s = `{"header":${encodeHeader(header)}`;
  if (r.ids.length) {
    s += ',"leases":[';
    for (let i = 0; i < r.ids.length; i++) {
      const id = r.ids[i]!;
      s += (i ? ',' : '') + (id ? `{"ID":"${id}"}` : '{}');
    }
    s += ']';
  }
  return s + '}';
}

/** encodeHealth writes GET /health's body (etcd: Content-Type text/plain, 200 or 503). */
export function encodeHealth(healthy: boolean): string {
  return healthy ? '{"health":"true"}' : '{"health":"false"}';
}

/** encodeVersion writes GET /version's body (application/json). */
export function encodeVersion(serverVersion: string, clusterVersion: string): string {
  const server = goJsonString(serverVersion);
  return `{"etcdserver":${server},"etcdcluster":${goJsonString(clusterVersion)}}`;
}

// ---- /v3/watch: one `{"result":WatchResponse}` line per response ----

/** lastHeader caches the newest header's text: a fan-out writes one header to every stream. */
let lastHeader: { h: ResponseHeader; text: string } | undefined;

function sharedHeader(h: ResponseHeader): string {
  const c = lastHeader;
  if (c !== undefined && c.h.revision === h.revision && c.h.raftTerm === h.raftTerm &&
    c.h.memberId === h.memberId && c.h.clusterId === h.clusterId) return c.text;
  const text = encodeHeader(h);
  lastHeader = { h, text };
  return text;
}

/** encodedEvents caches each event's text by identity: the watch hub fans one Change object
 * out to every stream that watches its key (unpackWatchEvents), so it is encoded once. */
const encodedEvents = new WeakMap<Change, string>();

/** encodeEvent writes mvccpb.Event: type (DELETE only; PUT is the zero value), kv, prev_kv. */
export function encodeEvent(c: Change): string {
  let text = encodedEvents.get(c);
  if (text === undefined) {
    text = c.kind === 'delete' ? '{"type":"DELETE",' : '{';
    text += `"kv":${encodeKeyValue(c.kv)}`;
    if (c.prevKv !== undefined) text += `,"prev_kv":${encodeKeyValue(c.prevKv)}`;
    text += '}';
    encodedEvents.set(c, text);
  }
  return text;
}

/**
 * encodeWatchResponse writes ONE message of /v3/watch's streamed answer, as etcd 3.4's
 * gateway does: `{"result":WatchResponse}` and a newline, fields in proto order (header,
 * watch_id, created, canceled, compact_revision, cancel_reason, events), zero values omitted.
 * A progress answer for the whole stream has watch_id "-1" (etcd's InvalidWatchID). A watch
 * cancelled because its start revision was compacted carries no header revision: etcd's mvcc
 * sends that response with revision 0 (only compact_revision), and the gateway omits the zero.
 */
export function encodeWatchResponse(header: ResponseHeader, r: WatchResponse): string {
  const h = r.canceled === true && r.compactRevision
    ? { ...header, revision: 0 as Revision } : header;
  let s = `{"result":{"header":${sharedHeader(h)}`;
  if (r.watchId !== 0) s += `,"watch_id":"${r.watchId}"`;
  if (r.created === true) s += ',"created":true';
  if (r.canceled === true) s += ',"canceled":true';
  if (r.compactRevision) s += `,"compact_revision":"${r.compactRevision}"`;
  if (r.cancelReason !== undefined) s += `,"cancel_reason":${goJsonString(r.cancelReason)}`;
  if (r.events.length > 0) {
    s += ',"events":[';
    for (let i = 0; i < r.events.length; i++) s += (i ? ',' : '') + encodeEvent(r.events[i]!);
    s += ']';
  }
  return s + '}}\n';
}
