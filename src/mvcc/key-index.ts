import type { Bytes, Revision } from '../types.js';
import type { KeyValue } from './types.js';
import { assert } from '../assert.js';

/**
 * KeyIndex is the history of one key: etcd's keyIndex (mvcc/key_index.go), storing the
 * versions themselves rather than pointers into a backend. It is the reference form of the
 * rules below; the shards keep the same history as chains of rows in typed-array columns
 * (ShardStore, KvColumns), which follow exactly these rules and examples.
 *
 * A key lives in generations. A generation starts with the put that creates the key and
 * ends with the tombstone that deletes it; the next put starts a new generation, with its
 * version back at 1 and a new create revision. etcd keeps the generations as nested lists;
 * here they are one flat list in revision order, a tombstone (version 0) closing each
 * generation, which makes "the version visible at revision r" one binary search.
 *
 * Worked example, key "foo": put@1, put@2, delete@3, put@4, delete@5
 *   entries:      1(v1)  2(v2)  3(t) | 4(v1)  5(t) |
 *   generations:  {1, 2, 3(t)}  {4, 5(t)}  {empty, the key may be created again}
 *   get(2) → the put@2 (version 2, create 1); get(3) → none (deleted); get(4) → put@4.
 *
 * Compaction at revision c keeps, of everything ≤ c, only the newest entry when it is a
 * put: a read at any revision ≥ c still finds what it found before, and nothing older
 * survives. A tombstone ≤ c is dropped together with its whole generation.
 *   compact(2) → 2(v2) 3(t) 4(v1) 5(t)   (put@1 is gone; reads at ≥ 2 unchanged)
 *   compact(4) → 4(v1) 5(t)              (generation {1,2,3} is gone)
 *   compact(5) → (nothing)               (the newest entry ≤ 5 is a tombstone: the key is
 *                                         removed from the index altogether)
 * This is exactly etcd's rule "remove the versions ≤ rev except the largest one, unless it
 * is a tombstone" (key_index.go compact/doCompact).
 *
 * One transaction may touch a key twice (etcd allows it for a from-key delete followed by a
 * put, see validate.ts): the entries then share a mod revision and their order is the order
 * of the changes (etcd's sub revision); reads at that revision see the last one.
 */
export class KeyIndex {
  /** entries in (revision, order of change) order; never empty; the first is a put. A
   * tombstone is a KeyValue with version 0 and only key/modRevision set. */
  readonly entries: KeyValue[] = [];

  constructor(readonly key: Bytes) {}

  /** isLive reports whether the newest entry is a put (the key currently exists). */
  isLive(): boolean {
    const last = this.entries[this.entries.length - 1];
    return last !== undefined && last.version > 0;
  }

  /** latest returns the newest version, or undefined when the key is deleted. */
  latest(): KeyValue | undefined {
    const last = this.entries[this.entries.length - 1];
    return last !== undefined && last.version > 0 ? last : undefined;
  }

  /** append adds a put or tombstone at the end of the history. */
  append(kv: KeyValue): void {
    assert(kv.key === this.key, 'KeyIndex.append: key mismatch');
    const last = this.entries[this.entries.length - 1];
    if (last === undefined) {
      assert(kv.version > 0, 'KeyIndex.append: a key does not start with a tombstone', kv.key);
    } else {
      assert(kv.modRevision >= last.modRevision, 'KeyIndex.append: revision went back');
      if (kv.version === 0) {
        assert(last.version > 0, 'KeyIndex.append: tombstone of a deleted key');
      }
    }
    this.entries.push(kv);
  }

  /** get returns the version visible at revision rev, or undefined if the key did not exist
   * then. The caller guarantees rev ≥ the last compaction. */
  get(rev: number): KeyValue | undefined {
    const i = this.lastAtOrBefore(rev);
    if (i < 0) return undefined;
    const kv = this.entries[i]!;
    return kv.version > 0 ? kv : undefined;
  }

  /** previous returns the put that entry i replaced (for a Change's prevKv), or undefined
   * when entry i starts a generation or its predecessor was compacted away. */
  previous(i: number): KeyValue | undefined {
    const p = this.entries[i - 1];
    return p !== undefined && p.version > 0 ? p : undefined;
  }

  /** indexOf finds the entry object kv (identity) in the history, or -1. */
  indexOf(kv: KeyValue): number {
    let i = this.lastAtOrBefore(kv.modRevision);
    while (i >= 0 && this.entries[i]!.modRevision === kv.modRevision) {
      if (this.entries[i] === kv) return i;
      i--;
    }
    return -1;
  }

  /** compact drops what no read at ≥ rev needs (see the class comment) and returns the
   * dropped entries. The key should be removed from the index when entries is then empty. */
  compact(rev: Revision): KeyValue[] {
    const i = this.lastAtOrBefore(rev);
    if (i < 0) return [];
    const keepFrom = this.entries[i]!.version > 0 ? i : i + 1;
    return this.entries.splice(0, keepFrom);
  }

  /** generations returns the mod revisions grouped as etcd prints them (oldest first, a
   * tombstone closing each, the open generation last, possibly empty). For tests and docs. */
  generations(): number[][] {
    const gens: number[][] = [[]];
    for (const kv of this.entries) {
      gens[gens.length - 1]!.push(kv.modRevision);
      if (kv.version === 0) gens.push([]);
    }
    return gens;
  }

  /** lastAtOrBefore returns the index of the last entry with modRevision ≤ rev, or -1. */
  private lastAtOrBefore(rev: number): number {
    const e = this.entries;
    let lo = 0;
    let hi = e.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (e[mid]!.modRevision <= rev) lo = mid + 1;
      else hi = mid;
    }
    return lo - 1;
  }
}

/** tombstoneOf builds the KeyValue etcd records for a delete: only key and mod revision. */
export function tombstoneOf(key: Bytes, rev: Revision): KeyValue {
  const lease = 0 as KeyValue['lease'];
  return { key, createRevision: 0 as Revision, modRevision: rev, version: 0, value: '', lease };
}
