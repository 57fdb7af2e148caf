/**
 * Seeded runs of 3 or 5 members' real Raft nodes (actors/raft) and gateways (KvService) in one
 * process, over a simulated network that drops and delays, with partitions and crashes that
 * lose whatever the WAL had not answered (test/helpers/cluster-sim.ts). Checked:
 *
 * - no acknowledged write is lost: after healing, every member's history holds it, at the
 *   revision it was acknowledged with;
 * - linearizable reads: a read that starts after a write was acknowledged sees it or a later
 *   version;
 * - state machine safety: after healing, every member has applied the same revisions to the
 *   same keys and values;
 * - liveness: after healing, a write through every member is acknowledged.
 *
 *   CLUSTER_SIM_SEEDS=n  number of seeds (default 12); CLUSTER_SIM_SEED=n replays one.
 */
import test from 'ava';
import { type RaftMsg, readPointFields } from '../actors/raft/messages.js';
import { SharedCell } from '../src/runtime/shared-cell.js';
import type { KeyValue } from '../src/mvcc/types.js';
import { seededRng } from '../src/raft/index.js';
import type { Revision } from '../src/types.js';
import { Scheduler, SimCluster } from './helpers/cluster-sim.js';

const chaosMs = 1_500;
const settleMs = 1_500;

interface Acked {
  key: string;
  value: string;
  revision: number;
}

async function runSeed(seed: number): Promise<{ failures: string[]; summary: string }> {
  const rng = seededRng(seed);
  const sched = new Scheduler();
  const n = seed % 3 === 0 ? 5 : 3;
  const c = new SimCluster({
    size: n, rng, sched, dropP: rng() * 0.1, delayMsMax: 1 + rng() * 6, shardCount: 2,
    snapshotCount: 10 + Math.floor(rng() * 30),
  });
  const failures: string[] = [];
  const acked: Acked[] = [];
  /** lastAcked: per key, the newest acknowledged revision (reads must see at least it). */
  const lastAcked = new Map<string, number>();
  let reads = 0;
  let transfers = 0;
  let counter = 0;
  for (let i = 0; i < n; i++) c.start(i);
  const up = () => c.members.filter((m) => m.up && m.kv !== undefined);
  const clientOp = () => {
    const live = up();
    if (live.length === 0) return;
    const m = live[Math.floor(rng() * live.length)]!;
    const key = `k${Math.floor(rng() * 8)}`;
    if (rng() < 0.6) {
      const value = `${seed}-${counter++}`;
      m.kv!.write({ type: 'put', key, value }).then((r) => {
        const revision = r.header.revision;
        acked.push({ key, value, revision });
        if (revision > (lastAcked.get(key) ?? 0)) lastAcked.set(key, revision);
      }, () => undefined);
    } else {
      const mustSee = lastAcked.get(key) ?? 0;
      m.kv!.range({ type: 'range', key }).then((r) => {
        reads++;
        const got = r.response.kvs[0]?.modRevision ?? 0;
        if (got < mustSee) {
          failures.push(`seed ${seed}: read of ${key} on s${m.id} saw revision ${got}, ` +
            `but ${mustSee} was acknowledged before the read started`);
        }
      }, () => undefined);
    }
  };
  const schedule = (at: number) => {
    if (at > chaosMs) return;
    sched.at(at, () => {
      clientOp();
      schedule(at + 1 + rng() * 4);
    });
  };
  schedule(50);
  // Faults: crashes and restarts (a minority down at most), partitions that cut a minority
  // off, leader transfers asked of a random member.
  const minority = Math.floor((n - 1) / 2);
  for (let t = 150; t < chaosMs; t += 60 + rng() * 120) {
    sched.at(t, () => {
      const r = rng();
      const down = c.members.map((m, i) => (m.up ? -1 : i)).filter((i) => i >= 0);
      if (r < 0.25 && down.length < minority) {
        const live = c.members.map((m, i) => (m.up ? i : -1)).filter((i) => i >= 0);
        c.crash(live[Math.floor(rng() * live.length)]!);
      } else if (r < 0.45 && down.length > 0) {
        c.start(down[Math.floor(rng() * down.length)]!);
      } else if (r < 0.65) {
        c.cut.clear();
        const ids = Array.from({ length: n }, (_, i) => i + 1).sort(() => rng() - 0.5);
        const side = new Set(ids.slice(0, 1 + Math.floor(rng() * minority)));
        for (const a of side) {
          for (const b of ids) if (!side.has(b)) c.cut.add(a < b ? `${a}-${b}` : `${b}-${a}`);
        }
      } else if (r < 0.8) {
        c.cut.clear();
      } else {
        const live = up();
        const m = live[Math.floor(rng() * live.length)];
        if (m?.gateway !== undefined) {
          try {
            m.gateway.ref<{ type: string; to: number }, unknown>('raft')
              .ask({ type: 'RaftTransferLeader', to: 1 + Math.floor(rng() * n) })
              .then(() => { transfers++; }, () => undefined);
          } catch {
            // the member crashed meanwhile
          }
        }
      }
    });
  }
  await sched.run(chaosMs);
  // Heal everything (no partition, no loss), let it settle, then every member must take a write.
  c.cut.clear();
  c.o.dropP = 0;
  c.members.forEach((m, i) => {
    if (!m.up) c.start(i);
  });
  await sched.run(chaosMs + settleMs);
  const finals = c.members.map((m) => m.kv!.write({ type: 'put', key: 'final', value: `s${m.id}` })
    .then((r) => r.header.revision, (e: Error) => `s${m.id}: ${e.message}`));
  let settled: (number | string)[] = [];
  void Promise.all(finals).then((v) => { settled = v; });
  for (let k = 0; k < 20 && settled.length === 0; k++) {
    await sched.run(sched.nowMs + 200);
  }
  if (settled.length === 0) failures.push(`seed ${seed}: the final writes got no answer`);
  for (const s of settled) if (typeof s === 'string') failures.push(`seed ${seed}: final ${s}`);
  await sched.run(sched.nowMs + 500);
  failures.push(...c.errors.map((e) => `seed ${seed}: ${e}`));
  // Every member applied the same revisions: same latest state, same history.
  const latest = c.members.map((m) => {
    const out = new Map<string, KeyValue>();
    for (const s of m.stores) for (const kv of s.latest()) out.set(kv.key, kv);
    return { rev: m.stores[0]!.currentRevision, kvs: out };
  });
  for (const [i, l] of latest.entries()) {
    if (l.rev !== latest[0]!.rev) {
      failures.push(`seed ${seed}: s${i + 1} at revision ${l.rev}, s1 at ${latest[0]!.rev}`);
    }
    for (const [k, kv] of latest[0]!.kvs) {
      const o = l.kvs.get(k);
      if (o?.value !== kv.value || o.modRevision !== kv.modRevision) {
        failures.push(`seed ${seed}: s${i + 1} has ${k}=${o?.value}@${o?.modRevision}, ` +
          `s1 has ${kv.value}@${kv.modRevision}`);
      }
    }
  }
  // No acknowledged write is lost: each member's history has it at its revision.
  for (const m of c.members) {
    for (const a of acked) {
      let found: KeyValue | undefined;
      for (const s of m.stores) {
        found ??= s.range({ type: 'range', key: a.key }, a.revision as Revision).kvs[0];
      }
      if (found?.value !== a.value || found.modRevision !== a.revision) {
        failures.push(`seed ${seed}: acknowledged ${a.key}=${a.value}@${a.revision} is ` +
          `${found?.value}@${found?.modRevision} on s${m.id}`);
        break;
      }
    }
  }
  const s = c.stats;
  return {
    failures,
    summary: `${acked.length} writes acked, ${reads} reads, ${s.crashes} crashes, ` +
      `${transfers} leader transfers, ` +
      `${s.snapshots} snapshots sent, ${s.dropped} messages dropped`,
  };
}

test('cluster-sim: seeded runs with drops, delays, partitions and crashes keep every ' +
  'acknowledged write, read linearizably and converge', async (t) => {
  const one = process.env['CLUSTER_SIM_SEED'];
  const seeds = one !== undefined ? [Number(one)]
    : Array.from({ length: Number(process.env['CLUSTER_SIM_SEEDS'] ?? 12) }, (_, i) => i + 1);
  let writes = 0;
  let snapshots = 0;
  for (const seed of seeds) {
    const r = await runSeed(seed);
    t.log(`seed ${seed}: ${r.summary}`);
    writes += Number(r.summary.split(' ')[0]);
    if (r.summary.includes(' 0 snapshots') === false) snapshots++;
    for (const f of r.failures.slice(0, 5)) t.fail(`${f} (replay: CLUSTER_SIM_SEED=${seed})`);
  }
  // Not vacuous: the runs acknowledged writes and some sent snapshots to lagging members.
  t.true(writes > seeds.length * 50, `${writes} writes acknowledged`);
  if (seeds.length > 4) t.true(snapshots > 0, 'no seed sent a snapshot');
});

/**
 * A lone voter's linearizable reads take the read point its Raft node publishes in shared
 * memory (actors/raft/read-point.ts), with no read-index ask. Writes and reads interleave
 * while the member crashes (what its WAL had not answered is lost) and restarts from its
 * disk: every read must see every write acknowledged before it began, and the test fails if
 * the reads did not in fact take the published point.
 */
test('cluster-sim: a lone voter reads at its published read point, linearizably, across ' +
  'crashes', async (t) => {
  const seeds = [1, 2, 3];
  for (const seed of seeds) {
    const rng = seededRng(seed);
    const sched = new Scheduler();
    const c = new SimCluster({
      size: 1, rng, sched, dropP: 0, delayMsMax: 1, shardCount: 2,
      snapshotCount: 10 + Math.floor(rng() * 20),
    });
    c.start(0);
    const m = c.members[0]!;
    const lastAcked = new Map<string, number>();
    let shared = 0;
    let asked = 0;
    let reads = 0;
    let acks = 0;
    let counter = 0;
    const op = () => {
      if (!m.up || m.kv === undefined) return;
      const key = `k${Math.floor(rng() * 4)}`;
      if (rng() < 0.5) {
        m.kv.write({ type: 'put', key, value: `${counter++}` }).then((r) => {
          acks++;
          const rev = r.header.revision;
          if (rev > (lastAcked.get(key) ?? 0)) lastAcked.set(key, rev);
        }, () => undefined);
        return;
      }
      const mustSee = lastAcked.get(key) ?? 0;
      m.kv.range({ type: 'range', key }).then((r) => {
        reads++;
        const got = r.response.kvs[0]?.modRevision ?? 0;
        if (got < mustSee) {
          t.fail(`seed ${seed}: read of ${key} saw ${got}, ${mustSee} was acknowledged before`);
        }
      }, () => undefined);
    };
    for (let at = 50; at < 1_500; at += 1 + rng() * 3) sched.at(at, op);
    for (let at = 300; at < 1_500; at += 250 + rng() * 150) {
      sched.at(at, () => {
        // The counts of a boot's gateway, before it goes with the crash.
        shared += m.kv?.readPoints.shared ?? 0;
        asked += m.kv?.readPoints.asked ?? 0;
        c.crash(0);
      });
      sched.at(at + 20, () => c.start(0));
    }
    await sched.run(1_700);
    shared += m.kv?.readPoints.shared ?? 0;
    asked += m.kv?.readPoints.asked ?? 0;
    t.deepEqual(c.errors, []);
    t.log(`seed ${seed}: ${acks} writes acked, ${reads} reads (${shared} at the shared point, ` +
      `${asked} asked)`);
    t.true(acks > 50 && reads > 50, `seed ${seed}: ${acks} writes, ${reads} reads`);
    // Not vacuous: most reads took the shared point (those while a boot elects itself ask).
    t.true(shared > reads / 2, `seed ${seed}: ${shared} of ${reads} reads at the shared point`);
  }
});

test('cluster-sim: a lone voter withdraws its read point when a conf change adds a voter, ' +
  'and a crash closes it', async (t) => {
  const sched = new Scheduler();
  const c = new SimCluster({
    size: 1, rng: seededRng(7), sched, dropP: 0, delayMsMax: 1, shardCount: 1, snapshotCount: 100,
  });
  // The scheduler yields to the event loop once per event: these let the boots' messages
  // (delivered on setImmediate) move while nothing else is scheduled.
  for (let at = 0; at < 1_000; at += 2) sched.at(at, () => undefined);
  c.start(0);
  const m = c.members[0]!;
  await sched.run(300);
  const cell = new SharedCell(m.readPoint!, readPointFields);
  const out: number[] = [];
  let rev = 0;
  void m.kv!.write({ type: 'put', key: 'a', value: '1' }).then((r) => { rev = r.header.revision; });
  await sched.run(400);
  t.true(rev > 0, 'the write was acknowledged');
  t.true(cell.read(out), 'a lone leader publishes its read point');
  t.is(out[0], rev, 'at the revision of its last answered write');
  let added = false;
  void m.gateway!.ref<RaftMsg, unknown>('raft')
    .ask({ type: 'RaftMemberAdd', peerURLs: ['http://s2:1'], isLearner: false })
    .then(() => { added = true; });
  await sched.run(500);
  t.true(added, 'the conf change was applied (a lone voter commits it alone)');
  t.false(cell.read(out), 'with two voters the point is withdrawn');
  // A read now asks for a read index, which needs the new voter: it does not take the point.
  const before = m.kv!.readPoints.asked;
  void m.kv!.range({ type: 'range', key: 'a' }).catch(() => undefined);
  await sched.run(600);
  t.is(m.kv!.readPoints.asked, before + 1);

  // A second member: its crash closes its point even though the node never withdrew it.
  const c2 = new SimCluster({
    size: 1, rng: seededRng(8), sched, dropP: 0, delayMsMax: 1, shardCount: 1, snapshotCount: 100,
  });
  c2.start(0);
  await sched.run(900);
  const m2 = c2.members[0]!;
  const cell2 = new SharedCell(m2.readPoint!, readPointFields);
  t.true(cell2.read(out), 'the second lone leader publishes');
  c2.crash(0);
  t.false(cell2.read(out), 'a crashed boot\'s point is closed');
});

/**
 * A lone voter applies a Ready's writes while its WAL append is in flight, and the WAL writer
 * answers them once durable. Here the append fails (a full disk) after its writes were applied
 * ahead: their clients are refused, no read ever sees them (before, during or after the
 * failure), the writes acknowledged before stay, and the member reads on at the revision of
 * the last acknowledged write. Writes come in bursts so that Readies hold several entries;
 * the test fails if the append that failed was not one applied ahead.
 */
test('cluster-sim: a lone voter takes back the writes it applied ahead of an append that ' +
  'failed, and no read sees them', async (t) => {
  for (const seed of [1, 2, 3]) {
    const rng = seededRng(seed);
    const sched = new Scheduler();
    let failedSeq: number | undefined;
    const failAfterMs = 200;
    const c: SimCluster = new SimCluster({
      size: 1, rng, sched, dropP: 0, delayMsMax: 1, shardCount: 2, snapshotCount: 1_000,
      // The first append of several entries after failAfterMs fails; so does every later one
      // (the disk stays full).
      walFault: (_m, a) => {
        if (failedSeq !== undefined) return 'ENOSPC';
        if (sched.nowMs < failAfterMs || a.entries < 2) return undefined;
        failedSeq = a.seq;
        return 'ENOSPC';
      },
    });
    c.start(0);
    const m = c.members[0]!;
    const acked = new Map<string, { value: string; rev: number }>();
    const refused = new Set<string>();
    let counter = 0;
    const put = () => {
      const key = `k${Math.floor(rng() * 6)}`;
      const value = `v${counter++}`;
      m.kv?.write({ type: 'put', key, value }).then((r) => {
        const rev = r.header.revision;
        if (rev > (acked.get(key)?.rev ?? 0)) acked.set(key, { value, rev });
      }, (e: { code?: string }) => {
        if (e.code === 'NO_SPACE') refused.add(value);
      });
    };
    let pendingReads = 0;
    let readErrors = 0;
    let statusRevisionMax = 0;
    const read = () => {
      const key = `k${Math.floor(rng() * 6)}`;
      const must = acked.get(key)?.rev ?? 0;
      pendingReads++;
      m.kv?.range({ type: 'range', key }).finally(() => pendingReads--).then((r) => {
        const kv = r.response.kvs[0];
        if ((kv?.modRevision ?? 0) < must) t.fail(`seed ${seed}: ${key} read behind an ack`);
        if (kv !== undefined && refused.has(String(kv.value))) {
          t.fail(`seed ${seed}: ${key} read ${String(kv.value)}, a refused write`);
        }
      }, () => readErrors++);
      void m.kv?.status().then((st) => {
        statusRevisionMax = Math.max(statusRevisionMax, st.revision);
      });
    };
    // Bursts of 4 writes in one millisecond, reads in between.
    for (let at = 50; at < 600; at += 3 + rng() * 3) {
      sched.at(at, () => {
        for (let i = 0; i < 4; i++) put();
      });
      sched.at(at + 1, read);
    }
    await sched.run(700);
    t.deepEqual(c.errors, []);
    t.not(failedSeq, undefined, `seed ${seed}: an append failed`);
    t.true((c.answered.get(m.id) ?? []).includes(failedSeq!),
      `seed ${seed}: the failed append's writes had been applied ahead`);
    t.true(refused.size >= 2, `seed ${seed}: ${refused.size} writes refused`);
    // After the failure: every acknowledged write is read back, and the member's revision
    // is that of the last acknowledged write.
    const keys = [...acked.keys()];
    const reads = keys.map((key) => m.kv!.range({ type: 'range', key }));
    await sched.run(sched.nowMs + 200);
    // Reads that took the read point moved ahead of the failed append were taken back at the
    // shards, and read again from the next point: all ended, none in an error.
    t.true(c.readsTakenBack > 0, `seed ${seed}: a read was taken back`);
    t.is(pendingReads, 0, `seed ${seed}: reads issued while the append failed have ended`);
    t.is(readErrors, 0, `seed ${seed}: no read failed`);
    const got = await Promise.all(reads);
    keys.forEach((key, i) => {
      t.is(String(got[i]!.response.kvs[0]?.value), acked.get(key)!.value, `seed ${seed}: ${key}`);
    });
    const maxAcked = Math.max(...[...acked.values()].map((a) => a.rev));
    t.is(Math.max(...got.map((r) => r.header.revision)), maxAcked,
      `seed ${seed}: read at the revision of the last acknowledged write`);
    // Status shows what is applied and durable: never a revision of the writes taken back.
    t.true(statusRevisionMax <= maxAcked,
      `seed ${seed}: status showed revision ${statusRevisionMax} > ${maxAcked}`);
    t.log(`seed ${seed}: ${acked.size} keys acknowledged, ${refused.size} writes refused, ` +
      `append ${failedSeq} failed, ${c.readsTakenBack} reads taken back`);
  }
});

test('cluster-sim: a write to a member that knows no leader waits for one (as etcd\'s ' +
  'proposals do), and fails with etcd\'s timeout if none comes in time', async (t) => {
  const sched = new Scheduler();
  const c = new SimCluster({
    size: 3, rng: seededRng(11), sched, dropP: 0, delayMsMax: 1, shardCount: 1,
    snapshotCount: 100, requestTimeoutMs: 2_000,
  });
  for (let at = 0; at < 10_000; at += 2) sched.at(at, () => undefined);
  for (let i = 0; i < 3; i++) c.start(i);
  const ask = async (i: number) => {
    let st: { leader: number; memberId: number } | undefined;
    void c.members[i]!.gateway!.ref<RaftMsg, { leader: number; memberId: number }>('raft')
      .ask({ type: 'RaftStatus' }).then((r) => { st = r; });
    await sched.run(sched.nowMs + 4);
    return st!;
  };
  await sched.run(600);
  const leaderId = (await ask(0)).leader;
  t.not(leaderId, 0, 'a leader was elected');
  const f = c.members.findIndex((m) => m.id !== leaderId);
  const others = [0, 1, 2].filter((i) => i !== f);
  for (const i of others) c.crash(i);
  // Alone, the follower times its leader out and campaigns in vain: it knows no leader.
  await sched.run(sched.nowMs + 600);
  t.is((await ask(f)).leader, 0, 'the survivor knows no leader');

  const outcome = (p: Promise<{ header: { revision: number } }>) => {
    const o: { rev?: number; error?: string } = {};
    p.then((r) => { o.rev = r.header.revision; }, (e: Error) => { o.error = e.message; });
    return o;
  };
  const m = c.members[f]!;
  const first = outcome(m.kv!.write({ type: 'put', key: 'w', value: 'waited' }));
  await sched.run(sched.nowMs + 300);
  t.deepEqual(first, {}, 'no answer while no leader is known (it used to fail at once)');
  c.start(others[0]!);
  await sched.run(sched.nowMs + 1_500);
  t.is(first.error, undefined);
  t.true((first.rev ?? 0) > 0, 'acknowledged once a leader was elected');
  let value: string | undefined;
  void m.kv!.range({ type: 'range', key: 'w' }).then((r) => {
    value = r.response.kvs[0]?.value;
  });
  await sched.run(sched.nowMs + 200);
  t.is(value, 'waited');

  // Without a quorum again: the write waits out its request timeout, then fails as etcd's.
  c.crash(others[0]!);
  await sched.run(sched.nowMs + 600);
  t.is((await ask(f)).leader, 0);
  const second = outcome(m.kv!.write({ type: 'put', key: 'w', value: 'lost' }));
  await sched.run(sched.nowMs + 1_900);
  t.deepEqual(second, {}, 'still waiting before its deadline');
  await sched.run(sched.nowMs + 200);
  t.is(second.error, 'etcdserver: request timed out');
  t.deepEqual(c.errors, []);
});
