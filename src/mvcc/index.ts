/**
 * The MVCC core: the Applier (the Raft thread's latest-state view that decides revisions and
 * txn outcomes), ShardStore (one partition's history), mergeRanges (the gateway's merge of
 * per-shard partial reads), shardOf (the partition function), request validation and the
 * typed errors (src/errors.ts). Pure: no I/O, no clock, no randomness. See docs/mvcc.md.
 */
export {
  Applier,
  compareKv,
  fillDeferredRead,
  isTxnReadOnly,
  type ApplierOptions,
  type DeferredRead,
  type ExecuteResult,
  type LeaseRevokeResult,
} from './applier.js';
/** The errors the MVCC core throws; they are defined with the vocabulary in src/errors.ts. */
export {
  EtcdError, ErrCompacted, ErrDuplicateKey, ErrEmptyKey, ErrFutureRev, ErrInvalidArgument,
  ErrKeyNotFound, ErrLeaseExists, ErrLeaseNotFound, ErrLeaseProvided, ErrSnapshotCorrupt,
  ErrTooManyOps, ErrValueProvided,
} from '../errors.js';
export { KeyIndex, tombstoneOf } from './key-index.js';
export { IdleRepack, type IdleRepackDeps } from './idle-repack.js';
export { inKeyRange, keyRangeOf, type KeyRange } from './key-range.js';
export { mergeRanges } from './merge.js';
export { OrderedMap } from './ordered-map.js';
export { partialRange, rangePlanOf, kvComparator, type RangePlan } from './range-plan.js';
export { initialRevision, noRevision, revision } from './revision.js';
export {
  latestOfSnapshot,
  ShardStore,
  type ShardStoreMemory,
  type ShardStoreStats,
} from './shard-store.js';
export {
  decodeShardSnapshot,
  encodeShardSnapshot,
  shardSnapshotFormat,
  shardSnapshotFormatV1,
  type ShardSnapshot,
  type ShardSnapshotV1,
  type SnapshotColumns,
} from './shard-snapshot.js';
export { KvColumns, RunCopier } from './kv-columns.js';
export { shardOf } from './shard-of.js';
export { ShardReads, type ReadVerdict, type ReadWaits, type Rewind } from './shard-reads.js';
export { repartitionSnapshots } from './repartition.js';
export * from './types.js';
export {
  validateDeleteRangeRequest,
  validatePutRequest,
  validateRangeRequest,
  validateTxnRequest,
  validateWriteRequest,
} from './validate.js';
