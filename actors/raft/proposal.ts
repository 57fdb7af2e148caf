import type { ConfState } from '../../src/raft/index.js';
import { pack, unpack } from '../../src/runtime/codec.js';
import type { ProposalRequest } from './messages.js';

/**
 * proposal: what a normal Raft entry's data holds, and what a snapshot's body holds. Both
 * are persisted (WAL, snapshot files) and replicated, so their shape is a file format:
 * fields are short and only ever added.
 */

/** Proposal is one client write: m/b/n identify the proposer (member id, boot nonce,
 * sequence) so that only the node that proposed it answers the client. */
export interface Proposal {
  m: number;
  b: number;
  n: number;
  req: ProposalRequest;
}

export function encodeProposal(p: Proposal): Uint8Array {
  return pack(p);
}

export function decodeProposal(data: Uint8Array): Proposal {
  return unpack<Proposal>(data);
}

/** SnapshotBody is the application state at a snapshot's index: the store's revisions, the
 * leases that exist, the membership, and one dump per shard (msgpack of ShardStore). */
export interface SnapshotBody {
  revision: number;
  compactRevision: number;
  /** leases: every granted lease with its TTL in seconds. */
  leases: { id: number; ttl: number }[];
  confState: ConfState;
  shards: Uint8Array[];
}
