import type { LeaseMsg, LeaseReplies } from '../../actors/lease/messages.js';
import type { RaftMsg, RaftReplies, RaftStatusResp } from '../../actors/raft/messages.js';
import type { WatchMsg, WatchReplies } from '../../actors/watch/messages.js';
import { dashboardLatencySamplesMax, dashboardPeerTimeoutMs } from '../constants.js';
import type { EndpointStats } from '../runtime/endpoint.js';
import type { ActorSystem } from '../runtime/system.js';
import type { KvService } from './kv-service.js';

/**
 * Dashboard: what `GET /debug/dashboard` answers (the page `/dashboard` polls it about once a
 * second; docs/observability.md). Everything is computed over the interval since the previous
 * snapshot: rates from the cumulative counters every thread already keeps (EndpointStats),
 * latency percentiles from the requests answered meanwhile (at most
 * dashboardLatencySamplesMax kept per route, a uniform sample beyond), fsync latency and
 * group-commit sizes from the WAL writer's samples. Members other than this one are asked
 * for `GET /debug/member` on their client URL, so one page shows the whole cluster.
 */

/** MemberJson is one member's line. */
export interface MemberJson {
  id: string;
  name: string;
  clientURLs: string[];
  isLearner: boolean;
  self: boolean;
  role?: string;
  term?: number;
  leader?: string;
  commit?: number;
  applied?: number;
  revision?: number;
  healthy: boolean;
  error?: string;
}

/** ActorJson is one actor thread's line; rates are per second over the interval. */
export interface ActorJson {
  actor: string;
  thread: string;
  mailboxDepth: number;
  messagesInPerSec: number;
  messagesOutPerSec: number;
  batchesInPerSec: number;
  messagesPerBatch: number;
  /** busyPercent: handler time per wall time (100 = the thread never idles). */
  busyPercent: number;
  heapUsedBytes: number;
  restarts: number;
}

/** RouteJson is one route's traffic over the interval. */
export interface RouteJson {
  route: string;
  requestsPerSec: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** DashboardJson is the whole answer. */
export interface DashboardJson {
  timeMs: number;
  intervalMs: number;
  self: MemberJson;
  members: MemberJson[];
  actors: ActorJson[];
  routes: RouteJson[];
  wal: { fsyncsPerSec: number; fsyncP50Ms: number; fsyncP99Ms: number;
    entriesPerFsync: number; entriesPerFsyncMax: number };
  watchers: number;
  watchStreams: number;
  leases: number;
}

/** WalSamples are the WAL writer's samples since its previous report. */
export interface WalSamples {
  fsyncSeconds: readonly number[];
  entriesPerFsync?: readonly number[];
}

interface RouteWindow {
  count: number;
  samples: number[];
}

/** Dashboard: see the file comment. */
export class Dashboard {
  private routes = new Map<string, RouteWindow>();
  private fsyncMs: number[] = [];
  private entries: number[] = [];
  private prevStats = new Map<string, EndpointStats>();
  private prevMs = performance.now();
  private last: { atMs: number; json: DashboardJson } | undefined;

  /** pullWal asks the WAL writer for its samples and feeds ingestWal (main.ts wires it, so
   * that /metrics and the dashboard share the samples). */
  constructor(private readonly system: ActorSystem, private readonly kv: KvService,
    private readonly pullWal: () => Promise<void>, readonly name: string) {}

  /** observe records one answered request (the Routes registry's hook). */
  observe(route: string, method: string, seconds: number): void {
    const key = `${method.toUpperCase()} ${route}`;
    let w = this.routes.get(key);
    if (w === undefined) {
      w = { count: 0, samples: [] };
      this.routes.set(key, w);
    }
    w.count++;
    const ms = seconds * 1000;
    if (w.samples.length < dashboardLatencySamplesMax) w.samples.push(ms);
    else {
      // Reservoir sampling: every request of the interval equally likely to be kept.
      const i = Math.floor(Math.random() * w.count);
      if (i < dashboardLatencySamplesMax) w.samples[i] = ms;
    }
  }

  /** ingestWal takes the WAL writer's samples. */
  ingestWal(w: WalSamples): void {
    for (const s of w.fsyncSeconds) if (this.fsyncMs.length < 10_000) this.fsyncMs.push(s * 1000);
    for (const n of w.entriesPerFsync ?? []) if (this.entries.length < 10_000) this.entries.push(n);
  }

  /** snapshot computes the answer; viewers polling together within 500 ms share one. */
  async snapshot(): Promise<DashboardJson> {
    const now = performance.now();
    if (this.last !== undefined && now - this.last.atMs < 500) return this.last.json;
    const gw = this.system.gateway;
    const [stats, st, members, watch, leases] = await Promise.all([
      this.system.actorStats(),
      this.kv.status(),
      gw.ref<RaftMsg, RaftReplies>('raft').ask({ type: 'RaftMemberList' }, 2_000)
        .then((r) => r.response.type === 'memberChange' ? r.response.members : [], () => []),
      gw.ref<WatchMsg, WatchReplies>('watch').ask({ type: 'WatchStats' }, 2_000)
        .catch(() => undefined),
      gw.ref<LeaseMsg, LeaseReplies>('lease').ask({ type: 'LeaseLeases' }, 2_000)
        .catch(() => undefined),
      this.pullWal().catch(() => undefined),
    ]);
    const t = performance.now();
    const intervalMs = Math.max(1, t - this.prevMs);
    this.prevMs = t;
    const self = memberOf(st, this.name, this.system.serving);
    const others = await Promise.all(members.filter((m) => m.id !== st.memberId).map(
      (m) => remoteMember(m)));
    const selfLine = members.find((m) => m.id === st.memberId);
    if (selfLine !== undefined) {
      self.name = selfLine.name || self.name;
      self.clientURLs = selfLine.clientURLs;
      self.isLearner = selfLine.isLearner;
    }
    const json: DashboardJson = {
      timeMs: Date.now(), intervalMs: Math.round(intervalMs), self,
      members: [self, ...others].sort((a, b) => a.id.localeCompare(b.id)),
      actors: this.actors(stats, intervalMs),
      routes: this.takeRoutes(intervalMs),
      wal: this.takeWal(intervalMs),
      watchers: watch?.watchers ?? 0, watchStreams: watch?.streams ?? 0,
      leases: leases?.ids.length ?? 0,
    };
    this.last = { atMs: now, json };
    return json;
  }

  private actors(stats: Map<string, EndpointStats>, intervalMs: number): ActorJson[] {
    const out: ActorJson[] = [];
    const perSec = 1000 / intervalMs;
    for (const [actor, s] of stats) {
      const p = this.prevStats.get(actor);
      // A restarted thread counts from zero: its whole count is this interval's.
      const d = (f: (x: EndpointStats) => number) =>
        p === undefined || f(s) < f(p) ? (p === undefined ? 0 : f(s)) : f(s) - f(p);
      const msgsIn = d((x) => x.messagesIn);
      const batchesIn = d((x) => x.batchesIn);
      out.push({
        actor, thread: actor === 'gateway' ? 'main' : `myetcd-${actor}`,
        mailboxDepth: Object.values(s.depth).reduce((a, b) => a + b, 0),
        messagesInPerSec: round1(msgsIn * perSec),
        messagesOutPerSec: round1(d((x) => x.messagesOut) * perSec),
        batchesInPerSec: round1(batchesIn * perSec),
        messagesPerBatch: batchesIn === 0 ? 0 : round1(msgsIn / batchesIn),
        busyPercent: round1(Math.min(100, d((x) => x.handleSecondsTotal) * 1000 / intervalMs
          * 100)),
        heapUsedBytes: s.heapUsedBytes ?? process.memoryUsage().heapUsed,
        restarts: this.system.restarts.get(actor) ?? 0,
      });
      this.prevStats.set(actor, { ...s, depth: { ...s.depth } });
    }
    return out;
  }

  private takeRoutes(intervalMs: number): RouteJson[] {
    const out: RouteJson[] = [];
    for (const [route, w] of this.routes) {
      const sorted = w.samples.sort((a, b) => a - b);
      out.push({
        route, requestsPerSec: round1(w.count * 1000 / intervalMs),
        p50Ms: quantile(sorted, 0.5), p90Ms: quantile(sorted, 0.9),
        p99Ms: quantile(sorted, 0.99), maxMs: round3(sorted[sorted.length - 1] ?? 0),
      });
    }
    this.routes = new Map([...this.routes.keys()].map((k) => [k, { count: 0, samples: [] }]));
    return out.sort((a, b) =>
      b.requestsPerSec - a.requestsPerSec || a.route.localeCompare(b.route));
  }

  private takeWal(intervalMs: number): DashboardJson['wal'] {
    const f = this.fsyncMs.sort((a, b) => a - b);
    const e = this.entries;
    const wal = {
      fsyncsPerSec: round1(f.length * 1000 / intervalMs),
      fsyncP50Ms: quantile(f, 0.5), fsyncP99Ms: quantile(f, 0.99),
      entriesPerFsync: e.length === 0 ? 0 : round1(e.reduce((a, b) => a + b, 0) / e.length),
      entriesPerFsyncMax: e.length === 0 ? 0 : Math.max(...e),
    };
    this.fsyncMs = [];
    this.entries = [];
    return wal;
  }
}

/** memberOf is this member's line from the Raft node's status. */
export function memberOf(st: RaftStatusResp, name: string, serving: boolean): MemberJson {
  return {
    id: st.memberId.toString(16), name, clientURLs: [], isLearner: st.isLearner, self: true,
    role: roleOf(st), term: st.raftTerm, leader: st.leader.toString(16),
    commit: st.raftIndex, applied: st.raftAppliedIndex, revision: st.revision,
    healthy: serving && st.leader !== 0,
  };
}

function roleOf(st: RaftStatusResp): string {
  if (st.isLeader) return 'leader';
  if (st.isLearner) return 'learner';
  return st.leader === 0 ? 'no leader' : 'follower';
}

async function remoteMember(m: { id: number; name: string; clientURLs: string[];
  isLearner: boolean }): Promise<MemberJson> {
  const base: MemberJson = {
    id: m.id.toString(16), name: m.name, clientURLs: m.clientURLs, isLearner: m.isLearner,
    self: false, healthy: false,
  };
  const url = m.clientURLs[0];
  if (url === undefined) return { ...base, error: 'not started (no client URL published)' };
  try {
    const r = await fetch(new URL('/debug/member', url),
      { signal: AbortSignal.timeout(dashboardPeerTimeoutMs) });
    if (!r.ok) return { ...base, error: `HTTP ${r.status}` };
    const j = await r.json() as MemberJson;
    return { ...base, role: j.role, term: j.term, leader: j.leader, commit: j.commit,
      applied: j.applied, revision: j.revision, healthy: j.healthy };
  } catch (e) {
    return { ...base, error: e instanceof Error ? e.message : String(e) };
  }
}

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  return round3(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!);
}

function round1(x: number): number {
  return Math.round(x * 10) / 10;
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
