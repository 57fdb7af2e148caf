import test from 'ava';
import type { Change, KeyValue } from '../src/mvcc/types.js';
import { ErrNotLeader } from '../src/errors.js';
import { leaseKeyUpdates, Lessor } from '../src/lease/index.js';
import { seededRng } from '../src/raft/index.js';

function lessor(primaryAt?: number): Lessor {
  const l = new Lessor({ rng: seededRng(42) });
  if (primaryAt !== undefined) l.promote(primaryAt);
  return l;
}

test('lease: a lease expires at its deadline and not before', (t) => {
  const l = lessor(0);
  l.grant(7, 10, 0);
  t.deepEqual(l.expired(9_999), []);
  t.deepEqual(l.expired(10_000), [7]);
  t.deepEqual(l.expired(10_500), [], 'not proposed again before the retry interval');
  t.deepEqual(l.expired(13_000), [7], 'proposed again if the revoke never applied');
  t.true(l.revoke(7));
  t.deepEqual(l.expired(100_000), []);
});

test('lease: keep-alive extends the deadline and returns the TTL', (t) => {
  const l = lessor(0);
  l.grant(7, 10, 0);
  t.is(l.renew(7, 4_000), 10);
  t.deepEqual(l.expired(10_000), []);
  t.deepEqual(l.expired(14_000), [7]);
  t.is(l.renew(99, 0), 0, 'a missing lease renews to TTL 0');
});

test('lease: timeToLive truncates remaining seconds and lists keys', (t) => {
  const l = lessor(0);
  l.grant(7, 60, 0);
  l.attach(7, 'b');
  l.attach(7, 'a');
  l.detach(7, 'b');
  t.deepEqual(l.timeToLive(7, 500), { ttlSeconds: 59, grantedTtlSeconds: 60, keys: ['a'] });
  t.is(l.timeToLive(8, 0), undefined);
});

test('lease: revoke forgets the lease', (t) => {
  const l = lessor(0);
  l.grant(7, 10, 0);
  t.true(l.revoke(7));
  t.false(l.revoke(7));
  t.deepEqual(l.list(), []);
});

test('lease: a follower never expires leases; promote restores the full TTL', (t) => {
  const l = lessor();
  l.grant(7, 10, 0);
  t.deepEqual(l.expired(1e9), []);
  t.throws(() => l.renew(7, 0), { instanceOf: ErrNotLeader, message: 'etcdserver: not leader' });
  t.is(l.timeToLive(7, 5_000)!.ttlSeconds, 10);
  l.promote(50_000);
  t.deepEqual(l.expired(59_999), []);
  t.deepEqual(l.expired(60_000), [7]);
  l.demote();
  t.deepEqual(l.expired(1e12), []);
});

test('lease: prepareGrant raises small TTLs, refuses huge ones and taken ids, picks ids', (t) => {
  const l = lessor(0);
  t.deepEqual(l.prepareGrant(5, 1), { id: 5, ttlSeconds: 2 });
  t.throws(() => l.prepareGrant(5, 9_000_000_001), { message: 'etcdserver: too large lease TTL' });
  l.grant(5, 2, 0);
  t.throws(() => l.prepareGrant(5, 60), { message: 'etcdserver: lease already exists' });
  const a = l.prepareGrant(0, 60).id;
  const b = lessor().prepareGrant(0, 60).id;
  t.true(a > 0 && Number.isSafeInteger(a));
  t.is(a, b, 'ids come from the seeded generator: same seed, same id');
});

test('lease: expired is bounded per call', (t) => {
  const l = new Lessor({ rng: seededRng(1), expiredPerCall: 3 });
  l.promote(0);
  for (let i = 1; i <= 10; i++) l.grant(i, 2, 0);
  t.is(l.expired(2_000).length, 3);
  t.is(l.expired(2_000).length, 3);
  t.is(l.expired(2_000).length, 3);
  t.is(l.expired(2_000).length, 1);
});

test('lease: many renewals keep the deadline heap bounded', (t) => {
  const l = lessor(0);
  l.grant(1, 10, 0);
  for (let i = 0; i < 100_000; i++) l.renew(1, i);
  t.deepEqual(l.expired(99_999 + 9_999), []);
  t.deepEqual(l.expired(99_999 + 10_000), [1]);
});

test('lease: leaseKeyUpdates follows keys between leases', (t) => {
  const kv = (key: string, lease: number) => ({ key, lease }) as unknown as KeyValue;
  const changes: Change[] = [
    { kind: 'put', kv: kv('a', 5), prevKv: kv('a', 3) },
    { kind: 'put', kv: kv('b', 5) },
    { kind: 'delete', kv: kv('c', 0), prevKv: kv('c', 3) },
    { kind: 'put', kv: kv('d', 0), prevKv: kv('d', 0) },
  ];
  t.deepEqual(leaseKeyUpdates(changes), {
    attach: [[5, 'a'], [5, 'b']], detach: [[3, 'a'], [3, 'c']],
  });
});
