import {
  askTimeoutMs, leaseCheckIntervalMs, leaseCheckpointBatchMax, leaseCheckpointIntervalMs,
  leaseRevokeBatchMax,
} from '../../src/constants.js';
import { LeaderWait } from '../../src/cluster/leader-wait.js';
import { Lessor } from '../../src/lease/index.js';
import { seededRng } from '../../src/raft/rand.js'; // not the index: no Raft core here
import { assertNever } from '../../src/assert.js';
import { EtcdError } from '../../src/errors.js';
import { startActor } from '../../src/runtime/worker.js';
import type { ReplyToken } from '../../src/runtime/endpoint.js';
import type { PeerForward } from '../peer/messages.js';
import type { RaftBarrier } from '../raft/messages.js';
import type { LeaseConfig, LeaseMsg, LeaseRaftPropose } from './messages.js';

/**
 * The lease actor: a thin shell around Lessor (src/lease). It mirrors the leases the Raft
 * node applies, serves keep-alives and time-to-live from memory, and — on the leader —
 * checks deadlines every leaseCheckIntervalMs and proposes the revocation of expired leases.
 * Grants and revokes from clients are validated here and forwarded to the Raft node, which
 * answers the client after the proposal is applied.
 */
const ctx = startActor<LeaseMsg, LeaseConfig>();
const cfg = ctx.config;
const now = (): number => performance.now();
const lessor = new Lessor({
  // The boot time is mixed in: with the member id alone every start would replay the same
  // ids, handing out again the id of a lease that expired before the restart (a client still
  // renewing its lost lease would then renew someone else's).
  rng: seededRng((cfg.seed ^ Date.now() ^ Math.floor(performance.timeOrigin * 1000)) >>> 0),
  ...(cfg.minTtlSeconds === undefined ? {} : { minTtlSeconds: cfg.minTtlSeconds }),
});
const raft = ctx.ep.ref<LeaseRaftPropose, unknown>(cfg.raftActor ?? 'raft');
/** barrier is the same Raft node, asked only for RaftBarrier (see afterApplied). */
const barrier = ctx.ep.ref<RaftBarrier, unknown>(cfg.raftActor ?? 'raft');
/** peer relays keep-alives and time-to-live asks to the leader (absent in a lone test). */
const peer = ctx.ep.hasActor('peer') ? ctx.ep.ref<PeerForward, unknown>('peer') : undefined;
/** leader is the leader's member id (0: none known), from LeaderChanged. */
let leader = 0;

/** Relayed: the asks a follower relays to the leader's lease actor. */
type Relayed = { type: 'LeaseKeepAlive'; id: number } |
  { type: 'LeaseTimeToLive'; id: number; keys: boolean };

/** toLeader relays an ask to the leader's lease actor when this member is a follower in a
 * cluster (only the leader's deadlines count, as etcd's lessor); true when relayed or held.
 * With no leader known the ask waits for one (leaderless), as etcd's LeaseRenew does. */
function toLeader(msg: Relayed, token: ReplyToken): boolean {
  if (lessor.isPrimary || peer === undefined) return false;
  if (leader === 0) {
    if (!leaderless.hold({ msg, token }, now() + leaderWaitMs)) {
      ctx.ep.replyError(token, new EtcdError('NO_LEADER'));
    }
    return true;
  }
  peer.forward({ type: 'PeerForward', to: leader, target: 'lease', msg }, token);
  return true;
}

/** leaderless: the keep-alives and time-to-live asks a follower took while it knew no
 * leader (LeaderWait: etcd's follower waits for a leader to renew through, within the request
 * timeout, then answers "no leader"; so do these, checked with the lease checks). At most
 * leaderlessMax wait, past it an ask fails at once: each is a client's request in flight,
 * within the gateways' admission limit anyway. */
const leaderlessMax = 10_000;
const leaderless = new LeaderWait<{ msg: Relayed; token: ReplyToken }>(leaderlessMax);
/** leaderWaitMs: the request timeout, inside the gateway's ask of this actor (askTimeoutMs). */
const leaderWaitMs = Math.min(cfg.requestTimeoutMs ?? 5_000, askTimeoutMs - 1_000);

/** releaseLeaderless serves the held asks once a leader is known: relayed to it, or answered
 * here when this member is the leader. */
function releaseLeaderless(): void {
  for (const h of leaderless.release()) {
    if (h.msg.type === 'LeaseKeepAlive') keepAlive(h.msg.id, h.token);
    else timeToLive(h.msg.id, h.msg.keys, h.token);
  }
}

ctx.ep.onMessage((msg, token) => {
  switch (msg.type) {
    case 'LeaseGrant': {
      if (token === undefined) return;
      try {
        const g = lessor.prepareGrant(msg.id, msg.ttlSeconds);
        raft.forward({ type: 'RaftPropose', req: { type: 'leaseGrant', ...g } }, token);
      } catch (e) {
        ctx.ep.replyError(token, e as Error & { code?: string });
      }
      return;
    }
    case 'LeaseRevoke':
      if (token === undefined) return;
      raft.forward({ type: 'RaftPropose', req: { type: 'leaseRevoke', id: msg.id } }, token);
      return;
    // Reads wait for what the Raft node applied before them: see afterApplied.
    case 'LeaseKeepAlive':
      if (token !== undefined) afterApplied(() => keepAlive(msg.id, token));
      return;
    case 'LeaseTimeToLive':
      if (token !== undefined) afterApplied(() => timeToLive(msg.id, msg.keys, token));
      return;
    case 'LeaseLeases':
      if (token !== undefined) afterApplied(() => ctx.ep.reply(token, { ids: lessor.list() }));
      return;
    case 'LeaseRecovered': {
      for (const id of lessor.list()) lessor.revoke(id);
      const t = now();
      for (const l of msg.leases) {
        lessor.grant(l.id, l.ttlSeconds, t);
        for (const k of l.keys) lessor.attach(l.id, k);
        if (l.remainingSeconds !== undefined) lessor.checkpoint(l.id, l.remainingSeconds);
      }
      return;
    }
    case 'LeaseCheckpointed':
      for (const c of msg.checkpoints) lessor.checkpoint(c.id, c.remainingSeconds);
      return;
    case 'LeaseGranted':
      lessor.grant(msg.id, msg.ttlSeconds, now());
      return;
    case 'LeaseRevoked':
      lessor.revoke(msg.id);
      return;
    case 'LeaseKeysChanged':
      for (const [id, key] of msg.detach) lessor.detach(id, key);
      for (const [id, key] of msg.attach) lessor.attach(id, key);
      return;
    case 'LeaderChanged':
      leader = msg.leader ?? (msg.isLeader ? -1 : 0);
      if (msg.isLeader && !lessor.isPrimary) lessor.promote(now());
      else if (!msg.isLeader && lessor.isPrimary) lessor.demote();
      if (leader !== 0) releaseLeaderless();
      return;
    default:
      assertNever(msg);
  }
});

/** keepAlive renews a lease (on the leader; a follower relays the ask to it). */
function keepAlive(id: number, token: ReplyToken): void {
  if (toLeader({ type: 'LeaseKeepAlive', id }, token)) return;
  try {
    const checkpointed = lessor.hasCheckpoint(id);
    ctx.ep.reply(token, { id, ttlSeconds: lessor.renew(id, now()) });
    // Kept alive: the next leader must start it from its full TTL, not the checkpoint.
    if (checkpointed) propose([{ id, remainingSeconds: 0 }]);
  } catch (e) {
    ctx.ep.replyError(token, e as Error & { code?: string });
  }
}

/** timeToLive answers a lease's remaining and granted TTL (and keys); -1 when it is gone. */
function timeToLive(id: number, keys: boolean, token: ReplyToken): void {
  if (toLeader({ type: 'LeaseTimeToLive', id, keys }, token)) return;
  const t = lessor.timeToLive(id, now());
  if (t === undefined) {
    ctx.ep.reply(token, { id, ttlSeconds: -1, grantedTtlSeconds: 0 });
  } else {
    ctx.ep.reply(token, {
      id, ttlSeconds: t.ttlSeconds, grantedTtlSeconds: t.grantedTtlSeconds,
      ...(keys && t.keys.length > 0 ? { keys: t.keys } : {}),
    });
  }
}

/**
 * afterApplied serves a read once this actor holds every lease change the Raft node applied
 * before the read arrived. A client that saw a grant, a revoke or a put with a lease
 * acknowledged must see it in its next keep-alive, time-to-live or list; but the
 * acknowledgement travels raft → gateway while the change travels raft → lease, and the read
 * (gateway → lease) could overtake the change (seen: a revoked lease still listed, a new
 * lease's keep-alive answered "not found", a key missing from its lease). The Raft node
 * answers an ask on the same channel as, hence after, every change it sent before; so a read
 * waits for a RaftBarrier asked after it came in (answered empty: no status is built for
 * it). One such barrier serves every read that arrived while the previous one was out. If
 * the Raft node cannot take the ask (full mailbox, restart), the read is served from what is
 * here.
 */
function afterApplied(read: () => void): void {
  barrierReads.push(read);
  if (!barrierOut) askBarrier();
}
let barrierReads: (() => void)[] = [];
let barrierOut = false;

function askBarrier(): void {
  const reads = barrierReads;
  barrierReads = [];
  barrierOut = true;
  const done = () => {
    barrierOut = false;
    for (const r of reads) r();
    if (barrierReads.length > 0) askBarrier();
  };
  try {
    barrier.ask({ type: 'RaftBarrier' }).then(done, done);
  } catch {
    done();
  }
}

/** revokeExpired proposes the revocation of leases past their deadline, leaseRevokeBatchMax
 * per Raft entry (leaseExpire), at most leaseRevokesPerCheckMax per check; the lessor defers
 * each so a lost proposal is retried after leaseRevokeRetryMs, not repeated every tick. */
function revokeExpired(): void {
  const ids = lessor.expired(now());
  for (let i = 0; i < ids.length; i += leaseRevokeBatchMax) {
    const batch = ids.slice(i, i + leaseRevokeBatchMax);
    try {
      raft.ask({ type: 'RaftPropose', req: { type: 'leaseExpire', ids: batch } }).catch(() => {
        // No leader, timeout: the retry interval covers it.
      });
    } catch {
      return; // the Raft node's mailbox is full: the retry interval covers the rest
    }
  }
}

/** propose records remaining TTLs in the log (best effort: a lost checkpoint is retaken at
 * the next interval). */
function propose(checkpoints: { id: number; remainingSeconds: number }[]): void {
  if (checkpoints.length === 0) return;
  try {
    raft.ask({ type: 'RaftPropose', req: { type: 'leaseCheckpoint', checkpoints } })
      .catch(() => undefined);
  } catch {
    // the Raft node's mailbox is full: the next interval checkpoints again
  }
}

const timer = setInterval(() => {
  for (const h of leaderless.expire(now())) ctx.ep.replyError(h.token, new EtcdError('NO_LEADER'));
  revokeExpired();
}, cfg.checkIntervalMs ?? leaseCheckIntervalMs);
timer.unref();
const checkpointMs = cfg.checkpointIntervalMs ?? leaseCheckpointIntervalMs;
const checkpointTimer = checkpointMs > 0
  ? setInterval(() => propose(lessor.checkpoints(now(), leaseCheckpointBatchMax)), checkpointMs)
  : undefined;
checkpointTimer?.unref();
ctx.onStop(() => {
  clearInterval(timer);
  if (checkpointTimer !== undefined) clearInterval(checkpointTimer);
});
ctx.ready();
