import { rangeResultKvsMax } from '../constants.js';
import { assertNever } from '../assert.js';
import type { KeyValue, RangeRequest, RangeResponse, SortOrder, SortTarget } from './types.js';

/**
 * RangePlan is etcd v3.4's recipe for a Range (etcdserver/apply.go Range), split so that
 * shards can do most of it and mergeRanges (merge.ts) the rest:
 *
 *   1. S = every key in [key, range_end) alive at the revision; count = |S| (always, even
 *      with filters, limit or count_only: etcd counts before filtering).
 *   2. Fetch F: all of S when sort_order ≠ NONE or any min/max mod/create filter is set;
 *      otherwise, with a limit, only the first limit+1 keys of S in key order.
 *   3. Drop from F the kvs failing the filters.
 *   4. Sort: by sort_target in sort_order; with sort_order NONE and a target other than KEY,
 *      etcd sorts ASCEND. NB: that sorts only the first limit+1 keys fetched in step 2 (an
 *      etcd 3.4 quirk kept on purpose: clients see the same answers as from etcd).
 *   5. Keep the first `limit`; more = something was cut. keys_only blanks values.
 *
 * Ties in a non-key sort are broken by ascending key. etcd uses Go's unstable sort.Sort,
 * which for fewer than 12 kvs is an insertion sort and so also yields ascending keys (also
 * under DESCEND, where sort.Reverse only flips Less).
 *
 * With limit 0 the result is also cut at rangeResultKvsMax (a MyEtcd bound, with more=true).
 */
export interface RangePlan {
  /** limit is the request's limit, 0 when none. */
  limit: number;
  /** cap is where step 5 cuts: limit, or rangeResultKvsMax without one. */
  cap: number;
  /** fetchAll: step 2 takes every key (explicit sort order or a filter). */
  fetchAll: boolean;
  /** firstKeysOnly: the step-4 quirk — sort_order NONE, a non-key target and a limit. */
  firstKeysOnly: boolean;
  /** order is the effective sort order of step 4 (NONE = key order as scanned). */
  order: SortOrder;
  target: SortTarget;
  hasFilters: boolean;
}

/** rangePlanOf derives the plan of req. */
export function rangePlanOf(req: RangeRequest): RangePlan {
  const limit = req.limit !== undefined && req.limit > 0 ? req.limit : 0;
  const target = req.sortTarget ?? 'KEY';
  const hasFilters =
    nonZero(req.minModRevision) ||
    nonZero(req.maxModRevision) ||
    nonZero(req.minCreateRevision) ||
    nonZero(req.maxCreateRevision);
  const requested = req.sortOrder ?? 'NONE';
  const fetchAll = requested !== 'NONE' || hasFilters;
  const order = requested === 'NONE' && target !== 'KEY' ? 'ASCEND' : requested;
  return {
    limit,
    cap: limit > 0 ? limit : rangeResultKvsMax,
    fetchAll,
    firstKeysOnly: !fetchAll && limit > 0 && target !== 'KEY',
    order,
    target,
    hasFilters,
  };
}

/** passesFilters applies step 3 (etcd's pruneKVs): a filter of 0 is unset. */
export function passesFilters(req: RangeRequest, kv: KeyValue): boolean {
  if (nonZero(req.maxModRevision) && kv.modRevision > req.maxModRevision!) return false;
  if (nonZero(req.minModRevision) && kv.modRevision < req.minModRevision!) return false;
  if (nonZero(req.maxCreateRevision) && kv.createRevision > req.maxCreateRevision!) return false;
  if (nonZero(req.minCreateRevision) && kv.createRevision < req.minCreateRevision!) return false;
  return true;
}

/** compareKeys orders kvs by ascending key (byte order). */
export function compareKeys(a: KeyValue, b: KeyValue): number {
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

/** kvComparator returns the step-4 order for (order, target); order NONE means key order. */
export function kvComparator(
  order: SortOrder,
  target: SortTarget,
): (a: KeyValue, b: KeyValue) => number {
  if (order === 'NONE') return compareKeys;
  const sign = order === 'DESCEND' ? -1 : 1;
  if (target === 'KEY') return (a, b) => sign * compareKeys(a, b);
  const field = fieldOf(target);
  return (a, b) => {
    const x = field(a);
    const y = field(b);
    if (x !== y) return x < y ? -sign : sign;
    return compareKeys(a, b);
  };
}

function fieldOf(target: SortTarget): (kv: KeyValue) => number | string {
  switch (target) {
    case 'VERSION':
      return (kv) => kv.version;
    case 'CREATE':
      return (kv) => kv.createRevision;
    case 'MOD':
      return (kv) => kv.modRevision;
    case 'VALUE':
      return (kv) => kv.value;
    case 'KEY':
      return (kv) => kv.key;
  }
  return assertNever(target);
}

/** withoutValue returns kv with its value blanked (keys_only). */
export function withoutValue(kv: KeyValue): KeyValue {
  return kv.value === '' ? kv : { ...kv, value: '' };
}

function nonZero(n: number | undefined): boolean {
  return n !== undefined && n !== 0;
}

/**
 * partialRange runs steps 1-5 of the plan over one shard's keys. `scan` must call its
 * argument with every visible kv in the range, in ascending key order. The answer is final
 * for one shard except in the two cases mergeRanges documents, so callers always merge.
 */
export function partialRange(
  req: RangeRequest,
  scan: (visit: (kv: KeyValue) => boolean) => void,
): RangeResponse {
  return partialRangeLazy(req, (visit) => scan((kv) => visit(() => kv)));
}

/**
 * partialRangeLazy is partialRange over a scan that hands each visible version as a loader:
 * a store that keeps versions in columns materialises only the KeyValues the answer keeps
 * (a count over a million keys allocates nothing per key). `visit` answers false when the
 * scan may stop (an uncounted request that has its keys); a scan that goes on is still right.
 */
export function partialRangeLazy(
  req: RangeRequest,
  scan: (visit: (load: () => KeyValue) => boolean) => void,
): RangeResponse {
  const plan = rangePlanOf(req);
  const countOnly = req.countOnly === true;
  // How many kvs step 2 needs at most: all of them when step 4 sorts them all, else the
  // first limit+1 (or cap+1, enough to know that the cut at cap happened).
  const sortsAll = plan.order !== 'NONE' && !plan.firstKeysOnly;
  const fetchMax = sortsAll ? Infinity : plan.firstKeysOnly ? plan.limit + 1 : plan.cap + 1;
  let count = 0;
  let got: KeyValue[] = [];
  const stops = req.uncounted === true && !countOnly && fetchMax !== Infinity;
  scan((load) => {
    count++;
    if (countOnly || got.length >= fetchMax) return !stops;
    const kv = load();
    if (plan.hasFilters && !passesFilters(req, kv)) return true;
    got.push(kv);
    return !stops || got.length < fetchMax;
  });
  if (countOnly) return { type: 'range', kvs: [], more: false, count };
  let more = false;
  if (!plan.firstKeysOnly) {
    if (plan.order === 'DESCEND' && plan.target === 'KEY') got.reverse();
    else if (plan.order !== 'NONE' && plan.target !== 'KEY') {
      got.sort(kvComparator(plan.order, plan.target));
    }
    more = got.length > plan.cap;
    if (more) got = got.slice(0, plan.cap);
  }
  // Values are kept for a VALUE sort with keys_only: mergeRanges still has to sort by them.
  if (req.keysOnly && plan.target !== 'VALUE') got = got.map(withoutValue);
  return { type: 'range', kvs: got, more, count };
}
