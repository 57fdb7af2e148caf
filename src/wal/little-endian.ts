/**
 * Little-endian fixed-width integers, the one codec the WAL's record framing and the snapshot
 * file header share (docs/wal-format.md). A u64 is held as a JS number, so only values up to
 * 2^53 - 1 are representable: writers assert it (a larger value is a bug), readers return -1
 * for a stored value above it (a damaged or foreign file, which the caller reports).
 */
import { assert } from '../assert.js';

/** maxSafeHigh32 is the largest high word of a u64 that is still a JS safe integer. */
export const maxSafeHigh32 = 0x1fffff;
const two32 = 0x1_0000_0000;

/** getU32 reads the unsigned 32-bit integer at `p`. Callers check lengths before reading (a
 * short record is their typed error); reading past the end anyway is a bug, which would
 * otherwise read zeros. */
export function getU32(b: Uint8Array, p: number): number {
  assert(p >= 0 && p + 4 <= b.length, 'a 4-byte read lies within the buffer', p);
  return (b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24)) >>> 0;
}

/** getU64 reads the u64 at `p`, or returns -1 when it is above Number.MAX_SAFE_INTEGER. */
export function getU64(b: Uint8Array, p: number): number {
  const hi = getU32(b, p + 4);
  return hi > maxSafeHigh32 ? -1 : hi * two32 + getU32(b, p);
}

/** putU32 writes the low 32 bits of `v` at `p`. */
export function putU32(b: Uint8Array, p: number, v: number): void {
  b[p] = v;
  b[p + 1] = v >>> 8;
  b[p + 2] = v >>> 16;
  b[p + 3] = v >>> 24;
}

/**
 * putU64 writes `v` at `p`. Every value the WAL stores is a safe non-negative integer by type,
 * so anything else is a bug and fails the assertion rather than writing a wrong number.
 */
export function putU64(b: Uint8Array, p: number, v: number): void {
  assert(Number.isSafeInteger(v) && v >= 0, 'a stored u64 is a safe non-negative integer', v);
  putU32(b, p, v >>> 0);
  putU32(b, p + 4, Math.floor(v / two32));
}
