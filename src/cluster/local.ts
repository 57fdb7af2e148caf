import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';

/**
 * local: `npm run cluster` — a local cluster of real member processes on one machine, with
 * each member's log lines prefixed by its name (etcd ships a Procfile for goreman to the same
 * end). Members use etcd's Procfile layout: infra1 on client 2379 / peer 12380, infra2 on
 * 22379 / 22380, infra3 on 32379 / 32380, and so on.
 *
 *   npm run cluster                      3 members, data in ./local-cluster
 *   npm run cluster -- --size 5 --clean  5 members, starting from empty data dirs
 *   npm run cluster -- --restart         restart a member that dies (try kill -9 on one)
 *   npm run cluster -- -- --snapshot-count 1000   flags after `--` go to every member
 *
 * Ctrl-C stops every member gracefully (SIGTERM) and waits for them.
 */

/** Options are the launcher's flags. */
export interface LocalOptions {
  size: number;
  baseDir: string;
  clean: boolean;
  restart: boolean;
  memberArgs: string[];
}

/** parseLocalArgs reads the launcher's flags; throws on anything else. */
export function parseLocalArgs(argv: string[]): LocalOptions {
  const o: LocalOptions = {
    size: 3, baseDir: 'local-cluster', clean: false, restart: false, memberArgs: [],
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      o.memberArgs = argv.slice(i + 1);
      break;
    }
    if (a === '--size') o.size = Number(argv[++i]);
    else if (a === '--base-dir') o.baseDir = argv[++i] ?? '';
    else if (a === '--clean') o.clean = true;
    else if (a === '--restart') o.restart = true;
    else throw new Error(`unknown flag ${a} (flags: --size n, --base-dir dir, --clean, ` +
      '--restart, then -- and flags for every member)');
  }
  if (!Number.isInteger(o.size) || o.size < 1 || o.size > 9) {
    throw new Error('--size must be 1..9');
  }
  if (o.baseDir === '') throw new Error('--base-dir needs a directory');
  return o;
}

/** MemberPlan is one member's name, ports and flags. */
export interface MemberPlan {
  name: string;
  clientUrl: string;
  peerUrl: string;
  args: string[];
}

/** planLocal lays out the members (etcd's Procfile ports: infraN on N2379 and N2380, infra1
 * on 2379 and 12380). */
export function planLocal(o: LocalOptions): MemberPlan[] {
  const members = Array.from({ length: o.size }, (_, k) => {
    const n = k + 1;
    return {
      name: `infra${n}`,
      clientUrl: `http://127.0.0.1:${n === 1 ? 2379 : n * 10_000 + 2379}`,
      peerUrl: `http://127.0.0.1:${n * 10_000 + 2380}`,
    };
  });
  const initialCluster = members.map((m) => `${m.name}=${m.peerUrl}`).join(',');
  const base = resolve(o.baseDir);
  return members.map((m) => ({
    ...m,
    args: ['--name', m.name, '--data-dir', join(base, `${m.name}.etcd`),
      '--listen-client-urls', m.clientUrl, '--advertise-client-urls', m.clientUrl,
      '--listen-peer-urls', m.peerUrl, '--initial-advertise-peer-urls', m.peerUrl,
      '--initial-cluster-token', 'etcd-cluster-1', '--initial-cluster', initialCluster,
      '--initial-cluster-state', 'new', ...o.memberArgs],
  }));
}

const colors = [36, 33, 35, 32, 34, 31, 96, 93, 95];
const levels: Record<string, string> = {
  '10': 'TRACE', '20': 'DEBUG', '30': 'INFO', '40': 'WARN', '50': 'ERROR', '60': 'FATAL',
};

/** formatLine turns one JSON log line into `name | time LEVEL component message {rest}`. */
export function formatLine(prefix: string, line: string): string {
  let text = line;
  try {
    const j = JSON.parse(line) as Record<string, unknown>;
    const { level, time, msg, component, pid, member, hostname, ...rest } = j;
    void pid;
    void member;
    void hostname;
    const t = typeof time === 'string' ? time.slice(11, 23)
      : typeof time === 'number' ? new Date(time).toISOString().slice(11, 23) : '';
    const lv = typeof level === 'string' ? level.toUpperCase() : levels[String(level)] ?? '';
    const extra = Object.keys(rest).length > 0 ? ` ${JSON.stringify(rest)}` : '';
    text = `${t} ${lv.padEnd(5)} ${String(component ?? '')}: ${String(msg ?? '')}${extra}`;
  } catch {
    // not JSON: shown as it is
  }
  return `${prefix} | ${text}`;
}

function run(o: LocalOptions): void {
  if (o.clean) rmSync(o.baseDir, { recursive: true, force: true });
  mkdirSync(o.baseDir, { recursive: true });
  const mainJs = new URL('../main.js', import.meta.url).pathname;
  const plans = planLocal(o);
  const width = Math.max(...plans.map((p) => p.name.length));
  const procs = new Map<string, ChildProcess>();
  let stopping = false;
  const start = (p: MemberPlan, k: number) => {
    const prefix = `\x1b[${colors[k % colors.length]}m${p.name.padEnd(width)}\x1b[0m`;
    const child = spawn(process.execPath, [mainJs, ...p.args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    procs.set(p.name, child);
    for (const s of [child.stdout!, child.stderr!]) {
      let buf = '';
      s.setEncoding('utf8');
      s.on('data', (d: string) => {
        buf += d;
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
          process.stdout.write(formatLine(prefix, buf.slice(0, i)) + '\n');
          buf = buf.slice(i + 1);
        }
      });
    }
    child.on('exit', (code, signal) => {
      procs.delete(p.name);
      process.stdout.write(`${prefix} | exited (${signal ?? `code ${code}`})\n`);
      if (stopping) {
        if (procs.size === 0) process.exit(0);
        return;
      }
      if (o.restart) {
        process.stdout.write(`${prefix} | restarting in 1 s\n`);
        setTimeout(() => {
          if (!stopping) start(p, k);
        }, 1_000);
      }
    });
  };
  plans.forEach(start);
  process.stdout.write(`local cluster: ${plans.map((p) => `${p.name} ${p.clientUrl}`)
    .join(', ')}; Ctrl-C stops it\n`);
  const stop = () => {
    if (stopping) return;
    stopping = true;
    if (procs.size === 0) process.exit(0);
    for (const c of procs.values()) c.kill('SIGTERM');
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

/** runLocal is the launcher's entry (bin/myetcd-cluster.js). */
export function runLocal(argv: string[]): void {
  try {
    run(parseLocalArgs(argv));
  } catch (e) {
    process.stderr.write(`cluster: ${(e as Error).message}\n`);
    process.exit(2);
  }
}
