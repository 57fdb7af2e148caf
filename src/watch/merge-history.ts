import type { HistoryChange } from './types.js';

/**
 * mergeHistory combines the shards' answers to one history read: each shard returns its
 * changes in revision order and the revision it is complete through. The merged answer is
 * complete only through the smallest of those (a shard that stopped at its limit, or that
 * has not applied as far yet, bounds everyone), so changes past it are dropped — the next
 * pass reads them again. Within one revision, changes keep shard order (a transaction's
 * changes to different shards have no order a watcher could observe otherwise).
 *
 * Example: shard 0 → [3, 5] through 5; shard 1 → [4, 9] through 9 ⇒ [3, 4, 5] through 5.
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
  // Array.prototype.sort is stable: equal revisions keep shard order.
  if (parts.length > 1) out.sort((a, b) => a.revision - b.revision);
  return { changes: out, throughRevision: through };
}
