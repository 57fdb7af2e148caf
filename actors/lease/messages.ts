import type {
  LeaseGrantRequest, LeaseGrantResponse, LeaseRevokeRequest, LeaseRevokeResponse,
} from '../../src/api/lease-types.js';
import type { Bytes } from '../../src/types.js';

/**
 * The lease actor's protocol. Which leases exist and which keys they hold is replicated: it
 * changes only through the Raft log (the applier's grantLease / revokeLease and puts), and
 * the Raft node reports each applied change here. Expiry timing is this actor's: on the
 * leader it tracks deadlines and, when a lease expires, proposes its revocation to Raft.
 */

// ---- From the gateway (asks) ----

/** LeaseGrant: validated and given an id here, then forwarded to the Raft node as
 * RaftPropose{leaseGrant}; the Raft node answers the gateway directly (RaftProposeResp with
 * response LeaseGrantResponse). */
export interface LeaseGrant {
  type: 'LeaseGrant';
  /** id 0 asks for a generated id. */
  id: number;
  ttlSeconds: number;
}

/** LeaseRevoke is forwarded to the Raft node as RaftPropose{leaseRevoke}; the Raft node
 * answers the gateway (RaftProposeResp with LeaseRevokeResponse, or ErrLeaseNotFound). */
export interface LeaseRevoke {
  type: 'LeaseRevoke';
  id: number;
}

/** LeaseKeepAlive renews once (leader only) → LeaseKeepAliveResp. */
export interface LeaseKeepAlive {
  type: 'LeaseKeepAlive';
  id: number;
}

/** LeaseTimeToLive → LeaseTimeToLiveResp. */
export interface LeaseTimeToLive {
  type: 'LeaseTimeToLive';
  id: number;
  keys: boolean;
}

/** LeaseLeases lists every lease → LeaseLeasesResp. */
export interface LeaseLeases {
  type: 'LeaseLeases';
}

// ---- From the Raft node (sends, in log order) ----

/** LeaseRecovered: every lease after recovery (snapshot + replay), once at boot before any
 * other lease message, and again after installing a snapshot (replaces all state). */
export interface LeaseRecovered {
  type: 'LeaseRecovered';
  /** remainingSeconds: the lease's last checkpoint, if any (LeaseCheckpointed). */
  leases: { id: number; ttlSeconds: number; keys: Bytes[]; remainingSeconds?: number }[];
}

/** LeaseGranted: a leaseGrant was applied. */
export interface LeaseGranted {
  type: 'LeaseGranted';
  id: number;
  ttlSeconds: number;
}

/** LeaseRevoked: a leaseRevoke was applied (its keys' deletions went to shards and watch). */
export interface LeaseRevoked {
  type: 'LeaseRevoked';
  id: number;
}

/** LeaseKeysChanged: keys that joined or left a lease in the applied entries of one Ready
 * (src/lease leaseKeyUpdates(changes) computes them from the changes). */
export interface LeaseKeysChanged {
  type: 'LeaseKeysChanged';
  attach: [number, Bytes][];
  detach: [number, Bytes][];
}

/** LeaderChanged: this node became leader (promote: every lease gets its full TTL) or
 * stopped being leader (demote: no expiry). Sent on every change of leadership, and once at
 * boot after LeaseRecovered. */
export interface LeaderChanged {
  type: 'LeaderChanged';
  isLeader: boolean;
  /** leader: the leader's member id (0: none); a follower forwards keep-alives to it. */
  leader?: number;
}

/** LeaseCheckpointed: a leaseCheckpoint was applied — the leader's remaining TTLs, which a
 * new leader starts from instead of the full TTL (etcd 3.6). 0 clears a checkpoint. */
export interface LeaseCheckpointed {
  type: 'LeaseCheckpointed';
  checkpoints: { id: number; remainingSeconds: number }[];
}

export type LeaseMsg = LeaseGrant | LeaseRevoke | LeaseKeepAlive | LeaseTimeToLive |
  LeaseLeases | LeaseRecovered | LeaseGranted | LeaseRevoked | LeaseKeysChanged | LeaderChanged |
  LeaseCheckpointed;

// ---- Replies ----

export interface LeaseKeepAliveResp {
  id: number;
  /** ttlSeconds 0: the lease does not exist (etcd answers 200 with TTL omitted). */
  ttlSeconds: number;
}

export interface LeaseTimeToLiveResp {
  id: number;
  /** ttlSeconds -1: the lease does not exist (etcd answers 200 with TTL -1). */
  ttlSeconds: number;
  grantedTtlSeconds: number;
  keys?: Bytes[];
}

export interface LeaseLeasesResp {
  ids: number[];
}

/** LeaseProposeResp is the Raft node's RaftProposeResp for a lease write. */
export interface LeaseProposeResp {
  revision: number;
  raftTerm: number;
  response: LeaseGrantResponse | LeaseRevokeResponse;
}

/** LeaseReplies maps each ask to its reply. LeaseGrant and LeaseRevoke are answered by the
 * Raft node (forwarded proposals). */
export interface LeaseReplies {
  LeaseGrant: LeaseProposeResp;
  LeaseRevoke: LeaseProposeResp;
  LeaseKeepAlive: LeaseKeepAliveResp;
  LeaseTimeToLive: LeaseTimeToLiveResp;
  LeaseLeases: LeaseLeasesResp;
}

// ---- To the Raft node ----

/**
 * LeaseRaftPropose is the Raft node's RaftPropose with the two WriteRequest variants the
 * lead adds (src/api/lease-types.ts): leaseGrant {id ≠ 0, ttlSeconds ≥ minimum} and
 * leaseRevoke {id}. The applier executes leaseGrant as grantLease(id, ttlSeconds)
 * (ErrLeaseExists if taken; the revision does not change) and leaseRevoke as revokeLease(id)
 * (ErrLeaseNotFound if missing; the lease's keys are deleted in one new revision, or none
 * when it has no keys), and answers with LeaseGrantResponse / LeaseRevokeResponse.
 */
export interface LeaseRaftPropose {
  type: 'RaftPropose';
  req: LeaseGrantRequest | LeaseRevokeRequest | LeaseCheckpointRequest | LeaseExpireRequest;
}

/** LeaseCheckpointRequest records remaining TTLs in the log (the leader's lease actor, every
 * checkpointIntervalMs, and to clear a checkpoint when a checkpointed lease is kept alive). */
export interface LeaseCheckpointRequest {
  type: 'leaseCheckpoint';
  checkpoints: { id: number; remainingSeconds: number }[];
}

/** LeaseExpireRequest revokes leases the leader found expired, many per Raft entry (at most
 * leaseRevokeBatchMax). Applied exactly as one leaseRevoke per id, in order, each its own
 * revision when the lease has keys (etcd: one LeaseRevoke txn per lease); ids no longer
 * granted are skipped, as their single revoke would change nothing (lease not found). */
export interface LeaseExpireRequest {
  type: 'leaseExpire';
  ids: number[];
}

/** LeaseConfig is the lease thread's start-up configuration. */
export interface LeaseConfig {
  logLevel: string;
  /** seed for lease ids (the shell mixes in the member id and boot time). */
  seed: number;
  /** checkIntervalMs overrides leaseCheckIntervalMs (tests). */
  checkIntervalMs?: number;
  /** minTtlSeconds overrides leaseTtlSecondsMin (tests). */
  minTtlSeconds?: number;
  /** checkpointIntervalMs: how often the leader checkpoints remaining TTLs (0: never). */
  checkpointIntervalMs?: number;
  /** raftActor names the Raft node (default 'raft'). */
  raftActor?: string;
  /** requestTimeoutMs: how long a follower's keep-alive or time-to-live waits for a leader
   * to relay it to (etcd's waitLeader within its request timeout; default 5 s). */
  requestTimeoutMs?: number;
}
