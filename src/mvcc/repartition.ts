import { assert } from './assert.js';
import { shardOf } from './shard-of.js';
import { shardSnapshotFormat, type ShardSnapshot } from './shard-store.js';

/**
 * repartitionSnapshots re-splits a snapshot's shard dumps for another shard count. Members of one
 * cluster may run different numbers of shards (the default follows the machine's cores), yet
 * a leader sends its snapshot as it took it; the receiver moves every row to the shard that
 * owns its key under its own count (shardOf(key, n)).
 *
 * Each dump holds two runs of rows (see ShardSnapshot): versions older than compactRevision,
 * at most one per key, then the change log in revision order. Rows keep their run; change-log
 * rows of several sources merge by revision, stably. Inside one revision (a transaction that
 * touched keys of several source shards) the rows of a lower source shard come first: a
 * transaction's changes keep their order within each source shard, not across them.
 *
 * Example: dumps of 2 shards re-split into 3. Every dump has currentRevision 9 and
 * compactRevision 4; key "a" (rows at 2 and 7) moves with both rows to shardOf("a", 3).
 */
export function repartitionSnapshots(parts: readonly ShardSnapshot[], n: number): ShardSnapshot[] {
  assert(parts.length > 0 && n > 0, 'repartition needs dumps and a shard count');
  const current = parts[0]!.currentRevision;
  const compact = parts[0]!.compactRevision;
  for (const p of parts) {
    assert(p.currentRevision === current && p.compactRevision === compact,
      'shard dumps of one snapshot disagree on their revisions');
  }
  type Row = { part: number; row: number; mod: number };
  const old: Row[][] = Array.from({ length: n }, () => []);
  const changes: Row[][] = Array.from({ length: n }, () => []);
  parts.forEach((p, part) => {
    for (let row = 0; row < p.key.length; row++) {
      const target = shardOf(p.keys[p.key[row]!]!, n);
      const mod = p.mod[row]!;
      (mod < compact ? old : changes)[target]!.push({ part, row, mod });
    }
  });
  return Array.from({ length: n }, (_, i) => {
    // Array.prototype.sort is stable: rows of one revision keep source order.
    const rows = [...old[i]!, ...changes[i]!.sort((a, b) => a.mod - b.mod)];
    const out: ShardSnapshot = {
      format: shardSnapshotFormat, currentRevision: current, compactRevision: compact,
      keys: [], key: [], mod: [], create: [], version: [], lease: [], value: [],
    };
    const keyNo = new Map<string, number>();
    for (const { part, row } of rows) {
      const p = parts[part]!;
      const key = p.keys[p.key[row]!]!;
      let k = keyNo.get(key);
      if (k === undefined) {
        k = out.keys.length;
        keyNo.set(key, k);
        out.keys.push(key);
      }
      out.key.push(k);
      out.mod.push(p.mod[row]!);
      out.create.push(p.create[row]!);
      out.version.push(p.version[row]!);
      out.lease.push(p.lease[row]!);
      out.value.push(p.value[row]!);
    }
    return out;
  });
}
