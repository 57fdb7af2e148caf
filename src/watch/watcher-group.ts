import type { Bytes } from '../types.js';

/**
 * WatcherGroup finds the watchers whose key range holds a key, for thousands of watchers
 * (etcd's watcherGroup: a key → watchers map plus an interval tree for ranges).
 *
 * Single-key watchers live in `exact` (one Map lookup per changed key). Range and prefix
 * watchers live in `ranges`, sorted by start, with `maxEnd[i]` = the largest end among
 * ranges[0..i]. To find the ranges holding k: binary-search the last range whose start ≤ k,
 * then walk left while maxEnd > k — once maxEnd[i] ≤ k no range at or before i can hold k.
 * Cost: O(log n + ranges walked), and the walk stops early unless many ranges start before k
 * and end after it (which is exactly when they match). The sorted array is rebuilt lazily
 * (on the first lookup after an add or remove), so a burst of 5,000 creates costs one sort.
 *
 * Example: ranges [a,c) [b,z) [d,e); lookup "d1": last start ≤ "d1" is [d,e) (holds it);
 * then [b,z) (holds it); maxEnd of [a,c) alone is "c" ≤ "d1": stop.
 */
export class WatcherGroup<W extends GroupMember> {
  private readonly exact = new Map<Bytes, Set<W>>();
  private readonly rangeSet = new Set<W>();
  private ranges: W[] = [];
  /** maxEnd[i]: the largest end in ranges[0..i]; undefined stands for +∞ (from-key). */
  private maxEnd: (Bytes | undefined)[] = [];
  private dirty = false;
  private count = 0;

  /** size is the number of watchers in the group. */
  get size(): number {
    return this.count;
  }

  /** add inserts w (not already present). */
  add(w: W): void {
    if (w.single) {
      let s = this.exact.get(w.start);
      if (s === undefined) this.exact.set(w.start, (s = new Set()));
      s.add(w);
    } else {
      this.rangeSet.add(w);
      this.dirty = true;
    }
    this.count++;
  }

  /** delete removes w; returns whether it was present. */
  delete(w: W): boolean {
    if (w.single) {
      const s = this.exact.get(w.start);
      if (s === undefined || !s.delete(w)) return false;
      if (s.size === 0) this.exact.delete(w.start);
    } else {
      if (!this.rangeSet.delete(w)) return false;
      this.dirty = true;
    }
    this.count--;
    return true;
  }

  /** has reports membership. */
  has(w: W): boolean {
    return w.single ? this.exact.get(w.start)?.has(w) === true : this.rangeSet.has(w);
  }

  /** forEachMatch calls fn for every watcher whose range holds key. */
  forEachMatch(key: Bytes, fn: (w: W) => void): void {
    const s = this.exact.get(key);
    if (s !== undefined) for (const w of s) fn(w);
    if (this.rangeSet.size === 0) return;
    if (this.dirty) this.rebuild();
    let lo = 0;
    let hi = this.ranges.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.ranges[mid]!.start <= key) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo - 1; i >= 0; i--) {
      const m = this.maxEnd[i];
      if (m !== undefined && m <= key) break;
      const w = this.ranges[i]!;
      if (w.end === undefined || key < w.end) fn(w);
    }
  }

  /** values iterates every watcher. */
  *values(): IterableIterator<W> {
    for (const s of this.exact.values()) yield* s;
    yield* this.rangeSet;
  }

  private rebuild(): void {
    this.ranges = [...this.rangeSet]
      .sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
    this.maxEnd = new Array<Bytes | undefined>(this.ranges.length);
    let m: Bytes | undefined = '';
    let unbounded = false;
    for (let i = 0; i < this.ranges.length; i++) {
      const e = this.ranges[i]!.end;
      if (e === undefined) unbounded = true;
      else if (!unbounded && e > m!) m = e;
      this.maxEnd[i] = unbounded ? undefined : m;
    }
    this.dirty = false;
  }
}

/** GroupMember is what WatcherGroup needs of a watcher: its normalized key range. */
export interface GroupMember {
  start: Bytes;
  /** end: exclusive; undefined means unbounded (from-key). Unused when single. */
  end: Bytes | undefined;
  single: boolean;
}
