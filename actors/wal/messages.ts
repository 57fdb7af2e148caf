import type { Entry, HardState } from '../../src/raft/index.js';
import type { Index, MemberId, Term } from '../../src/types.js';
import type { PackedReplies } from '../../src/runtime/endpoint.js';

/**
 * The WAL writer's protocol. The WAL writer is Raft's "append thread" (etcd-raft's
 * asynchronous storage writes): the Raft node hands it entries and hard state; it writes them
 * with ONE write and ONE fsync per group of appends and only then replies, so nothing that
 * depends on those records (a commit, a vote, an acknowledgement) can leave before they are
 * durable.
 */

/** WalLoad asks for what recovery found (Raft node, at start-up). */
export interface WalLoad {
  type: 'WalLoad';
}

/** WalAppend persists a hard state and/or entries; the reply means "fsynced". */
export interface WalAppend {
  type: 'WalAppend';
  hardState?: HardState;
  /** entries: the entries as the WAL's records (src/wal frameEntries), their CRCs left for
   * the writer to chain; empty when only the hard state changes. */
  entries: Uint8Array;
  /** seq numbers the Raft node's appends (1, 2, …), for the WalAnswers that may follow. */
  seq?: number;
}

/**
 * WalAnswers are the answers to the clients of the entries of append `seq`, applied ahead
 * of their fsync by the Raft node and packed by it as their askers' batches
 * (Endpoint.packReplies): the WAL writer posts them as soon as that append is durable (right
 * away if it already is), and drops them if it failed (the Raft node then tells the clients).
 * It always follows its append on the same channel, before the next append.
 */
export interface WalAnswers {
  type: 'WalAnswers';
  seq: number;
  replies: PackedReplies[];
}

/** WalSnapshotSave writes a snapshot file, then a snapshot marker in the log, then releases
 * segments that the snapshot makes unnecessary. */
export interface WalSnapshotSave {
  type: 'WalSnapshotSave';
  index: Index;
  term: Term;
  /** parts: the snapshot body as parts to write one after the other (their concatenation is
   * the body; large ones are moved here, and on to the writing task, never concatenated). */
  parts: Uint8Array[];
  /** hardState, when set, is written right after the marker (a follower installing its
   * leader's snapshot: recovery uses a marker only at or below the last commit). */
  hardState?: HardState;
}

/** WalStatsReq asks for fsync timings since the last ask (for metrics). */
export interface WalStatsReq {
  type: 'WalStats';
}

/** WalSnapshotRead reads back the snapshot file at (index, term): the Raft node drops a
 * snapshot's data from memory once it is saved, and reads it again only to send it to a
 * follower far behind. */
export interface WalSnapshotRead {
  type: 'WalSnapshotRead';
  index: Index;
  term: Term;
}

export type WalMsg = WalLoad | WalAppend | WalAnswers | WalSnapshotSave | WalStatsReq |
  WalSnapshotRead;

/** WalLoadResp is the recovered state. */
export interface WalLoadResp {
  hardState?: HardState;
  entries: Entry[];
  /** snapshot: the newest usable snapshot file's body, and a split body's tail apart
   * (snapshot-format.ts). */
  snapshot?: { index: number; term: number; body: Uint8Array; tail?: Uint8Array };
  /** firstStart is true when the data dir was empty. */
  firstStart: boolean;
  /** metadata is the identity the WAL was created with. */
  metadata?: { nodeId: number; clusterId: number };
}

/** WalAppendResp: the records are durable. */
export interface WalAppendResp {
  fsyncSeconds: number;
}

/** WalStatsResp: fsync and snapshot durations observed since the previous WalStats, and
 * totals since the thread started. */
export interface WalStatsResp {
  fsyncSeconds: number[];
  bytesWritten: number;
  segments: number;
  /** snapshotSaveSeconds: whole snapshot saves (write, fsync, rename, directory fsync). */
  snapshotSaveSeconds: number[];
  /** snapshotFsyncSeconds: the fsync of each snapshot file. */
  snapshotFsyncSeconds: number[];
  /** entriesPerFsync: the log entries of each group commit (its batch size), as fsyncSeconds. */
  entriesPerFsync?: number[];
}

/** WalReplies maps each ask to its reply. */
export interface WalReplies {
  WalLoad: WalLoadResp;
  WalAppend: WalAppendResp;
  WalSnapshotSave: { path: string };
  WalStats: WalStatsResp;
  WalSnapshotRead: { body: Uint8Array };
}

/** WalConfig is the WAL writer's start-up configuration. */
export interface WalConfig {
  dataDir: string;
  logLevel: string;
  memberId: MemberId;
  clusterId: number;
  /** zeroAheadBytes: the zeros kept written ahead of the tail (0: none; zero-ahead.ts). */
  zeroAheadBytes: number;
  /** maxSnapshots: snapshot files kept after a snapshot (--max-snapshots; 0: no limit). */
  maxSnapshots: number;
}
