/**
 * Storage is the core's read view of the durable log; MemoryStorage is the in-memory
 * implementation the shell fills from the WAL on restart and appends to after each fsync.
 * Only what the shell has put into the Storage counts as persisted (docs/raft.md).
 */
import type { Index, Term } from '../types.js';
import { assert } from '../assert.js';
import {
  errCompacted, errSnapOutOfDate, errSnapshotTemporarilyUnavailable, errUnavailable,
} from './errors.js';
import { entryViewBufferMax, raftEntryOverheadBytes } from '../constants.js';
import { entryBytes } from './entry-slab.js';
import {
  EntryNormal, None, type ConfState, type Entry, type HardState, type Snapshot,
  type SnapshotMetadata,
} from './types.js';

/** Storage is what the core reads (etcd-raft's Storage interface). Errors are thrown. */
export interface Storage {
  /** initialState returns the persisted HardState and the ConfState of the snapshot. */
  initialState(): { hardState: HardState; confState: ConfState };
  /** entries returns entries in [lo, hi), at least one if any, limited to maxSizeBytes. */
  entries(lo: Index, hi: Index, maxSizeBytes: number): Entry[];
  /** term returns the term of entry i; throws errCompacted / errUnavailable. */
  term(i: Index): Term;
  /** lastIndex is the index of the last entry (the snapshot's index when the log is empty). */
  lastIndex(): Index;
  /** firstIndex is the index of the first entry that may be read (snapshot index + 1). */
  firstIndex(): Index;
  /** snapshot returns the most recent snapshot; it throws errSnapshotTemporarilyUnavailable
   * when its data is not at hand (the core then retries later, as etcd-raft's). */
  snapshot(): Snapshot;
  /** snapshotMetadata returns the most recent snapshot's metadata (never throws). */
  snapshotMetadata(): SnapshotMetadata;
}

/** entrySizeBytes is the size counted against maxSizePerMsg for one entry. */
export function entrySizeBytes(e: Entry): number {
  return e.data.byteLength + raftEntryOverheadBytes;
}

/** limitSize returns the longest prefix of ents within maxSizeBytes, but at least one entry. */
export function limitSize(ents: Entry[], maxSizeBytes: number): Entry[] {
  if (ents.length === 0) return ents;
  let size = entrySizeBytes(ents[0]!);
  let n = 1;
  while (n < ents.length) {
    size += entrySizeBytes(ents[n]!);
    if (size > maxSizeBytes) break;
    n++;
  }
  return n === ents.length ? ents : ents.slice(0, n);
}

/** emptySnapshot returns the snapshot of an empty log: index 0, no members. */
export function emptySnapshot(): Snapshot {
  return {
    data: new Uint8Array(0),
    metadata: { index: 0 as Index, term: 0 as Term, confState: { voters: [], learners: [] } },
  };
}

/**
 * MemoryStorage holds the log in memory. ents[0] is a dummy entry carrying the snapshot's
 * index and term, so term(snapshot index) works after compaction; real entries follow.
 * Invariant: ents[k].index === ents[0].index + k.
 */
export class MemoryStorage implements Storage {
  private hardState: HardState = { term: 0 as Term, vote: None, commit: 0 as Index };
  private snap: Snapshot = emptySnapshot();
  /** snapDataAway is set while the snapshot's data is released (see releaseSnapshotData). */
  private snapDataAway: (() => void) | undefined;
  private ents: Entry[] = [
    { term: 0 as Term, index: 0 as Index, type: EntryNormal, data: new Uint8Array(0) },
  ];

  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: { ...this.hardState }, confState: this.snap.metadata.confState };
  }

  /** hardStateNow returns the stored HardState (for the shell and tests). */
  hardStateNow(): HardState {
    return { ...this.hardState };
  }

  /** setHardState records the HardState the shell has made durable. */
  setHardState(hs: HardState): void {
    this.hardState = { ...hs };
  }

  entries(lo: Index, hi: Index, maxSizeBytes: number): Entry[] {
    const offset = this.ents[0]!.index;
    if (lo <= offset) throw errCompacted;
    if (hi > this.lastIndex() + 1) throw errUnavailable;
    if (this.ents.length === 1) throw errUnavailable;
    return limitSize(this.ents.slice(lo - offset, hi - offset), maxSizeBytes);
  }

  term(i: Index): Term {
    const offset = this.ents[0]!.index;
    if (i < offset) throw errCompacted;
    if (i - offset >= this.ents.length) throw errUnavailable;
    return this.ents[i - offset]!.term;
  }

  lastIndex(): Index {
    return (this.ents[0]!.index + this.ents.length - 1) as Index;
  }

  firstIndex(): Index {
    return (this.ents[0]!.index + 1) as Index;
  }

  snapshot(): Snapshot {
    if (this.snapDataAway !== undefined) {
      this.snapDataAway();
      throw errSnapshotTemporarilyUnavailable;
    }
    return this.snap;
  }

  snapshotMetadata(): SnapshotMetadata {
    return this.snap.metadata;
  }

  /**
   * releaseSnapshotData drops the snapshot's data from memory once it is durable elsewhere
   * (the snapshot file): with a million keys it is over 100 MiB that only a follower far
   * behind needs. Until restoreSnapshotData, snapshot() calls `wanted` (which should load it)
   * and throws errSnapshotTemporarilyUnavailable.
   */
  releaseSnapshotData(wanted: () => void): void {
    if (this.snap.metadata.index === 0) return;
    this.snap = { data: new Uint8Array(0), metadata: this.snap.metadata };
    this.snapDataAway = wanted;
  }

  /** restoreSnapshotData puts back the data of the snapshot at `index` (ignored when the
   * storage has moved on to another snapshot or never released it). */
  restoreSnapshotData(index: Index, data: Uint8Array): boolean {
    if (this.snapDataAway === undefined || this.snap.metadata.index !== index) return false;
    this.snap = { data, metadata: this.snap.metadata };
    this.snapDataAway = undefined;
    return true;
  }

  /** memory is what the storage holds: entries in the log, their data bytes, and the
   * snapshot's data bytes (for the memory breakdown; O(entries)). */
  memory(): { entries: number; entryBytes: number; snapshotBytes: number } {
    let entryBytes = 0;
    for (const e of this.ents) entryBytes += e.data.byteLength;
    return { entries: this.ents.length - 1, entryBytes, snapshotBytes: this.snap.data.byteLength };
  }

  /** applySnapshot replaces the storage's contents with a snapshot received from a leader. */
  applySnapshot(snap: Snapshot): void {
    if (snap.metadata.index <= this.snap.metadata.index) throw errSnapOutOfDate;
    this.snap = snap;
    this.snapDataAway = undefined;
    this.ents = [{
      term: snap.metadata.term, index: snap.metadata.index, type: EntryNormal,
      data: new Uint8Array(0),
    }];
  }

  /**
   * createSnapshot records the application's snapshot at applied index i (which must be in
   * the log) with the membership and data at i; compact separately to drop old entries.
   */
  createSnapshot(i: Index, confState: ConfState, data: Uint8Array): Snapshot {
    if (i <= this.snap.metadata.index) throw errSnapOutOfDate;
    assert(i <= this.lastIndex(), 'snapshot index is within the log', [i, this.lastIndex()]);
    const offset = this.ents[0]!.index;
    this.snapDataAway = undefined;
    this.snap = {
      data,
      metadata: {
        index: i, term: this.ents[i - offset]!.term,
        confState: { voters: [...confState.voters], learners: [...confState.learners] },
      },
    };
    return this.snap;
  }

  /** compact discards entries before compactIndex; it must not pass the applied index. */
  compact(compactIndex: Index): void {
    const offset = this.ents[0]!.index;
    if (compactIndex <= offset) throw errCompacted;
    assert(compactIndex <= this.lastIndex(), 'compact index is within the log', compactIndex);
    const i = compactIndex - offset;
    const head = this.ents[i]!;
    this.ents = [
      { term: head.term, index: head.index, type: EntryNormal, data: new Uint8Array(0) },
      ...this.ents.slice(i + 1),
    ];
  }

  /**
   * append adds entries the shell has made durable. Entries overlapping the log replace the
   * conflicting suffix (a follower's log is rewritten by a new leader, Raft §5.3).
   */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const last = entries[0]!.index + entries.length - 1;
    if (last < first) return; // All already compacted.
    let ents = entries;
    if (first > ents[0]!.index) ents = ents.slice(first - ents[0]!.index);
    const offset = ents[0]!.index - this.ents[0]!.index;
    assert(offset <= this.ents.length,
      `missing log entry [last: ${this.lastIndex()}, append at: ${ents[0]!.index}]`);
    // In place: the shell appends every Ready, so copying the whole log each time would make
    // appends quadratic in the log's length (up to --snapshot-count entries).
    if (offset < this.ents.length) this.ents.length = offset;
    for (const e of ents) this.ents.push(ownedEntry(e));
  }

  /**
   * catchUpCompactIndex is where to compact after a snapshot at `index` so that at most
   * `entriesMax` entries and `bytesMax` data bytes stay behind it for slow followers (the
   * result is ≤ index; when index is already compacted, the current first index − 1). A
   * follower further behind gets the snapshot.
   *
   * Example: entries 1..10 of 100 bytes each, snapshot at 10, entriesMax 5, bytesMax 250:
   * entries 9 and 10 fit in 250 bytes, 8 would not, so the result is 8 (compact(8) keeps
   * 9..10); with bytesMax 1,000 the count bound gives 5 (keeps 6..10).
   */
  catchUpCompactIndex(index: Index, entriesMax: number, bytesMax: number): Index {
    const offset = this.ents[0]!.index;
    if (index <= offset) return offset; // already compacted past it: nothing to drop
    assert(index <= this.lastIndex(), 'catch-up index is within the log', [index, offset]);
    const floor = Math.max(offset, index - entriesMax);
    let bytes = 0;
    let keep = index; // entries keep+1..index are kept
    while (keep > floor) {
      bytes += this.ents[keep - offset]!.data.byteLength;
      if (bytes > bytesMax) break;
      keep--;
    }
    return keep as Index;
  }
}

/**
 * ownedEntry returns e with its data copied into a slab of entries (entryBytes) when it is a
 * view into a buffer over entryViewBufferMax: entries decoded from a peer's frame or from the
 * WAL read back at boot are views into the whole decoded message, and one kept entry would
 * keep all of it (at boot, the WalLoad reply with the snapshot body: over 100 MiB with a
 * million keys) until it is compacted. A view into a small buffer is kept as it is: this
 * member's own proposals are already in slabs of entries (encodeProposal).
 */
function ownedEntry(e: Entry): Entry {
  const d = e.data;
  if (d.byteLength === d.buffer.byteLength || d.buffer.byteLength <= entryViewBufferMax) return e;
  const data = entryBytes(d.byteLength);
  data.set(d);
  return { ...e, data };
}
