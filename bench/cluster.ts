import { type ChildProcess, fork, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './servers.js';
import type { ClosedSpec, GenMsg, GenResult, LoadMsg } from './loadgen.js';
import { Histogram } from './stats.js';

/**
 * cluster: a 3-member cluster on loopback under load, beside a 3-member etcd 3.4 with the
 * same flags: PUT with 50 connections through the leader, and linearizable GET with 50
 * connections on the leader and on a follower (a follower's read goes through the leader's
 * read index). The load comes from the same generator processes as `npm run bench`.
 *
 *   node dist/bench/cluster.js [--seconds 10] [--etcd /usr/bin/etcd] [--only ours|etcd]
 *
 * Both clusters: heartbeat 100 ms, election timeout 1 s, fsync on, one data dir per member
 * under the system's temporary directory. Not a test: nothing is asserted.
 */

const oursMain = fileURLToPath(new URL('../src/main.js', import.meta.url));
const loadgenPath = fileURLToPath(new URL('./loadgen.js', import.meta.url));

interface Member {
  name: string;
  peer: number;
  client: number;
  child?: ChildProcess;
}

async function post(port: number, path: string, body: unknown): Promise<any> {
  try {
    const r = await fetch(`http://127.0.0.1:${port}${path}`, {
      method: 'POST', body: JSON.stringify(body), signal: AbortSignal.timeout(2_000),
    });
    return r.status === 200 ? await r.json() : undefined;
  } catch {
    return undefined;
  }
}

async function startCluster(kind: 'ours' | 'etcd', etcdBin: string, base: string):
  Promise<Member[]> {
  const members: Member[] = [];
  for (let i = 1; i <= 3; i++) {
    members.push({ name: `${kind}${i}`, peer: await freePort(), client: await freePort() });
  }
  const ic = members.map((m) => `${m.name}=http://127.0.0.1:${m.peer}`).join(',');
  for (const m of members) {
    const c = `http://127.0.0.1:${m.client}`;
    const p = `http://127.0.0.1:${m.peer}`;
    const args = ['--name', m.name, '--data-dir', join(base, m.name),
      '--listen-client-urls', c, '--advertise-client-urls', c, '--listen-peer-urls', p,
      '--initial-advertise-peer-urls', p, '--initial-cluster', ic,
      '--initial-cluster-state', 'new', '--initial-cluster-token', `bench-${kind}`,
      '--log-level', 'error'];
    m.child = kind === 'ours' ? spawn(process.execPath, [oursMain, ...args], { stdio: 'ignore' })
      : spawn(etcdBin, args, { stdio: 'ignore' });
  }
  return members;
}

/** leaderIndex waits until all three agree on a leader. */
async function leaderIndex(members: Member[]): Promise<number> {
  for (let k = 0; k < 600; k++) {
    const sts = await Promise.all(members.map((m) => post(m.client, '/v3/maintenance/status', {})));
    const l = sts[0]?.leader;
    if (l !== undefined && sts.every((s) => s?.leader === l)) {
      return sts.findIndex((s) => s.header.member_id === l);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('no leader within 60 s');
}

async function closed(spec: Omit<ClosedSpec, 'procIndex' | 'procs'>): Promise<GenResult> {
  const child = fork(loadgenPath, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  try {
    return await new Promise<GenResult>((resolve, reject) => {
      child.on('message', (raw) => {
        const m = raw as GenMsg;
        if (m.type === 'Result') resolve(m.result);
        else if (m.type === 'Failed') reject(new Error(m.error));
      });
      child.once('exit', (code) => reject(new Error(`load generator exited with ${code}`)));
      child.send({ type: 'Run', spec: { ...spec, procIndex: 0, procs: 1 } } satisfies LoadMsg);
    });
  } finally {
    child.kill('SIGTERM');
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const opt = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
  const seconds = Number(opt('--seconds') ?? 10);
  const etcdBin = opt('--etcd') ?? '/usr/bin/etcd';
  const only = opt('--only');
  const space = { kind: 'flat' as const, prefix: 'bench/c/' };
  const rows: string[] = [];
  for (const kind of ['ours', 'etcd'] as const) {
    if (only !== undefined && only !== kind) continue;
    const base = mkdtempSync(join(tmpdir(), `bench-cluster-${kind}-`));
    const members = await startCluster(kind, etcdBin, base);
    try {
      const leader = await leaderIndex(members);
      const follower = (leader + 1) % 3;
      const runs: [string, number, ClosedSpec['source']][] = [
        ['PUT, 50 connections, leader', leader,
          { kind: 'put', space, keys: 10_000, valueSize: 256 }],
        ['linearizable GET, 50 connections, leader', leader,
          { kind: 'get', space, keys: 10_000, serializable: false }],
        ['linearizable GET, 50 connections, follower', follower,
          { kind: 'get', space, keys: 10_000, serializable: false }],
      ];
      for (const [what, i, source] of runs) {
        const r = await closed({
          mode: 'closed', host: '127.0.0.1', port: members[i]!.client, connections: 50,
          warmupMs: 2_000, durationMs: seconds * 1_000, source, ratePerSec: 0,
        });
        const h = new Histogram();
        h.merge(r.hist);
        const row = `| ${kind === 'ours' ? 'myetcd' : 'etcd 3.4'} | ${what} | ` +
          `${Math.round(r.ops / r.seconds)} | ${(h.percentileUs(0.5) / 1000).toFixed(2)} | ` +
          `${(h.percentileUs(0.99) / 1000).toFixed(2)} | ${r.errors} |`;
        rows.push(row);
        process.stdout.write(row + '\n');
      }
    } finally {
      for (const m of members) m.child?.kill('SIGKILL');
      rmSync(base, { recursive: true, force: true });
    }
  }
  process.stdout.write('\n| server | workload | ops/s | p50 ms | p99 ms | errors |\n' +
    '|---|---|---|---|---|---|\n' + rows.join('\n') + '\n');
}

main().catch((e: unknown) => {
  process.stderr.write(`bench cluster: ${String(e)}\n`);
  process.exit(1);
});
