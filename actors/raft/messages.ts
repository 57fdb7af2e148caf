import type { Message as RaftMessage } from '../../src/raft/index.js';
import type {
  LeaseGrantRequest, LeaseGrantResponse, LeaseRevokeRequest, LeaseRevokeResponse,
} from '../../src/api/lease-types.js';
import type { WriteRequest, WriteResponse } from '../../src/mvcc/types.js';

/** ProposalRequest is anything that goes through the log: KV writes and lease changes. */
export type ProposalRequest = WriteRequest | LeaseGrantRequest | LeaseRevokeRequest;

/** ProposalResponse is the applied result of a ProposalRequest. */
export type ProposalResponse = WriteResponse | LeaseGrantResponse | LeaseRevokeResponse;

/**
 * The Raft node's protocol. The Raft node runs the Raft core (src/raft) and the applier
 * (src/mvcc): proposals enter here, go to the WAL writer, commit, are applied in log order,
 * and their changes flow on to the shards and the watch hub.
 */

/** RaftPropose proposes one write; the reply comes after it is committed and applied. */
export interface RaftPropose {
  type: 'RaftPropose';
  /** req is the request; reqBytes the same already encoded with encodeRequest (the gateway's
   * hot path: the Raft node then puts the bytes into the entry without decoding them). */
  req?: ProposalRequest;
  reqBytes?: Uint8Array;
}

/** RaftReadIndex asks for a linearizable read point: the reply is the store revision once the
 * node has confirmed its leadership (Raft §6.4) and applied up to the read index. One ask
 * serves every read the gateway gathered in one turn. */
export interface RaftReadIndex {
  type: 'RaftReadIndex';
}

/** RaftStatusReq asks for the node's status (maintenance/status, /health, metrics). */
export interface RaftStatusReq {
  type: 'RaftStatus';
}

/** RaftStep delivers a message from a peer node (cluster transport). */
export interface RaftStep {
  type: 'RaftStep';
  msg: RaftMessage;
}

/** RaftWatchInterest: the watch hub has (subscribed) or no longer has watchers. While
 * unsubscribed the Raft node sends it no changes; on subscribe it first sends WatchRecovered
 * with the current revision, so the hub knows where live events resume. */
export interface RaftWatchInterest {
  type: 'RaftWatchInterest';
  subscribed: boolean;
}

export type RaftMsg = RaftPropose | RaftReadIndex | RaftStatusReq | RaftStep | RaftWatchInterest;

/** RaftProposeResp is the applied result with the header fields Raft knows. */
export interface RaftProposeResp {
  revision: number;
  raftTerm: number;
  response: ProposalResponse;
}

/** RaftReadIndexResp: read at `revision`; shards must have applied it (waitRevision). */
export interface RaftReadIndexResp {
  revision: number;
  raftTerm: number;
  /** shardIndex: the Raft index of the last ShardApply sent; shards wait for it. */
  shardIndex: number;
}

/** RaftStatusResp mirrors what etcd's maintenance Status reports, plus counters. */
export interface RaftStatusResp {
  memberId: number;
  clusterId: number;
  leader: number;
  raftTerm: number;
  raftIndex: number;
  raftAppliedIndex: number;
  revision: number;
  compactRevision: number;
  isLeader: boolean;
  leaderChanges: number;
  proposalsCommitted: number;
  proposalsApplied: number;
  proposalsPending: number;
  proposalsFailed: number;
  /** putTotal / deleteTotal / txnTotal count applied requests by kind (etcd_mvcc_*_total). */
  putTotal: number;
  deleteTotal: number;
  txnTotal: number;
  dbSizeBytes: number;
  keys: number;
}

/** RaftReplies maps each ask to its reply. */
export interface RaftReplies {
  RaftPropose: RaftProposeResp;
  RaftReadIndex: RaftReadIndexResp;
  RaftStatus: RaftStatusResp;
}

/** RaftConfig is the Raft node's start-up configuration. */
export interface RaftNodeConfig {
  memberId: number;
  clusterId: number;
  shardCount: number;
  heartbeatIntervalMs: number;
  electionTicks: number;
  snapshotCount: number;
  logLevel: string;
  /** seed for the Raft core's randomized election timeouts. */
  seed: number;
}
