import { type DiskFaultKind, diskFaultOfCode } from '../../src/alarms.js';
import {
  idleSnapshotBytesMin, snapshotAskTimeoutMs, snapshotBytesMax, snapshotCatchUpBytesMax,
  stopSnapshotBytesMin,
} from '../../src/constants.js';
import { failpoint, failpointsEnabled } from '../../src/runtime/failpoint.js';
import type { Index, Term } from '../../src/types.js';
import type { MemoryStorage } from '../../src/raft/index.js';
import { moveBytes } from '../../src/runtime/codec.js';
import type { ActorRef } from '../../src/runtime/endpoint.js';
import type { ShardMsg, ShardReplies } from '../shard/messages.js';
import type { WalMsg, WalReplies } from '../wal/messages.js';
import { snapshotBodyParts } from '../../src/cluster/proposal.js';
import type { StateMachine } from './state-machine.js';

/**
 * stopSnapshotWorth: a clean stop snapshots when the WAL tail since the last snapshot holds
 * at least a hundredth of --snapshot-count's entries or stopSnapshotBytesMin of entry data.
 * A shorter tail is applied again at the next start in less time than the snapshot would
 * take to write (a snapshot writes the whole store; replaying writes nothing).
 */
export function stopSnapshotWorth(tailEntries: number, snapshotCount: number,
  tailBytes: number): boolean {
  if (tailEntries <= 0) return false;
  return tailEntries >= Math.ceil(snapshotCount / 100) || tailBytes >= stopSnapshotBytesMin;
}

/**
 * idleSnapshotWorth: a member that has applied nothing for idleSnapshotAfterMs snapshots when
 * the tail since the last snapshot holds at least idleSnapshotBytesMin of entry data and at
 * least a sixteenth of the store's bytes (`storeBytes`, the latest state's columns and values
 * in use): a crash after a burst of writes then finds no long tail to apply, and a snapshot,
 * which writes the whole store, is never more than 16 times the data that earned it.
 */
export function idleSnapshotWorth(tailEntries: number, tailBytes: number,
  storeBytes: number): boolean {
  return tailEntries > 0 && tailBytes >= Math.max(idleSnapshotBytesMin, storeBytes / 16);
}

/** StopWaiter is the stop waiting for its snapshot (atStop). */
interface StopWaiter {
  resolve: () => void;
  reject: (e: unknown) => void;
}

/** SnapshotLogger is the part of the logger the snapshotter uses. */
export interface SnapshotLogger {
  info(obj: object, msg: string): void;
}

/**
 * snapshots: the Raft node's snapshotting unit. Every snapshotCount applied entries (or
 * snapshotBytesMax applied bytes) it asks every shard for a dump of its state at the applied
 * index and has the WAL writer save them, behind the applier's metadata and the member
 * table, as one SnapshotBody (written in parts, never assembled here: snapshotBodyParts).
 * It records the snapshot in the Raft storage without its data (a leader reads it back from
 * the file for a follower that fell behind the log), and compacts the in-memory log, keeping
 * catchUpEntries behind it for slow followers (etcd's SnapshotCatchUpEntries), but no more
 * than snapshotCatchUpBytesMax of entry data.
 *
 * At most one snapshot is in progress. A snapshot received from the leader is installed only
 * once the local one has finished (`idle`): their WAL markers must stay in index order.
 */
export class Snapshotter {
  /** snapshotIndex is the index of the newest snapshot, taken or installed. */
  snapshotIndex = 0;
  /** onDiskFault hears of a snapshot file the disk refused (full, read-only, failed); the
   * log is untouched by it, so the node only alarms. Unset, such a failure crashes. */
  onDiskFault: ((kind: DiskFaultKind, message: string) => void) | undefined;
  /** onSaved hears of each snapshot once its file is durable. */
  onSaved: (() => void) | undefined;
  private running: Promise<void> | undefined;
  /** failedIndex: the applied index of the last snapshot the disk refused; the next try
   * waits for as many entries again, so a full disk is not asked at every pass. */
  private failedIndex = 0;
  /** stopWanted is set by atStop until maybeTake takes (or skips) the stop's snapshot. */
  private stopWanted: StopWaiter | undefined;

  constructor(
    private readonly sm: StateMachine,
    private readonly shards: ActorRef<ShardMsg, ShardReplies>[],
    private readonly wal: ActorRef<WalMsg, WalReplies>,
    private readonly storage: () => MemoryStorage,
    private readonly snapshotCount: number,
    private readonly catchUpEntries: number,
    private readonly log: SnapshotLogger,
    /** releaseData drops the new snapshot's data from the storage as soon as it is recorded
     * (MemoryStorage.releaseSnapshotData, with a way to read it back from the file): the
     * body goes to the WAL writer in parts, moved, and this thread keeps none of it. */
    private readonly releaseData: () => void,
    private readonly stopped: () => boolean = () => false,
  ) {}

  /** idle resolves once no snapshot is being taken. */
  idle(): Promise<void> {
    return this.running ?? Promise.resolve();
  }

  /**
   * atStop asks for a snapshot of the applied state before a clean stop, when the WAL tail
   * since the last snapshot is long enough to cost the next start time (stopSnapshotWorth):
   * the next start then restores it instead of applying the tail again. It resolves once that
   * snapshot is durable or was not needed, or with the error that kept it from the disk (the
   * log still has every entry). The node's next pass with no append in flight takes it
   * (maybeTake), so the marker follows every entry it covers in the WAL.
   */
  atStop(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.stopWanted = { resolve, reject };
    });
  }

  /** maybeTake starts a snapshot when enough was applied since the last one, or when a clean
   * stop wants one (atStop). */
  maybeTake(): void {
    if (this.running !== undefined) return;
    const sm = this.sm;
    const stop = this.stopWanted;
    this.stopWanted = undefined;
    const tail = this.tailEntries();
    const trigger = tail >= this.snapshotCount ? 'entries'
      : sm.appliedBytes >= snapshotBytesMax ? 'bytes'
      : stop !== undefined && stopSnapshotWorth(tail, this.snapshotCount, sm.appliedBytes) ?
        'stop' : undefined;
    if (trigger === undefined) {
      stop?.resolve();
      return;
    }
    this.take(trigger, stop);
  }

  /**
   * maybeTakeIdle starts a snapshot when the tail since the last one is worth it for a member
   * that has gone idle (idleSnapshotWorth; the node calls it once it has applied nothing for
   * idleSnapshotAfterMs, with no append in flight). `storeBytes` is the latest state's size.
   */
  maybeTakeIdle(storeBytes: number): void {
    if (this.running !== undefined || this.stopWanted !== undefined) return;
    if (!idleSnapshotWorth(this.tailEntries(), this.sm.appliedBytes, storeBytes)) return;
    this.take('idle', undefined);
  }

  /** tailEntries counts the entries applied since the last snapshot (or failed try). */
  private tailEntries(): number {
    return this.sm.appliedIndex - Math.max(this.snapshotIndex, this.failedIndex);
  }

  /** take snapshots the applied state: the shards' dumps, saved by the WAL writer. */
  private take(trigger: string, stop: StopWaiter | undefined): void {
    const sm = this.sm;
    sm.appliedBytes = 0;
    const index = sm.appliedIndex as Index;
    const storage = this.storage();
    const term = storage.term(index) as Term;
    const meta = sm.snapshotMeta();
    // Asked right after the ShardApply that reached `index`, on the same channels, so every
    // dump reflects exactly the state at `index`.
    const dumps = this.shards.map((s) => s.ask({ type: 'ShardSnapshot' }, snapshotAskTimeoutMs));
    this.running = Promise.all(dumps)
      .then(async (dumps) => {
        // The body is never assembled: the dumps (moved here by the shards) move on to the WAL
        // writer behind the packed metadata, which writes them to the file one after the
        // other, then their values. One copy of a dump exists at any time instead of three.
        const parts = snapshotBodyParts(meta, dumps.map((d) => d.dump),
          dumps.map((d) => d.values));
        const bytes = parts.reduce((n, p) => n + p.length, 0);
        storage.createSnapshot(index, meta.confState, new Uint8Array(0));
        this.releaseData();
        if (failpointsEnabled) failpoint('raftBeforeSaveSnap');
        await this.wal.ask({ type: 'WalSnapshotSave', index, term, parts: parts.map(moveBytes) },
          snapshotAskTimeoutMs);
        if (failpointsEnabled) failpoint('raftAfterSaveSnap');
        const compactTo = storage.catchUpCompactIndex(index, this.catchUpEntries,
          snapshotCatchUpBytesMax);
        if (compactTo > storage.firstIndex()) storage.compact(compactTo);
        this.snapshotIndex = index;
        this.running = undefined;
        this.onSaved?.();
        this.log.info({ index, term, bytes, revision: meta.revision, trigger }, 'snapshot taken');
        stop?.resolve();
      })
      .catch((e: unknown) => {
        if (stop !== undefined) {
          this.running = undefined;
          stop.reject(e);
          return;
        }
        if (this.stopped()) return;
        const kind = diskFaultOfCode((e as { code?: string }).code);
        if (kind === undefined || this.onDiskFault === undefined) {
          throw new Error(`raft: snapshot at ${index} failed: ${String(e)}`);
        }
        this.running = undefined;
        this.failedIndex = index;
        this.onDiskFault(kind, (e as Error).message);
      });
  }
}
