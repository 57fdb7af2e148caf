/**
 * Quorum arithmetic over a majority configuration (Raft §5.2, §5.3): which index a quorum
 * of voters has acknowledged, and whether an election is won. Membership changes are
 * single-server (thesis §4.1), so there is one majority config, never a joint one.
 */
import type { Index, MemberId } from '../types.js';

/** VoteResult is the outcome of an election so far. */
export type VoteResult = 'VotePending' | 'VoteLost' | 'VoteWon';

/** quorumSize is the smallest majority of n voters. */
export function quorumSize(n: number): number {
  return Math.floor(n / 2) + 1;
}

/**
 * committedIndex returns the largest index acknowledged by a quorum of `voters`; a voter
 * missing from `acked` counts as 0. Example: voters {1,2,3} with acked 1→7, 2→5, 3→2 give 5:
 * sorted descending (7,5,2), the quorum of 2 is reached at the 2nd element. An empty config
 * returns Number.MAX_SAFE_INTEGER ("everything is committed by nobody"), as etcd-raft does, so
 * that a caller can take a min over several configs.
 *
 * Voter sets are small (≤ 7 in practice), so this fills a fixed-size array and insertion-sorts
 * it instead of allocating and calling Array.sort with a comparator.
 */
export function committedIndex(
  voters: readonly MemberId[], acked: (id: MemberId) => Index | undefined,
): Index {
  const n = voters.length;
  if (n === 0) return Number.MAX_SAFE_INTEGER as Index;
  const srt: number[] = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const v = acked(voters[i]!) ?? 0;
    // Insertion sort, ascending.
    let j = i;
    while (j > 0 && srt[j - 1]! > v) {
      srt[j] = srt[j - 1]!;
      j--;
    }
    srt[j] = v;
  }
  // srt ascending: the element at n - quorum has exactly `quorum` elements ≥ it.
  return srt[n - quorumSize(n)]! as Index;
}

/**
 * voteResult tallies `votes` (true granted, false rejected, undefined not yet heard) among
 * `voters`: won once a quorum granted, lost once a quorum can no longer grant. An empty
 * config wins, as etcd-raft's does.
 */
export function voteResult(
  voters: readonly MemberId[], votes: (id: MemberId) => boolean | undefined,
): VoteResult {
  const n = voters.length;
  if (n === 0) return 'VoteWon';
  let granted = 0;
  let missing = 0;
  for (const id of voters) {
    const v = votes(id);
    if (v === undefined) missing++;
    else if (v) granted++;
  }
  const q = quorumSize(n);
  if (granted >= q) return 'VoteWon';
  if (granted + missing >= q) return 'VotePending';
  return 'VoteLost';
}
