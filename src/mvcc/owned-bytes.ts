import type { Bytes } from '../types.js';

/**
 * ownedBytes returns b as a string of its own, for a key kept for long (in the Applier's and
 * the shards' key maps). msgpackr's native decoder extracts a message's consecutive strings
 * as one string and hands out slices of it, so a key decoded from a 128-put txn kept the
 * whole run of keys and values around it alive: 123 bytes of V8 heap per key with 100-byte
 * values, in each of the two threads holding the key map (see "Session 5" in the docs).
 * V8 copies substrings under 13 characters anyway (SlicedString::kMinLength), so those are
 * returned as they are; a copy of the others costs about one Map.set.
 */
export function ownedBytes(b: Bytes): Bytes {
  return b.length < 13 ? b : Buffer.from(b, 'latin1').toString('latin1');
}
