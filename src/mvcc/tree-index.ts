import type { Bytes, Revision } from '../types.js';
import type { KeyValue } from './types.js';
import { assert } from '../assert.js';
import { KeyIndex, tombstoneOf } from './key-index.js';
import type { KeyRange } from './key-range.js';
import { OrderedMap } from './ordered-map.js';

/**
 * TreeIndex is etcd's treeIndex (mvcc/index.go): every key of a shard, in byte order, with
 * its KeyIndex. It answers "which versions are visible at revision r in [key, end)" and
 * applies compaction key by key.
 */
export class TreeIndex {
  private readonly tree = new OrderedMap<KeyIndex>();
  /** entryCount is the number of entries (puts and tombstones) over all keys. */
  entryCount = 0;

  /** keyCount is the number of keys with any retained history. */
  get keyCount(): number {
    return this.tree.size;
  }

  /** put appends a new version of kv.key. */
  put(kv: KeyValue): void {
    let ki = this.tree.get(kv.key);
    if (ki === undefined) {
      ki = new KeyIndex(kv.key);
      this.tree.set(kv.key, ki);
    }
    ki.append(kv);
    this.entryCount++;
  }

  /** tombstone ends the current generation of key at rev and returns the tombstone entry. */
  tombstone(key: Bytes, rev: Revision): KeyValue {
    const ki = this.tree.get(key);
    assert(ki !== undefined && ki.isLive(), 'a tombstone ends a live key', key);
    const t = tombstoneOf(key, rev);
    ki.append(t);
    this.entryCount++;
    return t;
  }

  /** keyIndex returns the history of key, if any is retained. */
  keyIndex(key: Bytes): KeyIndex | undefined {
    return this.tree.get(key);
  }

  /** visit calls fn, in ascending key order, with every version in r visible at rev. */
  visit(r: KeyRange, rev: number, fn: (kv: KeyValue) => void): void {
    if (r.single) {
      const kv = this.tree.get(r.start)?.get(rev);
      if (kv !== undefined) fn(kv);
      return;
    }
    this.tree.forEach(r.start, r.end, (_k, ki) => {
      const kv = ki.get(rev);
      if (kv !== undefined) fn(kv);
    });
  }

  /** forEachKey visits every KeyIndex in key order. */
  forEachKey(fn: (ki: KeyIndex) => void): void {
    this.tree.forEach(undefined, undefined, (_k, ki) => fn(ki));
  }

  /** compactKey compacts one key at rev, removing it when nothing is left; it returns the
   * dropped entries. */
  compactKey(key: Bytes, rev: Revision): KeyValue[] {
    const ki = this.tree.get(key);
    if (ki === undefined) return [];
    const dropped = ki.compact(rev);
    this.entryCount -= dropped.length;
    if (ki.entries.length === 0) this.tree.delete(key);
    return dropped;
  }
}
