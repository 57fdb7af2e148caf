import type { ReplyToken } from '../../src/runtime/endpoint.js';
import { type ErrorBody, timeoutError } from './proposals.js';

/**
 * read-index: the Raft node's bookkeeping of linearizable reads (Raft thesis §6.4). Every
 * RaftReadIndex ask that arrives before the next pass joins one batch; the pass issues ONE
 * read-index request to the core for the batch (its context: this member's id and a counter,
 * as etcd's request ids are unique per member — the leader's read-only queue keys requests by
 * context, so a follower's forwarded request must never share one with the leader's own).
 * The core answers
 * with a ReadState (on the leader after a heartbeat round, on a follower through the
 * leader's MsgReadIndexResp); the batch then waits until this member has applied the read
 * index, and is answered with the revision to read at.
 *
 * A follower's request can be lost with the message carrying it, or with the leader: every
 * issued batch has a deadline and fails with etcd's "request timed out" when it passes.
 */

interface Issued {
  tokens: ReplyToken[];
  deadlineMs: number;
}

/** ReadIndexQueue: see the file comment. */
export class ReadIndexQueue {
  /** gathering: asks that arrived since the last pass. */
  private gathering: ReplyToken[] = [];
  private nextCtx = 1;
  /** issued: batches handed to the core, by context, waiting for their ReadState. */
  private readonly issued = new Map<number, Issued>();
  /** confirmed: batches whose read index is known, waiting for applied ≥ index. */
  private confirmed: { index: number; tokens: ReplyToken[] }[] = [];

  /** add gathers one ask for the next pass. */
  add(token: ReplyToken): void {
    this.gathering.push(token);
  }

  /** hasGathered reports asks waiting to be issued. */
  get hasGathered(): boolean {
    return this.gathering.length > 0;
  }

  /** takeGathered returns the gathered asks (to fail them when no leader is known). */
  takeGathered(): ReplyToken[] {
    const t = this.gathering;
    this.gathering = [];
    return t;
  }

  /** issue turns the gathered asks into one batch and returns its context bytes, unique
   * across the cluster: `selfId` (this member) and a counter. */
  issue(deadlineMs: number, selfId: number): Uint8Array {
    const c = this.nextCtx++;
    this.issued.set(c, { tokens: this.gathering, deadlineMs });
    this.gathering = [];
    return encodeCtx(selfId, c);
  }

  /** confirm records the read index the core gave a batch; unknown contexts are ignored (a
   * batch that timed out, or a context from before a restart). */
  confirm(ctx: Uint8Array, index: number, selfId: number): void {
    const d = decodeCtx(ctx);
    if (d === undefined || d.member !== selfId) return;
    const c = d.counter;
    const b = this.issued.get(c);
    if (b === undefined) return;
    this.issued.delete(c);
    this.confirmed.push({ index, tokens: b.tokens });
  }

  /** release returns the asks whose read index is applied. */
  release(appliedIndex: number): ReplyToken[] {
    if (this.confirmed.length === 0) return [];
    const out: ReplyToken[] = [];
    const still: typeof this.confirmed = [];
    for (const r of this.confirmed) {
      if (r.index > appliedIndex) still.push(r);
      else out.push(...r.tokens);
    }
    this.confirmed = still;
    return out;
  }

  /** failIssued removes every batch waiting for its ReadState (the leader was lost). */
  failIssued(): ReplyToken[] {
    const out: ReplyToken[] = [];
    for (const b of this.issued.values()) out.push(...b.tokens);
    this.issued.clear();
    return out;
  }

  /** expire removes the issued batches past their deadline, with etcd's timeout error. */
  expire(nowMs: number): { tokens: ReplyToken[]; error: ErrorBody } {
    const tokens: ReplyToken[] = [];
    for (const [c, b] of this.issued) {
      if (b.deadlineMs > nowMs) break; // issued in deadline order
      this.issued.delete(c);
      tokens.push(...b.tokens);
    }
    return { tokens, error: timeoutError };
  }

  /** pending counts batches issued or confirmed and not yet answered. */
  get pending(): number {
    return this.issued.size + this.confirmed.length;
  }
}

function encodeCtx(member: number, counter: number): Uint8Array {
  const b = new Uint8Array(16);
  const v = new DataView(b.buffer);
  v.setFloat64(0, member);
  v.setFloat64(8, counter);
  return b;
}

function decodeCtx(b: Uint8Array): { member: number; counter: number } | undefined {
  if (b.length !== 16) return undefined;
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return { member: v.getFloat64(0), counter: v.getFloat64(8) };
}
