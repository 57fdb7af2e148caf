/**
 * The tests' one seeded generator: mulberry32, the same one the pure cores take as their
 * injected source (src/raft/rand.ts), so a seed printed by a failing test replays the same
 * sequence everywhere. `seeded(seed)` returns floats in [0, 1); `randomInt(rng, lo, hi)` an
 * integer in [lo, hi).
 */
export { seededRng as seeded, randomInt } from '../../src/raft/index.js';
