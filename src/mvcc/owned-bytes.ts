import type { Bytes } from '../types.js';

/**
 * ownedBytes returns b as a string of its own, for a key kept for long (in the Applier's and
 * the shards' key maps) or searched for many times. msgpackr's native decoder extracts a
 * message's consecutive strings as one string and hands out slices of it, so a key decoded
 * from a 128-put txn kept the whole run of keys and values around it alive: 123 bytes of V8
 * heap per key with 100-byte values, in each of the two threads holding the key map (see
 * "Session 5" in the docs). A slice also compares slowly: V8's fast string comparison takes
 * only sequential strings, so each of a key map's ~14 comparisons per lookup went to the
 * runtime's general one (755 against 200 ns per OrderedMap lookup among 10,000 keys,
 * session 36). V8 copies substrings under 13 characters anyway (SlicedString::kMinLength), so
 * those are returned as they are; others are copied through a scratch buffer (≈ 120 ns for a
 * 19-byte key; a Buffer of their own past ownedScratchBytes).
 */
export function ownedBytes(b: Bytes): Bytes {
  if (b.length < 13) return b;
  if (b.length > ownedScratchBytes) return Buffer.from(b, 'latin1').toString('latin1');
  const n = scratch.write(b, 0, 'latin1');
  return scratch.toString('latin1', 0, n);
}

/** ownedScratchBytes: keys up to this long are copied through one scratch buffer. */
const ownedScratchBytes = 1024;
const scratch = Buffer.allocUnsafeSlow(ownedScratchBytes);
