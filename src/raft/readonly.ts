/**
 * ReadOnly tracks ReadIndex requests on the leader (thesis §6.4): each request records the
 * commit index when it arrived, then waits until a quorum has answered a heartbeat carrying
 * its context, which proves this node was still leader after the request arrived. Requests
 * are released in arrival order; an ack for a later request also confirms the earlier ones.
 */
import type { Index, MemberId } from '../types.js';
import { voteResult } from './quorum.js';
import type { Message } from './types.js';

/** ReadIndexStatus is one pending request. */
export interface ReadIndexStatus {
  req: Message;
  index: Index;
  acks: Set<MemberId>;
}

/** ctxKey turns a request context into a Map key (latin1, one char per byte). */
export function ctxKey(ctx: Uint8Array | undefined): string {
  if (!ctx) return '';
  let s = '';
  for (let i = 0; i < ctx.length; i++) s += String.fromCharCode(ctx[i]!);
  return s;
}

/** ReadOnly is the queue of pending ReadIndex requests (ReadOnlySafe mode only). */
export class ReadOnly {
  private pending = new Map<string, ReadIndexStatus>();
  private queue: string[] = [];

  /** addRequest queues `m` at commit index `index`; a duplicate context is ignored. */
  addRequest(index: Index, m: Message): void {
    const key = ctxKey(m.context);
    if (this.pending.has(key)) return;
    this.pending.set(key, { req: m, index, acks: new Set() });
    this.queue.push(key);
  }

  /** recvAck records that `id` answered the heartbeat for `ctx`; returns the acks so far. */
  recvAck(id: MemberId, ctx: Uint8Array | undefined): Set<MemberId> | undefined {
    const rs = this.pending.get(ctxKey(ctx));
    if (!rs) return undefined;
    rs.acks.add(id);
    return rs.acks;
  }

  /**
   * advance dequeues the request with context `ctx` and every one queued before it, when
   * the acks form a quorum of `voters`; returns them in arrival order.
   */
  advance(ctx: Uint8Array | undefined, voters: readonly MemberId[]): ReadIndexStatus[] {
    const key = ctxKey(ctx);
    const rs = this.pending.get(key);
    if (!rs) return [];
    if (voteResult(voters, (id) => rs.acks.has(id) || undefined) !== 'VoteWon') return [];
    const at = this.queue.indexOf(key);
    if (at < 0) return [];
    const done = this.queue.splice(0, at + 1);
    const out: ReadIndexStatus[] = [];
    for (const k of done) {
      out.push(this.pending.get(k)!);
      this.pending.delete(k);
    }
    return out;
  }

  /** lastPendingRequestCtx is the context of the newest request, to piggyback on heartbeats. */
  lastPendingRequestCtx(): Uint8Array | undefined {
    if (this.queue.length === 0) return undefined;
    return this.pending.get(this.queue[this.queue.length - 1]!)!.req.context;
  }

  size(): number {
    return this.queue.length;
  }
}
