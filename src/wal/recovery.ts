/**
 * Recovery: from the bytes of the segments on disk to the state Raft restarts with. Two steps,
 * so the shell can choose a snapshot between them: `readWal` decodes every segment with one
 * CRC chain and finds the torn tail; `foldWal` replays the records from a snapshot exactly as
 * etcd's WAL.ReadAll does (a later entry replaces the entry at its index and all after it).
 */
import type {
  HardState,
  SnapshotMarker,
  WalEntry,
  WalMetadata,
  WalRecord,
} from './record.js';
import { assert, assertNever } from '../assert.js';
import { decodeSegment } from './decoder.js';
import type { TornTail } from './decoder.js';
import { WalCorruptError } from './errors.js';
import { parseWalSegmentName } from './segment-name.js';
import type { WalSegmentName } from './segment-name.js';

/** WalSegmentInput is one segment file: its name and its whole contents. */
export interface WalSegmentInput {
  readonly name: string;
  readonly bytes: Uint8Array;
}

/** ScannedSegment is one decoded segment. */
export interface ScannedSegment extends WalSegmentName {
  readonly records: WalRecord[];
  readonly offsets: number[];
  readonly validBytes: number;
}

/** WalScan is every valid record on disk, in order, with the torn tail (if any). */
export interface WalScan {
  readonly segments: ScannedSegment[];
  /** crc is the running CRC after the last valid record: the writer continues from it. */
  readonly crc: number;
  /** torn is the last segment's torn tail, to truncate. */
  readonly torn: (TornTail & { readonly file: string }) | undefined;
  /** markers are all snapshot markers found, in log order. */
  readonly markers: SnapshotMarker[];
  /** hardState is the last hard state found. */
  readonly hardState: HardState | undefined;
}

/**
 * readWal decodes all segments in sequence order. Names must parse and sequence numbers must
 * be contiguous; the first segment's crc record seeds the chain, which then runs through all.
 * Throws WalCorruptError on any corruption; a torn end of the last segment is reported instead.
 */
export function readWal(segments: readonly WalSegmentInput[]): WalScan {
  const named = segments.map((s) => {
    const n = parseWalSegmentName(s.name);
    if (n === undefined) throw new WalCorruptError(s.name, 0, 'not a WAL segment name');
    return { n, bytes: s.bytes };
  });
  named.sort((a, b) => a.n.seq - b.n.seq);
  const out: ScannedSegment[] = [];
  const markers: SnapshotMarker[] = [];
  let hardState: HardState | undefined;
  let crc: number | undefined;
  let torn: WalScan['torn'];
  for (let i = 0; i < named.length; i++) {
    const { n, bytes } = named[i]!;
    if (i > 0) {
      const prev = named[i - 1]!.n;
      if (n.seq !== prev.seq + 1) {
        throw new WalCorruptError(n.name, 0, `segment sequence gap after ${prev.name}`);
      }
      if (n.index < prev.index) {
        throw new WalCorruptError(n.name, 0, `segment index below ${prev.name}'s`);
      }
    }
    const isLast = i === named.length - 1;
    const d = decodeSegment(bytes, { name: n.name, isLast, prevCrc: crc });
    crc = d.crc;
    if (d.torn !== undefined) torn = { ...d.torn, file: n.name };
    for (const r of d.records) {
      if (r.type === 'snapshot') markers.push({ index: r.index, term: r.term });
      else if (r.type === 'state') hardState = r.state;
    }
    out.push({ ...n, records: d.records, offsets: d.offsets, validBytes: d.validBytes });
  }
  return { segments: out, crc: crc ?? 0, torn, markers, hardState };
}

/**
 * usableSnapshotMarkers lists the markers recovery may start from, newest first: those at or
 * below the last hard state's commit (etcd's ValidSnapshotEntries). A marker above commit
 * names state this member cannot yet prove committed, so it is not used.
 */
export function usableSnapshotMarkers(scan: WalScan): SnapshotMarker[] {
  const commit = scan.hardState?.commit ?? 0;
  return scan.markers.filter((m) => m.index <= commit).reverse();
}

/** RecoveredWal is the state the WAL gives back to Raft at start. */
export interface RecoveredWal {
  readonly metadata: WalMetadata | undefined;
  readonly hardState: HardState | undefined;
  /** snapshot is the snapshot recovery started from; undefined for the log's beginning. */
  readonly snapshot: SnapshotMarker | undefined;
  /** entries follow snapshot.index contiguously (entries[i].index = snapshot.index + 1 + i). */
  readonly entries: WalEntry[];
  /** lastIndex is the index of the last entry or marker written (etcd's enti). */
  readonly lastIndex: number;
}

/**
 * foldWal replays a scan from `start` (undefined: from the log's beginning, index 0).
 * Entries at or below start.index are skipped; later ones must follow without a gap and
 * replace any entry at their index and after. Metadata records must agree. A non-zero start
 * must have a matching marker, and the first segment must begin at or below start.index.
 */
export function foldWal(scan: WalScan, start: SnapshotMarker | undefined): RecoveredWal {
  const startIndex: number = start?.index ?? 0;
  const first = scan.segments[0];
  if (first !== undefined && first.index > startIndex) {
    throw new WalCorruptError(
      first.name,
      0,
      `snapshot index ${startIndex} precedes the oldest segment: its entries were released`,
    );
  }
  const f: Fold = {
    start, startIndex, metadata: undefined, hardState: undefined,
    matched: startIndex === 0, lastIndex: 0, entries: [],
  };
  for (const seg of scan.segments) {
    const { records, offsets } = seg;
    for (let i = 0; i < records.length; i++) foldRecord(f, records[i]!, seg.name, offsets[i]!);
  }
  if (!f.matched) {
    const name = scan.segments[0]?.name ?? '(no segments)';
    throw new WalCorruptError(name, 0, `snapshot marker for index ${startIndex} not found`);
  }
  const { entries } = f;
  for (let i = 0; i < entries.length; i++) {
    assert(entries[i]!.index === startIndex + 1 + i, 'wal: recovered entries are contiguous');
  }
  const snapshot =
    start === undefined || start.index === 0 ? undefined : { index: start.index, term: start.term };
  const { metadata, hardState, lastIndex } = f;
  return { metadata, hardState, snapshot, entries, lastIndex };
}

/** Fold is foldWal's state while it replays the records in log order. */
interface Fold {
  readonly start: SnapshotMarker | undefined;
  /** startIndex is start.index, or 0 from the log's beginning. */
  readonly startIndex: number;
  metadata: WalMetadata | undefined;
  hardState: HardState | undefined;
  /** matched: the marker of start was found (true from the beginning when startIndex is 0). */
  matched: boolean;
  lastIndex: number;
  /** entries follow startIndex contiguously: entries[i].index = startIndex + 1 + i. */
  readonly entries: WalEntry[];
}

/** foldRecord replays one record, found at `offset` in segment `file`, into f. */
function foldRecord(f: Fold, r: WalRecord, file: string, offset: number): void {
  switch (r.type) {
    case 'entry': {
      const e = r.entry;
      if (e.index > f.startIndex) {
        const at = e.index - f.startIndex - 1;
        if (at > f.entries.length) {
          throw new WalCorruptError(file, offset,
            `entry index ${e.index} leaves a gap after ${f.startIndex + f.entries.length}`);
        }
        f.entries.length = at;
        f.entries.push(e);
      }
      f.lastIndex = e.index;
      return;
    }
    case 'state':
      f.hardState = r.state;
      return;
    case 'metadata': {
      const m = f.metadata;
      if (m !== undefined && (m.nodeId !== r.nodeId || m.clusterId !== r.clusterId)) {
        throw new WalCorruptError(file, offset, 'metadata conflict');
      }
      f.metadata = { nodeId: r.nodeId, clusterId: r.clusterId };
      return;
    }
    case 'snapshot':
      if (f.start !== undefined && r.index === f.start.index) {
        if (r.term !== f.start.term) {
          throw new WalCorruptError(file, offset,
            `snapshot marker term ${r.term} does not match snapshot term ${f.start.term}`);
        }
        f.matched = true;
      }
      if (r.index > f.lastIndex) f.lastIndex = r.index;
      return;
    case 'crc':
      return;
    default:
      assertNever(r);
  }
}

/** recoverWal is readWal then foldWal: the recovered state from segments and a snapshot. */
export function recoverWal(
  segments: readonly WalSegmentInput[],
  start: SnapshotMarker | undefined,
): RecoveredWal & { readonly scan: WalScan } {
  const scan = readWal(segments);
  return { ...foldWal(scan, start), scan };
}

/** markerEquals compares two snapshot positions. */
export function markerEquals(a: { index: number; term: number }, b: SnapshotMarker): boolean {
  return a.index === (b.index as number) && a.term === (b.term as number);
}
