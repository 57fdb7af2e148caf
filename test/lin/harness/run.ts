import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { seededRng } from '../../../src/raft/index.js';
import { check, type Operation } from '../checker.js';
import { fromOperations } from '../history.js';
import { type DeleteEvent, patchUnknown, type PutEvent } from '../patch.js';
import { checkRevisions, type KvInput, kvModel, type KvOutput, type KvRead, prepareKv }
  from '../kv-model.js';
import { Cluster, electionMs, leaderOf, sleep, status, waitFor } from './cluster.js';
import { type Evidence, inject } from './faults.js';
import {
  Client, kvPrefix, type LeaseKey, leasePrefix, post, runLeases, type WatchEvent, watchOnce,
  Watcher, type WatchResponse,
} from './traffic.js';

/**
 * run (robustness harness): one run — start a cluster, drive clients, watchers and leases,
 * inject the faults, let the cluster settle, stop it, and check everything:
 *  - the KV history is linearizable (checker + revision order across partitions);
 *  - watches are ordered, unique, atomic (a revision's events in one response), reliable (a
 *    watch that was never cancelled saw exactly the events of the final history), resumable
 *    (a new watch from a revision gives the same events) and carry the right prev_kv;
 *  - every acknowledged put is in the final history at its revision;
 *  - no key outlives its lease by more than leaseToleranceMs;
 *  - every member ends with the same revision and the same keys;
 *  - with `compact`: a compactor compacts the store during the traffic and the faults, and
 *    every member reads the keys at the last compacted revision and at a later one as the
 *    final history says they were (history reads across compactions, snapshots and restarts).
 */

/** RunSpec is one run's parameters (all choices come from the seed). */
export interface RunSpec { seed: number; members: number; faults: string[]; ops: number;
  clients: number; keepDir?: string;
  /** snapshotCount: every member's --snapshot-count (its default when absent); a small one
   * makes snapshots, their failpoints and snapshot catch-up happen within a short run. */
  snapshotCount?: number;
  /** serializableReads: plain gets read a member's local state (a positive control: the
   * checker should find stale reads, most of all with a paused or cut-off member). */
  serializableReads?: boolean;
  /** compact: compact the store every 200–600 ms of the traffic, at the lowest revision both
   * watchers have received (so that their resumes stay above it). */
  compact?: boolean }

/** RunResult is what a run prints and totals. */
export interface RunResult { spec: RunSpec; ops: number; unknown: number;
  /** refused: writes refused with etcd's NOSPACE text (no effect; not in `ops`). */
  refused: number; violations: string[];
  evidence: Evidence[]; ms: number; dir: string | undefined; verdict: string;
  leaseLateMsMax: number; watchStreams: number;
  /** orderDeviations: revisions a live watch gave in another order than a catch-up watch
   * (a violation when not 0). */
  orderDeviations: number;
  /** checkSteps and partitions: the checker's work on the KV history. */
  checkSteps: number; partitions: number;
  /** compactions: compactions answered 200; compactedTo: the highest revision a compaction
   * was asked for that may have happened (answered 200, or with no known outcome). */
  compactions: number; compactedTo: number }

/** leaseToleranceMs: a lease key is deleted within TTL + this (lease checks every 500 ms, a
 * revocation through Raft, the watch delivery, on a loaded 2-core machine). A leader change
 * during the lease's life renews it (etcd's promote) from the moment the fault ends. */
export const leaseToleranceMs = 3_000;
/** checkStepsMax bounds the checker's work on one run's history ('unknown' past it, which
 * counts as a violation: never a silent pass). */
export const checkStepsMax = 20_000_000;
/** trafficMsMax bounds a run's traffic phase. */
export const trafficMsMax = 30_000;
/** settleMsMax bounds the wait for the cluster to converge after the traffic. */
export const settleMsMax = 30_000;

/** runOnce runs one spec; it always stops every member it started. */
export async function runOnce(spec: RunSpec): Promise<RunResult> {
  const dir = await mkdtemp(join(spec.keepDir ?? tmpdir(), `robustness-${spec.seed}-`));
  const t0 = performance.now();
  const rng = seededRng(spec.seed);
  const violations: string[] = [];
  const evidence: Evidence[] = [];
  const ops: Operation<KvInput, KvOutput>[] = [];
  const leases: LeaseKey[] = [];
  let c: Cluster | undefined;
  let leaseLateMsMax = 0;
  let watchStreams = 0;
  let orderDeviations = 0;
  let finalPuts: PutEvent[] | undefined;
  let finalDeletes: DeleteEvent[] | undefined;
  const compactor = { ok: 0, to: 0 };
  const refused: Operation<KvInput, KvOutput>[] = [];
  const phases: string[] = [];
  const phase = (what: string) => phases.push(`${what} ${((performance.now() - t0) / 1000)
    .toFixed(1)}`);
  try {
    // A small snapshot count keeps few entries behind each snapshot too (a quarter), so
    // that a member which was down or replaced catches up by a snapshot install.
    c = await Cluster.create(dir, spec.members, spec.snapshotCount === undefined ? []
      : ['--snapshot-count', String(spec.snapshotCount), '--experimental-snapshot-catchup-' +
        'entries', String(Math.max(1, Math.floor(spec.snapshotCount / 4)))]);
    const cl = c;
    if (await leaderOf(cl) === undefined) throw new Error('no leader after the start');
    phase('started');
    const tRun = performance.now();
    let trafficDone = false;
    let faultsDone = spec.faults.length === 0;
    const stopTraffic = () => trafficDone;
    const clients = Array.from({ length: spec.clients }, (_, i) =>
      new Client(i, seededRng(spec.seed * 31 + i), tRun, cl, ops));
    for (const x of clients) x.serializable = spec.serializableReads === true;
    const running = clients.map((x) => x.run(stopTraffic));
    let leasesDone = false;
    const leaseRun = runLeases(cl, seededRng(spec.seed * 17), tRun, () => leasesDone || trafficDone,
      leases);
    let watchTarget = Infinity;
    const watchers = [0, 1].map((i) => new Watcher(cl, seededRng(spec.seed * 7 + i), tRun));
    const watching = watchers.map((w) => w.run(() => w.last >= watchTarget));
    const compacting = spec.compact === true
      ? compactWhile(cl, seededRng(spec.seed * 13), watchers, () => trafficDone, compactor)
      : Promise.resolve();
    // Faults one after the other, from a seed-chosen moment in the first part of the traffic.
    const faulting = (async () => {
      for (const f of spec.faults) {
        await waitFor(async () => (ops.length >= spec.ops * (0.1 + rng() * 0.3) ? true
          : undefined), trafficMsMax);
        evidence.push(await inject(cl, f, rng, tRun));
      }
      faultsDone = true;
    })();
    // Leases stop half way, so that their expiry overlaps the rest of the traffic.
    void waitFor(async () => (ops.length >= spec.ops / 2 || trafficDone ? true : undefined),
      trafficMsMax + 60_000).then(() => {
      leasesDone = true;
    });
    await waitFor(async () => (faultsDone && ops.length >= spec.ops) ||
      performance.now() - tRun > trafficMsMax ? true : undefined, trafficMsMax + 60_000);
    leasesDone = true;
    trafficDone = true;
    await faulting;
    await Promise.all(running);
    await compacting;
    if (spec.compact === true && compactor.ok === 0) {
      violations.push('no compaction happened (the compactor had nothing to check)');
    }
    for (const x of clients) refused.push(...x.refused);
    await leaseRun;
    phase('traffic');
    for (const e of evidence) {
      if (!e.happened) violations.push(`fault did not happen: ${e.fault} (${e.detail})`);
    }

    // Settle: one leader, every member at the same applied index and revision.
    const settled = await waitFor(async () => {
      if (await leaderOf(cl, 1_000) === undefined) return undefined;
      const sts = await Promise.all(cl.members.map((m) => status(m.url)));
      if (sts.some((s) => s === undefined)) return undefined;
      return sts.every((s) => s!.applied === sts[0]!.applied && s!.revision === sts[0]!.revision)
        ? sts[0]!.revision : undefined;
    }, settleMsMax);
    if (settled === undefined) violations.push('members did not converge within 30 s');
    phase('settled');

    // Leases: every leased key must go; wait for the last deadline plus the tolerance.
    const faultWindows = evidence.map((e) => [e.start, e.end] as const);
    const deadlineOf = (l: LeaseKey) => {
      let d = l.grantedAt + l.ttlS * 1000;
      for (const [s, e] of faultWindows) {
        if (s <= d + leaseToleranceMs && e >= l.grantedAt) {
          d = Math.max(d, e + l.ttlS * 1000 + electionMs);
        }
      }
      return d + leaseToleranceMs;
    };
    const lastDeadline = Math.max(0, ...leases.map(deadlineOf));
    const leasesGone = await waitFor(async () => {
      const m = cl.live()[0];
      if (m === undefined) return undefined;
      const r = await post(m.url, '/v3/kv/range', { key: b64(leasePrefix),
        range_end: b64(prefixEnd(leasePrefix)), count_only: true });
      return r?.status === 200 && Number(r.json.count ?? 0) === 0 ? true : undefined;
    }, Math.max(0, lastDeadline - (performance.now() - tRun)) + 1_000);
    if (leasesGone === undefined) violations.push('leased keys remain past their deadline');
    phase('leases');

    // The final history: the revision now, and every event from revision 1 by a new watch.
    const final = await waitFor(async () => {
      const s = await status(cl.live()[0]?.url ?? '');
      return s === undefined ? undefined : s.revision;
    }, 10_000) ?? 0;
    watchTarget = final;
    const compacted = compactor.to > 0;
    const from1 = Math.max(1, compactor.to);
    // After compactions a new watch starts past the last compacted revision (there, as in
    // etcd, a new watch's events lack prev_kv and a delete compacted with its key): the
    // history through it is the first watcher's, which the second watcher and the
    // acknowledged puts are checked against.
    let ref = await readEvents(cl, compacted ? from1 + 1 : 1, final, tRun);
    if (compacted && ref !== undefined) {
      ref = [...watchers[0]!.responses.flatMap((r) => r.events).filter((e) => e.mod <= from1),
        ...ref];
    }
    if (ref === undefined) violations.push('could not read the final history by watch');
    await Promise.race([Promise.all(watching), sleep(15_000)]);
    if (watchers.some((w) => w.last < final)) {
      // A watch is behind: keep every member's watch state (GET /debug/watch) to tell why.
      const states = await Promise.all(cl.members.map(async (m) => {
        try {
          const r = await fetch(`${m.url}/debug/watch`, { signal: AbortSignal.timeout(3_000) });
          return { member: m.name, state: await r.json() };
        } catch (e) {
          return { member: m.name, error: String(e) };
        }
      }));
      await writeFile(join(dir, 'watch-debug.json'), JSON.stringify({ final,
        watchers: watchers.map((w) => ({ last: w.last, streams: w.streams, on: w.on })),
        states }, null, 1));
    }
    watchTarget = -1; // anything left stops now
    await Promise.all(watching);
    watchStreams = watchers.reduce((a, w) => a + w.streams, 0);
    phase('watched');

    if (ref !== undefined) {
      finalPuts = ref.filter((e) => e.type === 'PUT' && e.key.startsWith(kvPrefix));
      finalDeletes = ref.filter((e) => e.type === 'DELETE' && e.key.startsWith(kvPrefix));
      violations.push(...checkWatchesAgainst(ref, watchers.map((w) => w.responses), final));
      orderDeviations = orderWithinRevisionDiffers(
        watchers[0]!.responses.flatMap((r) => r.events).filter((e) => e.mod <= final), ref);
      // etcd gives a txn's events in txn order (sub revisions) live and from history alike.
      if (orderDeviations > 0) {
        violations.push(`${orderDeviations} revision(s) whose events a watch and the final ` +
          'history give in different orders (watch order within a revision)');
      }
      // (Past the compacted revision: see above.)
      const from = compacted ? from1 + 1 + Math.floor(rng() * Math.max(0, final - from1))
        : 1 + Math.floor(rng() * Math.max(1, final));
      const resumed = await readEvents(cl, from, final, tRun);
      const want = ref.filter((e) => e.mod >= from);
      if (resumed === undefined || !sameEvents(resumed, want)) {
        violations.push(`a watch resumed from revision ${from} differs from the final history` +
          (resumed === undefined ? ' (no answer)' : `: ${firstDifference(resumed, want)}`));
      }
      violations.push(...checkPrevKv(ref), ...checkAcknowledged(ref, ops, refused));
      if (spec.compact === true && settled !== undefined) {
        for (const at of [from1, from1 + Math.floor(rng() * Math.max(1, final - from1 + 1))]) {
          violations.push(...await checkReadsAt(cl, ref, Math.min(at, final)));
        }
      }
      // Lease lateness: when was each leased key deleted, at the latest? Before any operation
      // that showed a revision at or past the delete's returned, and before a watcher got it.
      const revRets = ops.filter((o) => o.output?.rev !== undefined && o.ret !== Infinity)
        .map((o) => [o.output!.rev!, o.ret] as const).sort((a, b) => b[0] - a[0]);
      const seenBy = (rev: number) => {
        let t = Infinity;
        for (const [r, ret] of revRets) {
          if (r < rev) break;
          t = Math.min(t, ret);
        }
        return t;
      };
      const gone = new Map<string, number>();
      for (const w of watchers) {
        for (const r of w.responses) {
          for (const e of r.events) {
            if (e.type !== 'DELETE') continue;
            const at = Math.min(r.at, seenBy(e.mod));
            gone.set(e.key, Math.min(at, gone.get(e.key) ?? Infinity));
          }
        }
      }
      for (const l of leases) {
        if (Number.isNaN(l.putAckAt) && !gone.has(l.key)) continue; // never written
        const at = gone.get(l.key);
        if (at === undefined) continue; // leasesGone above covers keys never deleted
        const late = at - (l.grantedAt + l.ttlS * 1000);
        leaseLateMsMax = Math.max(leaseLateMsMax, late);
        if (at > deadlineOf(l)) {
          violations.push(`${l.key} outlived its lease (TTL ${l.ttlS} s) by ${late.toFixed(0)} ` +
            `ms (granted at ${l.grantedAt.toFixed(0)} ms, faults ${faultWindows.map(([a, b]) =>
              `${a.toFixed(0)}-${b.toFixed(0)}`).join(' ')} ms)`);
        }
      }
    }

    // Every member ends with the same revision and keys (serializable reads of its own
    // state). Lease revocations may still be applying on a follower after the leases phase
    // (it looked at one member): the views must agree within settleMsMax, not at once.
    if (settled !== undefined) {
      let views: (string | undefined)[] = [];
      const agreed = await waitFor(async () => {
        views = await Promise.all(cl.members.map(async (m) => {
          const r = await post(m.url, '/v3/kv/range', { key: b64('lin/'), range_end:
            b64(prefixEnd('lin/')), serializable: true });
          return r?.status === 200 ? JSON.stringify({ rev: r.json.header?.revision,
            kvs: (r.json.kvs ?? []).map((k: any) => [k.key, k.value, k.mod_revision]) })
            : undefined;
        }));
        return views.every((v) => v !== undefined && v === views[0]) ? true : undefined;
      }, settleMsMax);
      if (agreed === undefined) {
        violations.push('members differ in revision or keys after settling');
        await writeFile(join(dir, 'views.json'), JSON.stringify(cl.members.map((m, i) => ({
          member: m.name, view: views[i] === undefined ? undefined : JSON.parse(views[i]!) })),
        null, 1));
      }
    }
  } catch (e) {
    violations.push(`harness error: ${(e as Error).message}`);
  } finally {
    if (c !== undefined) {
      await c.killAll();
      await c.closeLogs();
    }
  }

  phase('stopped');
  if (process.env['ROBUSTNESS_PHASES'] !== undefined) {
    process.stderr.write(`phases: ${phases.join(', ')}\n`);
  }
  // The KV history, with what the final event history tells about unknown outcomes.
  const checked = prepareKv(finalPuts === undefined ? ops
    : patchUnknown(ops, finalPuts, finalDeletes));
  await writeFile(join(dir, 'history.json'), JSON.stringify(fromOperations(spec.seed, ops)));
  await writeFile(join(dir, 'history-patched.json'),
    JSON.stringify(fromOperations(spec.seed, checked)));
  await writeFile(join(dir, 'refused.json'), JSON.stringify(fromOperations(spec.seed, refused)));
  const lin = check(kvModel(), checked, { stepsMax: checkStepsMax });
  if (lin.verdict === 'illegal') violations.push('KV history not linearizable');
  if (lin.verdict === 'unknown') violations.push('KV history: checker ran out of budget');
  for (const p of checkRevisions(checked)) violations.push(`revision order: ${p.what}`);
  const unknown = ops.filter((o) => o.output === undefined).length;
  let kept: string | undefined;
  if (violations.length > 0) {
    await writeFile(join(dir, 'violations.txt'), violations.join('\n') + '\n' +
      evidence.map((e) => `${e.fault}: ${e.detail}`).join('\n') + '\n');
    kept = dir;
  } else {
    await rm(dir, { recursive: true, force: true });
  }
  return { spec, ops: ops.length, unknown, refused: refused.length, violations, evidence,
    ms: performance.now() - t0,
    dir: kept, verdict: violations.length === 0 ? 'ok' : 'VIOLATION', leaseLateMsMax,
    watchStreams, orderDeviations, checkSteps: lin.steps, partitions: lin.partitions.length,
    compactions: compactor.ok, compactedTo: compactor.to };
}

/** compactWhile compacts through a random live member every 200–600 ms until `done()`, at
 * the lowest revision both watchers have received: a watcher resumes from its last revision
 * + 1, which stays at or above it. A compaction with no known outcome may have happened. */
async function compactWhile(c: Cluster, rng: () => number, watchers: Watcher[],
  done: () => boolean, out: { ok: number; to: number }): Promise<void> {
  while (!done()) {
    await sleep(200 + rng() * 400);
    const live = c.live();
    const rev = Math.min(...watchers.map((w) => w.last));
    if (live.length === 0 || rev <= out.to) continue;
    const m = live[Math.floor(rng() * live.length)]!;
    const r = await post(m.url, '/v3/kv/compaction', { revision: String(rev) });
    if (r === undefined || r.status === 200) out.to = rev;
    if (r?.status === 200) out.ok++;
  }
}

/** stateAt is the checked keys' state at revision `at` by the final history. */
function stateAt(ref: WatchEvent[], at: number): Map<string, string> {
  const state = new Map<string, string>();
  for (const e of ref) {
    if (e.mod > at || !e.key.startsWith(kvPrefix)) continue;
    if (e.type === 'PUT') state.set(e.key, `${e.value}@${e.mod}`);
    else state.delete(e.key);
  }
  return state;
}

/** checkReadsAt reads the checked keys at revision `at` on every member (serializable: its
 * own state) and compares them with the final history. */
async function checkReadsAt(c: Cluster, ref: WatchEvent[], at: number): Promise<string[]> {
  const want = stateAt(ref, at);
  const out: string[] = [];
  for (const m of c.members) {
    const r = await post(m.url, '/v3/kv/range', { key: b64(kvPrefix),
      range_end: b64(prefixEnd(kvPrefix)), revision: String(at), serializable: true });
    if (r?.status !== 200) {
      out.push(`${m.name}: a read at revision ${at} answered ${r?.status ?? 'nothing'}: ` +
        `${JSON.stringify(r?.json)}`);
      continue;
    }
    const got = new Map<string, string>((r.json.kvs ?? []).map((k: any) =>
      [Buffer.from(k.key, 'base64').toString('utf8'),
        `${Buffer.from(k.value ?? '', 'base64').toString('utf8')}@${k.mod_revision}`]));
    const diff = [...new Set([...want.keys(), ...got.keys()])]
      .filter((k) => want.get(k) !== got.get(k));
    if (diff.length > 0) {
      out.push(`${m.name}: at revision ${at} ${diff.length} key(s) differ from the final ` +
        `history, e.g. ${diff[0]}: ${got.get(diff[0]!) ?? '-'} vs ${want.get(diff[0]!) ?? '-'}`);
    }
  }
  return out;
}

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

/** prefixEnd is etcd's range end of a prefix. */
function prefixEnd(p: string): string {
  return p.slice(0, -1) + String.fromCharCode(p.charCodeAt(p.length - 1) + 1);
}

/** readEvents reads every event under lin/ from `from` to `to` with a new watch. */
async function readEvents(c: Cluster, from: number, to: number, t0: number):
  Promise<WatchEvent[] | undefined> {
  if (to < from) return [];
  for (let attempt = 0; attempt < 3; attempt++) {
    const m = c.live()[attempt % Math.max(1, c.live().length)];
    if (m === undefined) return undefined;
    const events: WatchEvent[] = [];
    let last = 0;
    const deadline = performance.now() + 10_000;
    await watchOnce(m.url, 'lin/', from, (r) => {
      events.push(...r.events);
      last = Math.max(last, ...r.events.map((e) => e.mod));
    }, () => last >= to || performance.now() > deadline, t0);
    if (last >= to) return events.filter((e) => e.mod <= to);
  }
  return undefined;
}

const eventKey = (e: WatchEvent) => `${e.type} ${e.key} ${e.value} @${e.mod} prev ` +
  `${e.prev === undefined ? '-' : `${e.prev.value}@${e.prev.mod}`}`;

/** canonical orders the events of one revision by key. MyEtcd's catch-up path (shards'
 * histories merged) gives a multi-key txn's events in shard order while the live path gives
 * them in the txn's order (etcd: sub-revision order in both); that deviation is counted
 * apart (orderWithinRevisionDiffers), and the checks below compare revisions as sets. */
function canonical(es: WatchEvent[]): WatchEvent[] {
  return [...es].sort((a, b) => a.mod - b.mod || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/** sameEvents compares two event lists field by field, each revision as a set. */
function sameEvents(a: WatchEvent[], b: WatchEvent[]): boolean {
  const ca = canonical(a);
  const cb = canonical(b);
  return ca.length === cb.length && ca.every((e, i) => eventKey(e) === eventKey(cb[i]!));
}

/** firstDifference names where two event lists first differ (each revision as a set). */
function firstDifference(a: WatchEvent[], b: WatchEvent[]): string {
  const ca = canonical(a);
  const cb = canonical(b);
  const i = ca.findIndex((e, k) => cb[k] === undefined || eventKey(e) !== eventKey(cb[k]!));
  const at = i < 0 ? ca.length : i;
  return `${ca.length} events against ${cb.length}, first difference at ${at}: ` +
    `${ca[at] === undefined ? '-' : eventKey(ca[at]!)} vs ` +
    `${cb[at] === undefined ? '-' : eventKey(cb[at]!)}`;
}

/** orderWithinRevisionDiffers counts revisions whose events two streams give in different
 * orders (the same events, otherwise). */
export function orderWithinRevisionDiffers(a: WatchEvent[], b: WatchEvent[]): number {
  if (a.length !== b.length) return 0;
  const revs = new Set<number>();
  a.forEach((e, i) => {
    if (eventKey(e) !== eventKey(b[i]!)) revs.add(e.mod);
  });
  return revs.size;
}

/** checkWatchesAgainst checks each never-cancelled watch against the final history. */
export function checkWatchesAgainst(ref: WatchEvent[], watches: WatchResponse[][],
  final: number): string[] {
  const out: string[] = [];
  watches.forEach((resps, w) => {
    const flat = resps.flatMap((r) => r.events);
    for (let i = 1; i < flat.length; i++) {
      if (flat[i]!.mod < flat[i - 1]!.mod) {
        out.push(`watch ${w}: revision ${flat[i]!.mod} after ${flat[i - 1]!.mod} (order)`);
        break;
      }
    }
    for (let i = 1; i < resps.length; i++) {
      const a = resps[i - 1]!.events.at(-1)!.mod;
      const b = resps[i]!.events[0]!.mod;
      if (b <= a) {
        out.push(`watch ${w}: revision ${a} split across responses or repeated (atomic)`);
        break;
      }
    }
    const seen = new Set<string>();
    for (const e of flat) {
      const k = `${e.mod} ${e.key}`;
      if (seen.has(k)) {
        out.push(`watch ${w}: event ${k} twice (unique)`);
        break;
      }
      seen.add(k);
    }
    const upTo = ref.filter((e) => e.mod <= final);
    if (!sameEvents(flat.filter((e) => e.mod <= final), upTo)) {
      out.push(`watch ${w}: ${firstDifference(flat, upTo)} (reliable)`);
    }
  });
  return out;
}

/** checkPrevKv checks each event's prev_kv against the events before it on its key. */
export function checkPrevKv(ref: WatchEvent[]): string[] {
  const cur = new Map<string, KvRead>();
  const out: string[] = [];
  for (const e of ref) {
    const want = cur.get(e.key);
    const got = e.prev;
    const ok = want === undefined ? got === undefined
      : got !== undefined && got.value === want.value && got.mod === want.mod;
    if (!ok && out.length < 5) {
      out.push(`prev_kv of ${e.key}@${e.mod} is ${got?.value}@${got?.mod}, expected ` +
        `${want?.value}@${want?.mod}`);
    }
    if (e.type === 'PUT') cur.set(e.key, { value: e.value, mod: e.mod });
    else cur.delete(e.key);
  }
  return out;
}

/** checkAcknowledged: every acknowledged put is in the final history at its revision, every
 * PUT event of a checked key was written by some put of the history, and none twice; a put
 * of a write refused for space (`refused`, no effect) is in it nowhere. */
export function checkAcknowledged(ref: WatchEvent[], ops: Operation<KvInput, KvOutput>[],
  refused: Operation<KvInput, KvOutput>[] = []): string[] {
  const byRevKey = new Map<string, WatchEvent>();
  for (const e of ref) byRevKey.set(`${e.mod} ${e.key}`, e);
  const out: string[] = [];
  const written = new Set<string>();
  for (const o of ops) {
    const i = o.input;
    const branches = i.t === 'txn' ? [...i.then, ...i.else] : [i];
    for (const s of branches) if (s.t === 'put') written.add(`${s.key}=${s.value}`);
    if (o.output?.rev === undefined) continue;
    const subs = i.t === 'txn' ? (o.output.succeeded ? i.then : i.else) : [i];
    for (const s of subs) {
      if (s.t !== 'put') continue;
      const e = byRevKey.get(`${o.output.rev} ${s.key}`);
      if (e === undefined || e.type !== 'PUT' || e.value !== s.value) {
        if (out.length < 5) out.push(`acknowledged put ${s.key}=${s.value}@${o.output.rev} lost`);
      }
    }
  }
  const refusedPuts = new Set<string>();
  for (const o of refused) {
    const i = o.input;
    for (const s of i.t === 'txn' ? [...i.then, ...i.else] : [i]) {
      if (s.t === 'put') refusedPuts.add(`${s.key}=${s.value}`);
    }
  }
  const applied = new Map<string, number>();
  for (const e of ref) {
    if (e.type !== 'PUT' || !e.key.startsWith(kvPrefix)) continue;
    const kv = `${e.key}=${e.value}`;
    if (refusedPuts.has(kv) && out.length < 10) {
      out.push(`${kv}@${e.mod} was applied, yet its write was refused (database space ` +
        'exceeded)');
    } else if (!written.has(kv) && out.length < 10) out.push(`${kv}@${e.mod} was never written`);
    // Values are unique per put: one seen twice is a request applied twice.
    const before = applied.get(kv);
    if (before !== undefined && out.length < 10) {
      out.push(`${kv} applied twice, at ${before} and ${e.mod}`);
    }
    applied.set(kv, e.mod);
  }
  return out;
}
