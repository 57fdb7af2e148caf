import test from 'ava';
import { LeaseTimeline, RecordedLeases, ttlBounds } from './helpers/lease-time.js';

// The helpers that let lease tests tolerate a slow machine must not tolerate a wrong server:
// checked here on made-up clocks, a slow run and a fast one.

test('lease timeline: alive only while every renewal came within a TTL of the last', (t) => {
  const tl = new LeaseTimeline(2, 0); // granted by a request sent at 0 ms
  t.true(tl.aliveAt(1_999));
  t.false(tl.aliveAt(2_000), 'the deadline may be reached at 2,000');
  tl.renewed(600);
  tl.renewed(1_250);
  t.is(tl.expiresNotBeforeMs, 3_250);
  t.true(tl.aliveAt(3_249));
  t.deepEqual(tl.ttlBounds(1_900), { lo: 1, hi: 2 }, 'never 0 at 650 ms after a renewal');
  t.deepEqual(tl.ttlBounds(3_400), { lo: -1, hi: 2 });
  // A member that went down before the deadline restores the lease with its full TTL.
  tl.restarted(3_000, 3_100);
  t.true(tl.aliveAt(5_099));
  t.false(tl.aliveAt(5_100));
  // One that went down after it may have expired it: nothing is certain any more ...
  tl.restarted(9_000, 9_100);
  t.false(tl.aliveAt(9_200));
  // ... until a renewal succeeds again.
  tl.renewed(9_300);
  t.true(tl.aliveAt(9_400));
});

test('ttl bounds: etcd truncates; the bound follows from the two ends of the test\'s clock',
  (t) => {
    t.deepEqual(ttlBounds(60, 1_000, 1_300), { lo: 59, hi: 60 });
    t.deepEqual(ttlBounds(60, 1_000, 3_500), { lo: 57, hi: 60 });
    t.deepEqual(ttlBounds(2, 0, 2_000), { lo: 0, hi: 2 });
  });

const header = '{"header":{"cluster_id":"1","member_id":"2","revision":"18","raft_term":"2"}';
const etcd1234 = `${header},"ID":"1234","TTL":"59","grantedTTL":"60"}`;
const etcd1235 = `${header},"ID":"1235","TTL":"1","grantedTTL":"2"}`;
const etcdLeases = `${header},"leases":[{"ID":"1235"},{"ID":"1234"}]}`;

/** replay grants 1234 (60 s) and 1235 and 1236 (2 s) at 0 ms, as the recorded session does. */
function replay(): RecordedLeases {
  const r = new RecordedLeases();
  for (const [id, ttl] of [['1234', 60], ['1235', 2], ['1236', 2]] as const) {
    const text = `${header},"ID":"${id}","TTL":"${ttl}"}`;
    r.observe('/v3/lease/grant', 0, { status: 200, text });
  }
  return r;
}

/** same: does our answer, answered at `at` ms, compare equal with etcd's after normalise? */
function same(path: string, ours: string, theirs: string, at: number,
  status = { ours: 200, theirs: 200 }, body?: string): boolean {
  const n = replay().normalise(path, body, { status: status.ours, text: ours },
    { status: status.theirs, text: theirs }, at);
  return n.ours.status === n.theirs.status && n.ours.text === n.theirs.text;
}

test('recorded leases: a TTL within what the clock allows matches, one outside does not',
  (t) => {
    const tl = '/v3/lease/timetolive';
    t.true(same(tl, `${header},"ID":"1234","TTL":"59","grantedTTL":"60"}`, etcd1234, 300));
    t.true(same(tl, `${header},"ID":"1234","TTL":"57","grantedTTL":"60"}`, etcd1234, 2_500),
      'a slow run: 2.5 s after the grant');
    t.false(same(tl, `${header},"ID":"1234","TTL":"57","grantedTTL":"60"}`, etcd1234, 300),
      'a fast run may not lose 3 s');
    t.false(same(tl, `${header},"ID":"1234","TTL":"61","grantedTTL":"60"}`, etcd1234, 300));
    t.false(same(tl, `${header},"ID":"1234","TTL":"59","grantedTTL":"30"}`, etcd1234, 300));
    // TTL 0 is omitted (jsonpb): right only once less than a second may be left.
    t.false(same(tl, `${header},"ID":"1235","grantedTTL":"2"}`, etcd1235, 500));
    t.true(same(tl, `${header},"ID":"1235","grantedTTL":"2"}`, etcd1235, 1_500));
    // Expired: etcd's answer for a lease that is gone, but only once it may be.
    t.true(same(tl, `${header},"ID":"1235","TTL":"-1"}`, etcd1235, 2_000));
    t.false(same(tl, `${header},"ID":"1235","TTL":"-1"}`, etcd1235, 1_900));
    t.false(same(tl, `${header},"ID":"1234","TTL":"-1"}`, etcd1234, 2_000));
  });

test('recorded leases: a lease may be missing from the list only once it may have expired',
  (t) => {
    const l = '/v3/lease/leases';
    const both = `${header},"leases":[{"ID":"1235"},{"ID":"1234"}]}`;
    const one = `${header},"leases":[{"ID":"1234"}]}`;
    t.true(same(l, both, etcdLeases, 1_000));
    t.false(same(l, one, etcdLeases, 1_000));
    t.true(same(l, one, etcdLeases, 2_000));
    t.true(same(l, both, etcdLeases, 2_000));
    t.false(same(l, `${header},"leases":[{"ID":"1235"}]}`, etcdLeases, 2_000),
      '1234 (60 s) is never excused');
  });

test('recorded leases: a revoke may find the lease gone only once it may have expired', (t) => {
  const r = '/v3/lease/revoke';
  const missing = '{"error":"etcdserver: requested lease not found",' +
    '"message":"etcdserver: requested lease not found","code":5}';
  const st = { ours: 404, theirs: 200 };
  t.true(same(r, header + '}', header + '}', 500, { ours: 200, theirs: 200 }, '{"ID":1236}'));
  t.false(same(r, missing, header + '}', 1_500, st, '{"ID":1236}'));
  t.true(same(r, missing, header + '}', 2_000, st, '{"ID":1236}'));
  t.false(same(r, missing, header + '}', 2_000, st, '{"ID":1234}'), '60 s: never excused');
  t.false(same(r, '{"error":"boom","code":13}', header + '}', 2_000,
    { ours: 500, theirs: 200 }, '{"ID":1236}'), 'only lease-not-found is excused');
});
