/**
 * The WAL store (etcd's `wal` package): the segments in `<data-dir>/member/wal` and the I/O
 * around the pure core in src/wal. It appends records with one write and one fdatasync per
 * batch, cuts segments, records snapshot markers, releases old segments, and at open recovers
 * the log (picking the snapshot to start from with the snap store). It runs on the WAL
 * writer's dedicated thread, so it uses synchronous fs calls (see fs-ops.ts). The format and
 * the recovery rules are in docs/wal-format.md.
 */
import './native-crc.js'; // checksums with the CPU's CRC32C instructions
import * as path from 'node:path';
import { assert, assertNever } from '../../src/assert.js';
import {
  segmentSizeBytes as defaultSegmentSizeBytes,
  walPreallocateStepBytes,
  walBatchBytesMax,
  walAppendSlackBytes,
  walZeroAheadBytes,
  walZeroFillGapBytes,
  walZeroFillStepBytes,
} from '../../src/constants.js';
import {
  WalEncoder,
  assertEntryFollows,
  assertHardStateFollows,
  encodeSegmentHead,
  foldWal,
  parseWalSegmentName,
  readWal,
  usableSnapshotMarkers,
  walSegmentName,
  ZeroAhead,
} from '../../src/wal/index.js';
import type {
  HardState,
  SnapshotMarker,
  WalEntry,
  WalMetadata,
  WalRecordInput,
  WalScan,
  WalSegmentName,
  ZeroAheadLimits,
  ZeroFill,
} from '../../src/wal/index.js';
import type { Index, Term } from '../../src/types.js';
import { walDirOf } from '../../src/server/data-dir.js';
import { diskFaultCode, diskFaultKind, diskFaultText } from '../../src/alarms.js';
import { EtcdError } from '../../src/errors.js';
import { failpoint, failpointErrno, failpointsEnabled } from '../../src/runtime/failpoint.js';
import {
  type FsOps,
  type StoreLogger,
  ensureDir,
  fsyncDir,
  nodeFsOps,
  removeTmpFiles,
  tmpSuffix,
  writeAll,
  writeFileDurably,
} from './fs-ops.js';
import { type LoadedSnapshot, loadNewestSnapshot, openSnapDir } from './snap-store.js';

export { WalCorruptError } from '../../src/wal/index.js';

/** WalStoreOptions configures WalStore.open. */
export interface WalStoreOptions {
  readonly logger: StoreLogger;
  /** fsOps replaces node:fs (tests). */
  readonly fsOps?: FsOps;
  /** segmentSizeBytes is the size past which a segment is cut (default: constants.ts). */
  readonly segmentSizeBytes?: number;
  /** zeroAhead sizes the zeros written ahead of the tail (each default: constants.ts). */
  readonly zeroAhead?: Partial<Omit<ZeroAheadLimits, 'segmentSizeBytes'>>;
}

/** WalRecovered is what open found on disk: the state Raft restarts with. */
export interface WalRecovered {
  /** firstStart is true when there was no WAL segment (a new member). */
  readonly firstStart: boolean;
  readonly metadata: WalMetadata | undefined;
  readonly hardState: HardState | undefined;
  /** snapshot is the newest usable snapshot; entries follow its index. */
  readonly snapshot: LoadedSnapshot | undefined;
  /**
   * entries are contiguous from snapshot.index + 1 (or 1). Each owns a compact copy of its
   * data, so posting them to another thread does not clone whole segment buffers.
   */
  readonly entries: WalEntry[];
}

/**
 * WalStore appends records to the WAL's last segment, cuts segments, records snapshot markers
 * and releases old segments. One instance per data dir, on one thread.
 *
 * A failed append throws an EtcdError whose code says what the caller may do
 * (src/alarms.ts): NO_SPACE (ENOSPC, EDQUOT, EFBIG) or DISK_READ_ONLY (EROFS, EACCES) on the
 * write — the tail is cut back to where the batch began and synced, so nothing of the batch
 * is kept and the store stays usable: the same batch may be tried again once there is room.
 * Any other write error, a failed cut-back, and every failed fsync are DISK_FAILED: what
 * reached the disk is unknown (a failed fsync may have dropped dirty pages, the "fsyncgate"
 * lesson), so the instance refuses all further calls and only a restart (recovery) can tell.
 */
export class WalStore {
  /** recovered is what open found; releaseRecovered() drops it once consumed (it may be
   * large: every entry since the snapshot). */
  recovered: WalRecovered;
  /** walDir is the segments' directory. */
  readonly walDir: string;

  private readonly fs: FsOps;
  private readonly logger: StoreLogger;
  private readonly segmentSizeBytes: number;
  private readonly encoder: WalEncoder;
  /**
   * crc is the CRC chain's value at the end of what is on disk. Each batch starts the encoder
   * from it, so a batch refused before its write (too large, an assertion) cannot leave the
   * chain advanced past records that were never written.
   */
  private crc: number;
  /** segments on disk, oldest first; the last is the tail being appended to. */
  private readonly segments: WalSegmentName[];
  private fd: number;
  /** tailBytes is the tail segment's length: where the next write goes. */
  private tailBytes: number;
  /**
   * tailFileBytes is the tail file's size: tailBytes plus the zeros preallocated ahead of it
   * (extendAhead), which recovery reads as the end of the records.
   */
  private tailFileBytes: number;
  /** lastIndex is etcd's enti: the last entry index written (or a higher snapshot marker). */
  private lastIndex: number;
  private metadata: WalMetadata | undefined;
  private hardState: HardState | undefined;
  /** markers are the snapshot markers in the kept segments, oldest first. */
  private markers: SnapshotMarker[];
  /** zero: the zeros written ahead of the tail (nextZeroFill), in segments named by path. */
  private readonly zero: ZeroAhead;
  private totalBytesWritten = 0;
  private failed: unknown = undefined;
  private closed = false;

  private constructor(
    dataDir: string,
    opts: WalStoreOptions,
    fields: {
      recovered: WalRecovered;
      encoder: WalEncoder;
      segments: WalSegmentName[];
      fd: number;
      tailBytes: number;
      tailFileBytes: number;
      lastIndex: number;
      markers: SnapshotMarker[];
      hardState: HardState | undefined;
    },
  ) {
    this.walDir = walDirOf(dataDir);
    this.fs = opts.fsOps ?? nodeFsOps;
    this.logger = opts.logger;
    this.segmentSizeBytes = opts.segmentSizeBytes ?? defaultSegmentSizeBytes;
    this.recovered = fields.recovered;
    this.encoder = fields.encoder;
    this.crc = fields.encoder.crc;
    this.segments = fields.segments;
    this.fd = fields.fd;
    this.tailBytes = fields.tailBytes;
    this.tailFileBytes = fields.tailFileBytes;
    this.lastIndex = fields.lastIndex;
    this.metadata = fields.recovered.metadata;
    this.hardState = fields.hardState;
    this.markers = fields.markers;
    this.zero = new ZeroAhead({
      leadBytes: walZeroAheadBytes, stepBytes: walZeroFillStepBytes,
      gapBytes: walZeroFillGapBytes, ...opts.zeroAhead,
      segmentSizeBytes: this.segmentSizeBytes,
    }, this.tailPath(), this.tailBytes);
  }

  /**
   * open creates the directories on first start, or recovers: it reads every segment, cuts off
   * a torn tail (with a warning), picks the newest usable snapshot file, and replays the log
   * from it. Throws WalCorruptError (naming file and offset) when the log is damaged before its
   * tail; the member must then be repaired or rebuilt by an operator.
   */
  static open(dataDir: string, opts: WalStoreOptions): WalStore {
    const fsx = opts.fsOps ?? nodeFsOps;
    const { logger } = opts;
    const walDir = walDirOf(dataDir);
    ensureDir(fsx, walDir);
    openSnapDir(dataDir, { logger, fsOps: fsx });
    removeTmpFiles(fsx, walDir, logger);

    const encoder = new WalEncoder(0);
    let names = walSegmentNames(fsx, walDir);
    const firstStart = names.length === 0;
    if (firstStart) {
      encodeSegmentHead(encoder, 0, undefined, undefined);
      writeFileDurably(fsx, walDir, walSegmentName(0, 0), [encoder.bytes()]);
      names = walSegmentNames(fsx, walDir);
    }
    const { fast, files, scan } = readSegments(dataDir, names, { logger, fsOps: fsx });
    let tailFileBytes = files.at(-1)?.bytes.length ?? 0;
    const tail = scan.segments.at(-1);
    assert(tail !== undefined, 'wal: a WAL has a segment once open has created the first');
    const tailPath = path.join(walDir, tail.name);
    const fd = fsx.openSync(tailPath, 'r+');
    try {
      if (scan.torn !== undefined) {
        logger.warn(
          { file: scan.torn.file, offset: scan.torn.offset, reason: scan.torn.reason },
          'wal: truncating torn tail of the last segment',
        );
        fsx.ftruncateSync(fd, scan.torn.offset);
        fsx.fdatasyncSync(fd);
        tailFileBytes = scan.torn.offset;
      }
      const snapshot = fast?.snapshot ?? loadNewestSnapshot(dataDir,
        { logger, fsOps: fsx, usable: usableSnapshotMarkers(scan) });
      const folded = foldWal(scan, snapshot);
      encoder.reset(scan.crc);
      let tailBytes = tail.validBytes;
      if (tailBytes === 0) {
        // The tail lost even its head (a damaged fresh segment): write the head again, chained
        // from the previous segment, so the chain and the head invariant hold.
        encodeSegmentHead(encoder, scan.crc, folded.metadata, scan.hardState);
        writeAll(fsx, fd, encoder.bytes(), 0);
        fsx.fdatasyncSync(fd);
        tailBytes = encoder.length;
      }
      const recovered: WalRecovered = {
        firstStart,
        metadata: folded.metadata,
        hardState: folded.hardState,
        snapshot,
        entries: folded.entries.map((e) => ({ ...e, data: e.data.slice() })),
      };
      return new WalStore(dataDir, opts, {
        recovered,
        encoder,
        segments: [...fast?.skipped ?? [],
          ...scan.segments.map(({ seq, index, name }) => ({ seq, index, name }))],
        fd,
        tailBytes,
        tailFileBytes: Math.max(tailFileBytes, tailBytes),
        lastIndex: folded.lastIndex,
        markers: scan.markers,
        hardState: folded.hardState,
      });
    } catch (err) {
      fsx.closeSync(fd);
      throw err;
    }
  }

  /** lastIndex is the last entry index written, or a higher snapshot marker's (etcd's enti). */
  get lastEntryIndex(): number {
    return this.lastIndex;
  }

  /** releaseRecovered forgets the recovered entries and snapshot body (they have been handed
   * to the Raft node), keeping the small fields. */
  releaseRecovered(): void {
    this.recovered = { ...this.recovered, entries: [], snapshot: undefined };
  }

  /** firstSegmentIndex is the index the oldest kept segment starts at: recovery can start
   * only from a snapshot at or above it (foldWal), so snapshot files below it are dead. */
  get firstSegmentIndex(): number {
    return this.segments[0]!.index;
  }

  /** segmentCount is the number of segment files kept. */
  get segmentCount(): number {
    return this.segments.length;
  }

  /** bytesWritten counts bytes appended by this instance (metrics). */
  get bytesWritten(): number {
    return this.totalBytesWritten;
  }

  /**
   * nextZeroFill names the range of the tail file to write with zeros and sync next, off this
   * thread (src/wal/zero-ahead.ts), or undefined; zeroFilled must follow it. The tail file is
   * counted as reaching its end from now on, so that extendAhead never cuts the fill short.
   */
  nextZeroFill(): ZeroFill | undefined {
    if (this.closed || this.failed !== undefined) return undefined;
    const fill = this.zero.next(this.tailBytes);
    if (fill !== undefined) this.tailFileBytes = Math.max(this.tailFileBytes, fill.to);
    return fill;
  }

  /** zeroFilled records that a fill was written and synced (ok) or failed. */
  zeroFilled(fill: ZeroFill, ok: boolean): void {
    this.zero.done(fill, ok);
  }

  /** appendWaitsForFill reports whether an append of entries framed in `entryBytes` could
   * write where a zero fill in flight may still land: it must wait for zeroFilled. */
  appendWaitsForFill(entryBytes: number): boolean {
    return this.zero.blocks(this.tailBytes, entryBytes + walAppendSlackBytes);
  }

  /** segmentNames lists the kept segment file names, oldest first. */
  segmentNames(): string[] {
    return this.segments.map((s) => s.name);
  }

  /**
   * append makes `records` durable: it encodes all of them into one buffer and issues one
   * write and one fdatasync. Group commit is the caller's: hand over everything that is ready.
   * When it returns, the records survive a crash. Cuts a new segment when the tail is full.
   * It returns how many entry records it wrote.
   */
  append(records: readonly WalRecordInput[]): number {
    this.usable();
    const enc = this.encoder;
    enc.reset(this.crc);
    let lastIndex = this.lastIndex;
    let metadata = this.metadata;
    let hardState = this.hardState;
    const markers: SnapshotMarker[] = [];
    let entries = 0;
    for (const r of records) {
      switch (r.type) {
        case 'entry':
          this.assertEntry(lastIndex, r.entry.term, r.entry.index);
          lastIndex = r.entry.index;
          entries++;
          break;
        case 'framed':
          // Checked as the encoder walks the frames: one pass, before anything is written.
          enc.addFramed(r, (term, index) => {
            this.assertEntry(lastIndex, term, index);
            lastIndex = index;
            entries++;
          });
          continue;
        case 'state':
          assertHardStateFollows(hardState, r.state);
          hardState = r.state;
          break;
        case 'metadata':
          assert(
            metadata === undefined ||
              (metadata.nodeId === r.nodeId && metadata.clusterId === r.clusterId),
            'wal: the metadata of a WAL never changes (recovery refuses a conflict)',
          );
          metadata = { nodeId: r.nodeId, clusterId: r.clusterId };
          break;
        case 'snapshot':
          markers.push({ index: r.index, term: r.term });
          if (r.index > lastIndex) lastIndex = r.index;
          break;
        default:
          assertNever(r);
      }
      enc.add(r);
    }
    this.commit();
    this.lastIndex = lastIndex;
    this.metadata = metadata;
    this.hardState = hardState;
    for (const m of markers) this.markers.push(m);
    this.maybeCut();
    return entries;
  }

  /**
   * save is append for the common case, shaped like etcd's WAL.Save: entries, then the hard
   * state if given, in one write and one fdatasync. Raft entries pass as they are.
   */
  save(entries: readonly WalEntry[], hardState?: HardState): void {
    this.usable();
    if (entries.length === 0 && hardState === undefined) return;
    const enc = this.encoder;
    enc.reset(this.crc);
    let lastIndex = this.lastIndex;
    for (const e of entries) {
      this.assertEntry(lastIndex, e.term, e.index);
      lastIndex = e.index;
      enc.addEntry(e);
    }
    if (hardState !== undefined) {
      assertHardStateFollows(this.hardState, hardState);
      enc.addState(hardState);
    }
    this.commit();
    if (entries.length > 0) this.lastIndex = entries[entries.length - 1]!.index;
    if (hardState !== undefined) this.hardState = hardState;
    this.maybeCut();
  }

  /**
   * saveSnapshotMarker records that a snapshot at (index, term) is durable. Write the snapshot
   * file first: recovery only uses snapshots that have a marker, and only a marker at or below
   * the last commit written (etcd's ValidSnapshotEntries). So a hard state goes beside it:
   * `hardState` when given (a follower installing its leader's snapshot), else, for a
   * snapshot this member took, the last one written with its commit raised to index
   * (commitThrough). Its snapshot is of applied entries, so index is committed; but
   * commit-only changes ride with the next append, and without this a member's last snapshot
   * before it went idle or stopped was never used by the next start.
   */
  saveSnapshotMarker(index: Index, term: Term, hardState?: HardState): void {
    const state = hardState ?? this.commitThrough(index);
    this.append([
      { type: 'snapshot', index, term },
      ...(state === undefined ? [] : [{ type: 'state' as const, state }]),
    ]);
  }

  /**
   * cutAtSnapshot starts a new segment, named `index`, when the log ends at `index` (a
   * snapshot of everything written: a stop's, an idle member's) and the tail segment holds
   * at least `minBytes`. The snapshot's marker then goes into the new segment, and
   * releaseTo(index) deletes every older one: the next start reads the snapshot and a few
   * records instead of a segment of entries the snapshot already holds. The name is the
   * snapshot's index, not the next entry's, because recovery needs a segment that begins at or
   * below its snapshot (foldWal, etcd's searchIndex); the first entry written into it will be
   * index + 1, as the log's first segment (0) holds entry 1. Returns whether it cut; a cut
   * that fails before its rename throws and is only put off (the marker goes into the tail).
   */
  cutAtSnapshot(index: number, minBytes: number): boolean {
    this.usable();
    if (index !== this.lastIndex || this.tailBytes < minBytes) return false;
    this.cut(index);
    return true;
  }

  /**
   * commitThrough is the last hard state written with its commit raised to index, or
   * undefined when the commit already reaches it (or no hard state was ever written). Term
   * and vote are the last written, so nothing written later can go back from them.
   */
  commitThrough(index: Index): HardState | undefined {
    const hs = this.hardState;
    if (hs === undefined || hs.commit >= index) return undefined;
    return { ...hs, commit: index };
  }

  /**
   * releaseTo deletes the segments that recovery no longer needs once a snapshot at `index`
   * exists: a segment goes when the next one starts at or below the release point. The point
   * is clamped to the newest snapshot marker at or below both `index` and the last hard
   * state's commit, since only such a marker can start recovery. Returns the deleted names.
   */
  releaseTo(index: number): string[] {
    this.usable();
    const commit: number = this.hardState?.commit ?? 0;
    let point = 0;
    for (const m of this.markers) {
      if (m.index <= index && m.index <= commit && m.index > point) point = m.index;
    }
    let n = 0;
    while (n + 1 < this.segments.length && this.segments[n + 1]!.index <= point) n++;
    if (n === 0) return [];
    const gone = this.segments.splice(0, n);
    // Recovery starts at the marker `point`: the oldest kept segment must reach back to it.
    assert(this.segments[0]!.index <= point, 'wal: release keeps the snapshot\'s segment', point);
    for (const s of gone) this.fs.unlinkSync(path.join(this.walDir, s.name));
    fsyncDir(this.fs, this.walDir);
    // Markers older than the release point can no longer start recovery.
    this.markers = this.markers.filter((m) => m.index >= point);
    const names = gone.map((s) => s.name);
    this.logger.info({ released: names, index: point }, 'wal: released segments');
    return names;
  }

  /** markerBefore is the index of the newest snapshot marker below `index` (0: none): where a
   * snapshot that cut a segment releases to, so that the snapshot before it stays usable. */
  markerBefore(index: number): number {
    let before = 0;
    for (const m of this.markers) if (m.index < index && m.index > before) before = m.index;
    return before;
  }

  /** close releases the tail's descriptor. Everything appended is already durable. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.fs.closeSync(this.fd);
  }

  // assertEntry checks that the entry at (term, index) may follow `lastIndex` and does not
  // replace a committed entry (etcd-raft panics on the same: "entry conflicts with committed
  // entry"). Once per entry written: the failure's details are built only on a failure.
  private assertEntry(lastIndex: number, term: number, index: number): void {
    assertEntryFollows(lastIndex, term, index);
    const commit = this.hardState?.commit ?? 0;
    if (index > commit || index > lastIndex) return;
    assert(false, 'wal: no entry would replace a committed entry', [index, commit]);
  }

  private usable(): void {
    if (this.closed) throw new Error('wal: closed');
    if (this.failed !== undefined) throw this.failed;
  }

  // fail makes the store refuse every further call with `err` (DISK_FAILED) and throws it.
  private fail(cause: unknown, syscall: 'write' | 'fsync' | 'ftruncate' | 'cut'): never {
    const code = (cause as NodeJS.ErrnoException).code;
    this.failed = Object.assign(new EtcdError('DISK_FAILED', diskFaultText('io', code, syscall)),
      { cause });
    this.logger.warn({ err: String(cause), syscall },
      'wal: a write or sync failed; writes are refused until a restart recovers from the WAL');
    throw this.failed;
  }

  // writeFailed handles an error of the batch's write: a full or read-only disk cuts the tail
  // back to where the batch began (synced, so that recovery never finds part of a batch whose
  // writers were told it failed) and leaves the store usable; anything else fails it.
  private writeFailed(cause: unknown): never {
    const code = (cause as NodeJS.ErrnoException).code;
    const kind = diskFaultKind(code, 'write');
    if (kind === 'io') this.fail(cause, 'write');
    // Nothing written (a read-only file system refuses the first write): nothing to cut, and
    // a truncate would only be refused too.
    const written = (cause as { bytesWritten?: number }).bytesWritten ?? 0;
    if (written > 0) {
      try {
        this.fs.ftruncateSync(this.fd, this.tailBytes);
        this.fs.fdatasyncSync(this.fd);
      } catch (err) {
        this.fail(err, 'ftruncate');
      }
      this.tailFileBytes = this.tailBytes;
      this.zero.truncated(this.tailBytes);
    }
    throw Object.assign(new EtcdError(diskFaultCode(kind), diskFaultText(kind, code, 'write')),
      { cause });
  }

  // commit writes the encoder's bytes at the tail and syncs them. Records are 8-byte aligned
  // and the tail's length is where the last valid record ends: a drift in either would write
  // the next batch over a record or after a hole that recovery reads as a torn tail.
  private commit(): void {
    const bytes = this.encoder.bytes();
    if (bytes.length > walBatchBytesMax) {
      throw new RangeError(`wal: batch of ${bytes.length} bytes exceeds walBatchBytesMax`);
    }
    assert(this.tailBytes % 8 === 0, 'wal: the tail ends 8-byte aligned', this.tailBytes);
    assert(bytes.length % 8 === 0, 'wal: a batch is whole records', bytes.length);
    assert(!this.zero.blocks(this.tailBytes, bytes.length),
      'wal: no batch is written where a zero fill may still land', this.zero.inFlight);
    this.extendAhead(bytes.length);
    try {
      if (failpointsEnabled) failpointErrno('walBeforeWrite', 'write');
      writeAll(this.fs, this.fd, bytes, this.tailBytes);
    } catch (err) {
      this.writeFailed(err);
    }
    try {
      if (failpointsEnabled) failpointErrno('walBeforeSync', 'fdatasync');
      this.fs.fdatasyncSync(this.fd);
    } catch (err) {
      this.fail(err, 'fsync');
    }
    if (failpointsEnabled) failpoint('walAfterSync');
    this.tailBytes += bytes.length;
    this.totalBytesWritten += bytes.length;
    this.crc = this.encoder.crc;
  }

  // extendAhead makes the tail file reach past a batch of `batchBytes` before it is written:
  // it grows in walPreallocateStepBytes steps (sparse, nothing written), as etcd preallocates
  // its segments, so the fdatasync after most writes has no file size to persist — ≈ 25 % less
  // time per sync measured here (docs/performance.md). Only the zeros of one step follow the
  // records, for recovery to read (decoder.ts reads them as the records' end). Best effort: a
  // refusal (EFBIG under a file-size limit) costs only that speed, and the write that follows
  // reports the disk's answer.
  private extendAhead(batchBytes: number): void {
    const end = this.tailBytes + batchBytes;
    if (end <= this.tailFileBytes) return;
    const size = (Math.floor(end / walPreallocateStepBytes) + 1) * walPreallocateStepBytes;
    try {
      this.fs.ftruncateSync(this.fd, size);
      this.tailFileBytes = size;
    } catch {
      // The write below meets the same limit and reports it.
    }
  }

  // maybeCut cuts when the tail is full. The batch before it is durable whatever happens
  // here, so a cut that fails before its rename (a full disk) is only put off: the tail grows
  // and the next batch tries again. One that fails after the rename fails the store (cut).
  private maybeCut(): void {
    if (this.tailBytes < this.segmentSizeBytes || this.failed !== undefined) return;
    try {
      this.cut();
    } catch (err) {
      if (this.failed !== undefined) return;
      this.logger.warn({ err: String(err) },
        'wal: could not cut a new segment; the tail segment grows until a cut succeeds');
    }
  }

  // cut starts the next segment, named `index` (the next entry's by default; cutAtSnapshot
  // names it after its snapshot): its head (crc, metadata, state) goes to a .tmp file that is
  // synced and then renamed, so a segment is never seen without its complete head. The old
  // tail is first cut back to its records (its preallocated zeros go), as etcd's cut does.
  private cut(index = this.lastIndex + 1): void {
    const prev = this.segments.at(-1);
    assert(prev !== undefined, 'wal: the store keeps its tail segment');
    const seq = prev.seq + 1;
    // Recovery refuses a segment whose first index is below its predecessor's (readWal).
    assert(index >= prev.index, 'wal: a segment index is not below its predecessor\'s',
      [index, prev.name]);
    const name = walSegmentName(seq, index);
    const enc = this.encoder;
    enc.reset(this.crc);
    encodeSegmentHead(enc, this.crc, this.metadata, this.hardState);
    const bytes = enc.bytes();
    const final = path.join(this.walDir, name);
    const tmp = final + tmpSuffix;
    if (this.tailFileBytes > this.tailBytes) {
      this.fs.ftruncateSync(this.fd, this.tailBytes); // refused: the cut is put off
      try {
        this.fs.fdatasyncSync(this.fd);
      } catch (err) {
        this.fail(err, 'fsync');
      }
      this.tailFileBytes = this.tailBytes;
      this.zero.truncated(this.tailBytes);
    }
    const fd = this.fs.openSync(tmp, 'w+');
    let renamed = false;
    try {
      writeAll(this.fs, fd, bytes, 0);
      this.fs.fdatasyncSync(fd);
      this.fs.renameSync(tmp, final);
      renamed = true;
      fsyncDir(this.fs, this.walDir);
    } catch (err) {
      this.fs.closeSync(fd);
      // Renamed, the new segment is there (or may be, after a crash) while appends would go on
      // to the old tail: the chain would break. Only a restart can sort it out.
      if (renamed) this.fail(err, 'cut');
      try {
        this.fs.unlinkSync(tmp);
      } catch {
        // open removes leftover .tmp files
      }
      throw err;
    }
    // The descriptor follows the file through the rename; the old tail is already synced.
    this.fs.closeSync(this.fd);
    this.fd = fd;
    this.tailBytes = bytes.length;
    this.tailFileBytes = bytes.length;
    this.totalBytesWritten += bytes.length;
    this.crc = enc.crc;
    this.segments.push({ seq, index, name });
    this.zero.cut(this.tailPath(), this.tailBytes);
    this.logger.info({ segment: name }, 'wal: created a new segment');
  }

  private tailPath(): string {
    return path.join(this.walDir, this.segments.at(-1)!.name);
  }
}

// ---- helpers ----

/** SegmentFile is a segment's name and whole contents, as open reads it. */
type SegmentFile = { name: string; bytes: Uint8Array };

/** readSegments reads what open needs of the segments `names` (at least one), each once: the
 * newest alone when that is enough (readFromNewest, which also loaded the snapshot), else the
 * older ones too. */
function readSegments(dataDir: string, names: WalSegmentName[],
  opts: { logger: StoreLogger; fsOps: FsOps }):
  { fast: ReturnType<typeof readFromNewest>; files: SegmentFile[]; scan: WalScan } {
  const walDir = walDirOf(dataDir);
  const read = (n: WalSegmentName): SegmentFile =>
    ({ name: n.name, bytes: opts.fsOps.readFileSync(path.join(walDir, n.name)) });
  const newest = read(names.at(-1)!);
  const fast = readFromNewest(dataDir, names, newest, opts);
  if (fast !== undefined) return { fast, files: [newest], scan: fast.scan };
  const files = [...names.slice(0, -1).map(read), newest];
  return { fast, files, scan: readWal(files) };
}

/**
 * readFromNewest is open's short way: when the newest segment holds a usable snapshot marker
 * at or above its own first index (cutAtSnapshot starts one so) and that snapshot's file
 * loads, recovery needs nothing else, and the older segments, kept so that an older snapshot
 * can be fallen back to, are not read (as etcd reads only from its snapshot's segment).
 * Undefined: open reads every segment (a damaged newest segment is then reported with the
 * rest; a snapshot file that fails is warned of again there).
 */
function readFromNewest(dataDir: string, names: WalSegmentName[], file: SegmentFile,
  opts: { logger: StoreLogger; fsOps: FsOps }):
  { scan: WalScan; snapshot: LoadedSnapshot; skipped: WalSegmentName[] } | undefined {
  const last = names.at(-1)!;
  if (names.length < 2) return undefined;
  let scan: WalScan;
  try {
    scan = readWal([file]);
  } catch {
    return undefined;
  }
  const newest = usableSnapshotMarkers(scan)[0];
  if (newest === undefined || newest.index < last.index) return undefined;
  const snapshot = loadNewestSnapshot(dataDir, { ...opts, usable: [newest] });
  if (snapshot === undefined) return undefined;
  return { scan, snapshot, skipped: names.slice(0, -1) };
}

function walSegmentNames(fsx: FsOps, dir: string): WalSegmentName[] {
  const out: WalSegmentName[] = [];
  for (const name of fsx.readdirSync(dir)) {
    const p = parseWalSegmentName(name);
    if (p !== undefined) out.push(p);
  }
  return out.sort((a, b) => a.seq - b.seq);
}
