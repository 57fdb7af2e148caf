import { assertNever } from '../../src/assert.js';
import {
  type AlarmMember, type AlarmType, type DiskFaultKind, diskFaultCode, diskFaultOfCode,
  isCappedRequest,
} from '../../src/alarms.js';
import { failpoint, failpointErrno, failpointsEnabled } from '../../src/runtime/failpoint.js';
import { memberIdOf } from '../../src/cluster/ids.js';
import { LeaderWait } from '../../src/cluster/leader-wait.js';
import type { Member } from '../../src/cluster/membership.js';
import {
  checkAdd, checkPromote, checkRemove, learnerReady, type ReconfigRefusal, type ReconfigView,
} from '../../src/cluster/reconfig.js';
import { EtcdError } from '../../src/errors.js';
import { DroppedBytesWatch } from '../../src/runtime/gc.js';
import { IdleRepack } from '../../src/mvcc/index.js';
import {
  inflightMsgsMax, sizePerMsgBytesMax, reconfigHealthIntervalMs, traceBatchParentsMax,
  diskProbeIntervalMs, quotaCheckIntervalMs, snapshotAskTimeoutMs, snapshotDataHoldMs,
  snapshotRestoreAttemptsMax, stopSnapshotWaitMs, walAppendAskTimeoutMs, idleSnapshotAfterMs,
  keysRepackIdleMs,
  applyAheadEntriesMin,
} from '../../src/constants.js';
import {
  type ConfChange, ConfChangeAddLearnerNode, ConfChangeAddNode, ConfChangeRemoveNode,
  ErrProposalDropped, type HardState, type Message as RaftMessage, MemoryStorage, RawNode,
  type Ready, RaftError,
  seededRng, type SoftState,
} from '../../src/raft/index.js';
import { moveBytes, moveCopy } from '../../src/runtime/codec.js';
import { frameEntries } from '../../src/wal/index.js';
import type { ActorRef, Endpoint, ReplyToken } from '../../src/runtime/endpoint.js';
import type { TraceRef } from '../../src/runtime/trace.js';
import type { Index, MemberId, Term } from '../../src/types.js';
import type { LeaseMsg } from '../lease/messages.js';
import type { PeerMsg, PeerReplies } from '../peer/messages.js';
import type { ShardMsg, ShardReplies } from '../shard/messages.js';
import type { WalLoadResp, WalMsg, WalReplies } from '../wal/messages.js';
import type { WatchMsg } from '../watch/messages.js';
import type {
  AuthChanged, RaftAlarm, RaftAlarmResp, RaftApplied, RaftMsg, RaftNodeConfig, RaftMembersResp,
  RaftPropose, RaftStatusResp,
} from './messages.js';
import {
  encodeConfChangeContext, encodeProposal, encodeRequest, type DecodedSnapshotBody,
  decodeSnapshotBody,
} from '../../src/cluster/proposal.js';
import { type ErrorBody, Proposals, timeoutError } from './proposals.js';
import { ReadIndexQueue } from './read-index.js';
import { publishReadPoint } from './read-point.js';
import type { SharedCell } from '../../src/runtime/shared-cell.js';
import { Snapshotter } from './snapshots.js';
import {
  type Ahead, type GatewayPush, isGatewayName, type PreparedRestore, StateMachine,
} from './state-machine.js';

/** NodeLogger is the part of pino the Raft node uses. */
export interface NodeLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/**
 * RaftNodeDeps is everything the Raft node takes from its surroundings, so that a test can
 * run several members' nodes in one process (each with its own endpoint, clock and timers).
 */
export interface RaftNodeDeps {
  config: RaftNodeConfig;
  /** ep: this node's endpoint; the actors 'wal', 'shard-i', 'watch', 'lease' and (in a
   * cluster) 'peer' must be connected to it. */
  ep: Endpoint<RaftMsg>;
  log: NodeLogger;
  /** nowMs: a monotonic clock in milliseconds. */
  nowMs(): number;
  /** collectGarbage, when set, queues a full GC of the thread (large buffers just dropped). */
  collectGarbage?: (delayMs?: number) => void;
  /** collectIdleGarbage, when set, queues the full GCs that follow a key repack's pass
   * (collectIdleGarbageSoon). */
  collectIdleGarbage?: () => void;
  /** wallMs: the wall clock (ids of members added at run time mix it in, as etcd's). */
  wallMs(): number;
  /** every runs fn every ms milliseconds until the returned stop is called. */
  every(ms: number, fn: () => void): () => void;
  /** defer runs fn once, after the current batch of messages (setImmediate). */
  defer(fn: () => void): void;
  /** bootNonce tells this boot's proposals apart from those of earlier boots in the log. */
  bootNonce: number;
  /** removed is called once this member learns it was removed from the cluster. */
  removed(reason: string): void;
  /** readPoint, when set, is the generation's shared cell where the node publishes its
   * linearizable read point while it is the only voter (read-point.ts). */
  readPoint?: SharedCell;
}

/** Proposing: a client's proposal on its way into the core (propose, flushProposals). */
interface Proposing {
  data: Uint8Array;
  n: number;
  token: ReplyToken | undefined;
  trace: TraceRef[] | undefined;
  /** deadlineMs: the request's timeout, counted from when the node took it. */
  deadlineMs: number;
}

/** errors answered by the Raft node: rows of src/errors.ts (etcd's codes and wording). */
const E = {
  noLeader: new EtcdError('NO_LEADER'),
  notLeader: new EtcdError('NOT_LEADER'),
  dropped: new EtcdError('PROPOSAL_DROPPED'),
  learner: new EtcdError('NOT_SUPPORTED_FOR_LEARNER'),
  memberNotFound: new EtcdError('MEMBER_NOT_FOUND'),
  peerUrlExists: new EtcdError('PEER_URL_EXIST'),
  notLearner: new EtcdError('MEMBER_NOT_LEARNER'),
  learnerNotReady: new EtcdError('LEARNER_NOT_READY'),
  tooManyLearners: new EtcdError('TOO_MANY_LEARNERS'),
  notEnoughStarted: new EtcdError('NOT_ENOUGH_STARTED'),
  unhealthy: new EtcdError('UNHEALTHY'),
  badTransferee: new EtcdError('BAD_LEADER_TRANSFEREE'),
  transferTimeout: new EtcdError('TIMEOUT_LEADER_TRANSFER'),
  noSpace: new EtcdError('NO_SPACE'),
  stopped: new EtcdError('STOPPED'),
} satisfies Record<string, ErrorBody>;

const refusals: Record<ReconfigRefusal, ErrorBody> = {
  NOT_ENOUGH_STARTED: E.notEnoughStarted,
  UNHEALTHY: E.unhealthy,
  LEARNER_NOT_READY: E.learnerNotReady,
};

/** maxLearners is etcd's: at most one learner in the cluster at a time. */
const maxLearners = 1;

/**
 * RaftNode is the shell around the Raft core (src/raft): the loop that follows the
 * Ready/advance contract (docs/raft.md) with at most one Ready being persisted at a time —
 * while the WAL writer fsyncs one Ready, new proposals pile up in the core and all go into
 * the next (group commit falls out of it). Around the loop:
 *
 * - the apply unit (StateMachine) applies committed entries and answers proposals;
 * - the read-index queue (ReadIndexQueue) batches linearizable reads;
 * - the snapshotter (Snapshotter) takes snapshots; the loop installs the leader's;
 * - the peer actor carries Ready.messages to the other members: a follower's or candidate's
 *   messages leave only after the WAL fsync of the state they promise (an append's entries,
 *   a vote); a leader's may leave while its own fsync runs (thesis §10.2.1), since it counts
 *   itself toward a quorum only after advance.
 *
 * A single member's write path is unchanged by all of it: no message leaves (there is no one
 * to send to), so no hop is added.
 */
export class RaftNode {
  private readonly cfg: RaftNodeConfig;
  private readonly ep: Endpoint<RaftMsg>;
  private readonly log: NodeLogger;
  selfId: number;
  clusterId: number;
  private readonly wal: ActorRef<WalMsg, WalReplies>;
  private readonly shards: ActorRef<ShardMsg, ShardReplies>[];
  private readonly lease: ActorRef<LeaseMsg, unknown>;
  private readonly peer: ActorRef<PeerMsg, PeerReplies> | undefined;
  private readonly sm: StateMachine;
  private readonly proposals = new Proposals();
  private readonly reads = new ReadIndexQueue();
  private readonly snapshots: Snapshotter;
  private storage = new MemoryStorage();
  /** applierDropped: what the applier replaced, and when that is worth a GC (noticeGrowth). */
  private readonly applierDropped = new DroppedBytesWatch((delayMs) =>
    this.deps.collectGarbage?.(delayMs));
  /** snapshotReading: a WalSnapshotRead is in flight (wantSnapshotData). */
  private snapshotReading = false;
  /** bootPhases: how long each step of the last boot took (ms), for the logs. */
  private bootPhases: Record<string, number> = {};
  /** replayUntil: the commit index recovered at boot, until the apply reaches it. */
  private replayUntil: { index: number; fromMs: number; entries: number } | undefined;
  private node!: RawNode;
  private inflight: Ready | undefined;
  /** appendSeq numbers this node's WAL appends (WalAppend.seq). */
  private appendSeq = 0;
  /** ahead: the in-flight append's entries applied ahead of their fsync (applyAhead). */
  private ahead: { seq: number; applied: Ahead } | undefined;
  /** afterAhead: answers waiting for the entries applied ahead to be durable or taken back
   * (whenDecided): RaftBarrier, and read-index answers (their point must cover the writes
   * the WAL writer may already have acknowledged, and must not be taken back). */
  private afterAhead: (() => void)[] = [];
  /** lastApplyMs: when committed entries were last applied (the idle snapshot waits on it). */
  private lastApplyMs = 0;
  /** keysRepack packs the applier's keys left alone back into bytes while nothing is applied
   * (keysRepackIdleMs), a slice at a time between messages. */
  private readonly keysRepack = new IdleRepack({
    repack: (chunks) => this.sm.applier.repackKeys(chunks),
    chunks: () => this.sm.applier.keyChunks(),
    idle: () => !this.stopped && this.inflight === undefined && this.fault === undefined &&
      this.deps.nowMs() - this.lastApplyMs >= keysRepackIdleMs,
    defer: (fn) => this.deps.defer(fn),
    collect: () => this.deps.collectIdleGarbage?.(),
  });
  /** lastHardState is the hard state last made durable; commit-only changes ride along with
   * the next append rather than costing an fsync of their own (commit is recoverable). */
  private lastHardState: HardState = { term: 0, vote: 0, commit: 0 } as HardState;
  private pendingHardState: HardState | undefined;
  private raftState: SoftState['raftState'] = 'StateFollower';
  leader = 0;
  private leaderChanges = 0;
  private stopTicker: (() => void) | undefined;
  private stopped = false;
  /** stopAsked: stop() has begun (the read point stays withdrawn from then on). */
  private stopAsked = false;
  private pumpScheduled = false;
  private onLeader: (() => void) | undefined;
  /** transfers wait for a leader transfer to finish (the transferee leads). */
  private transfers: { to: number; token: ReplyToken; deadlineMs: number }[] = [];
  /** publishedAtMs: when the member last proposed its attributes (retried until applied). */
  private publishedAtMs = -Infinity;
  /** publishProposed: this run proposed its attributes and has not yet seen them applied. */
  private publishProposed = false;
  private removedReported = false;
  /** snapshotsDropped counts leader snapshots this member could not install (dropSnapshot). */
  private snapshotsDropped = 0;
  private learnerCache: boolean | undefined;
  /** early: messages received before the core was built (replayed by boot). */
  private early: [RaftMsg, ReplyToken | undefined][] | undefined = [];
  /** clientURLs: what this member publishes (the gateway resolves a listen port 0). */
  private clientURLs: string[];
  /** grpcClientURLs: the gRPC URLs this member publishes, once its gRPC gateway listens. */
  private grpcClientURLs: string[] | undefined;
  /** traced: the trace contexts of proposals made since the last WAL append (bounded by
   * traceBatchParentsMax); the next append, and the apply after its fsync, continue them. */
  private traced: TraceRef[] = [];
  /** proposing: the proposals taken since the last pass (propose, flushProposals). Bounded by
   * what one turn's batches carry (the gateways' admission limit). */
  private proposing: Proposing[] = [];
  /** leaderless: the proposals taken while this member knows no leader (LeaderWait: a write
   * that reaches it during an election or a leadership transfer waits for the new leader, up
   * to its request timeout, as etcd's). Bounded as `proposing` is: each is a request in
   * flight, within the gateways' admission limit. */
  private readonly leaderless = new LeaderWait<Proposing>();
  /**
   * ownNoSpace: this member's disk refused a write for lack of space, so it raised its own
   * NOSPACE, which it cannot append to its own log: 'pending' until another member has
   * proposed it (syncOwnAlarm), 'recorded' after. Listed with the replicated alarms meanwhile
   * (docs/reliability.md).
   */
  private ownNoSpace: 'pending' | 'recorded' | undefined;
  /** ownAlarmSync: when syncOwnAlarm last asked another member, and whether it waits. */
  private ownAlarmSyncAtMs = -Infinity;
  private ownAlarmSyncing = false;
  private ownAlarmTarget = 0;
  /** ownAlarmPeer: the member that recorded this member's NOSPACE, asked whether it is still
   * listed (it has applied it; another member might not have yet). */
  private ownAlarmPeer: number | undefined;
  /**
   * fault: set while this member refuses every write because a write to its disk failed
   * (docs/reliability.md). The core that held the failed Ready is parked (neither ticked nor
   * stepped) and replaced by one rebuilt from the durable log when writes are tried again:
   * at the NOSPACE alarm's disarm (space), every diskProbeIntervalMs (read-only), never
   * (io: a failed fsync; only a restart recovers).
   */
  private fault: { kind: DiskFaultKind; error: ErrorBody; sinceMs: number } | undefined;
  /** probing: the current core was built to try the disk again (its failure is no news). */
  private probing = false;
  private quotaCheckedAtMs = -Infinity;
  private quotaChecking = false;

  constructor(private readonly deps: RaftNodeDeps) {
    this.cfg = deps.config;
    this.ep = deps.ep;
    this.log = deps.log;
    this.selfId = this.cfg.memberId;
    this.clusterId = this.cfg.clusterId;
    this.clientURLs = this.cfg.clientURLs;
    this.wal = this.ep.ref<WalMsg, WalReplies>('wal');
    this.shards = Array.from({ length: this.cfg.shardCount },
      (_, i) => this.ep.ref<ShardMsg, ShardReplies>(`shard-${i}`));
    this.lease = this.ep.ref<LeaseMsg, unknown>('lease');
    this.peer = this.ep.hasActor('peer') ? this.ep.ref<PeerMsg, PeerReplies>('peer') : undefined;
    this.sm = new StateMachine(this.shards, this.ep.ref<WatchMsg, unknown>('watch'), this.lease,
      this.ep, gatewayPush(this.ep));
    this.snapshots = new Snapshotter(this.sm, this.shards, this.wal, () => this.storage,
      this.cfg.snapshotCount, this.cfg.snapshotCatchUpEntries, this.log,
      () => this.storage.releaseSnapshotData(() => this.wantSnapshotData()), () => this.stopped);
    // The dumps, moved on to the WAL writer, are garbage here now.
    this.snapshots.onSaved = () => this.deps.collectGarbage?.();
    this.snapshots.onDiskFault = (kind, message) => {
      this.log.error({ kind, err: message }, 'a snapshot could not be saved; the log keeps ' +
        'every entry, and the next snapshot tries again');
      if (kind === 'space') this.proposeAlarm('ACTIVATE', this.selfId, 'NOSPACE');
    };
  }

  /**
   * boot recovers from the WAL (snapshot, hard state, entries), restores the state machine,
   * starts the core and the ticker. A fresh founding member bootstraps the log with one
   * AddNode entry per founding member (the same entries on every member); a member joining
   * an existing cluster starts empty and learns the log from the leader. Only a lone voter
   * campaigns at once (and boot waits for it to lead, which takes one fsync); in a cluster
   * the members wait an election timeout for each other, and boot returns without a leader.
   */
  async boot(): Promise<void> {
    const t0 = this.deps.nowMs();
    // Reading a large WAL and snapshot may outlast a small ask on a loaded machine.
    const loaded = await this.wal.ask({ type: 'WalLoad' }, snapshotAskTimeoutMs);
    const t1 = this.deps.nowMs();
    if (loaded.metadata !== undefined) {
      this.selfId = loaded.metadata.nodeId;
      this.clusterId = loaded.metadata.clusterId;
    }
    await this.restoreLoaded(loaded, t1 - t0);
    if (loaded.hardState !== undefined) {
      this.storage.setHardState(loaded.hardState);
      this.lastHardState = loaded.hardState;
    }
    const entries = stableLog(loaded.entries, loaded.snapshot?.term ?? 0);
    if (entries.length < loaded.entries.length) {
      this.log.warn({ from: entries.length === 0 ? loaded.entries[0]!.index
        : entries[entries.length - 1]!.index + 1 },
      'dropped log entries older than the snapshot before them (stale since it was installed)');
    }
    if (entries.length > 0) this.storage.append(entries);
    const fresh = loaded.firstStart && loaded.snapshot === undefined;
    const cfg = this.cfg;
    this.node = this.newCore();
    if (fresh && !cfg.join) {
      const founders = [...cfg.initialMembers].sort((a, b) => a.id - b.id);
      this.node.bootstrap(founders.map((m) => ({
        id: m.id as MemberId,
        context: encodeConfChangeContext({ member: { ...m, name: '', clientURLs: [] } }),
      })));
    } else if (fresh) {
      // Joining: the leader's log (or snapshot) brings the membership; meanwhile the
      // transport needs the addresses the cluster reported.
      for (const m of cfg.initialMembers) this.sm.members.add(m);
    }
    this.log.info({
      id: this.selfId.toString(16), cluster: this.clusterId.toString(16), fresh,
      join: fresh && cfg.join, snapshotIndex: this.snapshots.snapshotIndex,
      revision: this.sm.applier.revision, entries: loaded.entries.length,
      commit: loaded.hardState?.commit ?? 0, ...this.bootPhases,
    }, fresh ? 'starting a new member' : 'recovered from snapshot and WAL');
    this.replayUntil = { index: loaded.hardState?.commit ?? 0, fromMs: t0,
      entries: entries.length };
    this.sendMembers();
    const early = this.early ?? [];
    this.early = undefined;
    for (const [msg, token] of early) this.handle(msg, token);
    this.stopTicker = this.deps.every(cfg.heartbeatIntervalMs, () => this.tick());
    const voters = this.node.status().config.voters;
    if (voters.length === 1 && voters[0] === this.selfId) {
      // A single voter need not wait an election timeout to lead (etcd does the same); its
      // clients expect a member that reports ready to take writes.
      await new Promise<void>((resolve) => {
        this.onLeader = resolve;
        this.node.campaign();
        this.pump();
      });
    } else {
      this.pump();
    }
  }

  /** replayed logs, once, when the entries committed before the restart are applied again
   * (the WAL tail after the snapshot), with the time since boot began. */
  private replayed(): void {
    const r = this.replayUntil!;
    if (this.sm.appliedIndex < r.index) return;
    this.replayUntil = undefined;
    this.log.info({ ...this.bootPhases, entries: r.entries,
      bootToReplayedMs: this.deps.nowMs() - r.fromMs }, 'replayed the WAL tail');
    // What the restore and the replay left (decoded dumps, the replayed entries' garbage)
    // goes now, as the member begins to serve, not at the idle collector's next look.
    if (r.entries > 0) this.deps.collectGarbage?.();
  }

  /** noticeGrowth queues a GC when the applier has replaced enough columns or arenas (the old
   * ones are dead; DroppedBytesWatch); a growth in place leaves nothing to collect. */
  private noticeGrowth(): void {
    this.applierDropped.notice(this.sm.applier.droppedBytes());
  }

  /** releaseSnapshotData drops the newest snapshot's data from memory (its file has it);
   * the storage asks for it again through wantSnapshotData when a follower needs it. */
  private releaseSnapshotData(): void {
    this.storage.releaseSnapshotData(() => this.wantSnapshotData());
    // The body, the shards' dumps and (at boot) the WAL's reply are garbage now.
    this.deps.collectGarbage?.();
  }

  /** wantSnapshotData reads the newest snapshot back from its file for a follower that needs
   * it, and keeps it for snapshotDataHoldMs (the core retries the send meanwhile). */
  private wantSnapshotData(): void {
    if (this.snapshotReading) return;
    this.snapshotReading = true;
    const { index, term } = this.storage.snapshotMetadata();
    this.wal.ask({ type: 'WalSnapshotRead', index, term }, snapshotAskTimeoutMs).then(
      ({ body }) => {
        this.snapshotReading = false;
        if (this.stopped || !this.storage.restoreSnapshotData(index, body)) return;
        const stop = this.deps.every(snapshotDataHoldMs, () => {
          stop();
          if (this.storage.snapshotMetadata().index === index) this.releaseSnapshotData();
        });
      },
      (e: unknown) => {
        this.snapshotReading = false;
        this.log.warn({ index, err: String(e) }, 'could not read the snapshot back for a ' +
          'follower; the next try reads it again');
      });
  }

  /** memory reports the Raft log, the snapshot and the applier's columns held on this thread
   * (bytes), for myetcd_actor_memory_bytes. */
  memory(): Record<string, number> {
    const m = this.storage.memory();
    return {
      raftLogEntryBytes: m.entryBytes,
      raftSnapshotBytes: m.snapshotBytes, applierColumns: this.sm.applier.memoryBytes(),
      applierSharedValues: this.sm.applier.sharedValueBytes(),
    };
  }

  /** restoreLoaded puts the recovered snapshot into the storage and the state machine (the
   * shards and the applier), timing the steps into bootPhases. */
  private async restoreLoaded(loaded: WalLoadResp, walLoadMs: number): Promise<void> {
    const t1 = this.deps.nowMs();
    let body: DecodedSnapshotBody | undefined;
    if (loaded.snapshot !== undefined) {
      body = decodeSnapshotBody(loaded.snapshot.body, loaded.snapshot.tail);
      this.storage.applySnapshot({
        data: loaded.snapshot.body,
        metadata: {
          index: loaded.snapshot.index as Index, term: loaded.snapshot.term as Term,
          confState: body.confState,
        },
      });
      this.snapshots.snapshotIndex = loaded.snapshot.index;
    }
    const t2 = this.deps.nowMs();
    const restored = await this.sm.restore(body, loaded.snapshot?.index ?? 0, undefined,
      () => this.deps.nowMs());
    const t3 = this.deps.nowMs();
    this.releaseSnapshotData();
    this.bootPhases = {
      walLoadMs, snapshotUnpackMs: t2 - t1, restoreMs: t3 - t2, ...restored,
    };
  }

  /** newCore builds the Raft core over the storage (what is durable) and the applied index. */
  private newCore(): RawNode {
    return new RawNode({
      id: this.selfId as MemberId,
      electionTick: this.cfg.electionTicks,
      heartbeatTick: 1,
      storage: this.storage,
      applied: this.sm.appliedIndex as Index,
      maxSizePerMsg: sizePerMsgBytesMax,
      maxInflightMsgs: inflightMsgsMax,
      preVote: true,
      checkQuorum: true,
      rng: seededRng(this.cfg.seed),
    });
  }

  /** singleVoter: this member is the cluster's only voter (it alone decides commits). */
  private singleVoter(): boolean {
    const voters = this.node.status().config.voters;
    return voters.length === 1 && voters[0] === this.selfId;
  }

  /**
   * enterFault stops taking writes after a failed disk write (src/alarms.ts has the kinds).
   * The core's unpersisted entries are dropped with it: alone, this member is the only one
   * that could have committed them, so their proposers are told the write failed; in a
   * cluster a leader may have sent them to followers already, so the outcome is unknown
   * (etcd's "request timed out"). Reads go on: alone, at the applied revision, which holds
   * every acknowledged write and cannot be overtaken; in a cluster, serializable only.
   */
  private enterFault(kind: DiskFaultKind, message: string): void {
    const now = this.deps.nowMs();
    const first = this.fault === undefined && !this.probing;
    const error: ErrorBody = kind === 'space' ? E.noSpace
      : { code: diskFaultCode(kind), message };
    this.fault = { kind, error, sinceMs: now };
    if (kind === 'space' && this.ownNoSpace === undefined) {
      this.ownNoSpace = 'pending';
      this.ownAlarmSyncAtMs = -Infinity;
      this.log.warn({ id: this.selfId.toString(16), alarm: 'NOSPACE' },
        'alarm raised: the disk is full; asking another member to record it');
    }
    if (first) {
      this.log.error({ kind, err: message }, 'a disk write failed: refusing writes, ' +
        'serving reads');
    }
    const alone = this.singleVoter();
    for (const t of this.proposals.drain()) this.ep.replyError(t, alone ? error : timeoutError);
    this.failLeaderless(this.leaderless.release(), error);
    if (alone) this.applyDurableLog();
    for (const t of [...this.reads.failIssued(), ...this.reads.takeGathered()]) {
      this.answerFaultRead(t);
    }
    for (const t of this.transfers) this.ep.replyError(t.token, error);
    this.transfers = [];
    if (this.leader !== 0) this.onSoftState({ lead: 0 as MemberId, raftState: 'StateFollower' });
    this.raftState = 'StateFollower';
    this.inflight = undefined;
    // A lone voter's boot waits to lead: it serves reads (and refuses writes) instead.
    this.onLeader?.();
    this.onLeader = undefined;
  }

  /**
   * applyDurableLog applies the durable entries past the applied index, when this member is
   * the only voter and can no longer write. The durable commit index may trail what was
   * acknowledged (a commit-only change waits for the next append), and a restarted member
   * learns the rest only by leading, which takes a write; yet a lone voter's durable entries
   * are all committed as soon as it writes again (no other leader can cut them off), so
   * reads that must show every acknowledged write may show them now.
   */
  private applyDurableLog(): void {
    const from = this.sm.appliedIndex + 1;
    const last = this.storage.lastIndex();
    if (last < from) return;
    const entries = this.storage.entries(from as Index, (last + 1) as Index,
      Number.MAX_SAFE_INTEGER);
    this.sm.apply(entries, this.node.term(), this.applyHooks);
  }

  /** answerFaultRead answers a linearizable read while writes are refused (enterFault). */
  private answerFaultRead(token: ReplyToken): void {
    if (this.fault === undefined) return;
    // In a cluster it follows no leader now, and cannot tell how far behind it is.
    if (!this.singleVoter()) return this.ep.replyError(token, E.noLeader);
    this.ep.reply(token, {
      revision: this.sm.applier.revision, raftTerm: this.node.term(),
      shardIndex: this.sm.shardIndex,
    });
  }

  /**
   * resume tries writing again after a space or read-only fault: a new core over exactly
   * what is durable (the storage takes only what the WAL acknowledged), which campaigns when
   * alone. Its first write tells: if the disk still refuses, the member is back in fault.
   */
  private resume(why: string): void {
    if (this.fault === undefined || this.fault.kind === 'io' || this.stopped) return;
    this.probing = this.fault.kind === 'readOnly' && why === 'probe';
    if (!this.probing) this.log.info({ why }, 'trying disk writes again');
    this.fault = undefined;
    this.rebuildCore();
    if (this.singleVoter()) this.node.campaign();
    this.pump();
  }

  /** refuseCapped refuses what a NOSPACE alarm caps (etcd's capped applier); true if so. */
  private refuseCapped(msg: RaftPropose, token: ReplyToken | undefined): boolean {
    if (this.fault !== undefined || !this.sm.alarms.has('NOSPACE')) return false;
    if (!(msg.capped ?? (msg.req !== undefined && isCappedRequest(msg.req)))) return false;
    this.sm.counters.failed++;
    if (token !== undefined) this.ep.replyError(token, E.noSpace);
    return true;
  }

  /** alarmList lists the active alarms of `type` ('NONE': all): the replicated ones, and this
   * member's own NOSPACE while a full disk keeps it out of (or away from) the log. */
  private alarmList(type: AlarmType = 'NONE'): AlarmMember[] {
    const list = this.sm.alarms.get(type);
    if (this.ownNoSpace !== undefined && (type === 'NONE' || type === 'NOSPACE') &&
      !list.some((a) => a.memberId === this.selfId && a.alarm === 'NOSPACE')) {
      list.push({ memberId: this.selfId, alarm: 'NOSPACE' });
    }
    return list;
  }

  /** proposeAlarm proposes an alarm entry that nobody waits for (a quota or a snapshot
   * refused for space): when it cannot be proposed now, the next check tries again. */
  private proposeAlarm(action: 'ACTIVATE' | 'DEACTIVATE', memberId: number, alarm: AlarmType):
    void {
    if (this.fault !== undefined || this.leader === 0) return;
    this.propose(encodeRequest({ type: 'alarm', action, memberId, alarm }), undefined);
    this.schedulePump();
  }

  /**
   * alarm answers etcd's AlarmRequest (see RaftAlarm). GET answers from the applied state;
   * ACTIVATE and DEACTIVATE go through the log like any write, and are answered once applied
   * here. A member that cannot write (a disk fault) hands them to another member; its own
   * NOSPACE it disarms itself, and tries writing again.
   */
  private alarm(msg: RaftAlarm, token: ReplyToken): void {
    const answer = (alarms: AlarmMember[]) => this.ep.reply(token, {
      revision: this.durable().revision, raftTerm: this.node.term(),
      response: { type: 'alarm', alarms },
    } satisfies RaftAlarmResp);
    if (msg.action === 'GET') return answer(this.alarmList(msg.alarm));
    const entry = {
      type: 'alarm' as const, action: msg.action, memberId: msg.memberId, alarm: msg.alarm,
    };
    if (this.fault === undefined) return this.propose(encodeRequest(entry), token);
    const own = msg.action === 'DEACTIVATE' && msg.memberId === this.selfId &&
      msg.alarm === 'NOSPACE' && this.ownNoSpace !== undefined;
    const other = this.otherVoter();
    if (own) {
      this.ownNoSpace = undefined;
      this.log.info({ id: this.selfId.toString(16), alarm: 'NOSPACE' }, 'alarm disarmed');
      if (other !== undefined) {
        this.askOther(other, { ...entry, type: 'RaftAlarm', relayed: true })
          .catch(() => undefined);
      }
      answer([{ memberId: this.selfId, alarm: 'NOSPACE' }]);
      if (this.fault.kind === 'space') this.resume('the NOSPACE alarm was disarmed');
      return;
    }
    if (other === undefined || msg.relayed === true) {
      // Alone, or relayed here by another member (never relayed onwards: two members that
      // cannot write would pass it back and forth), and unable to write: an alarm that is
      // not active changes nothing, as etcd answers; one that is waits for writes again.
      const active = this.sm.alarms.get(msg.alarm).some((a) => a.memberId === msg.memberId);
      return active ? this.ep.replyError(token, this.fault.error) : answer([]);
    }
    this.peer!.forward({
      type: 'PeerForward', to: other, target: 'raft',
      msg: { ...entry, type: 'RaftAlarm', relayed: true },
    }, token);
    this.ep.flushNow();
  }

  /** otherVoter picks another voting member to relay through (round robin), if any. */
  private otherVoter(): number | undefined {
    if (this.peer === undefined) return undefined;
    const ids = this.sm.members.list().filter((m) => m.id !== this.selfId && !m.isLearner)
      .map((m) => m.id);
    if (ids.length === 0) return undefined;
    return ids[this.ownAlarmTarget++ % ids.length];
  }

  /** askOther asks member `to`'s Raft node through the peer transport. */
  private askOther(to: number, msg: RaftAlarm): Promise<RaftAlarmResp> {
    const p = this.peer!.ask({ type: 'PeerForward', to, target: 'raft', msg: { ...msg } }) as
      Promise<unknown> as Promise<RaftAlarmResp>;
    this.ep.flushNow();
    return p;
  }

  /**
   * syncOwnAlarm runs while a full disk keeps this member from writing (every
   * diskProbeIntervalMs): it asks another member to record its NOSPACE ('pending'), then
   * watches the cluster's list ('recorded'); once an operator disarmed it anywhere, this
   * member tries writing again (and raises it again if the disk is still full).
   */
  private syncOwnAlarm(now: number): void {
    if (this.ownNoSpace === undefined || this.ownAlarmSyncing ||
      now - this.ownAlarmSyncAtMs < diskProbeIntervalMs) return;
    const other = this.ownNoSpace === 'recorded' && this.ownAlarmPeer !== undefined &&
      this.sm.members.has(this.ownAlarmPeer) ? this.ownAlarmPeer : this.otherVoter();
    if (other === undefined) return;
    this.ownAlarmSyncAtMs = now;
    this.ownAlarmSyncing = true;
    const pending = this.ownNoSpace === 'pending';
    const msg: RaftAlarm = {
      type: 'RaftAlarm', action: pending ? 'ACTIVATE' : 'GET', memberId: this.selfId,
      alarm: 'NOSPACE', relayed: true,
    };
    this.askOther(other, msg).then((r) => {
      this.ownAlarmSyncing = false;
      if (this.ownNoSpace === undefined || this.stopped) return;
      if (pending) {
        this.ownNoSpace = 'recorded';
        this.ownAlarmPeer = other;
        this.log.info({ by: other.toString(16) }, 'the NOSPACE alarm of this member is recorded');
        return;
      }
      const listed = r.response.alarms.some((a) => a.memberId === this.selfId);
      if (listed || this.fault?.kind !== 'space') return;
      this.ownNoSpace = undefined;
      this.log.info({ by: other.toString(16) }, 'alarm disarmed');
      this.resume('the NOSPACE alarm was disarmed');
    }, () => {
      // Unreachable, or no leader there: the next probe retries, through another member.
      this.ownAlarmSyncing = false;
      this.ownAlarmPeer = undefined;
    });
  }

  /** checkQuota raises NOSPACE once the backend (the shards' MVCC bytes) passes the quota. */
  private checkQuota(now: number): void {
    const quota = this.cfg.quotaBackendBytes ?? 0;
    if (quota <= 0 || this.quotaChecking || now - this.quotaCheckedAtMs < quotaCheckIntervalMs) {
      return;
    }
    this.quotaCheckedAtMs = now;
    this.quotaChecking = true;
    Promise.all(this.shards.map((sh) => sh.ask({ type: 'ShardStats' }))).then((st) => {
      this.quotaChecking = false;
      const bytes = st.reduce((n, x) => n + x.bytes, 0);
      const raised = this.sm.alarms.get('NOSPACE').some((a) => a.memberId === this.selfId);
      if (bytes > quota && !raised) {
        this.log.warn({ id: this.selfId.toString(16), alarm: 'NOSPACE', bytes, quota },
          'raising an alarm: the backend passed --quota-backend-bytes');
        this.proposeAlarm('ACTIVATE', this.selfId, 'NOSPACE');
      }
    }, () => {
      this.quotaChecking = false;
    });
  }

  /**
   * stop ends the ticker; what is not durable yet was never acknowledged. A member that can
   * still write first snapshots what it applied since its last snapshot when that tail would
   * cost the next start time (Snapshotter.atStop), waiting at most stopSnapshotWaitMs: a stop
   * that gives up, or a snapshot the disk refuses, loses nothing (the log has every entry).
   */
  async stop(): Promise<void> {
    this.stopTicker?.();
    this.stopAsked = true;
    this.deps.readPoint?.withdraw();
    if (!this.stopped && this.node !== undefined && this.fault === undefined) {
      const t0 = this.deps.nowMs();
      const saved = this.snapshots.idle().then(() => {
        const taken = this.snapshots.atStop();
        this.pump();
        return taken;
      });
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<'late'>((resolve) => {
        timer = setTimeout(() => resolve('late'), stopSnapshotWaitMs);
      });
      const how = await Promise.race([saved.then(() => 'saved'), late]).catch(
        (e: unknown) => `failed: ${String(e)}`);
      clearTimeout(timer);
      if (how !== 'saved') this.log.warn({ how, ms: this.deps.nowMs() - t0 },
        'no snapshot at stop; the next start applies the WAL tail');
    }
    this.stopped = true;
    // Proposals taken since the last pass never reach the core now: none of them is applied.
    for (const p of this.proposing) {
      if (p.token !== undefined) this.ep.replyError(p.token, E.stopped);
    }
    this.proposing = [];
    this.failLeaderless(this.leaderless.release(), E.stopped);
  }

  /** handle takes one message of the actor's protocol. Messages that arrive while the node
   * boots (another member's, through the peer actor) wait until the core exists. */
  handle(msg: RaftMsg, token: ReplyToken | undefined): void {
    if (this.early !== undefined) {
      this.early.push([msg, token]);
      return;
    }
    switch (msg.type) {
      case 'RaftPropose':
        if (this.refuseCapped(msg, token)) return;
        // The gateway sends the request already encoded: it goes into the entry as it is.
        this.propose(msg.reqBytes ?? encodeRequest(msg.req!), token);
        break;
      case 'RaftReadIndex':
        if (token === undefined) return;
        if (this.fault !== undefined) return this.answerFaultRead(token);
        this.reads.add(token);
        break;
      case 'RaftAlarm':
        if (token !== undefined) this.alarm(msg, token);
        break;
      case 'RaftStatus':
        if (token !== undefined) this.ep.reply(token, this.status());
        return;
      case 'RaftBarrier':
        // Changes of entries applied ahead are sent once durable: a barrier waits for them.
        if (token !== undefined) this.whenDecided(() => this.ep.reply(token, null));
        return;
      case 'RaftStep':
        // A member that cannot write acts as a partitioned one: it promises nothing.
        if (this.fault !== undefined) return;
        for (const m of msg.msgs) this.step(m);
        break;
      case 'RaftReport':
        for (const id of msg.unreachable) this.node.reportUnreachable(id as MemberId);
        for (const s of msg.snapshots) this.node.reportSnapshot(s.id as MemberId, s.failed);
        if (msg.removed === true) this.reportRemoved('refused by the cluster as removed');
        break;
      case 'RaftWatchInterest':
        this.sm.setWatchInterest(msg.subscribed);
        return;
      case 'RaftMemberList':
        if (token !== undefined) this.ep.reply(token, this.membersResp());
        return;
      case 'RaftMemberAdd':
        if (token !== undefined) void this.memberAdd(msg.peerURLs, msg.isLearner, token);
        return;
      case 'RaftMemberRemove':
        if (token !== undefined) void this.memberRemove(msg.id, token);
        return;
      case 'RaftMemberUpdate':
        if (token !== undefined) this.memberUpdate(msg.id, msg.peerURLs, token);
        break;
      case 'RaftMemberPromote':
        if (token !== undefined) void this.memberPromote(msg.id, token);
        return;
      case 'RaftTransferLeader':
        if (token !== undefined) this.transferLeader(msg.to, token);
        break;
      case 'RaftPublish':
        this.clientURLs = msg.clientURLs;
        if (msg.grpcClientURLs !== undefined) this.grpcClientURLs = msg.grpcClientURLs;
        this.publishedAtMs = -Infinity;
        this.maybePublish(this.deps.nowMs());
        break;
      default:
        assertNever(msg);
    }
    this.schedulePump();
  }

  /** schedulePump runs the loop once per turn, after the whole incoming batch is handled, so
   * that one Ready carries every proposal of the batch. */
  private schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    this.deps.defer(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  private step(m: RaftMessage): void {
    const err = this.node.step(m);
    if (err !== undefined && err.code !== 'RAFT_STEP_PEER_NOT_FOUND') {
      this.log.debug({ from: m.from, type: m.type, err: err.message }, 'raft message refused');
    }
  }

  private tick(): void {
    if (this.stopped) return;
    const now = this.deps.nowMs();
    this.checkQuota(now);
    if (this.fault !== undefined) {
      if (this.fault.kind === 'space') this.syncOwnAlarm(now);
      if (this.fault.kind === 'readOnly' && now - this.fault.sinceMs >= diskProbeIntervalMs) {
        this.resume('probe');
      }
      return;
    }
    this.node.tick();
    if (this.inflight === undefined && now - this.lastApplyMs >= idleSnapshotAfterMs) {
      this.snapshots.maybeTakeIdle(this.sm.applier.usedBytes());
    }
    this.keysRepack.tick();
    for (const { token, error } of this.proposals.expire(now, this.leaderChanges)) {
      this.ep.replyError(token, error);
    }
    this.failLeaderless(this.leaderless.expire(now), timeoutError);
    const late = this.reads.expire(now);
    for (const t of late.tokens) this.ep.replyError(t, late.error);
    if (this.transfers.length > 0) {
      const still = [];
      for (const t of this.transfers) {
        if (t.deadlineMs > now) still.push(t);
        else this.ep.replyError(t.token, E.transferTimeout);
      }
      this.transfers = still;
    }
    this.maybePublish(now);
    this.pump();
  }

  private pump(): void {
    if (!this.stopped) this.flushProposals();
    if (this.stopped || this.fault !== undefined) return;
    if (this.reads.hasGathered) this.issueReadIndex();
    let applied = false;
    while (this.inflight === undefined && this.node.hasReady()) {
      // A replay after a restart is dozens of Readies in one pass: what the last one gave the
      // shards and watchers leaves before the next is applied, so they work beside this
      // thread instead of after it. One Ready per pass (the steady state) flushes once, below.
      if (applied) this.ep.flushNow();
      const rd = this.node.ready();
      if (rd.softState !== undefined) this.onSoftState(rd.softState);
      if (rd.snapshot !== undefined) {
        this.inflight = rd;
        this.installSnapshot(rd).catch((e: unknown) => {
          if (this.stopped) return;
          // The state machine and the log disagree now: crash, and restart from the disk.
          throw new Error(`raft: installing snapshot ${rd.snapshot!.metadata.index} failed: ` +
            String(e));
        });
        break;
      }
      const hs = rd.hardState;
      const voteChanged = hs !== undefined &&
        (hs.term !== this.lastHardState.term || hs.vote !== this.lastHardState.vote);
      if (hs !== undefined) this.pendingHardState = hs;
      const persisting = rd.entries.length > 0 || voteChanged;
      let traced: TraceRef[] | undefined;
      if (persisting) {
        // A leader's appends may leave before its own fsync (it counts itself only after
        // advance); anything a follower or candidate says waits for the disk.
        const early = this.raftState === 'StateLeader' && !voteChanged;
        if (early) this.send(rd.messages);
        this.inflight = rd;
        traced = this.persist(rd, early);
        // The append leaves before the committed entries are applied: the WAL writer's write
        // and fsync run beside the apply instead of after it (the write path's cycle).
        this.ep.flushNow();
      }
      // Committed entries are stable locally (the core's contract), so they may be applied
      // while this Ready's own entries are being persisted.
      if (rd.committedEntries.length > 0) {
        if (failpointsEnabled) failpoint('beforeApply');
        this.sm.apply(rd.committedEntries, this.node.term(), this.applyHooks);
        if (failpointsEnabled) failpoint('afterApply');
        if (this.replayUntil !== undefined) this.replayed();
        this.noticeGrowth();
        applied = true;
        this.lastApplyMs = this.deps.nowMs();
      }
      if (persisting && this.inflight === rd) this.applyAhead(rd, traced);
      for (const rs of rd.readStates) this.reads.confirm(rs.requestCtx, rs.index, this.selfId);
      this.releaseReads();
      if (!persisting) {
        // Nothing needs an fsync: only messages and commit-index movement.
        this.send(rd.messages);
        this.node.advance(rd);
      }
    }
    if (this.inflight === undefined) this.snapshots.maybeTake();
    // Everything this pass produced — the WAL append, answers, shard and watch changes,
    // messages to other members — leaves now rather than at the next turn's flush.
    this.ep.flushNow();
  }

  /**
   * applyAhead applies a lone leader's new entries while the WAL writer persists them, and
   * hands their answers to it, to post the moment they are durable: the write's answer then
   * skips the hop back to this thread (WAL writer → Raft → gateway) and its commit and apply.
   * Safe because nothing of it leaves before the fsync: the answers wait in the WAL writer,
   * the shards', watchers' and lease actor's changes here (release, when the append is
   * reported durable); and a lone voter's durable entries are committed, since no other
   * member can lead and cut them off. The read point moves at once: a read that takes it
   * waits at the shards for the released changes, so it never returns what is not durable.
   * If the append fails, undo takes the state back (persist). Only a lone voter that leads
   * and has applied an entry of its term, not faulted, stopping or replaying, does this, and
   * only for a Ready of at least applyAheadEntriesMin entries.
   */
  private applyAhead(rd: Ready, traced: TraceRef[] | undefined): void {
    if (rd.entries.length < applyAheadEntriesMin || this.raftState !== 'StateLeader' ||
      this.fault !== undefined || this.stopAsked || this.stopped ||
      this.replayUntil !== undefined || this.probing) return;
    const cs = this.sm.confState;
    const term = this.node.term();
    if (cs.voters.length !== 1 || cs.voters[0] !== this.selfId || cs.learners.length > 0 ||
      this.sm.appliedTerm !== term) return;
    // Traced proposals: their apply ahead is a span of theirs, the answers' trip one of its.
    const span = this.ep.startSpan('raft apply ahead', traced,
      { 'raft.entries': rd.entries.length });
    this.ep.withTrace(span?.refs, () => {
      const applied = this.sm.applyAhead(rd.entries, term, this.applyHooks);
      if (applied === undefined) return;
      this.ahead = { seq: this.appendSeq, applied };
      if (applied.answers.length === 0) return;
      const replies = this.ep.packReplies(applied.answers);
      for (const r of replies) r.bytes = moveBytes(r.bytes);
      this.wal.sendUnbounded({ type: 'WalAnswers', seq: this.appendSeq, replies });
    });
    span?.end({ 'raft.applied_index': this.sm.appliedIndex });
  }

  /** releaseAhead sends what the entries applied ahead produced, now that they are durable. */
  private releaseAhead(seq: number): void {
    if (this.ahead?.seq !== seq) return;
    const { applied } = this.ahead;
    this.ahead = undefined;
    applied.release();
    this.runAfterAhead();
  }

  /** durable: the applied index and revision that are durable too (before the entries
   * applied ahead, while their append is in flight). Local answers — status, member and alarm
   * lists — show these: like etcd's they may lag a write just acknowledged, but never name
   * one that may be taken back. */
  private durable(): { appliedIndex: number; revision: number } {
    return this.ahead?.applied.durable ??
      { appliedIndex: this.sm.appliedIndex, revision: this.sm.applier.revision };
  }

  /** whenDecided runs fn now, or once the entries applied ahead are durable or taken back. */
  private whenDecided(fn: () => void): void {
    if (this.ahead !== undefined) this.afterAhead.push(fn);
    else fn();
  }

  /** runAfterAhead runs what waited for the entries applied ahead (whenDecided). */
  private runAfterAhead(): void {
    const fns = this.afterAhead;
    this.afterAhead = [];
    for (const fn of fns) fn();
  }

  /** undoAhead takes back the entries applied ahead of an append that failed, and tells
   * their clients (the WAL writer dropped the answers it held). */
  private undoAhead(seq: number, error: ErrorBody): void {
    if (this.ahead?.seq !== seq) return;
    const { applied } = this.ahead;
    this.ahead = undefined;
    applied.undo();
    this.runAfterAhead();
    for (const t of applied.tokens) this.ep.replyError(t, error);
    this.log.warn({ entries: applied.lastIndex - this.sm.appliedIndex },
      'entries applied ahead of a failed WAL append were taken back');
  }

  /** persist hands the Ready's entries and hard state to the WAL writer; once durable the
   * storage takes them, the messages not sent early leave, and the core advances. */
  private persist(rd: Ready, early: boolean): TraceRef[] | undefined {
    const seq = ++this.appendSeq;
    // Framed here as the WAL's records: the WAL writer copies them and chains their CRCs.
    const append = {
      type: 'WalAppend' as const, entries: moveBytes(frameEntries(rd.entries)),
      hardState: this.pendingHardState, seq,
    };
    this.pendingHardState = undefined;
    if (failpointsEnabled) failpoint('raftBeforeSave');
    const core = this.node;
    const traced = this.takeTraced(rd.entries.length);
    this.ep.withTrace(traced, () => this.wal.ask(append, walAppendAskTimeoutMs)).then(() => {
      if (failpointsEnabled) failpoint('raftAfterSave');
      // The storage is what is durable, whatever happened to the core meanwhile.
      if (append.hardState !== undefined) this.lastHardState = append.hardState;
      if (rd.entries.length > 0) this.storage.append(rd.entries);
      if (append.hardState !== undefined) this.storage.setHardState(append.hardState);
      // Traced proposals: the commit and apply that follow their fsync are a span of theirs.
      const span = this.ep.startSpan('raft commit+apply', traced,
        { 'raft.entries': rd.entries.length });
      this.ep.withTrace(span?.refs, () => this.persisted(rd, early, seq, core));
      span?.end({ 'raft.applied_index': this.sm.appliedIndex });
    }, (e: unknown) => {
      if (this.stopped) return; // stopping: nothing more is persisted or acknowledged
      // A full, read-only or failed disk (the WAL store says which): refuse writes, serve
      // reads. Anything else is a bug: crash, and let the supervisor restart every actor
      // from what the disk really holds.
      const kind = diskFaultOfCode((e as { code?: string }).code);
      if (kind === undefined) throw new Error(`raft: WAL append failed: ${String(e)}`);
      this.undoAhead(seq, kind === 'space' ? E.noSpace
        : { code: diskFaultCode(kind), message: (e as Error).message });
      if (core === this.node) this.enterFault(kind, (e as Error).message);
    });
    return traced;
  }

  /** persisted goes on once append `seq` of Ready rd is durable: what was applied ahead of it
   * leaves, and the core (unless replaced meanwhile) advances. */
  private persisted(rd: Ready, early: boolean, seq: number, core: RawNode): void {
    // Before anything else of this node's reaches the shards (a snapshot's dump asks): the
    // changes of entries applied ahead, now durable. After a stop nothing is sent.
    if (!this.stopped) this.releaseAhead(seq);
    if (core !== this.node || this.fault !== undefined) return;
    if (this.probing) {
      this.probing = false;
      this.log.info({}, 'the disk takes writes again');
    }
    this.inflight = undefined;
    if (!early) this.send(rd.messages);
    this.node.advance(rd);
    this.pump();
  }

  /**
   * installSnapshot makes a snapshot from the leader durable and current: the WAL writer
   * saves the file, then its marker with the hard state (so recovery starts from it), then
   * the Ready's entries; the storage takes it; the state machine restores from it. Only then
   * may the Ready's messages (the follower's answer) leave, and the core advance.
   */
  private async installSnapshot(rd: Ready): Promise<void> {
    const snap = rd.snapshot!;
    const index = snap.metadata.index;
    // Checked and decoded before anything of it is saved: a snapshot that cannot be
    // installed is dropped here, and this member survives it (dropSnapshot).
    let body: DecodedSnapshotBody;
    let prepared: PreparedRestore;
    try {
      if (failpointsEnabled) failpointErrno('raftBeforeApplySnap', 'install');
      body = decodeSnapshotBody(snap.data);
      prepared = this.sm.prepareRestore(body);
    } catch (e) {
      this.dropSnapshot(index, e);
      return;
    }
    await this.snapshots.idle();
    const base = rd.hardState ?? this.pendingHardState ?? this.lastHardState;
    const hs = { ...base, commit: Math.max(base.commit, index) as Index };
    const core = this.node;
    try {
      await this.wal.ask({
        // A copy, moved: the storage keeps snap.data until it is saved.
        type: 'WalSnapshotSave', index, term: snap.metadata.term,
        parts: [moveCopy(snap.data)], hardState: hs,
      }, snapshotAskTimeoutMs);
      if (rd.entries.length > 0) {
        await this.wal.ask({ type: 'WalAppend', entries: moveBytes(frameEntries(rd.entries)) },
          walAppendAskTimeoutMs);
      }
    } catch (e) {
      if (this.stopped) throw e;
      // A full, read-only or failed disk: as for any write (persist), refuse writes and
      // serve reads; the storage still holds the state before the snapshot, and a resumed
      // core asks the leader again. Anything else: crash and restart from the disk.
      const kind = diskFaultOfCode((e as { code?: string }).code);
      if (kind === undefined) throw e;
      this.log.error({ index, err: String(e) }, 'failed to save the snapshot from the leader');
      if (core === this.node) this.enterFault(kind, (e as Error).message);
      return;
    }
    this.pendingHardState = undefined;
    this.lastHardState = hs;
    this.storage.applySnapshot(snap);
    if (rd.entries.length > 0) this.storage.append(rd.entries);
    this.storage.setHardState(hs);
    await this.restoreSaved(body, index, prepared);
    this.releaseSnapshotData();
    this.snapshots.snapshotIndex = index;
    this.log.info({ index, term: snap.metadata.term, revision: this.sm.applier.revision,
      bytes: snap.data.length }, 'installed snapshot from the leader');
    this.sendMembers();
    if (failpointsEnabled) failpoint('raftAfterApplySnap');
    if (this.stopped) return;
    this.inflight = undefined;
    this.send(rd.messages);
    this.node.advance(rd);
    this.pump();
  }

  /**
   * restoreSaved restores the state machine and the shards from a leader's snapshot that is
   * saved already. A failed restore (a shard's load timed out) is tried again from the same
   * snapshot: every step of it replaces state whole (the shards' stores, the member table,
   * auth, alarms, the applier) and nothing else moves meanwhile (the core waits on this
   * Ready: no entry is applied, no answer leaves), so a second attempt ends where a first
   * good one would have. Past snapshotRestoreAttemptsMax attempts it throws: the actors
   * crash and restart from the disk, which holds the snapshot.
   */
  private async restoreSaved(body: DecodedSnapshotBody, index: number,
    prepared: PreparedRestore):
    Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        if (failpointsEnabled) failpointErrno('raftBeforeRestoreSnap', 'restore');
        await this.sm.restore(body, index, prepared);
        if (attempt > 1) {
          this.log.info({ index, attempt }, 'restored the saved snapshot from the leader');
        }
        return;
      } catch (e) {
        if (this.stopped || attempt >= snapshotRestoreAttemptsMax) throw e;
        this.log.error({ index, attempt, err: String(e) }, 'failed to restore the saved ' +
          'snapshot from the leader; trying again from the saved snapshot');
      }
    }
  }

  /**
   * dropSnapshot forgets a leader's snapshot that could not be installed (it would not
   * decode, or the raftBeforeApplySnap failpoint returned an error) before anything of it
   * was saved: the core is rebuilt over the storage, which still holds the state before it,
   * as if the message had been lost. The leader, finding this member still behind its log,
   * sends a snapshot again (etcd's follower likewise survives a snapshot it failed to
   * receive; the leader retries).
   */
  private dropSnapshot(index: number, e: unknown): void {
    if (this.stopped) return;
    this.snapshotsDropped++;
    this.log.error({ index, err: String(e), dropped: this.snapshotsDropped },
      'failed to install the snapshot from the leader; dropped it, the leader will send again');
    this.rebuildCore();
    this.pump();
  }

  /** rebuildCore starts a new Raft core over the storage as it is (after a disk fault or a
   * dropped snapshot install), from the durable state and what was applied. */
  private rebuildCore(): void {
    const hs = this.lastHardState;
    // Commit-only changes ride with the next append, so the durable commit may trail what
    // was applied; the applied entries are committed, and the core must not start below.
    this.storage.setHardState({
      ...hs, commit: Math.max(hs.commit, this.sm.appliedIndex) as Index,
    });
    this.pendingHardState = undefined;
    this.inflight = undefined;
    this.node = this.newCore();
  }

  /** takeTraced hands the traced proposals' contexts to an append of `entries` entries. */
  private takeTraced(entries: number): TraceRef[] | undefined {
    if (entries === 0 || this.traced.length === 0) return undefined;
    const t = this.traced;
    this.traced = [];
    return t;
  }

  private readonly applyHooks = {
    claim: (pid: { m: number; b: number; n: number }) =>
      pid.m === this.selfId && pid.b === this.deps.bootNonce ? this.proposals.take(pid.n)
        : undefined,
    applyConfChange: (cc: ConfChange) => this.node.applyConfChange(cc),
    nowMs: () => this.deps.nowMs(),
    beforeAnswers: () => this.publishReadPoint(),
    alarmsChanged: (action: 'ACTIVATE' | 'DEACTIVATE', a: AlarmMember) => {
      if (action === 'ACTIVATE') {
        this.log.warn({ id: a.memberId.toString(16), alarm: a.alarm }, 'alarm raised');
      } else {
        this.log.info({ id: a.memberId.toString(16), alarm: a.alarm }, 'alarm disarmed');
      }
    },
    membersChanged: (change: { type: number; id: number }) => {
      this.sendMembers();
      if (this.publishProposed && change.id === this.selfId && this.selfPublished()) {
        this.publishProposed = false;
        this.log.info({ id: this.selfId.toString(16), name: this.cfg.name,
          clientURLs: this.clientURLs, grpcClientURLs: this.grpcClientURLs },
        'published local member to cluster through raft');
      }
      if (change.type === ConfChangeRemoveNode && change.id === this.selfId) {
        this.reportRemoved('the member has been permanently removed from the cluster');
      }
    },
  };

  private reportRemoved(why: string): void {
    if (this.removedReported) return;
    this.removedReported = true;
    this.log.error({ id: this.selfId.toString(16) },
      `${why}; the data-dir used by this member must be removed`);
    this.deps.removed(why);
  }

  private send(msgs: RaftMessage[]): void {
    if (msgs.length === 0 || this.peer === undefined) return;
    this.peer.sendUnbounded({ type: 'PeerSend', msgs });
  }

  private sendMembers(): void {
    this.learnerCache = undefined;
    if (this.peer === undefined) return;
    const members = this.sm.members;
    this.peer.sendUnbounded({
      type: 'PeerMembers', selfId: this.selfId, clusterId: this.clusterId,
      members: members.list(),
      removed: members.toJson().removed,
    });
  }

  private onSoftState(ss: SoftState): void {
    this.raftState = ss.raftState;
    if (ss.lead === this.leader) return this.publishReadPoint();
    if (ss.lead !== 0) this.leaderChanges++;
    this.leader = ss.lead;
    this.log.info({
      leader: this.leader.toString(16), term: this.node.term(),
      isLeader: this.leader === this.selfId,
    }, this.leader === 0 ? 'lost the leader' : 'leader changed');
    // Only the leader decides expiry (etcd's lessor promote/demote); followers forward
    // keep-alives to it.
    this.lease.sendUnbounded({
      type: 'LeaderChanged', isLeader: this.leader === this.selfId, leader: this.leader,
    });
    this.publishReadPoint();
    if (this.leader === 0) {
      for (const t of this.reads.failIssued()) this.ep.replyError(t, E.noLeader);
      return;
    }
    this.onLeader?.();
    this.onLeader = undefined;
    if (this.leaderless.size > 0) {
      this.proposing.push(...this.leaderless.release());
      this.schedulePump();
    }
    this.transfers = this.transfers.filter((t) => {
      if (t.to !== this.leader) return true;
      this.ep.reply(t.token, { raftTerm: this.node.term() });
      return false;
    });
    this.maybePublish(this.deps.nowMs());
  }

  /** maybePublish proposes this member's name and client URLs when the applied member table
   * does not show them yet (etcd publishes on every start), at most once per election
   * timeout until applied. */
  private maybePublish(now: number): void {
    if (this.leader === 0 || this.removedReported || this.fault !== undefined) return;
    // A listen port 0 is resolved by the gateway (RaftPublish) once it serves.
    if (this.clientURLs.some((u) => /:0\/?$/.test(u))) return;
    if (this.sm.members.get(this.selfId) === undefined || this.selfPublished()) return;
    if (now - this.publishedAtMs < this.cfg.heartbeatIntervalMs * this.cfg.electionTicks) return;
    this.publishedAtMs = now;
    this.publishProposed = true;
    const grpc = this.grpcClientURLs;
    try {
      this.node.propose(encodeProposal({ m: this.selfId, b: this.deps.bootNonce, n: 0 },
        encodeRequest({
          type: 'memberPublish', id: this.selfId, name: this.cfg.name,
          clientURLs: this.clientURLs, ...(grpc === undefined ? {} : { grpcClientURLs: grpc }),
        })));
    } catch {
      // No leader, or a transfer: the next tick tries again.
    }
  }

  /** selfPublished: whether the applied member table shows this member's name and URLs. */
  private selfPublished(): boolean {
    const self = this.sm.members.get(this.selfId);
    const grpc = this.grpcClientURLs;
    return self !== undefined && self.name === this.cfg.name &&
      self.clientURLs.join(',') === this.clientURLs.join(',') &&
      (grpc === undefined || (self.grpcClientURLs ?? []).join(',') === grpc.join(','));
  }

  /** publishReadPoint publishes where a linearizable read may read without a read index, or
   * withdraws the point when this member may not answer one alone (read-point.ts). */
  private publishReadPoint(): void {
    const cell = this.deps.readPoint;
    if (cell === undefined) return;
    publishReadPoint(cell, {
      selfId: this.selfId, leader: this.leader, voters: this.sm.confState.voters,
      appliedTerm: this.sm.appliedTerm, term: this.node?.term() ?? 0, learner: this.isLearner(),
      faulted: this.fault !== undefined, stopping: this.stopped || this.stopAsked,
    }, {
      revision: this.sm.applier.revision, shardIndex: this.sm.shardIndex,
      rewinds: this.sm.rewinds,
    });
  }

  /** isLearner: whether this member is a learner, cached (it is asked on every proposal and
   * read batch) and refreshed whenever the member table changes. */
  private isLearner(): boolean {
    if (this.learnerCache === undefined) {
      this.learnerCache = this.sm.members.get(this.selfId)?.isLearner === true;
    }
    return this.learnerCache;
  }

  /** propose takes a client's proposal; the turn's proposals reach the core together, at the
   * next pass (flushProposals). */
  private propose(req: Uint8Array, token: ReplyToken | undefined): void {
    const fail = (e: ErrorBody) => {
      this.sm.counters.failed++;
      if (token !== undefined) this.ep.replyError(token, e);
    };
    if (this.fault !== undefined) return fail(this.fault.error);
    if (this.isLearner()) return fail(E.learner);
    const n = this.proposals.next();
    const p: Proposing = {
      data: encodeProposal({ m: this.selfId, b: this.deps.bootNonce, n }, req), n, token,
      trace: this.ep.traceContext, deadlineMs: this.deps.nowMs() + this.cfg.requestTimeoutMs,
    };
    if (this.leader === 0) this.leaderless.hold(p, p.deadlineMs);
    else this.proposing.push(p);
  }

  /** failLeaderless fails proposals that waited for a leader: past their deadline (etcd's
   * request context done), or all of them at a fault or a stop. */
  private failLeaderless(ps: readonly Proposing[], error: ErrorBody): void {
    for (const p of ps) {
      this.sm.counters.failed++;
      if (p.token !== undefined) this.ep.replyError(p.token, error);
    }
  }

  /** flushProposals steps the proposals taken since the last pass into the core as one
   * MsgProp (RawNode.proposeMany: one step and one message for the batch, not one each, as
   * etcd's MsgProp carries many entries); they are accepted or dropped together. */
  private flushProposals(): void {
    const ps = this.proposing;
    if (ps.length === 0) return;
    this.proposing = [];
    let error: ErrorBody | undefined = this.fault?.error;
    if (error === undefined) {
      try {
        this.node.proposeMany(ps.map((p) => p.data));
      } catch (e) {
        error = dropError(e);
      }
      // The leader was lost since they were taken: they wait for the next one.
      if (error === E.noLeader) {
        for (const p of ps) this.leaderless.hold(p, p.deadlineMs);
        return;
      }
    }
    for (const p of ps) {
      if (error !== undefined) {
        this.sm.counters.failed++;
        if (p.token !== undefined) this.ep.replyError(p.token, error);
        continue;
      }
      if (p.token !== undefined) this.wait(p.n, p.token, p.deadlineMs);
      if (p.trace !== undefined && this.traced.length < traceBatchParentsMax) {
        this.traced.push(...p.trace);
      }
    }
  }

  private wait(n: number, token: ReplyToken,
    deadlineMs = this.deps.nowMs() + this.cfg.requestTimeoutMs): void {
    this.proposals.wait(n, token, deadlineMs, this.leaderChanges);
  }

  private issueReadIndex(): void {
    if (this.leader === 0 || this.isLearner()) {
      const e = this.leader === 0 ? E.noLeader : E.learner;
      for (const t of this.reads.takeGathered()) this.ep.replyError(t, e);
      return;
    }
    this.node.readIndex(
      this.reads.issue(this.deps.nowMs() + this.cfg.requestTimeoutMs, this.selfId));
  }

  private releaseReads(): void {
    const tokens = this.reads.release(this.sm.appliedIndex);
    if (tokens.length === 0) return;
    // The read index is committed, hence durable: answered once what was applied ahead is
    // too (or taken back), so no read waits at the shards for entries that may be undone.
    this.whenDecided(() => {
      const answer = {
        revision: this.sm.applier.revision, raftTerm: this.node.term(),
        shardIndex: this.sm.shardIndex,
      };
      for (const t of tokens) this.ep.reply(t, answer);
    });
  }

  // ---- Membership (etcd's cluster API) ----

  private membersResp(): RaftMembersResp {
    return {
      revision: this.durable().revision, raftTerm: this.node.term(),
      response: { type: 'memberChange', members: this.sm.members.list() },
    };
  }

  /** reconfigView is what the strict reconfiguration checks look at. */
  private async reconfigView(): Promise<ReconfigView> {
    let connected: Record<string, number> = {};
    if (this.peer !== undefined) {
      connected = (await this.peer.ask({ type: 'PeerConnectivity' }, 2_000)).connectedMs;
    }
    const nowMs = this.deps.nowMs();
    return {
      selfId: this.selfId, members: this.sm.members.list(), nowMs,
      healthIntervalMs: reconfigHealthIntervalMs,
      connectedSince: (id) => {
        const ms = connected[String(id)];
        return ms === undefined ? undefined : nowMs - ms;
      },
    };
  }

  private async strict(check: (v: ReconfigView) => ReconfigRefusal | undefined):
    Promise<ErrorBody | undefined> {
    if (!this.cfg.strictReconfigCheck) return undefined;
    const r = check(await this.reconfigView());
    return r === undefined ? undefined : refusals[r];
  }

  private proposeConfChange(cc: ConfChange, member: Member, token: ReplyToken): void {
    if (this.fault !== undefined) return this.ep.replyError(token, this.fault.error);
    if (this.leader === 0) return this.ep.replyError(token, E.noLeader);
    const n = this.proposals.next();
    try {
      this.node.proposeConfChange({
        ...cc,
        context: encodeConfChangeContext({
          member, p: { m: this.selfId, b: this.deps.bootNonce, n },
        }),
      });
    } catch (e) {
      return this.ep.replyError(token, dropError(e));
    }
    this.wait(n, token);
    this.schedulePump();
  }

  private async memberAdd(peerURLs: string[], isLearner: boolean, token: ReplyToken):
    Promise<void> {
    const members = this.sm.members;
    if (peerURLs.some((u) => members.memberOfPeerUrl(u) !== undefined)) {
      return this.ep.replyError(token, E.peerUrlExists);
    }
    if (isLearner && members.list().filter((m) => m.isLearner).length >= maxLearners) {
      return this.ep.replyError(token, E.tooManyLearners);
    }
    const refused = await this.strict((v) => checkAdd(v, isLearner)).catch(() => E.unhealthy);
    if (refused !== undefined) return this.ep.replyError(token, refused);
    const id = memberIdOf(peerURLs, this.cfg.token, this.deps.wallMs());
    const member: Member = { id, name: '', peerURLs, clientURLs: [], isLearner };
    this.log.info({ id: id.toString(16), peerURLs, isLearner }, 'adding a member');
    this.proposeConfChange({
      type: isLearner ? ConfChangeAddLearnerNode : ConfChangeAddNode, nodeId: id as MemberId,
    }, member, token);
  }

  private async memberRemove(id: number, token: ReplyToken): Promise<void> {
    const member = this.sm.members.get(id);
    if (member === undefined) return this.ep.replyError(token, E.memberNotFound);
    const refused = await this.strict((v) => checkRemove(v, id)).catch(() => E.unhealthy);
    if (refused !== undefined) return this.ep.replyError(token, refused);
    this.log.info({ id: id.toString(16) }, 'removing a member');
    this.proposeConfChange({ type: ConfChangeRemoveNode, nodeId: id as MemberId }, member, token);
  }

  private memberUpdate(id: number, peerURLs: string[], token: ReplyToken): void {
    const members = this.sm.members;
    if (!members.has(id)) return this.ep.replyError(token, E.memberNotFound);
    if (peerURLs.some((u) => {
      const m = members.memberOfPeerUrl(u);
      return m !== undefined && m.id !== id;
    })) {
      return this.ep.replyError(token, E.peerUrlExists);
    }
    this.propose(encodeRequest({ type: 'memberUpdate', id, peerURLs }), token);
  }

  private async memberPromote(id: number, token: ReplyToken): Promise<void> {
    if (this.leader === 0) return this.ep.replyError(token, E.noLeader);
    if (this.leader !== this.selfId) {
      // Only the leader knows how far the learner is: ask it (etcd forwards over HTTP).
      if (this.peer === undefined) return this.ep.replyError(token, E.notLeader);
      this.peer.forward({
        type: 'PeerForward', to: this.leader, target: 'raft',
        msg: { type: 'RaftMemberPromote', id },
      }, token);
      this.ep.flushNow();
      return;
    }
    const member = this.sm.members.get(id);
    if (member === undefined) return this.ep.replyError(token, E.memberNotFound);
    if (!member.isLearner) return this.ep.replyError(token, E.notLearner);
    const progress = this.node.status().progress ?? {};
    const mine = progress[this.selfId]?.match ?? 0;
    const theirs = progress[id]?.match ?? 0;
    if (!learnerReady(theirs, mine)) return this.ep.replyError(token, E.learnerNotReady);
    const refused = await this.strict(checkPromote).catch(() => E.unhealthy);
    if (refused !== undefined) return this.ep.replyError(token, refused);
    this.log.info({ id: id.toString(16) }, 'promoting a learner');
    this.proposeConfChange({ type: ConfChangeAddNode, nodeId: id as MemberId },
      { ...member, isLearner: false }, token);
  }

  private transferLeader(to: number, token: ReplyToken): void {
    if (this.leader !== this.selfId) return this.ep.replyError(token, E.notLeader);
    const m = this.sm.members.get(to);
    if (m === undefined || m.isLearner) return this.ep.replyError(token, E.badTransferee);
    if (to === this.selfId) {
      return this.ep.reply(token, { raftTerm: this.node.term() });
    }
    this.log.info({ to: to.toString(16) }, 'transferring leadership');
    this.transfers.push({ to, token, deadlineMs: this.deps.nowMs() + this.cfg.requestTimeoutMs });
    this.node.transferLeader(to as MemberId);
  }

  private status(): RaftStatusResp {
    const st = this.node.status();
    const c = this.sm.counters;
    return {
      memberId: this.selfId,
      clusterId: this.clusterId,
      leader: this.leader,
      raftTerm: st.term,
      raftIndex: this.storage.lastIndex(),
      raftAppliedIndex: this.durable().appliedIndex,
      revision: this.durable().revision,
      compactRevision: this.sm.applier.compactRevision,
      isLeader: this.leader === this.selfId,
      isLearner: this.isLearner(),
      leaderChanges: this.leaderChanges,
      proposalsCommitted: c.committed,
      proposalsApplied: c.applied,
      proposalsPending: this.proposals.size,
      proposalsFailed: c.failed,
      putTotal: c.puts,
      deleteTotal: c.deletes,
      txnTotal: c.txns,
      slowApplies: c.slowApplies,
      dbSizeBytes: 0,
      keys: this.sm.applier.keyCount(),
      alarms: this.alarmList(),
      ...(this.fault === undefined ? {} : {
        diskFault: { kind: this.fault.kind, message: this.fault.error.message },
      }),
    };
  }
}

/**
 * stableLog cuts the recovered log at the first entry whose term is below the term before it
 * (the snapshot's, for the first). Terms never decrease along a Raft log, so such an entry is
 * a stale suffix: written before this member installed a snapshot from its leader, and not
 * yet overwritten when the member crashed. Kept, it would make the log look older than it is
 * (its last term lower), and the member could vote for a candidate that lacks committed
 * entries. What remains after the cut looks at least as up to date as the truth, which only
 * makes the member more careful with its vote; the leader overwrites it as usual.
 */
export function stableLog<E extends { term: number }>(entries: E[], snapshotTerm: number): E[] {
  let prev = snapshotTerm;
  for (let i = 0; i < entries.length; i++) {
    if (entries[i]!.term < prev) return entries.slice(0, i);
    prev = entries[i]!.term;
  }
  return entries;
}

/** dropError maps the core's ErrProposalDropped to etcd's errors. */
function dropError(e: unknown): ErrorBody {
  if (e instanceof ErrProposalDropped && e.reason === 'no leader') return E.noLeader;
  if (e instanceof RaftError) return E.dropped;
  throw e;
}

/** gatewayPush reaches every gateway thread connected to this node ('gateway', 'gateway-1',
 * …); undefined when none is (tests of the node alone). */
function gatewayPush(ep: Endpoint<RaftMsg>): GatewayPush | undefined {
  const refs = ep.targetNames().filter(isGatewayName)
    .map((n) => ep.ref<RaftApplied | AuthChanged, unknown>(n));
  if (refs.length === 0) return undefined;
  return {
    threads: refs.length,
    sendUnbounded: (m) => {
      for (const r of refs) r.sendUnbounded(m);
    },
  };
}
