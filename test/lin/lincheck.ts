import { readFileSync } from 'node:fs';
import { check } from './checker.js';
import { checkRevisions, kvModel, prepareKv } from './kv-model.js';
import { agrees, referenceCases, runCase } from './reference.js';
import { type RecordedHistory, toOperations } from './history.js';

/**
 * lincheck: the checker from the command line.
 *
 *   npm run lincheck                  a representative subset of the reference histories
 *   npm run lincheck -- --all         every reference history (Jepsen etcd + porcupine kv)
 *   npm run lincheck -- --history F   a history kept by `npm run robustness` (history.json)
 *   [--steps N]                       the work bound (default: the checker's)
 *
 * Exit 0 when every verdict agrees (or the history is linearizable), 1 otherwise.
 */

/** subsetNames: a representative subset — both verdicts, the Jepsen histories with the most
 * unknown outcomes, every kv client count. */
export const subsetNames = ['jepsen/etcd_000.log', 'jepsen/etcd_002.log', 'jepsen/etcd_007.log',
  'jepsen/etcd_040.log', 'jepsen/etcd_070.log', 'jepsen/etcd_099.log', 'kv/c01-ok.txt',
  'kv/c01-bad.txt', 'kv/c10-ok.txt', 'kv/c10-bad.txt', 'kv/c50-ok.txt', 'kv/c50-bad.txt'];

function main(): void {
  const args = process.argv.slice(2);
  const opt = (n: string) => (args.includes(n) ? args[args.indexOf(n) + 1] : undefined);
  const steps = opt('--steps') === undefined ? undefined : Number(opt('--steps'));
  const hist = opt('--history');
  if (hist !== undefined) {
    const h = JSON.parse(readFileSync(hist, 'utf8')) as RecordedHistory;
    const ops = prepareKv(toOperations(h));
    const r = check(kvModel(), ops, steps === undefined ? {} : { stepsMax: steps });
    const rp = checkRevisions(ops);
    process.stdout.write(`${hist}: ${ops.length} operations, ${r.partitions.length} ` +
      `partitions, verdict ${r.verdict}, ${r.steps} steps, revision problems ${rp.length}\n`);
    for (const p of rp) process.stdout.write(`  ${p.what}\n`);
    for (const p of r.partitions.filter((x) => x.verdict !== 'ok')) {
      process.stdout.write(`  partition of ${p.ops.length} operations: ${p.verdict}; longest ` +
        `linearizable prefix ${p.prefix.length}\n`);
    }
    process.exit(r.verdict === 'ok' && rp.length === 0 ? 0 : 1);
  }
  const all = referenceCases();
  const cases = args.includes('--all') ? all : all.filter((c) => subsetNames.includes(c.name));
  let bad = 0;
  let ms = 0;
  for (const c of cases) {
    const r = runCase(c, steps);
    ms += r.ms;
    const ok = agrees(r);
    if (!ok) bad++;
    process.stdout.write(`${c.name.padEnd(22)} ${String(r.ops).padStart(5)} ops  expected ` +
      `${c.expected ? 'ok     ' : 'illegal'}  got ${r.verdict.padEnd(7)} ${String(r.steps)
        .padStart(9)} steps ${r.ms.toFixed(0).padStart(6)} ms${ok ? '' : '  DISAGREES'}\n`);
  }
  process.stdout.write(`${cases.length} histories, ${cases.length - bad} agree, ${bad} ` +
    `disagree, ${(ms / 1000).toFixed(1)} s of checking\n`);
  process.exit(bad === 0 ? 0 : 1);
}

main();
