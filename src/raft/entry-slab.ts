import { entryViewBufferMax } from '../constants.js';

/**
 * entry-slab: where the data of the entries a member keeps in its Raft log lives. A fresh
 * ArrayBuffer per entry is a backing store off V8's heap, allocated, counted as external
 * memory and freed one by one on the Raft thread (the performance notes in docs/, sessions 17
 * and 20): entries are laid one after another in slabs of entryViewBufferMax bytes instead.
 * A slab holds entries only, made in log order (this member's proposals, encodeProposal; the
 * copies the log makes of entries that arrive as views into large messages,
 * MemoryStorage.append) and compacted in that order, so it is freed soon after its last
 * entry is.
 */

/** entryBytes gives n bytes for an entry's data: the next n of the current slab (a new slab
 * when they do not fit), or a buffer of its own when n is over an eighth of a slab. They are
 * fresh (zero), and a slab's must not be transferred: other entries share its buffer. */
export function entryBytes(n: number): Uint8Array {
  if (n > entryViewBufferMax / 8) return new Uint8Array(n);
  if (slabUsed + n > slab.length) {
    slab = new Uint8Array(entryViewBufferMax);
    slabUsed = 0;
  }
  const out = slab.subarray(slabUsed, slabUsed + n);
  slabUsed += n;
  return out;
}

/** slab, slabUsed: the slab entryBytes is filling (one per thread), and how much of it is
 * given out. */
let slab = new Uint8Array(0);
let slabUsed = 0;
