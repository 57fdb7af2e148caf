import { EtcdError } from '../../src/errors.js';
import type { ReplyToken } from '../../src/runtime/endpoint.js';

/**
 * proposals: the clients waiting for their proposals to be applied. A proposal is known by
 * the sequence number in its ProposalId; the Raft node that proposed it answers when it
 * applies the entry. Raft may lose a proposal (the leader it was forwarded to crashed, a new
 * leader overwrote it, the forwarding message was dropped): nothing would ever answer, so
 * every proposal carries a deadline and is failed with etcd's timeout errors when it passes.
 * The map is therefore bounded by the admission limit times the request timeout.
 */

/** ErrorBody is what a waiting client is failed with (code and etcd's message). */
export interface ErrorBody {
  code: string;
  message: string;
}

/** timeoutError is etcd's ErrTimeout. */
export const timeoutError: ErrorBody = new EtcdError('TIMEOUT');
/** timeoutLeaderFailError is etcd's ErrTimeoutDueToLeaderFail: the leader changed while the
 * proposal waited, so it was probably lost with the old leader. */
export const timeoutLeaderFailError: ErrorBody = new EtcdError('TIMEOUT_LEADER_FAIL');

interface Waiting {
  token: ReplyToken;
  deadlineMs: number;
  /** leaderChanges: the node's leader-change count when the proposal was made. */
  leaderChanges: number;
}

/** Proposals: see the file comment. */
export class Proposals {
  private readonly waiting = new Map<number, Waiting>();
  private nextSeq = 1;

  /** next reserves a sequence number for a new proposal. */
  next(): number {
    return this.nextSeq++;
  }

  /** wait registers the client of proposal n until nowMs + timeoutMs. */
  wait(n: number, token: ReplyToken, deadlineMs: number, leaderChanges: number): void {
    this.waiting.set(n, { token, deadlineMs, leaderChanges });
  }

  /** take removes and returns the client of proposal n (undefined: not ours, or timed out). */
  take(n: number): ReplyToken | undefined {
    const w = this.waiting.get(n);
    if (w === undefined) return undefined;
    this.waiting.delete(n);
    return w.token;
  }

  /** expire removes every proposal past its deadline and returns each with its error. */
  expire(nowMs: number, leaderChanges: number): { token: ReplyToken; error: ErrorBody }[] {
    const out: { token: ReplyToken; error: ErrorBody }[] = [];
    // Deadlines are the same timeout after a monotonic clock, so the map's insertion order is
    // deadline order: stop at the first one still running.
    for (const [n, w] of this.waiting) {
      if (w.deadlineMs > nowMs) break;
      this.waiting.delete(n);
      out.push({
        token: w.token,
        error: w.leaderChanges !== leaderChanges ? timeoutLeaderFailError : timeoutError,
      });
    }
    return out;
  }

  /** drain removes every waiting proposal (the node stops). */
  drain(): ReplyToken[] {
    const out = [...this.waiting.values()].map((w) => w.token);
    this.waiting.clear();
    return out;
  }

  /** size is the number of proposals waiting. */
  get size(): number {
    return this.waiting.size;
  }
}
