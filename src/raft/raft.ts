/**
 * Raft is the consensus state machine (etcd-raft's raft.go): no clock, no I/O, no threads.
 * Time arrives through tick(), input through step(m); output accumulates in `msgs`,
 * `readStates` and the log's unstable part, which RawNode hands to the shell as a Ready.
 * Section numbers cite the Raft paper (§) and Ongaro's thesis (thesis §).
 */
import type { Index, MemberId, Term } from '../types.js';
import { decodeConfChange } from './confchange.js';
import { assert } from '../assert.js';
import {
  ErrProposalDropped, errStepPeerNotFound, RaftError, type DropReason,
} from './errors.js';
import { electionTicksMin, readIndexPendingMax } from '../constants.js';
import { RaftLog } from './log.js';
import { Progress, ProgressTracker } from './progress.js';
import { ReadOnly } from './readonly.js';
import type { Storage } from './storage.js';
import {
  ConfChangeAddLearnerNode, ConfChangeAddNode, ConfChangeRemoveNode, EntryConfChange, EntryNormal,
  MsgApp, MsgAppResp, MsgBeat, MsgCheckQuorum, MsgHeartbeat, MsgHeartbeatResp, MsgHup, MsgPreVote,
  MsgPreVoteResp, MsgProp, MsgReadIndex, MsgReadIndexResp, MsgSnap, MsgSnapStatus, MsgTimeoutNow,
  MsgTransferLeader, MsgUnreachable, MsgVote, MsgVoteResp,
  emptyMessage, None, type ConfChange, type ConfState, type Entry, type HardState,
  type Message, type MessageType, type ReadState, type SoftState, type StateType, type Status,
} from './types.js';

/** RaftConfig configures one node (field meanings as etcd-raft's Config). */
export interface RaftConfig {
  /** id is this node's MemberId; never None. */
  id: MemberId;
  /** electionTick: followers campaign after a randomized [electionTick, 2*electionTick). */
  electionTick: number;
  /** heartbeatTick: a leader sends heartbeats every heartbeatTick ticks (< electionTick). */
  heartbeatTick: number;
  storage: Storage;
  /** applied is the last index the application applied before a restart (default 0). */
  applied?: Index;
  /** maxSizePerMsg bounds the entry bytes in one MsgApp (and committed entries per Ready). */
  maxSizePerMsg: number;
  /** maxInflightMsgs bounds pipelined MsgApps per follower in StateReplicate. */
  maxInflightMsgs: number;
  /** preVote enables the pre-vote phase (thesis §9.6). */
  preVote: boolean;
  /** checkQuorum makes a leader step down without a quorum's contact (thesis §6.2). */
  checkQuorum: boolean;
  /** rng is a seeded generator of floats in [0,1). */
  rng: () => number;
  logger?: { info(msg: string): void; warn(msg: string): void };
}

/** CampaignType says why a node campaigns. */
type CampaignType = 'CampaignPreElection' | 'CampaignElection' | 'CampaignTransfer';

/** campaignTransfer is the context of votes forced by a leader transfer (thesis §3.10). */
export const campaignTransfer = new Uint8Array([
  0x43, 0x61, 0x6d, 0x70, 0x61, 0x69, 0x67, 0x6e, 0x54, 0x72, 0x61, 0x6e, 0x73, 0x66, 0x65, 0x72,
]); // "CampaignTransfer"

function isCampaignTransfer(ctx: Uint8Array | undefined): boolean {
  if (!ctx || ctx.length !== campaignTransfer.length) return false;
  for (let i = 0; i < ctx.length; i++) if (ctx[i] !== campaignTransfer[i]) return false;
  return true;
}

function voteRespType(t: MessageType): MessageType {
  return t === MsgVote ? MsgVoteResp : MsgPreVoteResp;
}

/** Raft is one node's consensus state. Use it through RawNode. */
export class Raft {
  readonly id: MemberId;
  term: Term = 0 as Term;
  vote: MemberId = None;
  readonly raftLog: RaftLog;
  readonly prs: ProgressTracker;
  state: StateType = 'StateFollower';
  isLearner = false;
  /** msgs are outgoing messages, released by the next Ready. */
  msgs: Message[] = [];
  /** readStates are answered read requests, released by the next Ready. */
  readStates: ReadState[] = [];
  lead: MemberId = None;
  /** leadTransferee is the transfer target while a transfer is in progress, else None. */
  leadTransferee: MemberId = None;
  /** confIndex: conf changes up to this index are already in `prs` (bootstrap, restart). */
  confIndex: Index = 0 as Index;
  /** pendingConfIndex: a new conf change may only be proposed once applied ≥ this. */
  pendingConfIndex: Index = 0 as Index;
  private readOnly = new ReadOnly();
  /** pendingReadIndexMessages wait for the leader's first commit in its term (§6.4). */
  private pendingReadIndexMessages: Message[] = [];
  /** electionElapsed: ticks since the last election timeout (leader) or contact (others). */
  electionElapsed = 0;
  private heartbeatElapsed = 0;
  private readonly checkQuorum: boolean;
  private readonly preVote: boolean;
  private readonly heartbeatTimeout: number;
  private readonly electionTimeout: number;
  /** randomizedElectionTimeout ∈ [electionTimeout, 2*electionTimeout), redrawn on reset. */
  randomizedElectionTimeout = 0;
  private readonly maxMsgSize: number;
  private readonly rng: () => number;
  private readonly logger: RaftConfig['logger'];
  /** sortedIds caches the members in id order, so output order is deterministic. */
  private sortedIds: MemberId[] = [];

  constructor(c: RaftConfig) {
    assert(c.id !== None && Number.isSafeInteger(c.id) && c.id > 0, 'cannot use none as id');
    assert(c.heartbeatTick > 0, 'heartbeat tick must be greater than 0');
    assert(c.electionTick > c.heartbeatTick && c.electionTick >= electionTicksMin,
      'election tick must be greater than heartbeat tick');
    assert(c.maxInflightMsgs > 0, 'max inflight messages must be greater than 0');
    assert(c.maxSizePerMsg > 0, 'max size per message must be greater than 0');
    this.id = c.id;
    this.raftLog = new RaftLog(c.storage, c.maxSizePerMsg);
    this.prs = new ProgressTracker(c.maxInflightMsgs);
    this.maxMsgSize = c.maxSizePerMsg;
    this.checkQuorum = c.checkQuorum;
    this.preVote = c.preVote;
    this.heartbeatTimeout = c.heartbeatTick;
    this.electionTimeout = c.electionTick;
    this.rng = c.rng;
    this.logger = c.logger;

    const { hardState, confState } = c.storage.initialState();
    this.restoreConfig(confState);
    if (hardState.term !== 0 || hardState.vote !== None || hardState.commit !== 0) {
      this.loadState(hardState);
    }
    // The snapshot is committed and applied by definition, even when the storage keeps
    // entries before it (compaction behind the snapshot) or the HardState lags it.
    const si = c.storage.snapshotMetadata().index;
    if (si > this.raftLog.committed) this.raftLog.committed = si;
    if (si > this.raftLog.applied) this.raftLog.appliedTo(si);
    const applied = c.applied ?? (0 as Index);
    if (applied > this.raftLog.applied) {
      assert(applied <= this.raftLog.committed,
        `applied(${applied}) is out of range [committed(${this.raftLog.committed})]`);
      this.raftLog.appliedTo(applied);
    }
    // Rebuild the membership from every committed conf change after the snapshot. Those up to
    // `applied` will not be handed out again; the later ones will, and applying them twice is
    // harmless. Taking all committed ones at once lets a restarted node campaign at once.
    const lo = (this.raftLog.firstIndex()) as Index;
    const hi = (this.raftLog.committed + 1) as Index;
    if (lo < hi) {
      for (const e of this.raftLog.slice(lo, hi, Number.MAX_SAFE_INTEGER)) {
        if (e.index > c.storage.snapshotMetadata().index && e.type === EntryConfChange) {
          this.applyConfChange(decodeConfChange(e.data));
        }
      }
    }
    this.confIndex = this.raftLog.committed;
    this.becomeFollower(this.term, None);
    this.logger?.info(`raft ${this.id}: newRaft [peers: ${this.prs.voters.join(',')}, ` +
      `term: ${this.term}, commit: ${this.raftLog.committed}, applied: ${this.raftLog.applied}]`);
  }

  // ---- state accessors ----

  softState(): SoftState {
    return { lead: this.lead, raftState: this.state };
  }

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.raftLog.committed };
  }

  status(): Status {
    const s: Status = {
      id: this.id, term: this.term, vote: this.vote, commit: this.raftLog.committed,
      applied: this.raftLog.applied, lead: this.lead, raftState: this.state,
      leadTransferee: this.leadTransferee, config: this.prs.confState(),
    };
    if (this.state === 'StateLeader') {
      const p: Record<number, ReturnType<Progress['toStatus']>> = {};
      for (const id of this.sortedIds) p[id] = this.prs.progress.get(id)!.toStatus();
      s.progress = p;
    }
    return s;
  }

  private loadState(hs: HardState): void {
    assert(hs.commit <= this.raftLog.lastIndex(),
      `${this.id} state.commit ${hs.commit} is out of range [0, ${this.raftLog.lastIndex()}]`);
    // The persisted commit may lag the snapshot: the application applies (and may snapshot)
    // committed entries before the HardState of the same Ready is durable. Everything in a
    // snapshot is committed, so the larger of the two holds.
    if (hs.commit > this.raftLog.committed) this.raftLog.committed = hs.commit;
    this.term = hs.term;
    this.vote = hs.vote;
  }

  /** promotable: a voter of its own config may campaign (learners and removed nodes not). */
  promotable(): boolean {
    return this.prs.isVoter(this.id);
  }

  // ---- sending ----

  private send(m: Message): void {
    m.from = this.id;
    if (m.type === MsgVote || m.type === MsgVoteResp || m.type === MsgPreVote
      || m.type === MsgPreVoteResp) {
      // Votes carry an explicit term: a pre-vote is for the *next* term (thesis §9.6).
      assert(m.term !== 0, 'term should be set when sending', m.type);
    } else {
      assert(m.term === 0, 'term should not be set when sending', m.type);
      // Forwarded proposals and reads act like local messages at the leader: no term.
      if (m.type !== MsgProp && m.type !== MsgReadIndex) m.term = this.term;
    }
    this.msgs.push(m);
  }

  private msg(type: MessageType, to: MemberId): Message {
    const m = emptyMessage(type);
    m.to = to;
    return m;
  }

  private sendAppend(to: MemberId): void {
    this.maybeSendAppend(to, true);
  }

  /**
   * maybeSendAppend sends the next MsgApp to `to` if its Progress allows, or a MsgSnap when
   * the entries it needs are compacted (Raft §7). Returns whether a message was sent.
   */
  private maybeSendAppend(to: MemberId, sendIfEmpty: boolean): boolean {
    const pr = this.prs.progress.get(to);
    if (!pr || pr.isPaused()) return false;
    const prevIndex = (pr.next - 1) as Index;
    const prevTerm = this.raftLog.term(prevIndex);
    let ents: Entry[] | undefined;
    if (prevTerm !== undefined) {
      try {
        ents = this.raftLog.entries(pr.next, this.maxMsgSize);
      } catch (e) {
        if (!(e instanceof RaftError)) throw e;
        ents = undefined;
      }
    }
    if (prevTerm === undefined || ents === undefined) return this.maybeSendSnapshot(to, pr);
    if (ents.length === 0 && !sendIfEmpty) return false;
    const m = this.msg(MsgApp, to);
    m.index = prevIndex;
    m.logTerm = prevTerm;
    m.entries = ents;
    m.commit = this.raftLog.committed;
    pr.sentEntries(ents.length, ents.length > 0 ? ents[ents.length - 1]!.index : prevIndex);
    this.send(m);
    return true;
  }

  private maybeSendSnapshot(to: MemberId, pr: Progress): boolean {
    // Only send a snapshot to a follower we know is alive: it is large.
    if (!pr.recentActive) return false;
    let snap;
    try {
      snap = this.raftLog.snapshot();
    } catch (e) {
      const code = e instanceof RaftError ? e.code : undefined;
      if (code === 'RAFT_SNAPSHOT_TEMPORARILY_UNAVAILABLE') return false;
      throw e;
    }
    assert(snap.metadata.index !== 0, 'need non-empty snapshot');
    this.logger?.info(`raft ${this.id}: sending snapshot at ${snap.metadata.index} to ${to}`);
    pr.becomeSnapshot(snap.metadata.index);
    const m = this.msg(MsgSnap, to);
    m.snapshot = snap;
    this.send(m);
    return true;
  }

  private sendHeartbeat(to: MemberId, ctx: Uint8Array | undefined): void {
    // Never tell a follower to commit past what it is known to have (it may not have it).
    const pr = this.prs.progress.get(to)!;
    const m = this.msg(MsgHeartbeat, to);
    m.commit = Math.min(pr.match, this.raftLog.committed) as Index;
    if (ctx) m.context = ctx;
    this.send(m);
  }

  private bcastAppend(): void {
    for (const id of this.sortedIds) if (id !== this.id) this.sendAppend(id);
  }

  private bcastHeartbeat(): void {
    this.bcastHeartbeatWithCtx(this.readOnly.lastPendingRequestCtx());
  }

  private bcastHeartbeatWithCtx(ctx: Uint8Array | undefined): void {
    for (const id of this.sortedIds) if (id !== this.id) this.sendHeartbeat(id, ctx);
  }

  // ---- commit and append ----

  /**
   * maybeCommit advances the commit index to what a quorum has matched, but only for an
   * entry of the current term (Raft §5.4.2): older entries commit indirectly with it.
   */
  private maybeCommit(): boolean {
    if (this.prs.voters.length === 0) return false;
    const mci = this.prs.committed();
    if (mci <= this.raftLog.committed) return false;
    if (this.raftLog.term(mci) !== this.term) return false;
    this.raftLog.commitTo(mci);
    return true;
  }

  /**
   * appendEntry appends the leader's new entries. The leader does not count itself toward a
   * quorum here: its own match advances only when the shell reports them persisted (advance).
   */
  private appendEntry(es: Entry[]): void {
    let li = this.raftLog.lastIndex();
    for (const e of es) {
      li = (li + 1) as Index;
      e.term = this.term;
      e.index = li;
    }
    this.raftLog.append(es);
  }

  /** onPersisted is called by advance: entries up to the stable last index are durable. */
  onPersisted(): void {
    if (this.state !== 'StateLeader') return;
    const pr = this.prs.progress.get(this.id);
    if (!pr) return;
    if (pr.maybeUpdate(this.raftLog.stableLastIndex()) && this.maybeCommit()) {
      this.releasePendingReadIndexMessages();
      this.bcastAppend();
    }
  }

  // ---- role transitions ----

  private reset(term: Term): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = None;
    }
    this.lead = None;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.abortLeaderTransfer();
    this.prs.resetVotes();
    const last = this.raftLog.lastIndex();
    for (const [id, old] of this.prs.progress) {
      const pr = new Progress((last + 1) as Index, this.prs.maxInflight, old.isLearner);
      if (id === this.id) pr.match = this.raftLog.stableLastIndex();
      this.prs.progress.set(id, pr);
    }
    this.pendingConfIndex = 0 as Index;
    this.readOnly = new ReadOnly();
    this.pendingReadIndexMessages = [];
  }

  private resetRandomizedElectionTimeout(): void {
    this.randomizedElectionTimeout =
      this.electionTimeout + Math.floor(this.rng() * this.electionTimeout);
  }

  becomeFollower(term: Term, lead: MemberId): void {
    this.reset(term);
    this.lead = lead;
    this.state = 'StateFollower';
    this.logger?.info(`raft ${this.id}: became follower at term ${this.term}`);
  }

  private becomeCandidate(): void {
    assert(this.state !== 'StateLeader', 'invalid transition [leader -> candidate]');
    this.reset((this.term + 1) as Term);
    this.vote = this.id;
    this.state = 'StateCandidate';
    this.logger?.info(`raft ${this.id}: became candidate at term ${this.term}`);
  }

  private becomePreCandidate(): void {
    assert(this.state !== 'StateLeader', 'invalid transition [leader -> pre-candidate]');
    // A pre-candidate changes neither term nor vote (thesis §9.6).
    this.prs.resetVotes();
    this.lead = None;
    this.state = 'StatePreCandidate';
    this.logger?.info(`raft ${this.id}: became pre-candidate at term ${this.term}`);
  }

  private becomeLeader(): void {
    assert(this.state !== 'StateFollower', 'invalid transition [follower -> leader]');
    this.reset(this.term);
    this.lead = this.id;
    this.state = 'StateLeader';
    const pr = this.prs.progress.get(this.id)!;
    pr.becomeReplicate();
    pr.recentActive = true;
    // Conservatively, entries up to the last index may hold a conf change not yet applied;
    // no new one until they are (this also avoids the single-server change bug in a new
    // term: a leader must commit in its term before changing membership).
    this.pendingConfIndex = this.raftLog.lastIndex();
    // The no-op entry of the new term lets the leader commit older entries (Raft §5.4.2).
    this.appendEntry([{ term: 0 as Term, index: 0 as Index, type: EntryNormal,
      data: new Uint8Array(0) }]);
    this.logger?.info(`raft ${this.id}: became leader at term ${this.term}`);
  }

  // ---- time ----

  /** tick advances logical time by one tick. */
  tick(): void {
    if (this.state === 'StateLeader') this.tickHeartbeat();
    else this.tickElection();
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.step({ ...emptyMessage(MsgHup), from: this.id });
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTimeout) {
      this.electionElapsed = 0;
      if (this.checkQuorum) this.step({ ...emptyMessage(MsgCheckQuorum), from: this.id });
      // A transfer that did not finish within an election timeout is abandoned (§3.10).
      if (this.state === 'StateLeader' && this.leadTransferee !== None) {
        this.abortLeaderTransfer();
      }
    }
    if (this.state !== 'StateLeader') return;
    if (this.heartbeatElapsed >= this.heartbeatTimeout) {
      this.heartbeatElapsed = 0;
      this.step({ ...emptyMessage(MsgBeat), from: this.id });
    }
  }

  // ---- elections ----

  private hasUnappliedConfChanges(): boolean {
    // Entries the application already compacted were applied by it.
    const lo = Math.max(this.raftLog.applied + 1, this.confIndex + 1,
      this.raftLog.firstIndex()) as Index;
    const hi = (this.raftLog.committed + 1) as Index;
    if (lo >= hi) return false;
    const ents = this.raftLog.slice(lo, hi, Number.MAX_SAFE_INTEGER);
    return ents.some((e) => e.type === EntryConfChange);
  }

  private hup(t: CampaignType): void {
    if (this.state === 'StateLeader') return;
    if (!this.promotable()) {
      this.logger?.warn(`raft ${this.id}: is unpromotable and can not campaign`);
      return;
    }
    // A node must not campaign under a membership it has not finished applying.
    if (this.hasUnappliedConfChanges()) {
      this.logger?.warn(`raft ${this.id}: cannot campaign, pending conf changes to apply`);
      return;
    }
    this.campaign(t);
  }

  private campaign(t: CampaignType): void {
    let term: Term;
    let voteMsg: MessageType;
    if (t === 'CampaignPreElection') {
      this.becomePreCandidate();
      voteMsg = MsgPreVote;
      term = (this.term + 1) as Term; // Pre-vote for the term we would campaign in.
    } else {
      this.becomeCandidate();
      voteMsg = MsgVote;
      term = this.term;
    }
    if (this.poll(this.id, true) === 'VoteWon') {
      // A single voter wins at once.
      if (t === 'CampaignPreElection') this.campaign('CampaignElection');
      else this.becomeLeader();
      return;
    }
    for (const id of this.prs.voters) {
      if (id === this.id) continue;
      const m = this.msg(voteMsg, id);
      m.term = term;
      m.index = this.raftLog.lastIndex();
      m.logTerm = this.raftLog.lastTerm();
      if (t === 'CampaignTransfer') m.context = campaignTransfer;
      this.send(m);
    }
  }

  private poll(id: MemberId, granted: boolean): string {
    this.prs.recordVote(id, granted);
    return this.prs.tallyVotes().result;
  }

  // ---- step ----

  /** step handles one message; returns a RaftError when it is refused, else undefined. */
  step(m: Message): RaftError | undefined {
    if (!this.stepTerm(m)) return undefined;
    switch (m.type) {
      case MsgHup:
        this.hup(this.preVote ? 'CampaignPreElection' : 'CampaignElection');
        return undefined;
      case MsgVote:
      case MsgPreVote:
        this.handleVoteRequest(m);
        return undefined;
      default:
        switch (this.state) {
          case 'StateLeader': return this.stepLeader(m);
          case 'StateCandidate':
          case 'StatePreCandidate': return this.stepCandidate(m);
          case 'StateFollower': return this.stepFollower(m);
        }
    }
  }

  /**
   * stepTerm applies the term rules (Raft §5.1) before step handles a message: newer terms
   * win, older ones are answered or dropped. Returns false when the message goes no further.
   */
  private stepTerm(m: Message): boolean {
    if (m.term === 0) {
      // Local message (or a forwarded proposal/read).
    } else if (m.term > this.term) {
      if (m.type === MsgVote || m.type === MsgPreVote) {
        const force = isCampaignTransfer(m.context);
        const inLease = this.checkQuorum && this.lead !== None
          && this.electionElapsed < this.electionTimeout;
        // Within the lease of a leader we heard from, ignore disruptive candidates: this is
        // what keeps a rejoining partitioned node from deposing a healthy leader (§9.6).
        if (!force && inLease) return false;
      }
      if (m.type === MsgPreVote) {
        // Never change our term on a pre-vote request.
      } else if (m.type === MsgPreVoteResp && !m.reject) {
        // A granted pre-vote carries the future term; we bump it only on winning.
      } else if (m.type === MsgApp || m.type === MsgHeartbeat || m.type === MsgSnap) {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, None);
      }
    } else if (m.term < this.term) {
      if ((this.checkQuorum || this.preVote) && (m.type === MsgHeartbeat || m.type === MsgApp)) {
        // A stale leader (e.g. rejoining after a partition) learns the newer term from this
        // answer; otherwise, with pre-vote, nodes would ignore it forever.
        this.send(this.msg(MsgAppResp, m.from));
      } else if (m.type === MsgPreVote) {
        const r = this.msg(MsgPreVoteResp, m.from);
        r.term = this.term;
        r.reject = true;
        this.send(r);
      }
      return false;
    }
    return true;
  }

  /** handleVoteRequest answers a MsgVote or MsgPreVote of the current or a newer term. */
  private handleVoteRequest(m: Message): void {
    // We may vote for the same candidate again (a duplicated request), for anyone if we
    // have neither voted nor a leader, and pre-vote for any future term (thesis §9.6).
    const canVote = this.vote === m.from || (this.vote === None && this.lead === None)
      || (m.type === MsgPreVote && m.term > this.term);
    // Election restriction (Raft §5.4.1).
    if (canVote && this.raftLog.isUpToDate(m.index, m.logTerm)) {
      const r = this.msg(voteRespType(m.type), m.from);
      r.term = m.term;
      this.send(r);
      if (m.type === MsgVote) {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      const r = this.msg(voteRespType(m.type), m.from);
      r.term = this.term;
      r.reject = true;
      this.send(r);
    }
  }

  private stepLeader(m: Message): RaftError | undefined {
    switch (m.type) {
      case MsgBeat:
        this.bcastHeartbeat();
        return undefined;
      case MsgCheckQuorum:
        if (!this.prs.quorumActive(this.id)) {
          this.logger?.warn(`raft ${this.id}: stepped down to follower since quorum is not active`);
          this.becomeFollower(this.term, None);
        }
        // Each check covers one election timeout of activity.
        for (const [id, pr] of this.prs.progress) pr.recentActive = id === this.id;
        return undefined;
      case MsgProp:
        return this.handlePropose(m);
      case MsgReadIndex:
        if (!this.committedEntryInCurrentTerm()) {
          // Until the leader commits in its term it does not know the latest commit index
          // (thesis §6.4 step 1): park the request.
          if (this.pendingReadIndexMessages.length >= readIndexPendingMax) {
            this.pendingReadIndexMessages.shift();
          }
          this.pendingReadIndexMessages.push(m);
          return undefined;
        }
        this.handleReadIndex(m);
        return undefined;
      default:
        break;
    }
    const pr = this.prs.progress.get(m.from);
    if (!pr) return errStepPeerNotFound;
    switch (m.type) {
      case MsgAppResp:
        this.handleAppendResponse(m, pr);
        break;
      case MsgHeartbeatResp:
        this.handleHeartbeatResponse(m, pr);
        break;
      case MsgSnapStatus:
        if (pr.state !== 'StateSnapshot') break;
        if (m.reject) pr.pendingSnapshot = 0 as Index; // Failed: probe from match again.
        pr.becomeProbe();
        // Wait for a MsgAppResp or heartbeat response before the next probe.
        pr.msgAppFlowPaused = true;
        break;
      case MsgUnreachable:
        // Optimistic pipelining failed: fall back to probing.
        if (pr.state === 'StateReplicate') pr.becomeProbe();
        break;
      case MsgTransferLeader:
        this.handleTransferLeader(m, pr);
        break;
      default:
        break;
    }
    return undefined;
  }

  /** handleHeartbeatResponse: the follower is alive; it may need entries, and it may
   * acknowledge a read index round (thesis §6.4). */
  private handleHeartbeatResponse(m: Message, pr: Progress): void {
    pr.recentActive = true;
    pr.msgAppFlowPaused = false;
    // A full window whose MsgApps were lost would stall forever: the follower is alive,
    // so free one slot and let the next MsgApp (or its rejection) move things on.
    if (pr.state === 'StateReplicate' && pr.inflights.full()) pr.inflights.freeFirstOne();
    if (pr.match < this.raftLog.lastIndex() || pr.state === 'StateProbe') {
      this.sendAppend(m.from);
    }
    if (!m.context || m.context.length === 0) return;
    if (!this.readOnly.recvAck(m.from, m.context)) return;
    for (const rs of this.readOnly.advance(m.context, this.prs.voters)) {
      this.responseToReadIndexReq(rs.req, rs.index);
    }
  }

  /** handleTransferLeader starts moving leadership to m.from (a voter), once it is caught up. */
  private handleTransferLeader(m: Message, pr: Progress): void {
    if (pr.isLearner) return;
    const target = m.from;
    if (this.leadTransferee !== None) {
      if (this.leadTransferee === target) return;
      this.abortLeaderTransfer();
    }
    if (target === this.id) return;
    // The transfer must finish within one election timeout (thesis §3.10).
    this.electionElapsed = 0;
    this.leadTransferee = target;
    if (pr.match === this.raftLog.lastIndex()) this.sendTimeoutNow(target);
    else this.sendAppend(target);
  }

  private handlePropose(m: Message): RaftError | undefined {
    assert(m.entries.length > 0, 'stepped empty MsgProp', this.id);
    if (!this.prs.progress.has(this.id)) return new ErrProposalDropped('not a member');
    if (this.leadTransferee !== None) return new ErrProposalDropped('transfer in progress');
    for (let i = 0; i < m.entries.length; i++) {
      const e = m.entries[i]!;
      if (e.type !== EntryConfChange) continue;
      const why = this.checkConfChange(e);
      if (why) return new ErrProposalDropped(why);
      this.pendingConfIndex = (this.raftLog.lastIndex() + i + 1) as Index;
    }
    this.appendEntry(m.entries.map((e) => ({ ...e })));
    this.bcastAppend();
    return undefined;
  }

  /** checkConfChange refuses a conf change while another is unapplied (thesis §4.1). */
  private checkConfChange(e: Entry): DropReason | undefined {
    if (this.pendingConfIndex > this.raftLog.applied) return 'conf change pending';
    let cc: ConfChange;
    try {
      cc = decodeConfChange(e.data);
    } catch {
      return 'invalid conf change';
    }
    if (cc.type === ConfChangeRemoveNode || cc.type === ConfChangeAddLearnerNode) {
      const left = this.prs.voters.filter((id) => id !== cc.nodeId);
      if (left.length === 0) return 'invalid conf change'; // No voter would remain.
    }
    return undefined;
  }

  private handleAppendResponse(m: Message, pr: Progress): void {
    pr.recentActive = true;
    if (m.reject) {
      // Fast back-off: skip the whole term the follower cannot match (thesis §5.3 note).
      let nextProbeIdx = m.rejectHint;
      if (m.logTerm > 0) {
        nextProbeIdx = this.raftLog.findConflictByTerm(m.rejectHint, m.logTerm).index;
      }
      if (pr.maybeDecrTo(m.index, nextProbeIdx)) {
        if (pr.state === 'StateReplicate') pr.becomeProbe();
        this.sendAppend(m.from);
      }
      return;
    }
    const oldPaused = pr.isPaused();
    if (!pr.maybeUpdate(m.index)) {
      // A duplicate or stale answer; a probe answered at `match` still unblocks us.
      if (pr.state === 'StateProbe' && pr.match === m.index) pr.msgAppFlowPaused = false;
      return;
    }
    if (pr.state === 'StateProbe') {
      pr.becomeReplicate();
    } else if (pr.state === 'StateSnapshot' && pr.match + 1 >= this.raftLog.firstIndex()) {
      // The follower caught up past our compaction point: resume normal replication.
      pr.becomeProbe();
      pr.becomeReplicate();
    } else if (pr.state === 'StateReplicate') {
      pr.inflights.freeLE(m.index);
    }
    if (this.maybeCommit()) {
      this.releasePendingReadIndexMessages();
      this.bcastAppend();
    } else if (oldPaused) {
      this.sendAppend(m.from);
    }
    // Fill the pipeline window with whatever else is ready.
    while (this.maybeSendAppend(m.from, false)) { /* keep sending */ }
    if (m.from === this.leadTransferee && pr.match === this.raftLog.lastIndex()) {
      this.sendTimeoutNow(m.from);
    }
  }

  private sendTimeoutNow(to: MemberId): void {
    this.send(this.msg(MsgTimeoutNow, to));
  }

  private abortLeaderTransfer(): void {
    this.leadTransferee = None;
  }

  private committedEntryInCurrentTerm(): boolean {
    return this.raftLog.term(this.raftLog.committed) === this.term;
  }

  /**
   * handleReadIndex (thesis §6.4): record the commit index, then confirm leadership with a
   * heartbeat round carrying the request's context. A single voter is its own quorum.
   */
  private handleReadIndex(m: Message): void {
    if (this.prs.voters.length === 1 && this.prs.isVoter(this.id)) {
      this.responseToReadIndexReq(m, this.raftLog.committed);
      return;
    }
    this.readOnly.addRequest(this.raftLog.committed, m);
    this.readOnly.recvAck(this.id, m.context);
    this.bcastHeartbeatWithCtx(m.context);
  }

  private releasePendingReadIndexMessages(): void {
    if (this.pendingReadIndexMessages.length === 0) return;
    if (!this.committedEntryInCurrentTerm()) return;
    const msgs = this.pendingReadIndexMessages;
    this.pendingReadIndexMessages = [];
    for (const m of msgs) this.handleReadIndex(m);
  }

  private responseToReadIndexReq(req: Message, readIndex: Index): void {
    if (req.from === None || req.from === this.id) {
      this.readStates.push({ index: readIndex, requestCtx: req.context ?? new Uint8Array(0) });
      return;
    }
    const r = this.msg(MsgReadIndexResp, req.from);
    r.index = readIndex;
    if (req.context) r.context = req.context;
    this.send(r);
  }

  private stepCandidate(m: Message): RaftError | undefined {
    // A pre-candidate counts MsgPreVoteResp, a candidate MsgVoteResp; the other is stale.
    const myVoteRespType = this.state === 'StatePreCandidate' ? MsgPreVoteResp : MsgVoteResp;
    switch (m.type) {
      case MsgProp:
        return new ErrProposalDropped('no leader');
      case MsgApp:
        this.becomeFollower(m.term, m.from); // Someone else won this term (Raft §5.2).
        this.handleAppendEntries(m);
        return undefined;
      case MsgHeartbeat:
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        return undefined;
      case MsgSnap:
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        return undefined;
      case MsgTimeoutNow:
        return undefined;
      default:
        break;
    }
    if (m.type !== myVoteRespType) return undefined;
    const res = this.poll(m.from, !m.reject);
    if (res === 'VoteWon') {
      if (this.state === 'StatePreCandidate') {
        this.campaign('CampaignElection');
      } else {
        this.becomeLeader();
        this.bcastAppend();
      }
    } else if (res === 'VoteLost') {
      // A pre-vote loss keeps our term; a real loss is at the term we campaigned in.
      this.becomeFollower(this.term, None);
    }
    return undefined;
  }

  private stepFollower(m: Message): RaftError | undefined {
    switch (m.type) {
      case MsgProp:
        if (this.lead === None) return new ErrProposalDropped('no leader');
        m.to = this.lead;
        this.send(m);
        return undefined;
      case MsgApp:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleAppendEntries(m);
        return undefined;
      case MsgHeartbeat:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleHeartbeat(m);
        return undefined;
      case MsgSnap:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleSnapshot(m);
        return undefined;
      case MsgTransferLeader:
        if (this.lead === None) return undefined;
        m.to = this.lead;
        m.term = 0 as Term;
        this.send(m);
        return undefined;
      case MsgTimeoutNow:
        // The leader chose us (thesis §3.10): campaign now, skipping pre-vote.
        this.hup('CampaignTransfer');
        return undefined;
      case MsgReadIndex:
        if (this.lead === None) {
          this.logger?.info(`raft ${this.id}: no leader, dropping read index`);
          return undefined;
        }
        m.to = this.lead;
        this.send(m);
        return undefined;
      case MsgReadIndexResp:
        this.readStates.push({ index: m.index, requestCtx: m.context ?? new Uint8Array(0) });
        return undefined;
      default:
        return undefined;
    }
  }

  private handleAppendEntries(m: Message): void {
    if (m.index < this.raftLog.committed) {
      // Everything up to our commit index matches already.
      const r = this.msg(MsgAppResp, m.from);
      r.index = this.raftLog.committed;
      this.send(r);
      return;
    }
    const lastNew = this.raftLog.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    const r = this.msg(MsgAppResp, m.from);
    if (lastNew !== undefined) {
      r.index = lastNew;
      this.send(r);
      return;
    }
    // Log matching failed (Raft §5.3). Hint the largest index whose term is ≤ the leader's
    // prevLogTerm: every entry after it in our log conflicts or is missing.
    const hintIndex = Math.min(m.index, this.raftLog.lastIndex()) as Index;
    const hint = this.raftLog.findConflictByTerm(hintIndex, m.logTerm);
    r.index = m.index;
    r.reject = true;
    r.rejectHint = hint.index;
    r.logTerm = hint.term;
    this.send(r);
  }

  private handleHeartbeat(m: Message): void {
    this.raftLog.commitTo(m.commit);
    const r = this.msg(MsgHeartbeatResp, m.from);
    if (m.context) r.context = m.context;
    this.send(r);
  }

  private handleSnapshot(m: Message): void {
    const s = m.snapshot;
    const r = this.msg(MsgAppResp, m.from);
    if (s && this.restore(s)) {
      this.logger?.info(`raft ${this.id}: restored snapshot [index: ${s.metadata.index}]`);
      r.index = this.raftLog.lastIndex();
    } else {
      r.index = this.raftLog.committed;
    }
    this.send(r);
  }

  /** restore installs a leader's snapshot (Raft §7); false if it brings nothing new. */
  private restore(s: Snapshot): boolean {
    if (s.metadata.index <= this.raftLog.committed) return false;
    assert(this.state === 'StateFollower', 'only a follower restores a snapshot');
    const cs = s.metadata.confState;
    // A snapshot taken before this node was added does not list it (etcd-raft refuses it).
    // We accept it: the node is then a non-member that cannot campaign, and the entries
    // after the snapshot, which the leader sends next, include the change that adds it.
    // Refusing would stall the node until the leader's application snapshots again.
    if (this.raftLog.matchTerm(s.metadata.index, s.metadata.term)) {
      // We have the snapshot's last entry: just fast-forward the commit index.
      this.raftLog.commitTo(s.metadata.index);
      return false;
    }
    this.raftLog.restore(s);
    this.restoreConfig(cs);
    return true;
  }

  private restoreConfig(cs: ConfState): void {
    this.prs.voters = [];
    this.prs.learners = [];
    this.prs.progress.clear();
    const next = (this.raftLog.lastIndex() + 1) as Index;
    for (const id of cs.voters) this.addMember(id, false, next);
    for (const id of cs.learners) this.addMember(id, true, next);
    this.afterMembershipChange();
  }

  private addMember(id: MemberId, learner: boolean, next: Index): void {
    (learner ? this.prs.learners : this.prs.voters).push(id);
    const pr = new Progress(next, this.prs.maxInflight, learner);
    // A new member counts as active, so CheckQuorum does not trip before it can answer.
    pr.recentActive = true;
    this.prs.progress.set(id, pr);
  }

  private afterMembershipChange(): void {
    this.prs.voters.sort((a, b) => a - b);
    this.prs.learners.sort((a, b) => a - b);
    this.sortedIds = [...this.prs.progress.keys()].sort((a, b) => a - b);
    this.isLearner = this.prs.learners.includes(this.id);
  }

  /**
   * applyConfChange applies a committed single-server change (thesis §4.1) and returns the
   * new ConfState. A leader that is removed or demoted steps down.
   */
  applyConfChange(cc: ConfChange): ConfState {
    const id = cc.nodeId;
    const voter = this.prs.voters.includes(id);
    const learner = this.prs.learners.includes(id);
    const next = (this.raftLog.lastIndex() + 1) as Index;
    switch (cc.type) {
      case ConfChangeAddNode:
        if (learner) {
          // Promotion keeps the learner's replication progress.
          this.prs.learners = this.prs.learners.filter((x) => x !== id);
          this.prs.voters.push(id);
          this.prs.progress.get(id)!.isLearner = false;
        } else if (!voter) {
          this.addMember(id, false, next);
        }
        break;
      case ConfChangeAddLearnerNode:
        if (voter) {
          this.prs.voters = this.prs.voters.filter((x) => x !== id);
          this.prs.learners.push(id);
          this.prs.progress.get(id)!.isLearner = true;
        } else if (!learner) {
          this.addMember(id, true, next);
        }
        break;
      case ConfChangeRemoveNode:
        this.prs.voters = this.prs.voters.filter((x) => x !== id);
        this.prs.learners = this.prs.learners.filter((x) => x !== id);
        this.prs.progress.delete(id);
        this.prs.votes.delete(id);
        break;
    }
    this.afterMembershipChange();
    const cs = this.prs.confState();
    if (this.state !== 'StateLeader') return cs;
    if (!this.prs.progress.has(this.id) || this.isLearner) {
      this.logger?.info(`raft ${this.id}: removed or demoted, stepping down`);
      this.becomeFollower(this.term, None);
      return cs;
    }
    if (this.leadTransferee !== None && !this.prs.isVoter(this.leadTransferee)) {
      this.abortLeaderTransfer();
    }
    // The quorum may have shrunk; new members need entries.
    if (this.maybeCommit()) {
      this.releasePendingReadIndexMessages();
      this.bcastAppend();
    } else {
      for (const pid of this.sortedIds) if (pid !== this.id) this.maybeSendAppend(pid, false);
    }
    return cs;
  }
}

type Snapshot = NonNullable<Message['snapshot']>;
