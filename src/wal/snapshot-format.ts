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
  /** body views the file's bytes (no copy): all of the body, or, for a file read as two
   * regions (see decodeSnapshotFile), the body up to the split. */
  readonly body: Uint8Array;
  /** tail: the body's bytes after the split, when the file was read as two regions. */
  readonly tail?: Uint8Array;
}

/**
 * A split body: the body may begin with splitBodyMagic and a u64 head length, followed by
 * the head (that many bytes) and the tail (the rest). Both are opaque here; a reader that
 * knows of the split reads the tail into memory of its own (a snapshot's values, kept after
 * the load, apart from its keys and columns, which are not: SnapshotBody). Any other body is
 * one region.
 */
const splitBodyMagic = [0x4d, 0x59, 0x45, 0x54, 0x53, 0x50, 0x4c, 0x54]; // "MYETSPLT"
/** splitBodyPrefixBytes: the magic and the head length in front of a split body's head. */
export const splitBodyPrefixBytes = 16;

/** encodeSplitBodyPrefix is the prefix of a split body whose head is headLength bytes. */
export function encodeSplitBodyPrefix(headLength: number): Uint8Array {
  const p = new Uint8Array(splitBodyPrefixBytes);
  p.set(splitBodyMagic, 0);
  putU64(p, 8, headLength);
  return p;
}

/** splitHeadLength reads a split body's head length from its first bytes; undefined for a
 * body that is not split (or too short to tell). */
function splitHeadLength(body: Uint8Array): number | undefined {
  if (body.length < splitBodyPrefixBytes) return undefined;
  for (let i = 0; i < splitBodyMagic.length; i++) {
    if (body[i] !== splitBodyMagic[i]) return undefined;
  }
  return u64(body, 8);
}

/**
 * snapshotFileSplitAt tells a reader of a snapshot file, from the file's first bytes (at
 * least snapshotHeaderBytes + splitBodyPrefixBytes of them), where its body's tail begins
 * in the file; undefined when the body is not split or the offset is not inside the file
 * (the checks of decodeSnapshotFile then judge the file read whole).
 */
export function snapshotFileSplitAt(first: Uint8Array, fileSize: number): number | undefined {
  const head = splitHeadLength(first.subarray(snapshotHeaderBytes));
  if (head === undefined) return undefined;
  const at = snapshotHeaderBytes + splitBodyPrefixBytes + head;
  return at < fileSize ? at : undefined;
}

/** BodyRegions is a body cut at its split: `head` without the prefix, `tail` undefined for a
 * body that is not split (then head is the whole body). */
export interface BodyRegions {
  readonly head: Uint8Array;
  readonly tail: Uint8Array | undefined;
}

/**
 * bodyRegions cuts a body at its split: given whole (a leader's snapshot), or as read in two
 * regions (`tail`: SnapshotFile's). Throws SnapshotCorruptError when the prefix names a
 * head longer than the bytes, or a tail is given to a body without a prefix.
 */
export function bodyRegions(body: Uint8Array, tail?: Uint8Array): BodyRegions {
  const n = splitHeadLength(body);
  if (n === undefined) {
    if (tail !== undefined) throw new SnapshotCorruptError('body', 'a tail without a split');
    return { head: body, tail: undefined };
  }
  const end = splitBodyPrefixBytes + n;
  if (tail !== undefined ? end !== body.length : end > body.length) {
    throw new SnapshotCorruptError('body', `split head of ${n} bytes does not fit`);
  }
  return { head: body.subarray(splitBodyPrefixBytes, end), tail: tail ?? body.subarray(end) };
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
 * A file read as two regions (at snapshotFileSplitAt) is given as `bytes` (up to the split)
 * and `tail`. Throws SnapshotCorruptError on any failed check.
 */
export function decodeSnapshotFile(
  bytes: Uint8Array,
  name: string,
  expect?: { term: number; index: number },
  tail?: Uint8Array,
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
  const fileLength = bytes.length + (tail?.length ?? 0);
  if (fileLength !== snapshotHeaderBytes + length) {
    throw new SnapshotCorruptError(name, `length ${fileLength} does not match header`);
  }
  if (expect !== undefined && (expect.term !== term || expect.index !== index)) {
    throw new SnapshotCorruptError(name, 'header term/index do not match the file name');
  }
  const body = bytes.subarray(snapshotHeaderBytes);
  let crc = crc32c(body);
  if (tail !== undefined) crc = crc32cUpdate(crc, tail, 0, tail.length);
  if (crc !== u32(bytes, 12)) throw new SnapshotCorruptError(name, 'crc mismatch');
  return { term, index, body, ...(tail === undefined ? {} : { tail }) };
}
