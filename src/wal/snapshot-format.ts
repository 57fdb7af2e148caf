/**
 * The snapshot file format (docs/wal-format.md, "Snapshot files"): a 48-byte header carrying
 * term, index, body length and the body's CRC32C, protected by its own CRC32C, then the body.
 */
import { crc32c, crc32cUpdate } from './crc32c.js';
import { SnapshotCorruptError } from './errors.js';
import { getU32 as u32, getU64 as u64, putU32, putU64 } from './little-endian.js';

/** snapshotHeaderBytes is the fixed header in front of a snapshot body. */
export const snapshotHeaderBytes = 48;
/** snapshotMagic opens every snapshot file: ASCII "MYETSNAP". */
const snapshotMagic = [0x4d, 0x59, 0x45, 0x54, 0x53, 0x4e, 0x41, 0x50];
/** snapshotVersion is the header layout's version. */
const snapshotVersion = 1;

/** SnapshotFile is a decoded snapshot file. */
export interface SnapshotFile {
  readonly term: number;
  readonly index: number;
  /** body views the file's bytes (no copy). */
  readonly body: Uint8Array;
}

/**
 * encodeSnapshotHeader returns the header for a body given as parts (the body is their
 * concatenation). Writers write it and then the parts, so a large body is never copied into a
 * second buffer.
 */
export function encodeSnapshotHeader(term: number, index: number,
  parts: readonly Uint8Array[]): Uint8Array {
  let crc = 0;
  let length = 0;
  for (const p of parts) {
    crc = crc32cUpdate(crc, p, 0, p.length);
    length += p.length;
  }
  const h = new Uint8Array(snapshotHeaderBytes);
  h.set(snapshotMagic, 0);
  putU32(h, 8, snapshotVersion);
  putU32(h, 12, crc);
  putU64(h, 16, term);
  putU64(h, 24, index);
  putU64(h, 32, length);
  putU32(h, 40, crc32cUpdate(0, h, 0, 40));
  return h;
}

/** encodeSnapshotFile returns header and body in one buffer (a copy of the body). */
export function encodeSnapshotFile(term: number, index: number, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(snapshotHeaderBytes + body.length);
  out.set(encodeSnapshotHeader(term, index, [body]), 0);
  out.set(body, snapshotHeaderBytes);
  return out;
}

/**
 * decodeSnapshotFile checks and decodes a whole snapshot file. `name` is used in errors; when
 * `expect` is given, the header's term and index must equal it (they come from the file name).
 * Throws SnapshotCorruptError on any failed check.
 */
export function decodeSnapshotFile(
  bytes: Uint8Array,
  name: string,
  expect?: { term: number; index: number },
): SnapshotFile {
  if (bytes.length < snapshotHeaderBytes) throw new SnapshotCorruptError(name, 'short header');
  for (let i = 0; i < snapshotMagic.length; i++) {
    if (bytes[i] !== snapshotMagic[i]) throw new SnapshotCorruptError(name, 'bad magic');
  }
  if (u32(bytes, 40) !== crc32cUpdate(0, bytes, 0, 40)) {
    throw new SnapshotCorruptError(name, 'header crc mismatch');
  }
  if (u32(bytes, 8) !== snapshotVersion || u32(bytes, 44) !== 0) {
    throw new SnapshotCorruptError(name, `unknown version ${u32(bytes, 8)}`);
  }
  const term = u64(bytes, 16);
  const index = u64(bytes, 24);
  const length = u64(bytes, 32);
  if (term < 0 || index < 0 || length < 0) {
    throw new SnapshotCorruptError(name, 'impossible header values');
  }
  if (bytes.length !== snapshotHeaderBytes + length) {
    throw new SnapshotCorruptError(name, `length ${bytes.length} does not match header`);
  }
  if (expect !== undefined && (expect.term !== term || expect.index !== index)) {
    throw new SnapshotCorruptError(name, 'header term/index do not match the file name');
  }
  const body = bytes.subarray(snapshotHeaderBytes);
  if (crc32c(body) !== u32(bytes, 12)) throw new SnapshotCorruptError(name, 'crc mismatch');
  return { term, index, body };
}
