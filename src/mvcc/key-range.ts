import type { Bytes } from '../types.js';

/**
 * KeyRange is the key selection of a request, normalized the way etcd reads `range_end`
 * (etcdserver/apply.go mkGteRange, mvcc/index.go):
 *   - no range_end (undefined or empty)  → the single key `key`;
 *   - range_end "\0"                      → every key ≥ key ("from key");
 *   - otherwise                           → keys in [key, range_end); empty when
 *                                           range_end ≤ key.
 * An empty range_end arriving from JSON is read as "absent" (proto3 cannot tell them apart).
 *
 * Example: keyRangeOf("a", "c") selects "a", "ab", "b\xff" but not "c";
 *          keyRangeOf("a", "\0") selects "a" and everything after it.
 */
export interface KeyRange {
  /** start is the first key selected (the request's key). */
  start: Bytes;
  /** end is the exclusive upper bound; undefined means unbounded (from-key). */
  end: Bytes | undefined;
  /** single marks a one-key selection (then end is start + "\0"). */
  single: boolean;
}

/** keyRangeOf normalizes a request's (key, rangeEnd). */
export function keyRangeOf(key: Bytes, rangeEnd?: Bytes): KeyRange {
  if (rangeEnd === undefined || rangeEnd === '') {
    return { start: key, end: key + '\0', single: true };
  }
  if (rangeEnd === '\0') return { start: key, end: undefined, single: false };
  return { start: key, end: rangeEnd, single: false };
}

/** inKeyRange reports whether k is selected by r. */
export function inKeyRange(r: KeyRange, k: Bytes): boolean {
  if (r.single) return k === r.start;
  return k >= r.start && (r.end === undefined || k < r.end);
}
