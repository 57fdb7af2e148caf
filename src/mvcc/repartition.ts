import { assert } from '../assert.js';
import { shardOf } from './shard-of.js';
import { PackedKeys } from './packed-keys.js';
import {
  decodeShardSnapshot, encodeShardSnapshot, KeyTable, type ShardSnapshot,
} from './shard-snapshot.js';

/**
 * repartitionSnapshots re-splits a snapshot's shard dumps (either format, see
 * shard-snapshot.ts) for another shard count and returns dumps in the current format. Members
 * of one cluster may run different numbers of shards (the default follows the machine's
 * cores), yet a leader sends its snapshot as it took it; the receiver moves every row to the
 * shard that owns its key under its own count (shardOf(key, n)). `values`: the dumps'
 * values, when they came without them (decodeShardSnapshot).
 *
 * Each dump holds two runs of rows (see ShardSnapshot): versions older than compactRevision,
 * at most one per key, then the change log in revision order. Rows keep their run; change-log
 * rows of several sources merge by revision, then by sub revision (a transaction's order
 * across shards; dumps without the sub column: stably, the rows of a lower source shard
 * first).
 *
 * Example: dumps of 2 shards re-split into 3. Every dump has currentRevision 9 and
 * compactRevision 4; key "a" (rows at 2 and 7) moves with both rows to shardOf("a", 3).
 */
export function repartitionSnapshots(dumps: readonly unknown[], n: number,
  values?: readonly Uint8Array[]): ShardSnapshot[] {
  assert(dumps.length > 0 && n > 0, 'repartition needs dumps and a shard count');
  const parts = dumps.map((d, i) => decodeShardSnapshot(d, values?.[i]));
  const current = parts[0]!.currentRevision;
  const compact = parts[0]!.compactRevision;
  for (const p of parts) {
    assert(p.currentRevision === current && p.compactRevision === compact,
      'shard dumps of one snapshot disagree on their revisions');
  }
  type Row = { part: number; row: number; mod: number; sub: number; valueAt: number };
  const old: Row[][] = Array.from({ length: n }, () => []);
  const changes: Row[][] = Array.from({ length: n }, () => []);
  parts.forEach((p, part) => {
    let valueAt = 0;
    for (let row = 0; row < p.rows; row++) {
      const target = shardOf(p.keys.keyAt(p.key[row]!), n);
      const mod = p.mod[row]!;
      const sub = p.sub?.[row] ?? 0;
      (mod < compact ? old : changes)[target]!.push({ part, row, mod, sub, valueAt });
      valueAt += p.valueLens[row]!;
    }
  });
  return Array.from({ length: n }, (_, i) => {
    // Array.prototype.sort is stable: rows of one revision keep source order.
    const rows = [...old[i]!, ...changes[i]!.sort((a, b) => a.mod - b.mod || a.sub - b.sub)];
    const m = rows.length;
    const keys = new KeyTable();
    const key = new Uint32Array(m);
    const mod = new Float64Array(m);
    const create = new Float64Array(m);
    const version = new Float64Array(m);
    const lease = new Float64Array(m);
    const valueLens = new Uint32Array(m);
    const sub = new Uint32Array(m);
    let total = 0;
    for (const { part, row } of rows) total += parts[part]!.valueLens[row]!;
    const valueBytes = new Uint8Array(total);
    let o = 0;
    rows.forEach(({ part, row, valueAt }, j) => {
      const p = parts[part]!;
      key[j] = keys.numberOf(p.keys.keyAt(p.key[row]!));
      mod[j] = p.mod[row]!;
      create[j] = p.create[row]!;
      version[j] = p.version[row]!;
      lease[j] = p.lease[row]!;
      sub[j] = p.sub?.[row] ?? 0;
      const len = p.valueLens[row]!;
      valueLens[j] = len;
      valueBytes.set(p.valueBytes.subarray(valueAt, valueAt + len), o);
      o += len;
    });
    return encodeShardSnapshot({
      currentRevision: current, compactRevision: compact, keys: PackedKeys.fromStrings(keys.keys),
      rows: m, key, mod,
      create, version, lease, valueLens, valueBytes, sub,
    });
  });
}
