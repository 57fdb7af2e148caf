/**
 * Progress is the leader's view of one follower (etcd-raft's tracker.Progress), and
 * ProgressTracker the set of them plus the membership and the votes of an election.
 *
 * A follower's Progress is in one of three states:
 * - StateProbe: the leader does not know where the logs match; it sends one MsgApp per
 *   heartbeat interval and waits for the answer (msgAppFlowPaused) before probing again.
 * - StateReplicate: the logs match at `match`; MsgApps are pipelined optimistically,
 *   advancing `next`, bounded by the Inflights window (inflightMsgsMax).
 * - StateSnapshot: the entries the follower needs are compacted; a MsgSnap is on its way and
 *   nothing else is sent until the follower reports back.
 * Invariant: match < next.
 */
import type { Index, MemberId } from '../types.js';
import { assert } from '../assert.js';
import { committedIndex, voteResult, type VoteResult } from './quorum.js';
import type { ConfState, ProgressStateType, ProgressStatus } from './types.js';

/**
 * Inflights is a bounded FIFO of the last indexes of MsgApps sent but not acknowledged.
 * Ring buffer of `capacity` slots; freeLE releases every message up to an acked index.
 */
export class Inflights {
  private start = 0;
  count = 0;
  private readonly buffer: number[];
  constructor(readonly capacity: number) {
    assert(capacity > 0, 'inflights capacity must be positive');
    this.buffer = new Array<number>(capacity).fill(0);
  }

  add(last: Index): void {
    assert(!this.full(), 'cannot add into a full inflights');
    this.buffer[(this.start + this.count) % this.capacity] = last;
    this.count++;
  }

  /** freeLE frees every inflight message whose last index is ≤ to. */
  freeLE(to: Index): void {
    while (this.count > 0 && this.buffer[this.start]! <= to) {
      this.start = (this.start + 1) % this.capacity;
      this.count--;
    }
    if (this.count === 0) this.start = 0;
  }

  /** freeFirstOne frees the oldest inflight message. */
  freeFirstOne(): void {
    if (this.count === 0) return;
    this.start = (this.start + 1) % this.capacity;
    this.count--;
    if (this.count === 0) this.start = 0;
  }

  full(): boolean {
    return this.count === this.capacity;
  }

  reset(): void {
    this.start = 0;
    this.count = 0;
  }
}

/** Progress is one follower's replication state, as seen by the leader. */
export class Progress {
  match: Index = 0 as Index;
  next: Index;
  state: ProgressStateType = 'StateProbe';
  /** pendingSnapshot is the index of the snapshot in flight in StateSnapshot, else 0. */
  pendingSnapshot: Index = 0 as Index;
  /** recentActive is set by any message from the follower; CheckQuorum reads and resets it. */
  recentActive = false;
  /** msgAppFlowPaused: in StateProbe, a probe is in flight; wait for its answer. */
  msgAppFlowPaused = false;
  readonly inflights: Inflights;
  isLearner: boolean;

  constructor(next: Index, maxInflight: number, isLearner: boolean) {
    this.next = next;
    this.inflights = new Inflights(maxInflight);
    this.isLearner = isLearner;
  }

  private resetState(state: ProgressStateType): void {
    this.msgAppFlowPaused = false;
    this.pendingSnapshot = 0 as Index;
    this.state = state;
    this.inflights.reset();
  }

  becomeProbe(): void {
    // After a snapshot, the follower has at least pendingSnapshot; probe right after it.
    if (this.state === 'StateSnapshot') {
      const pending = this.pendingSnapshot;
      this.resetState('StateProbe');
      this.next = Math.max(this.match + 1, pending + 1) as Index;
    } else {
      this.resetState('StateProbe');
      this.next = (this.match + 1) as Index;
    }
  }

  becomeReplicate(): void {
    this.resetState('StateReplicate');
    this.next = (this.match + 1) as Index;
  }

  becomeSnapshot(snapshotIndex: Index): void {
    this.resetState('StateSnapshot');
    this.pendingSnapshot = snapshotIndex;
  }

  /** sentEntries records a MsgApp carrying entries up to `last` (count > 0). */
  sentEntries(count: number, last: Index): void {
    if (this.state === 'StateReplicate' && count > 0) {
      this.next = (last + 1) as Index;
      this.inflights.add(last);
    }
    // In probe, one message at a time, whether or not it carried entries.
    if (this.state === 'StateProbe') this.msgAppFlowPaused = true;
  }

  /** maybeUpdate records an acknowledgement of index n; false if it was stale. */
  maybeUpdate(n: Index): boolean {
    let updated = false;
    if (this.match < n) {
      this.match = n;
      updated = true;
      this.msgAppFlowPaused = false;
    }
    if (this.next < n + 1) this.next = (n + 1) as Index;
    return updated;
  }

  /**
   * maybeDecrTo handles a rejected MsgApp at index `rejected`, with the follower's hint
   * `matchHint` of where the logs may match. Returns false when the rejection is stale.
   */
  maybeDecrTo(rejected: Index, matchHint: Index): boolean {
    if (this.state === 'StateReplicate') {
      // Stale if the rejection is of something already known to match.
      if (rejected <= this.match) return false;
      this.next = (this.match + 1) as Index;
      return true;
    }
    // In probe, only the answer to the latest probe (next - 1) counts.
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1) as Index;
    this.msgAppFlowPaused = false;
    return true;
  }

  /** isPaused says whether the leader must hold back MsgApps to this follower. */
  isPaused(): boolean {
    switch (this.state) {
      case 'StateProbe': return this.msgAppFlowPaused;
      case 'StateReplicate': return this.inflights.full();
      case 'StateSnapshot': return true;
    }
  }

  toStatus(): ProgressStatus {
    return {
      match: this.match, next: this.next, state: this.state, isLearner: this.isLearner,
      recentActive: this.recentActive, pendingSnapshot: this.pendingSnapshot,
      inflight: this.inflights.count,
    };
  }
}

/**
 * ProgressTracker holds the membership (voters and learners, disjoint), one Progress per
 * member (on every node, so any node can become leader), and the votes of a campaign.
 */
export class ProgressTracker {
  voters: MemberId[] = [];
  learners: MemberId[] = [];
  progress = new Map<MemberId, Progress>();
  votes = new Map<MemberId, boolean>();

  constructor(readonly maxInflight: number) {}

  confState(): ConfState {
    return { voters: [...this.voters].sort((a, b) => a - b),
      learners: [...this.learners].sort((a, b) => a - b) };
  }

  isVoter(id: MemberId): boolean {
    return this.voters.includes(id);
  }

  /** committed is the index a quorum of voters has matched (Raft §5.3). */
  committed(): Index {
    return committedIndex(this.voters, (id) => this.progress.get(id)?.match);
  }

  /** quorumActive says a quorum of voters was recently active (CheckQuorum, thesis §6.2). */
  quorumActive(self: MemberId): boolean {
    return voteResult(this.voters, (id) => id === self || (this.progress.get(id)?.recentActive
      ?? false)) === 'VoteWon';
  }

  resetVotes(): void {
    this.votes.clear();
  }

  recordVote(id: MemberId, granted: boolean): void {
    if (!this.votes.has(id)) this.votes.set(id, granted);
  }

  tallyVotes(): { granted: number; rejected: number; result: VoteResult } {
    let granted = 0;
    let rejected = 0;
    for (const id of this.voters) {
      const v = this.votes.get(id);
      if (v === true) granted++;
      else if (v === false) rejected++;
    }
    return { granted, rejected, result: voteResult(this.voters, (id) => this.votes.get(id)) };
  }
}
