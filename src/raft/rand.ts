/**
 * A small seeded PRNG (mulberry32) so that everything random in the core — today only the
 * election timeout — is reproducible from a seed; the core has no other source of chance.
 */

/** seededRng returns a generator of floats in [0,1) fully determined by `seed` (any integer). */
export function seededRng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** randomInt returns an integer in [lo, hi) drawn from `rng`. */
export function randomInt(rng: () => number, lo: number, hi: number): number {
  return lo + Math.floor(rng() * (hi - lo));
}
