import { randomInt } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { b64, post, startServer, type TestServer } from './server.js';
import { until, waitTimeoutMs } from './wait.js';

/**
 * cluster helpers: several real server processes (dist/src/main.js) forming one cluster on
 * loopback, each with its own temporary data dir, peer port from the OS and client port 0.
 * Every process a test starts is killed by stopAll(), which tests call on every path.
 */

/**
 * freePorts finds n TCP ports on 127.0.0.1 that a member can bind a moment later.
 *
 * A port the OS hands out for port 0 comes from the ephemeral range (32768–60999 here), the
 * same range every outgoing connection's local port is drawn from: between our release and
 * the member's bind, any client socket on the machine could take it (it happened: a member's
 * peer port went to a connection in a parallel test, EADDRINUSE). So ports are drawn below
 * that range, from [portFloor, portCeiling), where only listeners that ask for a number live,
 * and each is reserved across processes by a file `<reserveDir>/<port>` holding the owner's
 * pid (created exclusively; a file whose owner has exited is reclaimed). A port is taken only
 * if it can also be bound right now.
 */
export async function freePorts(n: number): Promise<number[]> {
  await mkdir(reserveDir, { recursive: true });
  const ports: number[] = [];
  for (let attempt = 0; ports.length < n; attempt++) {
    if (attempt >= portAttemptsMax) throw new Error(`freePorts: none free in ${attempt} tries`);
    const port = portFloor + randomInt(portCeiling - portFloor);
    if (ports.includes(port) || !(await reserve(port)) || !(await bindable(port))) continue;
    ports.push(port);
  }
  return ports;
}

const portFloor = 20000;
const portCeiling = 32000;
const portAttemptsMax = 1000;
const reserveDir = join(tmpdir(), 'myetcd-test-ports');

/** reserve claims `port` for this process unless a live process holds it. */
async function reserve(port: number): Promise<boolean> {
  const file = join(reserveDir, String(port));
  try {
    await writeFile(file, String(process.pid), { flag: 'wx' });
    return true;
  } catch {
    const owner = Number(await readFile(file, 'utf8').catch(() => ''));
    if (owner === process.pid) return false; // ours already, handed out before
    if (Number.isInteger(owner) && owner > 0 && alive(owner)) return false;
    await rm(file, { force: true });
    return false; // reclaimed; a later attempt may take it
  }
}

/** alive tells whether a process with this pid exists. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** bindable tells whether 127.0.0.1:port can be listened on exclusively now. */
function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen({ host: '127.0.0.1', port, exclusive: true }, () => s.close(() => resolve(true)));
  });
}

/** Node is one member process of a test cluster. */
export interface Node {
  name: string;
  peerUrl: string;
  dataDir: string;
  server: TestServer | undefined;
}

/** TestCluster is a running cluster. */
export interface TestCluster {
  nodes: Node[];
  initialCluster: string;
  /** start (re)starts a member with its data dir and peer URL; `env` joins the cluster's
   * environment for this start only (a failpoint for one member; exitExpected: it is to
   * kill the member). */
  start(i: number, extra?: string[], env?: Record<string, string>, exitExpected?: boolean):
    Promise<TestServer>;
  /** kill sends SIGKILL to a member and waits for it to exit. */
  kill(i: number): Promise<void>;
  /** live lists the members running now. */
  live(): Node[];
  /** stopAll kills every member and removes the data dirs. */
  stopAll(): Promise<void>;
}

/** ClusterOptions: size, extra flags for every member, environment. */
export interface ClusterOptions {
  size: number;
  args?: string[];
  env?: Record<string, string>;
  /** scheme of the peer URLs (https: the members' TLS flags come in args). */
  scheme?: 'http' | 'https';
  /** memberArgs: extra flags for member i only, at every start. */
  memberArgs?: (i: number) => string[];
}

/** fastRaft: a short tick so that elections take a fraction of a second. */
export const fastRaft = ['--heartbeat-interval', '50', '--election-timeout', '500'];

/** startCluster starts `size` members of a new cluster, all at once. */
export async function startCluster(opts: ClusterOptions): Promise<TestCluster> {
  const base = await mkdtemp(join(tmpdir(), 'myetcd-cluster-'));
  const ports = await freePorts(opts.size);
  const nodes: Node[] = ports.map((p, i) => ({
    name: `m${i + 1}`, peerUrl: `${opts.scheme ?? 'http'}://127.0.0.1:${p}`,
    dataDir: join(base, `m${i + 1}`),
    server: undefined,
  }));
  const initialCluster = nodes.map((n) => `${n.name}=${n.peerUrl}`).join(',');
  const c: TestCluster = {
    nodes, initialCluster,
    async start(i, extra = [], env = {}, exitExpected = false) {
      const n = nodes[i]!;
      n.server = await startServer({
        dataDir: n.dataDir,
        args: ['--name', n.name, '--listen-peer-urls', n.peerUrl,
          '--initial-advertise-peer-urls', n.peerUrl, '--initial-cluster', initialCluster,
          '--initial-cluster-token', 'test-cluster', ...(opts.args ?? []),
          ...(opts.memberArgs?.(i) ?? []), ...extra],
        env: { ...(opts.env ?? {}), ...env }, exitExpected,
      });
      return n.server;
    },
    async kill(i) {
      const s = nodes[i]!.server;
      nodes[i]!.server = undefined;
      if (s !== undefined) await s.kill();
    },
    live() {
      return nodes.filter((n) => n.server !== undefined);
    },
    async stopAll() {
      await Promise.all(nodes.map((_, i) => c.kill(i).catch(() => undefined)));
      await rm(base, { recursive: true, force: true });
    },
  };
  try {
    await Promise.all(nodes.map((_, i) => c.start(i)));
  } catch (e) {
    await c.stopAll();
    throw e;
  }
  return c;
}

/** Status is the part of /v3/maintenance/status the tests read. */
export interface Status {
  memberId: string;
  leader: string;
  raftIndex: number;
  raftAppliedIndex: number;
  raftTerm: number;
  revision: number;
}

/** status asks one member for its status (undefined when it does not answer). */
export async function status(url: string): Promise<Status | undefined> {
  try {
    const r = await post(`${url}/v3/maintenance/status`, {});
    if (r.status !== 200) return undefined;
    const j = r.json;
    return {
      memberId: j.header.member_id, leader: j.leader ?? '', raftIndex: Number(j.raftIndex ?? 0),
      raftAppliedIndex: Number(j.raftAppliedIndex ?? 0), raftTerm: Number(j.raftTerm ?? 0),
      revision: Number(j.header.revision ?? 0),
    };
  } catch {
    return undefined;
  }
}

/**
 * waitFor is wait.ts's `until` for a probe that finds a value: it polls `probe` until it
 * returns something other than undefined and returns that, or fails naming `what` after
 * `timeoutMs`. The condition is the event waited on; the pause between probes only spaces
 * them out.
 */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>,
  timeoutMs = waitTimeoutMs): Promise<T> {
  let v: T | undefined;
  await until(async () => (v = await probe()) !== undefined, what, { timeoutMs });
  return v!;
}

/** waitForLeader waits until every live member names the same live leader; returns the
 * leader's index in c.nodes. */
export async function waitForLeader(c: TestCluster, timeoutMs = 30_000): Promise<number> {
  return waitFor('one leader named by every live member', async () => {
    const live = c.live();
    const sts = await Promise.all(live.map((n) => status(n.server!.url)));
    if (sts.some((s) => s === undefined || s.leader === '')) return undefined;
    const leader = sts[0]!.leader;
    if (!sts.every((s) => s!.leader === leader)) return undefined;
    const i = c.nodes.findIndex((n, k) => n.server !== undefined &&
      sts[live.indexOf(n)]?.memberId === leader && k >= 0);
    return i >= 0 ? i : undefined;
  }, timeoutMs);
}

/** waitForConvergence waits until every live member has applied the same index and revision
 * as the others; returns that revision. */
export async function waitForConvergence(c: TestCluster, timeoutMs = 30_000): Promise<number> {
  return waitFor('every live member at the same applied index', async () => {
    const sts = await Promise.all(c.live().map((n) => status(n.server!.url)));
    if (sts.some((s) => s === undefined)) return undefined;
    const first = sts[0]!;
    return sts.every((s) => s!.raftAppliedIndex === first.raftAppliedIndex &&
      s!.revision === first.revision) ? first.revision : undefined;
  }, timeoutMs);
}

/** snapshotCatchUpArgs: snapshots every 20 entries keeping 5 behind, so a follower that
 * missed 60 entries can only catch up from a snapshot. */
export const snapshotCatchUpArgs = ['--snapshot-count', '20',
  '--experimental-snapshot-catchup-entries', '5'];

/** BehindFollower is a 3-member cluster with one follower down and 60 acknowledged puts it
 * missed (keys `${prefix}/000` … `${prefix}/059`, values v0 … v59). */
export interface BehindFollower { c: TestCluster; leader: number; follower: number;
  url: string; acked: string[] }

/** startBehindFollower starts 3 members that snapshot often, stops a follower and writes 60
 * keys through the leader (each must be acknowledged): starting that follower again makes it
 * install the leader's snapshot. The caller stops the cluster (c.stopAll). */
export async function startBehindFollower(prefix: string): Promise<BehindFollower> {
  const c = await startCluster({ size: 3, args: [...fastRaft, ...snapshotCatchUpArgs] });
  try {
    const leader = await waitForLeader(c);
    const follower = (leader + 1) % 3;
    await c.kill(follower);
    const url = c.nodes[leader]!.server!.url;
    const acked: string[] = [];
    for (let i = 0; i < 60; i++) {
      const key = `${prefix}/${String(i).padStart(3, '0')}`;
      const r = await post(`${url}/v3/kv/put`, { key: b64(key), value: b64(`v${i}`) });
      if (r.status !== 200) throw new Error(`put ${key}: ${r.status}`);
      acked.push(key);
    }
    return { c, leader, follower, url, acked };
  } catch (e) {
    await c.stopAll();
    throw e;
  }
}

/** waitInstalled waits until a member logged that it installed a snapshot from its leader. */
export function waitInstalled(m: TestServer, what = 'the follower installs a snapshot'):
  Promise<true> {
  return waitFor(what, async () =>
    m.logs.some((l) => l.includes('installed snapshot from the leader')) ? true : undefined,
  60_000);
}
