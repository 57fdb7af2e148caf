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
  None, type ConfState, type Entry, type HardState, type Snapshot,
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
  const n = prefixWithin(ents.length, (k) => ents[k]!.data.byteLength, maxSizeBytes);
  return n === ents.length ? ents : ents.slice(0, n);
}

/** prefixWithin is how many of n entries (at least one, when n > 0) fit in maxSizeBytes,
 * counted as entrySizeBytes counts them; dataBytes(k) is entry k's data length. */
function prefixWithin(n: number, dataBytes: (k: number) => number, maxSizeBytes: number): number {
  if (n === 0) return 0;
  let size = dataBytes(0) + raftEntryOverheadBytes;
  let k = 1;
  while (k < n) {
    size += dataBytes(k) + raftEntryOverheadBytes;
    if (size > maxSizeBytes) break;
    k++;
  }
  return k;
}

/** emptySnapshot returns the snapshot of an empty log: index 0, no members. */
export function emptySnapshot(): Snapshot {
  return {
    data: new Uint8Array(0),
    metadata: { index: 0 as Index, term: 0 as Term, confState: { voters: [], learners: [] } },
  };
}

/**
 * MemoryStorage holds the log in memory, as columns: a term, a type and where its data lies
 * (buffer, offset, length) per entry, with no object per entry. Up to --snapshot-count
 * entries stay in the log; as objects (an entry and a view of its data each) they took 163
 * bytes of V8 heap an entry, as columns 46 (the performance notes in docs/, session 24), as
 * typed-array columns 10 and 25 off the heap (session 36).
 * entries() makes the objects its caller asks for. offsetIndex/offsetTerm are the snapshot's
 * index and term (the dummy entry of etcd-raft's MemoryStorage), so term(snapshot index)
 * works after compaction; column k holds entry offsetIndex + 1 + k.
 */
export class MemoryStorage implements Storage {
  private hardState: HardState = { term: 0 as Term, vote: None, commit: 0 as Index };
  private snap: Snapshot = emptySnapshot();
  /** snapDataAway is set while the snapshot's data is released (see releaseSnapshotData). */
  private snapDataAway: (() => void) | undefined;
  private offsetIndex = 0 as Index;
  private offsetTerm = 0 as Term;
  private log = new EntryColumns();

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
    const offset = this.offsetIndex;
    if (lo <= offset) throw errCompacted;
    if (hi > this.lastIndex() + 1) throw errUnavailable;
    if (this.log.length === 0) throw errUnavailable;
    // Counted on the lengths column first: only the entries returned are made.
    const from = lo - offset - 1;
    const lens = this.log.lens;
    const n = prefixWithin(hi - lo, (k) => lens[from + k]!, maxSizeBytes);
    const out = new Array<Entry>(n);
    for (let k = 0; k < n; k++) out[k] = this.log.entry(from + k, (lo + k) as Index);
    return out;
  }

  term(i: Index): Term {
    const offset = this.offsetIndex;
    if (i < offset) throw errCompacted;
    if (i === offset) return this.offsetTerm;
    if (i - offset > this.log.length) throw errUnavailable;
    return this.log.terms[i - offset - 1]! as Term;
  }

  lastIndex(): Index {
    return (this.offsetIndex + this.log.length) as Index;
  }

  firstIndex(): Index {
    return (this.offsetIndex + 1) as Index;
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
    for (let k = 0; k < this.log.length; k++) entryBytes += this.log.lens[k]!;
    return { entries: this.log.length, entryBytes, snapshotBytes: this.snap.data.byteLength };
  }

  /** applySnapshot replaces the storage's contents with a snapshot received from a leader. */
  applySnapshot(snap: Snapshot): void {
    if (snap.metadata.index <= this.snap.metadata.index) throw errSnapOutOfDate;
    this.snap = snap;
    this.snapDataAway = undefined;
    this.offsetIndex = snap.metadata.index;
    this.offsetTerm = snap.metadata.term;
    this.log = new EntryColumns();
  }

  /**
   * createSnapshot records the application's snapshot at applied index i (which must be in
   * the log) with the membership and data at i; compact separately to drop old entries.
   */
  createSnapshot(i: Index, confState: ConfState, data: Uint8Array): Snapshot {
    if (i <= this.snap.metadata.index) throw errSnapOutOfDate;
    assert(i <= this.lastIndex(), 'snapshot index is within the log', [i, this.lastIndex()]);
    this.snapDataAway = undefined;
    this.snap = {
      data,
      metadata: {
        index: i, term: this.term(i),
        confState: { voters: [...confState.voters], learners: [...confState.learners] },
      },
    };
    return this.snap;
  }

  /** compact discards entries before compactIndex; it must not pass the applied index. */
  compact(compactIndex: Index): void {
    const offset = this.offsetIndex;
    if (compactIndex <= offset) throw errCompacted;
    assert(compactIndex <= this.lastIndex(), 'compact index is within the log', compactIndex);
    this.offsetTerm = this.term(compactIndex);
    this.log.dropFirst(compactIndex - offset);
    this.offsetIndex = compactIndex;
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
    const at = ents[0]!.index - this.offsetIndex - 1;
    assert(at <= this.log.length,
      'missing log entry', [this.lastIndex(), ents[0]!.index]);
    // In place: the shell appends every Ready, so copying the whole log each time would make
    // appends quadratic in the log's length (up to --snapshot-count entries).
    this.log.truncate(at);
    for (const e of ents) this.log.push(ownedEntry(e));
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
    const offset = this.offsetIndex;
    if (index <= offset) return offset; // already compacted past it: nothing to drop
    assert(index <= this.lastIndex(), 'catch-up index is within the log', [index, offset]);
    const floor = Math.max(offset, index - entriesMax);
    let bytes = 0;
    let keep = index; // entries keep+1..index are kept
    while (keep > floor) {
      bytes += this.log.lens[keep - offset - 1]!;
      if (bytes > bytesMax) break;
      keep--;
    }
    return keep as Index;
  }
}

/** entryColumnsRowsMin: the entries a log's columns hold before they first grow. */
const entryColumnsRowsMin = 1024;

/**
 * EntryColumns: a log's entries as parallel typed arrays of numbers and an array of references
 * to the few buffers their data lie in (slabs of entries, entry-slab.ts), instead of an object
 * and a view per entry. The columns have a capacity, doubled when full and kept when entries
 * are dropped: a compaction moves the kept entries to the front instead of copying them into
 * new arrays, so a log that is appended to and compacted over and over allocates nothing once
 * it has grown (as JS arrays, the columns were re-grown after every snapshot: the largest
 * single site of the Raft thread's allocation under load, in the old generation; session 36).
 */
class EntryColumns {
  terms = new Float64Array(entryColumnsRowsMin);
  types = new Uint8Array(entryColumnsRowsMin);
  offs = new Float64Array(entryColumnsRowsMin);
  lens = new Float64Array(entryColumnsRowsMin);
  /** bufs[k]: entry k's data buffer; slots from length on are empty (undefined). */
  bufs: (ArrayBufferLike | undefined)[] = new Array<ArrayBufferLike | undefined>(
    entryColumnsRowsMin).fill(undefined);
  length = 0;

  push(e: Entry): void {
    if (this.length === this.terms.length) this.grow();
    const k = this.length++;
    this.terms[k] = e.term;
    this.types[k] = e.type;
    this.bufs[k] = e.data.buffer;
    this.offs[k] = e.data.byteOffset;
    this.lens[k] = e.data.byteLength;
  }

  /** entry makes column k's entry (whose index the caller knows). */
  entry(k: number, index: Index): Entry {
    return {
      term: this.terms[k]! as Term, index, type: this.types[k]! as Entry['type'],
      data: new Uint8Array(this.bufs[k]!, this.offs[k]!, this.lens[k]!),
    };
  }

  /** truncate keeps the first n entries. */
  truncate(n: number): void {
    if (n >= this.length) return;
    this.bufs.fill(undefined, n, this.length); // the dropped entries' buffers may go
    this.length = n;
  }

  /** dropFirst drops the first n entries (a compaction), moving the rest to the front. */
  dropFirst(n: number): void {
    const len = this.length;
    const m = Math.min(n, len);
    for (const c of [this.terms, this.types, this.offs, this.lens]) c.copyWithin(0, m, len);
    this.bufs.copyWithin(0, m, len);
    this.bufs.fill(undefined, len - m, len);
    this.length = len - m;
  }

  /** grow doubles the columns' capacity. */
  private grow(): void {
    const cap = this.terms.length * 2;
    const widen = <T extends Float64Array | Uint8Array>(c: T, make: (n: number) => T): T => {
      const out = make(cap);
      out.set(c);
      return out;
    };
    this.terms = widen(this.terms, (n) => new Float64Array(n));
    this.types = widen(this.types, (n) => new Uint8Array(n));
    this.offs = widen(this.offs, (n) => new Float64Array(n));
    this.lens = widen(this.lens, (n) => new Float64Array(n));
    for (let k = this.bufs.length; k < cap; k++) this.bufs.push(undefined);
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
