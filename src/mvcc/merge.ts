import type { KeyValue, RangeRequest, RangeResponse } from './types.js';
import { compareKeys, kvComparator, rangePlanOf, withoutValue } from './range-plan.js';

/**
 * mergeRanges combines the partial answers of every shard to one RangeRequest, all read at
 * the same revision, into etcd's answer. Each partial (ShardStore.range) has already counted
 * its keys, filtered, sorted and cut to `limit` (so the global first `limit` are among the
 * union) and says whether it cut anything (more). Two cases need the merge to finish the job:
 *   - the "sort only the first limit+1 keys" quirk (see RangePlan): partials carry their
 *     first limit+1 keys in key order and the merge picks the global first limit+1 before
 *     sorting by the target;
 *   - keys_only with sort_target VALUE: partials keep values so the merge can sort by them.
 * So the gateway must pass even a single partial through mergeRanges.
 *
 * Example (limit 2, sort MOD DESCEND): shard 0 → [a@9, c@4] more; shard 1 → [b@7]
 *   → kvs [a@9, b@7], more true, count = sum of both counts.
 */
export function mergeRanges(req: RangeRequest, partials: readonly RangeResponse[]): RangeResponse {
  const plan = rangePlanOf(req);
  let count = 0;
  for (const p of partials) count += p.count;
  if (req.countOnly) return { type: 'range', kvs: [], more: false, count };

  let all: KeyValue[] = [];
  for (const p of partials) for (const kv of p.kvs) all.push(kv);

  let kvs: KeyValue[];
  let more: boolean;
  if (plan.firstKeysOnly) {
    all.sort(compareKeys);
    all = all.slice(0, plan.limit + 1);
    all.sort(kvComparator('ASCEND', plan.target));
    more = all.length > plan.limit;
    kvs = all.slice(0, plan.limit);
  } else {
    if (partials.length > 1) all.sort(kvComparator(plan.order, plan.target));
    more = partials.some((p) => p.more) || all.length > plan.cap;
    kvs = all.length > plan.cap ? all.slice(0, plan.cap) : all;
  }
  if (req.keysOnly) kvs = kvs.map(withoutValue);
  return { type: 'range', kvs, more, count };
}
