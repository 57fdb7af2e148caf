import type { Revision } from '../types.js';
import { assert } from '../assert.js';

/**
 * Revisions. etcd numbers every write transaction with a main revision and every change
 * inside it with a sub revision (0, 1, 2 ...). MyEtcd keeps the main revision as the branded
 * `Revision`; the sub revision is implicit in the order of a transaction's Change list (the
 * applier emits them in order and every shard stores them in that order).
 *
 * As in etcd, a fresh store is at revision 1 and the first write creates revision 2; the
 * compact revision is 0 until the first compaction.
 */

/** initialRevision is the revision of an empty store (etcd's currentRev starts at 1). */
export const initialRevision = 1 as Revision;

/** noRevision is "never compacted" and "no revision requested" (read the latest). */
export const noRevision = 0 as Revision;

/** revision brands a number as a Revision, asserting it is a safe non-negative integer. */
export function revision(n: number): Revision {
  assert(Number.isSafeInteger(n) && n >= 0, 'a revision is a safe non-negative integer', n);
  return n as Revision;
}
