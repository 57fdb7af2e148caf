import test from 'ava';
import fc from 'fast-check';
import { decoderTargets } from './fuzz/decoders.js';

// Fuzzing the decoders of what the outside world wrote (test/fuzz/decoders.ts): WAL segments,
// snapshot files, peer frames, each mutated from a valid input. CI runs a bounded number per
// decoder (FUZZ_RUNS to change it; `npm run fuzz` is the long mode); a failure prints the
// shrunk input and the seed that replays it (FUZZ_SEED).

const runs = Number(process.env.FUZZ_RUNS ?? 3_000);
// A fixed seed by default (a deterministic suite); FUZZ_SEED=random or a number explores.
const seedEnv = process.env.FUZZ_SEED ?? '20261130';
const seed = seedEnv === 'random' ? undefined : Number(seedEnv);

for (const target of decoderTargets) {
  test(`fuzz: the ${target.name} decoder returns a value or its typed error, within its bound`,
    (t) => {
      const arb = target.arb as fc.Arbitrary<unknown>;
      const run = target.run as (x: unknown) => void;
      fc.assert(fc.property(arb, (x) => run(x)),
        { numRuns: runs, ...(seed === undefined ? {} : { seed }) });
      t.pass();
    });
}
