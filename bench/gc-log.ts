/**
 * gc-log: what each thread's young generation let through, from a member run under
 * `node --trace-gc --trace-gc-nvp`. V8 prints one line per collection, prefixed with the
 * isolate (one per thread); this sums, per isolate, what was allocated, what survived a
 * scavenge (copied at least once), what was promoted to the old generation, and the pauses.
 * A thread whose survivors are a large share of what it allocates keeps short-lived objects
 * alive somewhere (docs/performance.md, "Session 11": a WeakMap entry per request).
 *
 *   node --trace-gc --trace-gc-nvp dist/src/main.js --data-dir D > gc.log   (then load it)
 *   node dist/bench/gc-log.js gc.log [--requests N]
 *
 * With --requests, the per-request figures divide by N (the requests served while logging).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values: flags, positionals } = parseArgs({
  allowPositionals: true,
  options: { requests: { type: 'string', default: '0' } },
});
if (positionals.length !== 1) {
  process.stderr.write('usage: node dist/bench/gc-log.js GC_LOG [--requests N]\n');
  process.exit(2);
}
const requests = Number(flags.requests);

interface IsolateGc {
  scavenges: number;
  fullGcs: number;
  scavengePauseMs: number;
  fullGcPauseMs: number;
  allocated: number;
  survived: number;
  promoted: number;
}

/** parseLine reads one --trace-gc-nvp line: its isolate and its name=value fields. */
function parseLine(line: string): { isolate: string; fields: Map<string, string> } | undefined {
  const m = /\[\d+:(0x[0-9a-f]+)\]/.exec(line);
  if (m === null || !line.includes(' gc=')) return undefined;
  const fields = new Map<string, string>();
  for (const word of line.slice(m.index + m[0].length).split(/\s+/)) {
    const eq = word.indexOf('=');
    if (eq > 0) fields.set(word.slice(0, eq), word.slice(eq + 1));
  }
  return { isolate: m[1]!, fields };
}

const byIsolate = new Map<string, IsolateGc>();
for (const line of readFileSync(positionals[0]!, 'latin1').split('\n')) {
  const p = parseLine(line);
  if (p === undefined) continue;
  let g = byIsolate.get(p.isolate);
  if (g === undefined) {
    g = { scavenges: 0, fullGcs: 0, scavengePauseMs: 0, fullGcPauseMs: 0, allocated: 0,
      survived: 0, promoted: 0 };
    byIsolate.set(p.isolate, g);
  }
  const num = (k: string): number => Number(p.fields.get(k) ?? 0) || 0;
  if (p.fields.get('gc') === 's') {
    g.scavenges++;
    g.scavengePauseMs += num('pause');
  } else {
    g.fullGcs++;
    g.fullGcPauseMs += num('pause');
  }
  g.allocated += num('allocated');
  g.survived += num('new_space_survived');
  g.promoted += num('promoted');
}

const mib = (n: number): string => (n / 2 ** 20).toFixed(1);
const perRequest = (n: number): string =>
  (requests > 0 ? `${(n / requests / 1024).toFixed(2)} KiB` : '–');
console.log('| isolate | allocated MiB | survived a scavenge | promoted MiB | ' +
  'scavenges (pause ms) | full GCs (pause ms) | allocated / request | promoted / request |');
console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
const rows = [...byIsolate].sort((a, b) => b[1].allocated - a[1].allocated);
for (const [isolate, g] of rows) {
  const share = g.allocated > 0 ? ` (${(100 * g.survived / g.allocated).toFixed(1)} %)` : '';
  console.log(`| ${isolate} | ${mib(g.allocated)} | ${mib(g.survived)}${share} | ` +
    `${mib(g.promoted)} | ${g.scavenges} (${g.scavengePauseMs.toFixed(0)}) | ` +
    `${g.fullGcs} (${g.fullGcPauseMs.toFixed(0)}) | ${perRequest(g.allocated)} | ` +
    `${perRequest(g.promoted)} |`);
}
