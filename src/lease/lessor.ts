import {
  leaseRevokeRetryMs, leaseRevokesPerCheckMax, leaseTtlSecondsMax, leaseTtlSecondsMin,
} from '../constants.js';
import type { Bytes } from '../types.js';
import { assert } from '../assert.js';
import { ErrLeaseExists, ErrLeaseTTLTooLarge, ErrNotLeader } from '../errors.js';

/**
 * Lessor is the lease service's pure core (etcd's lease/lessor.go), keeping what the
 * leader needs to time leases. Time is the caller's monotonic clock in ms (`nowMs`); ids
 * come from an injected seeded generator.
 *
 * Which leases exist and which keys are attached is replicated state: it changes only when
 * the Raft node applies a grant, a revoke or a put (grant / revoke / attach / detach here
 * mirror the applier). Expiry timing is not replicated: only the leader's lessor is
 * "primary" and has finite deadlines; followers keep every lease at +∞. On promotion a lease
 * gets its full TTL again (etcd 3.4's Promote: a new leader cannot know how long the old one
 * had left, so it errs on the side of keeping keys) — unless the old leader checkpointed its
 * remaining TTL through the log (etcd 3.6's lease checkpoints: `checkpoints(nowMs)` on the
 * primary, `checkpoint(id, s)` everywhere once applied); then it gets what was left at the
 * checkpoint, so repeated leader changes cannot keep a lease alive forever. A keep-alive
 * clears the checkpoint (renew reports that the clearing must be replicated).
 *
 * `expired(nowMs)` returns leases past their deadline, at most leaseRevokesPerCheckMax per call
 * (etcd revokes at most leaseRevokeRate per second), and pushes each returned lease's
 * deadline out by leaseRevokeRetryMs so that a revocation lost on its way through Raft is
 * proposed again, not every tick.
 *
 * Example: grant(7, 10 s) at t=0 as primary → deadline 10,000; renew at 4,000 → deadline
 * 14,000; expired(14,000) → [7]; expired(14,500) → [] (retry at 17,000); renew(7) → 0 (it
 * is being revoked); revoke(7).
 */
export class Lessor {
  private readonly leases = new Map<number, Lease>();
  /** heap of [deadlineMs, id], lazily cleaned: an entry is live only if it matches. */
  private heap: HeapEntry[] = [];
  private primary = false;
  private readonly rng: () => number;
  private readonly perCall: number;
  private readonly retryMs: number;
  private readonly minTtl: number;

  constructor(opts: LessorOptions) {
    this.rng = opts.rng;
    this.perCall = opts.expiredPerCall ?? leaseRevokesPerCheckMax;
    this.retryMs = opts.retryMs ?? leaseRevokeRetryMs;
    this.minTtl = opts.minTtlSeconds ?? leaseTtlSecondsMin;
  }

  /** isPrimary: this lessor times leases (the node leads). */
  get isPrimary(): boolean {
    return this.primary;
  }

  /** size is the number of leases. */
  get size(): number {
    return this.leases.size;
  }

  /**
   * prepareGrant validates a grant request before it is proposed: raises a TTL below the
   * minimum (etcd does, recorded: lease-grant-min-ttl), refuses one above leaseTtlSecondsMax
   * (ErrLeaseTTLTooLarge), refuses a taken id (ErrLeaseExists), and chooses an id for id 0.
   */
  prepareGrant(id: number, ttlSeconds: number): { id: number; ttlSeconds: number } {
    if (ttlSeconds > leaseTtlSecondsMax) throw new ErrLeaseTTLTooLarge();
    const ttl = Math.max(ttlSeconds, this.minTtl);
    if (id === 0) id = this.newId();
    else if (this.leases.has(id)) throw new ErrLeaseExists();
    return { id, ttlSeconds: ttl };
  }

  /** grant records an applied grant (id and TTL already validated by prepareGrant). */
  grant(id: number, ttlSeconds: number, nowMs: number): void {
    assert(id !== 0 && Number.isSafeInteger(id), 'lease id is a safe non-zero integer', id);
    if (this.leases.has(id)) return; // replayed
    const l: Lease = {
      id, ttlSeconds, deadlineMs: Infinity, expiring: false, keys: new Set(), remainingSeconds: 0,
    };
    this.leases.set(id, l);
    if (this.primary) this.setDeadline(l, nowMs + ttlSeconds * 1000);
  }

  /** revoke forgets an applied revoke; false when unknown. */
  revoke(id: number): boolean {
    return this.leases.delete(id);
  }

  /** has reports whether a lease exists. */
  has(id: number): boolean {
    return this.leases.has(id);
  }

  /**
   * renew is one keep-alive: the lease's deadline becomes now + TTL and the TTL is returned;
   * 0 when the lease does not exist (etcd answers a keep-alive for a missing lease with TTL
   * 0, recorded: lease-keepalive-missing). Only the primary renews (else ErrNotLeader).
   */
  renew(id: number, nowMs: number): number {
    if (!this.primary) throw new ErrNotLeader();
    const l = this.leases.get(id);
    // An expired lease whose revocation is on its way through Raft is as good as gone: etcd
    // waits for the revocation and answers not-found. Renewing it here would answer a TTL
    // for a lease whose keys are about to be deleted anyway.
    if (l === undefined || l.expiring) return 0;
    this.setDeadline(l, nowMs + l.ttlSeconds * 1000);
    return l.ttlSeconds;
  }

  /** timeToLive: remaining seconds (truncated, as etcd; the full TTL when not primary),
   * granted TTL and attached keys; undefined when the lease does not exist. */
  timeToLive(id: number, nowMs: number):
    { ttlSeconds: number; grantedTtlSeconds: number; keys: Bytes[] } | undefined {
    const l = this.leases.get(id);
    if (l === undefined) return undefined;
    const remaining = l.deadlineMs === Infinity ? l.ttlSeconds
      : l.expiring ? 0 : Math.max(0, Math.floor((l.deadlineMs - nowMs) / 1000));
    return { ttlSeconds: remaining, grantedTtlSeconds: l.ttlSeconds, keys: [...l.keys].sort() };
  }

  /** list returns every lease id, soonest expiry first (etcd's leasesByExpiry order). */
  list(): number[] {
    return [...this.leases.entries()]
      .sort(([ia, a], [ib, b]) => a.deadlineMs - b.deadlineMs || a.ttlSeconds - b.ttlSeconds ||
        ia - ib)
      .map(([id]) => id);
  }

  /** attach / detach mirror the applier: key now carries (no longer carries) lease id. */
  attach(id: number, key: Bytes): void {
    this.leases.get(id)?.keys.add(key);
  }
  detach(id: number, key: Bytes): void {
    this.leases.get(id)?.keys.delete(key);
  }

  /** expired returns up to leaseRevokesPerCheckMax leases whose deadline ≤ nowMs (primary only)
   * and defers each by leaseRevokeRetryMs until its revocation is applied. */
  expired(nowMs: number): number[] {
    if (!this.primary) return [];
    const out: number[] = [];
    while (out.length < this.perCall && this.heap.length > 0 && this.heap[0]![0] <= nowMs) {
      const [deadline, id] = heapPop(this.heap);
      const l = this.leases.get(id);
      if (l === undefined || l.deadlineMs !== deadline) continue; // stale entry
      out.push(id);
      l.expiring = true;
      this.setDeadline(l, nowMs + this.retryMs);
    }
    return out;
  }

  /** promote makes this lessor primary: every lease gets its checkpointed remaining TTL, or
   * its full TTL when none was checkpointed, from nowMs. */
  promote(nowMs: number): void {
    this.primary = true;
    this.heap = [];
    for (const l of this.leases.values()) {
      l.expiring = false;
      const s = l.remainingSeconds > 0 ? l.remainingSeconds : l.ttlSeconds;
      this.setDeadline(l, nowMs + s * 1000);
    }
  }

  /** checkpoint records an applied checkpoint: the lease's remaining TTL in seconds as the
   * leader counted it (0 clears it: the full TTL applies again). */
  checkpoint(id: number, remainingSeconds: number): void {
    const l = this.leases.get(id);
    if (l !== undefined) l.remainingSeconds = remainingSeconds;
  }

  /** hasCheckpoint reports whether a lease has a remaining TTL checkpointed. */
  hasCheckpoint(id: number): boolean {
    return (this.leases.get(id)?.remainingSeconds ?? 0) > 0;
  }

  /**
   * checkpoints lists, on the primary, up to `max` leases with their remaining TTL in whole
   * seconds (rounded up, at least 1), leases that expire soonest first — what to propose so
   * that the next leader does not start them over. Leases being revoked are left out.
   */
  checkpoints(nowMs: number, max: number): { id: number; remainingSeconds: number }[] {
    if (!this.primary) return [];
    const out: { id: number; remainingSeconds: number }[] = [];
    for (const id of this.list()) {
      if (out.length >= max) break;
      const l = this.leases.get(id)!;
      if (l.expiring || l.deadlineMs === Infinity) continue;
      const remainingSeconds = Math.max(1, Math.ceil((l.deadlineMs - nowMs) / 1000));
      if (remainingSeconds >= l.ttlSeconds && l.remainingSeconds === 0) continue;
      out.push({ id, remainingSeconds });
    }
    return out;
  }

  /** demote stops timing: every deadline becomes +∞ (a follower never expires leases). */
  demote(): void {
    this.primary = false;
    this.heap = [];
    for (const l of this.leases.values()) {
      l.deadlineMs = Infinity;
      l.expiring = false;
    }
  }

  /** nextDeadlineMs is the earliest deadline (Infinity when none): the shell's timer hint. */
  nextDeadlineMs(): number {
    while (this.heap.length > 0) {
      const [d, id] = this.heap[0]!;
      if (this.leases.get(id)?.deadlineMs === d) return d;
      heapPop(this.heap);
    }
    return Infinity;
  }

  private setDeadline(l: Lease, deadlineMs: number): void {
    l.deadlineMs = deadlineMs;
    heapPush(this.heap, [deadlineMs, l.id]);
    // Renewals leave stale entries behind; rebuild before they outnumber the leases 2:1.
    if (this.heap.length > 2 * this.leases.size + 1024) {
      this.heap = [];
      for (const x of this.leases.values()) {
        if (x.deadlineMs !== Infinity) heapPush(this.heap, [x.deadlineMs, x.id]);
      }
    }
  }

  private newId(): number {
    for (;;) {
      // A positive id below 2^49 (etcd's ids are positive int64; ours must stay safe). At most
      // 15 digits: JSON readers take 16+ digit numbers down a slower exact path, and a client
      // that echoes the id back as a JSON number stays on the fast one.
      const id = Math.floor(this.rng() * 2 ** 17) * 2 ** 32 + Math.floor(this.rng() * 2 ** 32);
      if (id !== 0 && !this.leases.has(id)) return id;
    }
  }
}

/** LessorOptions: the id generator and overridable limits. */
export interface LessorOptions {
  /** rng: a seeded generator of floats in [0, 1) (e.g. src/raft's seededRng). */
  rng: () => number;
  expiredPerCall?: number;
  retryMs?: number;
  minTtlSeconds?: number;
}

/** Lease: one lease's timing and keys. */
interface Lease {
  id: number;
  ttlSeconds: number;
  /** deadlineMs: Infinity unless primary. */
  deadlineMs: number;
  /** remainingSeconds: the last applied checkpoint (0: none; the full TTL applies). */
  remainingSeconds: number;
  /** expiring: expired() returned it; its revocation is being proposed (renew refuses). */
  expiring: boolean;
  keys: Set<Bytes>;
}

type HeapEntry = [number, number];

function heapPush(h: HeapEntry[], e: HeapEntry): void {
  h.push(e);
  let i = h.length - 1;
  while (i > 0) {
    const p = (i - 1) >> 1;
    if (h[p]![0] <= e[0]) break;
    h[i] = h[p]!;
    i = p;
  }
  h[i] = e;
}

function heapPop(h: HeapEntry[]): HeapEntry {
  const top = h[0]!;
  const last = h.pop()!;
  if (h.length > 0) {
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= h.length) break;
      const c = l + 1 < h.length && h[l + 1]![0] < h[l]![0] ? l + 1 : l;
      if (h[c]![0] >= last[0]) break;
      h[i] = h[c]!;
      i = c;
    }
    h[i] = last;
  }
  return top;
}
