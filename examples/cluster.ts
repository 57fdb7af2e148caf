/**
 * cluster.ts — a 3-member cluster: write on one member, read on another, kill the leader,
 * keep going (docs/cluster.md).
 *
 * The example starts its own three members (node dist/src/main.js, data in a temporary
 * directory, ports chosen by the OS) and stops them at the end.
 *
 *   npm run build && node dist/examples/cluster.js
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '../src/client/index.js';

const mainJs = fileURLToPath(new URL('../src/main.js', import.meta.url));
const base = mkdtempSync(join(tmpdir(), 'myetcd-example-cluster-'));
const procs: ChildProcess[] = [];
/** patienceMs bounds each wait below: a cluster that never gets there ends in `finally`. */
const patienceMs = 30_000;

/** stopAll kills the members and removes their data dirs. */
function stopAll(): void {
  for (const p of procs) p.kill('SIGKILL');
  rmSync(base, { recursive: true, force: true });
}
// A caller that gives up on us (a test's timeout) sends SIGTERM: the members go with us.
process.once('SIGTERM', () => {
  stopAll();
  process.exit(143);
});

/** freePort asks the OS for a port (released at once; the member binds it next). */
function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** start runs one member and resolves with its client URL once it serves. */
function start(name: string, peer: string, client: string, initialCluster: string):
  Promise<ChildProcess> {
  const p = spawn(process.execPath, [mainJs, '--name', name, '--data-dir', join(base, name),
    '--listen-client-urls', client, '--advertise-client-urls', client,
    '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer,
    '--initial-cluster', initialCluster, '--heartbeat-interval', '50',
    '--election-timeout', '500', '--storage-shards', '1'], { stdio: ['ignore', 'ignore', 'pipe'] });
  procs.push(p);
  return new Promise((resolve, reject) => {
    let log = '';
    p.stderr!.on('data', (d: Buffer) => {
      log += d.toString();
      if (log.includes('ready to serve client requests')) resolve(p);
    });
    p.once('exit', (code) => reject(new Error(`${name} exited with ${code}:\n${log}`)));
  });
}

try {
  const names = ['ex1', 'ex2', 'ex3'];
  const peers = await Promise.all(names.map(async () => `http://127.0.0.1:${await freePort()}`));
  const clients = await Promise.all(names.map(async () => `http://127.0.0.1:${await freePort()}`));
  const initialCluster = names.map((n, i) => `${n}=${peers[i]}`).join(',');
  const members = await Promise.all(names.map((n, i) =>
    start(n, peers[i]!, clients[i]!, initialCluster)));
  console.log(`started ${names.join(', ')} on ${clients.join(', ')}`);

  // Wait until every member names the same leader.
  let leader = -1;
  const electing = Date.now();
  while (leader < 0) {
    if (Date.now() - electing > patienceMs) throw new Error('no leader elected');
    const sts = await Promise.all(clients.map((c) =>
      new Client({ endpoints: [c] }).status().catch(() => undefined)));
    const ids = sts.map((s) => s?.leader);
    if (ids.every((id) => id !== undefined && id !== '0' && id === ids[0])) {
      leader = sts.findIndex((s) => s!.header.memberId === ids[0]);
    } else {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  console.log(`leader: ${names[leader]}`);

  // A write through one member is read, linearizably, through another.
  const first = new Client({ endpoints: [clients[0]!] });
  const third = new Client({ endpoints: [clients[2]!] });
  const put = await first.put('examples/cluster/greeting', 'hello');
  console.log(`put through ${names[0]} at revision ${put.header.revision}`);
  console.log(`get through ${names[2]}: ${await third.getString('examples/cluster/greeting')}`);

  // Kill the leader. A client that knows every member fails over; writes fail until the
  // others have elected a new leader (etcd's "no leader"), so the program retries them.
  members[leader]!.kill('SIGKILL');
  console.log(`killed the leader ${names[leader]} (SIGKILL)`);
  const all = new Client({ endpoints: clients.filter((_, i) => i !== leader) });
  const t0 = Date.now();
  for (;;) {
    try {
      const r = await all.put('examples/cluster/greeting', 'hello again');
      console.log(`a write succeeded again after ${Date.now() - t0} ms, at revision ` +
        `${r.header.revision}`);
      break;
    } catch (e) {
      if (Date.now() - t0 > patienceMs) throw e;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  const survivors = clients.filter((_, i) => i !== leader);
  for (const [i, c] of survivors.entries()) {
    const v = await new Client({ endpoints: [c] }).getString('examples/cluster/greeting');
    console.log(`get through survivor ${i + 1}: ${v}`);
  }
} finally {
  stopAll();
}
