import type { Message as RaftMessage } from '../../src/raft/index.js';
import type {
  LeaseGrantRequest, LeaseGrantResponse, LeaseRevokeRequest, LeaseRevokeResponse,
} from '../../src/api/lease-types.js';
import type { Member } from '../../src/cluster/membership.js';
import type {
  AlarmAction, AlarmMember, AlarmType, DiskFaultKind,
} from '../../src/alarms.js';
import type { LeaseCheckpointRequest, LeaseExpireRequest } from '../lease/messages.js';
import type { WriteRequest, WriteResponse } from '../../src/mvcc/types.js';
import type {
  AuthInfo, AuthRequest, AuthResponse, AuthStateJson,
} from '../../src/auth/store.js';

/** MemberPublishRequest announces a started member's name and client URLs (etcd: publish). */
export interface MemberPublishRequest {
  type: 'memberPublish';
  id: number;
  name: string;
  clientURLs: string[];
  /** grpcClientURLs: the member's gRPC client URLs (absent from members that predate it). */
  grpcClientURLs?: string[];
}

/** MemberUpdateRequest replaces a member's peer URLs (etcd: member update). */
export interface MemberUpdateRequest {
  type: 'memberUpdate';
  id: number;
  peerURLs: string[];
}

/** ProposalRequest is anything that goes through the log as a normal entry: KV writes,
 * lease changes and checkpoints, and the member attributes that are not Raft membership. */
export type ProposalRequest = WriteRequest | LeaseGrantRequest | LeaseRevokeRequest |
  LeaseCheckpointRequest | LeaseExpireRequest | MemberPublishRequest | MemberUpdateRequest |
  AuthRequest | AuthedRequest | AlarmEntryRequest;

/** AlarmEntryRequest is etcd's AlarmRequest ACTIVATE / DEACTIVATE as a log entry: applied on
 * every member, so every member knows every member's alarms (src/alarms.ts). */
export interface AlarmEntryRequest {
  type: 'alarm';
  action: 'ACTIVATE' | 'DEACTIVATE';
  memberId: number;
  alarm: AlarmType;
}

/** AlarmResponse answers an alarm request: the alarms listed (GET) or changed (ACTIVATE,
 * DEACTIVATE: none when nothing changed), as etcd. */
export interface AlarmResponse {
  type: 'alarm';
  alarms: AlarmMember[];
}

/** AuthedRequest is a KV write sent while auth is enabled, with its sender: the Raft node
 * checks the permissions again at apply time, against the auth state of that log position
 * (etcd's authApplierV3), so a permission revoked meanwhile is never bypassed. */
export interface AuthedRequest {
  type: 'authed';
  by: AuthInfo;
  req: WriteRequest;
}

/** MemberChangeResponse answers the membership changes once applied. */
export interface MemberChangeResponse {
  type: 'memberChange';
  /** member is the member added, removed, updated or promoted. */
  member?: Member;
  members: Member[];
}

/** ProposalResponse is the applied result of a ProposalRequest or a conf change. */
export type ProposalResponse = WriteResponse | LeaseGrantResponse | LeaseRevokeResponse |
  { type: 'leaseCheckpoint' } | { type: 'leaseExpire'; revoked: number } | MemberChangeResponse |
  AuthResponse | AlarmResponse;

/**
 * The Raft node's protocol. The Raft node runs the Raft core (src/raft) and the applier
 * (src/mvcc): proposals enter here, go to the WAL writer, commit, are applied in log order,
 * and their changes flow on to the shards and the watch hub. Raft messages to and from the
 * other members travel through the peer actor (actors/peer).
 */

/** RaftPropose proposes one write; the reply comes after it is committed and applied here. */
export interface RaftPropose {
  type: 'RaftPropose';
  /** req is the request; reqBytes the same already encoded with encodeRequest (the gateway's
   * hot path: the Raft node then puts the bytes into the entry without decoding them). */
  req?: ProposalRequest;
  reqBytes?: Uint8Array;
  /** capped: a NOSPACE alarm refuses this request (isCappedRequest), said by the sender that
   * encoded it (reqBytes); with `req` the node decides itself. */
  capped?: boolean;
}

/** RaftAlarm is etcd's AlarmRequest: list (GET), raise (ACTIVATE) or disarm (DEACTIVATE) an
 * alarm of a member. The alarms are the cluster's, replicated through the log (an
 * AlarmEntryRequest); GET answers from this member's applied state, with this member's own
 * NOSPACE added while a full disk keeps it from being recorded (docs/reliability.md). */
export interface RaftAlarm {
  type: 'RaftAlarm';
  action: AlarmAction;
  memberId: number;
  alarm: AlarmType;
  /** relayed: sent by another member's Raft node (a member that cannot write relays alarm
   * requests once, never onwards). */
  relayed?: boolean;
}

/** RaftAlarmResp: the alarms listed (GET) or changed (ACTIVATE / DEACTIVATE), as etcd. */
export interface RaftAlarmResp extends RaftProposeResp {
  response: AlarmResponse;
}

/** RaftReadIndex asks for a linearizable read point: the reply is the store revision once the
 * node has confirmed the leader's leadership (Raft §6.4) and applied up to the read index.
 * One ask serves every read the gateway gathered in one turn. */
export interface RaftReadIndex {
  type: 'RaftReadIndex';
}

/** readPointRegion names the shared region (src/runtime/system.ts SharedRegions) where the
 * Raft node publishes its linearizable read point while it is the cluster's only voter
 * (read-point.ts): a SharedCell (src/runtime/shared-cell.ts) of readPointFields fields —
 * revision, shardIndex, term, as in RaftReadIndexResp, and rewinds (how many times the node
 * took back entries applied ahead: ShardRewind). A gateway that reads it valid reads there,
 * with no RaftReadIndex ask. */
export const readPointRegion = 'raft-read-point';
export const readPointFields = 4;

/** RaftStatusReq asks for the node's status (maintenance/status, /health, metrics). */
export interface RaftStatusReq {
  type: 'RaftStatus';
}

/** RaftBarrier asks for nothing: its (empty) answer leaves on the channel to the asker after
 * every message the node sent there before it, so an actor that waits for it has received
 * every change the node applied before the ask arrived (the lease actor's reads). */
export interface RaftBarrier {
  type: 'RaftBarrier';
}

/** RaftStep delivers messages from other members (peer actor → Raft node, one per turn). */
export interface RaftStep {
  type: 'RaftStep';
  msgs: RaftMessage[];
}

/** RaftReport tells the core what the transport learned: members it could not reach
 * (reportUnreachable) and snapshots delivered or failed (reportSnapshot). */
export interface RaftReport {
  type: 'RaftReport';
  unreachable: number[];
  snapshots: { id: number; failed: boolean }[];
  /** removed: another member refused this one as removed from the cluster. */
  removed?: boolean;
}

/** RaftWatchInterest: the watch hub has (subscribed) or no longer has watchers. While
 * unsubscribed the Raft node sends it no changes; on subscribe it first sends WatchRecovered
 * with the current revision, so the hub knows where live events resume. */
export interface RaftWatchInterest {
  type: 'RaftWatchInterest';
  subscribed: boolean;
}

/** RaftMemberList lists the members (any member answers from its applied state). */
export interface RaftMemberList {
  type: 'RaftMemberList';
}

/** RaftMemberAdd adds a member (a learner when isLearner), answered once applied. */
export interface RaftMemberAdd {
  type: 'RaftMemberAdd';
  peerURLs: string[];
  isLearner: boolean;
}

/** RaftMemberRemove removes a member, answered once applied. */
export interface RaftMemberRemove {
  type: 'RaftMemberRemove';
  id: number;
}

/** RaftMemberUpdate replaces a member's peer URLs, answered once applied. */
export interface RaftMemberUpdate {
  type: 'RaftMemberUpdate';
  id: number;
  peerURLs: string[];
}

/** RaftMemberPromote promotes a learner that is in sync with the leader; a follower forwards
 * it to the leader (only the leader knows the learner's progress). */
export interface RaftMemberPromote {
  type: 'RaftMemberPromote';
  id: number;
}

/** RaftTransferLeader hands leadership to another voter (etcd's MoveLeader); only the
 * leader accepts it. Answered once the transferee leads. */
export interface RaftTransferLeader {
  type: 'RaftTransferLeader';
  to: number;
}

/** RaftPublish gives the client URLs the gateway really listens on (a port 0 resolved), to
 * publish to the cluster (gateway → Raft node, once serving). */
export interface RaftPublish {
  type: 'RaftPublish';
  clientURLs: string[];
  /** grpcClientURLs: the gRPC URLs, once the gRPC gateway listens (a later RaftPublish). */
  grpcClientURLs?: string[];
}

export type RaftMsg = RaftPropose | RaftReadIndex | RaftStatusReq | RaftBarrier | RaftStep |
  RaftReport |
  RaftWatchInterest | RaftMemberList | RaftMemberAdd | RaftMemberRemove | RaftMemberUpdate |
  RaftMemberPromote | RaftTransferLeader | RaftPublish | RaftAlarm;

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
  isLearner: boolean;
  leaderChanges: number;
  proposalsCommitted: number;
  proposalsApplied: number;
  proposalsPending: number;
  proposalsFailed: number;
  /** putTotal / deleteTotal / txnTotal count applied requests by kind (etcd_mvcc_*_total). */
  putTotal: number;
  deleteTotal: number;
  txnTotal: number;
  /** slowApplies: requests whose apply took longer than etcd's 100 ms warning threshold. */
  slowApplies: number;
  dbSizeBytes: number;
  keys: number;
  /** alarms: the active alarms (etcd_server_... has none; /health and metrics use it). */
  alarms: AlarmMember[];
  /** diskFault: why this member refuses writes after a failed disk write (src/alarms.ts),
   * with the error text writes are refused with; absent when it takes writes. */
  diskFault?: { kind: DiskFaultKind; message: string };
}

/** RaftMembersResp answers RaftMemberList and every membership change (the change's answer
 * comes from the apply of its entry, like any proposal's). */
export interface RaftMembersResp extends RaftProposeResp {
  response: MemberChangeResponse;
}

/** RaftApplied tells the gateway the revision this member has applied (Raft node → gateway,
 * in a cluster only: writes that entered through other members reach no local client, yet
 * serializable reads must see them). */
export interface RaftApplied {
  type: 'RaftApplied';
  revision: number;
  raftTerm: number;
}

/** AuthChanged tells the gateway what an applied auth request changed (Raft node → gateway,
 * on every member): the whole auth state when it changed (it is small), a simple token
 * assigned by an applied authenticate (etcd replicates simple tokens through the log), the
 * user whose tokens are void, or that every token is void (auth disabled). Sent also after a
 * restore, with the state. */
export interface AuthChanged {
  type: 'AuthChanged';
  state?: AuthStateJson;
  token?: { token: string; user: string };
  invalidate?: string;
  tokensCleared?: boolean;
}

/** RaftReplies maps each ask to its reply. */
export interface RaftReplies {
  RaftPropose: RaftProposeResp;
  RaftReadIndex: RaftReadIndexResp;
  RaftStatus: RaftStatusResp;
  RaftBarrier: null;
  RaftMemberList: RaftMembersResp;
  RaftMemberAdd: RaftMembersResp;
  RaftMemberRemove: RaftMembersResp;
  RaftMemberUpdate: RaftMembersResp;
  RaftMemberPromote: RaftMembersResp;
  RaftTransferLeader: { raftTerm: number };
  RaftAlarm: RaftAlarmResp;
}

/** RaftNodeConfig is the Raft node's start-up configuration. */
export interface RaftNodeConfig {
  /** memberId / clusterId: this member's identity for a brand-new data dir (a restarted
   * member takes both from its WAL). */
  memberId: number;
  clusterId: number;
  /** name and clientURLs are published to the cluster once the member runs (etcd). */
  name: string;
  clientURLs: string[];
  /** initialMembers: the founding members ('new'), or the members the cluster reported
   * when this member joined ('existing'); ignored on restart. */
  initialMembers: Member[];
  /** join: this member joins an existing cluster (no bootstrap entries of its own). */
  join: boolean;
  /** token is --initial-cluster-token (member ids of added members mix it in). */
  token: string;
  shardCount: number;
  heartbeatIntervalMs: number;
  electionTicks: number;
  snapshotCount: number;
  /** snapshotCatchUpEntries: entries kept in the log behind a snapshot (slow followers). */
  snapshotCatchUpEntries: number;
  /** strictReconfigCheck: refuse membership changes that could lose quorum (etcd's flag). */
  strictReconfigCheck: boolean;
  /** requestTimeoutMs: proposals and reads not answered by then fail (etcd's ReqTimeout). */
  requestTimeoutMs: number;
  logLevel: string;
  /** seed for the Raft core's randomized election timeouts. */
  seed: number;
  /** quotaBackendBytes: past this backend size (the shards' MVCC bytes, dbSize in
   * maintenance/status) the member raises NOSPACE (etcd's --quota-backend-bytes). */
  quotaBackendBytes?: number;
}
