import {
  inflightMsgsMax, sizePerMsgBytesMax, snapshotBytesMax, snapshotCatchUpEntries,
} from '../../src/constants.js';
import {
  Applier, type DeferredRead, fillDeferredRead, latestOfSnapshot, mergeRanges, shardOf,
} from '../../src/mvcc/index.js';
import { leaseKeyUpdates } from '../../src/lease/index.js';
import { createLogger, type LoggerConfig } from '../../src/log/index.js';
import type { Change, KeyValue, TxnResponse } from '../../src/mvcc/types.js';
import type { LeaseMsg } from '../lease/messages.js';
import type { RevisionChanges, WatchMsg } from '../watch/messages.js';
import {
  type ConfState, decodeConfChange, type Entry, EntryNormal, type HardState, MemoryStorage,
  RawNode,
  type Ready, seededRng,
} from '../../src/raft/index.js';
import type { Index, LeaseId, MemberId, Revision, Term } from '../../src/types.js';
import { pack, unpack } from '../../src/runtime/codec.js';
import type { ReplyToken } from '../../src/runtime/endpoint.js';
import { assertNever, startActor } from '../../src/runtime/worker.js';
import type { AppliedRevision, ShardMsg, ShardReplies } from '../shard/messages.js';
import type { WalMsg, WalReplies } from '../wal/messages.js';
import type {
  ProposalRequest, RaftMsg, RaftNodeConfig, RaftProposeResp, RaftStatusResp,
} from './messages.js';
import { decodeProposal, encodeProposal, encodeRequest, type SnapshotBody } from './proposal.js';

/**
 * The Raft node actor: the shell around the Raft core (src/raft) and the applier
 * (src/mvcc). It is the only writer of the store: a proposal becomes a log entry, the WAL
 * writer makes it durable, the core commits it, and the applier turns it into a revision
 * whose changes go to the shards. The loop follows etcd-raft's Ready/advance contract with
 * at most one Ready being persisted at a time — while the WAL writer fsyncs one Ready, new
 * proposals pile up in the core and all go into the next one (group commit falls out of it).
 */
const ctx = startActor<RaftMsg, RaftNodeConfig>();
const cfg = ctx.config;
const log = createLogger(ctx.logConfig as LoggerConfig).child({ component: 'raft' });
/** selfId / clusterId: this member's identity. A restarted member takes them from its WAL's
 * metadata (as etcd does): the flags only name a brand-new member. */
let selfId = cfg.memberId as MemberId;
let clusterId = cfg.clusterId;
const wal = ctx.ep.ref<WalMsg, WalReplies>('wal');
const shards = Array.from({ length: cfg.shardCount },
  (_, i) => ctx.ep.ref<ShardMsg, ShardReplies>(`shard-${i}`));
const watch = ctx.ep.ref<WatchMsg, unknown>('watch');
const lease = ctx.ep.ref<LeaseMsg, unknown>('lease');

/** bootNonce tells this boot's proposals apart from those of earlier boots in the log. */
const bootNonce = (Math.random() * 0x7fffffff) | 0;
let nextProposalSeq = 1;
/** pending maps a proposal's sequence number to the client waiting for it. */
const pending = new Map<number, ReplyToken>();
/** readTokens gather RaftReadIndex asks until the next pump issues one read index. */
let readTokens: ReplyToken[] = [];
let nextReadCtx = 1;
/** readsByCtx: read-index requests issued to the core, by context. */
const readsByCtx = new Map<number, ReplyToken[]>();
/** readsWaitingApply: confirmed read indexes waiting for applied ≥ index. */
let readsWaitingApply: { index: number; tokens: ReplyToken[] }[] = [];

let storage: MemoryStorage;
let node: RawNode;
let applier: Applier;
let confState: ConfState;
let appliedIndex = 0;
/** shardIndex is the Raft index of the last ShardApply sent to the shards. */
let shardIndex = 0;
let snapshotIndex = 0;
/** appliedBytesSinceSnapshot: entry data applied since the last snapshot (snapshotBytesMax). */
let appliedBytesSinceSnapshot = 0;
let snapshotting = false;
let inflight: Ready | undefined;
/** lastHardState is the hard state last made durable; commit-only changes ride along with the
 * next append rather than costing an fsync of their own (commit is recoverable). */
let lastHardState: HardState = { term: 0, vote: 0, commit: 0 } as HardState;
let pendingHardState: HardState | undefined;
let leader = 0;
/** watchSubscribed: the watch hub wants every revision's changes (RaftWatchInterest). */
let watchSubscribed = true;
const counters = {
  leaderChanges: 0, committed: 0, applied: 0, failed: 0, puts: 0, deletes: 0, txns: 0,
};

async function boot(): Promise<void> {
  const loaded = await wal.ask({ type: 'WalLoad' });
  if (loaded.metadata !== undefined) {
    selfId = loaded.metadata.nodeId as MemberId;
    clusterId = loaded.metadata.clusterId;
  }
  storage = new MemoryStorage();
  confState = { voters: [selfId], learners: [] };
  // An empty store is at revision 1, as etcd's: the first write makes revision 2.
  let revision = 1;
  let compactRevision = 0;
  let leases: { id: number; ttl: number }[] = [];
  const dumps: (Uint8Array | null)[] = shards.map(() => null);
  if (loaded.snapshot !== undefined) {
    const body = unpack<SnapshotBody>(loaded.snapshot.body);
    if (body.shards.length !== cfg.shardCount) {
      throw new Error(`snapshot has ${body.shards.length} shards but --storage-shards is ` +
        `${cfg.shardCount}; restart with --storage-shards=${body.shards.length}`);
    }
    confState = body.confState;
    revision = body.revision;
    compactRevision = body.compactRevision;
    leases = body.leases;
    body.shards.forEach((d, i) => { dumps[i] = d; });
    storage.applySnapshot({
      data: loaded.snapshot.body,
      metadata: {
        index: loaded.snapshot.index as Index, term: loaded.snapshot.term as Term, confState,
      },
    });
    appliedIndex = loaded.snapshot.index;
    snapshotIndex = appliedIndex;
  }
  // Shards restore from their part of the snapshot; the applier's latest-state view is rebuilt
  // from the same dumps (the snapshot stores history once, not twice).
  await Promise.all(shards.map((s, i) => s.ask({ type: 'ShardRestore', dump: dumps[i]! })));
  const latest: KeyValue[] = [];
  for (const d of dumps) {
    if (d === null) continue;
    for (const kv of latestOfSnapshot(unpack(d))) latest.push(kv);
  }
  applier = Applier.fromLatest(latest, revision as Revision, compactRevision as Revision, leases);
  // The watch hub and the lease reaper start from the recovered store; the entries replayed
  // below reach them as ordinary applied revisions.
  watch.sendUnbounded({
    type: 'WatchRecovered', revision: applier.revision, compactRevision: applier.compactRevision,
  });
  lease.sendUnbounded({
    type: 'LeaseRecovered',
    leases: applier.leasesWithTtl().map(({ id, ttl }) => ({
      id, ttlSeconds: ttl, keys: applier.keysOfLease(id as LeaseId),
    })),
  });

  if (loaded.hardState !== undefined) {
    storage.setHardState(loaded.hardState);
    lastHardState = loaded.hardState;
  }
  if (loaded.entries.length > 0) storage.append(loaded.entries);
  const fresh = loaded.firstStart && loaded.snapshot === undefined;
  log.info({
    memberId: selfId.toString(16), fresh, snapshotIndex, revision: applier.revision,
    entries: loaded.entries.length, commit: loaded.hardState?.commit ?? 0,
  }, fresh ? 'starting a new member' : 'recovered from snapshot and WAL');
  node = new RawNode({
    id: selfId,
    electionTick: cfg.electionTicks,
    heartbeatTick: 1,
    storage,
    applied: appliedIndex as Index,
    maxSizePerMsg: sizePerMsgBytesMax,
    maxInflightMsgs: inflightMsgsMax,
    preVote: true,
    checkQuorum: true,
    rng: seededRng(cfg.seed),
  });
  if (fresh) node.bootstrap([{ id: selfId }]);
  ticker = setInterval(() => {
    node.tick();
    pump();
  }, cfg.heartbeatIntervalMs);
  // A single voter need not wait an election timeout to lead (etcd does the same). The actor
  // reports ready once there is a leader; reads wait for the replay through the read index.
  await new Promise<void>((resolve) => {
    onLeader = resolve;
    node.campaign();
    pump();
  });
}

/** onLeader resolves boot's wait for a leader. */
let onLeader: (() => void) | undefined;
/** ticker drives the Raft core's logical clock: one tick per heartbeat interval. */
let ticker: NodeJS.Timeout | undefined;

function pump(): void {
  if (readTokens.length > 0) issueReadIndex();
  while (inflight === undefined && node.hasReady()) {
    const rd = node.ready();
    if (rd.softState !== undefined && rd.softState.lead !== leader) {
      if (rd.softState.lead !== 0) counters.leaderChanges++;
      leader = rd.softState.lead;
      log.info({ leader, term: node.status().term, isLeader: leader === selfId },
        leader === 0 ? 'lost the leader' : 'leader changed');
      // Only the leader decides expiry (etcd's lessor promote/demote).
      lease.sendUnbounded({ type: 'LeaderChanged', isLeader: leader === selfId });
      if (leader === 0) failPendingReads('etcdserver: no leader');
      else if (onLeader !== undefined) {
        onLeader();
        onLeader = undefined;
      }
    }
    // Committed entries are stable locally (the core's contract), so they may be applied
    // while this Ready's own entries are being persisted.
    if (rd.committedEntries.length > 0) applyEntries(rd.committedEntries);
    for (const rs of rd.readStates) {
      const c = readCtxOf(rs.requestCtx);
      const tokens = readsByCtx.get(c);
      if (tokens === undefined) continue;
      readsByCtx.delete(c);
      readsWaitingApply.push({ index: rs.index, tokens });
    }
    releaseReads();
    const hs = rd.hardState;
    const voteChanged = hs !== undefined &&
      (hs.term !== lastHardState.term || hs.vote !== lastHardState.vote);
    if (hs !== undefined) pendingHardState = hs;
    if (rd.entries.length === 0 && !voteChanged && rd.snapshot === undefined) {
      // Nothing needs an fsync: only messages (cluster) and commit-index movement.
      node.advance(rd);
      continue;
    }
    inflight = rd;
    const append = { type: 'WalAppend' as const, entries: rd.entries, hardState: pendingHardState };
    pendingHardState = undefined;
    wal.ask(append).then(() => {
      if (append.hardState !== undefined) lastHardState = append.hardState;
      if (rd.entries.length > 0) storage.append(rd.entries);
      if (append.hardState !== undefined) storage.setHardState(append.hardState);
      inflight = undefined;
      node.advance(rd);
      pump();
    }, (e: unknown) => {
      // A failed fsync leaves the log's durability unknown: crash, and let the supervisor
      // restart every actor from what the disk really holds.
      throw new Error(`raft: WAL append failed: ${String(e)}`);
    });
  }
  // Everything this pass produced — the WAL append, answers, shard and watch changes — leaves
  // now rather than at the next turn's flush: the pass already is the batch.
  ctx.ep.flushNow();
}

function readCtxOf(b: Uint8Array): number {
  return new DataView(b.buffer, b.byteOffset, b.byteLength).getFloat64(0);
}

function issueReadIndex(): void {
  if (leader === 0) {
    failReads(readTokens, 'etcdserver: no leader', 'NO_LEADER');
    readTokens = [];
    return;
  }
  const c = nextReadCtx++;
  const b = new Uint8Array(8);
  new DataView(b.buffer).setFloat64(0, c);
  readsByCtx.set(c, readTokens);
  readTokens = [];
  node.readIndex(b);
}

function releaseReads(): void {
  if (readsWaitingApply.length === 0) return;
  const still: typeof readsWaitingApply = [];
  const term = node.status().term;
  for (const r of readsWaitingApply) {
    if (r.index > appliedIndex) {
      still.push(r);
      continue;
    }
    for (const t of r.tokens) {
      ctx.ep.reply(t, { revision: applier.revision, raftTerm: term, shardIndex });
    }
  }
  readsWaitingApply = still;
}

function failReads(tokens: ReplyToken[], message: string, code: string): void {
  for (const t of tokens) ctx.ep.replyError(t, { code, message });
}

function failPendingReads(message: string): void {
  for (const tokens of readsByCtx.values()) failReads(tokens, message, 'NO_LEADER');
  readsByCtx.clear();
}

/** Deferred is an applied txn whose answer waits for ranges at past revisions. */
interface Deferred {
  token: ReplyToken;
  reply: RaftProposeResp;
  reads: DeferredRead[];
}

/** Executed is an applied proposal: its revision, answer and changes. */
type Executed = Omit<ReturnType<Applier['execute']>, 'response'> & {
  response: RaftProposeResp['response'];
};

/** execute applies one committed proposal: KV writes through the applier's execute, lease
 * grants and revocations through its lease table (a revocation deletes the lease's keys in
 * one revision, like any write). */
function execute(req: ProposalRequest): Executed {
  switch (req.type) {
    case 'leaseGrant':
      applier.grantLease(req.id as LeaseId, req.ttlSeconds);
      return {
        revision: applier.revision, changes: [],
        response: { type: 'leaseGrant', id: req.id, ttlSeconds: req.ttlSeconds },
      };
    case 'leaseRevoke': {
      const r = applier.revokeLease(req.id as LeaseId);
      return { revision: r.revision, changes: r.changes, response: { type: 'leaseRevoke' } };
    }
    default:
      return applier.execute(req);
  }
}

function applyEntries(entries: Entry[]): void {
  const deferred: Deferred[] = [];
  let watched: RevisionChanges[] = [];
  const perShard: AppliedRevision[][] = shards.map(() => []);
  const term = node.status().term;
  let touched = false;
  for (const e of entries) {
    appliedIndex = e.index;
    appliedBytesSinceSnapshot += e.data.length;
    counters.committed++;
    if (e.type !== EntryNormal) {
      confState = node.applyConfChange(decodeConfChange(e.data));
      continue;
    }
    if (e.data.length === 0) continue; // a new leader's empty entry
    const p = decodeProposal(e.data);
    const token = p.m === selfId && p.b === bootNonce ? pending.get(p.n) : undefined;
    if (token !== undefined) pending.delete(p.n);
    const before = applier.revision;
    let result: Executed;
    try {
      result = execute(p.req);
    } catch (err) {
      counters.failed++;
      if (token !== undefined) ctx.ep.replyError(token, err as Error & { code?: string });
      continue;
    }
    counters.applied++;
    if (p.req.type === 'put') counters.puts++;
    else if (p.req.type === 'deleteRange') counters.deletes++;
    else if (p.req.type === 'txn') counters.txns++;
    const compact = p.req.type === 'compaction' ? p.req.revision : undefined;
    if (result.revision !== before || compact !== undefined) {
      partition(perShard, result.revision, result.changes, compact);
      touched = true;
    }
    if (result.revision !== before) {
      if (watchSubscribed) watched.push({ revision: result.revision, changes: result.changes });
      const { attach, detach } = leaseKeyUpdates(result.changes);
      if (attach.length > 0 || detach.length > 0) {
        lease.sendUnbounded({ type: 'LeaseKeysChanged', attach, detach });
      }
    }
    if (compact !== undefined && watchSubscribed) {
      if (watched.length > 0) watch.sendUnbounded({ type: 'WatchChanges', revisions: watched });
      watched = [];
      watch.sendUnbounded({ type: 'WatchCompacted', revision: compact });
    }
    if (p.req.type === 'leaseGrant') {
      lease.sendUnbounded({ type: 'LeaseGranted', id: p.req.id, ttlSeconds: p.req.ttlSeconds });
    } else if (p.req.type === 'leaseRevoke') {
      lease.sendUnbounded({ type: 'LeaseRevoked', id: p.req.id });
    }
    if (token === undefined) continue;
    const reply = { revision: result.revision, raftTerm: term, response: result.response };
    if (result.deferredReads !== undefined && result.deferredReads.length > 0) {
      deferred.push({ token, reply, reads: result.deferredReads });
    } else {
      ctx.ep.reply(token, reply);
    }
  }
  if (touched) {
    shardIndex = appliedIndex;
    const last = applier.revision;
    shards.forEach((s, i) => {
      const revs = perShard[i]!;
      // Every shard advances to the last revision even without changes of its own, so that a
      // read at that revision never waits on a shard that had nothing to do.
      if (revs.length === 0 || revs[revs.length - 1]!.revision !== last) {
        revs.push({ revision: last, changes: [] });
      }
      s.sendUnbounded({ type: 'ShardApply', revisions: revs, index: appliedIndex });
    });
  }
  if (watched.length > 0) watch.sendUnbounded({ type: 'WatchChanges', revisions: watched });
  for (const d of deferred) void answerDeferred(d);
  maybeSnapshot();
}

/** answerDeferred fills a txn's ranges at past revisions — history the applier does not
 * keep — from the shards, which have every revision this entry could read (the ShardApply
 * carrying them left before these asks, on the same channels). */
async function answerDeferred(d: Deferred): Promise<void> {
  try {
    for (const r of d.reads) {
      const parts = await Promise.all(shards.map((s) => s.ask({
        type: 'ShardRange', req: r.request, atRevision: r.revision, waitRevision: 0,
      })));
      fillDeferredRead(d.reply.response as TxnResponse, r.path, mergeRanges(r.request, parts));
    }
    ctx.ep.reply(d.token, d.reply);
  } catch (e) {
    ctx.ep.replyError(d.token, e as Error & { code?: string });
  }
}

function partition(
  perShard: AppliedRevision[][], revision: number, changes: Change[], compact?: number,
): void {
  const n = shards.length;
  const byShard: Change[][] = shards.map(() => []);
  // Shards keep their own history, so the previous versions (needed by watchers, not by
  // shards) stay behind: half the bytes on the busiest channel.
  for (const c of changes) {
    byShard[shardOf(c.kv.key, n)]!.push(c.prevKv === undefined ? c : { kind: c.kind, kv: c.kv });
  }
  for (let i = 0; i < n; i++) {
    const r: AppliedRevision = { revision, changes: byShard[i]! };
    if (compact !== undefined) r.compact = compact;
    if (r.changes.length > 0 || compact !== undefined) perShard[i]!.push(r);
  }
}

function maybeSnapshot(): void {
  if (snapshotting) return;
  if (appliedIndex - snapshotIndex < cfg.snapshotCount &&
    appliedBytesSinceSnapshot < snapshotBytesMax) return;
  appliedBytesSinceSnapshot = 0;
  snapshotting = true;
  const index = appliedIndex;
  const term = storage.term(index as Index);
  const cs = confState;
  const meta = {
    revision: applier.revision, compactRevision: applier.compactRevision,
    leases: applier.leasesWithTtl(),
  };
  // Asked right after the ShardApply that reached `index`, on the same channels, so every
  // dump reflects exactly the state at `index`.
  Promise.all(shards.map((s) => s.ask({ type: 'ShardSnapshot' })))
    .then(async (dumps) => {
      const body = pack({ ...meta, confState: cs, shards: dumps } satisfies SnapshotBody);
      storage.createSnapshot(index as Index, cs, body);
      await wal.ask({ type: 'WalSnapshotSave', index, term, body });
      const compactTo = index - snapshotCatchUpEntries;
      if (compactTo > storage.firstIndex()) storage.compact(compactTo as Index);
      snapshotIndex = index;
      snapshotting = false;
      log.info({ index, term, bytes: body.length, revision: meta.revision }, 'snapshot taken');
    })
    .catch((e: unknown) => {
      throw new Error(`raft: snapshot at ${index} failed: ${String(e)}`);
    });
}

function propose(req: Uint8Array, token: ReplyToken | undefined): void {
  const n = nextProposalSeq++;
  try {
    node.propose(encodeProposal({ m: selfId, b: bootNonce, n }, req));
  } catch (e) {
    counters.failed++;
    if (token !== undefined) {
      ctx.ep.replyError(token, { code: 'NO_LEADER', message: 'etcdserver: no leader' });
    }
    void e;
    return;
  }
  if (token !== undefined) pending.set(n, token);
}

function status(): RaftStatusResp {
  const st = node.status();
  return {
    memberId: selfId,
    clusterId,
    leader,
    raftTerm: st.term,
    raftIndex: storage.lastIndex(),
    raftAppliedIndex: appliedIndex,
    revision: applier.revision,
    compactRevision: applier.compactRevision,
    isLeader: leader === selfId,
    leaderChanges: counters.leaderChanges,
    proposalsCommitted: counters.committed,
    proposalsApplied: counters.applied,
    proposalsPending: pending.size,
    proposalsFailed: counters.failed,
    putTotal: counters.puts,
    deleteTotal: counters.deletes,
    txnTotal: counters.txns,
    dbSizeBytes: 0,
    keys: applier.keyCount(),
  };
}

ctx.ep.onMessage((msg, token) => {
  switch (msg.type) {
    case 'RaftPropose':
      // The gateway sends the request already encoded: it goes into the entry as it is.
      propose(msg.reqBytes ?? encodeRequest(msg.req!), token);
      break;
    case 'RaftReadIndex':
      if (token !== undefined) readTokens.push(token);
      break;
    case 'RaftStatus':
      if (token !== undefined) ctx.ep.reply(token, status());
      return;
    case 'RaftStep':
      node.step(msg.msg);
      break;
    case 'RaftWatchInterest':
      watchSubscribed = msg.subscribed;
      if (msg.subscribed) {
        watch.sendUnbounded({
          type: 'WatchRecovered', revision: applier.revision,
          compactRevision: applier.compactRevision,
        });
      }
      return;
    default:
      assertNever(msg);
  }
  schedulePump();
});

let pumpScheduled = false;
/** schedulePump runs the loop once per turn, after the whole incoming batch is handled, so
 * that one Ready carries every proposal of the batch. */
function schedulePump(): void {
  if (pumpScheduled) return;
  pumpScheduled = true;
  setImmediate(() => {
    pumpScheduled = false;
    pump();
  });
}

ctx.onStop(() => {
  // No more ticks or proposals; what is not durable yet was never acknowledged. The WAL
  // writer, stopped after this actor, flushes and fsyncs what it holds.
  if (ticker !== undefined) clearInterval(ticker);
});

boot().then(() => ctx.ready(), (e: unknown) => {
  throw e instanceof Error ? e : new Error(String(e));
});
