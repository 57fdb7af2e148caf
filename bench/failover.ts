import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './servers.js';

/**
 * failover: leader failover time of a 3-member cluster on loopback. Each round kills the
 * leader with SIGKILL and measures, from the kill, the time until a write is acknowledged
 * by a surviving member (a new leader elected and committing), then restarts the killed
 * member and waits until all three agree on a leader again.
 *
 *   node dist/bench/failover.js [--rounds 20] [--etcd /usr/bin/etcd]
 *
 * Timings are etcd's defaults (heartbeat 100 ms, election timeout 1000 ms) for both servers.
 * Printed: every round, then the median and the worst. Not a test: nothing is asserted.
 */

const oursMain = fileURLToPath(new URL('../src/main.js', import.meta.url));

interface Member {
  name: string;
  peer: string;
  client: string;
  dir: string;
  child?: ChildProcess;
}

function argvOf(m: Member, initialCluster: string, etcd: string | undefined): string[] {
  const common = ['--name', m.name, '--data-dir', m.dir,
    '--listen-client-urls', m.client, '--advertise-client-urls', m.client,
    '--listen-peer-urls', m.peer, '--initial-advertise-peer-urls', m.peer,
    '--initial-cluster', initialCluster, '--initial-cluster-token', 'failover',
    '--initial-cluster-state', 'new', '--log-level', 'error'];
  return etcd === undefined ? [process.execPath, oursMain, ...common] : [etcd, ...common];
}

async function post(url: string, body: unknown, timeoutMs: number):
  Promise<{ status: number; json: any } | undefined> {
  try {
    const r = await fetch(url, {
      method: 'POST', body: JSON.stringify(body), signal: AbortSignal.timeout(timeoutMs),
    });
    return { status: r.status, json: await r.json() };
  } catch {
    return undefined;
  }
}

async function leaderOf(members: Member[]): Promise<number | undefined> {
  const live = members.filter((m) => m.child !== undefined);
  const sts = await Promise.all(live.map((m) =>
    post(`${m.client}/v3/maintenance/status`, {}, 1_000)));
  if (sts.some((s) => s?.status !== 200 || s.json.leader === undefined)) return undefined;
  const leader = sts[0]!.json.leader as string;
  if (!sts.every((s) => s!.json.leader === leader)) return undefined;
  const i = sts.findIndex((s) => s!.json.header.member_id === leader);
  return i < 0 ? undefined : members.indexOf(live[i]!);
}

async function until<T>(what: string, f: () => Promise<T | undefined>, ms = 60_000): Promise<T> {
  const deadline = performance.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (performance.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const rounds = Number(args[args.indexOf('--rounds') + 1] ?? 20) || 20;
  const etcd = args.includes('--etcd') ? args[args.indexOf('--etcd') + 1] : undefined;
  const base = mkdtempSync(join(tmpdir(), 'failover-'));
  const members: Member[] = [];
  for (let i = 1; i <= 3; i++) {
    members.push({
      name: `f${i}`, peer: `http://127.0.0.1:${await freePort()}`,
      client: `http://127.0.0.1:${await freePort()}`, dir: join(base, `f${i}`),
    });
  }
  const initialCluster = members.map((m) => `${m.name}=${m.peer}`).join(',');
  const start = (m: Member) => {
    const argv = argvOf(m, initialCluster, etcd);
    m.child = spawn(argv[0]!, argv.slice(1), { stdio: 'ignore' });
  };
  const stopAll = () => {
    for (const m of members) m.child?.kill('SIGKILL');
  };
  process.on('exit', stopAll);
  try {
    members.forEach(start);
    const results: number[] = [];
    for (let r = 1; r <= rounds; r++) {
      const leader = await until('a leader', () => leaderOf(members));
      // A write first, so that the round starts from a cluster that commits.
      await until('a write', async () => {
        const w = await post(`${members[leader]!.client}/v3/kv/put`,
          { key: 'Zm8=', value: 'YmFy' }, 2_000);
        return w?.status === 200 ? true : undefined;
      });
      const victim = members[leader]!;
      const survivors = members.filter((m) => m !== victim);
      const t0 = performance.now();
      victim.child!.kill('SIGKILL');
      await new Promise((resolve) => victim.child!.once('exit', resolve));
      victim.child = undefined;
      // Writes are tried on both survivors every 10 ms until one is acknowledged.
      let done = false;
      let ms = 0;
      await new Promise<void>((resolve) => {
        const tryWrite = (m: Member) => {
          if (done) return;
          void post(`${m.client}/v3/kv/put`, { key: 'Zm8=', value: 'YmFy' }, 10_000).then((w) => {
            if (done || w?.status !== 200) return;
            done = true;
            ms = performance.now() - t0;
            resolve();
          });
        };
        const timer = setInterval(() => {
          if (done) clearInterval(timer);
          else survivors.forEach(tryWrite);
        }, 10);
      });
      results.push(ms);
      process.stdout.write(`round ${r}: killed ${victim.name}, a write was acknowledged after ` +
        `${ms.toFixed(0)} ms\n`);
      start(victim);
      await until('all three agree on a leader', () => leaderOf(members));
    }
    const sorted = [...results].sort((a, b) => a - b);
    const median = sorted[Math.floor((sorted.length - 1) / 2)]!;
    process.stdout.write(`${etcd === undefined ? 'myetcd' : 'etcd'}: ${rounds} kills of the ` +
      `leader; failover (kill → first acknowledged write) median ${median.toFixed(0)} ms, ` +
      `worst ${sorted[sorted.length - 1]!.toFixed(0)} ms\n`);
  } finally {
    stopAll();
    rmSync(base, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`failover: ${String(e)}\n`);
  process.exit(1);
});
