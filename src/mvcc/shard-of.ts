import type { Bytes } from '../types.js';
import { assert } from '../assert.js';

/**
 * shardOf maps a key to one of shardCount storage shards: 32-bit FNV-1a over the key's
 * bytes, modulo the shard count. The function is part of the on-disk contract (shard
 * snapshots are partitioned by it), so it must never change; a test pins known values.
 *
 * Example: FNV-1a("foo") = 0xa9f37ed7, so shardOf("foo", 3) === 0; shardOf("", 3) === 1.
 */
export function shardOf(key: Bytes, shardCount: number): number {
  assert(Number.isSafeInteger(shardCount) && shardCount >= 1, 'shard count ≥ 1', shardCount);
  if (shardCount === 1) return 0; // the hash would be taken modulo 1
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i) & 0xff;
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % shardCount;
}
