/**
 * WalEncoder turns records into the bytes of docs/wal-format.md, appending them to one reusable
 * buffer so that a group commit of many small entries costs one buffer and one write.
 */
import { assert } from '../assert.js';
import type { Index, Term } from '../types.js';
import { walRecordBytesMax } from '../constants.js';
import type {
  FramedEntries, HardState, SnapshotMarker, WalEntry, WalMetadata, WalRecordInput,
} from './record.js';
import {
  RecordType,
  entryHeaderBytes,
  entryTypeValid,
  frameBytes,
  frameCheck,
  frameHighWord,
  payloadBytes,
  recordHeaderBytes,
  paddingFor,
  recordSizeBytes,
} from './record.js';
import { crc32cUpdate } from './crc32c.js';
import { getU64, putU32, putU64 } from './little-endian.js';

/** encoderInitialBytes is the encoder's first buffer size; it doubles when a batch needs more. */
const encoderInitialBytes = 64 * 1024;

/**
 * WalEncoder accumulates encoded records. `crc` is the running CRC after the last record added;
 * `bytes()` returns a view of everything added since `reset`, valid until the next add or reset.
 * The buffer is reused across batches: a batch's allocation cost is zero once it has grown.
 * An encoder that is not `chained` leaves every record's CRC field zero and `crc` at its
 * seed: it frames records for another encoder to chain (frameEntries, addFramed).
 */
export class WalEncoder {
  /** crc is the running CRC32C after the last record added (the chain's current value). */
  crc: number;
  private buf: Uint8Array;
  private len = 0;

  constructor(crc = 0, initialBytes = encoderInitialBytes, private readonly chained = true) {
    this.crc = crc >>> 0;
    this.buf = new Uint8Array(initialBytes);
  }

  /** length is the number of encoded bytes since the last reset. */
  get length(): number {
    return this.len;
  }

  /** reset forgets the encoded bytes (keeping the buffer) and optionally re-seeds the chain. */
  reset(crc: number = this.crc): void {
    this.len = 0;
    this.crc = crc >>> 0;
  }

  /** bytes is a view of the records encoded since reset; the next add may overwrite it. */
  bytes(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }

  /** add encodes any input record. */
  add(r: WalRecordInput): void {
    switch (r.type) {
      case 'entry':
        return this.addEntry(r.entry);
      case 'state':
        return this.addState(r.state);
      case 'metadata':
        return this.addMetadata(r);
      case 'snapshot':
        return this.addSnapshot(r);
      case 'framed':
        return this.addFramed(r);
      default: {
        const never: never = r;
        throw new Error(`wal: unknown record ${JSON.stringify(never)}`);
      }
    }
  }

  /** addEntry encodes a Raft entry record: term, index, entry type, data. */
  addEntry(e: WalEntry): void {
    const t = e.type;
    if (!entryTypeValid(t)) throw new RangeError(`wal: unknown entry type ${String(t)}`);
    const p = this.begin(RecordType.entry, entryHeaderBytes + e.data.length);
    putU64(this.buf, p, e.term);
    putU64(this.buf, p + 8, e.index);
    this.buf[p + 16] = t;
    this.buf.set(e.data, p + entryHeaderBytes);
    this.finish(p + entryHeaderBytes + e.data.length);
  }

  /** addState encodes a hard state record. */
  addState(s: HardState): void {
    const p = this.begin(RecordType.state, payloadBytes[RecordType.state]);
    putU64(this.buf, p, s.term);
    putU64(this.buf, p + 8, s.vote);
    putU64(this.buf, p + 16, s.commit);
    this.finish(p + 24);
  }

  /** addMetadata encodes a metadata record (node id, cluster id). */
  addMetadata(m: WalMetadata): void {
    const p = this.begin(RecordType.metadata, payloadBytes[RecordType.metadata]);
    putU64(this.buf, p, m.nodeId);
    putU64(this.buf, p + 8, m.clusterId);
    this.finish(p + 16);
  }

  /** addSnapshot encodes a snapshot marker record (index, term). */
  addSnapshot(m: SnapshotMarker): void {
    const p = this.begin(RecordType.snapshot, payloadBytes[RecordType.snapshot]);
    putU64(this.buf, p, m.index);
    putU64(this.buf, p + 8, m.term);
    this.finish(p + 16);
  }

  /**
   * addFramed appends entry records framed by frameEntries and chains their CRCs: one pass
   * that checks each frame (frameCheck, as recovery does), copies it and computes its CRC,
   * with no decoding. onEntry, when given, sees each entry's term and index (the store checks
   * that they follow the log). The frames come from this process (the Raft node), so one that
   * is not a whole entry record is a bug, and fails an assertion before the batch is written.
   */
  addFramed(f: FramedEntries, onEntry?: (term: Term, index: Index) => void): void {
    const src = f.bytes;
    if (this.len + src.length > this.buf.length) this.grow(this.len + src.length);
    const b = this.buf;
    const base = this.len;
    b.set(src, base);
    let crc = this.crc;
    for (let off = 0; off < src.length;) {
      const len = frameCheck(src, off);
      // Once per entry written: the failure's details are built only on a failure.
      if (typeof len !== 'number' || src[off + frameBytes + 4] !== RecordType.entry) {
        assert(false, 'wal: a framed record is a whole entry record', [off, len]);
      }
      const body = base + off + frameBytes;
      crc = crc32cUpdate(crc, b, body + 4, body + len);
      putU32(b, body, crc);
      const payload = off + frameBytes + recordHeaderBytes;
      onEntry?.(getU64(src, payload) as Term, getU64(src, payload + 8) as Index);
      off += frameBytes + len + paddingFor(len);
    }
    this.crc = crc;
    this.len = base + src.length;
  }

  /**
   * addCrc encodes the crc record that opens a segment. Its payload is `prevCrc`, which becomes
   * the chain's seed: a reader that starts at this segment adopts it.
   */
  addCrc(prevCrc: number): void {
    this.crc = prevCrc >>> 0;
    const p = this.begin(RecordType.crc, payloadBytes[RecordType.crc]);
    putU32(this.buf, p, prevCrc >>> 0);
    this.finish(p + 4);
  }

  // begin reserves a whole record, writes its frame and type, and returns the payload offset.
  // The record's start is remembered in `start` for finish.
  private start = 0;
  private begin(type: number, payload: number): number {
    const len = recordHeaderBytes + payload;
    if (len > walRecordBytesMax) {
      throw new RangeError(`wal: record of ${len} bytes exceeds walRecordBytesMax`);
    }
    const size = recordSizeBytes(payload);
    assert(this.len % 8 === 0, 'wal: records start 8-byte aligned', this.len);
    if (this.len + size > this.buf.length) this.grow(this.len + size);
    const s = this.len;
    putU32(this.buf, s, len);
    putU32(this.buf, s + 4, frameHighWord(len));
    this.buf[s + frameBytes + 4] = type;
    this.start = s;
    return s + frameBytes + recordHeaderBytes;
  }

  // finish zeroes the padding (the buffer is reused, so it may hold old bytes), computes the
  // chained CRC over type + payload and stores it at the body's head.
  private finish(bodyEnd: number): void {
    const s = this.start;
    const end = s + recordSizeBytes(bodyEnd - s - frameBytes - recordHeaderBytes);
    this.buf.fill(0, bodyEnd, end);
    const body = s + frameBytes;
    if (this.chained) this.crc = crc32cUpdate(this.crc, this.buf, body + 4, bodyEnd);
    putU32(this.buf, body, this.chained ? this.crc : 0);
    this.len = end;
  }

  private grow(need: number): void {
    let size = this.buf.length * 2;
    while (size < need) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }
}

/**
 * encodeRecords encodes a batch into a fresh Uint8Array, chained from `prevCrc`, and returns
 * the bytes with the new running CRC. Convenient for tests and tools; the writer reuses one
 * WalEncoder instead.
 */
export function encodeRecords(
  records: readonly WalRecordInput[],
  prevCrc: number,
): { bytes: Uint8Array; crc: number } {
  const enc = new WalEncoder(prevCrc, 1024);
  for (const r of records) enc.add(r);
  return { bytes: enc.bytes().slice(), crc: enc.crc };
}

/** encodeSegmentHead encodes the records that open a segment: crc, then metadata and state. */
export function encodeSegmentHead(
  enc: WalEncoder,
  prevCrc: number,
  metadata: WalMetadata | undefined,
  state: HardState | undefined,
): void {
  enc.addCrc(prevCrc);
  if (metadata !== undefined) enc.addMetadata(metadata);
  if (state !== undefined) enc.addState(state);
}

/**
 * frameEntries lays entries out as the WAL's entry records, in a buffer of exactly their size,
 * with their CRC fields zero: the WAL writer copies them as they are and chains the CRCs
 * (WalEncoder.addFramed). Decoded back by decodeFramedEntries.
 */
export function frameEntries(entries: readonly WalEntry[]): Uint8Array {
  let size = 0;
  for (const e of entries) size += recordSizeBytes(entryHeaderBytes + e.data.length);
  const enc = new WalEncoder(0, size, false);
  for (const e of entries) enc.addEntry(e);
  assert(enc.length === size, 'wal: framed entries fill their buffer', [enc.length, size]);
  return enc.bytes();
}
