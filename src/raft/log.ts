/**
 * RaftLog is the node's view of the log: a stable prefix in Storage and an unstable suffix
 * (plus possibly an incoming snapshot) held in memory until the shell persists it.
 *
 *      snapshot/first.....stable last.....unstable.offset.....last
 *      |------ Storage (durable) ------|---- unstable (memory) ----|
 *
 * Invariants: applied ≤ applying ≤ committed ≤ last; committed entries are handed to the
 * application only up to the stable last index (the durability rule in docs/raft.md).
 */
import type { Index, Term } from '../types.js';
import { assert } from '../assert.js';
import { errCompacted, errUnavailable, RaftError } from './errors.js';
import { limitSize, type Storage } from './storage.js';
import type { Entry, Snapshot } from './types.js';

/**
 * Unstable holds entries and a snapshot not yet handed back via advance. entries[k] has
 * index offset + k; when a snapshot is present, offset = snapshot index + 1.
 */
class Unstable {
  snapshot: Snapshot | undefined = undefined;
  entries: Entry[] = [];
  constructor(public offset: Index) {}

  maybeFirstIndex(): Index | undefined {
    return this.snapshot ? ((this.snapshot.metadata.index + 1) as Index) : undefined;
  }

  maybeLastIndex(): Index | undefined {
    if (this.entries.length > 0) return (this.offset + this.entries.length - 1) as Index;
    return this.snapshot ? this.snapshot.metadata.index : undefined;
  }

  maybeTerm(i: Index): Term | undefined {
    if (i < this.offset) {
      if (this.snapshot && this.snapshot.metadata.index === i) return this.snapshot.metadata.term;
      return undefined;
    }
    const last = this.maybeLastIndex();
    if (last === undefined || i > last) return undefined;
    return this.entries[i - this.offset]!.term;
  }

  /** stableTo drops entries up to i once persisted, if entry i still has term t. */
  stableTo(i: Index, t: Term): void {
    const gt = this.maybeTerm(i);
    if (gt === undefined || gt !== t || i < this.offset) return;
    this.entries = this.entries.slice(i + 1 - this.offset);
    this.offset = (i + 1) as Index;
  }

  stableSnapTo(i: Index): void {
    if (this.snapshot && this.snapshot.metadata.index === i) this.snapshot = undefined;
  }

  restore(s: Snapshot): void {
    this.offset = (s.metadata.index + 1) as Index;
    this.entries = [];
    this.snapshot = s;
  }

  truncateAndAppend(ents: Entry[]): void {
    const after = ents[0]!.index;
    if (after === this.offset + this.entries.length) {
      this.entries = this.entries.concat(ents);
    } else if (after <= this.offset) {
      // Replace everything unstable; the storage suffix is replaced when these persist.
      this.offset = after;
      this.entries = ents.slice();
    } else {
      this.entries = this.entries.slice(0, after - this.offset).concat(ents);
    }
  }

  slice(lo: Index, hi: Index): Entry[] {
    assert(lo >= this.offset && hi <= this.offset + this.entries.length && lo <= hi,
      `unstable.slice[${lo},${hi}) out of bound `
      + `[${this.offset},${this.offset + this.entries.length}]`);
    return this.entries.slice(lo - this.offset, hi - this.offset);
  }
}

/** RaftLog combines Storage and Unstable (etcd-raft's raftLog). */
export class RaftLog {
  readonly storage: Storage;
  readonly unstable: Unstable;
  /** committed is the highest index known stored on a quorum (Raft §5.3). */
  committed: Index;
  /** applying is the highest index handed to the application, not yet acknowledged. */
  applying: Index;
  /** applied is the highest index the application has acknowledged via advance. */
  applied: Index;
  /** maxApplyingBytes bounds the committed entries handed out in one Ready. */
  private readonly maxApplyingBytes: number;

  constructor(storage: Storage, maxApplyingBytes: number) {
    this.storage = storage;
    this.maxApplyingBytes = maxApplyingBytes;
    const first = storage.firstIndex();
    const last = storage.lastIndex();
    this.unstable = new Unstable((last + 1) as Index);
    this.committed = (first - 1) as Index;
    this.applying = (first - 1) as Index;
    this.applied = (first - 1) as Index;
  }

  firstIndex(): Index {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  lastIndex(): Index {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  /** stableLastIndex is the last index the shell has persisted (no snapshot pending). */
  stableLastIndex(): Index {
    return (this.unstable.offset - 1) as Index;
  }

  lastTerm(): Term {
    return this.term(this.lastIndex()) ?? (0 as Term);
  }

  /** term returns the term of entry i, or undefined if compacted or beyond the log. */
  term(i: Index): Term | undefined {
    // The valid term range is [first index - 1, last index].
    const dummy = (this.firstIndex() - 1) as Index;
    if (i < dummy || i > this.lastIndex()) return undefined;
    const t = this.unstable.maybeTerm(i);
    if (t !== undefined) return t;
    try {
      return this.storage.term(i);
    } catch (e) {
      if (e === errCompacted || e === errUnavailable) return undefined;
      throw e;
    }
  }

  matchTerm(i: Index, t: Term): boolean {
    const got = this.term(i);
    return got !== undefined && got === t;
  }

  /**
   * maybeAppend handles MsgApp's entries following (index, logTerm) (Raft §5.3): returns the
   * last new index, or undefined when the log does not contain the preceding entry.
   */
  maybeAppend(index: Index, logTerm: Term, committed: Index, ents: Entry[]): Index | undefined {
    if (!this.matchTerm(index, logTerm)) return undefined;
    const lastNew = (index + ents.length) as Index;
    const ci = this.findConflict(ents);
    if (ci !== 0) {
      assert(ci > this.committed, 'no entry conflicts with a committed entry',
        [ci, this.committed]);
      this.append(ents.slice(ci - (index + 1)));
    }
    this.commitTo(Math.min(committed, lastNew) as Index);
    return lastNew;
  }

  append(ents: Entry[]): Index {
    if (ents.length === 0) return this.lastIndex();
    const after = ents[0]!.index - 1;
    assert(after >= this.committed,
      `after(${after}) is out of range [committed(${this.committed})]`);
    this.unstable.truncateAndAppend(ents);
    return this.lastIndex();
  }

  /**
   * findConflict returns the index of the first entry in ents whose term differs from the
   * log's (or which is new), or 0 if all are already present.
   */
  findConflict(ents: Entry[]): Index {
    for (const e of ents) {
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0 as Index;
  }

  /**
   * findConflictByTerm returns the largest index ≤ index whose term is ≤ term, with that
   * term (the fast back-off of the Raft thesis §5.3 / etcd-raft): the leader can then skip
   * every entry of a term the follower cannot match.
   */
  findConflictByTerm(index: Index, term: Term): { index: Index; term: Term } {
    for (let i = index; ; i--) {
      const t = this.term(i as Index);
      if (t === undefined) return { index: i as Index, term: 0 as Term };
      if (t <= term) return { index: i as Index, term: t };
    }
  }

  /** unstableEntries returns the entries the shell must persist next. */
  unstableEntries(): Entry[] {
    return this.unstable.entries.slice();
  }

  /** maxAppliableIndex is min(committed, stable last): never apply what is not durable here. */
  private maxAppliableIndex(): Index {
    return Math.min(this.committed, this.stableLastIndex()) as Index;
  }

  hasNextCommittedEnts(): boolean {
    if (this.unstable.snapshot) return false;
    return this.maxAppliableIndex() > this.applying;
  }

  /** nextCommittedEnts returns committed, durable entries not yet handed out for applying. */
  nextCommittedEnts(): Entry[] {
    if (!this.hasNextCommittedEnts()) return [];
    const lo = Math.max(this.applying + 1, this.firstIndex()) as Index;
    const hi = (this.maxAppliableIndex() + 1) as Index;
    return this.slice(lo, hi, this.maxApplyingBytes);
  }

  /** snapshot returns the pending incoming snapshot or the storage's latest. */
  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }

  commitTo(toCommit: Index): void {
    if (toCommit <= this.committed) return;
    assert(toCommit <= this.lastIndex(),
      `tocommit(${toCommit}) is out of range [lastIndex(${this.lastIndex()})]`);
    this.committed = toCommit;
  }

  acceptApplying(i: Index): void {
    if (i > this.applying) this.applying = i;
  }

  appliedTo(i: Index): void {
    if (i === 0) return;
    assert(this.committed >= i && i >= this.applied,
      `applied(${i}) is out of range [prevApplied(${this.applied}), committed(${this.committed})]`);
    this.applied = i;
    if (this.applying < i) this.applying = i;
  }

  stableTo(i: Index, t: Term): void {
    this.unstable.stableTo(i, t);
  }

  stableSnapTo(i: Index): void {
    this.unstable.stableSnapTo(i);
  }

  /**
   * isUpToDate is the election restriction (Raft §5.4.1): a candidate's log ending at
   * (lasti, term) is at least as up to date as ours.
   */
  isUpToDate(lasti: Index, term: Term): boolean {
    const lt = this.lastTerm();
    return term > lt || (term === lt && lasti >= this.lastIndex());
  }

  /** entries returns entries from i on, limited to maxSizeBytes; throws errCompacted. */
  entries(i: Index, maxSizeBytes: number): Entry[] {
    if (i > this.lastIndex()) return [];
    return this.slice(i, (this.lastIndex() + 1) as Index, maxSizeBytes);
  }

  /** slice returns entries in [lo, hi) limited to maxSizeBytes; throws errCompacted. */
  slice(lo: Index, hi: Index, maxSizeBytes: number): Entry[] {
    if (lo === hi) return [];
    const fi = this.firstIndex();
    if (lo < fi) throw errCompacted;
    assert(hi <= this.lastIndex() + 1, 'slice is within the log', [lo, hi]);
    let ents: Entry[] = [];
    const off = this.unstable.offset;
    if (lo < off) {
      let stored: Entry[];
      try {
        stored = this.storage.entries(lo, Math.min(hi, off) as Index, maxSizeBytes);
      } catch (e) {
        if (e === errCompacted) throw e;
        if (e instanceof RaftError && e === errUnavailable) {
          throw new Error(`raft: entries[${lo}:${Math.min(hi, off)}) is unavailable from storage`);
        }
        throw e;
      }
      // A short read means the size limit was hit.
      if (stored.length < Math.min(hi, off) - lo) return stored;
      ents = stored;
    }
    if (hi > off) {
      const u = this.unstable.slice(Math.max(lo, off) as Index, hi);
      ents = ents.length > 0 ? ents.concat(u) : u;
    }
    return limitSize(ents, maxSizeBytes);
  }

  /** restore replaces the log with an incoming snapshot (Raft §7). */
  restore(s: Snapshot): void {
    this.committed = s.metadata.index;
    this.unstable.restore(s);
  }
}
