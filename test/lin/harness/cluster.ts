import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';

/**
 * cluster (robustness harness): real MyEtcd members, one `node dist/src/main.js` process each,
 * on loopback with OS-chosen ports (peer ports from the OS, client URL port 0, read back from
 * the "ready" log line). Every member runs in its own process group with the orphan guard
 * preloaded, so a member never outlives the harness, even a harness killed with SIGKILL. Each
 * member's log goes to `<dir>/<name>.log`, kept when a run finds a violation.
 */

const mainJs = new URL('../../../src/main.js', import.meta.url).pathname;
const guard = new URL('../../helpers/orphan-guard.js', import.meta.url).href;

/** heartbeatMs and electionMs: a short tick so that elections take a fraction of a second. */
export const heartbeatMs = 50;
/** electionMs is the election timeout every member runs with. */
export const electionMs = 500;
/** readyMsMax bounds a member's start (generous: only a stuck start reaches it). */
export const readyMsMax = 60_000;

/** Member is one member process (`proc` undefined while it is down). */
export interface Member {
  name: string;
  peerUrl: string;
  dataDir: string;
  /** url is the client URL of the current process ('' while down). */
  url: string;
  proc: ChildProcess | undefined;
  /** pids lists every process this member has had, in order (evidence of restarts). */
  pids: number[];
  /** id is the member id (decimal string), known once it answered a status. */
  id: string;
  /** paused is true between SIGSTOP and SIGCONT. */
  paused: boolean;
  /** exited resolves when the current process exits (with its code or signal). */
  exited: Promise<string> | undefined;
  /** initialCluster and state are the flags it was first started with. */
  initialCluster: string;
  state: 'new' | 'existing';
  /** firedPoints names the failpoints whose hits this member's processes logged
   * (`failpoint NAME: …` on stderr; a `panic` shows as the exit instead). */
  firedPoints: Set<string>;
}

/** freePorts asks the OS for n free TCP ports on 127.0.0.1. */
export async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(Array.from({ length: n }, () =>
    new Promise<import('node:net').Server>((resolve, reject) => {
      const s = createServer();
      s.once('error', reject);
      s.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => resolve(s));
    })));
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

/** Cluster is a set of members sharing a run folder. */
export class Cluster {
  readonly members: Member[] = [];
  private readonly logs = new Map<string, WriteStream>();
  /** faultEnv is given to every member (peer-fault on for clusters of more than one). */
  constructor(readonly dir: string, readonly faultEnv: string[],
    readonly extraArgs: string[] = []) {}

  /** create starts `size` members of a new cluster and waits until all are ready; every
   * member gets `extraArgs` after the harness's own flags (e.g. --snapshot-count). */
  static async create(dir: string, size: number, extraArgs: string[] = []): Promise<Cluster> {
    // Ports come free from the OS but are bound again a moment later by the members: another
    // process may take one meanwhile (EADDRINUSE). Try again with new ports, a few times.
    for (let attempt = 1; ; attempt++) {
      try {
        return await Cluster.createOnce(join(dir, `try${attempt}`), size, extraArgs);
      } catch (e) {
        if (attempt >= 3) throw e;
      }
    }
  }

  private static async createOnce(dir: string, size: number, extraArgs: string[]):
    Promise<Cluster> {
    await mkdir(dir, { recursive: true });
    const c = new Cluster(dir, size > 1 ? ['peer-fault'] : [], extraArgs);
    const ports = await freePorts(size);
    const ic = ports.map((p, i) => `m${i + 1}=http://127.0.0.1:${p}`).join(',');
    for (let i = 0; i < size; i++) {
      c.members.push(c.blank(`m${i + 1}`, `http://127.0.0.1:${ports[i]}`, ic, 'new'));
    }
    try {
      await Promise.all(c.members.map((m) => c.start(m)));
    } catch (e) {
      await c.killAll();
      await c.closeLogs();
      throw e;
    }
    return c;
  }

  /** blank describes a member that has not run yet. */
  blank(name: string, peerUrl: string, initialCluster: string, state: 'new' | 'existing'):
    Member {
    return { name, peerUrl, dataDir: join(this.dir, name), url: '', proc: undefined, pids: [],
      id: '', paused: false, exited: undefined, initialCluster, state, firedPoints: new Set() };
  }

  /** start runs a member's process (its data dir decides whether it is a restart) with
   * GOFAIL_FAILPOINTS = the cluster's faults plus `failpoints`; resolves once it serves, or
   * rejects when it exits first (`allowExit`: resolve with '' instead, for a crash
   * failpoint that fires during the start). */
  async start(m: Member, failpoints: string[] = [], allowExit = false): Promise<string> {
    await mkdir(m.dataDir, { recursive: true });
    const fps = [...this.faultEnv, ...failpoints];
    const env: NodeJS.ProcessEnv = { ...process.env };
    // gofail's form: `name=terms` pairs joined by ';' (bare flags may also be joined by ',').
    if (fps.length > 0) env['GOFAIL_FAILPOINTS'] = fps.join(fps.some((f) => f.includes('='))
      ? ';' : ',');
    else delete env['GOFAIL_FAILPOINTS'];
    const proc = spawn(process.execPath, ['--import', guard, mainJs, '--name', m.name,
      '--data-dir', m.dataDir, '--listen-client-urls', 'http://127.0.0.1:0',
      '--listen-peer-urls', m.peerUrl, '--initial-advertise-peer-urls', m.peerUrl,
      '--initial-cluster', m.initialCluster, '--initial-cluster-state', m.state,
      '--initial-cluster-token', 'robustness', '--heartbeat-interval', String(heartbeatMs),
      '--election-timeout', String(electionMs), '--storage-shards', '2', '--log-level', 'info',
      ...this.extraArgs],
    { stdio: ['pipe', 'pipe', 'pipe'], env, detached: true });
    m.proc = proc;
    m.url = '';
    m.paused = false;
    if (proc.pid !== undefined) m.pids.push(proc.pid);
    let log = this.logs.get(m.name);
    if (log === undefined) {
      log = createWriteStream(join(this.dir, `${m.name}.log`), { flags: 'a' });
      this.logs.set(m.name, log);
    }
    log.write(`--- harness: start pid ${proc.pid} ` +
      `GOFAIL_FAILPOINTS=${env['GOFAIL_FAILPOINTS'] ?? ''}\n`);
    const exited = new Promise<string>((resolve) => proc.once('exit', (code, sig) => {
      log!.write(`--- harness: pid ${proc.pid} exited (${sig ?? code})\n`);
      if (m.proc === proc) {
        m.proc = undefined;
        m.url = '';
      }
      resolve(String(sig ?? code));
    }));
    m.exited = exited;
    return new Promise<string>((resolve, reject) => {
      let buf = '';
      let done = false;
      const timer = setTimeout(() => {
        if (!done) reject(new Error(`${m.name} not ready within ${readyMsMax} ms`));
        done = true;
      }, readyMsMax);
      const onData = (d: Buffer) => {
        log!.write(d);
        for (const hit of d.toString('latin1').matchAll(/^failpoint ([A-Za-z-]+): /gm)) {
          m.firedPoints.add(hit[1]!);
        }
        if (done) return;
        buf += d.toString('utf8');
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          if (!line.includes('ready to serve client requests')) continue;
          try {
            const j = JSON.parse(line) as { url?: string };
            if (j.url !== undefined) {
              done = true;
              clearTimeout(timer);
              m.url = j.url;
              resolve(j.url);
              return;
            }
          } catch {
            // not JSON
          }
        }
      };
      proc.stdout!.on('data', onData);
      proc.stderr!.on('data', onData);
      void exited.then((how) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (allowExit) resolve('');
        else reject(new Error(`${m.name} exited (${how}) before it was ready`));
      });
    });
  }

  /** signal sends a signal to a member's process group. */
  signal(m: Member, sig: NodeJS.Signals): void {
    const p = m.proc;
    if (p?.pid === undefined || p.exitCode !== null || p.signalCode !== null) return;
    try {
      process.kill(-p.pid, sig);
    } catch {
      // gone meanwhile
    }
  }

  /** kill sends SIGKILL (after SIGCONT if paused) and waits for the exit. */
  async kill(m: Member): Promise<void> {
    const ex = m.exited;
    if (m.proc === undefined) return;
    this.signal(m, 'SIGKILL');
    m.paused = false;
    await ex;
  }

  /** live lists the members whose process serves now (not paused). */
  live(): Member[] {
    return this.members.filter((m) => m.proc !== undefined && m.url !== '' && !m.paused);
  }

  /** killAll kills every member (the end of a run, or an error). */
  async killAll(): Promise<void> {
    await Promise.all(this.members.map((m) => this.kill(m)));
  }

  /** closeLogs ends the log files. */
  async closeLogs(): Promise<void> {
    await Promise.all([...this.logs.values()].map((l) => new Promise((r) => l.end(r))));
  }
}

/** Status is the part of /v3/maintenance/status the harness reads. */
export interface Status { id: string; leader: string; term: number; revision: number;
  applied: number }

/** status asks a member for its status (undefined when it does not answer in time). */
export async function status(url: string, timeoutMs = 2_000): Promise<Status | undefined> {
  if (url === '') return undefined;
  try {
    const r = await fetch(`${url}/v3/maintenance/status`, { method: 'POST', body: '{}',
      signal: AbortSignal.timeout(timeoutMs) });
    if (r.status !== 200) return undefined;
    const j = await r.json() as { header: { member_id: string; revision?: string };
      leader?: string; raftTerm?: string; raftAppliedIndex?: string };
    return { id: j.header.member_id, leader: j.leader ?? '', term: Number(j.raftTerm ?? 0),
      revision: Number(j.header.revision ?? 0), applied: Number(j.raftAppliedIndex ?? 0) };
  } catch {
    return undefined;
  }
}

/** sleep waits; the harness uses it only to space probes and to hold a fault for a while
 * (the duration of a fault is part of the fault, not a hope that something happened). */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** waitFor polls `probe` every 50 ms until it returns a value, or gives undefined. */
export async function waitFor<T>(probe: () => Promise<T | undefined>, timeoutMs: number):
  Promise<T | undefined> {
  const end = performance.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (performance.now() > end) return undefined;
    await sleep(50);
  }
}

/** leaderOf waits until every live member names one live leader; returns it. */
export async function leaderOf(c: Cluster, timeoutMs = 30_000):
  Promise<{ leader: Member; term: number } | undefined> {
  return waitFor(async () => {
    const live = c.live();
    if (live.length === 0) return undefined;
    const sts = await Promise.all(live.map((m) => status(m.url)));
    live.forEach((m, i) => {
      if (sts[i] !== undefined) m.id = sts[i]!.id;
    });
    if (sts.some((s) => s === undefined || s.leader === '')) return undefined;
    const l = sts[0]!.leader;
    if (!sts.every((s) => s!.leader === l)) return undefined;
    const leader = live.find((m) => m.id === l);
    return leader === undefined ? undefined
      : { leader, term: Math.max(...sts.map((s) => s!.term)) };
  }, timeoutMs);
}
