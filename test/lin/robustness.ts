import { faultKinds, checkFault } from './harness/faults.js';
import { runOnce, type RunResult } from './harness/run.js';

/**
 * robustness: the fault-injection harness from the command line (build first: npx tsc -p .).
 *
 *   npm run robustness -- [--runs N] [--members 1|3|5] [--faults kill-leader,pause-leader,...]
 *                         [--seed S] [--ops 1000] [--clients 6] [--keep DIR] [--mix]
 *                         [--serializable-reads] [--snapshot-count N]
 *                         [--compact]
 *
 * Run k uses seed S + k. With --mix, each run draws one or two faults from --faults (default:
 * every kind that fits the member count); otherwise every run injects all of --faults in
 * order. Each run prints one line; a violation keeps the history and the logs in a folder and
 * prints the command that replays the run's choices (the seed fixes the operations, keys,
 * members and faults; the processes' timing is the machine's). Totals at the end; exit 1 on
 * any violation. --serializable-reads is a positive control: plain gets become serializable
 * (a member's local, possibly stale state), which the checks must catch. --compact compacts
 * the store during the traffic and checks history reads at the compacted revision.
 */

function main(): Promise<void> {
  const args = process.argv.slice(2);
  const opt = (n: string) => (args.includes(n) ? args[args.indexOf(n) + 1] : undefined);
  const runs = Number(opt('--runs') ?? 1);
  const members = Number(opt('--members') ?? 1);
  const seed0 = Number(opt('--seed') ?? Date.now() % 1_000_000);
  const opsTarget = Number(opt('--ops') ?? 1000);
  const clients = Number(opt('--clients') ?? 6);
  const keep = opt('--keep');
  const snapshotCount = opt('--snapshot-count');
  const mix = args.includes('--mix');
  const fitting = faultKinds.filter((f) => checkFault(f, members) === undefined);
  const faults = (opt('--faults') ?? (mix ? fitting.join(',') : 'kill-leader')).split(',')
    .map((f) => f.trim()).filter((f) => f !== '');
  for (const f of faults) {
    const why = checkFault(f, members);
    if (why !== undefined) {
      process.stderr.write(`robustness: ${why}\n`);
      process.exit(2);
    }
  }
  return (async () => {
    const t0 = performance.now();
    const totals = { runs: 0, ops: 0, unknown: 0, refused: 0, faults: 0, violations: 0 };
    const byFault = new Map<string, number>();
    for (let k = 0; k < runs; k++) {
      const seed = seed0 + k;
      let chosen = faults;
      if (mix) {
        // A seed-chosen one or two faults per run, so that a run replays by its seed alone.
        let x = seed * 2654435761 >>> 0;
        const draw = () => {
          x = (Math.imul(x ^ (x >>> 15), 2246822519) + 1) >>> 0;
          return faults[x % faults.length]!;
        };
        chosen = x % 3 === 0 ? [draw(), draw()] : [draw()];
      }
      const r = await runOnce({ seed, members, faults: chosen, ops: opsTarget, clients,
        serializableReads: args.includes('--serializable-reads'),
        compact: args.includes('--compact'),
        ...(snapshotCount === undefined ? {} : { snapshotCount: Number(snapshotCount) }),
        ...(keep === undefined ? {} : { keepDir: keep }) });
      totals.runs++;
      totals.ops += r.ops;
      totals.unknown += r.unknown;
      totals.refused += r.refused;
      totals.faults += r.evidence.filter((e) => e.happened).length;
      for (const e of r.evidence) {
        if (e.happened) byFault.set(e.fault, (byFault.get(e.fault) ?? 0) + 1);
      }
      if (r.violations.length > 0) totals.violations++;
      process.stdout.write(line(r) + '\n');
      if (r.violations.length > 0) {
        for (const v of r.violations.slice(0, 10)) process.stdout.write(`    ${v}\n`);
        process.stdout.write(`    kept: ${r.dir}\n    replay: npm run robustness -- --runs 1 ` +
          `--members ${members} --faults ${chosen.join(',')} --seed ${seed} --ops ${opsTarget} ` +
          `--clients ${clients}${snapshotCount === undefined ? ''
            : ` --snapshot-count ${snapshotCount}`}${args.includes('--serializable-reads')
            ? ' --serializable-reads' : ''}${args.includes('--compact') ? ' --compact' : ''}\n`);
      }
    }
    const s = (performance.now() - t0) / 1000;
    process.stdout.write(`totals: runs ${totals.runs}, operations ${totals.ops} (unknown ` +
      `outcome ${totals.unknown}, refused for space ${totals.refused}), faults injected ` +
      `${totals.faults} (` +
      `${[...byFault].map(([f, n]) => `${f} ${n}`).join(', ')}), runs with violations ` +
      `${totals.violations}, ${s.toFixed(0)} s\n`);
    process.exit(totals.violations === 0 ? 0 : 1);
  })();
}

/** line renders one run's summary line. */
function line(r: RunResult): string {
  return `seed ${r.spec.seed} members ${r.spec.members} faults ${r.spec.faults.join(',') ||
    '-'} ops ${r.ops} unknown ${r.unknown} refused ${r.refused} watch-streams ` +
    `${r.watchStreams} order-dev ` +
    `${r.orderDeviations} check ${r.partitions}p/${r.checkSteps} steps lease-late-max ` +
    `${r.leaseLateMsMax.toFixed(0)}ms ` +
    (r.spec.compact === true ? `compactions ${r.compactions} to ${r.compactedTo} ` : '') +
    `${(r.ms / 1000).toFixed(1)}s verdict ${r.verdict}` +
    (r.evidence.length > 0 ? ` [${r.evidence.map((e) => e.detail).join('; ')}]` : '');
}

void main();
