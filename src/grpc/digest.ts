import type { KeyValue } from '../mvcc/types.js';
import { crc32cTables } from '../wal/crc32c.js';
import { keyValueProto } from './snapshot.js';
import { keyValueBytes, putKeyValue } from './wire.js';

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

/** addHashes adds two sums of hashes modulo 2^32. */
export function addHashes(a: number, b: number): number {
  return (a + b) >>> 0;
}
