import test from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import type { LeaseMsg, LeaseReplies } from '../actors/lease/messages.js';
import { RemoteError } from '../src/runtime/endpoint.js';
import { ActorSystem } from '../src/runtime/system.js';
import { LeaseTimeline } from './helpers/lease-time.js';
import { now, until } from './helpers/wait.js';

const quiet = { info() {}, warn() {}, error() {} };

function system(): ActorSystem {
  return new ActorSystem([
    { name: 'raft', url: new URL('./actors/lease-raft.js', import.meta.url), config: {},
      connects: ['lease'] },
    { name: 'lease', url: new URL('../actors/lease/actor.js', import.meta.url),
      config: { logLevel: 'silent', seed: 1, checkIntervalMs: 50, minTtlSeconds: 1 },
      connects: ['raft'] },
  ], { logger: quiet, onFatal: () => undefined });
}

test('lease actor: grant via Raft, keep-alive renews, expiry proposes a revoke', async (t) => {
  const sys = system();
  // The fake Raft node recovers lease 99 (TTL 1 s, key 'k') when it starts: its timeline
  // starts here (helpers/lease-time.ts bounds what the test may insist on).
  const l99 = new LeaseTimeline(1, now());
  await sys.start();
  t.teardown(() => sys.stop());
  const lease = sys.gateway.ref<LeaseMsg, LeaseReplies>('lease');
  const raft = sys.gateway.ref<{ type: 'FakeRevoked' }, { FakeRevoked: number[] }>('raft');
  const grantSent = now();
  const g = await lease.ask({ type: 'LeaseGrant', id: 0, ttlSeconds: 3 });
  const id = (g.response as { id: number }).id;
  const tl = new LeaseTimeline(3, grantSent);
  t.true(id > 0);
  const e = await t.throwsAsync(lease.ask({ type: 'LeaseGrant', id, ttlSeconds: 5 }));
  t.is((e as RemoteError).message, 'etcdserver: lease already exists');
  const big = await t.throwsAsync(lease.ask({ type: 'LeaseGrant', id: 5, ttlSeconds: 9e9 + 1 }));
  t.is((big as RemoteError).message, 'etcdserver: too large lease TTL');
  const ttl = await lease.ask({ type: 'LeaseTimeToLive', id: 99, keys: true });
  const at = now();
  if (l99.aliveAt(at)) {
    t.deepEqual((await lease.ask({ type: 'LeaseLeases' })).ids.sort(), [99, id].sort());
    t.like(ttl, { id: 99, grantedTtlSeconds: 1, keys: ['k'] });
    const { lo, hi } = l99.ttlBounds(at);
    t.true(ttl.ttlSeconds >= Math.max(lo, 0) && ttl.ttlSeconds <= hi,
      'remaining seconds are truncated');
  } else {
    t.log('the machine stalled for a whole second: lease 99 may be gone already');
  }
  // Keep `id` alive while the recovered lease 99 (never renewed) expires.
  let revoked: number[] = [];
  for (;;) {
    revoked = await raft.ask({ type: 'FakeRevoked' });
    const seen = now();
    if (revoked.includes(99)) {
      if (tl.aliveAt(seen)) t.deepEqual(revoked, [99], 'the renewed lease is kept');
      t.true(seen >= l99.expiresNotBeforeMs, 'lease 99 expired after its TTL, not before');
      break;
    }
    const sent = now();
    const r = await lease.ask({ type: 'LeaseKeepAlive', id });
    if (r.ttlSeconds === 3) {
      tl.renewed(sent);
    } else {
      t.false(tl.aliveAt(now()), `a keep-alive of a live lease was refused: ${r.ttlSeconds}`);
      t.log('the machine stalled for a whole TTL: the lease expired; nothing more to check');
      return;
    }
    await sleep(250); // the client's pace, not a wait for the actor
  }
  // Left alone, `id` expires a TTL after its last renewal, and not before.
  let expiredSeen = 0;
  await until(async () => {
    revoked = await raft.ask({ type: 'FakeRevoked' });
    expiredSeen = now();
    return revoked.includes(id);
  }, 'the lease to expire');
  t.deepEqual(revoked, [99, id]);
  t.true(expiredSeen >= tl.expiresNotBeforeMs, 'expired after its TTL, not before');
  // The fake Raft node sent the revocation to the lease actor before it answered FakeRevoked;
  // the lease actor serves a read only after a RaftBarrier answered on that same channel, so
  // this first read already sees the lease gone (not expiring, TTL 0).
  t.deepEqual(await lease.ask({ type: 'LeaseTimeToLive', id, keys: false }),
    { id, ttlSeconds: -1, grantedTtlSeconds: 0 });
  t.deepEqual(await lease.ask({ type: 'LeaseKeepAlive', id }), { id, ttlSeconds: 0 });
  const nf = await t.throwsAsync(lease.ask({ type: 'LeaseRevoke', id }));
  t.is((nf as RemoteError).message, 'etcdserver: requested lease not found');
});

test('lease actor: a follower that knows no leader holds a keep-alive until one is known ' +
  '(etcd\'s waitLeader), and answers "no leader" when none comes in time', async (t) => {
  const sys = new ActorSystem([
    { name: 'peer', url: new URL('./actors/lease-peer.js', import.meta.url), config: {},
      connects: ['lease'] },
    { name: 'lease', url: new URL('../actors/lease/actor.js', import.meta.url),
      config: { logLevel: 'silent', seed: 1, requestTimeoutMs: 1_500, raftActor: 'peer' },
      connects: ['peer'] },
  ], { logger: quiet, onFatal: () => undefined });
  await sys.start();
  t.teardown(() => sys.stop());
  const lease = sys.gateway.ref<LeaseMsg, LeaseReplies>('lease');
  lease.send({ type: 'LeaderChanged', isLeader: false, leader: 0 });
  let answer: unknown;
  let failure: string | undefined;
  lease.ask({ type: 'LeaseKeepAlive', id: 7 }).then((r) => { answer = r; },
    (e: Error) => { failure = e.message; });
  // An ask after it is answered after it was handled (one channel, in order): held, not failed.
  await lease.ask({ type: 'LeaseLeases' });
  t.is(failure, undefined, 'not failed at once (it used to answer "no leader")');
  t.is(answer, undefined, 'not answered while no leader is known');
  lease.send({ type: 'LeaderChanged', isLeader: false, leader: 5 });
  await until(() => answer !== undefined || failure !== undefined, 'the keep-alive answered');
  t.deepEqual(answer, { id: 7, ttlSeconds: 42, relayedTo: 5 }, 'relayed to the new leader');

  lease.send({ type: 'LeaderChanged', isLeader: false, leader: 0 });
  const late = await t.throwsAsync(lease.ask({ type: 'LeaseTimeToLive', id: 7, keys: false }));
  t.is(late?.message, 'etcdserver: no leader');
});
