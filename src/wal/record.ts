/**
 * The WAL's record types and their fixed sizes. The byte layout is specified in
 * docs/wal-format.md; encoder.ts and decoder.ts are its only readers and writers.
 */
import type { Index, MemberId, Term } from '../types.js';

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
 * EntryType is etcd-raft's entry type, by name (the same strings as src/raft, so a Raft entry is
 * a WalEntry without conversion). On disk it is a byte: its position in `entryTypes`.
 */
export type EntryType = 'EntryNormal' | 'EntryConfChange' | 'EntryConfChangeV2';
/** entryTypes maps the on-disk entry type byte to its name (etcd-raft's numbering). */
export const entryTypes: readonly EntryType[] = [
  'EntryNormal',
  'EntryConfChange',
  'EntryConfChangeV2',
];

/** entryTypeByte returns an entry type's on-disk byte, or -1 for an unknown type. */
export function entryTypeByte(t: EntryType): number {
  return t === 'EntryNormal' ? 0 : t === 'EntryConfChange' ? 1 : t === 'EntryConfChangeV2' ? 2 : -1;
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

/**
 * WalRecordInput is one record a caller asks the WAL to persist. crc records are the WAL's own
 * business and cannot be appended.
 */
export type WalRecordInput =
  | ({ readonly type: 'metadata' } & WalMetadata)
  | { readonly type: 'entry'; readonly entry: WalEntry }
  | { readonly type: 'state'; readonly state: HardState }
  | ({ readonly type: 'snapshot' } & SnapshotMarker);

/** WalRecord is one decoded record: an input record or a crc record. */
export type WalRecord = WalRecordInput | { readonly type: 'crc'; readonly prevCrc: number };

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

/** maxSafeHigh32 is the largest high word of a u64 that is still a JS safe integer. */
export const maxSafeHigh32 = 0x1fffff;
