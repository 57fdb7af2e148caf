/**
 * Typed errors of the Raft core. Each has a stable `code` and etcd-raft's wording, so the shell
 * maps them to client answers with one table. Assertion failures (bugs) are src/assert.ts.
 */

/** RaftError is the base class of the core's expected errors. */
export class RaftError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'RaftError';
    this.code = code;
  }
}

/** DropReason says why a proposal was dropped. */
export type DropReason =
  | 'no leader' | 'transfer in progress' | 'not a member' | 'conf change pending'
  | 'invalid conf change';

/**
 * ErrProposalDropped is thrown by propose/proposeConfChange when the proposal cannot be
 * accepted now. The client may retry (usually after a leader is known again).
 */
export class ErrProposalDropped extends RaftError {
  readonly reason: DropReason;
  constructor(reason: DropReason) {
    super('ErrProposalDropped', `raft proposal dropped: ${reason}`);
    this.reason = reason;
  }
}

/** ErrStepLocalMsg is returned by step() for a message type that must not come from a peer. */
export const errStepLocalMsg = new RaftError(
  'ErrStepLocalMsg', 'raft: cannot step raft local message');
/** ErrStepPeerNotFound is returned by step() for a response from a node not in the config. */
export const errStepPeerNotFound = new RaftError(
  'ErrStepPeerNotFound', 'raft: cannot step as peer not found');
/** ErrMalformedMessage is returned by step() for a message that fails validation. */
export function errMalformedMessage(why: string): RaftError {
  return new RaftError('ErrMalformedMessage', `raft: malformed message: ${why}`);
}

/** ErrCompacted: the requested index predates the last snapshot (storage). */
export const errCompacted = new RaftError(
  'ErrCompacted', 'requested index is unavailable due to compaction');
/** ErrSnapOutOfDate: the snapshot is older than the one the storage holds. */
export const errSnapOutOfDate = new RaftError(
  'ErrSnapOutOfDate', 'requested index is older than the existing snapshot');
/** ErrUnavailable: the requested entry is past the storage's last index. */
export const errUnavailable = new RaftError(
  'ErrUnavailable', 'requested entry at index is unavailable');
/** ErrSnapshotTemporarilyUnavailable: storage cannot produce a snapshot now; retry later. */
export const errSnapshotTemporarilyUnavailable = new RaftError(
  'ErrSnapshotTemporarilyUnavailable', 'snapshot is temporarily unavailable');
