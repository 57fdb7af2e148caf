import { b64, post } from './server.js';
import { now } from './wait.js';

/**
 * Lease timing, bounded by what the test measured, so that a lease test neither fails on a
 * slow machine nor stops checking on a fast one.
 *
 * The server times a lease on its own monotonic clock from the moment it applies a grant,
 * serves a keep-alive or promotes itself after a restart. The test cannot see those moments,
 * only that each lies between sending its request (or spawning the server) and receiving the
 * answer. Hence two facts, in the test's clock (`now()` of ./wait.ts):
 * - a lease granted or renewed with TTL G by a request sent at s cannot expire before s + G;
 * - a request answered at a was served no later than a.
 * Everything below follows from them. Example, TTL 2 s: grant sent at 0, keep-alives sent at
 * 600 and 1,250 (answered with the TTL): the lease is certainly alive for a read answered
 * before 3,250; a time-to-live answered at 1,900 may report 1 or 2 (never 0); a read answered
 * at 3,400 may find it alive, expiring (TTL 0) or gone — the test can insist on nothing then.
 */
export class LeaseTimeline {
  private lastSentMs: number;
  private sure = true;

  /** ttlSeconds is the lease's granted TTL; grantSentAtMs when the grant was sent. */
  constructor(readonly ttlSeconds: number, grantSentAtMs: number) {
    this.lastSentMs = grantSentAtMs;
  }

  /** ttlMs is the TTL in milliseconds. */
  get ttlMs(): number {
    return this.ttlSeconds * 1000;
  }

  /** expiresNotBeforeMs is the earliest moment the lease can expire. */
  get expiresNotBeforeMs(): number {
    return this.lastSentMs + this.ttlMs;
  }

  /**
   * aliveAt: the lease was certainly alive when a request answered at answeredAtMs was
   * served (so a keep-alive then renews it, and its keys are still there).
   */
  aliveAt(answeredAtMs: number): boolean {
    return this.sure && answeredAtMs < this.expiresNotBeforeMs;
  }

  /**
   * renewed records a keep-alive the server answered with the lease's TTL (it renewed it):
   * sentAtMs is when it was sent, or any earlier moment known to precede the renewal (the
   * previous answer, for a client that sends only after it).
   */
  renewed(sentAtMs: number): void {
    this.lastSentMs = sentAtMs;
    this.sure = true;
  }

  /**
   * restarted records a restart of the member: the server was seen down at stoppedAtMs and
   * spawned again at startedAtMs. A lease alive when its member went down is restored with its
   * full TTL from the new start; if it may have expired before, nothing is certain any more.
   */
  restarted(stoppedAtMs: number, startedAtMs: number): void {
    this.sure = this.aliveAt(stoppedAtMs);
    this.lastSentMs = startedAtMs;
  }

  /** ttlBounds is the range a time-to-live answered at answeredAtMs may report (whole
   * seconds, truncated as etcd does); lo ≤ 0 means it may be expiring or gone. */
  ttlBounds(answeredAtMs: number): { lo: number; hi: number } {
    return ttlBounds(this.ttlSeconds, this.lastSentMs, answeredAtMs);
  }
}

/** ttlBounds: the remaining TTL a time-to-live answered at answeredAtMs may report for a lease
 * granted (or last renewed) with grantedSeconds by a request sent at sentAtMs. */
export function ttlBounds(grantedSeconds: number, sentAtMs: number, answeredAtMs: number):
  { lo: number; hi: number } {
  return { lo: Math.floor(grantedSeconds - (answeredAtMs - sentAtMs) / 1000), hi: grantedSeconds };
}

/** Granted is a lease granted over /v3: its id (etcd's string form), the TTL the server
 * granted (raised to the minimum if need be) and its timeline. */
export interface Granted {
  id: string;
  ttl: number;
  timeline: LeaseTimeline;
}

/** grant asks for a lease over /v3 (`id` to choose it); a refusal throws. */
export async function grant(url: string, ttlSeconds: number, id?: number | string):
  Promise<Granted> {
  const sent = now();
  const r = await post(`${url}/v3/lease/grant`,
    id === undefined ? { TTL: ttlSeconds } : { TTL: ttlSeconds, ID: id });
  if (r.status !== 200) throw new Error(`grant: ${r.status} ${JSON.stringify(r.json)}`);
  const ttl = Number(r.json.TTL);
  return { id: r.json.ID as string, ttl, timeline: new LeaseTimeline(ttl, sent) };
}

/** keepAliveOnce sends one keep-alive (a one-line /v3/lease/keepalive body) and returns the
 * TTL answered, 0 when the lease was not renewed; a renewal goes on the timeline. */
export async function keepAliveOnce(url: string, lease: Granted): Promise<number> {
  const sent = now();
  const r = await fetch(`${url}/v3/lease/keepalive`, {
    method: 'POST', body: JSON.stringify({ ID: lease.id }),
  });
  const line = JSON.parse(await r.text()) as { result?: { TTL?: string } };
  const ttl = Number(line.result?.TTL ?? 0);
  if (ttl > 0) lease.timeline.renewed(sent);
  return ttl;
}

/** grantAttemptsMax bounds grantWithKeys's fresh starts. */
const grantAttemptsMax = 5;

/**
 * grantWithKeys grants a lease and puts `keys` on it in one txn (value = key). A machine that
 * stalls for a whole TTL between the two can let the lease expire first; only then — the txn
 * refused with lease-not-found when the timeline says it may have expired — does it start
 * over with a new lease. A refusal while the lease was certainly alive throws: that is a bug.
 */
export async function grantWithKeys(url: string, ttlSeconds: number, keys: string[]):
  Promise<Granted & { revision: number }> {
  for (let attempt = 1; ; attempt++) {
    const lease = await grant(url, ttlSeconds);
    const r = await post(`${url}/v3/kv/txn`, {
      success: keys.map((k) => ({ request_put: { key: b64(k), value: b64(k), lease: lease.id } })),
    });
    const answered = now();
    if (r.status === 200) return { ...lease, revision: Number(r.json.header.revision) };
    const expired = r.status === 404 && r.json?.code === 5 && !lease.timeline.aliveAt(answered);
    if (!expired || attempt === grantAttemptsMax) {
      throw new Error(`put on lease ${lease.id}: ${r.status} ${JSON.stringify(r.json)}`);
    }
  }
}

/** Answer is one HTTP answer of a replayed session: status and body text. */
export interface Answer {
  status: number;
  text: string;
}

/** notFound is etcd's answer to a request on a lease that does not exist (recorded:
 * err-lease-revoke-missing). */
const notFound: Answer = {
  status: 404,
  text: '{"error":"etcdserver: requested lease not found",' +
    '"message":"etcdserver: requested lease not found","code":5}',
};

/**
 * RecordedLeases lets a replay of a recorded etcd session compare the answers that depend on
 * time — a lease's remaining TTL, whether a short lease is still there — with only the slack
 * the replay's own clock allows. It remembers when each grant of the replay was sent; then:
 * - a time-to-live whose TTL lies within ttlBounds is compared without its TTL (one outside
 *   them, or missing while the lease had a second or more left, stays a mismatch);
 * - a lease whose whole TTL may have run out during the replay may be gone: its time-to-live
 *   is compared with etcd's answer for an expired lease (TTL -1), a revoke of it with etcd's
 *   lease-not-found, and the lease lists without it.
 * A fast run therefore compares exactly what was recorded, and a slow one all it can.
 */
export class RecordedLeases {
  private readonly grants = new Map<string, { ttl: number; sentAtMs: number }>();

  /** observe sees every replayed request: remembers the grants that succeeded. */
  observe(path: string, sentAtMs: number, ours: Answer): void {
    if (!path.endsWith('/lease/grant') || ours.status !== 200) return;
    const j = JSON.parse(ours.text) as { ID: string; TTL: string };
    this.grants.set(j.ID, { ttl: Number(j.TTL), sentAtMs });
  }

  /** normalise returns our answer and the recorded one, made comparable as above. */
  normalise(path: string, requestBody: string | undefined, ours: Answer, theirs: Answer,
    answeredAtMs: number): { ours: Answer; theirs: Answer } {
    const mayBeGone = (g: { ttl: number; sentAtMs: number } | undefined) =>
      g !== undefined && answeredAtMs - g.sentAtMs >= g.ttl * 1000;
    const same = { ours, theirs };
    if (path.endsWith('/lease/leases')) {
      let [o, t] = [ours.text, theirs.text];
      for (const [id, g] of this.grants) {
        if (!mayBeGone(g)) continue;
        const entry = new RegExp(`\\{"ID":"${id}"\\},?|,?\\{"ID":"${id}"\\}`);
        o = o.replace(entry, '');
        t = t.replace(entry, '');
      }
      return { ours: { ...ours, text: o }, theirs: { ...theirs, text: t } };
    }
    if (path.endsWith('/lease/revoke')) {
      const id = idOf(requestBody);
      const gone = ours.status === notFound.status && ours.text === notFound.text;
      return gone && mayBeGone(this.grants.get(id)) ? { ours, theirs: notFound } : same;
    }
    if (!path.endsWith('/lease/timetolive')) return same;
    let answer: { ID?: string; TTL?: string };
    try {
      answer = JSON.parse(ours.text) as typeof answer;
    } catch {
      return same;
    }
    const g = answer.ID === undefined ? undefined : this.grants.get(answer.ID);
    if (g === undefined) return same;
    const ttl = Number(answer.TTL ?? 0);
    if (ttl === -1 && mayBeGone(g)) {
      const expired = theirs.text.replace(
        /"TTL":"\d+","grantedTTL":"\d+"(,"keys":\[[^\]]*\])?/, '"TTL":"-1"');
      return { ours, theirs: { ...theirs, text: expired } };
    }
    const { lo, hi } = ttlBounds(g.ttl, g.sentAtMs, answeredAtMs);
    if (ttl < Math.max(lo, 0) || ttl > hi) return same;
    const noTtl = (a: Answer) => ({ ...a, text: a.text.replace(/"TTL":"\d+",/, '') });
    return { ours: noTtl(ours), theirs: noTtl(theirs) };
  }
}

/** idOf reads the lease ID of a request body (a JSON number or string); '' if none. */
function idOf(requestBody: string | undefined): string {
  try {
    const id = (JSON.parse(requestBody ?? '{}') as { ID?: unknown }).ID;
    return id === undefined ? '' : String(id);
  } catch {
    return '';
  }
}
