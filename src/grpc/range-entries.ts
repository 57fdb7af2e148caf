import { rangePlanOf } from '../mvcc/range-plan.js';
import type { RangeRequest } from '../mvcc/types.js';

/**
 * range-entries: the gateway's merge of the shards' answers to a range whose key-values the
 * shards wrote themselves as items of RangeResponse's kvs field (ShardStore.rangeEntries,
 * for requests answered in key order: entriesRangeable). What mergeRanges does for
 * KeyValues, on bytes: each shard's items come in key order, cut at the request's cap with
 * its `more`; the merge takes the first cap items of their union by key, counts are added.
 * A key-value never becomes an object on either side. Pure.
 */

/** EntriesPart is one shard's answer (ShardRangeEntries): items back to back, and each one's
 * end as a little-endian uint32 in `ends` (at any byte offset: read where it arrived, no copy
 * to align it). */
export interface EntriesPart {
  bytes: Uint8Array;
  ends: Uint8Array;
  count: number;
  more: boolean;
}

/** MergedEntries: the answer's items (runs of the parts' bytes, in order), more and count. */
export interface MergedEntries {
  entries: Uint8Array[];
  more: boolean;
  count: number;
}

/** readVarint reads a varint at `at`: [value, next index]. */
function readVarint(b: Uint8Array, at: number): [number, number] {
  let v = 0;
  for (let shift = 0; ; shift += 7) {
    const x = b[at++]!;
    v += (x & 0x7f) * 2 ** shift;
    if (x < 0x80) return [v, at];
  }
}

/** keyStart: where the key of the item starting at `at` lies — past the item's tag and
 * length, and the KeyValue's field 1 tag and length (a key is never empty, so field 1 is
 * always there): [start, end]. */
function keyOf(b: Uint8Array, at: number): [number, number] {
  const [, kv] = readVarint(b, at + 1);
  const [len, key] = readVarint(b, kv + 1);
  return [key, key + len];
}

/** compareKeyBytes orders two keys held in byte arrays. */
function compareKeyBytes(a: Uint8Array, as: number, ae: number, b: Uint8Array, bs: number,
  be: number): number {
  const n = Math.min(ae - as, be - bs);
  for (let i = 0; i < n; i++) {
    const d = a[as + i]! - b[bs + i]!;
    if (d !== 0) return d;
  }
  return (ae - as) - (be - bs);
}

/** mergeEntries merges the shards' answers to req (see the file comment). */
export function mergeEntries(req: RangeRequest, parts: readonly EntriesPart[]): MergedEntries {
  let count = 0;
  for (const p of parts) count += p.count;
  if (parts.length === 1) {
    const p = parts[0]!;
    return { entries: p.bytes.length > 0 ? [p.bytes] : [], more: p.more, count };
  }
  const cap = rangePlanOf(req).cap;
  const next = parts.map(() => 0); // the next item of each part
  const ends = parts.map((p) => new DataView(p.ends.buffer, p.ends.byteOffset, p.ends.length));
  const items = parts.map((p) => p.ends.length >>> 2);
  const endOf = (p: number, i: number): number => ends[p]!.getUint32(i * 4, true);
  const startOf = (p: number, i: number): number => (i === 0 ? 0 : endOf(p, i - 1));
  const entries: Uint8Array[] = [];
  let run: [number, number, number] | undefined; // part, start, end
  let taken = 0;
  for (; taken < cap; taken++) {
    let best = -1;
    let bestKey: [number, number] = [0, 0];
    for (let p = 0; p < parts.length; p++) {
      if (next[p]! >= items[p]!) continue;
      const key = keyOf(parts[p]!.bytes, startOf(p, next[p]!));
      if (best < 0 || compareKeyBytes(parts[p]!.bytes, key[0], key[1], parts[best]!.bytes,
        bestKey[0], bestKey[1]) < 0) {
        best = p;
        bestKey = key;
      }
    }
    if (best < 0) break;
    const i = next[best]!++;
    const [s, e] = [startOf(best, i), endOf(best, i)];
    if (run !== undefined && run[0] === best && run[2] === s) {
      run[2] = e;
    } else {
      if (run !== undefined) entries.push(parts[run[0]]!.bytes.subarray(run[1], run[2]));
      run = [best, s, e];
    }
  }
  if (run !== undefined) entries.push(parts[run[0]]!.bytes.subarray(run[1], run[2]));
  const left = next.some((n, k) => n < items[k]!);
  return { entries, more: parts.some((p) => p.more) || left, count };
}
