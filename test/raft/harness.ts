/**
 * Shared pieces of the Raft tests: a node model that plays the shell's part exactly as
 * docs/raft.md prescribes (apply committed entries at ready(), persist into the Storage,
 * advance), a toy state machine whose state is a running hash, and message formatting.
 */
import {
  ConfChangeAddLearnerNode, confChangeTypeName, messageTypeName, EntryConfChange, MemoryStorage,
  RawNode, decodeConfChange, type ConfState, type Entry,
  type Message, type RaftConfig, type Ready, type Snapshot,
} from '../../src/raft/index.js';
import type { Index, MemberId } from '../../src/types.js';
import { seeded } from '../helpers/rng.js';

/** NodeOptions are the RaftConfig knobs the tests vary. */
export interface NodeOptions {
  electionTick: number;
  heartbeatTick: number;
  preVote: boolean;
  checkQuorum: boolean;
  maxSizePerMsg: number;
  maxInflightMsgs: number;
}

/** defaultOptions mirror etcd-raft's interaction tests: election 10, heartbeat 1. */
export const defaultOptions: NodeOptions = {
  electionTick: 10, heartbeatTick: 1, preVote: true, checkQuorum: true,
  maxSizePerMsg: 1024 * 1024, maxInflightMsgs: 256,
};

/** fnv folds bytes into a 32-bit FNV-1a hash. */
export function fnv(h: number, bytes: Uint8Array): number {
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i]!, 16777619) >>> 0;
  return h;
}

function hashEntry(h: number, e: Entry): number {
  h = Math.imul(h ^ e.index, 16777619) >>> 0;
  h = Math.imul(h ^ e.term, 16777619) >>> 0;
  return fnv(h, e.data);
}

/** snapshotData encodes the toy state machine (its hash) as a snapshot's data. */
export function snapshotData(hash: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, hash);
  return b;
}

function hashOf(s: Snapshot): number {
  if (s.data.length !== 4) return 2166136261;
  return new DataView(s.data.buffer, s.data.byteOffset, 4).getUint32(0);
}

/** ApplyHook lets the simulation check every applied entry against the global record. */
export type ApplyHook = (node: TestNode, e: Entry, hashAfter: number) => void;

/**
 * TestNode is one member: its Storage is exactly its durable state, so a crash is "drop the
 * RawNode and the Ready in flight, keep the Storage".
 */
export class TestNode {
  rn!: RawNode;
  /** hash and appliedIndex are the toy state machine: lost on crash, rebuilt from snapshot. */
  hash = 2166136261;
  appliedIndex = 0;
  confState: ConfState = { voters: [], learners: [] };
  /** pending is the Ready handed out and not yet persisted/advanced. */
  pending: Ready | undefined;
  onApply: ApplyHook | undefined;

  constructor(readonly id: MemberId, readonly storage: MemoryStorage,
    readonly opts: NodeOptions, readonly seed: number) {
    this.start();
  }

  config(): RaftConfig {
    return {
      id: this.id, storage: this.storage, electionTick: this.opts.electionTick,
      heartbeatTick: this.opts.heartbeatTick, preVote: this.opts.preVote,
      checkQuorum: this.opts.checkQuorum, maxSizePerMsg: this.opts.maxSizePerMsg,
      maxInflightMsgs: this.opts.maxInflightMsgs, rng: seededRngFor(this.seed, this.id),
    };
  }

  /** start (re)creates the RawNode from the Storage, as a restarting shell would. */
  start(): void {
    const snap = this.storage.snapshot();
    this.hash = hashOf(snap);
    this.appliedIndex = snap.metadata.index;
    this.confState = snap.metadata.confState;
    this.pending = undefined;
    this.rn = new RawNode({ ...this.config(), applied: snap.metadata.index });
  }

  /** takeReady gets a Ready and applies its committed entries at once (allowed: stable). */
  takeReady(): Ready {
    const rd = this.rn.ready();
    if (rd.snapshot) {
      this.hash = hashOf(rd.snapshot);
      this.appliedIndex = rd.snapshot.metadata.index;
      this.confState = rd.snapshot.metadata.confState;
    }
    for (const e of rd.committedEntries) this.apply(e);
    this.pending = rd;
    return rd;
  }

  private apply(e: Entry): void {
    if (e.index <= this.appliedIndex) return;
    if (e.index !== this.appliedIndex + 1) {
      throw new Error(`node ${this.id} applies ${e.index} after ${this.appliedIndex}`);
    }
    if (e.type === EntryConfChange) {
      this.confState = this.rn.applyConfChange(decodeConfChange(e.data));
    }
    this.hash = hashEntry(this.hash, e);
    this.appliedIndex = e.index;
    this.onApply?.(this, e, this.hash);
  }

  /** persist writes the pending Ready into the Storage (the fsync) and advances. */
  persist(): void {
    const rd = this.pending!;
    if (rd.snapshot) this.storage.applySnapshot(rd.snapshot);
    if (rd.entries.length > 0) this.storage.append(rd.entries);
    if (rd.hardState) this.storage.setHardState(rd.hardState);
    this.pending = undefined;
    this.rn.advance(rd);
  }

  /** compact snapshots the state machine at its applied index and drops older entries. */
  compact(keep: number): boolean {
    const si = this.storage.snapshot().metadata.index;
    // Only a persisted state can be snapshotted: a snapshot received in the Ready in flight
    // is applied to the state machine but not yet in the Storage.
    if (this.appliedIndex <= si || this.appliedIndex > this.storage.lastIndex()) return false;
    const at = this.appliedIndex as Index;
    this.storage.createSnapshot(at, this.confState, snapshotData(this.hash));
    const to = at - keep;
    if (to > this.storage.firstIndex()) this.storage.compact(to as Index);
    return true;
  }
}

function seededRngFor(seed: number, id: number): () => number {
  // One distinct, reproducible stream per (seed, node): the one generator over a mixed seed.
  return seeded((seed * 1000003 + id * 7919) >>> 0);
}

/** newNode creates a member: founding members are bootstrapped, others start empty. */
export function newNode(id: MemberId, voters: MemberId[], learners: MemberId[],
  opts: NodeOptions, seed: number): TestNode {
  const storage = new MemoryStorage();
  const n = new TestNode(id, storage, opts, seed);
  if (voters.includes(id) || learners.includes(id)) {
    n.rn.bootstrap(voters);
    for (const l of learners) {
      n.rn.applyConfChange({ type: ConfChangeAddLearnerNode, nodeId: l });
    }
  }
  return n;
}

function describeData(e: Entry): string {
  if (e.type === EntryConfChange) {
    const cc = decodeConfChange(e.data);
    return `${confChangeTypeName(cc.type)}(${cc.nodeId})`;
  }
  let s = '';
  for (const b of e.data) s += String.fromCharCode(b);
  return JSON.stringify(s);
}

/** describeEntry prints "term/index Type data". */
export function describeEntry(e: Entry): string {
  return `${e.term}/${e.index} ${e.type === EntryConfChange ? 'EntryConfChange' : 'EntryNormal'}`
    + ` ${describeData(e)}`;
}

function ctxStr(c: Uint8Array | undefined): string {
  if (!c) return '';
  let s = '';
  for (const b of c) s += String.fromCharCode(b);
  return s;
}

/** describeMessage prints a message the way etcd-raft's DescribeMessage does, roughly. */
export function describeMessage(m: Message): string {
  let s = `${m.from}->${m.to} ${messageTypeName(m.type)} Term:${m.term}`
    + ` Log:${m.logTerm}/${m.index}`;
  if (m.commit !== 0) s += ` Commit:${m.commit}`;
  if (m.reject) s += ` Rejected (Hint: ${m.rejectHint})`;
  if (m.context && m.context.length > 0) s += ` Context:${JSON.stringify(ctxStr(m.context))}`;
  if (m.entries.length > 0) s += ` Entries:[${m.entries.map(describeEntry).join(', ')}]`;
  if (m.snapshot) {
    const md = m.snapshot.metadata;
    s += ` Snapshot: Index:${md.index} Term:${md.term} Voters:[${md.confState.voters}]`
      + ` Learners:[${md.confState.learners}]`;
  }
  return s;
}

/** ctxString decodes a read context for printing. */
export const ctxString = ctxStr;
