/**
 * Typed errors of the Raft core, with etcd-raft's names and wording. Their codes are rows of
 * src/errors.ts (RAFT_*), all internal: a client never sees them as such (the shell answers a
 * dropped proposal as "no leader"). Assertion failures (bugs) are src/assert.ts.
 */
import { EtcdError, type ErrorCode } from '../errors.js';

/** RaftErrorCode is the code of one of the core's errors. */
export type RaftErrorCode = Extract<ErrorCode, `RAFT_${string}`>;

/** RaftError is the base class of the core's expected errors. */
export class RaftError extends EtcdError {
  declare readonly code: RaftErrorCode;
  constructor(code: RaftErrorCode, message?: string) {
    super(code, message);
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
    super('RAFT_PROPOSAL_DROPPED', `raft proposal dropped: ${reason}`);
    this.reason = reason;
  }
}

/** ErrStepLocalMsg is returned by step() for a message type that must not come from a peer. */
export const errStepLocalMsg = new RaftError('RAFT_STEP_LOCAL_MSG');
/** ErrStepPeerNotFound is returned by step() for a response from a node not in the config. */
export const errStepPeerNotFound = new RaftError('RAFT_STEP_PEER_NOT_FOUND');
/** ErrMalformedMessage is returned by step() for a message that fails validation. */
export function errMalformedMessage(why: string): RaftError {
  return new RaftError('RAFT_MALFORMED_MESSAGE', `raft: malformed message: ${why}`);
}

/** ErrCompacted: the requested index predates the last snapshot (storage). */
export const errCompacted = new RaftError('RAFT_COMPACTED');
/** ErrSnapOutOfDate: the snapshot is older than the one the storage holds. */
export const errSnapOutOfDate = new RaftError('RAFT_SNAP_OUT_OF_DATE');
/** ErrUnavailable: the requested entry is past the storage's last index. */
export const errUnavailable = new RaftError('RAFT_UNAVAILABLE');
/** ErrSnapshotTemporarilyUnavailable: storage cannot produce a snapshot now; retry later. */
export const errSnapshotTemporarilyUnavailable = new RaftError(
  'RAFT_SNAPSHOT_TEMPORARILY_UNAVAILABLE');
