/** ReadWaits: what a read waits for (the shard's ShardRange, actors/shard/messages.ts). */
export interface ReadWaits {
  waitRevision: number;
  waitIndex?: number;
  /** rewinds: the count of rewinds of the read point it took; absent: no rewind takes it back. */
  rewinds?: number;
}

/** Rewind: entries taken back (the shard's ShardRewind): the position the shard stays at, and
 * the Raft node's count of rewinds, this one included. */
export interface Rewind {
  index: number;
  revision: number;
  rewinds: number;
}

/** ReadVerdict: what a shard does with a read now (ShardReads.admit). */
export type ReadVerdict = 'run' | 'wait' | 'takenBack';

/**
 * ShardReads is a shard's queue of reads that wait for revisions and Raft indexes it has not
 * applied yet: the shard actor's (actors/shard/actor.ts) and the cluster simulation's. Pure:
 * the shard says what it applied, and runs or fails what this hands back.
 *
 * A read waits for waitRevision (the revision of its read point) and waitIndex (the Raft
 * index of the last ShardApply sent when it took the point). A lone leader's read point may
 * move ahead of the fsync of the entries it applied (RaftNode.applyAhead); if that append
 * fails, the Raft node takes them back and says so (ShardRewind): a read that took the point
 * before the rewind, and waits past the rewind's index or revision, waits for entries that
 * were taken back. Later entries may reuse those numbers with other writes, so such a read
 * is failed (takenBack), and the gateway reads again from a new point.
 *
 * Example: applied to index 7, revision 5; a read waits for index 9 (rewinds 0). A rewind to
 * index 7, revision 5 (rewinds 1) hands it back as taken back; a read that took the point
 * after the rewind (rewinds 1) waits for index 9 like any other.
 */
export class ShardReads<T, M extends ReadWaits = ReadWaits> {
  /** appliedIndex is the Raft index of the last ShardApply (or restore) applied. */
  appliedIndex = 0;
  private waiting: { msg: M; token: T }[] = [];
  /** rewound: the last ShardRewind (rewinds 0: none yet). */
  private rewound: Rewind = { index: 0, revision: 0, rewinds: 0 };

  /** currentRevision reads the shard's store revision. */
  constructor(private readonly currentRevision: () => number) {}

  /** size: the reads waiting. Bounded by the gateways' admission limit (gatewayInflightMax). */
  get size(): number {
    return this.waiting.length;
  }

  /** admit decides a new read: run it now, it waits (kept here), or it was taken back. */
  admit(msg: M, token: T): ReadVerdict {
    if (this.caughtUp(msg)) return 'run';
    if (this.takenBack(msg)) return 'takenBack';
    this.waiting.push({ msg, token });
    return 'wait';
  }

  /** applied records a ShardApply's index (a restore's: restored). */
  applied(index: number): void {
    if (index > this.appliedIndex) this.appliedIndex = index;
  }

  /** restored records the index a restore's dump reflects. */
  restored(index: number): void {
    this.appliedIndex = index;
  }

  /** drain hands back the waiting reads the shard has now caught up with, oldest first. */
  drain(): { msg: M; token: T }[] {
    if (this.waiting.length === 0) return [];
    const ready: { msg: M; token: T }[] = [];
    const still: { msg: M; token: T }[] = [];
    for (const w of this.waiting) (this.caughtUp(w.msg) ? ready : still).push(w);
    this.waiting = still;
    return ready;
  }

  /** rewind takes a ShardRewind and hands back the tokens of the reads it took back. */
  rewind(msg: Rewind): T[] {
    this.rewound = { index: msg.index, revision: msg.revision, rewinds: msg.rewinds };
    const back: T[] = [];
    const still: { msg: M; token: T }[] = [];
    for (const w of this.waiting) {
      if (this.takenBack(w.msg)) back.push(w.token);
      else still.push(w);
    }
    this.waiting = still;
    return back;
  }

  /** caughtUp: this shard has applied everything the read must see. */
  private caughtUp(msg: M): boolean {
    return msg.waitRevision <= this.currentRevision() &&
      (msg.waitIndex ?? 0) <= this.appliedIndex;
  }

  /** takenBack: the read took a point that a rewind since took back (see the class). */
  private takenBack(msg: M): boolean {
    const r = this.rewound;
    return msg.rewinds !== undefined && msg.rewinds < r.rewinds &&
      ((msg.waitIndex ?? 0) > r.index || msg.waitRevision > r.revision);
  }
}
