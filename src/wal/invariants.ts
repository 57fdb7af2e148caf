/**
 * Invariants of what the WAL is asked to persist. A record that breaks one comes from a bug in
 * the Raft node or the shell, never from the outside world, and written to disk it would
 * corrupt the log silently: recovery would refuse it (a gap), or worse replay it (a vote
 * given twice in one term). So the store asserts them before writing: the crash restarts the
 * actors, which recover from what is on disk.
 */
import { assert } from '../assert.js';
import type { HardState } from './record.js';

/**
 * assertEntryFollows checks that the entry at (term, index) may follow a log whose last
 * written index is `lastIndex` (etcd's enti): indexes start at 1 and leave no gap. An index at
 * or below `lastIndex` is allowed: a new leader's entries replace a conflicting suffix (Raft
 * §5.3), and recovery keeps the later ones. It runs for every entry the WAL writes, so it
 * builds its failure's details only when it fails.
 */
export function assertEntryFollows(lastIndex: number, term: number, index: number): void {
  if (index >= 1 && index <= lastIndex + 1 && term >= 1) return;
  assert(
    index >= 1 && index <= lastIndex + 1,
    'wal: an entry index is ≥ 1 and leaves no gap after the last index',
    [index, lastIndex],
  );
  assert(term >= 1, 'wal: an entry term is ≥ 1', [index, term]);
}

/**
 * assertHardStateFollows checks that `next` may replace `prev` (Raft §5.1, figure 2): the
 * term never goes back, a vote once given is not changed within its term (a second vote in
 * one term could elect two leaders), and the commit index never goes back (committed entries
 * are never uncommitted; a snapshot only moves it forward).
 */
export function assertHardStateFollows(prev: HardState | undefined, next: HardState): void {
  if (prev === undefined) return;
  assert(next.term >= prev.term, 'wal: the hard state term never goes back', [prev, next]);
  assert(
    next.term > prev.term || prev.vote === 0 || next.vote === prev.vote,
    'wal: a vote does not change within its term',
    [prev, next],
  );
  assert(next.commit >= prev.commit, 'wal: the hard state commit never goes back', [prev, next]);
}
