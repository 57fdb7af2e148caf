/**
 * long: `npm run fuzz -- --inputs 1000000` — the fuzzers' long mode. The same properties as
 * test/fuzz-decoders.test.ts and test/fuzz-http.test.ts, run in chunks of `--chunk` inputs,
 * each chunk with its own seed (seed, seed + 1, …) so that a failure names the seed that
 * replays it (FUZZ_SEED=… with the test, or `--seed`). A failing chunk is logged with its
 * shrunk input and the run goes on with the next one; the HTTP server is started again if it
 * died. Inputs are shared out: `--http-share` of them go to the HTTP routes (a real server on
 * loopback), the rest to the WAL, snapshot and peer decoders in equal parts, round robin (a
 * run stopped early has covered every target). One line per chunk, then the totals.
 */
import fc from 'fast-check';
import { parseArgs } from 'node:util';
import { cleanup, type Server, startServer, stopServer } from '../../bench/servers.js';
import { decoderTargets } from './decoders.js';
import {
  caseArb, checkAlive, checkCase, describe, type HttpCase, newStats, revision,
} from './http.js';

const { values } = parseArgs({
  options: {
    inputs: { type: 'string', default: '100000' },
    seed: { type: 'string', default: String(Date.now() % 1_000_000) },
    chunk: { type: 'string', default: '10000' },
    'http-share': { type: 'string', default: '0.2' },
  },
});
const inputs = Number(values.inputs);
const chunk = Number(values.chunk);
let seed = Number(values.seed);
const httpInputs = Math.round(inputs * Number(values['http-share']));
const perDecoder = Math.floor((inputs - httpInputs) / decoderTargets.length);
const t0 = performance.now();
const secs = () => ((performance.now() - t0) / 1000).toFixed(0);
const totals = new Map<string, { inputs: number; failures: number }>();
const failures: string[] = [];

function count(name: string, n: number, failed: boolean): void {
  const c = totals.get(name) ?? { inputs: 0, failures: 0 };
  c.inputs += n;
  if (failed) c.failures++;
  totals.set(name, c);
}

console.log(`fuzz long mode: ${inputs} inputs (${perDecoder} per decoder, ${httpInputs} HTTP), ` +
  `first seed ${seed}, chunks of ${chunk}`);

/** decoderChunk runs one chunk of a decoder property. */
function decoderChunk(target: (typeof decoderTargets)[number], n: number): void {
  const s = seed++;
  const arb = target.arb as fc.Arbitrary<unknown>;
  const run = target.run as (x: unknown) => void;
  const r = fc.check(fc.property(arb, (x) => run(x)), { numRuns: n, seed: s });
  const ran = r.failed ? r.numRuns : n;
  count(target.name, ran, r.failed);
  const what = r.failed
    ? `FAILED: ${String(r.errorInstance).slice(0, 500)}; input ${
      fc.stringify(r.counterexample).slice(0, 2000)}`
    : 'ok';
  if (r.failed) failures.push(`${target.name} seed ${s}: ${what}`);
  console.log(`[${secs()} s] ${target.name} seed ${s}: ${ran} inputs ${what}`);
}

let server: Server | undefined;
const url = () => `http://127.0.0.1:${server!.port}`;
async function up(): Promise<void> {
  if (server !== undefined && server.child.exitCode === null && server.child.signalCode === null) {
    return;
  }
  if (server !== undefined) {
    failures.push(`http: the server exited (${server.child.exitCode ?? server.child.signalCode});` +
      ` log ${server.logPath}`);
    console.log(`[${secs()} s] http: SERVER EXITED; log kept at ${server.logPath}; restarting`);
  }
  server = await startServer({ kind: 'ours', etcdBin: '', oursArgs: [], etcdArgs: [] });
}

const stats = newStats();
/** httpChunk runs one chunk of HTTP cases against the server (started again if it died). */
async function httpChunk(n: number): Promise<void> {
  await up();
  const s = seed++;
  const rev = { value: await revision(url()) };
  let k = 0;
  let last = '';
  const r = await fc.check(fc.asyncProperty(caseArb, async (c: HttpCase) => {
    try {
      rev.value = await revision(url());
      await checkCase(url(), c, rev, stats);
      if (++k % 50 === 0) await checkAlive(url());
    } catch (e) {
      last = `${(e as Error).message} — case: ${describe(c)}`;
      throw e;
    }
  }), { numRuns: n, seed: s, endOnFailure: true });
  const ran = r.failed ? r.numRuns : n;
  count('http', ran, r.failed);
  if (r.failed) failures.push(`http seed ${s}: ${last.slice(0, 2000)}`);
  console.log(`[${secs()} s] http seed ${s}: ${ran} inputs ` +
    `${r.failed ? `FAILED: ${last.slice(0, 2000)}` : 'ok'}; statuses ${
      JSON.stringify([...stats.byStatus].sort())}, ${stats.skippedKnown} known left out`);
}

// Round robin, so that a run stopped early has covered every target: per round one chunk of
// each decoder and the HTTP share of a chunk.
const httpChunkSize = Math.max(1, Math.round(chunk * Number(values['http-share'])));
const left = new Map<string, number>([
  ...decoderTargets.map((d) => [d.name, perDecoder] as [string, number]), ['http', httpInputs],
]);
try {
  while ([...left.values()].some((n) => n > 0)) {
    for (const d of decoderTargets) {
      const n = Math.min(chunk, left.get(d.name)!);
      if (n === 0) continue;
      decoderChunk(d, n);
      left.set(d.name, left.get(d.name)! - n);
    }
    const n = Math.min(httpChunkSize, left.get('http')!);
    if (n > 0) {
      await httpChunk(n);
      left.set('http', left.get('http')! - n);
    }
  }
  if (server !== undefined) await checkAlive(url());
} finally {
  if (server !== undefined) {
    await stopServer(server);
    if (!failures.some((f) => f.includes(server!.logPath))) cleanup(server);
  }
}

const total = [...totals.values()].reduce((a, c) => a + c.inputs, 0);
console.log(`fuzz long mode done in ${secs()} s: ${total} inputs ` +
  `(${[...totals].map(([n, c]) => `${n} ${c.inputs}`).join(', ')}); ${failures.length} failures`);
for (const f of failures) console.log(`  ${f}`);
process.exitCode = failures.length === 0 ? 0 : 1;
