/**
 * The tests' one seeded generator: mulberry32, the same one the pure cores take as their
 * injected source (src/raft/rand.ts), so a seed printed by a failing test replays the same
 * sequence everywhere. `seeded(seed)` returns floats in [0, 1); `randomInt(rng, lo, hi)` an
 * integer in [lo, hi).
 */
export { seededRng as seeded, randomInt } from '../../src/raft/index.js';

/** binaryString is n random characters of every byte value 0–255: the store's binary strings
 * (src/bytes.ts), one rng() call a character. */
export function binaryString(rng: () => number, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += String.fromCharCode(Math.floor(rng() * 256));
  return s;
}
