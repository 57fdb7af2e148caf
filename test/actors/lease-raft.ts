import { startActor } from '../../src/runtime/worker.js';

/**
 * A fake Raft node for the lease actor's tests: it "applies" lease proposals at once (a set of
 * leases, one revision per revoke), reports them to 'lease' as the real node must, and
 * records revocations so the test can ask which leases expired.
 */
type Msg =
  | { type: 'RaftPropose'; req: { type: 'leaseGrant'; id: number; ttlSeconds: number } |
    { type: 'leaseRevoke'; id: number } | { type: 'leaseExpire'; ids: number[] } }
  | { type: 'FakeRevoked' }
  | { type: 'RaftBarrier' };

const ctx = startActor<Msg, Record<string, never>>();
const lease = ctx.ep.ref<{ type: string } & Record<string, unknown>, unknown>('lease');
const leases = new Set<number>();
const revoked: number[] = [];
let revision = 1;

ctx.ep.onMessage((msg, token) => {
  if (msg.type === 'RaftBarrier') {
    // The lease actor's read barrier: answered on the channel its changes travel.
    if (token !== undefined) ctx.ep.reply(token, null);
    return;
  }
  if (msg.type === 'FakeRevoked') {
    if (token !== undefined) ctx.ep.reply(token, revoked);
    return;
  }
  const req = msg.req;
  if (req.type === 'leaseExpire') {
    // Expired leases, many per proposal: each revoked as a single revoke would be.
    let n = 0;
    for (const id of req.ids) {
      if (!leases.delete(id)) continue;
      revoked.push(id);
      revision++;
      n++;
      lease.send({ type: 'LeaseRevoked', id });
    }
    if (token !== undefined) {
      ctx.ep.reply(token, { revision, raftTerm: 2, response: { type: 'leaseExpire', revoked: n } });
    }
  } else if (req.type === 'leaseGrant') {
    if (leases.has(req.id)) {
      if (token !== undefined) {
        ctx.ep.replyError(token, {
          code: 'LEASE_EXISTS', message: 'etcdserver: lease already exists',
        });
      }
      return;
    }
    leases.add(req.id);
    lease.send({ type: 'LeaseGranted', id: req.id, ttlSeconds: req.ttlSeconds });
    if (token !== undefined) {
      ctx.ep.reply(token, { revision, raftTerm: 2, response: { ...req, type: 'leaseGrant' } });
    }
  } else {
    if (!leases.delete(req.id)) {
      if (token !== undefined) {
        ctx.ep.replyError(token, {
          code: 'LEASE_NOT_FOUND', message: 'etcdserver: requested lease not found',
        });
      }
      return;
    }
    revoked.push(req.id);
    revision++;
    lease.send({ type: 'LeaseRevoked', id: req.id });
    if (token !== undefined) {
      ctx.ep.reply(token, { revision, raftTerm: 2, response: { type: 'leaseRevoke' } });
    }
  }
});
lease.send({ type: 'LeaseRecovered', leases: [{ id: 99, ttlSeconds: 1, keys: ['k'] }] });
lease.send({ type: 'LeaderChanged', isLeader: true });
leases.add(99);
ctx.ready();
