/**
 * RawNode is the synchronous wrapper the shell drives (etcd-raft's rawnode.go): it feeds
 * ticks, messages and proposals into Raft and hands back Ready batches. The Ready/advance
 * contract is in docs/raft.md; in short: ready() → apply committedEntries, persist
 * entries/hardState/snapshot into the Storage (fsync), send messages → advance(rd).
 */
import type { Index, MemberId, Term } from '../types.js';
import { encodeConfChange } from './confchange.js';
import { assert } from '../assert.js';
import {
  errMalformedMessage, errStepLocalMsg, errStepPeerNotFound, RaftError,
} from './errors.js';
import { Raft, type RaftConfig } from './raft.js';
import {
  ConfChangeAddNode, EntryConfChange, EntryNormal, isLocalMsg, isResponseMsg, MsgHup, MsgProp,
  MsgReadIndex, MsgSnapStatus, MsgTransferLeader, MsgUnreachable, None, emptyMessage,
  type ConfChange, type ConfState, type Entry, type HardState, type Message, type Ready,
  type SoftState, type Status,
} from './types.js';
import { validateMessage } from './validate.js';

/** Peer is an initial member for bootstrap; `context` is stored in its AddNode entry. */
export interface Peer {
  id: MemberId;
  context?: Uint8Array;
}

/** RawNode is a single Raft node driven by the caller, one call at a time. */
export class RawNode {
  /** raft is exposed for tests and status; the shell should not call it directly. */
  readonly raft: Raft;
  private prevSoftSt: SoftState;
  private prevHardSt: HardState;
  /** pendingReady is the Ready handed out and not yet advanced. */
  private pendingReady: Ready | undefined = undefined;

  /**
   * RawNode's constructor starts a node from whatever the config's Storage holds: an empty
   * storage for a node joining an existing cluster (it learns the membership from the
   * leader), or the persisted snapshot, hard state and entries on restart.
   */
  constructor(config: RaftConfig) {
    this.raft = new Raft(config);
    this.prevSoftSt = this.raft.softState();
    this.prevHardSt = this.raft.hardState();
  }

  /**
   * bootstrap (static) builds a node for a brand-new cluster whose initial voters are
   * `peers` (every founding member calls it with the same list): see the instance method.
   */
  static bootstrap(config: RaftConfig, peers: readonly (Peer | MemberId)[]): RawNode {
    const rn = new RawNode(config);
    rn.bootstrap(peers);
    return rn;
  }

  /**
   * bootstrap initializes an empty node as a founding member of a new cluster: the log gets
   * one ConfChangeAddNode entry per peer at indexes 1..n, term 1, already committed — the same
   * entries on every founding member, so their logs match. The entries come out of the first
   * Ready to be persisted like any other, so a restart needs no special case; after that
   * advance they are handed out as committedEntries and the application applies them with
   * applyConfChange as usual (applying them twice is harmless).
   */
  bootstrap(peers: readonly (Peer | MemberId)[]): void {
    assert(peers.length > 0, 'must provide at least one peer to bootstrap');
    const r = this.raft;
    if (r.raftLog.lastIndex() !== 0 || r.term !== 0) {
      throw new RaftError('RAFT_BOOTSTRAP_NON_EMPTY');
    }
    r.becomeFollower(1 as Term, None);
    const ents: Entry[] = peers.map((p, i) => {
      const peer = typeof p === 'number' ? { id: p } : p;
      const cc: ConfChange = { type: ConfChangeAddNode, nodeId: peer.id };
      if (peer.context) cc.context = peer.context;
      return { term: 1 as Term, index: (i + 1) as Index, type: EntryConfChange,
        data: encodeConfChange(cc) };
    });
    r.raftLog.append(ents);
    r.raftLog.committed = ents.length as Index;
    for (const p of peers) {
      r.applyConfChange({ type: ConfChangeAddNode, nodeId: typeof p === 'number' ? p : p.id });
    }
    // The membership already reflects these entries, so the node may campaign at once.
    r.confIndex = ents.length as Index;
  }

  /** tick advances logical time by one tick (one heartbeat interval). */
  tick(): void {
    this.raft.tick();
  }

  /** campaign makes this node start an election now (with pre-vote if enabled). */
  campaign(): void {
    const m = emptyMessage(MsgHup);
    m.from = this.raft.id;
    this.raft.step(m);
  }

  /**
   * propose asks to append `data` as an EntryNormal. It throws ErrProposalDropped when the
   * node knows it cannot (no leader, leader transfer in progress, removed). Success only
   * means accepted for replication: a follower forwards it, and a proposal can still be lost
   * with a leader change; the application learns the outcome from committedEntries.
   */
  propose(data: Uint8Array): void {
    this.proposeMany([data]);
  }

  /** proposeMany proposes every `datas` as EntryNormal entries, in order, in one MsgProp (one
   * step, as etcd's MsgProp carries several entries): all are accepted or all dropped. */
  proposeMany(datas: readonly Uint8Array[]): void {
    if (datas.length === 0) return;
    this.stepProp(datas.map((data) => ({
      term: 0 as Term, index: 0 as Index, type: EntryNormal, data,
    })));
  }

  /** proposeConfChange proposes a membership change; throws ErrProposalDropped as propose. */
  proposeConfChange(cc: ConfChange): void {
    this.stepProp([{ term: 0 as Term, index: 0 as Index, type: EntryConfChange,
      data: encodeConfChange(cc) }]);
  }

  private stepProp(entries: Entry[]): void {
    const m = emptyMessage(MsgProp);
    m.from = this.raft.id;
    m.entries = entries;
    const err = this.raft.step(m);
    if (err) throw err;
  }

  /**
   * applyConfChange applies a committed EntryConfChange (decode its data with
   * decodeConfChange) and returns the new membership, to store in the next snapshot.
   */
  applyConfChange(cc: ConfChange): ConfState {
    return this.raft.applyConfChange(cc);
  }

  /**
   * step hands a message from a peer to the core. Malformed messages, local-only types and
   * responses from non-members are refused with the returned RaftError (never thrown); the
   * shell may log it and otherwise ignore it.
   */
  step(m: Message): RaftError | undefined {
    const why = validateMessage(m);
    if (why !== undefined) return errMalformedMessage(why);
    if (isLocalMsg(m.type)) return errStepLocalMsg;
    if (isResponseMsg(m.type) && !this.raft.prs.progress.has(m.from)) return errStepPeerNotFound;
    const clean: Message = { ...m };
    if (clean.context === null || clean.context === undefined) delete clean.context;
    if (clean.snapshot === null || clean.snapshot === undefined) delete clean.snapshot;
    return this.raft.step(clean);
  }

  /**
   * readIndex requests a linearizable read point (thesis §6.4). The answer arrives in a later
   * Ready's readStates with the same (non-empty, unique) context; the read may be served once
   * the application has applied up to its index. With no known leader the request is dropped
   * silently: the shell should time it out (or check softState.lead first).
   */
  readIndex(context: Uint8Array): void {
    assert(context.length > 0, 'read index context must not be empty');
    const m = emptyMessage(MsgReadIndex);
    m.from = this.raft.id;
    m.context = context;
    this.raft.step(m);
  }

  /** transferLeader asks the leader to hand leadership to `to` (thesis §3.10). */
  transferLeader(to: MemberId): void {
    const m = emptyMessage(MsgTransferLeader);
    m.from = to;
    m.to = this.raft.id;
    this.raft.step(m);
  }

  /** reportUnreachable tells the leader a message to `id` could not be delivered. */
  reportUnreachable(id: MemberId): void {
    const m = emptyMessage(MsgUnreachable);
    m.from = id;
    this.raft.step(m);
  }

  /** reportSnapshot tells the leader whether the MsgSnap to `id` was delivered and applied. */
  reportSnapshot(id: MemberId, failed: boolean): void {
    const m = emptyMessage(MsgSnapStatus);
    m.from = id;
    m.reject = failed;
    this.raft.step(m);
  }

  /** hasReady says whether ready() would return something to do. */
  hasReady(): boolean {
    if (this.pendingReady) return false;
    const r = this.raft;
    const ss = r.softState();
    if (ss.lead !== this.prevSoftSt.lead || ss.raftState !== this.prevSoftSt.raftState) {
      return true;
    }
    if (!hardStateEqual(r.hardState(), this.prevHardSt)) return true;
    if (r.raftLog.unstable.snapshot) return true;
    if (r.msgs.length > 0 || r.readStates.length > 0) return true;
    if (r.raftLog.unstable.entries.length > 0) return true;
    return r.raftLog.hasNextCommittedEnts();
  }

  /**
   * ready returns the next batch of work and takes ownership of it from the core: the
   * caller must call advance(rd) before the next ready().
   */
  ready(): Ready {
    assert(this.pendingReady === undefined, 'ready() called again before advance()');
    const r = this.raft;
    const rd: Ready = {
      readStates: r.readStates,
      entries: r.raftLog.unstableEntries(),
      committedEntries: r.raftLog.nextCommittedEnts(),
      messages: r.msgs,
      mustSync: false,
    };
    const ss = r.softState();
    if (ss.lead !== this.prevSoftSt.lead || ss.raftState !== this.prevSoftSt.raftState) {
      rd.softState = ss;
      this.prevSoftSt = ss;
    }
    const hs = r.hardState();
    if (!hardStateEqual(hs, this.prevHardSt)) {
      rd.hardState = hs;
      // Term and vote must be durable before any message that depends on them leaves.
      rd.mustSync = hs.term !== this.prevHardSt.term || hs.vote !== this.prevHardSt.vote;
      this.prevHardSt = hs;
    }
    if (r.raftLog.unstable.snapshot) rd.snapshot = r.raftLog.unstable.snapshot;
    if (rd.entries.length > 0 || rd.snapshot) rd.mustSync = true;
    if (rd.committedEntries.length > 0) {
      r.raftLog.acceptApplying(rd.committedEntries[rd.committedEntries.length - 1]!.index);
    }
    r.msgs = [];
    r.readStates = [];
    this.pendingReady = rd;
    return rd;
  }

  /**
   * advance acknowledges `rd`: its entries, hard state and snapshot are now in the Storage
   * (durable) and its committedEntries applied. Only then does a leader count its own log
   * toward a quorum, so an entry commits only after this node's fsync when it is needed.
   */
  advance(rd: Ready): void {
    assert(this.pendingReady === rd, 'advance() must be given the last Ready');
    this.pendingReady = undefined;
    const r = this.raft;
    if (rd.snapshot) {
      const si = rd.snapshot.metadata.index;
      assert(r.raftLog.storage.snapshotMetadata().index >= si,
        'advance: the Ready snapshot was not applied to the storage');
      r.raftLog.stableSnapTo(si);
      if (si > r.raftLog.applied) r.raftLog.appliedTo(si);
    }
    if (rd.entries.length > 0) {
      const last = rd.entries[rd.entries.length - 1]!;
      assert(r.raftLog.storage.lastIndex() >= last.index,
        'advance: the Ready entries were not appended to the storage');
      r.raftLog.stableTo(last.index, last.term);
    }
    if (rd.committedEntries.length > 0) {
      const idx = rd.committedEntries[rd.committedEntries.length - 1]!.index;
      if (idx > r.raftLog.applied) r.raftLog.appliedTo(idx);
    }
    r.onPersisted();
  }

  /** term is the current term: what the shell stamps on every answer (raftTerm), without
   * building the whole status (config and, on a leader, every peer's progress). */
  term(): Term {
    return this.raft.term;
  }

  /** status reports the node's state; progress is set on the leader only. */
  status(): Status {
    return this.raft.status();
  }
}

function hardStateEqual(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}
