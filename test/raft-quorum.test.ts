/**
 * The quorum arithmetic against naive twins on thousands of seeded random inputs: the
 * committed index is the median-like element of the sorted acks, and an election is won,
 * lost or pending by plain counting.
 */
import test from 'ava';
import { committedIndex, quorumSize, seededRng, voteResult } from '../src/raft/index.js';
import type { Index, MemberId } from '../src/types.js';

const rounds = 20_000;

function randomVoters(rng: () => number): MemberId[] {
  const n = Math.floor(rng() * 8); // 0..7 voters, including the empty config.
  const ids = new Set<number>();
  while (ids.size < n) ids.add(1 + Math.floor(rng() * 20));
  return [...ids] as MemberId[];
}

/** naiveCommitted sorts the acks descending and takes the quorum-th: the textbook rule. */
function naiveCommitted(voters: MemberId[], acked: Map<number, number>): number {
  if (voters.length === 0) return Number.MAX_SAFE_INTEGER;
  const srt = voters.map((v) => acked.get(v) ?? 0).sort((a, b) => b - a);
  return srt[Math.floor(voters.length / 2)]!;
}

/** countingCommitted is a second twin: the largest ack value that a majority reached. */
function countingCommitted(voters: MemberId[], acked: Map<number, number>): number {
  if (voters.length === 0) return Number.MAX_SAFE_INTEGER;
  let best = 0;
  for (const v of voters) {
    const x = acked.get(v) ?? 0;
    const n = voters.filter((w) => (acked.get(w) ?? 0) >= x).length;
    if (n >= quorumSize(voters.length) && x > best) best = x;
  }
  return best;
}

test('raft quorum: committedIndex matches sort-and-take-median on random inputs', (t) => {
  const rng = seededRng(42);
  for (let r = 0; r < rounds; r++) {
    const voters = randomVoters(rng);
    const acked = new Map<number, number>();
    for (const v of voters) if (rng() < 0.9) acked.set(v, Math.floor(rng() * 10));
    // Acks from non-voters (learners) must not count.
    acked.set(99, 1000);
    const got = committedIndex(voters, (id) => acked.get(id) as Index | undefined);
    const want = naiveCommitted(voters, acked);
    if (got !== want || got !== countingCommitted(voters, acked)) {
      t.fail(`round ${r}: voters=${voters} acked=${JSON.stringify([...acked])}`
        + ` got ${got} want ${want}`);
      return;
    }
  }
  t.pass();
});

test('raft quorum: voteResult matches counting on random inputs', (t) => {
  const rng = seededRng(7);
  for (let r = 0; r < rounds; r++) {
    const voters = randomVoters(rng);
    const votes = new Map<number, boolean>();
    for (const v of voters) {
      const x = rng();
      if (x < 0.4) votes.set(v, true);
      else if (x < 0.7) votes.set(v, false);
    }
    const yes = voters.filter((v) => votes.get(v) === true).length;
    const no = voters.filter((v) => votes.get(v) === false).length;
    const q = quorumSize(voters.length);
    const want = voters.length === 0 || yes >= q ? 'VoteWon'
      : voters.length - no < q ? 'VoteLost' : 'VotePending';
    const got = voteResult(voters, (id) => votes.get(id));
    if (got !== want) {
      t.fail(`round ${r}: voters=${voters} votes=${JSON.stringify([...votes])} got ${got}`);
      return;
    }
  }
  t.pass();
});

test('raft quorum: worked example from the doc comment', (t) => {
  const acked = new Map<number, Index>([[1, 7 as Index], [2, 5 as Index], [3, 2 as Index]]);
  t.is(committedIndex([1, 2, 3] as MemberId[], (id) => acked.get(id)), 5 as Index);
  t.is(quorumSize(4), 3);
});
