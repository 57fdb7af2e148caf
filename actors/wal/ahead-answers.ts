import type { PackedReplies } from '../../src/runtime/endpoint.js';
import type { WalAnswers } from './messages.js';

/**
 * ahead-answers: when the WAL writer may post the answers the Raft node applied ahead of an
 * append (WalAnswers): once that append is durable, never if it failed. The Raft node has one
 * append in flight and sends its answers right behind it on the same channel, before its next
 * append, so only the last append that carried a seq matters. Pure: the actor (and the
 * cluster simulation's fake WAL) post what it hands back.
 */
export class AheadAnswers {
  /** last: the last append with a seq, and whether it is durable (undefined: queued). */
  private last: { seq: number; durable: boolean | undefined } = { seq: 0, durable: false };
  /** waiting: the answers of the last append while it is queued. */
  private waiting: WalAnswers | undefined;

  /** appending: the Raft node's append `seq` waits for the next group commit. */
  appending(seq: number): void {
    this.last = { seq, durable: undefined };
    this.waiting = undefined;
  }

  /** settled: append `seq` is durable (true) or failed (false); the answers to post now. */
  settled(seq: number, durable: boolean): PackedReplies[] {
    if (seq !== this.last.seq) return [];
    this.last = { seq, durable };
    const w = this.waiting;
    this.waiting = undefined;
    return durable && w !== undefined ? w.replies : [];
  }

  /** take: the answers of an append, to post now if it is durable ([] when it is queued,
   * kept until it settles, or failed, dropped); undefined for an append it does not know. */
  take(a: WalAnswers): PackedReplies[] | undefined {
    if (a.seq !== this.last.seq) return undefined;
    if (this.last.durable === true) return a.replies;
    if (this.last.durable === undefined) this.waiting = a;
    return [];
  }
}
