import type { Change, RangeRequest, RangeResponse } from '../../src/mvcc/types.js';

/**
 * The storage shard's protocol. A shard owns the keys that hash to it (shardOf) and keeps
 * their MVCC history; the Raft node feeds it the changes of every applied revision, in log
 * order, and the gateway reads from it.
 */

/** AppliedRevision is one write transaction's changes for this shard (possibly none: every
 * shard still advances to the revision, so all shards agree on the current revision). */
export interface AppliedRevision {
  revision: number;
  changes: Change[];
  /** subs: each change's sub revision (its place in the whole transaction), sent only when
   * the transaction's changes went to more than one shard; absent: 0, 1, 2 ... */
  subs?: number[];
  /** compact, when set, is a compaction to this revision applied after the changes. */
  compact?: number;
}

/** ShardApply carries applied revisions in log order (Raft node → shard, send). */
export interface ShardApply {
  type: 'ShardApply';
  revisions: AppliedRevision[];
  /** index is the Raft log index this batch brings the shard to. A compaction changes the
   * store without a new revision, so reads wait on the index too (ShardRange.waitIndex). */
  index: number;
}

/** ShardRange reads at a revision. The shard first waits until it has applied
 * waitRevision (the revision the Raft node had applied when the read was admitted), so a
 * linearizable read never runs against a shard that lags behind the read index. */
export interface ShardRange {
  type: 'ShardRange';
  req: RangeRequest;
  /** atRevision is the revision to read at (the request's, or the read index's). */
  atRevision: number;
  waitRevision: number;
  /** waitIndex: the Raft index of the last ShardApply sent when the read was admitted; the
   * shard waits for it as well (0: no wait). */
  waitIndex?: number;
  /** rewinds: the read point's count of rewinds, for a read that took the Raft node's
   * published point (ShardRewind); absent: a point that no rewind can take back. */
  rewinds?: number;
}

/** ShardRestore replaces the shard's state with a snapshot dump (or empty): at start-up, and
 * when a follower installs its leader's snapshot. */
export interface ShardRestore {
  type: 'ShardRestore';
  dump: Uint8Array | null;
  /** index: the Raft index the dump reflects (reads waiting on an index compare with it). */
  index?: number;
}

/** ShardSnapshot asks for a dump of the shard's state after every revision sent so far. */
export interface ShardSnapshot {
  type: 'ShardSnapshot';
}

/** ShardHistory reads the changes of revisions [fromRevision, toRevision] in a key range
 * (watch catch-up). */
export interface ShardHistory {
  type: 'ShardHistory';
  fromRevision: number;
  toRevision: number;
  key: string;
  rangeEnd?: string;
  limit: number;
}

/** ShardStatsReq asks for size figures. */
export interface ShardStatsReq {
  type: 'ShardStats';
}

/**
 * ShardRewind: the Raft node took back entries it had applied ahead of their fsync (the
 * append failed), so no ShardApply will bring this shard past `index` and `revision` for
 * them. A read that took the read point moved ahead waits for exactly that: it fails with
 * READ_POINT_TAKEN_BACK, and the gateway reads again from a new point.
 */
export interface ShardRewind {
  type: 'ShardRewind';
  /** index, revision: the Raft index of the last ShardApply sent, and the store revision. */
  index: number;
  revision: number;
  /** rewinds: the Raft node's count of rewinds, this one included (the read point's). */
  rewinds: number;
}

export type ShardMsg = ShardApply | ShardRange | ShardRestore | ShardSnapshot | ShardHistory |
  ShardStatsReq | ShardRewind;

/** ShardStatsResp are the shard's size figures. */
export interface ShardStatsResp {
  keys: number;
  revisions: number;
  bytes: number;
  currentRevision: number;
  compactRevision: number;
}

/** ShardHistoryResp: changes in revision order and the revision they reach. */
export interface ShardHistoryResp {
  changes: { revision: number; change: Change }[];
  /** throughRevision: every revision ≤ it (within the request's bounds) is included. */
  throughRevision: number;
}

/** ShardReplies maps each ask to its reply. */
export interface ShardReplies {
  ShardRange: RangeResponse;
  ShardRestore: { revision: number };
  /** the dump's msgpack, in parts (packBinFieldsApart) */
  ShardSnapshot: Uint8Array[];
  ShardHistory: ShardHistoryResp;
  ShardStats: ShardStatsResp;
}

/** ShardConfig is the shard thread's start-up configuration. */
export interface ShardConfig {
  index: number;
  count: number;
  logLevel: string;
  /** failpoints enables test-only faults (env GOFAIL_FAILPOINTS, as etcd's gofail):
   * 'shard-crash-on-read' crashes the shard thread on a read of the key "failpoint/crash". */
  failpoints?: string[];
}
