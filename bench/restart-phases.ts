/**
 * restart-phases: `npm run bench:restart -- DATA [--runs N] [--build DIR]...` — where a
 * restart's time goes, and two builds compared on the same data. DATA is a stopped member's
 * data folder (e.g. one that `npm run bench` wrote with 1,000,000 keys); every run starts a
 * fresh copy of it, so each start replays the same WAL tail.
 *
 * Each round starts every build once, in alternating order (the machine's speed drifts by
 * up to 1.5× within minutes here: only builds alternated run by run compare). A run reports
 * the time from spawn until a linearizable range answers 200, the server's own phase lines
 * relative to the spawn ("starting myetcd", "recovered from snapshot and WAL", "replayed
 * the WAL tail"), the WAL load and restore times it logs, each named thread's CPU until
 * serving (/proc/<pid>/task, threads named by GET /debug/threads), and the RSS when serving.
 *
 * --build is a repository root with a built dist/ (default: this one); give it twice or more
 * to compare commits (git worktree + npx tsc -p .).
 */
import { cpSync, lstatSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import {
  clockTicksPerSec, rssBytes, type Server, startServer, stopServer, threadNames,
} from './servers.js';
import { sampleTasks } from './threads.js';

/** RunFigures is one start of one build. */
interface RunFigures {
  servingMs: number;
  /** phases: the server's phase lines, ms after the spawn. */
  phases: Record<string, number>;
  walLoadMs: number;
  restoreMs: number;
  /** cpuMs: CPU until serving per named thread ('other' sums the unnamed ones). */
  cpuMs: Record<string, number>;
  rssMiB: number;
}

/** phaseLines are the log messages reported, under short names. */
const phaseLines: Record<string, string> = {
  'starting myetcd': 'started',
  'recovered from snapshot and WAL': 'recovered',
  'replayed the WAL tail': 'replayed',
};

/** readPhases finds the phase lines in a server's JSON log, as ms after spawnWallMs. */
function readPhases(logPath: string, spawnWallMs: number):
  Pick<RunFigures, 'phases' | 'walLoadMs' | 'restoreMs'> {
  const out: Pick<RunFigures, 'phases' | 'walLoadMs' | 'restoreMs'> =
    { phases: {}, walLoadMs: NaN, restoreMs: NaN };
  for (const line of readFileSync(logPath, 'utf8').split('\n')) {
    let j: { msg?: string; time?: string; walLoadMs?: number; restoreMs?: number };
    try {
      j = JSON.parse(line) as typeof j;
    } catch {
      continue;
    }
    const name = phaseLines[j.msg ?? ''];
    if (name === undefined || j.time === undefined) continue;
    out.phases[name] = Date.parse(j.time) - spawnWallMs;
    if (j.walLoadMs !== undefined) out.walLoadMs = j.walLoadMs;
    if (j.restoreMs !== undefined) out.restoreMs = j.restoreMs;
  }
  return out;
}

/** threadCpuMs sums each named thread's CPU since it started (ms); 'other' is the rest. */
async function threadCpuMs(s: Server): Promise<Record<string, number>> {
  const ticks = sampleTasks(s.pid);
  // An older build without /debug/threads names none: its threads count as 'other'.
  const byTid = new Map((await threadNames(s)).map((n) => [n.tid, n.name]));
  byTid.set(s.pid, byTid.get(s.pid) ?? 'main');
  const out: Record<string, number> = {};
  for (const [tid, t] of ticks) {
    const name = byTid.get(tid) ?? 'other';
    out[name] = (out[name] ?? 0) + t * 1000 / clockTicksPerSec;
  }
  return out;
}

/** startOnce starts build on a fresh copy of data and measures it until it serves. */
async function startOnce(build: string, data: string): Promise<RunFigures> {
  const base = mkdtempSync(join(tmpdir(), 'restart-phases-'));
  const dataDir = join(base, 'data');
  // A member killed with -9 leaves its lock behind, a socket file that cannot be copied (and
  // need not be: the next start takes the lock anew).
  cpSync(data, dataDir, { recursive: true, filter: (src) => !lstatSync(src).isSocket() });
  const spawnWallMs = Date.now();
  const s = await startServer({
    kind: 'ours', etcdBin: '', etcdArgs: [], oursArgs: ['--log-level', 'info'],
    oursMain: join(build, 'dist', 'src', 'main.js'), dataDir,
  });
  try {
    const cpuMs = await threadCpuMs(s);
    return {
      servingMs: s.servingAt - s.startedAt, ...readPhases(s.logPath, spawnWallMs), cpuMs,
      rssMiB: rssBytes(s.pid) / 2 ** 20,
    };
  } finally {
    await stopServer(s);
    rmSync(base, { recursive: true, force: true });
  }
}

/** line formats one run. */
function line(build: string, f: RunFigures): string {
  const ms = (x: number) => (Number.isFinite(x) ? x.toFixed(0) : '–');
  const phases = Object.entries(f.phases).map(([k, v]) => `${k} ${ms(v)}`).join(', ');
  const cpu = Object.entries(f.cpuMs).filter(([, v]) => v >= 50)
    .sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${ms(v)}`).join(', ');
  return `${build}: serving ${ms(f.servingMs)} ms (${phases}; WAL load ${ms(f.walLoadMs)}, ` +
    `restore ${ms(f.restoreMs)}); CPU ms ${cpu}; RSS ${ms(f.rssMiB)} MiB`;
}

/** summary gives min–max and mean of the serving times per build. */
function summary(results: Map<string, RunFigures[]>): string[] {
  return [...results].map(([build, runs]) => {
    const t = runs.map((r) => r.servingMs);
    const mean = t.reduce((a, b) => a + b, 0) / t.length;
    return `${build}: spawn → serving ${(Math.min(...t) / 1000).toFixed(2)}–` +
      `${(Math.max(...t) / 1000).toFixed(2)} s, mean ${(mean / 1000).toFixed(2)} s ` +
      `(${t.length} runs)`;
  });
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { runs: { type: 'string', default: '3' }, build: { type: 'string', multiple: true } },
  });
  const data = positionals[0];
  const runs = Number(values.runs);
  if (data === undefined || !(runs >= 1)) {
    process.stderr.write('usage: restart-phases DATA [--runs N] [--build DIR]...\n');
    process.exit(2);
  }
  const builds = (values.build ?? [resolve(import.meta.dirname, '..', '..')]).map((b) =>
    resolve(b));
  const results = new Map<string, RunFigures[]>(builds.map((b) => [b, []]));
  for (let round = 0; round < runs; round++) {
    const order = round % 2 === 0 ? builds : [...builds].reverse();
    for (const b of order) {
      const f = await startOnce(b, resolve(data));
      results.get(b)!.push(f);
      process.stdout.write(line(b, f) + '\n');
    }
  }
  process.stdout.write(summary(results).join('\n') + '\n');
}

await main();
