/**
 * wire: protobuf's wire format written by hand for the messages that can be large or many — a
 * mvccpb.KeyValue, an etcdserverpb.RangeResponse of any number of them, a WatchResponse of
 * any number of events — straight into one buffer, with no object per field. The loader's
 * generic path (src/grpc/codec.ts then protobufjs) builds three objects and two buffers per
 * key-value first: a range of a million keys spent seconds collecting them. Pure.
 *
 * The bytes are protobufjs's, field for field (ascending field numbers; zero and empty fields
 * left out; a message field present even when empty), which test/grpc-wire.test.ts checks
 * against the loader's own serializer. Numbers are written only when they are non-negative
 * safe integers; for any other the sizing functions answer -1 and callers take the generic
 * path.
 */
import type {
  Change, KeyValue, KeyValueSpan, RangeResponse, ResponseHeader,
} from '../mvcc/types.js';
import type { WatchResponse } from '../watch/types.js';

/** varintBytes is the length of n (a non-negative safe integer) as a varint. */
export function varintBytes(n: number): number {
  let b = 1;
  for (let v = n; v >= 0x80; v = Math.floor(v / 0x80)) b++;
  return b;
}

/** putVarint writes n (a non-negative safe integer) as a varint at `at`; returns the end. */
export function putVarint(n: number, buf: Uint8Array, at: number): number {
  let v = n;
  while (v >= 0x80) {
    buf[at++] = (v % 0x80) | 0x80;
    v = Math.floor(v / 0x80);
  }
  buf[at++] = v;
  return at;
}

const safe = (n: number): boolean => Number.isSafeInteger(n) && n >= 0;

/** intFieldBytes / bytesFieldBytes: a varint / length-delimited field (fields 1-15: a
 * one-byte tag), 0 when the field is left out. */
const intFieldBytes = (n: number): number => (n === 0 ? 0 : 1 + varintBytes(n));
const bytesFieldBytes = (length: number): number =>
  (length === 0 ? 0 : 1 + varintBytes(length) + length);

function putInt(field: number, n: number, buf: Uint8Array, at: number): number {
  if (n === 0) return at;
  buf[at] = field << 3;
  return putVarint(n, buf, at + 1);
}

/** putString writes a bytes field holding a binary string (one byte per char). */
function putString(field: number, s: string, buf: Buffer, at: number): number {
  if (s.length === 0) return at;
  buf[at] = (field << 3) | 2;
  const start = putVarint(s.length, buf, at + 1);
  return start + buf.write(s, start, 'latin1');
}

/** keyValueBytes is the length of mvccpb.KeyValue for kv; -1 when a number is not a
 * non-negative safe integer. */
export function keyValueBytes(kv: KeyValue): number {
  if (!safe(kv.createRevision) || !safe(kv.modRevision) || !safe(kv.version) ||
    !safe(kv.lease)) return -1;
  return bytesFieldBytes(kv.key.length) + intFieldBytes(kv.createRevision) +
    intFieldBytes(kv.modRevision) + intFieldBytes(kv.version) +
    bytesFieldBytes(kv.value.length) + intFieldBytes(kv.lease);
}

/** putKeyValue writes mvccpb.KeyValue at `at` (keyValueBytes(kv) ≥ 0); returns the end. */
export function putKeyValue(kv: KeyValue, buf: Buffer, at: number): number {
  let end = putString(1, kv.key, buf, at);
  end = putInt(2, kv.createRevision, buf, end);
  end = putInt(3, kv.modRevision, buf, end);
  end = putInt(4, kv.version, buf, end);
  end = putString(5, kv.value, buf, end);
  return putInt(6, kv.lease, buf, end);
}

/** keyValueSpanBytes is keyValueBytes of a key-value held as a span of a store's columns. */
export function keyValueSpanBytes(s: KeyValueSpan): number {
  if (!safe(s.createRevision) || !safe(s.modRevision) || !safe(s.version) ||
    !safe(s.lease)) return -1;
  return bytesFieldBytes(s.key.length) + intFieldBytes(s.createRevision) +
    intFieldBytes(s.modRevision) + intFieldBytes(s.version) + bytesFieldBytes(s.valueLen) +
    intFieldBytes(s.lease);
}

/** putKeyValueSpan writes what putKeyValue writes, from a span: the value's bytes copied from
 * where they lie (keyValueSpanBytes must have said the numbers fit). */
export function putKeyValueSpan(s: KeyValueSpan, buf: Buffer, at: number): number {
  let end = putString(1, s.key, buf, at);
  end = putInt(2, s.createRevision, buf, end);
  end = putInt(3, s.modRevision, buf, end);
  end = putInt(4, s.version, buf, end);
  if (s.valueLen > 0) {
    buf[end] = (5 << 3) | 2;
    end = putVarint(s.valueLen, buf, end + 1);
    buf.set(s.value.subarray(s.valueAt, s.valueAt + s.valueLen), end);
    end += s.valueLen;
  }
  return putInt(6, s.lease, buf, end);
}

/** headerBytes is the length of etcdserverpb.ResponseHeader; -1 as keyValueBytes. */
function headerBytes(h: ResponseHeader): number {
  if (!safe(h.clusterId) || !safe(h.memberId) || !safe(h.revision) || !safe(h.raftTerm)) {
    return -1;
  }
  return intFieldBytes(h.clusterId) + intFieldBytes(h.memberId) + intFieldBytes(h.revision) +
    intFieldBytes(h.raftTerm);
}

/** putHeader starts a response with its header (field 1, hb bytes long); returns the end. */
function putHeader(h: ResponseHeader, hb: number, buf: Buffer): number {
  buf[0] = (1 << 3) | 2;
  let at = putVarint(hb, buf, 1);
  at = putInt(1, h.clusterId, buf, at);
  at = putInt(2, h.memberId, buf, at);
  at = putInt(3, h.revision, buf, at);
  return putInt(4, h.raftTerm, buf, at);
}

/** repeated sizes the items of a repeated message field: each item's length (sizeOf, -1 when
 * the generic path must take it) and the bytes of the whole field; undefined for -1. */
function repeated<T>(items: readonly T[], sizeOf: (x: T) => number):
  { sizes: number[]; bytes: number } | undefined {
  const sizes = new Array<number>(items.length);
  let bytes = 0;
  for (let i = 0; i < items.length; i++) {
    const n = sizeOf(items[i]!);
    if (n < 0) return undefined;
    sizes[i] = n;
    bytes += 1 + varintBytes(n) + n;
  }
  return { sizes, bytes };
}

/**
 * rangeResponseBytes is etcdserverpb.RangeResponse {header, kvs, more, count} as the bytes
 * the loader would send for codec.ts's rangeResponse(h, r); undefined when a number needs the
 * generic path.
 */
export function rangeResponseBytes(h: ResponseHeader, r: RangeResponse): Buffer | undefined {
  const hb = headerBytes(h);
  const kvs = repeated(r.kvs, keyValueBytes);
  if (hb < 0 || kvs === undefined || !safe(r.count)) return undefined;
  const total = 1 + varintBytes(hb) + hb + kvs.bytes + (r.more ? 2 : 0) +
    intFieldBytes(r.count);
  const buf = Buffer.allocUnsafe(total);
  let at = putHeader(h, hb, buf);
  for (let i = 0; i < r.kvs.length; i++) {
    buf[at] = (2 << 3) | 2;
    at = putKeyValue(r.kvs[i]!, buf, putVarint(kvs.sizes[i]!, buf, at + 1));
  }
  if (r.more) at = putInt(3, 1, buf, at);
  at = putInt(4, r.count, buf, at);
  if (at !== total) throw new Error(`rangeResponseBytes: wrote ${at} of ${total} bytes`);
  return buf;
}

/** putRangeEntry writes a span as one item of RangeResponse's kvs (field 2: tag, length,
 * mvccpb.KeyValue) at `at`, growing nothing: `buf` must have keyValueSpanBytes + 11 bytes
 * free. Returns the end; the numbers must fit (keyValueSpanBytes ≥ 0). */
export function putRangeEntry(s: KeyValueSpan, n: number, buf: Buffer, at: number): number {
  buf[at] = (2 << 3) | 2;
  return putKeyValueSpan(s, buf, putVarint(n, buf, at + 1));
}

/** rangeEntriesResponse is rangeResponseBytes for kvs already written as items of the kvs
 * field (putRangeEntry), back to back in `entries`; undefined as rangeResponseBytes. */
export function rangeEntriesResponse(h: ResponseHeader, entries: readonly Uint8Array[],
  more: boolean, count: number): Buffer | undefined {
  const hb = headerBytes(h);
  if (hb < 0 || !safe(count)) return undefined;
  let kvBytes = 0;
  for (const e of entries) kvBytes += e.length;
  const total = 1 + varintBytes(hb) + hb + kvBytes + (more ? 2 : 0) + intFieldBytes(count);
  const buf = Buffer.allocUnsafe(total);
  let at = putHeader(h, hb, buf);
  for (const e of entries) {
    buf.set(e, at);
    at += e.length;
  }
  if (more) at = putInt(3, 1, buf, at);
  at = putInt(4, count, buf, at);
  if (at !== total) throw new Error(`rangeEntriesResponse: wrote ${at} of ${total} bytes`);
  return buf;
}

/** eventBytes is the length of mvccpb.Event for a change; -1 as keyValueBytes. */
function eventBytes(c: Change): number {
  const kv = keyValueBytes(c.kv);
  const prev = c.prevKv === undefined ? 0 : keyValueBytes(c.prevKv);
  if (kv < 0 || prev < 0) return -1;
  return (c.kind === 'delete' ? 2 : 0) + 1 + varintBytes(kv) + kv +
    (c.prevKv === undefined ? 0 : 1 + varintBytes(prev) + prev);
}

function putEvent(c: Change, buf: Buffer, at: number): number {
  let end = c.kind === 'delete' ? putInt(1, 1, buf, at) : at;
  buf[end] = (2 << 3) | 2;
  end = putKeyValue(c.kv, buf, putVarint(keyValueBytes(c.kv), buf, end + 1));
  if (c.prevKv === undefined) return end;
  buf[end] = (3 << 3) | 2;
  return putKeyValue(c.prevKv, buf, putVarint(keyValueBytes(c.prevKv), buf, end + 1));
}

/**
 * watchResponseBytes is etcdserverpb.WatchResponse {header, watch_id, created, canceled,
 * compact_revision, cancel_reason, fragment, events} as the loader would send codec.ts's
 * watchResponse(h, r) (with `fragment: true` added when `fragment`); undefined when a number
 * needs the generic path (a progress answer's watch id, -1, is one).
 */
export function watchResponseBytes(h: ResponseHeader, r: WatchResponse, fragment = false):
  Buffer | undefined {
  const hh = r.canceled === true && r.compactRevision ? { ...h, revision: 0 } : h;
  const hb = headerBytes(hh as ResponseHeader);
  const compact = r.compactRevision ?? 0;
  const events = repeated(r.events, eventBytes);
  if (hb < 0 || events === undefined || !safe(r.watchId) || !safe(compact)) return undefined;
  const reason = r.cancelReason === undefined ? 0 : Buffer.byteLength(r.cancelReason, 'utf8');
  const total = 1 + varintBytes(hb) + hb + intFieldBytes(r.watchId) +
    (r.created === true ? 2 : 0) + (r.canceled === true ? 2 : 0) + intFieldBytes(compact) +
    (r.cancelReason === undefined ? 0 : 1 + varintBytes(reason) + reason) + (fragment ? 2 : 0) +
    events.bytes;
  const buf = Buffer.allocUnsafe(total);
  let at = putHeader(hh as ResponseHeader, hb, buf);
  at = putInt(2, r.watchId, buf, at);
  if (r.created === true) at = putInt(3, 1, buf, at);
  if (r.canceled === true) at = putInt(4, 1, buf, at);
  at = putInt(5, compact, buf, at);
  if (r.cancelReason !== undefined) {
    buf[at] = (6 << 3) | 2;
    const start = putVarint(reason, buf, at + 1);
    at = start + buf.write(r.cancelReason, start, 'utf8');
  }
  if (fragment) at = putInt(7, 1, buf, at);
  for (let i = 0; i < r.events.length; i++) {
    buf[at] = (11 << 3) | 2;
    at = putEvent(r.events[i]!, buf, putVarint(events.sizes[i]!, buf, at + 1));
  }
  if (at !== total) throw new Error(`watchResponseBytes: wrote ${at} of ${total} bytes`);
  return buf;
}
