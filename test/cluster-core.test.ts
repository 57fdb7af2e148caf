import test from 'ava';
import { stableLog } from '../actors/raft/node.js';
import { planFromFlags, planJoin } from '../src/cluster/bootstrap.js';
import { clusterIdOf, memberId64, memberIdOf } from '../src/cluster/ids.js';
import { MemberTable, type Member } from '../src/cluster/membership.js';
import { checkAdd, checkPromote, checkRemove, learnerReady } from '../src/cluster/reconfig.js';
import {
  BoundedQueue, checkHandshake, FrameDecoder, frameHeader, FrameTooLargeError, wireVersion,
} from '../src/cluster/wire.js';
import {
  Applier, mergeRanges, repartitionSnapshots, shardOf, ShardStore, type ShardSnapshot,
} from '../src/mvcc/index.js';
import type { Change } from '../src/mvcc/types.js';
import { seededRng } from '../src/raft/index.js';
import { Lessor } from '../src/lease/index.js';
import { pack, packBinFieldsApart, unpack } from '../src/runtime/codec.js';
import {
  decodeSnapshotBody, snapshotBodyParts, type SnapshotBody,
} from '../src/cluster/proposal.js';
import { ErrSnapshotCorrupt } from '../src/errors.js';
import { bodyRegions, encodeSplitBodyPrefix } from '../src/wal/index.js';
import type { LeaseId, MemberId, Revision } from '../src/types.js';
import { type HistoryChange, WatchHub } from '../src/watch/index.js';

// The cluster's pure parts: ids as etcd derives them, the peer wire (framing, handshakes,
// bounded queues), etcd's reconfiguration checks, the member table, bootstrap plans, and
// snapshot re-partitioning checked against a single-shard twin.

test('ids: member and cluster ids are etcd 3.4.23\'s (recorded), first 53 bits', (t) => {
  // A 3-member etcd 3.4.23 cluster, token "tok", answered these ids (member list).
  const urls = ['http://127.0.0.1:42301', 'http://127.0.0.1:42302', 'http://127.0.0.1:42303'];
  const etcd = [285371497858536126n, 375826134207275581n, 8029365976115444393n];
  urls.forEach((u, i) => {
    t.is(memberId64([u], 'tok'), etcd[i]!);
    t.is(memberIdOf([u], 'tok'), Number(etcd[i]! >> 11n));
  });
  t.is(clusterIdOf(etcd), Number(6504121080226401013n >> 11n));
  t.is(clusterIdOf([...etcd].reverse()), clusterIdOf(etcd), 'order does not matter');
  // The order of URLs and of --initial-cluster does not matter either.
  t.is(memberIdOf(['http://b:1', 'http://a:1'], 't'),
    memberIdOf(['http://a:1', 'http://b:1'], 't'));
  const a = planFromFlags(new Map([['x', ['http://a:1']], ['y', ['http://b:1']]]), 'x', 't');
  const b = planFromFlags(new Map([['y', ['http://b:1']], ['x', ['http://a:1']]]), 'x', 't');
  t.deepEqual(a, b);
  t.true(memberIdOf(['http://a:1'], 't', 1) !== memberIdOf(['http://a:1'], 't', 2),
    'a member added at run time mixes in the time');
});

test('bootstrap: a joining member takes its ids from the cluster, checked against its flags',
  (t) => {
    const remote: Member[] = [
      { id: 11, name: 'a', peerURLs: ['http://a:1'], clientURLs: [], isLearner: false },
      { id: 22, name: '', peerURLs: ['http://c:1'], clientURLs: [], isLearner: true },
    ];
    const flags = new Map([['a', ['http://a:1']], ['c', ['http://c:1']]]);
    const p = planJoin(flags, 'c', { clusterId: 99, members: remote });
    t.deepEqual([p.selfId, p.clusterId, p.join], [22, 99, true]);
    t.throws(() => planJoin(new Map([['c', ['http://c:1']]]), 'c',
      { clusterId: 9, members: remote }),
      { message: 'member count is unequal' });
    t.throws(() => planJoin(new Map([['a', ['http://a:1']], ['c', ['http://d:1']]]), 'c',
      { clusterId: 9, members: remote }), { message: /^unmatched member while checking PeerURLs/ });
    t.throws(() => planJoin(flags, 'a', { clusterId: 9, members: remote }),
      { message: 'member b has already been bootstrapped' });
    t.throws(() => planFromFlags(flags, 'z', 't'), { message: /couldn't find local name "z"/ });
  });

test('wire: frames cut at any chunk boundary come out whole and in order (seeded)', (t) => {
  for (let seed = 1; seed <= 200; seed++) {
    const rng = seededRng(seed);
    const bodies = Array.from({ length: 1 + Math.floor(rng() * 8) }, () =>
      new Uint8Array(Math.floor(rng() * 300)).map(() => Math.floor(rng() * 256)));
    const stream = Buffer.concat(bodies.flatMap((b) => [frameHeader(b.length), b]));
    const d = new FrameDecoder(1024);
    const out: Uint8Array[] = [];
    for (let off = 0; off < stream.length;) {
      const n = Math.min(stream.length - off, 1 + Math.floor(rng() * 40));
      out.push(...d.push(stream.subarray(off, off + n)));
      off += n;
    }
    t.deepEqual(out.map((b) => Buffer.from(b).toString('hex')),
      bodies.map((b) => Buffer.from(b).toString('hex')), `seed ${seed}`);
    t.is(d.bufferedBytes, 0);
  }
  t.throws(() => new FrameDecoder(10).push(frameHeader(11)), { instanceOf: FrameTooLargeError });
});

test('wire: a sender never removed and not known yet is accepted when it gives its peer URLs ' +
  '(etcd\'s remotes); removed ids, senders without URLs, bad URLs and a full view are refused',
(t) => {
  let room = true;
  const local = {
    selfId: 5, clusterId: 77,
    isMember: (id: number) => id === 6, isRemoved: (id: number) => id === 9,
    canAddRemote: () => room,
  };
  const urls = ['http://127.0.0.1:2380'];
  const hs = (o: object) => ({ v: wireVersion, kind: 'stream', cluster: 77, from: 7, to: 5, ...o });
  // Unknown sender: refused without URLs (an old dialer), accepted with them, on both kinds.
  t.is(checkHandshake(hs({}), local), 'SENDER_NOT_FOUND');
  t.is(checkHandshake(hs({ urls: [] }), local), 'SENDER_NOT_FOUND');
  t.is(checkHandshake(hs({ urls }), local), undefined);
  t.is(checkHandshake(hs({ kind: 'snap', urls }), local), undefined);
  // Removed stays refused for good, URLs or not; the cluster id is still checked first.
  t.is(checkHandshake(hs({ from: 9, urls }), local), 'REMOVED');
  t.is(checkHandshake(hs({ cluster: 78, urls }), local), 'CLUSTER_MISMATCH');
  // The receiver is still checked for an accepted unknown sender.
  t.is(checkHandshake(hs({ to: 4, urls }), local), 'TO_MISMATCH');
  // No id, or this member's own id, is never a remote.
  t.is(checkHandshake(hs({ from: 0, urls }), local), 'SENDER_NOT_FOUND');
  t.is(checkHandshake(hs({ from: 5, urls }), local), 'SENDER_NOT_FOUND');
  // A known member is accepted with or without URLs.
  t.is(checkHandshake(hs({ from: 6 }), local), undefined);
  t.is(checkHandshake(hs({ from: 6, urls }), local), undefined);
  // The view is full: refused as unknown.
  room = false;
  t.is(checkHandshake(hs({ urls }), local), 'SENDER_NOT_FOUND');
  t.is(checkHandshake(hs({ from: 6 }), local), undefined);
  room = true;
  // Malformed URLs make the whole handshake malformed.
  for (const bad of ['x', [1], ['not a url'], ['ftp://h:1'], Array(17).fill(urls[0]),
    [`http://h/${'a'.repeat(600)}`]]) {
    t.is(checkHandshake(hs({ urls: bad }), local), 'BAD', JSON.stringify(bad).slice(0, 40));
  }
});

test('wire: handshakes are refused as etcd refuses them, in etcd\'s order', (t) => {
  const local = {
    selfId: 5, clusterId: 77,
    isMember: (id: number) => id === 6, isRemoved: (id: number) => id === 9,
  };
  const hs = (o: object) => ({ v: wireVersion, kind: 'stream', cluster: 77, from: 6, to: 5, ...o });
  t.is(checkHandshake(hs({}), local), undefined);
  t.is(checkHandshake(hs({ v: 2 }), local), 'VERSION');
  t.is(checkHandshake(hs({ cluster: 78, from: 9 }), local), 'CLUSTER_MISMATCH');
  t.is(checkHandshake(hs({ from: 9 }), local), 'REMOVED');
  t.is(checkHandshake(hs({ from: 7 }), local), 'SENDER_NOT_FOUND');
  t.is(checkHandshake(hs({ to: 4 }), local), 'TO_MISMATCH');
  t.is(checkHandshake(hs({ kind: 'join', cluster: 0, from: 0, to: 0 }), local), undefined);
  t.is(checkHandshake({ v: 1, kind: 'stream' }, local), 'BAD');
  t.is(checkHandshake('hello', local), 'BAD');
  const q = new BoundedQueue<number>(2);
  t.true(q.push(1));
  t.true(q.push(2));
  t.false(q.push(3));
  t.is(q.dropped, 1);
  q.clear();
  t.is(q.dropped, 3);
  t.is(q.length, 0);
});

function member(id: number, o: Partial<Member> = {}): Member {
  return { id, name: `m${id}`, peerURLs: [`http://m${id}:1`], clientURLs: [], isLearner: false,
    ...o };
}

test('reconfig: etcd\'s strict checks refuse changes that could lose quorum', (t) => {
  const view = (members: Member[], connected: number[], selfId = 1) => ({
    selfId, members, nowMs: 100_000, healthIntervalMs: 5_000,
    connectedSince: (id: number) => (connected.includes(id) ? 0 : undefined),
  });
  const three = [member(1), member(2), member(3)];
  t.is(checkAdd(view(three, [2, 3]), false), undefined);
  t.is(checkAdd(view(three, [2]), false), 'UNHEALTHY', 'a voter not connected');
  t.is(checkAdd(view(three, [2, 3]), true), undefined);
  // Two of three voters never started: a 4th voter would need 3 started.
  const unstarted = [member(1), member(2, { name: '' }), member(3, { name: '' })];
  t.is(checkAdd(view(unstarted, [2, 3]), false), 'NOT_ENOUGH_STARTED');
  t.is(checkAdd(view(unstarted, [2, 3]), true), undefined, 'a learner counts toward nothing');
  t.is(checkAdd(view([member(1)], []), false), undefined, 'a lone member may grow');
  // Removing a member that is down is safe; removing a live one needs a connected quorum left.
  t.is(checkRemove(view(three, [2]), 3), undefined);
  t.is(checkRemove(view(three, [2]), 2), 'UNHEALTHY');
  t.is(checkRemove(view(three, [2, 3]), 2), undefined);
  t.is(checkRemove(view([...three, member(4, { isLearner: true })], []), 4), undefined);
  t.is(checkPromote(view([...three, member(4, { isLearner: true })], [2, 3])), undefined);
  t.is(checkPromote(view([...three, member(4, { isLearner: true })], [2])), 'UNHEALTHY');
  t.true(learnerReady(90, 100));
  t.false(learnerReady(89, 100));
  // Connected, but for less than the health interval: not yet healthy.
  const fresh = { ...view(three, [2, 3]), connectedSince: () => 99_000 };
  t.is(checkAdd(fresh, false), 'UNHEALTHY');
});

test('membership: the table applies changes and travels in snapshots', (t) => {
  const m = new MemberTable();
  m.add(member(1, { name: '' }));
  m.add(member(2, { isLearner: true }));
  m.publish(1, 'one', ['http://c1:2379']);
  m.add(member(1, { name: '' })); // a bootstrap entry applied again keeps the published name
  t.is(m.get(1)!.name, 'one');
  t.deepEqual(m.voters(), [1]);
  m.promote(2);
  t.deepEqual(m.voters(), [1, 2]);
  m.remove(2);
  t.true(m.isRemoved(2));
  t.false(m.has(2));
  m.updatePeerUrls(1, ['http://new:1']);
  t.is(m.memberOfPeerUrl('http://new:1')!.id, 1);
  const back = MemberTable.fromJson(JSON.parse(JSON.stringify(m.toJson())));
  t.deepEqual(back.toJson(), m.toJson());
});

/** splitBodyOf is a snapshot body of the shards' dumps, as a member writes it (parts). */
function splitBodyOf(shards: readonly ShardStore[]): Uint8Array[] {
  const pieces = shards.map((s) => {
    const { valueBytes, ...dump } = s.toSnapshotPieces(64);
    return { dump: packBinFieldsApart(dump), values: valueBytes };
  });
  const meta = {
    revision: shards[0]!.currentRevision, compactRevision: 0, leases: [],
    confState: { voters: [1 as MemberId], learners: [] },
  };
  return snapshotBodyParts(meta, pieces.map((p) => p.dump), pieces.map((p) => p.values));
}

test('snapshot body: the values apart from the dumps, read whole or in two regions; regions ' +
  'that do not add up are refused', (t) => {
  const shards = [new ShardStore(), new ShardStore()];
  const applier = Applier.fromLatest([], 1 as Revision, 0 as Revision, []);
  for (let i = 0; i < 50; i++) {
    const res = applier.execute({ type: 'put', key: `k${i}`, value: `value ${i} `.repeat(i % 5) });
    const parts: Change[][] = [[], []];
    for (const c of res.changes) parts[shardOf(c.kv.key, 2)]!.push(c);
    shards.forEach((s, j) => s.apply(res.revision as Revision, parts[j]!));
  }
  const whole = Buffer.concat(splitBodyOf(shards));
  const regions = bodyRegions(whole);
  const split = whole.length - regions.tail!.length;
  for (const body of [decodeSnapshotBody(whole),
    decodeSnapshotBody(whole.subarray(0, split), whole.subarray(split))]) {
    t.is(body.revision, 51);
    t.deepEqual(body.valueRegions, body.shardValues!.map((v) => v.length));
    body.shards.forEach((d, j) => {
      const restored = ShardStore.fromSnapshot(unpack(d), false, body.shardValues![j]);
      t.deepEqual([...restored.latest()], [...shards[j]!.latest()]);
      // Its values come apart or not at all: given twice, or missing, is corrupt.
      t.throws(() => ShardStore.fromSnapshot(unpack(d)), { instanceOf: ErrSnapshotCorrupt });
    });
  }
  const full = unpack<SnapshotBody>(regions.head);
  const withRegions = (valueRegions: unknown) => {
    const head = pack({ ...full, valueRegions });
    return Buffer.concat([encodeSplitBodyPrefix(head.length), head, regions.tail!]);
  };
  const total = regions.tail!.length;
  for (const bad of [[total], [total, 1], [total - 1, 0], [-1, total + 1], 'x', undefined]) {
    t.throws(() => decodeSnapshotBody(withRegions(bad)), { instanceOf: ErrSnapshotCorrupt },
      JSON.stringify(bad));
  }
  t.notThrows(() => decodeSnapshotBody(withRegions([total - 3, 3])));
  // A body written before the split (its dumps hold their values) decodes as it always did.
  const old = pack({ ...full, valueRegions: undefined,
    shards: shards.map((s) => pack(s.toSnapshot())) });
  const legacy = decodeSnapshotBody(old);
  t.is(legacy.shardValues, undefined);
  t.deepEqual([...ShardStore.fromSnapshot(unpack(legacy.shards[1]!)).latest()],
    [...shards[1]!.latest()]);
  t.throws(() => decodeSnapshotBody(pack({ ...full, valueRegions: [total] })),
    { instanceOf: ErrSnapshotCorrupt }, 'value regions without a tail');
});

test('repartition: dumps of N shards re-split into M read like one store (seeded)', (t) => {
  for (let seed = 1; seed <= 30; seed++) {
    const rng = seededRng(seed);
    const n = 1 + Math.floor(rng() * 4);
    const m = 1 + Math.floor(rng() * 5);
    const applier = Applier.fromLatest([], 1 as Revision, 0 as Revision, []);
    const one = new ShardStore();
    const shards = Array.from({ length: n }, () => new ShardStore());
    const key = () => `k${Math.floor(rng() * 20)}`;
    let compacted = 0;
    for (let step = 0; step < 120; step++) {
      const r = rng();
      let res;
      if (r < 0.6) res = applier.execute({ type: 'put', key: key(), value: `v${step}` });
      else if (r < 0.8) res = applier.execute({ type: 'deleteRange', key: key() });
      else {
        res = applier.execute({
          type: 'txn', compare: [], failure: [],
          success: [0, 1, 2].map((i) => ({ type: 'put' as const, key: `t${i}${key()}`,
            value: `x${step}` })),
        });
      }
      if (res.changes.length === 0) continue;
      const rev = res.revision as Revision;
      one.apply(rev, res.changes);
      const parts: Change[][] = shards.map(() => []);
      for (const c of res.changes) parts[shardOf(c.kv.key, n)]!.push(c);
      shards.forEach((s, i) => s.apply(rev, parts[i]!));
      if (rng() < 0.05 && rev > compacted + 5) {
        compacted = rev - 3;
        one.compact(compacted as Revision);
        for (const s of shards) s.compact(compacted as Revision);
      }
    }
    // Even seeds: the dumps as they are; odd: through a snapshot body that keeps their values
    // apart, as a member writes its snapshot files (snapshotBodyParts).
    let moved: ShardStore[];
    if (seed % 2 === 0) {
      const dumps = shards.map((s) => unpack<ShardSnapshot>(pack(s.toSnapshot())));
      moved = repartitionSnapshots(dumps, m).map((d) => ShardStore.fromSnapshot(d));
    } else {
      const body = decodeSnapshotBody(Buffer.concat(splitBodyOf(shards)));
      t.is(body.shardValues!.length, n);
      moved = repartitionSnapshots(body.shards.map((d) => unpack(d)), m, body.shardValues)
        .map((d) => ShardStore.fromSnapshot(d));
    }
    for (const [i, s] of moved.entries()) {
      for (const k of s.latest()) {
        t.is(shardOf(k.key, m), i, `seed ${seed}: ${k.key} in shard ${i}`);
      }
    }
    const req = { type: 'range' as const, key: '\0', rangeEnd: '\xff' };
    for (let rev = Math.max(compacted, 1); rev <= one.currentRevision; rev++) {
      const want = one.range(req, rev as Revision);
      const got = mergeRanges(req, moved.map((s) => s.range(req, rev as Revision)));
      t.deepEqual(got.kvs, want.kvs, `seed ${seed} (${n}→${m}) at revision ${rev}`);
    }
    const from = Math.max(compacted, 1) as Revision;
    const events = (cs: Change[]) => cs.map((c) => `${c.kv.modRevision}:${c.kind}:${c.kv.key}`)
      .sort();
    t.deepEqual(events(moved.flatMap((s) => s.history(from, one.currentRevision, '\0', '\xff'))),
      events(one.history(from, one.currentRevision, '\0', '\xff')), `seed ${seed} history`);
  }
});

test('watch: a follower\'s store jumping ahead (snapshot installed) resyncs synced watchers ' +
  'from history, with no gap and no duplicate', (t) => {
  const hub = new WatchHub();
  hub.recover(1, 0);
  const put = (rev: number, key: string): HistoryChange => ({
    revision: rev,
    change: {
      kind: 'put',
      kv: { key, value: `v${rev}`, modRevision: rev as Revision, createRevision: rev as Revision,
        version: 1, lease: 0 as LeaseId },
    },
  });
  const id = hub.create(1, { key: 'a', rangeEnd: 'b' });
  hub.onChanges(2, [put(2, 'a1').change]);
  // The snapshot brings revisions 3..5 without their changes reaching the hub.
  hub.recover(5, 0);
  t.true(hub.hasUnsynced);
  const req = hub.nextSync()!;
  t.deepEqual([req.fromRevision, req.toRevision], [3, 5]);
  hub.applyHistory(req.pass, [put(3, 'a3'), put(4, 'b4'), put(5, 'a5')], 5);
  t.false(hub.hasUnsynced);
  hub.onChanges(6, [put(6, 'a6').change]);
  const revisions = hub.drain().flatMap((d) => d.responses)
    .filter((r) => r.watchId === id).flatMap((r) => r.events.map((e) => e.kv.modRevision));
  t.deepEqual(revisions, [2, 3, 5, 6]);
});

test('lease: a new leader starts a lease from its checkpointed remaining TTL; a keep-alive ' +
  'clears the checkpoint', (t) => {
  const leader = new Lessor({ rng: seededRng(1) });
  const follower = new Lessor({ rng: seededRng(2) });
  for (const l of [leader, follower]) l.grant(7, 10, 0);
  leader.promote(0);
  t.deepEqual(leader.checkpoints(0, 10), [], 'a lease at its full TTL needs no checkpoint');
  const cps = leader.checkpoints(4_000, 10);
  t.deepEqual(cps, [{ id: 7, remainingSeconds: 6 }]);
  for (const c of cps) follower.checkpoint(c.id, c.remainingSeconds);
  // The leader dies; the follower takes over at t = 5,000 with 6 s left, not 10.
  follower.promote(5_000);
  t.deepEqual(follower.expired(10_999), []);
  t.deepEqual(follower.expired(11_000), [7]);
  // A keep-alive renews the full TTL; the shell then replicates a cleared checkpoint.
  const other = new Lessor({ rng: seededRng(3) });
  other.grant(8, 10, 0);
  other.checkpoint(8, 3);
  other.promote(0);
  t.true(other.hasCheckpoint(8));
  t.is(other.renew(8, 1_000), 10);
  other.checkpoint(8, 0);
  t.false(other.hasCheckpoint(8));
  other.demote();
  other.promote(2_000);
  t.deepEqual(other.expired(11_999), []);
  t.deepEqual(other.expired(12_000), [8]);
});

test('raft shell: a log recovered after a snapshot install drops the stale suffix whose ' +
  'terms go backwards', (t) => {
  const e = (index: number, term: number) => ({ index, term });
  // Snapshot at term 3; the member crashed before the leader's entries replaced its own
  // (term 2) after the snapshot index.
  t.deepEqual(stableLog([e(110, 2), e(111, 2)], 3), []);
  t.deepEqual(stableLog([e(110, 3), e(111, 4), e(112, 2)], 3), [e(110, 3), e(111, 4)]);
  t.deepEqual(stableLog([e(1, 1), e(2, 1), e(3, 2)], 0), [e(1, 1), e(2, 1), e(3, 2)]);
});
