/**
 * servers: starts MyEtcd or etcd on loopback with a fresh data folder, waits until it serves,
 * reads its resident memory and CPU time from /proc, and stops it by process id.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync }
  from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type { ThreadName } from './threads.js';
import { withMallocTunables } from '../src/server/huge-pages.js';

/** ServerKind names the two servers compared. */
export type ServerKind = 'ours' | 'etcd';

/** ServerOptions says how to start a server. */
export interface ServerOptions {
  kind: ServerKind;
  /** etcd's binary */
  etcdBin: string;
  /** extra flags for MyEtcd (e.g. --storage-shards 2) */
  oursArgs: string[];
  /** extra flags for etcd */
  etcdArgs: string[];
  /** oursNodeArgs: flags for node itself before MyEtcd's script (e.g. --cpu-prof) */
  oursNodeArgs?: string[];
  /** oursMain: the main.js to run as MyEtcd (another build's, to compare two commits);
   * this build's when undefined or '' */
  oursMain?: string;
  /** reuse a data folder (restart); fresh when undefined */
  dataDir?: string;
}

/** Server is one running server process. */
export interface Server {
  kind: ServerKind;
  pid: number;
  port: number;
  host: string;
  dataDir: string;
  /** baseDir is removed by cleanup() */
  baseDir: string;
  logPath: string;
  /** startedAt and servingAt are performance.now() values */
  startedAt: number;
  servingAt: number;
  child: ChildProcess;
  argv: string[];
}

/** liveServers are the servers started and not yet seen to exit, so a harness that is
 * interrupted can stop them by pid. */
export const liveServers = new Set<Server>();

/** killLiveServers sends SIGTERM to every server still running (on interrupt). */
export function killLiveServers(): void {
  for (const s of liveServers) {
    try {
      process.kill(s.pid, 'SIGTERM');
    } catch {
      // gone already
    }
  }
}

/** freePort asks the kernel for a free loopback port. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

const oursMain = fileURLToPath(new URL('../src/main.js', import.meta.url));

/** serverArgv is the command line that starts a server. */
export function serverArgv(o: ServerOptions, dataDir: string, port: number, peerPort: number):
  string[] {
  const client = `http://127.0.0.1:${port}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  if (o.kind === 'ours') {
    return [process.execPath, ...(o.oursNodeArgs ?? []), o.oursMain || oursMain, '--name', 'bench',
      '--data-dir', dataDir,
      '--listen-client-urls', client, '--advertise-client-urls', client,
      '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer,
      '--initial-cluster', `bench=${peer}`, '--log-level', 'warn', ...o.oursArgs];
  }
  return [o.etcdBin, '--name', 'bench', '--data-dir', dataDir,
    '--listen-client-urls', client, '--advertise-client-urls', client,
    '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer,
    '--initial-cluster', `bench=${peer}`, '--log-level', 'warn', '--logger', 'zap',
    ...o.etcdArgs];
}

/** startServer spawns a server and resolves once a linearizable range answers 200. */
export async function startServer(o: ServerOptions, timeoutMs = 600_000): Promise<Server> {
  const baseDir = o.dataDir === undefined ? mkdtempSync(join(tmpdir(), `bench-${o.kind}-`))
    : join(o.dataDir, '..');
  const dataDir = o.dataDir ?? join(baseDir, 'data');
  const port = await freePort();
  const peerPort = await freePort();
  const argv = serverArgv(o, dataDir, port, peerPort);
  const logPath = join(baseDir, `server-${Date.now()}.log`);
  const logFd = openSync(logPath, 'a');
  const { performance } = await import('node:perf_hooks');
  const startedAt = performance.now();
  // Ours starts with the environment `npm start` gives it (src/server/huge-pages.ts).
  const env = o.kind === 'ours' ? withMallocTunables(process.env) : process.env;
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', logFd, logFd], env });
  closeSync(logFd);
  const server: Server = {
    kind: o.kind, pid: child.pid!, port, host: '127.0.0.1', dataDir, baseDir, logPath,
    startedAt, servingAt: NaN, child, argv,
  };
  liveServers.add(server);
  let exited: string | undefined;
  child.once('exit', (code, signal) => {
    exited = `exited with ${code ?? signal}`;
    liveServers.delete(server);
  });
  const deadline = startedAt + timeoutMs;
  for (;;) {
    if (exited !== undefined) {
      throw new Error(`${o.kind} ${exited} before serving; see ${logPath}:\n` +
        tail(logPath));
    }
    if (await servesRange(port)) break;
    if (performance.now() > deadline) {
      await stopServer(server);
      throw new Error(`${o.kind} did not serve within ${timeoutMs} ms; see ${logPath}`);
    }
    await sleep(10);
  }
  server.servingAt = performance.now();
  return server;
}

function tail(path: string): string {
  try {
    return readFileSync(path, 'utf8').split('\n').slice(-15).join('\n');
  } catch {
    return '';
  }
}

/** servesRange is true when a linearizable range of one key answers 200. */
async function servesRange(port: number): Promise<boolean> {
  try {
    const r = await fetch(`http://127.0.0.1:${port}/v3/kv/range`, {
      method: 'POST', body: JSON.stringify({ key: Buffer.from('bench/probe').toString('base64') }),
      signal: AbortSignal.timeout(1_000),
    });
    await r.arrayBuffer();
    return r.status === 200;
  } catch {
    return false;
  }
}

/** stopServer sends SIGTERM to the server's pid, waits for it to exit (SIGKILL after
 * graceMs), and resolves with how it stopped. */
export async function stopServer(s: Server, graceMs = 20_000): Promise<string> {
  if (s.child.exitCode !== null || s.child.signalCode !== null) return 'already exited';
  const exited = new Promise<string>((resolve) => {
    s.child.once('exit', (code, signal) => resolve(`exit ${code ?? signal}`));
  });
  process.kill(s.pid, 'SIGTERM');
  const timer = setTimeout(() => {
    try {
      process.kill(s.pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }, graceMs);
  const how = await exited;
  clearTimeout(timer);
  return how;
}

/** cleanup removes a server's temporary folder. */
export function cleanup(s: Server): void {
  rmSync(s.baseDir, { recursive: true, force: true });
}

/** rssBytes is VmRSS from /proc/<pid>/status: the resident memory of the whole process,
 * every thread included (threads share one address space). */
export function rssBytes(pid: number): number {
  return statusBytes(pid, 'VmRSS');
}

/** peakRssBytes is VmHWM from /proc/<pid>/status: the largest RSS the process has had. */
export function peakRssBytes(pid: number): number {
  return statusBytes(pid, 'VmHWM');
}

/** statusBytes reads one `kB` field of /proc/<pid>/status, in bytes. */
function statusBytes(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(status);
  return m === null ? NaN : Number(m[1]) * 1024;
}

/** cpuSeconds is user + system CPU time of a process (all its threads) from /proc/<pid>/stat. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state); utime and stime are fields 14 and 15
    return (Number(fields[11]) + Number(fields[12])) / clockTicksPerSec;
  } catch {
    return NaN;
  }
}

/** clockTicksPerSec is CLK_TCK, the unit of utime and stime in /proc/…/stat. */
export const clockTicksPerSec = (() => {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const n = Number(r.stdout?.trim());
  return Number.isFinite(n) && n > 0 ? n : 100;
})();

/** dirBytes is the disk space the files under a folder take (du's measure: allocated blocks;
 * a preallocated file counts what is allocated, not its length). */
export function dirBytes(dir: string): number {
  let total = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) total += dirBytes(p);
    else if (e.isFile()) total += statSync(p).blocks * 512;
  }
  return total;
}

/** threadNames asks MyEtcd which thread is which (GET /debug/threads); etcd has no such
 * route, and its threads are Go's, so it gets only the process total. */
export async function threadNames(s: Server): Promise<ThreadName[]> {
  if (s.kind !== 'ours') return [];
  try {
    const r = await fetch(`http://${s.host}:${s.port}/debug/threads`,
      { signal: AbortSignal.timeout(10_000) });
    const j = await r.json() as { threads?: ThreadName[] };
    return r.ok && Array.isArray(j.threads) ? j.threads : [];
  } catch {
    return [];
  }
}
