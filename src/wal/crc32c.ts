/**
 * CRC32C (Castagnoli). The WAL checksums every byte it writes and reads, so this sits on the
 * hot path of every append and of recovery. Two implementations give the same sums:
 * - `@node-rs/crc32`, a native add-on using the CPU's CRC32C instructions: ≈ 6 GB/s here
 *   (170 MB in 27 ms), but each call crosses into native code (≈ 150 ns);
 * - table-driven JavaScript with slicing-by-8 (eight bytes per step, eight 256-entry tables,
 *   about 5x the byte-at-a-time loop in V8): ≈ 0.7 GB/s (170 MB in 240 ms).
 * Spans of nativeCrcBytesMin bytes or more go native once the add-on is installed (a thread's
 * shell calls useNativeCrc32c; where it does not load, nothing changes but the speed);
 * smaller ones (a WAL record's header, a small entry) stay in JavaScript, where they are as
 * fast. A 1,000,000-key snapshot is checked in ≈ 30 ms instead of ≈ 250 ms at a restart.
 */

/** nativeCrcBytesMin: the span length from which the native add-on is faster than the table
 * loop, call cost included (both ≈ 0.2 µs at 200 bytes). */
export const nativeCrcBytesMin = 1024;

/** NativeCrc32c is the add-on's signature: the CRC32C of input, continuing initialState. */
export type NativeCrc32c = (input: Uint8Array, initialState?: number) => number;

/** nativeCrc32c: the add-on installed by useNativeCrc32c (a pure core loads no add-on: the
 * WAL writer's shell does, actors/wal/native-crc.ts); undefined, the tables do all the work,
 * with the same results. */
let nativeCrc32c: NativeCrc32c | undefined;

/** useNativeCrc32c installs (or with undefined removes) the native CRC32C for this thread. */
export function useNativeCrc32c(fn: NativeCrc32c | undefined): void {
  nativeCrc32c = fn;
}

/** nativeCrc32cInUse reports whether spans of nativeCrcBytesMin and more go native here. */
export function nativeCrc32cInUse(): boolean {
  return nativeCrc32c !== undefined;
}

/** castagnoliPolynomial is CRC32C's polynomial in reflected (LSB-first) form. */
const castagnoliPolynomial = 0x82f63b78;

/** crcTables holds table k at [k*256, k*256+256): the CRC of a byte followed by k zero bytes. */
const crcTables = buildTables();

function buildTables(): Uint32Array {
  const t = new Uint32Array(8 * 256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ castagnoliPolynomial : c >>> 1;
    t[i] = c >>> 0;
  }
  for (let i = 0; i < 256; i++) {
    for (let k = 1; k < 8; k++) {
      const prev = t[(k - 1) * 256 + i]!;
      t[k * 256 + i] = (prev >>> 8) ^ t[prev & 0xff]!;
    }
  }
  return t;
}

/**
 * crc32cUpdate continues a CRC32C over bytes[start, end): `crc32cUpdate(crc32cUpdate(0, a), b)`
 * equals the CRC of `a` followed by `b`, which is what the WAL's chained checksum needs.
 * `crc` is a finished CRC (0 for the empty input); the result is an unsigned 32-bit number.
 */
export function crc32cUpdate(
  crc: number,
  bytes: Uint8Array,
  start = 0,
  end = bytes.length,
): number {
  if (nativeCrc32c !== undefined && end - start >= nativeCrcBytesMin) {
    return nativeCrc32c(bytes.subarray(start, end), crc) >>> 0;
  }
  return crc32cTables(crc, bytes, start, end);
}

/** crc32cTables is crc32cUpdate in JavaScript alone (slicing-by-8), whatever the length. */
export function crc32cTables(crc: number, bytes: Uint8Array, start = 0, end = bytes.length):
  number {
  const t = crcTables;
  let c = ~crc;
  let i = start;
  // Eight bytes per step: fold the CRC into the first four, then look up all eight at once.
  for (const last8 = end - 8; i <= last8; i += 8) {
    const a =
      c ^ (bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24));
    const b = bytes[i + 4]! | (bytes[i + 5]! << 8) | (bytes[i + 6]! << 16) | (bytes[i + 7]! << 24);
    c =
      t[1792 + (a & 0xff)]! ^
      t[1536 + ((a >>> 8) & 0xff)]! ^
      t[1280 + ((a >>> 16) & 0xff)]! ^
      t[1024 + (a >>> 24)]! ^
      t[768 + (b & 0xff)]! ^
      t[512 + ((b >>> 8) & 0xff)]! ^
      t[256 + ((b >>> 16) & 0xff)]! ^
      t[b >>> 24]!;
  }
  for (; i < end; i++) c = t[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

/** crc32c returns the CRC32C of all of `bytes`. */
export function crc32c(bytes: Uint8Array): number {
  return crc32cUpdate(0, bytes, 0, bytes.length);
}
