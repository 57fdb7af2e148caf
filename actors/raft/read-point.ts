import type { SharedCell } from '../../src/runtime/shared-cell.js';

/**
 * read-point: the Raft node's linearizable read point, published in shared memory so that a
 * gateway can take it without a round trip to the Raft thread (the cell's protocol is in
 * messages.ts: readPointRegion, the fields in order revision, shardIndex, term,
 * rewinds).
 *
 * A linearizable read must see every write acknowledged before it began (Raft thesis §6.4).
 * The general way is a read index: the leader confirms with a quorum that it still leads,
 * and the read waits until the member has applied the leader's commit index. etcd-raft takes
 * a shortcut when the leader is the cluster's only voter: no other member can be elected, so
 * the read index is the commit index at once. This goes one step further for that case: the
 * Raft node publishes, at the end of every apply, the revision it has applied and the Raft
 * index it last sent the shards, and only then lets the answers of that apply leave
 * (StateMachine's beforeAnswers). A read that finds the point valid reads there:
 *
 * - every write acknowledged before the read began was applied before its answer left, so
 *   the point already covers it; committed entries not applied yet were acknowledged to no
 *   one, so a read may come before them;
 * - the point is valid only while this member leads, is the only voter, is no learner, has
 *   applied an entry of its current term (its own empty entry as a new leader: everything an
 *   earlier term acknowledged comes before it), and is neither faulted nor stopping;
 * - a conf change that adds a voter takes effect when it is applied: the point is withdrawn
 *   at the end of that apply, before its answers leave, and no other member can be elected
 *   without this one's vote, which it can only give after that apply.
 *
 * A crashed generation's cell is closed by the supervisor before the next one starts
 * (src/runtime/system.ts SharedRegions), so no gateway reads a dead node's point.
 * Anything else — a follower, a leader among several voters — reads through the read index
 * (RaftReadIndex, read-index.ts).
 */

/** ReadPointState is what decides whether the point may be published. */
export interface ReadPointState {
  selfId: number;
  leader: number;
  voters: readonly number[];
  /** appliedTerm: the term of the last entry applied (0: unknown, after a restore). */
  appliedTerm: number;
  term: number;
  learner: boolean;
  faulted: boolean;
  stopping: boolean;
}

/** readPointValid: whether a read may use the published point (see the file comment). */
export function readPointValid(s: ReadPointState): boolean {
  return !s.stopping && !s.faulted && !s.learner && s.leader === s.selfId &&
    s.voters.length === 1 && s.voters[0] === s.selfId && s.term > 0 && s.appliedTerm === s.term;
}

/** publishReadPoint publishes the point, or withdraws it when it is not valid. */
export function publishReadPoint(cell: SharedCell, s: ReadPointState,
  point: { revision: number; shardIndex: number; rewinds: number }): void {
  if (!readPointValid(s)) return cell.withdraw();
  cell.publish([point.revision, point.shardIndex, s.term, point.rewinds]);
}
