/**
 * The Raft core's public surface: RawNode, MemoryStorage, the message and entry types, the
 * conf change codec, the seeded generator and the typed errors. See docs/raft.md.
 */
export * from './types.js';
export { RawNode, type Peer } from './rawnode.js';
export { type RaftConfig, campaignTransfer } from './raft.js';
export { MemoryStorage, type Storage, emptySnapshot } from './storage.js';
export { entryBytes } from './entry-slab.js';
export { encodeConfChange, decodeConfChange } from './confchange.js';
export { seededRng, seededRng as mulberry32, randomInt } from './rand.js';
export { committedIndex, voteResult, quorumSize, type VoteResult } from './quorum.js';
export {
  RaftError, ErrProposalDropped, type DropReason, errCompacted, errSnapOutOfDate,
  errUnavailable, errSnapshotTemporarilyUnavailable, errStepLocalMsg, errStepPeerNotFound,
} from './errors.js';
