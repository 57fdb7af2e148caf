import test from 'ava';
import type { Operation } from './lin/checker.js';
import type { KvInput, KvOutput } from './lin/kv-model.js';
import { checkAcknowledged, checkPrevKv, checkWatchesAgainst, runOnce, type RunSpec }
  from './lin/harness/run.js';
import type { WatchEvent, WatchResponse } from './lin/harness/traffic.js';

// A handful of short robustness runs on real members (`npm run robustness` runs long ones):
// zero violations, and each fault must leave its evidence (the killed member's pid changed,
// the term advanced after the leader was killed or paused, the process was seen stopped) —
// a run whose fault did not happen counts as a violation, so a harness that injects nothing
// fails here.
const runs: Omit<RunSpec, 'ops' | 'clients'>[] = [
  { seed: 101, members: 1, faults: ['kill-leader'] },
  { seed: 102, members: 3, faults: ['kill-leader'] },
  { seed: 103, members: 3, faults: ['pause-leader'] },
  { seed: 104, members: 3, faults: ['partition-leader'] },
  // Compactions during the traffic and the kill, snapshots every 50 entries: the members read
  // the keys at the compacted revision and a later one as the final history says.
  { seed: 105, members: 3, faults: ['kill-leader'], compact: true, snapshotCount: 50 },
];

for (const spec of runs) {
  test.serial(`robustness: ${spec.members} member(s), ${spec.faults.join(', ')}` +
    `${spec.compact === true ? ', compactions' : ''}, seed ${spec.seed}: linearizable, ` +
    'watches and leases right, members agree', async (t) => {
    const r = await runOnce({ ...spec, ops: 200, clients: 4 });
    t.log(`${r.ops} operations (${r.unknown} unknown), ${r.watchStreams} watch streams, ` +
      `${(r.ms / 1000).toFixed(1)} s; ${r.evidence.map((e) => e.detail).join('; ')}`);
    t.deepEqual(r.violations, [], `kept in ${r.dir}`);
    t.is(r.evidence.length, spec.faults.length);
    t.true(r.evidence.every((e) => e.happened));
    t.true(r.ops >= 200);
    if (spec.compact === true) t.true(r.compactions > 0 && r.compactedTo > 0);
    if (spec.faults[0]!.startsWith('kill') || spec.faults[0]!.startsWith('pause') ||
      spec.faults[0]!.startsWith('partition')) {
      const m = /term (\d+)→(\d+)/.exec(r.evidence[0]!.detail);
      t.truthy(m);
      if (spec.faults[0] !== 'kill-follower') t.true(Number(m![2]) > Number(m![1]));
    }
  });
}

// The watch checks themselves, on small event lists: each must catch what it is for.
const ev = (mod: number, key: string, value: string, prev?: [string, number]): WatchEvent =>
  ({ type: 'PUT', key, value, mod, prev: prev && { value: prev[0], mod: prev[1] } });
const ref = [ev(2, 'lin/kv/a', '1'), ev(3, 'lin/kv/a', '2', ['1', 2]), ev(3, 'lin/kv/b', '3'),
  ev(4, 'lin/kv/b', '4', ['3', 3])];
const resp = (events: WatchEvent[]): WatchResponse => ({ rev: events.at(-1)!.mod, events, at: 0 });

test('robustness checks: a watch with every event, a revision per response, passes', (t) => {
  t.deepEqual(checkWatchesAgainst(ref, [[resp(ref.slice(0, 1)), resp(ref.slice(1, 3)),
    resp(ref.slice(3))]], 4), []);
  t.deepEqual(checkPrevKv(ref), []);
});

test('robustness checks: a gap, a duplicate, a split revision and a wrong prev_kv are caught',
  (t) => {
    const gap = checkWatchesAgainst(ref, [[resp(ref.slice(0, 1)), resp(ref.slice(3))]], 4);
    t.true(gap.some((v) => v.includes('reliable')));
    const dup = checkWatchesAgainst(ref, [[resp(ref.slice(0, 3)), resp(ref.slice(2))]], 4);
    t.true(dup.some((v) => v.includes('unique')));
    const split = checkWatchesAgainst(ref, [[resp(ref.slice(0, 2)), resp(ref.slice(2))]], 4);
    t.true(split.some((v) => v.includes('atomic')));
    const badPrev = [...ref.slice(0, 3), ev(4, 'lin/kv/b', '4', ['1', 2])];
    t.is(checkPrevKv(badPrev).length, 1);
  });

test('robustness checks: an acknowledged put missing from the final history is caught', (t) => {
  const op = (key: string, value: string, rev: number): Operation<KvInput, KvOutput> =>
    ({ client: 0, call: 0, ret: 1, input: { t: 'put', key, value }, output: { rev,
      results: [{}] } });
  const ops = [op('lin/kv/a', '1', 2), op('lin/kv/a', '2', 3), op('lin/kv/b', '3', 3),
    op('lin/kv/b', '4', 4)];
  t.deepEqual(checkAcknowledged(ref, ops), []);
  t.is(checkAcknowledged(ref.filter((e) => e.mod !== 4), ops).length, 1);
  t.is(checkAcknowledged(ref, ops.slice(0, 3)).length, 1); // an event nobody wrote
  t.is(checkAcknowledged([...ref, ev(5, 'lin/kv/a', '1', ['2', 3])], ops).length, 1); // twice
});

test('robustness checks: a write refused for space (NOSPACE) that was applied is caught', (t) => {
  const op = (key: string, value: string, rev: number | undefined):
    Operation<KvInput, KvOutput> => ({ client: 0, call: 0, ret: 1, input: { t: 'put', key, value },
    output: rev === undefined ? undefined : { rev, results: [{}] } });
  const ops = [op('lin/kv/a', '1', 2), op('lin/kv/a', '2', 3), op('lin/kv/b', '3', 3)];
  const refused = [op('lin/kv/b', '4', undefined), op('lin/kv/b', '5', undefined)];
  // '5' was refused and is nowhere: fine. '4' was refused, yet the history holds it.
  t.deepEqual(checkAcknowledged(ref.filter((e) => e.mod !== 4), ops, refused), []);
  const v = checkAcknowledged(ref, ops, refused);
  t.is(v.length, 1);
  t.regex(v[0]!, /lin\/kv\/b=4@4 was applied, yet its write was refused/);
});

test('robustness patch: an unknown delete that cannot have deleted anything is dropped; one ' +
  'that may have is kept', async (t) => {
  const { patchUnknown } = await import('./lin/patch.js');
  const op = (call: number, ret: number, input: KvInput, output?: KvOutput):
    Operation<KvInput, KvOutput> => ({ client: 0, call, ret, input, output });
  const ops = [
    op(0, 1, { t: 'put', key: 'lin/kv/a', value: '1' }, { rev: 2, results: [{}] }),
    op(2, 3, { t: 'del', key: 'lin/kv/a' }, { rev: 3, results: [{ deleted: 1 }] }),
    op(4, 5, { t: 'get', key: 'lin/kv/a' }, { rev: 3, results: [{ kv: undefined }] }),
    // Called after revision 3 was shown: the only DELETE of a (at 3) is the known one's.
    op(6, Infinity, { t: 'del', key: 'lin/kv/a' }),
    // Called before: still, the DELETE at 3 is the known one's (it said deleted 1 at 3).
    op(0.5, Infinity, { t: 'del', key: 'lin/kv/a' }),
    // A key never deleted at all.
    op(6, Infinity, { t: 'del', key: 'lin/kv/b' }),
  ];
  const puts = [{ key: 'lin/kv/a', value: '1', mod: 2 }];
  const deletes = [{ key: 'lin/kv/a', mod: 3 }];
  const kept = patchUnknown(ops, puts, deletes).filter((o) => o.output === undefined);
  t.deepEqual(kept.map((o) => o.call), []);
  // Without the delete events nothing is known about deletes: every one stays.
  t.is(patchUnknown(ops, puts).filter((o) => o.output === undefined).length, 3);
  // A DELETE of a at 5 that no known delete claims: either unknown one of a may have made it.
  const more = patchUnknown(ops, [...puts, { key: 'lin/kv/a', value: '2', mod: 4 }],
    [...deletes, { key: 'lin/kv/a', mod: 5 }]).filter((o) => o.output === undefined);
  t.deepEqual(more.map((o) => o.call), [6, 0.5]);
  // Without the known delete, the DELETE at 3 is unclaimed: the late unknown one (called once
  // a get had shown revision 3) cannot have made it, the early one may have.
  const unclaimed = [ops[0]!, ...ops.slice(2)];
  const early = patchUnknown(unclaimed, puts, deletes).filter((o) => o.output === undefined);
  t.deepEqual(early.map((o) => o.call), [0.5]);
});
