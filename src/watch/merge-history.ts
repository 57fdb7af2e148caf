import type { HistoryChange } from './types.js';

/**
 * mergeHistory combines the shards' answers to one history read: each shard returns its
 * changes in revision order and the revision it is complete through. The merged answer is
 * complete only through the smallest of those (a shard that stopped at its limit, or that
 * has not applied as far yet, bounds everyone), so changes past it are dropped — the next
 * pass reads them again. Within one revision, changes are ordered by sub revision (their
 * place in the transaction), as etcd and live watches deliver them; changes without one
 * keep shard order.
 *
 * Example: shard 0 → [3, 5] through 5; shard 1 → [4, 9] through 9 ⇒ [3, 4, 5] through 5.
 * A txn at 6 putting b (sub 0, shard 1) then a (sub 1, shard 0) merges as [b, a].
 */
export function mergeHistory(
  parts: readonly { changes: readonly HistoryChange[]; throughRevision: number }[],
): { changes: HistoryChange[]; throughRevision: number } {
  let through = Infinity;
  for (const p of parts) through = Math.min(through, p.throughRevision);
  if (parts.length === 0) through = 0;
  const out: HistoryChange[] = [];
  for (const p of parts) {
    for (const c of p.changes) if (c.revision <= through) out.push(c);
  }
  // Array.prototype.sort is stable: equal (revision, sub) keep shard order.
  if (parts.length > 1) {
    out.sort((a, b) => a.revision - b.revision || (a.sub ?? 0) - (b.sub ?? 0));
  }
  return { changes: out, throughRevision: through };
}
