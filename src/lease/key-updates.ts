import type { Change } from '../mvcc/types.js';
import type { Bytes } from '../types.js';

/**
 * leaseKeyUpdates derives, from one applied revision's changes, which keys left a lease and
 * which joined one — what the Raft node tells the lease actor (LeaseKeysChanged) so that
 * timeToLive can list a lease's keys. A put that replaces a version carrying lease A with
 * one carrying lease B detaches from A and attaches to B; a delete detaches.
 *
 * Example: put k (lease 5) over k (lease 3) → detach [[3, k]], attach [[5, k]].
 */
export function leaseKeyUpdates(changes: readonly Change[]):
  { attach: [number, Bytes][]; detach: [number, Bytes][] } {
  const attach: [number, Bytes][] = [];
  const detach: [number, Bytes][] = [];
  for (const c of changes) {
    const before = c.prevKv?.lease ?? 0;
    const after = c.kind === 'put' ? c.kv.lease : 0;
    if (before === after) continue;
    if (before !== 0) detach.push([before, c.kv.key]);
    if (after !== 0) attach.push([after, c.kv.key]);
  }
  return { attach, detach };
}
