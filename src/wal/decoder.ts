/**
 * decodeSegment reads one WAL segment's bytes back into records, checking every frame and the
 * CRC chain, and decides what a bad record means: a torn tail to cut off, or corruption to
 * refuse. The rules and their reasons are in docs/wal-format.md, "Recovery".
 */
import type { WalEntry, WalRecord } from './record.js';
import {
  RecordType,
  entryHeaderBytes,
  entryTypeValid,
  frameBytes,
  frameCheck,
  paddingFor,
  recordHeaderBytes,
} from './record.js';
import { crc32cUpdate } from './crc32c.js';
import { WalCorruptError } from './errors.js';
import { getU32 as u32, getU64 as u64 } from './little-endian.js';
import type { Index, MemberId, Term } from '../types.js';

/** SegmentDecodeOptions says where a segment sits in the log. */
export interface SegmentDecodeOptions {
  /** name is the segment's file name, used in errors. */
  readonly name: string;
  /** isLast: only the last segment may end in a torn record. */
  readonly isLast: boolean;
  /**
   * prevCrc is the running CRC at the end of the previous segment, which this segment's crc
   * record must carry. Undefined when decoding starts at this segment: the seed is adopted.
   */
  readonly prevCrc: number | undefined;
}

/** TornTail describes the damaged end of the last segment, to be truncated away. */
export interface TornTail {
  /** offset is where the first invalid record starts: truncate the file to this length. */
  readonly offset: number;
  /** reason is what check the record failed. */
  readonly reason: string;
}

/** SegmentDecodeResult is a decoded segment. */
export interface SegmentDecodeResult {
  /** records in file order, the segment's crc record first. */
  readonly records: WalRecord[];
  /** offsets[i] is the byte offset of records[i]. */
  readonly offsets: number[];
  /** crc is the running CRC after the last valid record. */
  readonly crc: number;
  /** validBytes is the length of the valid prefix: where the records end (the whole file
   * unless torn or preallocated). */
  readonly validBytes: number;
  /** torn is set when the last segment ended in a torn record (validBytes < file length). */
  readonly torn: TornTail | undefined;
}

/** plausibleRecordAfter reports whether any 8-aligned offset after `off` holds a valid frame. */
function plausibleRecordAfter(b: Uint8Array, off: number): boolean {
  for (let p = off + 8; p + frameBytes + recordHeaderBytes <= b.length; p += 8) {
    if (b[p] === 0 && b[p + 1] === 0 && b[p + 2] === 0 && b[p + 3] === 0) continue;
    if (typeof frameCheck(b, p) === 'number') return true;
  }
  return false;
}

/** zeroFrom reports whether every byte of b from `off` (8-aligned) to its end is zero. */
function zeroFrom(b: Uint8Array, off: number): boolean {
  let i = off;
  // Four bytes at a time where the view allows it: a preallocated tail is up to a MiB.
  if ((b.byteOffset + i) % 4 === 0) {
    const words = new Uint32Array(b.buffer, b.byteOffset + i, (b.length - i) >>> 2);
    for (let w = 0; w < words.length; w++) if (words[w] !== 0) return false;
    i += words.length * 4;
  }
  for (; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

/**
 * decodeSegment decodes `bytes` (a whole segment file). It returns the valid records and, for
 * the last segment, the torn tail if any. It throws WalCorruptError for a bad record in a
 * segment that is not the last, or one followed by a plausible record in the last segment.
 */
export function decodeSegment(bytes: Uint8Array, opts: SegmentDecodeOptions): SegmentDecodeResult {
  const records: WalRecord[] = [];
  const offsets: number[] = [];
  let crc = opts.prevCrc ?? 0;
  let off = 0;
  let failure: string | undefined;
  while (off < bytes.length) {
    const checked = frameCheck(bytes, off);
    if (typeof checked === 'string') {
      failure = checked;
      break;
    }
    const len = checked;
    const body = off + frameBytes;
    const type = bytes[body + 4]!;
    const payload = body + recordHeaderBytes;
    let seed = crc;
    if (records.length === 0) {
      if (type !== RecordType.crc) {
        failure = 'segment does not start with a crc record';
        break;
      }
      seed = u32(bytes, payload);
    }
    const sum = crc32cUpdate(seed, bytes, body + 4, body + len);
    if (sum !== u32(bytes, body)) {
      failure = 'crc mismatch';
      break;
    }
    if (type === RecordType.crc && records.length > 0) {
      failure = 'crc record inside a segment';
      break;
    }
    const rec = decodeBody(bytes, type, payload, body + len);
    if (typeof rec === 'string') {
      failure = rec;
      break;
    }
    if (rec.type === 'crc' && opts.prevCrc !== undefined && rec.prevCrc !== opts.prevCrc) {
      // A valid record that breaks the chain: the previous segment ended elsewhere than this
      // one says. Never a torn write, whatever follows.
      throw new WalCorruptError(opts.name, off, 'crc chain broken between segments');
    }
    crc = sum;
    records.push(rec);
    offsets.push(off);
    off = body + len + paddingFor(len);
  }
  let torn: TornTail | undefined;
  // Zeros from the first invalid offset to the end of the file are the segment's preallocated
  // space (wal-store.ts extends the tail ahead of its records): the records end there.
  if ((failure === 'zero frame' || failure === 'short frame') && zeroFrom(bytes, off)) {
    failure = undefined;
  }
  if (failure !== undefined) {
    if (!opts.isLast || plausibleRecordAfter(bytes, off)) {
      throw new WalCorruptError(opts.name, off, failure);
    }
    torn = { offset: off, reason: failure };
  }
  return { records, offsets, crc, validBytes: off, torn };
}

/**
 * decodeFramedEntries reads back entries framed by frameEntries (their CRC fields unset, so
 * unchecked): their data views `bytes`. It throws a RangeError for anything that is not a run
 * of whole entry records.
 */
export function decodeFramedEntries(bytes: Uint8Array): WalEntry[] {
  const entries: WalEntry[] = [];
  let off = 0;
  while (off < bytes.length) {
    const len = frameCheck(bytes, off);
    if (typeof len === 'string') throw new RangeError(`wal: framed entries at ${off}: ${len}`);
    const body = off + frameBytes;
    const type = bytes[body + 4]!;
    const rec = decodeBody(bytes, type, body + recordHeaderBytes, body + len);
    if (typeof rec === 'string' || rec.type !== 'entry') {
      throw new RangeError(`wal: framed entries at ${off}: ${typeof rec === 'string' ? rec
        : `a ${rec.type} record`}`);
    }
    entries.push(rec.entry);
    off = body + len + paddingFor(len);
  }
  return entries;
}

// decodeBody turns a CRC-checked body into a record, or says why its values are impossible.
function decodeBody(b: Uint8Array, type: number, p: number, end: number): WalRecord | string {
  switch (type) {
    case RecordType.entry: {
      const term = u64(b, p);
      const index = u64(b, p + 8);
      const entryType = b[p + 16]!;
      if (term < 0 || index < 0 || !entryTypeValid(entryType)) return 'impossible entry header';
      return {
        type: 'entry',
        entry: {
          term: term as Term,
          index: index as Index,
          type: entryType,
          data: b.subarray(p + entryHeaderBytes, end),
        },
      };
    }
    case RecordType.state: {
      const term = u64(b, p);
      const vote = u64(b, p + 8);
      const commit = u64(b, p + 16);
      if (term < 0 || vote < 0 || commit < 0) return 'impossible hard state';
      return {
        type: 'state',
        state: { term: term as Term, vote: vote as MemberId, commit: commit as Index },
      };
    }
    case RecordType.metadata: {
      const nodeId = u64(b, p);
      const clusterId = u64(b, p + 8);
      if (nodeId < 0 || clusterId < 0) return 'impossible metadata';
      return { type: 'metadata', nodeId: nodeId as MemberId, clusterId };
    }
    case RecordType.snapshot: {
      const index = u64(b, p);
      const term = u64(b, p + 8);
      if (index < 0 || term < 0) return 'impossible snapshot marker';
      return { type: 'snapshot', index: index as Index, term: term as Term };
    }
    case RecordType.crc:
      return { type: 'crc', prevCrc: u32(b, p) };
    default:
      return `unknown record type ${type}`;
  }
}
