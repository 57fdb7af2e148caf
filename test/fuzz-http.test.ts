import test from 'ava';
import fc from 'fast-check';
import {
  caseArb, checkAlive, checkCase, describe, type HttpCase, newStats, revision,
} from './fuzz/http.js';
import { useServer } from './helpers/server.js';

// Fuzzing every HTTP route of a real server on a real port (test/fuzz/http.ts): generated and
// mutated bodies, paths, methods and headers. CI runs a bounded number (FUZZ_HTTP_RUNS; the
// long mode is `npm run fuzz`); a failure prints the shrunk case and the seed (FUZZ_SEED).

const runs = Number(process.env.FUZZ_HTTP_RUNS ?? 400);
// A fixed seed by default, so that the suite is deterministic (a CI run never meets a case
// no earlier run met); FUZZ_SEED=random (or a number) explores, as `npm run fuzz` does.
const seedEnv = process.env.FUZZ_SEED ?? '20261130';
const seed = seedEnv === 'random' ? undefined : Number(seedEnv);

test('fuzz: every route answers mutated requests in time, with a clear 4xx, and applies ' +
  'nothing it refused; the server stays up', async (t) => {
  const srv = await useServer(t);
  const stats = newStats();
  const rev = { value: await revision(srv.url) };
  let n = 0;
  const errors: string[] = [];
  await t.notThrowsAsync(fc.assert(fc.asyncProperty(caseArb, async (c: HttpCase) => {
    try {
      rev.value = await revision(srv.url); // a shrinking replay starts from any state
      await checkCase(srv.url, c, rev, stats);
    } catch (e) {
      errors.push(`${(e as Error).message}\n  case: ${describe(c)}`);
      throw e;
    }
    if (++n % 50 === 0) await checkAlive(srv.url);
  }), { numRuns: runs, ...(seed === undefined ? {} : { seed }) }));
  if (errors.length > 0) t.fail(`first failure: ${errors[0]}\nshrunk to: ${errors.at(-1)}`);
  await checkAlive(srv.url);
  t.true(srv.running, 'the server process is up');
  t.log(`${stats.cases} cases; statuses ${JSON.stringify([...stats.byStatus].sort())}; ` +
    `${stats.skippedKnown} left out (known, helper probe)`);
});
