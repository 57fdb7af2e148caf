/**
 * run: `npm run bench` — starts MyEtcd and (when its binary exists) etcd 3.4 on loopback, runs
 * the same workloads against each through etcd's JSON gateway API, prints every figure with
 * the ratio ours ÷ etcd, and writes docs/benchmark.md and docs/bench-*.svg.
 *
 * Only one server runs at a time, so the two never compete with each other for the cores;
 * the load generator does compete with the server (see docs/benchmark.md). Every process
 * started here is stopped by its pid, and every data folder removed, even on failure.
 */
import { type ChildProcess, execFileSync, fork } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { ClosedSpec, GenMsg, GenResult, LoadMsg, WatchSpec } from './loadgen.js';
import {
  chartSvgs, type Machine, machineInfo, medianRound, opsRows, reportMarkdown, restartRows,
  type Round, roundsLine, type ServerFigures, tableMarkdown, watchRows, type WorkloadResult,
} from './report.js';
import {
  cleanup, clockTicksPerSec, cpuSeconds, dirBytes, killLiveServers, peakRssBytes, rssBytes,
  type Server,
  type ServerKind, type ServerOptions,
  startServer, stopServer, threadNames,
} from './servers.js';
import { formatNumber, Histogram, progressBar, summarize } from './stats.js';
import { withMallocTunables } from '../src/server/huge-pages.js';
import {
  type GcSamples, parseGcSeconds, sampleTasks, type ThreadName, threadCpu, threadCpuMarkdown,
} from './threads.js';
import {
  bodies, groupPrefix, type KeySpace, keyName, prefixEndOf, type SourceSpec,
} from './workloads.js';

/** workloadNames lists the workloads in the order they run. */
export const workloadNames = ['put-1c', 'put-50c', 'get-linearizable', 'get-serializable',
  'range-100', 'txn', 'delete', 'watch', 'restart', 'raft-capacity'] as const;
type WorkloadName = (typeof workloadNames)[number];

const optionSpec = {
  duration: { type: 'string', default: '10', help: 'seconds measured per workload' },
  rounds: { type: 'string', default: '3',
    help: 'runs of each request/response workload on each server; the median ratio is shown' },
  warmup: { type: 'string', default: '1', help: 'seconds run before measuring' },
  only: { type: 'string', default: '', help: `comma list of: ${workloadNames.join(', ')}` },
  'no-etcd': { type: 'boolean', default: false, help: 'run MyEtcd only' },
  'etcd-bin': { type: 'string', default: '/usr/bin/etcd', help: 'etcd binary' },
  connections: { type: 'string', default: '50', help: 'connections of the *-50c workloads' },
  keys: { type: 'string', default: '10000', help: 'key space of put/get/txn' },
  'value-size': { type: 'string', default: '100', help: 'value bytes' },
  'range-size': { type: 'string', default: '100', help: 'keys per range prefix' },
  'range-prefixes': { type: 'string', default: '100', help: 'prefixes range-100 draws from' },
  'delete-keys': { type: 'string', default: 'auto',
    help: 'keys preloaded for delete; auto = 1.5 × put-50c\'s rate × (warmup + duration)' },
  watchers: { type: 'string', default: '1000', help: 'watch streams on one prefix' },
  'watch-writers': { type: 'string', default: '10', help: 'writer connections' },
  'watch-rate': { type: 'string', default: '200', help: 'puts/s by all writers (0 = unpaced)' },
  'watch-sample': { type: 'string', default: '20', help: 'parse every Nth stream for latency' },
  'restart-keys': { type: 'string', default: '1000000', help: 'keys written before restart' },
  procs: { type: 'string', default: '1', help: 'load generator processes per workload' },
  'ours-args': { type: 'string', default: '', help: 'extra MyEtcd flags, space-separated' },
  'etcd-args': { type: 'string', default: '', help: 'extra etcd flags, space-separated' },
  'ours-node-args': { type: 'string', default: '',
    help: 'node flags for MyEtcd (e.g. --ours-node-args="--cpu-prof --cpu-prof-dir=/tmp/p")' },
  'ours-main': { type: 'string', default: '',
    help: "another build's dist/src/main.js to run as MyEtcd (A/B of two commits)" },
  out: { type: 'string', default: 'docs', help: 'folder for benchmark.md and bench-*.svg' },
  'no-write': { type: 'boolean', default: false, help: 'print only; write nothing' },
  help: { type: 'boolean', default: false, help: 'this text' },
} as const;

/** Options are the parsed flags (each also read from BENCH_<FLAG> in the environment). */
interface Options {
  durationMs: number;
  rounds: number;
  warmupMs: number;
  only: Set<WorkloadName>;
  etcdBin: string | undefined;
  connections: number;
  keys: number;
  valueSize: number;
  rangeSize: number;
  rangePrefixes: number;
  /** deleteKeys is undefined for auto */
  deleteKeys: number | undefined;
  watchers: number;
  watchWriters: number;
  watchRate: number;
  watchSample: number;
  restartKeys: number;
  procs: number;
  oursArgs: string[];
  etcdArgs: string[];
  oursNodeArgs: string[];
  /** oursMain: another build's main.js ('' = this build's) */
  oursMain: string;
  out: string | undefined;
}

function usage(): string {
  const lines = ['Usage: npm run bench -- [flags]   (or node dist/bench/run.js [flags])', ''];
  for (const [name, o] of Object.entries(optionSpec)) {
    const env = `BENCH_${name.toUpperCase().replace(/-/g, '_')}`;
    lines.push(`  --${name.padEnd(16)} ${o.help}` +
      (o.type === 'string' && o.default !== '' ? ` (default ${o.default})` : '') + `  [${env}]`);
  }
  return lines.join('\n');
}

function parseOptions(argv: string[]): Options | undefined {
  const { values } = parseArgs({ args: argv, options: optionSpec, strict: true });
  if (values.help) return undefined;
  const get = (name: keyof typeof optionSpec): string | boolean => {
    const env = process.env[`BENCH_${name.toUpperCase().replace(/-/g, '_')}`];
    const given = argv.some((a) => a === `--${name}` || a.startsWith(`--${name}=`));
    if (!given && env !== undefined) return optionSpec[name].type === 'boolean' ? env !== '0' &&
      env !== 'false' && env !== '' : env;
    return values[name] as string | boolean;
  };
  const num = (name: keyof typeof optionSpec, min: number): number => {
    const v = Number(get(name));
    if (!Number.isFinite(v) || v < min) throw new Error(`--${name} must be a number ≥ ${min}`);
    return v;
  };
  const int = (name: keyof typeof optionSpec, min: number): number => {
    const v = num(name, min);
    if (!Number.isSafeInteger(v)) throw new Error(`--${name} must be an integer`);
    return v;
  };
  const onlyText = String(get('only')).trim();
  const only = new Set<WorkloadName>();
  for (const w of onlyText === '' ? workloadNames : onlyText.split(',').map((s) => s.trim())) {
    if (!(workloadNames as readonly string[]).includes(w)) {
      throw new Error(`unknown workload ${JSON.stringify(w)}; one of ${workloadNames.join(', ')}`);
    }
    only.add(w as WorkloadName);
  }
  const etcdBin = String(get('etcd-bin'));
  const words = (s: string | boolean) => String(s).split(/\s+/).filter((w) => w !== '');
  return {
    durationMs: num('duration', 0.1) * 1000, rounds: int('rounds', 1),
    warmupMs: num('warmup', 0) * 1000, only,
    etcdBin: get('no-etcd') === true || !existsSync(etcdBin) ? undefined : etcdBin,
    connections: int('connections', 1), keys: int('keys', 1), valueSize: int('value-size', 1),
    rangeSize: int('range-size', 1), rangePrefixes: int('range-prefixes', 1),
    deleteKeys: get('delete-keys') === 'auto' ? undefined : int('delete-keys', 1),
    watchers: int('watchers', 1),
    watchWriters: int('watch-writers', 1), watchRate: num('watch-rate', 0),
    watchSample: int('watch-sample', 1), restartKeys: int('restart-keys', 1),
    procs: int('procs', 1), oursArgs: words(get('ours-args')), etcdArgs: words(get('etcd-args')),
    oursNodeArgs: words(get('ours-node-args')), oursMain: String(get('ours-main')),
    out: get('no-write') === true ? undefined : String(get('out')),
  };
}

// ---- progress on stderr ----

/** Progress draws one status line on stderr, redrawn in place on a terminal. */
class Progress {
  private readonly tty = process.stderr.isTTY === true;
  private lastPlain = -1;
  private lastLen = 0;

  update(label: string, fraction: number, detail: string): void {
    const line = `  ${label.padEnd(28)} ${progressBar(fraction, 24)} ${detail}`;
    if (this.tty) {
      process.stderr.write('\r' + line.padEnd(this.lastLen));
      this.lastLen = line.length;
    } else {
      const step = Math.floor(fraction * 4);
      if (step !== this.lastPlain) {
        this.lastPlain = step;
        process.stderr.write(line + '\n');
      }
    }
  }

  done(): void {
    if (this.tty && this.lastLen > 0) process.stderr.write('\r' + ' '.repeat(this.lastLen) + '\r');
    this.lastLen = 0;
    this.lastPlain = -1;
  }
}

const progress = new Progress();

// ---- load generator processes ----

const loadgenPath = fileURLToPath(new URL('./loadgen.js', import.meta.url));
const children = new Set<ChildProcess>();

function forkGen(): ChildProcess {
  const child = fork(loadgenPath, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

function killGen(child: ChildProcess): void {
  if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
    try {
      process.kill(child.pid, 'SIGTERM');
    } catch {
      // gone
    }
  }
}

/** ClosedOutcome is the merged result of the generator processes of one closed-loop run. */
interface ClosedOutcome {
  hist: Histogram;
  ops: number;
  errors: number;
  seconds: number;
  genCpuSeconds: number;
  firstError: string | undefined;
  statuses: Record<string, number>;
}

/** runClosed forks `procs` generators, runs the spec in each and merges their results.
 * `total` (when known) is the number of requests, for the progress bar. */
async function runClosed(label: string, base: Omit<ClosedSpec, 'procIndex' | 'procs'>,
  procs: number, total?: number): Promise<ClosedOutcome> {
  const done = new Array<number>(procs).fill(0);
  const t0 = performance.now();
  const span = base.warmupMs + base.durationMs;
  const tick = setInterval(() => {
    const n = done.reduce((a, b) => a + b, 0);
    const elapsed = (performance.now() - t0) / 1000;
    const fraction = total !== undefined ? n / total : (elapsed * 1000) / span;
    progress.update(label, fraction, `${elapsed.toFixed(1)} s  ${n.toLocaleString('en-US')} ` +
      `req  ${Math.round(n / Math.max(elapsed, 0.001)).toLocaleString('en-US')}/s`);
  }, 200);
  try {
    const results = await Promise.all(Array.from({ length: procs }, (_, procIndex) =>
      new Promise<GenResult>((resolveResult, reject) => {
        const child = forkGen();
        child.on('message', (raw) => {
          const m = raw as GenMsg;
          if (m.type === 'Progress') done[procIndex] = m.done;
          else if (m.type === 'Result') {
            resolveResult(m.result);
            killGen(child);
          } else if (m.type === 'Failed') {
            reject(new Error(`load generator: ${m.error}`));
            killGen(child);
          }
        });
        child.once('exit', (code) => reject(new Error(`load generator exited with ${code}`)));
        const msg: LoadMsg = { type: 'Run', spec: { ...base, procIndex, procs } };
        child.send(msg);
      })));
    const hist = new Histogram();
    const out: ClosedOutcome = {
      hist, ops: 0, errors: 0, seconds: 0, genCpuSeconds: 0, firstError: undefined,
      statuses: {},
    };
    for (const r of results) {
      hist.merge(r.hist);
      out.ops += r.ops;
      out.errors += r.errors;
      out.seconds = Math.max(out.seconds, r.seconds);
      out.genCpuSeconds += r.cpuSeconds;
      out.firstError ??= r.firstError;
      for (const [k, v] of Object.entries(r.statuses)) out.statuses[k] = (out.statuses[k] ?? 0) + v;
    }
    return out;
  } finally {
    clearInterval(tick);
    progress.done();
  }
}

// ---- workloads ----

const spaces = {
  kv: { kind: 'flat', prefix: 'bench/kv/' },
  del: { kind: 'flat', prefix: 'bench/del/' },
  range: { kind: 'grouped', prefix: 'bench/range/', groupSize: 100 },
  watch: { kind: 'flat', prefix: 'bench/watch/' },
  restart: { kind: 'flat', prefix: 'bench/restart/' },
} satisfies Record<string, KeySpace>;

/** txnBatch is how many puts a preload txn carries: etcd's --max-txn-ops default. */
const txnBatch = 128;

/** preload writes keys 0..count-1 of a key space with 128-put txns over 8 connections. */
async function preload(s: Server, label: string, space: KeySpace, count: number,
  valueSize: number): Promise<{ seconds: number }> {
  const t0 = performance.now();
  const r = await runClosed(label, {
    mode: 'closed', host: s.host, port: s.port, connections: 8, warmupMs: 0,
    durationMs: 3_600_000, ratePerSec: 0,
    source: { kind: 'load', space, count, batch: txnBatch, valueSize },
  }, 1, Math.ceil(count / txnBatch));
  if (r.errors > 0) throw new Error(`${label}: ${r.errors} errors, first: ${r.firstError}`);
  return { seconds: (performance.now() - t0) / 1000 };
}

async function postJson(s: Server, path: string, body: string): Promise<{ status: number;
  json: Record<string, unknown> }> {
  const r = await fetch(`http://${s.host}:${s.port}${path}`, {
    method: 'POST', body, headers: { 'content-type': 'application/json' },
    signal: AbortSignal.timeout(60_000),
  });
  const text = await r.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    json = { text };
  }
  return { status: r.status, json };
}

/** countPrefix counts the keys under a prefix (count_only range). */
async function countPrefix(s: Server, prefix: string): Promise<number> {
  const r = await postJson(s, '/v3/kv/range', JSON.stringify({
    key: Buffer.from(prefix).toString('base64'),
    range_end: prefixEndOf(prefix).toString('base64'), count_only: true,
  }));
  return r.status === 200 ? Number(r.json['count'] ?? 0) : NaN;
}

/** Figures of a closed-loop run, with the server's CPU over the same window. */
function figuresOf(o: ClosedOutcome, cpu: ServerCpu): ServerFigures {
  const sum = summarize(o.hist, o.seconds, o.errors);
  const values: Record<string, number> = {
    opsPerSec: sum.opsPerSec, meanMs: sum.meanMs, p50Ms: sum.p50Ms, p99Ms: sum.p99Ms,
    p999Ms: sum.p999Ms, maxMs: sum.maxMs, ops: sum.ops, errors: o.errors,
    serverCores: cpu.seconds / o.seconds, genCores: o.genCpuSeconds / o.seconds,
  };
  const f = withThreadFigures({ values }, cpu, sum.ops);
  if (o.firstError !== undefined) {
    f.note = `${o.errors} errors; first: ${o.firstError.replace(/\s+/g, ' ')}`;
  }
  return f;
}

/** ServerCpu is the server's CPU over a measured window: the process's (all threads) and,
 * per thread, the two /proc samples with the names the server gave its threads. */
interface ServerCpu {
  seconds: number;
  before: Map<number, number>;
  after: Map<number, number>;
  names: ThreadName[];
  gc: GcSamples | undefined;
}

/** CpuWindow samples a server's CPU at the start and at the end of a measured window. */
class CpuWindow {
  private cpu0 = NaN;
  private before = new Map<number, number>();
  private gc0: Promise<Map<string, number> | undefined> = Promise.resolve(undefined);
  constructor(private readonly s: Server) {}

  start(): void {
    this.cpu0 = cpuSeconds(this.s.pid);
    this.before = sampleTasks(this.s.pid);
    this.gc0 = gcSeconds(this.s);
  }

  async end(): Promise<ServerCpu> {
    const seconds = cpuSeconds(this.s.pid) - this.cpu0;
    const after = sampleTasks(this.s.pid);
    const [gcBefore, gcAfter] = [await this.gc0, await gcSeconds(this.s)];
    const gc = gcBefore !== undefined && gcAfter !== undefined
      ? { before: gcBefore, after: gcAfter } : undefined;
    let names = await threadNames(this.s);
    // An older build without /debug/threads (--ours-main): its main thread is the gateway;
    // the others are listed by thread id, so that a worker's figure can still be compared.
    if (names.length === 0 && this.s.kind === 'ours') {
      names = [...after.keys()].map((tid) => ({ name: tid === this.s.pid ? 'main' : `tid ${tid}`,
        tid }));
    }
    return { seconds, before: this.before, after, names, gc };
  }
}

/** gcSeconds reads MyEtcd's GC pause seconds per thread from /metrics (undefined: etcd). */
async function gcSeconds(s: Server): Promise<Map<string, number> | undefined> {
  if (s.kind !== 'ours') return undefined;
  try {
    const r = await fetch(`http://${s.host}:${s.port}/metrics`,
      { signal: AbortSignal.timeout(10_000) });
    const m = parseGcSeconds(await r.text());
    return r.ok && m.size > 0 ? m : undefined;
  } catch {
    return undefined;
  }
}

/** withThreadFigures adds the server's CPU µs per operation, and for a server that named its
 * threads, the per-thread table and the projected ceiling. */
function withThreadFigures(f: ServerFigures, cpu: ServerCpu, ops: number): ServerFigures {
  if (!(ops > 0)) return f;
  f.values['cpuUsPerOp'] = cpu.seconds * 1e6 / ops;
  if (cpu.names.length === 0) return f;
  const t = threadCpu(cpu.before, cpu.after, cpu.names, ops, clockTicksPerSec, cpu.gc);
  f.values['ceilingOpsPerSec'] = t.ceilingOpsPerSec;
  f.values['splitCeilingOpsPerSec'] = t.splitCeilingOpsPerSec;
  f.threads = threadCpuMarkdown(t);
  return f;
}

/** withServerCpu samples the server's CPU time at the start and end of the measured
 * window (warmup excluded) of a run. */
async function withServerCpu<T extends { seconds: number }>(s: Server, warmupMs: number,
  run: () => Promise<T>): Promise<[T, ServerCpu]> {
  const w = new CpuWindow(s);
  const timer = setTimeout(() => w.start(), warmupMs);
  if (warmupMs === 0) w.start();
  const r = await run();
  clearTimeout(timer);
  return [r, await w.end()];
}

interface Ctx {
  opts: Options;
  server: Server;
  label: string;
  warnings: string[];
}

async function closedWorkload(ctx: Ctx, name: string, connections: number, source: SourceSpec):
  Promise<ServerFigures> {
  const { opts, server } = ctx;
  const [o, serverCpu] = await withServerCpu(server, opts.warmupMs, () =>
    runClosed(`${name} · ${ctx.label}`, {
      mode: 'closed', host: server.host, port: server.port, connections,
      warmupMs: opts.warmupMs, durationMs: opts.durationMs, source, ratePerSec: 0,
    }, Math.min(opts.procs, connections)));
  return figuresOf(o, serverCpu);
}

/** check sends one request and warns when the answer is not what the workload expects, so a
 * fast wrong answer is not mistaken for a fast right one. */
async function check(ctx: Ctx, what: string, path: string, body: string,
  ok: (j: Record<string, unknown>) => boolean): Promise<void> {
  const r = await postJson(ctx.server, path, body);
  if (r.status !== 200 || !ok(r.json)) {
    const w = `${ctx.label} ${what}: unexpected answer HTTP ${r.status} ` +
      JSON.stringify(r.json).slice(0, 200);
    ctx.warnings.push(w);
    process.stderr.write(`  warning: ${w}\n`);
  }
}

async function runWatch(ctx: Ctx): Promise<ServerFigures> {
  const { opts, server } = ctx;
  const watchersPerProc = Math.ceil(opts.watchers / opts.procs);
  const gens: ChildProcess[] = [];
  const label = `watch · ${ctx.label}`;
  try {
    // open the streams
    const ready: Extract<GenMsg, { type: 'Ready' }>[] = [];
    const results: Promise<GenResult>[] = [];
    const done: number[] = [];
    for (let p = 0; p < opts.procs; p++) {
      const n = Math.min(watchersPerProc, opts.watchers - p * watchersPerProc);
      if (n <= 0) break;
      const child = forkGen();
      gens.push(child);
      done.push(0);
      let onReady!: (m: Extract<GenMsg, { type: 'Ready' }>) => void;
      const readyP = new Promise<Extract<GenMsg, { type: 'Ready' }>>((r) => { onReady = r; });
      results.push(new Promise<GenResult>((resolveResult, reject) => {
        child.on('message', (raw) => {
          const m = raw as GenMsg;
          if (m.type === 'Ready') onReady(m);
          else if (m.type === 'Progress') done[p] = m.done;
          else if (m.type === 'Result') resolveResult(m.result);
          else if (m.type === 'Failed') reject(new Error(m.error));
        });
      }));
      const spec: WatchSpec = { mode: 'watch', host: server.host, port: server.port, watchers: n,
        prefix: spaces.watch.prefix, sampleEvery: opts.watchSample };
      child.send({ type: 'Run', spec } satisfies LoadMsg);
      progress.update(label, 0, 'opening watch streams');
      ready.push(await readyP);
    }
    progress.done();
    const created = ready.reduce((a, r) => a + r.created, 0);
    const notFound = ready.reduce((a, r) => a + r.notFound, 0);
    const failed = ready.reduce((a, r) => a + r.failed, 0);
    if (notFound > 0 || created === 0) {
      for (const g of gens) g.send({ type: 'Stop' } satisfies LoadMsg);
      await Promise.allSettled(results);
      const why = notFound > 0 ? 'not available: POST /v3/watch answered 404'
        : `not available: no watch stream was created (${ready[0]?.firstError ?? 'no answer'})`;
      process.stderr.write(`  watch · ${ctx.label}: ${why}\n`);
      return { values: { watchers: created }, note: why };
    }
    // writers put to keys under the watched prefix; the watchers measure after the warmup
    const writers = runClosed(`${label} (writers)`, {
      mode: 'closed', host: server.host, port: server.port, connections: opts.watchWriters,
      warmupMs: opts.warmupMs, durationMs: opts.durationMs, ratePerSec: opts.watchRate,
      source: { kind: 'stamped-put', space: spaces.watch, keys: 100, valueSize: opts.valueSize },
    }, 1);
    await sleep(opts.warmupMs);
    const window = new CpuWindow(server);
    window.start();
    for (const g of gens) g.send({ type: 'Measure' } satisfies LoadMsg);
    await sleep(opts.durationMs);
    for (const g of gens) g.send({ type: 'Stop' } satisfies LoadMsg);
    const cpu = await window.end();
    const serverCpu = cpu.seconds;
    const [w, ...rs] = await Promise.all([writers, ...results]);
    const hist = new Histogram();
    let events = 0;
    let seconds = 0;
    let genCpu = w.genCpuSeconds;
    for (const r of rs) {
      hist.merge(r.hist);
      events += r.ops;
      seconds = Math.max(seconds, r.seconds);
      genCpu += r.cpuSeconds;
    }
    const sum = summarize(hist, seconds);
    return withThreadFigures({
      values: {
        opsPerSec: events / seconds, putsPerSec: w.ops / w.seconds, meanMs: sum.meanMs,
        p50Ms: sum.p50Ms, p99Ms: sum.p99Ms, p999Ms: sum.p999Ms, watchers: created,
        errors: failed + w.errors, serverCores: serverCpu / seconds, genCores: genCpu / seconds,
      },
      ...(failed + w.errors > 0 ? { note: `${failed} watch streams failed, ${w.errors} put ` +
        `errors; first: ${ready.find((r) => r.firstError)?.firstError ?? w.firstError}` } : {}),
    }, cpu, events);
  } finally {
    for (const g of gens) killGen(g);
  }
}

/** deleteKeysFor sizes the delete workload's preload: every delete must find its key, so
 * there must be more keys than the server deletes in warmup + duration. Without a figure, 1.5 ×
 * the put-50c rate measured on the same server (deletes cost about what puts do), at least
 * 20,000 keys; 20,000/s when put-50c did not run. */
function deleteKeysFor(opts: Options, put50: ServerFigures | undefined): number {
  if (opts.deleteKeys !== undefined) return opts.deleteKeys;
  const rate = put50?.values['opsPerSec'];
  const perSec = rate !== undefined && Number.isFinite(rate) ? rate * 1.5 : 20_000;
  return Math.max(20_000, Math.ceil(perSec * (opts.warmupMs + opts.durationMs) / 1000));
}

/** OpsSession is one server kept running for the request/response workloads (and watch). */
interface OpsSession {
  kind: ServerKind;
  ctx: Ctx;
  /** kvLoaded: the GET and txn workloads' keys are written. */
  kvLoaded: boolean;
}

/** openSession starts one server for the request/response workloads. */
async function openSession(opts: Options, kind: ServerKind, label: string, warnings: string[]):
  Promise<OpsSession> {
  const serverOpts: ServerOptions = { kind, etcdBin: opts.etcdBin ?? '', oursArgs: opts.oursArgs,
    etcdArgs: opts.etcdArgs, oursNodeArgs: opts.oursNodeArgs, oursMain: opts.oursMain };
  const server = await startServer(serverOpts, 120_000);
  process.stderr.write(`${label}: pid ${server.pid}, http://127.0.0.1:${server.port}, ` +
    `serving after ${((server.servingAt - server.startedAt) / 1000).toFixed(2)} s\n`);
  return { kind, ctx: { opts, server, label, warnings }, kvLoaded: false };
}

async function closeSession(s: OpsSession): Promise<void> {
  const how = await stopServer(s.ctx.server);
  process.stderr.write(`${s.ctx.label}: stopped (${how})\n`);
  cleanup(s.ctx.server);
}

/**
 * runOps runs every request/response workload (and watch) against both servers, both kept
 * running: each workload runs on one and then at once on the other, --rounds times, the
 * order alternating from one round and one workload to the next. So the two figures of a
 * round are measured a moment apart, not minutes apart, and on a machine whose speed drifts
 * (this one's does, by up to 2× over minutes) a round's ratio compares the servers, not two
 * moments; the round with the median ratio stands for the workload, and the report lists
 * every round.
 */
async function runOps(opts: Options, kinds: [ServerKind, string][],
  results: Map<WorkloadName, WorkloadResult>, warnings: string[]): Promise<void> {
  const wanted = workloadNames.filter((w) =>
    w !== 'restart' && w !== 'raft-capacity' && opts.only.has(w));
  if (wanted.length === 0) return;
  const sessions: OpsSession[] = [];
  try {
    for (const [kind, label] of kinds) {
      sessions.push(await openSession(opts, kind, label, warnings));
    }
    for (const [i, name] of wanted.entries()) {
      const w = results.get(name)!;
      const rounds: Round[] = [];
      for (let r = 0; r < opts.rounds; r++) {
        const round: Round = {};
        for (const s of (i + r) % 2 === 0 ? sessions : [...sessions].reverse()) {
          round[s.kind] = await runGuarded(s, name, results);
        }
        rounds.push(round);
      }
      const shown = rounds[medianRound(rounds, w.rows[0]!.key) ?? 0]!;
      w.ours = shown.ours;
      w.etcd = shown.etcd;
      if (rounds.length > 1) w.rounds = rounds;
      printResult(w);
    }
  } finally {
    for (const s of sessions) await closeSession(s);
  }
}

/** runGuarded runs one workload on one server; a failure becomes the figures' note. */
async function runGuarded(s: OpsSession, name: WorkloadName,
  results: Map<WorkloadName, WorkloadResult>): Promise<ServerFigures> {
  try {
    return await runOne(s, name, results);
  } catch (e) {
    progress.done();
    const why = `failed: ${e instanceof Error ? e.message : String(e)}`.replace(/\s+/g, ' ');
    process.stderr.write(`  ${name} · ${s.ctx.label}: ${why}\n`);
    return { values: {}, note: why };
  }
}

/** runOne runs one workload against one session's server. */
async function runOne(s: OpsSession, name: WorkloadName,
  results: Map<WorkloadName, WorkloadResult>): Promise<ServerFigures> {
  const { ctx } = s;
  const { opts, server, label } = ctx;
  const kv = spaces.kv;
  const range = { ...spaces.range, groupSize: opts.rangeSize };
  const needKv = async () => {
    if (!s.kvLoaded) await preload(server, `preload ${opts.keys} keys · ${label}`, kv, opts.keys,
      opts.valueSize);
    s.kvLoaded = true;
  };
  let f: ServerFigures;
  switch (name) {
    case 'put-1c':
    case 'put-50c':
      f = await closedWorkload(ctx, name, name === 'put-1c' ? 1 : opts.connections,
        { kind: 'put', space: kv, keys: opts.keys, valueSize: opts.valueSize });
      break;
    case 'get-linearizable':
    case 'get-serializable': {
      await needKv();
      const serializable = name === 'get-serializable';
      await check(ctx, name, '/v3/kv/range', bodies.range(keyName(kv, 0), serializable),
        (j) => Array.isArray(j['kvs']) && j['kvs'].length === 1);
      f = await closedWorkload(ctx, name, opts.connections,
        { kind: 'get', space: kv, keys: opts.keys, serializable });
      break;
    }
    case 'range-100': {
      await preload(server, `preload ${opts.rangePrefixes}×${opts.rangeSize} · ${label}`,
        range, opts.rangePrefixes * opts.rangeSize, opts.valueSize);
      const p = groupPrefix(range, 0);
      await check(ctx, name, '/v3/kv/range', bodies.range(p, false, prefixEndOf(p)),
        (j) => Array.isArray(j['kvs']) && j['kvs'].length === opts.rangeSize);
      f = await closedWorkload(ctx, name, opts.connections,
        { kind: 'range', space: range, groups: opts.rangePrefixes, serializable: false });
      break;
    }
    case 'txn':
      await needKv();
      await check(ctx, name, '/v3/kv/txn', bodies.txnCompareVersionPut(keyName(kv, 0), 'x'),
        (j) => j['succeeded'] === true);
      f = await closedWorkload(ctx, name, opts.connections,
        { kind: 'txn', space: kv, keys: opts.keys, valueSize: opts.valueSize });
      break;
    case 'delete': {
      const count = deleteKeysFor(opts, results.get('put-50c')?.[s.kind]);
      await preload(server, `preload ${count} keys · ${label}`, spaces.del, count,
        opts.valueSize);
      f = await closedWorkload(ctx, name, opts.connections,
        { kind: 'delete', space: spaces.del, count });
      f.note = `${count.toLocaleString('en-US')} keys preloaded`;
      const left = await countPrefix(server, spaces.del.prefix);
      if (left === 0) {
        f.note += `; all were deleted before the time was up, so ${formatNumber(
          f.values['ops'])} deletes were measured over ${formatNumber(
          f.values['ops']! / f.values['opsPerSec']!)} s (raise --delete-keys)`;
      }
      break;
    }
    case 'watch':
      f = await runWatch(ctx);
      break;
    default:
      throw new Error(`unexpected workload ${name}`);
  }
  return f;
}

/** killAndRestart sends SIGKILL to a serving server and times its start until it serves
 * again (the WAL tail since the last snapshot is replayed). */
async function killAndRestart(s: Server, o: ServerOptions):
  Promise<{ server: Server; seconds: number; rss: number }> {
  const exited = new Promise((resolve) => s.child.once('exit', resolve));
  process.kill(s.pid, 'SIGKILL');
  await exited;
  progress.update('restart after kill -9', 0.75, 'starting again');
  const server = await startServer({ ...o, dataDir: s.dataDir }, 600_000);
  return { server, seconds: (server.servingAt - server.startedAt) / 1000,
    rss: rssBytes(server.pid) };
}

/** restartBurstKeys: how many keys the restart workload rewrites before the kill -9 in the
 * middle of writing (a fifth of the keys written). */
function restartBurstKeys(o: Options): number {
  return Math.max(1, Math.round(o.restartKeys / 5));
}

/** rssSettleMs: the restart workload also reads each server's RSS this long after the load
 * and after it serves again, when both runtimes have had time to return what a burst left
 * (Go's scavenger, V8's collections on idle threads): the figure of a long-running server. */
const rssSettleMs = 6_000;

/**
 * runRestart writes N keys, kills the server with -9 and times its start until it serves
 * again (each server applies what its own recovery needs of the WAL tail the load left);
 * rewrites a fifth of the keys and kills it again at once, timing that start too; then
 * stops that one gracefully and times the next start the same way. RSS is the server
 * process's VmRSS (all its threads). The kill comes first: after a graceful stop MyEtcd
 * leaves no WAL tail behind its snapshot, which a kill -9 after it would inherit.
 */
async function runRestart(opts: Options, kind: ServerKind, label: string):
  Promise<ServerFigures> {
  const serverOpts: ServerOptions = { kind, etcdBin: opts.etcdBin ?? '', oursArgs: opts.oursArgs,
    etcdArgs: opts.etcdArgs, oursNodeArgs: opts.oursNodeArgs, oursMain: opts.oursMain };
  const first = await startServer(serverOpts, 120_000);
  let second: Server | undefined;
  let third: Server | undefined;
  try {
    const load = await preload(first, `restart: write ${opts.restartKeys} keys · ${label}`,
      spaces.restart, opts.restartKeys, opts.valueSize);
    const peakRssWhileLoading = peakRssBytes(first.pid);
    await sleep(1_000);
    const rssAfterLoad = rssBytes(first.pid);
    await sleep(rssSettleMs - 1_000);
    const rssSettledAfterLoad = rssBytes(first.pid);
    const killed = await killAndRestart(first, serverOpts);
    second = killed.server;
    const keysAfterKill = await countPrefix(second, spaces.restart.prefix);
    // A crash in the middle of writing: a burst rewrites a fifth of the keys, and the server
    // is killed as soon as the last one is acknowledged, before it could go idle (MyEtcd's
    // idle snapshot), so the next start recovers what the burst left in the WAL.
    const burstKeys = restartBurstKeys(opts);
    await preload(second, `restart: rewrite ${burstKeys} keys · ${label}`, spaces.restart,
      burstKeys, opts.valueSize);
    const burst = await killAndRestart(second, serverOpts);
    second = burst.server;
    const t0 = performance.now();
    await stopServer(second, 120_000);
    const stopSeconds = (performance.now() - t0) / 1000;
    const dataDirBytes = dirBytes(first.dataDir);
    progress.update(`restart · ${label}`, 0.5, 'starting again');
    third = await startServer({ ...serverOpts, dataDir: first.dataDir }, 600_000);
    progress.done();
    const rssAfterRestart = rssBytes(third.pid);
    const keysAfterRestart = await countPrefix(third, spaces.restart.prefix);
    await sleep(rssSettleMs);
    const rssSettledAfterRestart = rssBytes(third.pid);
    const startToServingSeconds = (third.servingAt - third.startedAt) / 1000;
    const mib = 2 ** 20;
    const values = {
      keys: opts.restartKeys, loadSeconds: load.seconds,
      loadKeysPerSec: opts.restartKeys / load.seconds,
      peakRssWhileLoadingMiB: peakRssWhileLoading / mib, rssAfterLoadMiB: rssAfterLoad / mib,
      rssSettledAfterLoadMiB: rssSettledAfterLoad / mib,
      killStartToServingSeconds: killed.seconds, rssAfterKillRestartMiB: killed.rss / mib,
      burstKeys, burstKillStartToServingSeconds: burst.seconds,
      rssSettledAfterRestartMiB: rssSettledAfterRestart / mib,
      stopSeconds, dataDirMiB: dataDirBytes / mib,
      startToServingSeconds,
      rssAfterRestartMiB: rssAfterRestart / mib, keysAfterRestart,
    };
    const lost = [keysAfterKill, keysAfterRestart].some((n) => n !== opts.restartKeys);
    return !lost ? { values }
      : { values, note: `counted ${keysAfterKill} keys after kill -9 and ${keysAfterRestart} ` +
        `after the graceful restart, wrote ${opts.restartKeys}` };
  } finally {
    await stopServer(first);
    if (second !== undefined) await stopServer(second);
    if (third !== undefined) await stopServer(third);
    cleanup(first);
  }
}

const descriptions: Record<WorkloadName, (o: Options) => string> = {
  'put-1c': (o) => `PUT of a ${o.valueSize}-byte value to a key drawn uniformly from ` +
    `${o.keys.toLocaleString('en-US')} keys, 1 connection (\`POST /v3/kv/put\`).`,
  'put-50c': (o) => `PUT of a ${o.valueSize}-byte value to a key drawn uniformly from ` +
    `${o.keys.toLocaleString('en-US')} keys, ${o.connections} connections.`,
  'get-linearizable': (o) => `Range of one existing key (linearizable, etcd's default), ` +
    `${o.connections} connections.`,
  'get-serializable': (o) => `Range of one existing key with \`serializable: true\`, ` +
    `${o.connections} connections.`,
  'range-100': (o) => `Linearizable range of the ${o.rangeSize} keys under one prefix drawn ` +
    `from ${o.rangePrefixes} (\`range_end\` = prefix + 1), ${o.connections} connections.`,
  'txn': (o) => `Txn: compare version > 0 on an existing key, then put a ${o.valueSize}-byte ` +
    `value to it, ${o.connections} connections.`,
  'delete': (o) => `DeleteRange of one existing key, each key once (keys preloaded: ` +
    `${o.deleteKeys?.toLocaleString('en-US') ?? '1.5 × the put-50c rate × the run time'}), ` +
    `${o.connections} connections.`,
  'watch': (o) => `${o.watchers.toLocaleString('en-US')} \`/v3/watch\` streams on one prefix ` +
    `while ${o.watchWriters} writer connections put to it at ${o.watchRate || 'unpaced'} ` +
    `puts/s in total; events delivered per second across all streams, and put→event latency ` +
    `(send of the put → arrival of its event, from a send time stamped in the value) on every ` +
    `${o.watchSample}th stream.`,
  'restart': (o) => `Write ${o.restartKeys.toLocaleString('en-US')} keys (${o.valueSize}-byte ` +
    `values, ${txnBatch}-put txns), kill -9 the server ${rssSettleMs / 1000} s later (after ` +
    'the RSS readings) and start it again on the same data ' +
    'folder: time from spawn until a linearizable range answers 200; then rewrite ' +
    `${restartBurstKeys(o).toLocaleString('en-US')} of the keys, kill -9 the server as soon ` +
    'as the last is acknowledged (a crash in the middle of writing) and time its start the ' +
    'same way; then stop that one ' +
    'gracefully (SIGTERM), start it again and time it the same way, with its resident memory ' +
    '(VmRSS of the server process, all threads) at once and again ' +
    `${rssSettleMs / 1000} s later.`,
  'raft-capacity': (o) => `MyEtcd only, without HTTP (\`bench/raft-capacity.ts\`): one ` +
    'member\'s actors (Raft node, WAL writer with its fsyncs, shards, lease reaper, watch hub) ' +
    'in one process whose main thread keeps N PUTs outstanding through the same mailboxes ' +
    `the HTTP gateway uses (${o.valueSize}-byte values, ${o.keys.toLocaleString('en-US')} ` +
    `keys), for N = ${raftCapacityLevels.replaceAll(',', ', ')}. The HTTP workloads measure ` +
    'the Raft thread at the batches 50 connections make on 2 cores, where its fixed cost per ' +
    'pass weighs on each write; here the load grows until the Raft thread\'s cost per write ' +
    'is what a member with enough cores would pay, and its projected ceiling is measured ' +
    'rather than extrapolated.',
};

/** raftCapacityLevels: the proposals kept outstanding in the raft-capacity workload. */
const raftCapacityLevels = '50,200,1000';

/**
 * raftCapacity runs bench/raft-capacity.ts (this build's, or --ours-main's beside it) with the
 * server's flags and returns its report as a section of the benchmark's: the Raft thread's
 * CPU per write with nothing but the actors setting the pace. MyEtcd only: etcd's Raft loop
 * cannot be driven without its gRPC front end.
 */
function raftCapacity(opts: Options): string {
  const script = opts.oursMain === ''
    ? fileURLToPath(new URL('./raft-capacity.js', import.meta.url))
    : resolve(dirname(opts.oursMain), '../bench/raft-capacity.js');
  const args = [script, '--outstanding', raftCapacityLevels,
    '--duration', String(opts.durationMs / 1000), '--warmup', String(opts.warmupMs / 1000),
    '--keys', String(opts.keys), '--value-size', String(opts.valueSize),
    '--member-args', opts.oursArgs.join(' ')];
  progress.update('raft-capacity · MyEtcd', 0, 'running');
  let body: string;
  try {
    const out = execFileSync(process.execPath, [...opts.oursNodeArgs, ...args], {
      env: withMallocTunables(process.env), encoding: 'utf8', maxBuffer: 1 << 20,
    });
    body = out.split('\n').filter((l) => !l.startsWith('# ')).join('\n')
      .replaceAll(/^## /gm, '### ').trim();
  } catch (e) {
    // As the restart workload: a failure is reported in its section, and the report is kept.
    body = `- MyEtcd: failed: ${e instanceof Error ? e.message : String(e)}`.replace(/\s+/g, ' ');
    process.stderr.write(`  raft-capacity · MyEtcd: ${body}\n`);
  }
  progress.done();
  const section = `## raft-capacity\n\n${descriptions['raft-capacity'](opts)}\n\n${body}\n`;
  process.stdout.write(`\n${section}\n`);
  return section;
}

function printResult(w: WorkloadResult): void {
  const lines = [`\n### ${w.name}`, w.description];
  for (const [who, f] of [['MyEtcd', w.ours], ['etcd', w.etcd]] as const) {
    if (f?.note) lines.push(`${who}: ${f.note}`);
  }
  lines.push(tableMarkdown(w), '');
  const rl = roundsLine(w, w.rows[0]!);
  if (rl !== undefined) lines.push(rl, '');
  if (w.ours?.threads !== undefined) lines.push('MyEtcd per thread:', '', w.ours.threads, '');
  process.stdout.write(lines.join('\n') + '\n');
}

function limitNotes(opts: Options, m: Machine): string[] {
  return [
    `The machine has ${m.cores} cores, shared with other work: the server, its threads and ` +
    'the load generator process(es) all compete for them. The "CPU (cores busy)" rows show ' +
    'how much each side used; when server + generator is near the core count, the figure is ' +
    'a measure of the machine, not of the server alone.',
    'Both servers are reached through the HTTP/1.1 JSON gateway. etcd serves that through ' +
    'grpc-gateway, an in-process HTTP → gRPC proxy, so its figures here are below what its ' +
    'native gRPC API gives; it is the API both servers share.',
    'Writes are durable on both: each acknowledged write has been fsynced to the WAL. On a ' +
    'disk with slow fsync, put-1c measures the fsync; with many connections both servers ' +
    'batch writes into one fsync.',
    'One connection has one request in flight (closed loop, no pipelining), so throughput ' +
    `with ${opts.connections} connections is at most ${opts.connections} ÷ mean latency.`,
    `Watch: events/s is bounded by the writers' rate × watchers ` +
    `(${opts.watchRate || 'unpaced'} × ${opts.watchers}); a server that keeps up delivers ` +
    'exactly that, so the latency is the figure to compare. Events are counted on every ' +
    'stream but parsed only on the sampled ones, to keep the generator cheap.',
    'Both servers run side by side while the other workloads are measured: each workload ' +
    `runs on one and then at once on the other, ${opts.rounds === 1 ? 'once'
      : `${opts.rounds} times`}, the order ` +
    'alternating from one round and one workload to the next, so the two figures of a ' +
    'round are taken a moment apart; the table shows the round with the median ratio of its ' +
    'first row, and the line under it every round. An idle server costs the busy one ' +
    'little; the machine\'s speed drifts more than that over minutes.',
    'Restart: MyEtcd rebuilds its state from the WAL and its snapshots; etcd reopens its ' +
    'bbolt file and replays the WAL tail. --snapshot-count is each server\'s default unless ' +
    'given with --ours-args/--etcd-args.',
  ];
}

async function main(): Promise<void> {
  if (process.argv[2] === '--cluster') {
    // `npm run bench -- --cluster [--seconds N]`: the 3-member workloads (bench/cluster.ts).
    process.argv.splice(2, 1);
    await import('./cluster.js');
    return;
  }
  const argv = process.argv.slice(2);
  let opts: Options | undefined;
  try {
    opts = parseOptions(argv);
  } catch (e) {
    process.stderr.write(`bench: ${e instanceof Error ? e.message : String(e)}\n\n${usage()}\n`);
    process.exit(2);
  }
  if (opts === undefined) {
    process.stdout.write(usage() + '\n');
    return;
  }
  const startedAt = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const machine = machineInfo(opts.etcdBin);
  const command = ['npm run bench', ...(argv.length ? ['--', ...argv] : [])].join(' ');
  process.stdout.write(`# MyEtcd benchmark ${startedAt}\n${machine.cpu}, ${machine.cores} ` +
    `cores, ${machine.ramGiB.toFixed(1)} GiB, ${machine.kernel}, Node ${machine.node}, ` +
    `etcd: ${machine.etcd}\n${command}\n`);
  if (opts.etcdBin === undefined) {
    process.stderr.write('bench: etcd not run (--no-etcd or no binary)\n');
  }
  const results = new Map<WorkloadName, WorkloadResult>();
  for (const name of workloadNames) {
    if (!opts.only.has(name) || name === 'raft-capacity') continue;
    results.set(name, {
      name, description: descriptions[name](opts),
      rows: name === 'watch' ? watchRows : name === 'restart' ? restartRows : opsRows,
    });
  }
  const warnings: string[] = [];
  const kinds: [ServerKind, string][] = [['ours', 'MyEtcd'],
    ...(opts.etcdBin ? [['etcd', 'etcd'] as [ServerKind, string]] : [])];
  await runOps(opts, kinds, results, warnings);
  if (opts.only.has('restart')) {
    const w = results.get('restart')!;
    for (const [kind, label] of kinds) {
      try {
        w[kind] = await runRestart(opts, kind, label);
      } catch (e) {
        progress.done();
        const why = `failed: ${e instanceof Error ? e.message : String(e)}`.replace(/\s+/g, ' ');
        process.stderr.write(`  restart · ${label}: ${why}\n`);
        w[kind] = { values: {}, note: why };
      }
    }
    printResult(w);
  }
  const sections = opts.only.has('raft-capacity') ? [raftCapacity(opts)] : [];
  const smoke = opts.durationMs < 10_000 || opts.restartKeys < 1_000_000 ||
    opts.only.size < workloadNames.length || opts.etcdBin === undefined;
  if (opts.out !== undefined) {
    const outDir = resolve(opts.out);
    mkdirSync(outDir, { recursive: true });
    const list = [...results.values()];
    const settings = {
      duration_s: opts.durationMs / 1000, rounds: opts.rounds, warmup_s: opts.warmupMs / 1000,
      connections: opts.connections, keys: opts.keys, value_bytes: opts.valueSize,
      watchers: opts.watchers, watch_rate: opts.watchRate, restart_keys: opts.restartKeys,
      generator_procs: opts.procs,
    };
    const notes = [...limitNotes(opts, machine), ...warnings.map((w) => `Warning: ${w}`)];
    writeFileSync(join(outDir, 'benchmark.md'), reportMarkdown({
      machine, command, smoke, settings, results: list, startedAt, notes, sections,
    }));
    const note = `${smoke ? 'SMOKE RUN · ' : ''}${machine.cpu}, ${machine.cores} cores · ` +
      `Node ${machine.node} · ${startedAt}`;
    const svgs = chartSvgs(list, note);
    writeFileSync(join(outDir, 'bench-throughput.svg'), svgs.throughput);
    writeFileSync(join(outDir, 'bench-latency.svg'), svgs.latency);
    process.stderr.write(`bench: wrote ${join(outDir, 'benchmark.md')} and bench-*.svg` +
      `${smoke ? ' (marked as a smoke run)' : ''}\n`);
  }
}

const onSignal = () => {
  for (const c of children) killGen(c);
  killLiveServers();
  process.exit(130);
};
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

main().catch((e: unknown) => {
  process.stderr.write(`bench: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  for (const c of children) killGen(c);
  killLiveServers();
  process.exitCode = 1;
});
