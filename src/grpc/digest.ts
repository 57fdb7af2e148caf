import type { KeyValue, KeyValueSpan } from '../mvcc/types.js';
import { crc32cTables } from '../wal/crc32c.js';
import { keyValueProto } from './snapshot.js';
import { keyValueBytes, putKeyValue, putVarint } from './wire.js';

/**
 * digest: HashKV's hash of a store. Pure.
 *
 * HashKV at a revision is the sum, modulo 2^32, of the CRC-32C of every live key-value's
 * mvccpb.KeyValue encoding at that revision. A sum needs no order, so each shard hashes its
 * own keys where they lie (ShardDigest: no key-value crosses a thread) and the gateway adds
 * the shards' sums; the number is the same for any shard count, so members holding the same
 * data agree (`etcdctl endpoint hashkv` compares them). It is not etcd's number (a CRC over
 * its bbolt pages), and differs from builds before session 33 (a CRC over RangeResponse
 * pages in key order, computed at the gateway).
 */

/** scratch is reused for every encoding below its size (a thread's hashes run one at a time). */
let scratch = Buffer.allocUnsafe(4096);

/** keyValueHash is the CRC-32C of a key-value's mvccpb.KeyValue encoding. */
export function keyValueHash(kv: KeyValue): number {
  const n = keyValueBytes(kv);
  if (n < 0) return crc32cTables(0, keyValueProto(kv)); // a number past the fast path's
  if (n > scratch.length) scratch = Buffer.allocUnsafe(Math.max(n, scratch.length * 2));
  const end = putKeyValue(kv, scratch, 0);
  return crc32cTables(0, scratch, 0, end);
}

const safe = (n: number): boolean => Number.isSafeInteger(n) && n >= 0;

/** putIntField writes a varint field (fields 1-15), left out when zero. */
function putIntField(field: number, n: number, buf: Uint8Array, at: number): number {
  if (n === 0) return at;
  buf[at] = field << 3;
  return putVarint(n, buf, at + 1);
}

/** keyBytesMaxInLoop: keys up to this long are copied by a loop, longer ones by Buffer#write
 * (a native call costs more than a short loop). */
const keyBytesMaxInLoop = 64;

/**
 * keyValueSpanHash is keyValueHash of a key-value as a store's columns hold it: the same
 * encoding, field for field, with the value's bytes hashed where they lie instead of copied.
 * A number past the fast path's range takes keyValueHash's generic way.
 */
export function keyValueSpanHash(s: KeyValueSpan): number {
  const k = s.key;
  if (!safe(s.createRevision) || !safe(s.modRevision) || !safe(s.version) || !safe(s.lease)) {
    return keyValueHash({ key: k, createRevision: s.createRevision as KeyValue['createRevision'],
      modRevision: s.modRevision as KeyValue['modRevision'], version: s.version,
      lease: s.lease as KeyValue['lease'],
      value: Buffer.from(s.value.buffer, s.value.byteOffset + s.valueAt, s.valueLen)
        .toString('latin1') });
  }
  // Everything but the value's bytes and the lease: at most 3 + 4 × 10 bytes past the key.
  if (k.length + 64 > scratch.length) scratch = Buffer.allocUnsafe(k.length * 2 + 64);
  const b = scratch;
  let at = 0;
  if (k.length > 0) {
    b[0] = 0x0a; // field 1, length-delimited
    at = putVarint(k.length, b, 1);
    if (k.length <= keyBytesMaxInLoop) {
      for (let i = 0; i < k.length; i++) b[at + i] = k.charCodeAt(i);
      at += k.length;
    } else {
      at += b.write(k, at, 'latin1');
    }
  }
  at = putIntField(2, s.createRevision, b, at);
  at = putIntField(3, s.modRevision, b, at);
  at = putIntField(4, s.version, b, at);
  let crc: number;
  if (s.valueLen > 0) {
    b[at] = 0x2a; // field 5, length-delimited
    at = putVarint(s.valueLen, b, at + 1);
    crc = crc32cTables(crc32cTables(0, b, 0, at), s.value, s.valueAt, s.valueAt + s.valueLen);
    at = 0;
  } else {
    crc = crc32cTables(0, b, 0, at);
    at = 0;
  }
  at = putIntField(6, s.lease, b, at);
  return at === 0 ? crc : crc32cTables(crc, b, 0, at);
}

/** addHashes adds two sums of hashes modulo 2^32. */
export function addHashes(a: number, b: number): number {
  return (a + b) >>> 0;
}
