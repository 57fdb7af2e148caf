/**
 * The plain data that crosses the Raft core's boundary: log entries, messages, hard and soft
 * state, snapshots and the Ready batch. Everything is a plain object of numbers, strings,
 * booleans, arrays and Uint8Array, so the transport and the WAL can msgpack it unchanged.
 * Names follow etcd-io/raft's raftpb so this file reads beside raft.proto.
 */
import type { Index, MemberId, Term } from '../types.js';

/** None is the MemberId meaning "no node" (no leader, no vote), as etcd-raft's None. */
export const None = 0 as MemberId;

/**
 * EntryType tells the application how to apply an entry's data. Values are raftpb's numbers
 * (EntryNormal = 0, EntryConfChange = 1), so the WAL stores them as they are.
 */
export const EntryNormal = 0;
export const EntryConfChange = 1;
export type EntryType = typeof EntryNormal | typeof EntryConfChange;

/** Entry is one log entry. An EntryNormal with empty data is the no-op a new leader appends. */
export interface Entry {
  term: Term;
  index: Index;
  type: EntryType;
  data: Uint8Array;
}

/**
 * MessageType values are raftpb.MessageType's numbers under the same names (MsgHup = 0 …
 * MsgPreVoteResp = 18): compact on the wire. messageTypeName gives the name for logs.
 */
export const MsgHup = 0;
export const MsgBeat = 1;
export const MsgProp = 2;
export const MsgApp = 3;
export const MsgAppResp = 4;
export const MsgVote = 5;
export const MsgVoteResp = 6;
export const MsgSnap = 7;
export const MsgHeartbeat = 8;
export const MsgHeartbeatResp = 9;
export const MsgUnreachable = 10;
export const MsgSnapStatus = 11;
export const MsgCheckQuorum = 12;
export const MsgTransferLeader = 13;
export const MsgTimeoutNow = 14;
export const MsgReadIndex = 15;
export const MsgReadIndexResp = 16;
export const MsgPreVote = 17;
export const MsgPreVoteResp = 18;
export type MessageType =
  typeof MsgHup | typeof MsgBeat | typeof MsgProp | typeof MsgApp | typeof MsgAppResp |
  typeof MsgVote | typeof MsgVoteResp | typeof MsgSnap | typeof MsgHeartbeat |
  typeof MsgHeartbeatResp | typeof MsgUnreachable | typeof MsgSnapStatus | typeof MsgCheckQuorum |
  typeof MsgTransferLeader | typeof MsgTimeoutNow | typeof MsgReadIndex | typeof MsgReadIndexResp |
  typeof MsgPreVote | typeof MsgPreVoteResp;

const messageTypeNames: readonly string[] = [
  'MsgHup', 'MsgBeat', 'MsgProp', 'MsgApp', 'MsgAppResp', 'MsgVote', 'MsgVoteResp', 'MsgSnap',
  'MsgHeartbeat', 'MsgHeartbeatResp', 'MsgUnreachable', 'MsgSnapStatus', 'MsgCheckQuorum',
  'MsgTransferLeader', 'MsgTimeoutNow', 'MsgReadIndex', 'MsgReadIndexResp', 'MsgPreVote',
  'MsgPreVoteResp',
];

/** messageTypeName returns etcd-raft's name of a message type ("MsgApp"). */
export function messageTypeName(t: number): string {
  return messageTypeNames[t] ?? `MsgUnknown(${t})`;
}

/** isMessageType reports whether t is a known message type number. */
export function isMessageType(t: unknown): t is MessageType {
  return typeof t === 'number' && Number.isInteger(t) && t >= 0 && t < messageTypeNames.length;
}

/**
 * Message is one Raft message. Fields mean what they mean in etcd-raft:
 * - MsgApp: `index`/`logTerm` are the entry preceding `entries` (Raft §5.3 prevLogIndex/Term).
 * - MsgAppResp: `index` is the follower's last matching index; on `reject`, `rejectHint` and
 *   `logTerm` are the follower's guess of where the logs diverge (fast back-off).
 * - MsgVote/MsgPreVote: `index`/`logTerm` are the candidate's last entry (Raft §5.4.1).
 * - MsgHeartbeat/MsgHeartbeatResp/MsgReadIndex/MsgReadIndexResp: `context` is the read request
 *   context; MsgVote/MsgPreVote carry `campaignTransfer` there for a leader transfer.
 * - MsgReadIndexResp: `index` is the read index.
 */
export interface Message {
  type: MessageType;
  to: MemberId;
  from: MemberId;
  term: Term;
  logTerm: Term;
  index: Index;
  entries: Entry[];
  commit: Index;
  reject: boolean;
  rejectHint: Index;
  snapshot?: Snapshot;
  context?: Uint8Array;
}

/** HardState is what must be durable before messages that depend on it leave (Raft §5.1). */
export interface HardState {
  term: Term;
  vote: MemberId;
  commit: Index;
}

/** StateType is a node's role. StatePreCandidate is the pre-vote phase (thesis §9.6). */
export type StateType = 'StateFollower' | 'StateCandidate' | 'StateLeader' | 'StatePreCandidate';

/** SoftState is volatile state worth reporting: the leader and this node's role. */
export interface SoftState {
  lead: MemberId;
  raftState: StateType;
}

/** ConfState is the membership: voters count toward quorums, learners only receive the log. */
export interface ConfState {
  voters: MemberId[];
  learners: MemberId[];
}

/** SnapshotMetadata names the last entry a snapshot covers and the membership at that entry. */
export interface SnapshotMetadata {
  confState: ConfState;
  index: Index;
  term: Term;
}

/** Snapshot is the application's state at `metadata.index`; `data` is opaque to Raft. */
export interface Snapshot {
  data: Uint8Array;
  metadata: SnapshotMetadata;
}

/**
 * ConfChangeType is a single-server membership change (thesis §4.1), numbered as raftpb's.
 * AddNode on a learner promotes it; AddLearnerNode on a voter demotes it.
 */
export const ConfChangeAddNode = 0;
export const ConfChangeRemoveNode = 1;
export const ConfChangeAddLearnerNode = 3;
export type ConfChangeType =
  | typeof ConfChangeAddNode | typeof ConfChangeRemoveNode | typeof ConfChangeAddLearnerNode;

/** confChangeTypeName names a ConfChangeType for logs. */
export function confChangeTypeName(t: ConfChangeType): string {
  return t === ConfChangeAddNode ? 'AddNode' : t === ConfChangeRemoveNode ? 'RemoveNode'
    : 'AddLearnerNode';
}

/** ConfChange is the payload of an EntryConfChange; `context` is opaque to Raft. */
export interface ConfChange {
  type: ConfChangeType;
  nodeId: MemberId;
  context?: Uint8Array;
}

/** ReadState answers a readIndex request: reads are linearizable once applied ≥ index. */
export interface ReadState {
  index: Index;
  requestCtx: Uint8Array;
}

/**
 * Ready is a batch of work for the shell (see docs/raft.md, "Ready/advance contract"):
 * persist `entries`, `hardState` and `snapshot`, send `messages`, apply `committedEntries`,
 * then call `advance`. `committedEntries` only holds entries already stable on this node.
 */
export interface Ready {
  softState?: SoftState;
  hardState?: HardState;
  readStates: ReadState[];
  entries: Entry[];
  snapshot?: Snapshot;
  committedEntries: Entry[];
  messages: Message[];
  mustSync: boolean;
}

/** ProgressStateType is the leader's mode for replicating to one follower. */
export type ProgressStateType = 'StateProbe' | 'StateReplicate' | 'StateSnapshot';

/** ProgressStatus is a read-only view of one follower's Progress, for status(). */
export interface ProgressStatus {
  match: Index;
  next: Index;
  state: ProgressStateType;
  isLearner: boolean;
  recentActive: boolean;
  pendingSnapshot: Index;
  inflight: number;
}

/** Status is a snapshot of a node's state for operators and tests. */
export interface Status {
  id: MemberId;
  term: Term;
  vote: MemberId;
  commit: Index;
  applied: Index;
  lead: MemberId;
  raftState: StateType;
  leadTransferee: MemberId;
  config: ConfState;
  /** progress is only set on the leader; keyed by member id. */
  progress?: Record<number, ProgressStatus>;
}

/** emptyMessage returns a Message of `type` with every optional-looking field zeroed. */
export function emptyMessage(type: MessageType): Message {
  return {
    type, to: None, from: None, term: 0 as Term, logTerm: 0 as Term, index: 0 as Index,
    entries: [], commit: 0 as Index, reject: false, rejectHint: 0 as Index,
  };
}

/** isLocalMsg reports message types that never cross the network. */
export function isLocalMsg(t: MessageType): boolean {
  return t === MsgHup || t === MsgBeat || t === MsgUnreachable || t === MsgSnapStatus
    || t === MsgCheckQuorum;
}

/** isResponseMsg reports message types that answer a request (etcd-raft's IsResponseMsg). */
export function isResponseMsg(t: MessageType): boolean {
  return t === MsgAppResp || t === MsgVoteResp || t === MsgHeartbeatResp
    || t === MsgUnreachable || t === MsgPreVoteResp;
}
