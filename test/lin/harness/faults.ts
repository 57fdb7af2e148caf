import { readFileSync } from 'node:fs';
import { type Cluster, electionMs, leaderOf, type Member, sleep, status, waitFor } from
  './cluster.js';
import { post, type Rng } from './traffic.js';

/**
 * faults (robustness harness): process-level faults on a running cluster, each returning the
 * evidence that it really happened — a harness that injects nothing must not pass.
 *
 *   kill-leader, kill-follower, kill-all   SIGKILL, then a restart from the same data dir
 *   pause-leader, pause-follower           SIGSTOP for 3 election timeouts, then SIGCONT
 *   partition-leader                       the leader cut off from every other member, both
 *                                          ways, for 3 election timeouts (peer-fault hook)
 *   drop-leader-out                        asymmetric: the leader's messages to the others
 *                                          are dropped, theirs to it still arrive
 *   move-leader                            transfer-leadership to a follower
 *   member-replace                         remove a follower, wipe it, add it back as new
 *   failpoint:NAME=ACTION                  restart one member with GOFAIL_FAILPOINTS naming
 *                                          it; when the failpoint crashes the process, start
 *                                          it again without (any name: later ones work too);
 *                                          one that does not fire within failpointWaitMsMax
 *                                          fails the run (it injected nothing); a full disk
 *                                          (return("ENOSPC"|"EDQUOT"|"EFBIG")) leaves a
 *                                          NOSPACE alarm, replicated as in etcd: once the
 *                                          member is back, the harness disarms it (etcdctl
 *                                          alarm disarm: list, then DEACTIVATE each) and
 *                                          the fault counts only if a write is taken again
 */

/** faultKinds lists the fault names (failpoint:… is open-ended). */
export const faultKinds = ['kill-leader', 'kill-follower', 'kill-all', 'pause-leader',
  'pause-follower', 'partition-leader', 'drop-leader-out', 'move-leader', 'member-replace'];

/** holdMs is how long a pause or a partition lasts: 3 election timeouts. */
export const holdMs = 3 * electionMs;
/** failpointHoldMs is how long a member runs with a failpoint on; one that has not fired by
 * then gets up to failpointWaitMsMax in all (a snapshot point needs --snapshot-count entries
 * first, which a loaded machine takes longer to write). */
export const failpointHoldMs = 3_000;
/** failpointWaitMsMax: see failpointHoldMs. */
export const failpointWaitMsMax = 20_000;

/** spaceErrnos: the errors of a full disk, after which a NOSPACE alarm must be disarmed. */
const spaceErrnos = /return\("?(ENOSPC|EDQUOT|EFBIG)"?\)/;
/** disarmMsMax bounds the disarm and the write that shows writes resumed. */
export const disarmMsMax = 20_000;
/** probeKey is written to show that writes resumed. Under `lin/` (outside the checked keys,
 * `lin/kv/`): the run's last revision may be this write, and the final history is read by a
 * watch on `lin/` up to that revision (a key elsewhere made it wait for ever). */
const probeKey = Buffer.from('lin/probe').toString('base64');

/**
 * disarmNoSpace does what an operator does once space is back: lists the alarms, disarms
 * every NOSPACE (etcdctl alarm disarm), and writes; until a write is taken, within
 * disarmMsMax (a NOSPACE the full member asked another to record may land after a disarm:
 * it is disarmed at the next round). Says what it did, or undefined when writes never
 * resumed.
 */
async function disarmNoSpace(c: Cluster): Promise<string | undefined> {
  const disarmed = new Set<string>();
  let refusals = 0;
  let n = 0;
  const ok = await waitFor(async () => {
    const m = (await leaderOf(c, 2_000))?.leader ?? c.live()[0];
    if (m === undefined) return undefined;
    const list = await post(m.url, '/v3/maintenance/alarm', { action: 'GET' });
    if (list?.status !== 200) return undefined;
    for (const a of (list.json.alarms ?? []) as { memberID: string; alarm: string }[]) {
      if (a.alarm !== 'NOSPACE') continue;
      const r = await post(m.url, '/v3/maintenance/alarm', { action: 'DEACTIVATE',
        memberID: a.memberID, alarm: 'NOSPACE' });
      if (r?.status === 200) disarmed.add(a.memberID);
    }
    const p = await post(m.url, '/v3/kv/put', { key: probeKey,
      value: Buffer.from(String(n++)).toString('base64') });
    if (p?.status === 200) return true;
    if (p?.status === 429) refusals++;
    return undefined;
  }, disarmMsMax);
  return ok === undefined ? undefined : `NOSPACE disarmed for ${disarmed.size === 0 ? 'none'
    : [...disarmed].join(', ')} (listed after the restart), writes taken again after ` +
    `${refusals} refusal(s)`;
}

/** Evidence says what a fault did; `happened` false fails the run. */
export interface Evidence { fault: string; happened: boolean; detail: string; start: number;
  end: number }

/** checkFault says why a fault cannot run on `members` members (undefined: it can). */
export function checkFault(f: string, members: number): string | undefined {
  // A bare name enables nothing (GOFAIL_FAILPOINTS needs NAME=ACTION): refuse it.
  if (f.startsWith('failpoint:')) return /^failpoint:[^=]+=.+$/.test(f) ? undefined
    : `${f}: a failpoint needs a name and an action (failpoint:NAME=ACTION)`;
  if (!faultKinds.includes(f)) return `unknown fault ${f} (known: ${faultKinds.join(', ')}, ` +
    'failpoint:NAME=ACTION)';
  const needsPeers = ['kill-follower', 'pause-follower', 'partition-leader', 'drop-leader-out',
    'move-leader', 'member-replace'];
  if (members < 3 && needsPeers.includes(f)) return `${f} needs 3 or more members`;
  return undefined;
}

/** procState reads a process's state letter from /proc (T: stopped). */
function procState(pid: number): string {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return s.slice(s.lastIndexOf(')') + 2, s.lastIndexOf(')') + 3);
  } catch {
    return '?';
  }
}

/** restart starts a killed member again; false when it does not come back. */
async function restart(c: Cluster, m: Member): Promise<boolean> {
  try {
    await c.start(m);
    return true;
  } catch {
    return false;
  }
}

/** peerFault sets a member's dropped peers through the test hook. */
async function peerFault(m: Member, body: { drop: string[]; dropOut?: string[] }):
  Promise<boolean> {
  const r = await post(m.url, '/debug/peer-fault', body);
  return r?.status === 200;
}

/** inject runs one fault; `t0` the run's time origin. */
export async function inject(c: Cluster, f: string, rng: Rng, t0: number): Promise<Evidence> {
  const now = () => performance.now() - t0;
  const start = now();
  const ev = (happened: boolean, detail: string): Evidence =>
    ({ fault: f, happened, detail, start, end: now() });
  const before = await leaderOf(c);
  if (before === undefined) return ev(false, 'no leader before the fault');
  const { leader, term } = before;
  const followers = c.members.filter((m) => m !== leader && m.proc !== undefined);
  const follower = followers[Math.floor(rng() * followers.length)];
  const termAfter = async () => (await leaderOf(c))?.term ?? -1;
  switch (f) {
    case 'kill-leader': case 'kill-follower': case 'kill-all': {
      const victims = f === 'kill-leader' ? [leader] : f === 'kill-follower' ? [follower!]
        : c.members.filter((m) => m.proc !== undefined);
      const pids = victims.map((m) => m.pids.at(-1)!);
      await Promise.all(victims.map((m) => c.kill(m)));
      await sleep(Math.floor(rng() * electionMs));
      const back = await Promise.all(victims.map((m) => restart(c, m)));
      const changed = victims.every((m, i) => m.pids.at(-1) !== pids[i]);
      const t2 = await termAfter();
      const termOk = f !== 'kill-leader' || t2 > term;
      return ev(back.every((x) => x) && changed && termOk,
        `killed ${victims.map((m, i) => `${m.name} pid ${pids[i]}→${m.pids.at(-1)}`).join(', ')}` +
        `; term ${term}→${t2}`);
    }
    case 'pause-leader': case 'pause-follower': {
      const m = f === 'pause-leader' ? leader : follower!;
      const pid = m.pids.at(-1)!;
      c.signal(m, 'SIGSTOP');
      m.paused = true;
      await sleep(50);
      const stopped = procState(pid) === 'T';
      await sleep(holdMs);
      c.signal(m, 'SIGCONT');
      m.paused = false;
      const t2 = await termAfter();
      // One member has no one to elect: its pause shows only as the stopped state.
      const termOk = f !== 'pause-leader' || c.members.length === 1 || t2 > term;
      return ev(stopped && termOk, `${m.name} pid ${pid} stopped ${holdMs} ms (state ` +
        `${stopped ? 'T' : 'not T'}); term ${term}→${t2}`);
    }
    case 'partition-leader': case 'drop-leader-out': {
      const others = c.members.filter((m) => m !== leader && m.proc !== undefined);
      const ids = others.map((m) => m.id);
      let ok: boolean;
      if (f === 'partition-leader') {
        ok = await peerFault(leader, { drop: ids });
        for (const m of others) ok = (await peerFault(m, { drop: [leader.id] })) && ok;
      } else {
        ok = await peerFault(leader, { drop: [], dropOut: ids });
      }
      // The others elect a leader of their own while the old one is cut off.
      const elected = await waitFor(async () => {
        const sts = await Promise.all(others.map((m) => status(m.url)));
        return sts.some((s) => s !== undefined && s.term > term && s.leader !== '' &&
          s.leader !== leader.id) ? true : undefined;
      }, 10 * holdMs);
      await sleep(holdMs);
      for (const m of [leader, ...others]) ok = (await peerFault(m, { drop: [] })) && ok;
      const t2 = await termAfter();
      return ev(ok && elected === true && t2 > term,
        `${leader.name} cut off from ${others.map((m) => m.name).join(', ')}` +
        `${f === 'drop-leader-out' ? ' (its messages out only)' : ''}; term ${term}→${t2}`);
    }
    case 'move-leader': {
      const to = follower!;
      // A transfer only goes to a member that has caught up (Raft thesis §3.10; etcd waits
      // for it, then gives up after an election timeout): a member just added or restarted
      // may be far behind, so wait until it has applied what the leader has, within a bound.
      await waitFor(async () => {
        const [a, b] = await Promise.all([status(leader.url), status(to.url)]);
        return a !== undefined && b !== undefined && b.applied >= a.applied ? true : undefined;
      }, 10_000);
      // etcd answers a transfer once the leader changed, or after its request timeout
      // (5 s + 2 election timeouts): wait longer than that before calling the outcome unknown.
      const r = await post(leader.url, '/v3/maintenance/transfer-leadership',
        { targetID: to.id }, 15_000);
      const after = await waitFor(async () => {
        const l = await leaderOf(c);
        return l !== undefined && l.leader !== leader ? l : undefined;
      }, 10_000);
      return ev(r?.status === 200 && after?.leader === to,
        `transfer ${leader.name}→${to.name}: ${r?.status}; leader now ${after?.leader.name}`);
    }
    case 'member-replace': {
      const m = follower!;
      const oldId = m.id;
      // etcd (and MyEtcd) refuse a membership change until every member has been connected
      // for a while ("unhealthy cluster", 503): ask again until it is taken, within a bound.
      const rm = await waitFor(async () => {
        const l = await leaderOf(c, 2_000);
        const r = await post(l?.leader.url ?? leader.url, '/v3/cluster/member/remove',
          { ID: oldId });
        return r?.status === 200 ? r : undefined;
      }, 15_000);
      if (rm === undefined) return ev(false, `${m.name}: member remove refused for 15 s`);
      await c.kill(m);
      const { rm: rmrf } = await import('node:fs/promises');
      await rmrf(m.dataDir, { recursive: true, force: true });
      // The add is refused the same way while a member's connection is younger than the
      // health interval (one restarted by an earlier fault): ask again, as for the remove.
      let add: Awaited<ReturnType<typeof post>>;
      await waitFor(async () => {
        add = await post((await leaderOf(c, 2_000))?.leader.url ?? leader.url,
          '/v3/cluster/member/add', { peerURLs: [m.peerUrl] });
        return add?.status === 200 || (add !== undefined && add.status !== 503) ? true
          : undefined;
      }, 15_000);
      const live = c.members.filter((x) => x !== m);
      m.initialCluster = [...live, m].map((x) => `${x.name}=${x.peerUrl}`).join(',');
      m.state = 'existing';
      const back = add?.status === 200 && await restart(c, m);
      const st = back ? await waitFor(() => status(m.url), 10_000) : undefined;
      if (st !== undefined) m.id = st.id;
      return ev(rm?.status === 200 && back && st !== undefined && st.id !== oldId,
        `${m.name} removed (id ${oldId}): ${rm?.status}; added back: ${add?.status} ` +
        `${add?.status === 200 ? '' : JSON.stringify(add?.json)}; ` +
        `new id ${st?.id}`);
    }
    default: {
      // failpoint:NAME=ACTION — restart a member with the failpoint on.
      const name = f.slice('failpoint:'.length);
      const m = c.members.length > 1 ? (rng() < 0.5 ? leader : follower!) : leader;
      const pid0 = m.pids.at(-1)!;
      const point = name.slice(0, name.indexOf('='));
      m.firedPoints.delete(point);
      await c.kill(m);
      const up = await c.start(m, [name], true);
      const exited = m.exited!;
      let holding = true;
      const held = (async () => {
        await sleep(failpointHoldMs);
        const t = performance.now();
        // Until the point fires, the member exits (the race below is over) or the bound.
        while (holding && !m.firedPoints.has(point) &&
          performance.now() - t < failpointWaitMsMax - failpointHoldMs) await sleep(100);
        return 'running';
      })();
      // A snapshot point fires only after --snapshot-count more entries: filler writes
      // (lin/fill/, which no checked operation names) bring them while the traffic alone is
      // slow (a loaded machine) or already over.
      const filling = /snap/i.test(point) ? fill(c, m, () => holding) : Promise.resolve();
      const how = await Promise.race([exited, held]);
      holding = false;
      await filling;
      // An exit with a code before serving is the server refusing GOFAIL_FAILPOINTS (an
      // unknown point or action: CONFIG_INVALID), not the point firing. A point that sleeps or
      // returns an error leaves the member running: its logged hits are the evidence.
      const refused = up === '' && /^\d+$/.test(how);
      const fired = how === 'running' ? m.firedPoints.has(point) : !refused;
      if (how === 'running') await c.kill(m);
      const back = await restart(c, m);
      // A full disk: the NOSPACE alarm stays until disarmed, and writes must resume then.
      const full = spaceErrnos.test(name);
      const resumed = full && back ? await disarmNoSpace(c) : undefined;
      // A failpoint that did not fire injected nothing: no evidence, the run fails.
      return ev(fired && back && m.pids.length >= 3 && m.pids.at(-1) !== pid0 &&
        (!full || resumed !== undefined),
        `${m.name} restarted with GOFAIL_FAILPOINTS=${name}: ` +
        `${fired ? `fired (${how === 'running' ? 'logged its hits' : `exit ${how}`})`
          : refused ? `refused (exit ${how}, see the log)` : 'did not fire'}; ` +
        `pids ${m.pids.slice(-3).join('→')}` +
        (full ? `; ${resumed ?? `writes not taken within ${disarmMsMax} ms of the disarm`}`
          : ''));
    }
  }
}

/** fillerPrefix: filler keys under lin/, so that the final history read by watch ends at the
 * last revision even when a filler write made it (no operation of the checked history
 * names them). */
const fillerPrefix = 'lin/fill/';

/** fill writes small keys under fillerPrefix, four at a time, through the members other than
 * `m` (the one with the failpoint), while `going()`. */
async function fill(c: Cluster, m: Member, going: () => boolean): Promise<void> {
  let n = 0;
  await Promise.all([0, 1, 2, 3].map(async () => {
    while (going()) {
      const others = c.live().filter((x) => x !== m);
      const to = others[n % Math.max(1, others.length)];
      const key = Buffer.from(`${fillerPrefix}${n++ % 64}`).toString('base64');
      if (to === undefined || await post(to.url, '/v3/kv/put', { key, value: '' }) ===
        undefined) await sleep(50);
    }
  }));
}
