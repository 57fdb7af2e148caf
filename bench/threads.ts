/**
 * threads: per-thread CPU per operation for the benchmark. A Node process's threads are all
 * called `node` in /proc, so MyEtcd names them itself (`GET /debug/threads`: actor name → OS
 * thread id); the harness reads every /proc/<pid>/task/<tid>/stat before and after a measured
 * window, and this file turns the two samples into a table: each named thread's CPU µs per
 * operation, the unnamed threads (V8's and libuv's helpers) together, the total, and the
 * projected ceiling of one member on a host with enough cores: 1,000,000 ÷ the busiest named
 * thread's µs/op; and the ceiling once the threads that can be split are (the gateway into
 * `--experimental-gateway-threads`, the store into `--storage-shards`): 1,000,000 ÷ the busiest
 * thread that cannot be, with how many copies each split family would need to stay under
 * it. The parsing and arithmetic are pure (test/bench-threads.test.ts); sampleTasks
 * is the one function that reads /proc.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** TaskStat is one thread's line of /proc/<pid>/task/<tid>/stat, the fields we use. */
export interface TaskStat {
  tid: number;
  comm: string;
  /** ticks is utime + stime, in clock ticks (CLK_TCK, 100 on Linux). */
  ticks: number;
}

/** parseTaskStat reads a /proc/…/stat line. The command name (field 2) is in parentheses and
 * may itself hold spaces and parentheses, so the fields are counted from the last ')'. */
export function parseTaskStat(text: string): TaskStat | undefined {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return undefined;
  const tid = Number(text.slice(0, open).trim());
  const rest = text.slice(close + 2).split(' ');
  // rest[0] is field 3 (state); utime and stime are fields 14 and 15.
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  if (!Number.isSafeInteger(tid) || !Number.isSafeInteger(utime) ||
    !Number.isSafeInteger(stime)) return undefined;
  return { tid, comm: text.slice(open + 1, close), ticks: utime + stime };
}

/** ThreadName is what /debug/threads says about one thread. */
export interface ThreadName {
  name: string;
  tid: number;
}

/** ThreadCpuRow is one named thread's CPU per operation. */
export interface ThreadCpuRow {
  name: string;
  tid: number;
  usPerOp: number;
  /** gcUsPerOp: of usPerOp, the thread's garbage-collection pauses (when the server counts
   * them: myetcd_actor_gc_seconds_total). */
  gcUsPerOp?: number;
}

/** ThreadCpu is the whole table for one workload on one server. */
export interface ThreadCpu {
  rows: ThreadCpuRow[];
  /** othersUsPerOp: every thread not named by the server, together. */
  othersUsPerOp: number;
  /** othersCount: how many such threads ran during the window. */
  othersCount: number;
  totalUsPerOp: number;
  /** busiest is the named thread with the most CPU per operation (undefined: none named). */
  busiest: ThreadCpuRow | undefined;
  /** ceilingOpsPerSec = 1,000,000 ÷ busiest.usPerOp: what one member could serve if every
   * other thread had a core of its own and the busiest thread were the only limit. */
  ceilingOpsPerSec: number;
  /** fixedBusiest is the busiest named thread that cannot be split (see splitFamily). */
  fixedBusiest: ThreadCpuRow | undefined;
  /** splitCeilingOpsPerSec = 1,000,000 ÷ fixedBusiest.usPerOp: the ceiling once every split
   * family runs as enough threads that none of its copies is busier than fixedBusiest. */
  splitCeilingOpsPerSec: number;
  /** families: each split family's µs/op over all its threads, and the copies it would need
   * for each to stay at or under fixedBusiest's µs/op (its work shared evenly). */
  families: SplitFamily[];
}

/** SplitFamily is the work of one kind of thread that a member can run as several copies. */
export interface SplitFamily {
  family: 'gateway' | 'shard';
  usPerOp: number;
  threadsNow: number;
  threadsNeeded: number;
}

/**
 * splitFamily names the kind of thread a member can run more of: the HTTP gateway (the main
 * thread, `gateway`, and `gateway-N` with --experimental-gateway-threads) and the storage
 * shards (`shard-N`, --storage-shards; keys are spread over them by hash, so a workload over
 * many keys shares out). Every other thread is one per member: the Raft node, the WAL
 * writer, the lease reaper, the watch hub, the peer transport.
 */
export function splitFamily(name: string): SplitFamily['family'] | undefined {
  if (name === 'gateway' || /^gateway-\d+$/.test(name)) return 'gateway';
  if (/^shard-\d+$/.test(name)) return 'shard';
  return undefined;
}

/** ceilingOpsPerSec is 1,000,000 µs/s ÷ µs/op (Infinity for a thread that spent nothing). */
export function ceilingOpsPerSec(usPerOp: number): number {
  return usPerOp > 0 ? 1_000_000 / usPerOp : Infinity;
}

/** threadCpu builds the table from two samples of the process's threads (tid → ticks), the
 * thread names and the operations done between them. A thread absent from `before` started
 * during the window and is counted from zero; one absent from `after` ended during it and is
 * left out (its last ticks are not known). */
export function threadCpu(before: ReadonlyMap<number, number>,
  after: ReadonlyMap<number, number>, names: readonly ThreadName[], ops: number,
  ticksPerSec: number, gc?: GcSamples): ThreadCpu {
  const usPerTick = 1_000_000 / ticksPerSec;
  const per = (tid: number): number =>
    ((after.get(tid) ?? 0) - (before.get(tid) ?? 0)) * usPerTick / ops;
  const named = new Set<number>();
  const rows: ThreadCpuRow[] = [];
  for (const n of names) {
    if (!after.has(n.tid) || named.has(n.tid)) continue;
    named.add(n.tid);
    const row: ThreadCpuRow = { name: n.name, tid: n.tid, usPerOp: per(n.tid) };
    const gcAfter = gc?.after.get(n.name);
    if (gcAfter !== undefined) {
      row.gcUsPerOp = Math.max(0, gcAfter - (gc!.before.get(n.name) ?? 0)) * 1e6 / ops;
    }
    rows.push(row);
  }
  let othersUsPerOp = 0;
  let othersCount = 0;
  let totalUsPerOp = 0;
  for (const tid of after.keys()) {
    const us = per(tid);
    totalUsPerOp += us;
    if (named.has(tid)) continue;
    othersUsPerOp += us;
    if (us > 0) othersCount++;
  }
  let busiest: ThreadCpuRow | undefined;
  for (const r of rows) if (busiest === undefined || r.usPerOp > busiest.usPerOp) busiest = r;
  return {
    rows, othersUsPerOp, othersCount, totalUsPerOp, busiest,
    ceilingOpsPerSec: busiest === undefined ? NaN : ceilingOpsPerSec(busiest.usPerOp),
    ...splitFigures(rows),
  };
}

/** splitFigures: the busiest thread that cannot be split, its ceiling, and the families. */
function splitFigures(rows: readonly ThreadCpuRow[]):
  Pick<ThreadCpu, 'fixedBusiest' | 'splitCeilingOpsPerSec' | 'families'> {
  let fixedBusiest: ThreadCpuRow | undefined;
  const sums = new Map<SplitFamily['family'], { usPerOp: number; threadsNow: number }>();
  for (const r of rows) {
    const f = splitFamily(r.name);
    if (f === undefined) {
      if (fixedBusiest === undefined || r.usPerOp > fixedBusiest.usPerOp) fixedBusiest = r;
      continue;
    }
    const s = sums.get(f) ?? { usPerOp: 0, threadsNow: 0 };
    s.usPerOp += r.usPerOp;
    s.threadsNow++;
    sums.set(f, s);
  }
  const cap = fixedBusiest?.usPerOp ?? 0;
  const families = [...sums].map(([family, s]) => ({
    family, usPerOp: s.usPerOp, threadsNow: s.threadsNow,
    threadsNeeded: cap > 0 ? Math.max(1, Math.ceil(s.usPerOp / cap)) : NaN,
  }));
  return {
    fixedBusiest, families,
    splitCeilingOpsPerSec: fixedBusiest === undefined ? NaN
      : ceilingOpsPerSec(fixedBusiest.usPerOp),
  };
}

/** GcSamples are the GC pause seconds per thread name, read before and after the window. */
export interface GcSamples {
  before: ReadonlyMap<string, number>;
  after: ReadonlyMap<string, number>;
}

/** parseGcSeconds reads myetcd_actor_gc_seconds_total{actor="…"} from a /metrics text. */
export function parseGcSeconds(metrics: string): Map<string, number> {
  const out = new Map<string, number>();
  const re = /^myetcd_actor_gc_seconds_total\{actor="([^"]+)"\} (\S+)$/gm;
  for (let m = re.exec(metrics); m !== null; m = re.exec(metrics)) {
    const v = Number(m[2]);
    if (Number.isFinite(v)) out.set(m[1]!, v);
  }
  return out;
}

/** threadCpuMarkdown renders the table (rows in the server's order, then the rest). */
export function threadCpuMarkdown(t: ThreadCpu): string {
  const us = (v: number) => v.toFixed(v < 10 ? 2 : 1);
  const withGc = t.rows.some((r) => r.gcUsPerOp !== undefined);
  const lines = withGc
    ? ['| thread | CPU µs/op | GC pauses (wall µs/op) | share |', '|---|---:|---:|---:|']
    : ['| thread | CPU µs/op | share |', '|---|---:|---:|'];
  const share = (v: number) => t.totalUsPerOp > 0
    ? `${(100 * v / t.totalUsPerOp).toFixed(0)} %` : '–';
  const gcCell = (v: number | undefined) => withGc ? ` ${v === undefined ? '–' : us(v)} |` : '';
  for (const r of t.rows) {
    const mark = r === t.busiest ? ' **(busiest)**' : '';
    lines.push(`| ${r.name}${mark} | ${us(r.usPerOp)} |${gcCell(r.gcUsPerOp)} ` +
      `${share(r.usPerOp)} |`);
  }
  lines.push(`| other threads (${t.othersCount} with CPU: V8, libuv) | ` +
    `${us(t.othersUsPerOp)} |${gcCell(undefined)} ${share(t.othersUsPerOp)} |`);
  lines.push(`| **total** | **${us(t.totalUsPerOp)}** |${gcCell(undefined)} 100 % |`);
  const ceiling = t.busiest === undefined ? 'no named thread'
    : `${Math.round(t.ceilingOpsPerSec).toLocaleString('en-US')} ops/s (1,000,000 ÷ ` +
      `${us(t.busiest.usPerOp)} µs/op of ${t.busiest.name})`;
  return lines.join('\n') + `\n\nProjected ceiling of one member with enough cores: ${ceiling}.` +
    splitMarkdown(t, us);
}

/** splitMarkdown says what the ceiling becomes once the gateway and the shards are split. */
function splitMarkdown(t: ThreadCpu, us: (v: number) => string): string {
  const f = t.fixedBusiest;
  if (f === undefined || t.families.length === 0) return '';
  const owner = (x: SplitFamily) => x.family === 'gateway' ? 'the gateway\'s' : 'the shards\'';
  const cores = t.families.map((x) => `${owner(x)} ${us(x.usPerOp)} µs/op over ` +
    `${x.threadsNeeded.toLocaleString('en-US')} thread${x.threadsNeeded === 1 ? '' : 's'} ` +
    `(${x.threadsNow} here)`);
  return `\n\nWith the gateway and the shards split across enough threads, the busiest thread ` +
    `that cannot be split sets it: ${Math.round(t.splitCeilingOpsPerSec).toLocaleString('en-US')}` +
    ` ops/s (1,000,000 ÷ ${us(f.usPerOp)} µs/op of ${f.name}), with ${cores.join(' and ')}.`;
}

/** sampleTasks reads utime + stime of every thread of a process (tid → ticks); threads that
 * end while it reads are skipped. */
export function sampleTasks(pid: number): Map<number, number> {
  const out = new Map<number, number>();
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const t of tids) {
    try {
      const s = parseTaskStat(readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8'));
      if (s !== undefined) out.set(s.tid, s.ticks);
    } catch {
      // the thread ended between readdir and read
    }
  }
  return out;
}
