import test from 'ava';
import type { LeaseMsg, LeaseReplies } from '../actors/lease/messages.js';
import { RemoteError } from '../src/runtime/endpoint.js';
import { ActorSystem } from '../src/runtime/system.js';

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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('lease actor: grant via Raft, keep-alive renews, expiry proposes a revoke', async (t) => {
  const sys = system();
  await sys.start();
  try {
    const lease = sys.gateway.ref<LeaseMsg, LeaseReplies>('lease');
    const raft = sys.gateway.ref<{ type: 'FakeRevoked' }, { FakeRevoked: number[] }>('raft');
    const g = await lease.ask({ type: 'LeaseGrant', id: 0, ttlSeconds: 1 });
    const id = (g.response as { id: number }).id;
    t.true(id > 0);
    const e = await t.throwsAsync(lease.ask({ type: 'LeaseGrant', id, ttlSeconds: 5 }));
    t.is((e as RemoteError).message, 'etcdserver: lease already exists');
    const big = await t.throwsAsync(lease.ask({ type: 'LeaseGrant', id: 5, ttlSeconds: 9e9 + 1 }));
    t.is((big as RemoteError).message, 'etcdserver: too large lease TTL');
    t.deepEqual((await lease.ask({ type: 'LeaseLeases' })).ids.sort(), [99, id].sort());
    const ttl = await lease.ask({ type: 'LeaseTimeToLive', id: 99, keys: true });
    t.like(ttl, { id: 99, grantedTtlSeconds: 1, keys: ['k'] });
    t.true(ttl.ttlSeconds === 0 || ttl.ttlSeconds === 1, 'remaining seconds are truncated');
    // Keep `id` alive for 1.5 s; the recovered lease 99 (never renewed) expires meanwhile.
    for (let i = 0; i < 6; i++) {
      t.is((await lease.ask({ type: 'LeaseKeepAlive', id })).ttlSeconds, 1);
      await sleep(250);
    }
    t.deepEqual(await raft.ask({ type: 'FakeRevoked' }), [99]);
    await sleep(1_300);
    t.deepEqual(await raft.ask({ type: 'FakeRevoked' }), [99, id]);
    t.deepEqual(await lease.ask({ type: 'LeaseTimeToLive', id, keys: false }),
      { id, ttlSeconds: -1, grantedTtlSeconds: 0 });
    t.deepEqual(await lease.ask({ type: 'LeaseKeepAlive', id }), { id, ttlSeconds: 0 });
    const nf = await t.throwsAsync(lease.ask({ type: 'LeaseRevoke', id }));
    t.is((nf as RemoteError).message, 'etcdserver: requested lease not found');
  } finally {
    await sys.stop();
  }
});
