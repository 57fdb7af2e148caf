/**
 * report: the machine description, the per-workload tables (ours, etcd, ours ÷ etcd) and the
 * markdown and SVG written to docs/. Rendering is pure; machineInfo reads the system.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { formatNumber, formatRatio, ratio } from './stats.js';
import { barChartSvg } from './svg.js';

/** ServerFigures are one server's figures for one workload, keyed by RowSpec.key. */
export interface ServerFigures {
  values: Record<string, number>;
  /** note: "not available (404)", the first error, … */
  note?: string;
  /** threads: the per-thread CPU table in markdown (bench/threads.ts), for a server that
   * names its threads. */
  threads?: string;
}

/** RowSpec is one line of a workload's table. */
export interface RowSpec {
  key: string;
  label: string;
}

/** WorkloadResult is a workload's figures on every server that ran it. */
export interface WorkloadResult {
  name: string;
  description: string;
  rows: RowSpec[];
  ours?: ServerFigures;
  etcd?: ServerFigures;
  /** rounds: every round's figures when the workload ran more than once (--rounds); ours and
   * etcd above are then those of the round medianRound picks. */
  rounds?: Round[];
}

/** Round is one run of a workload on each server, the two a moment apart. */
export interface Round {
  ours?: ServerFigures;
  etcd?: ServerFigures;
}

/**
 * medianRound picks the round that stands for a workload run several times: the one whose
 * `key` figure, ours ÷ etcd (ours alone where etcd has none), is the median — the lower of the
 * two middle ones for an even count. Rounds without the figure are passed over; undefined when
 * none has it.
 */
export function medianRound(rounds: readonly Round[], key: string): number | undefined {
  const scored: [number, number][] = [];
  rounds.forEach((r, i) => {
    const o = r.ours?.values[key];
    if (o === undefined || !Number.isFinite(o)) return;
    const e = r.etcd?.values[key];
    scored.push([e === undefined ? o : ratio(o, e), i]);
  });
  const usable = scored.filter(([v]) => Number.isFinite(v)).sort((a, b) => a[0] - b[0]);
  if (usable.length === 0) return undefined;
  return usable[Math.floor((usable.length - 1) / 2)]![1];
}

/** roundsLine says what each round gave for the `row` figure, and which one the table shows. */
export function roundsLine(w: WorkloadResult, row: RowSpec): string | undefined {
  const rounds = w.rounds;
  if (rounds === undefined || rounds.length < 2) return undefined;
  const shown = rounds.findIndex((r) => r.ours === w.ours && r.etcd === w.etcd);
  const parts = rounds.map((r, i) => {
    const o = r.ours?.values[row.key];
    const e = r.etcd?.values[row.key];
    const text = e === undefined ? formatNumber(o)
      : `${formatNumber(o)} / ${formatNumber(e)} = ${formatRatio(ratio(o, e))}`;
    return i === shown ? `**${text}**` : text;
  });
  return `${row.label} in each of ${rounds.length} rounds (ours / etcd, each round measured ` +
    'on both a moment apart, the order alternating): ' + parts.join('; ') +
    '. The table shows the round in bold, the median' +
    (rounds.some((r) => r.etcd !== undefined) ? ' ratio.' : '.');
}

/** opsRows are the rows of a request/response workload. */
export const opsRows: RowSpec[] = [
  { key: 'opsPerSec', label: 'throughput (ops/s)' },
  { key: 'meanMs', label: 'latency mean (ms)' },
  { key: 'p50Ms', label: 'latency p50 (ms)' },
  { key: 'p99Ms', label: 'latency p99 (ms)' },
  { key: 'p999Ms', label: 'latency p99.9 (ms)' },
  { key: 'maxMs', label: 'latency max (ms)' },
  { key: 'ops', label: 'requests measured' },
  { key: 'errors', label: 'errors (non-2xx or socket)' },
  { key: 'serverCores', label: 'server CPU (cores busy)' },
  { key: 'genCores', label: 'load generator CPU (cores busy)' },
  { key: 'cpuUsPerOp', label: 'server CPU per request (µs, all threads)' },
  { key: 'ceilingOpsPerSec', label: 'projected ceiling, enough cores (ops/s)' },
  { key: 'splitCeilingOpsPerSec', label: '… with the gateway and shards split (ops/s)' },
];

/** watchRows are the rows of the watch workload. */
export const watchRows: RowSpec[] = [
  { key: 'opsPerSec', label: 'events delivered (events/s)' },
  { key: 'putsPerSec', label: 'puts by the writers (puts/s)' },
  { key: 'meanMs', label: 'put→event mean (ms)' },
  { key: 'p50Ms', label: 'put→event p50 (ms)' },
  { key: 'p99Ms', label: 'put→event p99 (ms)' },
  { key: 'p999Ms', label: 'put→event p99.9 (ms)' },
  { key: 'watchers', label: 'watch streams created' },
  { key: 'errors', label: 'errors' },
  { key: 'serverCores', label: 'server CPU (cores busy)' },
  { key: 'genCores', label: 'watchers + writers CPU (cores busy)' },
  { key: 'cpuUsPerOp', label: 'server CPU per event delivered (µs, all threads)' },
  { key: 'ceilingOpsPerSec', label: 'projected ceiling, enough cores (events/s)' },
  { key: 'splitCeilingOpsPerSec', label: '… with the gateway and shards split (events/s)' },
];

/** restartRows are the rows of the restart workload. */
export const restartRows: RowSpec[] = [
  { key: 'keys', label: 'keys written' },
  { key: 'loadSeconds', label: 'time to write them (s)' },
  { key: 'loadKeysPerSec', label: 'write rate, 128-put txns (keys/s)' },
  { key: 'peakRssWhileLoadingMiB', label: 'peak RSS while writing (MiB)' },
  { key: 'rssAfterLoadMiB', label: 'RSS after writing (MiB)' },
  { key: 'rssSettledAfterLoadMiB', label: 'RSS 6 s after writing (MiB)' },
  { key: 'killStartToServingSeconds',
    label: 'kill -9 6 s after writing, then start → serving (s)' },
  { key: 'rssAfterKillRestartMiB', label: 'RSS when serving after kill -9 (MiB)' },
  { key: 'burstKeys', label: 'keys rewritten in a burst before the next kill -9' },
  { key: 'burstKillStartToServingSeconds',
    label: 'kill -9 right after that burst, then start → serving (s)' },
  { key: 'stopSeconds', label: 'graceful stop (s)' },
  { key: 'dataDirMiB', label: 'data folder on disk (MiB)' },
  { key: 'startToServingSeconds', label: 'start → serving after the graceful stop (s)' },
  { key: 'rssAfterRestartMiB', label: 'RSS when serving again (MiB)' },
  { key: 'rssSettledAfterRestartMiB', label: 'RSS 6 s after serving again (MiB)' },
  { key: 'keysAfterRestart', label: 'keys counted after restart' },
];

/** Machine describes where the figures were measured. */
export interface Machine {
  cpu: string;
  cores: number;
  ramGiB: number;
  kernel: string;
  node: string;
  etcd: string;
  commit: string;
}

/** machineInfo reads the machine, Node's and etcd's versions and our commit. */
export function machineInfo(etcdBin: string | undefined): Machine {
  let cpu = os.cpus()[0]?.model ?? 'unknown';
  try {
    const m = /model name\s*:\s*(.+)/.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) cpu = m[1]!.trim();
  } catch {
    // not Linux
  }
  const etcdVersion = etcdBin === undefined ? 'not run'
    : (spawnSync(etcdBin, ['--version'], { encoding: 'utf8' }).stdout ?? '').split('\n')
      .filter((l) => /^(etcd Version|Go Version)/.test(l)).join(', ') || 'unknown';
  const git = (args: string[]) => spawnSync('git', args, { encoding: 'utf8' }).stdout?.trim();
  const dirty = git(['status', '--porcelain', '--untracked-files=no']) ? ' (tree modified)' : '';
  return {
    cpu, cores: os.cpus().length, ramGiB: os.totalmem() / 2 ** 30,
    kernel: `${os.type()} ${os.release()}`, node: process.version, etcd: etcdVersion,
    commit: (git(['rev-parse', '--short', 'HEAD']) || 'unknown') + dirty,
  };
}

/** tableMarkdown renders one workload's table. */
export function tableMarkdown(w: WorkloadResult, etcdLabel = 'etcd 3.4'): string {
  const lines = [`| | MyEtcd | ${etcdLabel} | ours ÷ etcd |`, '|---|---:|---:|---:|'];
  for (const r of w.rows) {
    const o = w.ours?.values[r.key];
    const e = w.etcd?.values[r.key];
    lines.push(`| ${r.label} | ${formatNumber(o)} | ${formatNumber(e)} | ` +
      `${formatRatio(ratio(o, e))} |`);
  }
  return lines.join('\n');
}

/** ReportInput is everything the markdown needs. */
export interface ReportInput {
  machine: Machine;
  command: string;
  smoke: boolean;
  settings: Record<string, string | number | boolean>;
  results: WorkloadResult[];
  startedAt: string;
  notes: string[];
  /** sections: more of the report, in markdown, after the workloads (raft-capacity). */
  sections?: string[];
}

/** reportMarkdown renders docs/benchmark.md. */
export function reportMarkdown(r: ReportInput): string {
  const m = r.machine;
  const out: string[] = [];
  out.push('# Benchmark: MyEtcd against etcd 3.4', '');
  if (r.smoke) {
    out.push('> **SMOKE RUN — these figures are not representative.** The run was shorter or ' +
      'smaller than the defaults (see the command below); it only shows that the harness ' +
      'works end to end. Run `npm run bench` with the defaults for real figures.', '');
  }
  out.push(`Measured ${r.startedAt} by \`bench/run.ts\` (\`npm run bench\`).`, '');
  out.push('## Machine', '');
  out.push('| | |', '|---|---|');
  out.push(`| CPU | ${m.cpu} |`, `| cores | ${m.cores} |`,
    `| RAM | ${m.ramGiB.toFixed(1)} GiB |`, `| kernel | ${m.kernel} |`,
    `| Node | ${m.node} |`, `| etcd | ${m.etcd} |`, `| MyEtcd commit | ${m.commit} |`, '');
  out.push('## Command', '', '```', r.command, '```', '');
  out.push('Settings: ' + Object.entries(r.settings).map(([k, v]) => `${k}=${v}`).join(', ') +
    '.', '');
  out.push('Both servers run as one member on loopback with a fresh temporary data folder and ' +
    'fsync on (etcd\'s default; MyEtcd fsyncs its WAL before it answers a write). Both are ' +
    'driven through the same etcd 3.4 JSON gateway API (`/v3/kv/*`, `/v3/watch`) by the ' +
    'same load generator. Ratios are ours ÷ etcd: above 1 is better for throughput, worse ' +
    'for latency, memory and start time.', '');
  out.push('![throughput](bench-throughput.svg)', '', '![latency](bench-latency.svg)', '');
  for (const w of r.results) {
    out.push(`## ${w.name}`, '', w.description, '');
    for (const [who, f] of [['MyEtcd', w.ours], ['etcd', w.etcd]] as const) {
      if (f?.note) out.push(`- ${who}: ${f.note}`);
    }
    if (w.ours?.note || w.etcd?.note) out.push('');
    out.push(tableMarkdown(w), '');
    const rl = roundsLine(w, w.rows[0]!);
    if (rl !== undefined) out.push(rl, '');
    if (w.ours?.threads !== undefined) {
      out.push('MyEtcd\'s CPU per thread over the measured window (`/proc/<pid>/task/<tid>/' +
        'stat`, utime + stime, threads named by `GET /debug/threads`):', '', w.ours.threads, '');
    }
  }
  for (const sec of r.sections ?? []) out.push(sec, '');
  out.push('## How load is generated', '',
    'A closed-loop HTTP/1.1 keep-alive generator on raw `node:net` sockets ' +
    '(`bench/loadgen.ts`), in its own process(es) forked by the harness: each connection ' +
    'keeps exactly one request in flight and sends the next as soon as the response\'s last ' +
    'byte arrives. Request bytes are built before the run; responses are parsed ' +
    'incrementally (Content-Length or chunked). Latency is send → last byte, recorded in an ' +
    'HDR-style log-linear histogram (< 0.8 % bucket error) per process and merged. The ' +
    'first `--warmup` seconds of every workload are not measured.', '');
  out.push('## What limits these figures', '');
  for (const n of r.notes) out.push(`- ${n}`);
  out.push('');
  return out.join('\n');
}

/** chartSvgs renders the throughput and latency charts. */
export function chartSvgs(results: WorkloadResult[], note: string):
  { throughput: string; latency: string } {
  const measured = results.filter((w) => w.rows !== restartRows);
  const throughput = barChartSvg({
    title: 'Throughput: MyEtcd vs etcd 3.4 (higher is better)', unit: 'ops/s (watch: events/s)',
    series: ['MyEtcd', 'etcd 3.4'], log: true, note,
    groups: measured.map((w) => ({
      label: w.name, values: [w.ours?.values['opsPerSec'], w.etcd?.values['opsPerSec']],
    })),
  });
  const latency = barChartSvg({
    title: 'Latency p50 and p99: MyEtcd vs etcd 3.4 (lower is better)', unit: 'ms',
    series: ['MyEtcd p50', 'etcd p50', 'MyEtcd p99', 'etcd p99'], log: true, note,
    groups: measured.map((w) => ({
      label: w.name,
      values: [w.ours?.values['p50Ms'], w.etcd?.values['p50Ms'], w.ours?.values['p99Ms'],
        w.etcd?.values['p99Ms']],
    })),
  });
  return { throughput, latency };
}
