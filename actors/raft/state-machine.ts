import { AssertionFailed } from '../../src/assert.js';
import { slowApplyWarnMs, snapshotAskTimeoutMs } from '../../src/constants.js';
import { EtcdError, ErrSnapshotCorrupt } from '../../src/errors.js';
import { MemberTable, type Member } from '../../src/cluster/membership.js';
import { expireAsRevokes, leaseKeyUpdates } from '../../src/lease/index.js';
import {
  Applier, type DeferredRead, decodeShardSnapshot, fillDeferredRead, mergeRanges,
  repartitionSnapshots,
} from '../../src/mvcc/index.js';
import type { Change, TxnResponse } from '../../src/mvcc/types.js';
import {
  type ConfChange, ConfChangeAddLearnerNode, ConfChangeAddNode, ConfChangeRemoveNode,
  type ConfState, decodeConfChange, type Entry, EntryNormal,
} from '../../src/raft/index.js';
import { isShared, moveBytes, moveCopy, pack, unpack } from '../../src/runtime/codec.js';
import type { ActorRef, ReplyToken } from '../../src/runtime/endpoint.js';
import type { LeaseId, Revision } from '../../src/types.js';
import type { LeaseMsg } from '../lease/messages.js';
import {
  AppliedWriter, partitionChanges, type ShardMsg, type ShardReplies,
} from '../shard/messages.js';
import type { RevisionChanges, WatchMsg } from '../watch/messages.js';
import type {
  AuthChanged, ProposalRequest, RaftApplied, RaftProposeResp,
} from './messages.js';
import { AuthStore } from '../../src/auth/store.js';
import { type AlarmMember, AlarmStore, isCappedRequest } from '../../src/alarms.js';
import { checkRequest } from '../../src/auth/perms.js';
import {
  type ConfChangeContext, decodeConfChangeContext, decodeProposal, type DecodedSnapshotBody,
  type ProposalId, type SnapshotBody,
} from '../../src/cluster/proposal.js';

/**
 * state-machine: the Raft node's apply unit (etcd keeps its apply loop apart from the Raft
 * loop; here it is a module the loop calls). It owns everything derived from the committed
 * log: the applier (latest state, revisions, leases), the member table, and the fan-out of
 * each applied batch to the shards, the watch hub and the lease actor. It answers the client
 * of every proposal this member made, and knows nothing of Raft's messages or the WAL.
 */

/** ShardDump is one shard's part of a snapshot: its dump, and its values when the body
 * keeps them apart (DecodedSnapshotBody). */
interface ShardDump {
  dump: Uint8Array;
  values?: Uint8Array;
}

/** PreparedRestore is a snapshot body checked and decoded by prepareRestore. */
export interface PreparedRestore {
  dumps: (ShardDump | null)[];
  applier: Applier;
}

/** Replier is how the state machine answers clients (the actor's endpoint). */
export interface Replier {
  reply(token: ReplyToken, body: unknown): void;
  replyError(token: ReplyToken, err: { code?: string; message: string }): void;
  /** flushNow posts what is queued for other actors now, not at the end of this turn. */
  flushNow(): void;
}

/** ApplyHooks are the Raft loop's parts the apply unit needs. */
export interface ApplyHooks {
  /** claim returns the waiting client of a proposal this member made, if any. */
  claim(pid: ProposalId): ReplyToken | undefined;
  /** applyConfChange hands a committed conf change to the Raft core: the new ConfState. */
  applyConfChange(cc: ConfChange): ConfState;
  /** membersChanged is called after the member table changed (peer transport, status). */
  membersChanged(change: { type: number; id: number }): void;
  /** nowMs: a monotonic clock in milliseconds (slow applies are counted against it). */
  nowMs(): number;
  /** alarmsChanged is called after an applied alarm entry changed the alarms. */
  alarmsChanged?(action: 'ACTIVATE' | 'DEACTIVATE', alarm: AlarmMember): void;
  /** beforeAnswers is called at the end of an apply, once its changes are on their way to
   * the shards and before any of its answers is posted (the read point, read-point.ts). */
  beforeAnswers?(): void;
}

/** Counters are the apply unit's statistics (status, metrics). */
export interface ApplyCounters {
  committed: number;
  applied: number;
  failed: number;
  puts: number;
  deletes: number;
  txns: number;
  /** slowApplies: requests whose apply took longer than slowApplyWarnMs (etcd's
   * etcd_server_slow_apply_total). */
  slowApplies: number;
}

/** Deferred is an applied txn whose answer waits for ranges at past revisions. */
interface Deferred {
  token: ReplyToken;
  reply: RaftProposeResp;
  reads: DeferredRead[];
}

/** ApplyBatch gathers what one apply call sends on: deferred answers, the watch hub's
 * revisions, each shard's revisions, and whether any shard has something to apply. */
interface ApplyBatch {
  deferred: Deferred[];
  /** answers: the batch's answers, posted after hooks.beforeAnswers. */
  answers: [ReplyToken, RaftProposeResp][];
  watched: RevisionChanges[];
  /** perShard: each shard's revisions, written as ShardApply carries them. */
  perShard: AppliedWriter[];
  touched: boolean;
}

/** Executed is an applied proposal: its revision, answer and changes. */
type Executed = Omit<ReturnType<Applier['execute']>, 'response'> & {
  response: RaftProposeResp['response'];
};

/** GatewayPush reaches every gateway thread of this member (the main thread's and those of
 * --experimental-gateway-threads): the Raft node's pushes go to all of them. */
export interface GatewayPush {
  sendUnbounded(m: RaftApplied | AuthChanged): void;
  /** threads is how many gateway threads hear the pushes. */
  readonly threads: number;
}

/** Ahead is what applyAhead applied before its entries were durable. */
export interface Ahead {
  /** answers to the gateways' asks, for the WAL writer to post once the entries are durable
   * (every gateway thread has a channel to it). */
  answers: [ReplyToken, RaftProposeResp][];
  /** tokens: every client whose proposal was applied ahead, answered or not: told of the
   * failure if the entries never become durable. */
  tokens: ReplyToken[];
  /** lastIndex: the last entry applied ahead. */
  lastIndex: number;
  /** durable: the applied index and store revision before the entries applied ahead (what
   * is applied AND durable until release). */
  durable: { appliedIndex: number; revision: number };
  /** release sends the rest of what the apply produced (the shards' and the watch hub's
   * changes, the lease actor's, the gateways' revision, answers to other actors, errors):
   * once the entries are durable. */
  release(): void;
  /** undo puts the state back as it was before applyAhead (the entries failed to persist). */
  undo(): void;
}

/** appliedAhead: the requests applyAhead takes (plain KV writes, which Applier.undo can take
 * back, also as sent by a user: their permission check reads only the auth state, which no
 * such request changes). Leases, compactions, auth, alarms and members wait for their commit
 * as before. */
function appliedAhead(req: ProposalRequest): boolean {
  const r = req.type === 'authed' ? req.req : req;
  return r.type === 'put' || r.type === 'deleteRange' || r.type === 'txn';
}

/** isGatewayName: an actor name that is a gateway thread's (the main thread's 'gateway', or a
 * pool thread's 'gateway-N'). */
export function isGatewayName(name: string): boolean {
  return name === 'gateway' || name.startsWith('gateway-');
}

/** StateMachine: see the file comment. */
export class StateMachine {
  applier: Applier = Applier.fromLatest([], 1 as Revision, 0 as Revision, []);
  members = new MemberTable();
  /** auth: users, roles and permissions (src/auth), applied from the log like the rest. */
  auth = new AuthStore();
  /** alarms: every member's alarms (etcd's alarm store), applied from the log like the rest:
   * an active NOSPACE makes the apply refuse what grows the store (etcd's capped applier). */
  alarms = new AlarmStore();
  confState: ConfState = { voters: [], learners: [] };
  /** appliedIndex: the last entry applied. Invariant: appliedIndex ≤ the core's commit. */
  appliedIndex = 0;
  /** appliedTerm: the term of the entry at appliedIndex (0 when unknown: after a restore). */
  appliedTerm = 0;
  /** shardIndex is the Raft index of the last ShardApply sent to the shards. */
  shardIndex = 0;
  /** rewinds counts the applies ahead taken back (ShardRewind); read points carry it. */
  rewinds = 0;
  /** arenaSent[i]: the applier arena whose view shard i was last sent (ShardApply.arena): a
   * ShardApply into the same one names it by id only. */
  private arenaSent: (number | undefined)[] = [];
  /** appliedBytes: entry data applied since the counter was last reset (snapshot trigger). */
  appliedBytes = 0;
  /** leaseRemaining: checkpointed remaining TTLs (seconds) by lease id (etcd 3.6). */
  leaseRemaining = new Map<number, number>();
  /** watchSubscribed: the watch hub wants every revision's changes (RaftWatchInterest). Both
   * start unsubscribed; the hub's first watch subscribes it (actors/watch/actor.ts). */
  watchSubscribed = false;
  readonly counters: ApplyCounters = {
    committed: 0, applied: 0, failed: 0, puts: 0, deletes: 0, txns: 0, slowApplies: 0,
  };
  /** holding: while applyAhead runs, what applyRequest would send at once (error answers,
   * lease key changes), kept to be sent when the entries are durable. */
  private holding: (() => void)[] | undefined;
  /** aheadChanges: while applyAhead runs, every change it made, for Ahead.undo. */
  private aheadChanges: Change[] | undefined;

  constructor(
    private readonly shards: ActorRef<ShardMsg, ShardReplies>[],
    private readonly watch: ActorRef<WatchMsg, unknown>,
    private readonly lease: ActorRef<LeaseMsg, unknown>,
    private readonly out: Replier,
    /** gateway, when set, hears of every applied revision in a cluster or when this member
     * has more than one gateway thread (RaftApplied). */
    private readonly gateway?: GatewayPush,
  ) {}

  /**
   * restore replaces the whole state with a snapshot's (or the empty store's when body is
   * undefined) at `index`: the shards load their part (re-partitioned when the snapshot was
   * taken with another shard count), the applier is rebuilt from the same dumps, and the
   * watch hub and the lease actor start over from it. Used at boot and when a follower
   * installs a snapshot from its leader.
   */
  async restore(body: DecodedSnapshotBody | undefined, index: number,
    prepared?: PreparedRestore, nowMs: () => number = () => 0):
    Promise<{ applierMs: number; shardsWaitMs: number }> {
    const dumps = prepared?.dumps ?? this.prepareDumps(body);
    if (body !== undefined) {
      this.confState = body.confState;
      if (body.members !== undefined) this.members = MemberTable.fromJson(body.members);
    }
    this.leaseRemaining = new Map(body?.leaseCheckpoints ?? []);
    this.auth = AuthStore.fromJson(body?.auth);
    this.alarms = AlarmStore.fromJson(body?.alarms);
    this.gateway?.sendUnbounded({ type: 'AuthChanged', state: this.auth.toJson() });
    // Each shard gets its dump while the applier below reads the same bytes: a dump read from
    // the snapshot file is in shared memory that nobody writes, and goes as it is; any other
    // (a leader's snapshot, a re-split) as a copy of its own, moved to the shard (one memory
    // copy here, where packing it into the message would cost two).
    const loading = Promise.all(this.shards.map((s, i) => {
      const d = dumps[i]!;
      return s.ask({
        type: 'ShardRestore', dump: d === null ? null : dumpFor(d.dump), index,
        ...(d?.values === undefined ? {} : { values: dumpFor(d.values) }),
      }, snapshotAskTimeoutMs);
    }));
    this.arenaSent = []; // a restored shard holds no arena of the applier's
    // Posted now: queued, the dumps would leave at the end of this turn, after the applier
    // below is built, and the shards would load after it instead of beside it.
    this.out.flushNow();
    // Unless a follower's install built it ahead (to check the snapshot before saving it),
    // the applier's latest state comes from the same dumps, column to column, built here
    // while the shard threads load theirs (nothing reaches the shards until they answer).
    const t0 = nowMs();
    this.applier = prepared?.applier ?? this.applierOf(body, dumps);
    const t1 = nowMs();
    await loading;
    const shardsWaitMs = nowMs() - t1;
    this.appliedIndex = index;
    this.appliedTerm = 0;
    this.shardIndex = index;
    // The gateways serve serializable reads at the newest revision they heard of: a follower
    // that installed a leader's snapshot served its old revision until its next write.
    this.gateway?.sendUnbounded({ type: 'RaftApplied', revision: this.applier.revision,
      raftTerm: 0 });
    // An unsubscribed hub hears where the store stands when it subscribes again.
    if (this.watchSubscribed) {
      this.watch.sendUnbounded({
        type: 'WatchRecovered', revision: this.applier.revision,
        compactRevision: this.applier.compactRevision,
      });
    }
    this.lease.sendUnbounded({
      type: 'LeaseRecovered',
      leases: this.applier.leasesWithTtl().map(({ id, ttl }) => ({
        id, ttlSeconds: ttl, keys: this.applier.keysOfLease(id as LeaseId),
        ...(this.leaseRemaining.has(id) ? { remainingSeconds: this.leaseRemaining.get(id)! } : {}),
      })),
    });
    return { applierMs: t1 - t0, shardsWaitMs };
  }

  /**
   * prepareRestore checks a snapshot body and decodes what restore needs from it (the
   * shards' dumps, re-split for this member's shard count, and the applier built from them),
   * changing nothing: a body that cannot be restored throws here, before any of it is saved
   * or sent to the shards (ErrSnapshotCorrupt, or the decoders' own errors).
   */
  prepareRestore(body: DecodedSnapshotBody | undefined): PreparedRestore {
    const dumps = this.prepareDumps(body);
    return { dumps, applier: this.applierOf(body, dumps) };
  }

  /** prepareDumps checks a snapshot body's shape and gives the shards' dumps, re-split for
   * this member's shard count (nulls: the empty store). */
  private prepareDumps(body: DecodedSnapshotBody | undefined): (ShardDump | null)[] {
    if (body === undefined) return this.shards.map(() => null);
    if (typeof body !== 'object' || body === null || !Array.isArray(body.shards) ||
      body.shards.length === 0 || !body.shards.every((d) => d instanceof Uint8Array)) {
      throw new ErrSnapshotCorrupt('snapshot body without shard dumps');
    }
    const values = body.shardValues;
    if (body.shards.length === this.shards.length) {
      return body.shards.map((dump, i) =>
        (values === undefined ? { dump } : { dump, values: values[i]! }));
    }
    const parts = body.shards.map((d) => unpack(d));
    return repartitionSnapshots(parts, this.shards.length, values)
      .map((x) => ({ dump: pack(x) }));
  }

  /** applierOf builds the applier's latest state from the dumps, column to column. */
  private applierOf(body: SnapshotBody | undefined, dumps: (ShardDump | null)[]): Applier {
    const columns = [];
    for (const d of dumps) {
      if (d !== null) columns.push(decodeShardSnapshot(unpack(d.dump), d.values));
    }
    // Dumps read from the snapshot file are shared memory nobody writes (see restore): the
    // applier reads its values there, as the shards do, instead of copying them.
    const shared = dumps.every((d) => d === null || isShared(d.values ?? d.dump));
    // An empty store is at revision 1, as etcd's: the first write makes revision 2.
    return Applier.fromSnapshotColumns(columns, (body?.revision ?? 1) as Revision,
      (body?.compactRevision ?? 0) as Revision, body?.leases ?? [], shared);
  }

  /** snapshotMeta is the non-shard part of a snapshot at the applied index. */
  snapshotMeta(): Omit<SnapshotBody, 'shards'> {
    return {
      revision: this.applier.revision, compactRevision: this.applier.compactRevision,
      leases: this.applier.leasesWithTtl(), confState: this.confState,
      members: this.members.toJson(), leaseCheckpoints: [...this.leaseRemaining],
      auth: this.auth.toJson(), alarms: this.alarms.get(),
    };
  }

  /** setWatchInterest follows the watch hub's (un)subscription. */
  setWatchInterest(subscribed: boolean): void {
    this.watchSubscribed = subscribed;
    if (subscribed) {
      this.watch.sendUnbounded({
        type: 'WatchRecovered', revision: this.applier.revision,
        compactRevision: this.applier.compactRevision,
      });
    }
  }

  /** executeTimed is execute, counting a slow apply (over slowApplyWarnMs) as etcd does. */
  private executeTimed(req: ProposalRequest, hooks: ApplyHooks): Executed {
    const t0 = hooks.nowMs();
    try {
      return this.execute(req, hooks);
    } finally {
      if (hooks.nowMs() - t0 > slowApplyWarnMs) this.counters.slowApplies++;
    }
  }

  /** apply applies committed entries in order and fans their changes out. */
  apply(entries: Entry[], term: number, hooks: ApplyHooks): void {
    const acc = this.newBatch();
    for (const e of entries) {
      if (e.index <= this.appliedIndex) continue; // already in the restored state
      this.advanceTo(e);
      if (e.type !== EntryNormal) {
        this.applyConfChange(decodeConfChange(e.data), term, hooks, acc);
        continue;
      }
      if (e.data.length === 0) continue; // a new leader's empty entry
      const p = decodeProposal(e.data);
      const token = hooks.claim(p);
      if (p.req.type !== 'leaseExpire') {
        this.applyRequest(p.req, token, term, hooks, acc);
        continue;
      }
      // A leaseExpire batch applies as the single revokes it stands for, one after another
      // (one revision each, as etcd's one LeaseRevoke per lease); its proposer (the lease
      // actor) hears once, after the last.
      const reqs = expireAsRevokes(p.req.ids, (id) => this.applier.leaseExists(id as LeaseId));
      for (const req of reqs) this.applyRequest(req, undefined, term, hooks, acc);
      if (token !== undefined) {
        acc.answers.push([token, {
          revision: this.applier.revision, raftTerm: term,
          response: { type: 'leaseExpire', revoked: reqs.length },
        }]);
      }
    }
    if (acc.touched) this.shardIndex = this.appliedIndex;
    this.fanOut(acc, this.appliedIndex, this.applier.revision, term);
    // No answer leaves before the read point covers what it answers (a client that reads
    // after its write's answer must see the write).
    hooks.beforeAnswers?.();
    this.answer(acc.answers, acc.deferred);
  }

  /**
   * applyAhead applies the leading entries of a lone leader's append before they are
   * durable, so that their answers can leave from the WAL writer the moment its fsync ends
   * instead of waiting for this thread to hear of it, commit and apply (one thread hop less
   * on every write; actors/raft/node.ts decides when, docs/raft.md says why it is safe).
   * Only plain KV writes are applied ahead (put, delete, txn: what undo can take back), from
   * the first entry after the applied index, up to the first entry of another kind. The read
   * point moves at once (a read that takes it waits at the shards for changes that are sent
   * only once durable). Everything else the apply produced is held: the caller calls
   * release() once the WAL has the entries, or undo() if it failed. undefined: nothing was
   * applied.
   */
  applyAhead(entries: readonly Entry[], term: number, hooks: ApplyHooks): Ahead | undefined {
    if (entries.length === 0 || entries[0]!.index !== this.appliedIndex + 1) return undefined;
    const before = {
      appliedIndex: this.appliedIndex, appliedTerm: this.appliedTerm, shardIndex: this.shardIndex,
      appliedBytes: this.appliedBytes, revision: this.applier.revision,
      counters: { ...this.counters },
    };
    const acc = this.newBatch();
    const tokens: ReplyToken[] = [];
    const held: (() => void)[] = [];
    const changes: Change[] = [];
    this.holding = held;
    this.aheadChanges = changes;
    try {
      for (const e of entries) {
        if (e.type !== EntryNormal) break;
        const p = e.data.length === 0 ? undefined : decodeProposal(e.data);
        if (p !== undefined && !appliedAhead(p.req)) break;
        this.advanceTo(e);
        if (p === undefined) continue;
        const token = hooks.claim(p);
        if (token !== undefined) tokens.push(token);
        this.applyRequest(p.req, token, term, hooks, acc);
      }
    } finally {
      this.holding = undefined;
      this.aheadChanges = undefined;
    }
    if (this.appliedIndex === before.appliedIndex) return undefined;
    if (acc.touched) this.shardIndex = this.appliedIndex;
    const index = this.appliedIndex;
    const revision = this.applier.revision;
    hooks.beforeAnswers?.();
    const toGateways = acc.answers.filter(([t]) => isGatewayName(t.from));
    const others = acc.answers.filter(([t]) => !isGatewayName(t.from));
    return {
      answers: toGateways, tokens, lastIndex: index,
      durable: { appliedIndex: before.appliedIndex, revision: before.revision },
      release: () => {
        for (const f of held) f();
        this.fanOut(acc, index, revision, term);
        this.answer(others, acc.deferred);
      },
      undo: () => {
        this.applier.undo(changes, before.revision);
        this.appliedIndex = before.appliedIndex;
        this.appliedTerm = before.appliedTerm;
        this.shardIndex = before.shardIndex;
        this.appliedBytes = before.appliedBytes;
        Object.assign(this.counters, before.counters);
        // Reads that took the read point moved ahead wait at the shards for changes that
        // will never come: the shards fail them, and the gateways read again.
        this.rewinds++;
        for (const s of this.shards) {
          s.sendUnbounded({
            type: 'ShardRewind', index: this.shardIndex, revision: this.applier.revision,
            rewinds: this.rewinds,
          });
        }
      },
    };
  }

  /** fanOut sends an applied batch's changes to the shards (as of Raft index `index`, store
   * revision `revision`) and the watch hub, and tells the gateways of the revision. */
  private fanOut(acc: ApplyBatch, index: number, revision: number, term: number): void {
    const { watched, perShard, touched } = acc;
    if (touched) {
      this.shards.forEach((s, i) => {
        const revs = perShard[i]!;
        // Every shard advances to the last revision even without changes of its own, so that
        // a read at that revision never waits on a shard that had nothing to do.
        if (revs.lastRevision !== revision) revs.revision(revision, undefined, false);
        const arena = revs.arenaFields(this.arenaSent[i]);
        if (arena.arenaId !== undefined) this.arenaSent[i] = arena.arenaId;
        s.sendUnbounded({ type: 'ShardApply', revisions: revs.finish(), index, ...arena });
      });
      this.dropSentRelocation();
    }
    if (watched.length > 0) this.watch.sendUnbounded({ type: 'WatchChanges', revisions: watched });
    if (touched && this.gateway !== undefined &&
      (this.members.size > 1 || this.gateway.threads > 1)) {
      this.gateway.sendUnbounded({ type: 'RaftApplied', revision, raftTerm: term });
    }
  }

  /** dropSentRelocation lets the applier drop its arena's relocation table once every shard
   * has been sent it (with the arena's view, on its first ShardApply into that arena): it is
   * read only then, by the shard, from the message. */
  private dropSentRelocation(): void {
    const a = this.applier.sharedArena();
    if (a?.relocated === undefined) return;
    for (let i = 0; i < this.shards.length; i++) if (this.arenaSent[i] !== a.id) return;
    this.applier.dropRelocation();
  }

  /** answer posts a batch's answers, and asks the shards for its deferred txn reads. */
  private answer(answers: readonly [ReplyToken, RaftProposeResp][], deferred: Deferred[]): void {
    for (const [token, reply] of answers) this.out.reply(token, reply);
    for (const d of deferred) void this.answerDeferred(d);
  }

  /** newBatch is an empty ApplyBatch for one apply call. */
  private newBatch(): ApplyBatch {
    return {
      deferred: [], answers: [], watched: [], perShard: this.shards.map(() => new AppliedWriter()),
      touched: false,
    };
  }

  /** advanceTo moves the applied position to entry e (counted as committed). */
  private advanceTo(e: Entry): void {
    this.appliedIndex = e.index;
    this.appliedTerm = e.term;
    this.appliedBytes += e.data.length;
    this.counters.committed++;
  }

  /** emit sends now, or holds the send while applyAhead runs. */
  private emit(send: () => void): void {
    if (this.holding !== undefined) this.holding.push(send);
    else send();
  }

  /** applyRequest applies one request (a leaseExpire batch's revokes one by one) and gathers
   * its changes for the shards, the watch hub and the lease actor into acc. */
  private applyRequest(req: ProposalRequest, token: ReplyToken | undefined, term: number,
    hooks: ApplyHooks, acc: ApplyBatch): void {
    const before = this.applier.revision;
    let result: Executed;
    try {
      req = this.authorized(req); // a write sent under auth: checked again here (etcd too)
      // etcd's capped applier: the same log position refuses the same writes on every member.
      if (this.alarms.has('NOSPACE') && isCappedRequest(req)) throw new EtcdError('NO_SPACE');
      result = this.executeTimed(req, hooks);
    } catch (err) {
      this.counters.failed++;
      if (token !== undefined) {
        this.emit(() => this.out.replyError(token, err as Error & { code?: string }));
      }
      return;
    }
    if (this.aheadChanges !== undefined) for (const c of result.changes) this.aheadChanges.push(c);
    this.counters.applied++;
    if (req.type === 'put') this.counters.puts++;
    else if (req.type === 'deleteRange') this.counters.deletes++;
    else if (req.type === 'txn') this.counters.txns++;
    const compact = req.type === 'compaction' ? req.revision : undefined;
    if (result.revision !== before || compact !== undefined) {
      partitionChanges(acc.perShard, result.revision, result.changes, compact, this.applier);
      acc.touched = true;
    }
    if (result.revision !== before) {
      if (this.watchSubscribed) {
        acc.watched.push({ revision: result.revision, changes: result.changes });
      }
      const { attach, detach } = leaseKeyUpdates(result.changes);
      if (attach.length > 0 || detach.length > 0) {
        this.emit(() => this.lease.sendUnbounded({ type: 'LeaseKeysChanged', attach, detach }));
      }
    }
    if (compact !== undefined && this.watchSubscribed) {
      if (acc.watched.length > 0) {
        this.watch.sendUnbounded({ type: 'WatchChanges', revisions: acc.watched });
      }
      acc.watched = [];
      this.watch.sendUnbounded({ type: 'WatchCompacted', revision: compact });
    }
    if (req.type === 'leaseGrant') {
      this.lease.sendUnbounded({ type: 'LeaseGranted', id: req.id, ttlSeconds: req.ttlSeconds });
    } else if (req.type === 'leaseRevoke') {
      this.lease.sendUnbounded({ type: 'LeaseRevoked', id: req.id });
    }
    if (token === undefined) return;
    const reply = { revision: result.revision, raftTerm: term, response: result.response };
    if (result.deferredReads !== undefined && result.deferredReads.length > 0) {
      acc.deferred.push({ token, reply, reads: result.deferredReads });
    } else {
      acc.answers.push([token, reply]);
    }
  }

  /** execute applies one committed proposal: KV writes through the applier's execute, lease
   * grants and revocations through its lease table (a revocation deletes the lease's keys in
   * one revision, like any write), member attributes through the member table. */
  private execute(req: ProposalRequest, hooks: ApplyHooks): Executed {
    const a = this.applier;
    switch (req.type) {
      case 'leaseGrant':
        a.grantLease(req.id as LeaseId, req.ttlSeconds);
        return {
          revision: a.revision, changes: [],
          response: { type: 'leaseGrant', id: req.id, ttlSeconds: req.ttlSeconds },
        };
      case 'leaseRevoke': {
        const r = a.revokeLease(req.id as LeaseId);
        this.leaseRemaining.delete(req.id);
        return { revision: r.revision, changes: r.changes, response: { type: 'leaseRevoke' } };
      }
      case 'leaseCheckpoint': {
        const applied = req.checkpoints.filter((c) => a.leaseExists(c.id as LeaseId));
        for (const c of applied) {
          if (c.remainingSeconds > 0) this.leaseRemaining.set(c.id, c.remainingSeconds);
          else this.leaseRemaining.delete(c.id);
        }
        if (applied.length > 0) {
          this.lease.sendUnbounded({ type: 'LeaseCheckpointed', checkpoints: applied });
        }
        return { revision: a.revision, changes: [], response: { type: 'leaseCheckpoint' } };
      }
      case 'auth': {
        const r = this.auth.apply(req);
        this.announceAuth(r, req.op === 'authenticate' ? req.name : undefined);
        const { changed: _c, invalidate: _i, tokensCleared: _t, ...response } = r;
        return { revision: a.revision, changes: [], response };
      }
      case 'alarm': {
        const changed = req.action === 'ACTIVATE'
          ? this.alarms.activate(req.memberId, req.alarm)
          : this.alarms.deactivate(req.memberId, req.alarm);
        if (changed !== undefined) hooks.alarmsChanged?.(req.action, changed);
        return {
          revision: a.revision, changes: [],
          response: { type: 'alarm', alarms: changed === undefined ? [] : [changed] },
        };
      }
      case 'authed':
        throw new EtcdError('INTERNAL'); // unwrapped by apply
      case 'leaseExpire':
        // apply expands a batch into single revokes (expireAsRevokes) before executing.
        throw new AssertionFailed('apply expands a leaseExpire batch before executing it');
      case 'memberPublish':
        this.members.publish(req.id, req.name, req.clientURLs, req.grpcClientURLs);
        hooks.membersChanged({ type: -1, id: req.id });
        return this.memberResult(req.id);
      case 'memberUpdate':
        if (!this.members.has(req.id)) {
          throw new EtcdError('MEMBER_NOT_FOUND');
        }
        this.members.updatePeerUrls(req.id, req.peerURLs);
        hooks.membersChanged({ type: -1, id: req.id });
        return this.memberResult(req.id);
      default:
        return a.execute(req);
    }
  }

  /** authorized unwraps a request sent with its sender, checking its permissions again at
   * this log position's auth state (etcd's authApplierV3): a permission revoked after the
   * gateway checked is never bypassed. */
  private authorized(req: ProposalRequest): ProposalRequest {
    if (req.type !== 'authed') return req;
    checkRequest(this.auth, req.by, req.req, (id) => this.applier.keysOfLease(id as LeaseId));
    return req.req;
  }

  /** announceAuth tells this member's gateway what an applied auth request changed. */
  private announceAuth(r: ReturnType<AuthStore['apply']>, user: string | undefined): void {
    if (this.gateway === undefined) return;
    const m: AuthChanged = { type: 'AuthChanged' };
    if (r.changed === true) m.state = this.auth.toJson();
    if (r.token !== undefined && user !== undefined) m.token = { token: r.token, user };
    if (r.invalidate !== undefined) m.invalidate = r.invalidate;
    if (r.tokensCleared === true) m.tokensCleared = true;
    if (m.state !== undefined || m.token !== undefined) this.gateway.sendUnbounded(m);
  }

  private memberResult(id: number): Executed {
    const member = this.members.get(id);
    return {
      revision: this.applier.revision, changes: [],
      response: {
        type: 'memberChange', members: this.members.list(),
        ...(member === undefined ? {} : { member }),
      },
    };
  }

  /** applyConfChange applies a membership change to the core and the member table, and
   * answers its proposer. */
  private applyConfChange(cc: ConfChange, term: number, hooks: ApplyHooks, acc: ApplyBatch):
    void {
    const ctx: ConfChangeContext | undefined = decodeConfChangeContext(cc.context);
    const token = ctx?.p === undefined ? undefined : hooks.claim(ctx.p);
    const before: Member | undefined = this.members.get(cc.nodeId);
    this.confState = hooks.applyConfChange(cc);
    switch (cc.type) {
      case ConfChangeAddNode:
        if (before !== undefined) this.members.promote(cc.nodeId);
        else if (ctx !== undefined) this.members.add({ ...ctx.member, isLearner: false });
        break;
      case ConfChangeAddLearnerNode:
        if (before !== undefined) this.members.demote(cc.nodeId);
        else if (ctx !== undefined) this.members.add({ ...ctx.member, isLearner: true });
        break;
      case ConfChangeRemoveNode:
        this.members.remove(cc.nodeId);
        break;
    }
    hooks.membersChanged({ type: cc.type, id: cc.nodeId });
    if (token !== undefined) {
      const member = this.members.get(cc.nodeId) ?? before ?? ctx?.member;
      acc.answers.push([token, {
        revision: this.applier.revision, raftTerm: term,
        response: {
          type: 'memberChange', members: this.members.list(),
          ...(member === undefined ? {} : { member }),
        },
      }]);
    }
  }

  /** answerDeferred fills a txn's ranges at past revisions — history the applier does not
   * keep — from the shards, which have every revision this entry could read (the ShardApply
   * carrying them left before these asks, on the same channels). */
  private async answerDeferred(d: Deferred): Promise<void> {
    try {
      for (const r of d.reads) {
        const parts = await Promise.all(this.shards.map((s) => s.ask({
          type: 'ShardRange', req: r.request, atRevision: r.revision, waitRevision: 0,
        })));
        fillDeferredRead(d.reply.response as TxnResponse, r.path, mergeRanges(r.request, parts));
      }
      this.out.reply(d.token, d.reply);
    } catch (e) {
      this.out.replyError(d.token, e as Error & { code?: string });
    }
  }
}

/** dumpFor is what a shard is sent of its dump (see StateMachine.restore): shared memory
 * shared, anything else copied and moved. */
function dumpFor(d: Uint8Array): Uint8Array {
  return isShared(d) ? moveBytes(d) : moveCopy(d);
}
