
/**
 * expireAsRevokes turns a leaseExpire batch into the single revokes it stands for: one
 * leaseRevoke per id still granted, in the batch's order, each id once. Applying them one
 * after another is what the batch means, so a batch and N single LeaseRevoke proposals leave
 * the same store, revisions and events behind (etcd revokes each expired lease in a txn of its
 * own). An id already revoked (by a client, or by an earlier batch that was proposed again
 * after leaseRevokeRetryMs) is skipped: its single revoke would fail with lease-not-found and
 * change nothing.
 *
 * Example: ids [7, 9, 7, 4] with 9 already revoked → revoke 7, revoke 4.
 */
export function expireAsRevokes(ids: readonly number[], granted: (id: number) => boolean):
  { type: 'leaseRevoke'; id: number }[] {
  const seen = new Set<number>();
  const out: { type: 'leaseRevoke'; id: number }[] = [];
  for (const id of ids) {
    if (seen.has(id) || !granted(id)) continue;
    seen.add(id);
    out.push({ type: 'leaseRevoke', id });
  }
  return out;
}
