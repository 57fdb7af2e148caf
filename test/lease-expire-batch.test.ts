import test from 'ava';
import { StateMachine, type ApplyHooks } from '../actors/raft/state-machine.js';
import type { ProposalRequest } from '../actors/raft/messages.js';
import { decodeApplied } from '../actors/shard/messages.js';
import { encodeProposal, encodeRequest } from '../src/cluster/proposal.js';
import { expireAsRevokes } from '../src/lease/index.js';
import { EntryNormal, type Entry } from '../src/raft/index.js';
import type { Index, LeaseId, Term } from '../src/types.js';
import { randomInt, seeded } from './helpers/rng.js';

// A leaseExpire batch (many expired lease ids in one Raft entry) must apply exactly as the
// single LeaseRevoke proposals it stands for, one after another: the same revisions (one per
// revoked lease with keys, as etcd's one txn per LeaseRevoke), the same changes to the shards
// and the watch hub, the same messages to the lease actor, the same store left behind.

/** Twin is a StateMachine with recording stand-ins for the actors it talks to. */
function twin() {
  const sent: { to: string; msg: any }[] = [];
  const replies: any[] = [];
  const ref = (to: string) => ({
    sendUnbounded: (msg: unknown) => sent.push({ to, msg }),
    ask: async () => ({}),
  }) as any;
  const sm = new StateMachine([ref('shard0'), ref('shard1')], ref('watch'), ref('lease'), {
    reply: (_t, body) => replies.push(body),
    replyError: (_t, err) => replies.push({ error: err.message }),
    flushNow: () => undefined,
  });
  return { sm, sent, replies };
}

const hooks = (claim: (p: unknown) => unknown = () => undefined): ApplyHooks => ({
  claim: claim as ApplyHooks['claim'],
  applyConfChange: () => ({ voters: [], learners: [] }),
  membersChanged: () => undefined,
  nowMs: () => 0,
});

let nextIndex = 1;
function entries(reqs: ProposalRequest[]): Entry[] {
  return reqs.map((req) => ({
    term: 1 as Term, index: nextIndex++ as Index, type: EntryNormal,
    data: encodeProposal({ m: 1, b: 1, n: nextIndex }, encodeRequest(req)),
  }));
}

/** observable is what the rest of the system sees of an apply: every message but the shards'
 * Raft index (the twins' logs differ in length, not in content). */
function observable(sent: { to: string; msg: any }[]): unknown[] {
  return sent.map(({ to, msg }) => {
    const { index: _i, ...rest } = msg;
    // A ShardApply's puts name their values in the applier's arena, whose id is the
    // applier's: compare what they decode to.
    if (msg.type === 'ShardApply') {
      return { to, type: msg.type, revisions: decodeApplied(msg.revisions, msg.arena) };
    }
    return { to, ...rest };
  });
}

test('expireAsRevokes keeps order, drops duplicates and leases no longer granted', (t) => {
  t.deepEqual(expireAsRevokes([7, 9, 7, 4], (id) => id !== 9).map((r) => r.id), [7, 4]);
  t.deepEqual(expireAsRevokes([], () => true), []);
});

for (let seed = 1; seed <= 40; seed++) {
  test(`a leaseExpire batch applies as the single revokes it stands for (seed ${seed})`, (t) => {
    const rng = seeded(seed);
    // The same history on both: grants, puts on random leases (some keys moved from one
    // lease to another, some without a lease), a few deletes and client revokes.
    const leaseCount = randomInt(rng, 1, 30);
    const history: ProposalRequest[] = [];
    for (let id = 1; id <= leaseCount; id++) {
      history.push({ type: 'leaseGrant', id, ttlSeconds: 5 });
    }
    const ops = randomInt(rng, 0, 120);
    for (let i = 0; i < ops; i++) {
      const key = `k${randomInt(rng, 0, 40)}`;
      const roll = rng();
      if (roll < 0.75) {
        const lease = randomInt(rng, 0, leaseCount + 1);
        history.push({ type: 'put', key, value: `v${i}`, lease });
      } else if (roll < 0.9) {
        history.push({ type: 'deleteRange', key });
      } else {
        history.push({ type: 'leaseRevoke', id: randomInt(rng, 1, leaseCount + 1) });
      }
    }
    // Expired ids: a random selection with duplicates, revoked ones and unknown ones.
    const ids = Array.from({ length: randomInt(rng, 0, 2 * leaseCount) },
      () => randomInt(rng, 1, leaseCount + 3));
    const a = twin();
    const b = twin();
    a.sm.apply(entries(history), 1, hooks());
    b.sm.apply(entries(history), 1, hooks());
    a.sent.length = 0;
    b.sent.length = 0;
    const before = a.sm.applier.revision;
    let token = 0;
    a.sm.apply(entries([{ type: 'leaseExpire', ids }]), 1, hooks(() => ++token));
    b.sm.apply(entries(ids.map((id) => ({ type: 'leaseRevoke' as const, id }))), 1, hooks());

    t.is(a.sm.applier.revision, b.sm.applier.revision, 'the same revision');
    t.deepEqual(observable(a.sent), observable(b.sent), 'the same shard, watch, lease messages');
    t.deepEqual(a.sm.applier.leasesWithTtl(), b.sm.applier.leasesWithTtl(), 'the same leases');
    for (let id = 1; id <= leaseCount; id++) {
      const lease = id as LeaseId;
      t.deepEqual(a.sm.applier.keysOfLease(lease), b.sm.applier.keysOfLease(lease));
    }
    const revoked = a.sent.filter((s) => s.msg.type === 'LeaseRevoked').length;
    const withKeys = expireAsRevokes(ids, () => true).length;
    t.true(revoked <= withKeys);
    t.true(a.sm.applier.revision - before <= revoked, 'at most one revision per revoke');
    t.deepEqual(a.replies.at(-1), {
      revision: a.sm.applier.revision, raftTerm: 1,
      response: { type: 'leaseExpire', revoked },
    }, 'the proposer hears once, with the count');
  });
}
