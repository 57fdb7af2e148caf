/**
 * types: what the client SDK returns. Keys and values are Buffers (etcd keys are bytes);
 * revisions, versions and counts are numbers (safe up to 2^53); lease, member and cluster ids
 * are decimal strings, because etcd draws them from the whole int64 range.
 */

/** Bytesish is what the SDK accepts as a key or value: text (UTF-8) or bytes. */
export type Bytesish = string | Uint8Array;

/** ResponseHeader is etcd's response header. */
export interface ResponseHeader {
  clusterId: string;
  memberId: string;
  revision: number;
  raftTerm: number;
}

/** KeyValue is one key's state at a revision. */
export interface KeyValue {
  key: Buffer;
  value: Buffer;
  createRevision: number;
  modRevision: number;
  version: number;
  /** lease is the attached lease id ('0' for none). */
  lease: string;
}

/** RangeResult is the answer to get(). */
export interface RangeResult {
  header: ResponseHeader;
  kvs: KeyValue[];
  more: boolean;
  count: number;
}

/** PutResult is the answer to put(). */
export interface PutResult {
  header: ResponseHeader;
  prevKv?: KeyValue;
}

/** DeleteResult is the answer to delete(). */
export interface DeleteResult {
  header: ResponseHeader;
  deleted: number;
  prevKvs: KeyValue[];
}

/** TxnOpResult is one operation's result inside a txn. */
export type TxnOpResult =
  | { type: 'range'; range: RangeResult }
  | { type: 'put'; put: PutResult }
  | { type: 'delete'; delete: DeleteResult }
  | { type: 'txn'; txn: TxnResult };

/** TxnResult is the answer to txn().commit(). */
export interface TxnResult {
  header: ResponseHeader;
  succeeded: boolean;
  responses: TxnOpResult[];
}

/** StatusResult is maintenance/status. */
export interface StatusResult {
  header: ResponseHeader;
  version: string;
  dbSize: number;
  leader: string;
  raftIndex: number;
  raftTerm: number;
  raftAppliedIndex: number;
  dbSizeInUse: number;
  isLearner: boolean;
  errors: string[];
}

/** Member is one cluster member (etcd's Member); its id is a uint64 as a decimal string. */
export interface Member {
  id: string;
  /** name is empty while an added member has not started. */
  name: string;
  peerURLs: string[];
  clientURLs: string[];
  isLearner: boolean;
}

/** MemberListResult is cluster/member/list (and remove, update, promote: the members after). */
export interface MemberListResult {
  header: ResponseHeader;
  members: Member[];
}

/** MemberAddResult is cluster/member/add: the new member and the members after. */
export interface MemberAddResult {
  header: ResponseHeader;
  member: Member;
  members: Member[];
}

/** LeaseGrantResult is lease/grant. */
export interface LeaseGrantResult {
  header: ResponseHeader;
  id: string;
  ttl: number;
}

/** LeaseKeepAliveResult is one keep-alive answer; ttl 0 means the lease is gone. */
export interface LeaseKeepAliveResult {
  header: ResponseHeader;
  id: string;
  ttl: number;
}

/** LeaseTimeToLiveResult is lease/timetolive; ttl -1 means expired or unknown. */
export interface LeaseTimeToLiveResult {
  header: ResponseHeader;
  id: string;
  ttl: number;
  grantedTtl: number;
  keys: Buffer[];
}

/** WatchEvent is one change. */
export interface WatchEvent {
  type: 'PUT' | 'DELETE';
  kv: KeyValue;
  prevKv?: KeyValue;
}

/** WatchResponse is one batch of events from a watch. */
export interface WatchResponse {
  header: ResponseHeader;
  watchId: string;
  events: WatchEvent[];
}

/** SortOrder and SortTarget are etcd's range sort options. */
export type SortOrder = 'NONE' | 'ASCEND' | 'DESCEND';
export type SortTarget = 'KEY' | 'VERSION' | 'CREATE' | 'MOD' | 'VALUE';

/** GetOptions are range options (etcd's RangeRequest). */
export interface GetOptions {
  /** prefix reads every key starting with key. */
  prefix?: boolean;
  /** fromKey reads every key ≥ key. */
  fromKey?: boolean;
  /** rangeEnd reads [key, rangeEnd). */
  rangeEnd?: Bytesish;
  revision?: number;
  limit?: number;
  keysOnly?: boolean;
  countOnly?: boolean;
  serializable?: boolean;
  sortOrder?: SortOrder;
  sortTarget?: SortTarget;
  minModRevision?: number;
  maxModRevision?: number;
  minCreateRevision?: number;
  maxCreateRevision?: number;
}

/** PutOptions are put options. */
export interface PutOptions {
  /** lease attaches the key to a lease (decimal string or number). */
  lease?: string | number | bigint;
  prevKv?: boolean;
  ignoreValue?: boolean;
  ignoreLease?: boolean;
}

/** DeleteOptions are delete options. */
export interface DeleteOptions {
  prefix?: boolean;
  fromKey?: boolean;
  rangeEnd?: Bytesish;
  prevKv?: boolean;
}

/** WatchOptions are watch options. */
export interface WatchOptions {
  prefix?: boolean;
  fromKey?: boolean;
  rangeEnd?: Bytesish;
  /** startRevision replays history from this revision (inclusive). */
  startRevision?: number;
  prevKv?: boolean;
  /** filters drop event types: 'NOPUT' and/or 'NODELETE'. */
  filters?: Array<'NOPUT' | 'NODELETE'>;
  progressNotify?: boolean;
  signal?: AbortSignal;
}
