import type { Bytes, LeaseId, Revision } from '../types.js';

/**
 * The internal form of etcd's KV requests and responses (etcdserverpb), shared by the
 * gateway codecs (src/api), the applier and the shards (src/mvcc). Keys and values are
 * binary strings (see Bytes); 64-bit integers are JS numbers (checked safe at the edges);
 * optional fields are omitted rather than zero, mirroring protobuf's defaults.
 */

/** KeyValue is one version of a key, as etcd's mvccpb.KeyValue. */
export interface KeyValue {
  key: Bytes;
  createRevision: Revision;
  modRevision: Revision;
  /** version counts puts since the key's creation (1 after the first put); 0 never stored. */
  version: number;
  value: Bytes;
  /** lease is 0 when the key has no lease. */
  lease: LeaseId;
}

export type SortOrder = 'NONE' | 'ASCEND' | 'DESCEND';
export type SortTarget = 'KEY' | 'VERSION' | 'CREATE' | 'MOD' | 'VALUE';

/** RangeRequest selects [key, rangeEnd); rangeEnd undefined means the single key, "\0" means
 * every key ≥ key. */
export interface RangeRequest {
  type: 'range';
  key: Bytes;
  rangeEnd?: Bytes;
  /** limit 0 means no limit. */
  limit?: number;
  /** revision 0 (or undefined) means the latest revision. */
  revision?: number;
  sortOrder?: SortOrder;
  sortTarget?: SortTarget;
  serializable?: boolean;
  keysOnly?: boolean;
  countOnly?: boolean;
  minModRevision?: number;
  maxModRevision?: number;
  minCreateRevision?: number;
  maxCreateRevision?: number;
  /** uncounted: the caller reads no `count` (MyEtcd's own paging over every key: snapshot,
   * hash), so a scan stops as soon as it has the answer's keys and `count` is only how many
   * it saw. No API decoder sets it: a client always gets etcd's count. */
  uncounted?: boolean;
}

export interface PutRequest {
  type: 'put';
  key: Bytes;
  value: Bytes;
  lease?: number;
  prevKv?: boolean;
  ignoreValue?: boolean;
  ignoreLease?: boolean;
}

export interface DeleteRangeRequest {
  type: 'deleteRange';
  key: Bytes;
  rangeEnd?: Bytes;
  prevKv?: boolean;
}

export type CompareTarget = 'VERSION' | 'CREATE' | 'MOD' | 'VALUE' | 'LEASE';
export type CompareResult = 'EQUAL' | 'GREATER' | 'LESS' | 'NOT_EQUAL';

/** Compare is one txn guard; exactly the field named by target is meaningful. */
export interface Compare {
  key: Bytes;
  rangeEnd?: Bytes;
  target: CompareTarget;
  result: CompareResult;
  version?: number;
  createRevision?: number;
  modRevision?: number;
  value?: Bytes;
  lease?: number;
}

export interface TxnRequest {
  type: 'txn';
  compare: Compare[];
  success: RequestOp[];
  failure: RequestOp[];
}

/** RequestOp is one operation inside a txn (etcd 3.3+ allows nested txns). */
export type RequestOp = RangeRequest | PutRequest | DeleteRangeRequest | TxnRequest;

export interface CompactionRequest {
  type: 'compaction';
  revision: number;
  physical?: boolean;
}

/** WriteRequest is what goes through the Raft log to the applier. */
export type WriteRequest = PutRequest | DeleteRangeRequest | TxnRequest | CompactionRequest;

export interface RangeResponse {
  type: 'range';
  kvs: KeyValue[];
  more: boolean;
  count: number;
}

export interface PutResponse {
  type: 'put';
  prevKv?: KeyValue;
}

export interface DeleteRangeResponse {
  type: 'deleteRange';
  deleted: number;
  prevKvs?: KeyValue[];
}

export interface TxnResponse {
  type: 'txn';
  succeeded: boolean;
  responses: ResponseOp[];
}

export interface CompactionResponse {
  type: 'compaction';
}

export type ResponseOp = RangeResponse | PutResponse | DeleteRangeResponse | TxnResponse;
export type WriteResponse = PutResponse | DeleteRangeResponse | TxnResponse | CompactionResponse;

/** ResponseHeader is etcd's header; the gateway fills clusterId/memberId/raftTerm. */
export interface ResponseHeader {
  clusterId: number;
  memberId: number;
  revision: Revision;
  raftTerm: number;
}

/**
 * Change is one key written at a revision: a put (the new KeyValue) or a tombstone.
 * The applier produces the changes of each write transaction in order; shards append them
 * to their history and the watch hub turns them into events.
 */
export interface Change {
  kind: 'put' | 'delete';
  /** kv is the new version for a put; for a delete, key + modRevision (the tombstone's
   * revision) with other fields zero. */
  kv: KeyValue;
  /** prevKv is the version this change replaced, when one existed. */
  prevKv?: KeyValue;
}

/**
 * SharedValues says which of a revision's changes left their values in another store's
 * value arena (the applier's, shared memory) instead of carrying them: change j's value is
 * len[j] bytes at at[j] there, or the change's own when at[j] is -1.
 */
export interface SharedValues {
  at: number[];
  len: number[];
}

/** KeyValueSpan is a key-value as a store's columns hold it: its numbers, and its value as
 * bytes [valueAt, valueAt + valueLen) of `value` (a view of the store's memory: read it at
 * once, keep nothing). */
export interface KeyValueSpan {
  key: Bytes;
  createRevision: number;
  modRevision: number;
  version: number;
  lease: number;
  value: Uint8Array;
  valueAt: number;
  valueLen: number;
}
