import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePorts } from './cluster.js';

/**
 * etcd-ref: a real etcd 3.4 (Debian's /usr/bin/etcd) as the reference that compatibility
 * tests compare against: one member or a cluster, on free loopback ports, in a temporary
 * data folder, stopped and removed by `stop()`. Ready means every member logged that it
 * serves client traffic (it has joined the cluster and a leader exists).
 */

/** etcdBin and etcdctlBin are where Debian's etcd-server and etcd-client install them. */
export const etcdBin = '/usr/bin/etcd';
export const etcdctlBin = '/usr/bin/etcdctl';

/** haveEtcd tells whether the reference etcd and etcdctl are installed. */
export const haveEtcd = existsSync(etcdBin) && existsSync(etcdctlBin);
/** needsEtcd is the reason a test that compares with etcd is skipped without it. */
export const needsEtcd = 'needs /usr/bin/etcd and /usr/bin/etcdctl (apt: etcd-server etcd-client)';
/** myetcdctlBin is our etcdctl, run as a process (`node myetcdctlBin ...`). */
export const myetcdctlBin = new URL('../../../bin/myetcdctl.js', import.meta.url).pathname;

/** EtcdMember is one running etcd member. */
export interface EtcdMember {
  name: string;
  clientUrl: string;
  peerUrl: string;
  proc: ChildProcess;
  logs: string[];
  /** exited resolves when the process has exited. */
  exited: Promise<number | null>;
}

/** EtcdCluster is a running reference cluster. */
export interface EtcdCluster {
  members: EtcdMember[];
  /** endpoints are the members' client URLs. */
  endpoints: string[];
  /** kill sends SIGKILL to one member and waits for it to exit. */
  kill(member: EtcdMember): Promise<void>;
  /** stop stops every member still running and removes the data folders. */
  stop(): Promise<void>;
}

/** running are the etcd processes this worker started and has not seen exit: killed when the
 * worker exits, even through an uncaught exception that skips the tests' after hooks. */
const running = new Set<ChildProcess>();
const dirs = new Set<string>();
process.once('exit', () => {
  for (const p of running) p.kill('SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

// zap's line once the member has joined (a leader exists) and its client listener serves.
const readyMsg = 'serving client traffic';

/** startEtcd starts `size` members of a new cluster and waits until each is ready. */
export async function startEtcd(size = 1, timeoutMs = 60_000): Promise<EtcdCluster> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await tryStart(size, timeoutMs);
    } catch (e) {
      if (attempt >= 3) throw e;
    }
  }
}

async function tryStart(size: number, timeoutMs: number): Promise<EtcdCluster> {
  const dir = await mkdtemp(join(tmpdir(), 'myetcd-ref-etcd-'));
  dirs.add(dir);
  // Ports are free only until etcd binds them (another process may take one first, and
  // etcd cannot listen on port 0 and say which port it got): startEtcd retries.
  const ports = await freePorts(2 * size);
  const specs = Array.from({ length: size }, (_, i) => ({
    name: `ref${i}`,
    clientUrl: `http://127.0.0.1:${ports[2 * i]!}`,
    peerUrl: `http://127.0.0.1:${ports[2 * i + 1]!}`,
  }));
  const initialCluster = specs.map((s) => `${s.name}=${s.peerUrl}`).join(',');
  const members: EtcdMember[] = specs.map((s) => {
    const proc = spawn(
      etcdBin,
      [
        '--name',
        s.name,
        '--data-dir',
        join(dir, s.name),
        '--listen-client-urls',
        s.clientUrl,
        '--advertise-client-urls',
        s.clientUrl,
        '--listen-peer-urls',
        s.peerUrl,
        '--initial-advertise-peer-urls',
        s.peerUrl,
        '--initial-cluster',
        initialCluster,
        '--initial-cluster-token',
        `ref-${process.pid}`,
        '--logger',
        'zap',
        '--log-outputs',
        'stderr',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    running.add(proc);
    const exited = new Promise<number | null>((resolve) =>
      proc.once('exit', (c) => {
        running.delete(proc);
        resolve(c);
      }),
    );
    return { ...s, proc, logs: [], exited };
  });
  const cluster: EtcdCluster = {
    members,
    endpoints: members.map((m) => m.clientUrl),
    async kill(m) {
      m.proc.kill('SIGKILL');
      await m.exited;
    },
    async stop() {
      await Promise.all(
        members.map(async (m) => {
          if (m.proc.exitCode === null && m.proc.signalCode === null) m.proc.kill('SIGTERM');
          await m.exited;
        }),
      );
      await rm(dir, { recursive: true, force: true });
      dirs.delete(dir);
    },
  };
  try {
    await Promise.all(members.map((m) => waitReady(m, timeoutMs)));
  } catch (e) {
    await cluster.stop();
    throw e;
  }
  return cluster;
}

function waitReady(m: EtcdMember, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`etcd ${m.name} not ready:\n${m.logs.slice(-20).join('\n')}`)),
      timeoutMs,
    );
    let buf = '';
    m.proc.stderr!.on('data', (d: Buffer) => {
      buf += d.toString('utf8');
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (m.logs.length < 2000) m.logs.push(line);
        if (line.includes(readyMsg)) {
          clearTimeout(timer);
          resolve();
        }
      }
    });
    void m.exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`etcd ${m.name} exited with ${code}:\n${m.logs.slice(-20).join('\n')}`));
    });
  });
}

/** CtlResult is what a command-line client printed and returned. */
export interface CtlResult {
  code: number;
  out: Buffer;
  err: string;
}

/** runCtl runs a client program (etcdctl or node bin/myetcdctl.js) to completion. */
export function runCtl(
  file: string,
  args: string[],
  opts: { stdin?: string; env?: Record<string, string> } = {},
): Promise<CtlResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      args,
      {
        encoding: 'buffer',
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ETCDCTL_API: '3', ...(opts.env ?? {}) },
        timeout: 60_000,
        maxBuffer: 16 * 1024 * 1024,
      },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : (error as { code?: unknown }).code;
        if (typeof code !== 'number') {
          reject(error ?? new Error('no exit code'));
          return;
        }
        resolve({ code, out: stdout, err: stderr.toString('utf8') });
      },
    );
    // A program that exits without reading its input (a bad command line) closes the pipe.
    child.stdin!.on('error', () => undefined);
    child.stdin!.end(opts.stdin ?? '');
  });
}

/** normIds replaces, in etcdctl's output, each value of `tokens` (an id that must differ
 * between two stores) by its placeholder, and raft terms by <term>. */
export function normIds(text: string, tokens: Array<[string, string]>): string {
  let out = text;
  for (const [v, token] of tokens) out = out.split(v).join(token);
  return out
    .replace(/"raft_term":\d+/g, '"raft_term":<term>')
    .replace(/"RaftTerm" : \d+/g, '"RaftTerm" : <term>');
}

/** ctlStderr drops the JSON lines etcdctl's client logs on stderr (its retries, with
 * timestamps) and keeps the rest. */
export function ctlStderr(err: string): string {
  return err.split('\n').filter((l) => !l.startsWith('{"level"')).join('\n');
}
