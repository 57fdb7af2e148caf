import type { ConfState } from '../../src/raft/index.js';
import { pack, unpack } from '../../src/runtime/codec.js';
import type { ProposalRequest } from './messages.js';

/**
 * proposal: what a normal Raft entry's data holds, and what a snapshot's body holds. Both
 * are persisted (WAL, snapshot files) and replicated, so their shape is a file format:
 * fields are short and only ever added.
 */

/** ProposalId identifies the proposer of an entry (member id, boot nonce, sequence), so that
 * only the node that proposed it answers the client. */
export interface ProposalId {
  m: number;
  b: number;
  n: number;
}

/** Proposal is a decoded entry: who proposed it and the request. */
export interface Proposal extends ProposalId {
  req: ProposalRequest;
}

/** proposalHeaderBytes: m (float64), b (int32), n (float64), then the msgpack request. */
const proposalHeaderBytes = 20;

/** encodeRequest encodes a request as it travels inside an entry. */
export function encodeRequest(req: ProposalRequest): Uint8Array {
  return pack(req);
}

/** encodeProposal frames an encoded request with its proposer's identity. */
export function encodeProposal(id: ProposalId, req: Uint8Array): Uint8Array {
  const out = new Uint8Array(proposalHeaderBytes + req.length);
  const v = new DataView(out.buffer);
  v.setFloat64(0, id.m);
  v.setInt32(8, id.b);
  v.setFloat64(12, id.n);
  out.set(req, proposalHeaderBytes);
  return out;
}

/** decodeProposal reads an entry written by encodeProposal. */
export function decodeProposal(data: Uint8Array): Proposal {
  const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
  return {
    m: v.getFloat64(0), b: v.getInt32(8), n: v.getFloat64(12),
    req: unpack<ProposalRequest>(data.subarray(proposalHeaderBytes)),
  };
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
