/**
 * wire: protobuf's wire format written by hand for the few messages that can be large — a
 * mvccpb.KeyValue, and an etcdserverpb.RangeResponse of any number of them — straight into
 * one buffer, with no object per field. The loader's generic path (src/grpc/codec.ts then
 * protobufjs) builds three objects and two buffers per key-value first: a range of a million
 * keys spent seconds collecting them. Pure.
 *
 * The bytes are protobufjs's, field for field (ascending field numbers; zero and empty fields
 * left out; a message field present even when empty), which test/grpc-wire.test.ts checks
 * against the loader's own serializer. Numbers are written only when they are non-negative
 * safe integers; for any other the sizing functions answer -1 and callers take the generic
 * path.
 */
import type { KeyValue, RangeResponse, ResponseHeader } from '../mvcc/types.js';

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

/** headerBytes is the length of etcdserverpb.ResponseHeader; -1 as keyValueBytes. */
function headerBytes(h: ResponseHeader): number {
  if (!safe(h.clusterId) || !safe(h.memberId) || !safe(h.revision) || !safe(h.raftTerm)) {
    return -1;
  }
  return intFieldBytes(h.clusterId) + intFieldBytes(h.memberId) + intFieldBytes(h.revision) +
    intFieldBytes(h.raftTerm);
}

/**
 * rangeResponseBytes is etcdserverpb.RangeResponse {header, kvs, more, count} as the bytes
 * the loader would send for codec.ts's rangeResponse(h, r); undefined when a number needs the
 * generic path.
 */
export function rangeResponseBytes(h: ResponseHeader, r: RangeResponse): Buffer | undefined {
  const hb = headerBytes(h);
  if (hb < 0 || !safe(r.count)) return undefined;
  const sizes = new Array<number>(r.kvs.length);
  let total = 1 + varintBytes(hb) + hb + (r.more ? 2 : 0) + intFieldBytes(r.count);
  for (let i = 0; i < r.kvs.length; i++) {
    const n = keyValueBytes(r.kvs[i]!);
    if (n < 0) return undefined;
    sizes[i] = n;
    total += 1 + varintBytes(n) + n;
  }
  const buf = Buffer.allocUnsafe(total);
  buf[0] = (1 << 3) | 2;
  let at = putVarint(hb, buf, 1);
  at = putInt(1, h.clusterId, buf, at);
  at = putInt(2, h.memberId, buf, at);
  at = putInt(3, h.revision, buf, at);
  at = putInt(4, h.raftTerm, buf, at);
  for (let i = 0; i < r.kvs.length; i++) {
    buf[at] = (2 << 3) | 2;
    at = putKeyValue(r.kvs[i]!, buf, putVarint(sizes[i]!, buf, at + 1));
  }
  if (r.more) at = putInt(3, 1, buf, at);
  at = putInt(4, r.count, buf, at);
  if (at !== total) throw new Error(`rangeResponseBytes: wrote ${at} of ${total} bytes`);
  return buf;
}
