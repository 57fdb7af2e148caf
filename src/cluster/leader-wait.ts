/**
 * leader-wait: the requests a member takes while it knows no leader, held until one is known
 * or their request timeout passes. etcd waits the same way: its Raft node reads no proposal
 * while leaderless (the write waits within its request context), and a follower's lease
 * renewal waits for a leader to relay to (waitLeader) before it answers "no leader". The Raft
 * node holds proposals here, the lease actor keep-alives and time-to-live asks; each gives the
 * clock and answers what comes out. Bounded by `max` (the caller fails a request refused).
 *
 * Example: const w = new LeaderWait<string>(2); w.hold('a', 100); w.hold('b', 300);
 * w.expire(200) is ['a']; w.release() is ['b'].
 */
export class LeaderWait<T> {
  private held: { item: T; deadlineMs: number }[] = [];

  constructor(private readonly max = Number.POSITIVE_INFINITY) {}

  /** size is the number of requests held. */
  get size(): number {
    return this.held.length;
  }

  /** hold keeps item until deadlineMs; false when `max` are held already. */
  hold(item: T, deadlineMs: number): boolean {
    if (this.held.length >= this.max) return false;
    this.held.push({ item, deadlineMs });
    return true;
  }

  /** release removes and returns every held request, in the order they came (a leader is
   * known, or a fault or a stop fails them all). */
  release(): T[] {
    const out = this.held.map((h) => h.item);
    this.held = [];
    return out;
  }

  /** expire removes and returns the requests whose deadline is at or before nowMs. */
  expire(nowMs: number): T[] {
    if (this.held.length === 0) return [];
    const out: T[] = [];
    const still = [];
    for (const h of this.held) {
      if (h.deadlineMs <= nowMs) out.push(h.item);
      else still.push(h);
    }
    this.held = still;
    return out;
  }
}
