/**
 * The WAL's record types and their fixed sizes. The byte layout is specified in
 * docs/wal-format.md; encoder.ts and decoder.ts are its only readers and writers.
 */
import { walRecordBytesMax } from '../constants.js';
import type { Index, MemberId, Term } from '../types.js';
import { getU32 } from './little-endian.js';

/** RecordType is the type byte of a WAL record. Values are part of the on-disk format. */
export const RecordType = {
  metadata: 1,
  entry: 2,
  state: 3,
  crc: 4,
  snapshot: 5,
} as const;
export type RecordType = (typeof RecordType)[keyof typeof RecordType];

/**
 * EntryType is etcd-raft's entry type by raftpb's numbers, as src/raft uses them (so a Raft
 * entry is a WalEntry without conversion): 0 EntryNormal, 1 EntryConfChange, 2 ConfChangeV2.
 * It is stored as one byte.
 */
export type EntryType = 0 | 1 | 2;

/** entryTypeValid reports whether a number is a known entry type. */
export function entryTypeValid(t: number): t is EntryType {
  return t === 0 || t === 1 || t === 2;
}

/** WalEntry is a Raft log entry as the WAL stores it (etcd-raft's `Entry`). */
export interface WalEntry {
  readonly term: Term;
  readonly index: Index;
  readonly type: EntryType;
  /** data is opaque to the WAL. Decoded entries view the segment's bytes (no copy). */
  readonly data: Uint8Array;
}

/** HardState is Raft's persistent state (Raft §5.1, figure 2): vote 0 means none. */
export interface HardState {
  readonly term: Term;
  readonly vote: MemberId;
  readonly commit: Index;
}

/** WalMetadata identifies the member that owns this WAL; every segment repeats it. */
export interface WalMetadata {
  readonly nodeId: MemberId;
  readonly clusterId: number;
}

/** SnapshotMarker is a snapshot's position in the log (etcd's walpb.Snapshot). */
export interface SnapshotMarker {
  readonly index: Index;
  readonly term: Term;
}

/** WalPlainRecord is one record as its fields: what a caller may append, and what decoding
 * gives back (beside crc records). */
export type WalPlainRecord =
  | ({ readonly type: 'metadata' } & WalMetadata)
  | { readonly type: 'entry'; readonly entry: WalEntry }
  | { readonly type: 'state'; readonly state: HardState }
  | ({ readonly type: 'snapshot' } & SnapshotMarker);

/**
 * FramedEntries are entry records already laid out as the WAL stores them (frameEntries),
 * their CRC fields left zero: the encoder copies them and chains their CRCs. The Raft node
 * frames its entries so that the WAL writer neither decodes nor re-encodes them.
 */
export interface FramedEntries {
  readonly type: 'framed';
  readonly bytes: Uint8Array;
}

/**
 * WalRecordInput is what a caller asks the WAL to persist: records, or entry records already
 * framed. crc records are the WAL's own business and cannot be appended.
 */
export type WalRecordInput = WalPlainRecord | FramedEntries;

/** WalRecord is one decoded record: a plain record or a crc record. */
export type WalRecord = WalPlainRecord | { readonly type: 'crc'; readonly prevCrc: number };

/** frameBytes is the length field in front of every record. */
export const frameBytes = 8;
/** recordHeaderBytes is the body's fixed head: running crc u32 + type u8. */
export const recordHeaderBytes = 5;
/** entryHeaderBytes is an entry payload's fixed part: term u64, index u64, entryType u8. */
export const entryHeaderBytes = 17;
/** payloadBytes gives each fixed-size type's payload size (entries: the minimum). */
export const payloadBytes: Readonly<Record<RecordType, number>> = {
  [RecordType.metadata]: 16,
  [RecordType.entry]: entryHeaderBytes,
  [RecordType.state]: 24,
  [RecordType.crc]: 4,
  [RecordType.snapshot]: 16,
};

/** paddingFor returns the zero bytes that follow a body of `len` bytes to reach 8-alignment. */
export function paddingFor(len: number): number {
  return (8 - (len & 7)) & 7;
}

/**
 * frameHighWord is the high 32 bits of the frame in front of a body of `len` bytes: 0 when the
 * body needs no padding, else etcd's flag bit 0x80 and the pad count in the top byte.
 */
export function frameHighWord(len: number): number {
  const pad = paddingFor(len);
  return pad === 0 ? 0 : (0x80 | pad) * 0x100_0000;
}

/** recordSizeBytes is the on-disk size of a record whose payload is `payload` bytes. */
export function recordSizeBytes(payload: number): number {
  const len = recordHeaderBytes + payload;
  return frameBytes + len + paddingFor(len);
}

/** payloadSizeValid reports whether `payload` bytes is the right size for type `t`. */
export function payloadSizeValid(t: number, payload: number): boolean {
  switch (t) {
    case RecordType.entry:
      return payload >= entryHeaderBytes;
    case RecordType.metadata:
    case RecordType.state:
    case RecordType.crc:
    case RecordType.snapshot:
      return payload === payloadBytes[t];
    default:
      return false;
  }
}

/**
 * frameCheck validates the frame at `off` without the CRC: it returns the body length, or a
 * string saying why the frame cannot be a record. Used to decode, to look for plausible
 * records after a damaged one, and to take in entries framed elsewhere (WalEncoder.addFramed).
 */
export function frameCheck(b: Uint8Array, off: number): number | string {
  if (b.length - off < frameBytes) return 'short frame';
  const len = getU32(b, off);
  const hi = getU32(b, off + 4);
  if (len === 0 && hi === 0) return 'zero frame';
  if (len < recordHeaderBytes || len > walRecordBytesMax) return `impossible length ${len}`;
  if (hi !== frameHighWord(len)) return 'invalid frame padding bits';
  const end = off + frameBytes + len + paddingFor(len);
  if (end > b.length) return 'record runs past end of file';
  for (let i = off + frameBytes + len; i < end; i++) {
    if (b[i] !== 0) return 'non-zero padding';
  }
  const type = b[off + frameBytes + 4]!;
  if (!payloadSizeValid(type, len - recordHeaderBytes)) return `invalid size for type ${type}`;
  return len;
}
