import { setTimeout as sleep } from 'node:timers/promises';
// call: ./auth.js's (server.ts's post imports ava, and a bench uses this module).
import { b64, call as post } from './auth.js';
import { LineStream } from './streams.js';
import { now } from './wait.js';

/**
 * Key lifetime past a lease's TTL, measured from outside the server (the integration test
 * and `npm run bench:lease-expiry` share it).
 *
 * Each lease gets one key. In burst mode every lease is renewed by one keep-alive round once
 * all are granted, so the keys are alike: a count_only range polled every pollMs says how many
 * are gone. The k-th key to go is measured from the round's start (the server renewed the
 * leases later) to the answer of the first poll that counted k gone (it was gone by then):
 * `pastTtlMs` = that − TTL, an upper bound of how long keys outlived their leases on the
 * server's own clock. `pastTtlSureMs` is a lower bound: from the round's last answer to the
 * SENDING of the last poll that still counted the key. A watcher on the prefix must see every
 * DELETE too; `watchPastTtlMs` is measured to the event's arrival. Without burst, each lease
 * expires TTL after its own grant and only the watcher's figures are measured.
 */

/** ExpiryOptions: how many leases, their TTL, and how many grants go out at once. */
export interface ExpiryOptions {
  leases: number;
  ttlSeconds: number;
  /** concurrency: grant + put pairs in flight (default 32). */
  concurrency?: number;
  /** prefix of the keys (one key per lease: prefix + index). */
  prefix?: string;
  /** burst: once every lease is granted (kept alive meanwhile), renew them all at once, so
   * that they all expire together — the worst case for the server (default: false, each
   * lease expires TTL after its own grant). */
  burst?: boolean;
  /** timeoutMs bounds the wait for the last deletion after the last grant (default: TTL +
   * 60 s — generous: only a key that never goes reaches it). */
  timeoutMs?: number;
}

/** ExpiryResult: per key, how long it outlived its lease's TTL (ms; in burst mode in the
 * order the keys went, else in lease order); grantMs is how long granting all of them took. */
export interface ExpiryResult {
  pastTtlMs: number[];
  /** pastTtlMinMs: the same from the grant's (burst: the keep-alive's) ANSWER: without the
   * request's travel and queueing (the key may still have outlived its lease by more). */
  pastTtlMinMs: number[];
  /** pastTtlSureMs: how long each key CERTAINLY outlived its lease (burst only; else NaN):
   * from the renewal round's last answer to the sending of the last poll that still counted
   * it. A test asserts on this one: the machine's slowness can only make it smaller. */
  pastTtlSureMs: number[];
  /** watchPastTtlMs: as pastTtlMs, to the moment a watcher received the key's DELETE event
   * (adds the watch's delivery of thousands of revisions). */
  watchPastTtlMs: number[];
  grantMs: number;
  /** keysLeft: keys still present at the end (0 when every key went). */
  keysLeft: number;
}

/** measureExpiry grants `leases` leases with one key each and waits for every key's DELETE
 * event; throws if a key is not deleted within timeoutMs. */
export async function measureExpiry(url: string, o: ExpiryOptions): Promise<ExpiryResult> {
  const prefix = o.prefix ?? 'lease-expiry/';
  const end = prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
  const watch = new LineStream(url, '/v3/watch');
  try {
    await watch.create({ key: b64(prefix), range_end: b64(end) });
    watch.end();
    const sentAt = new Array<number>(o.leases).fill(NaN);
    const deletedAt = new Array<number>(o.leases).fill(NaN);
    const answeredAt = new Array<number>(o.leases).fill(NaN);
    let deleted = 0;
    let granting = true;
    let deadline = Infinity;
    const reader = (async () => {
      while (deleted < o.leases) {
        const left = granting ? 600_000 : deadline - now();
        const line = await watch.next(Math.max(1, left));
        const at = now();
        for (const ev of line.result?.events ?? []) {
          if (ev.type !== 'DELETE') continue;
          const i = Number(unb64(ev.kv.key).slice(prefix.length));
          if (Number.isNaN(deletedAt[i]!)) {
            deletedAt[i] = at;
            deleted++;
          }
        }
      }
    })();
    reader.catch(() => undefined); // awaited below; a failed grant ends it first
    const t0 = now();
    let next = 0;
    const worker = async (ids: string[]) => {
      while (next < o.leases) {
        const i = next++;
        for (let attempt = 1; ; attempt++) {
          sentAt[i] = now();
          const g = await post(`${url}/v3/lease/grant`, { TTL: o.ttlSeconds });
          if (g.status !== 200) throw new Error(`grant: ${g.status} ${JSON.stringify(g.json)}`);
          answeredAt[i] = now();
          const p = await post(`${url}/v3/kv/put`,
            { key: b64(prefix + i), value: b64('v'), lease: g.json.ID });
          // A machine stalled for a whole TTL between grant and put: a fresh lease.
          const expired = p.status === 404 && now() - sentAt[i]! >= o.ttlSeconds * 1000;
          if (p.status === 200) {
            ids[i] = g.json.ID as string;
            break;
          }
          if (!expired || attempt === 5) {
            throw new Error(`put: ${p.status} ${JSON.stringify(p.json)}`);
          }
        }
      }
    };
    const ids: string[] = [];
    let refresh: Promise<void> = Promise.resolve();
    let timer: NodeJS.Timeout | undefined;
    if (o.burst === true) {
      // Keep the leases granted so far alive while the others are granted.
      timer = setInterval(() => {
        refresh = refresh.then(() => keepAliveRound(url, ids.slice())).then(() => undefined);
      }, o.ttlSeconds * 1000 / 3);
    }
    try {
      await Promise.all(Array.from({ length: o.concurrency ?? 32 }, () => worker(ids)));
    } finally {
      clearInterval(timer);
      await refresh;
    }
    const grantMs = now() - t0;
    if (o.burst === true) {
      const at = now();
      const renewed = await keepAliveRound(url, ids, answeredAt);
      if (renewed !== ids.length) {
        throw new Error(`${ids.length - renewed} of ${ids.length} leases expired before the ` +
          'renewal that makes them expire together: the keep-alive rounds kept up with fewer ' +
          'on this machine (try fewer leases, or a lower --concurrency)');
      }
      sentAt.fill(at);
    }
    granting = false;
    deadline = now() + (o.timeoutMs ?? o.ttlSeconds * 1000 + 60_000);
    const ttlMs = o.ttlSeconds * 1000;
    const roundEnd = answeredAt.reduce((x, y) => Math.max(x, y), -Infinity);
    // Burst: the keys are alike (renewed by one round, between sentAt and roundEnd), so counts
    // tell how many are gone: polled with count_only, cheap even for 10,000 keys. A poll
    // answered at a with count c: N − c keys were gone by a; one SENT at s with count c: c
    // keys were still there at s.
    const goneBy = new Array<number>(o.leases).fill(NaN);
    const seenAt = new Array<number>(o.leases).fill(NaN);
    for (let gone = 0; o.burst === true && gone < o.leases;) {
      if (now() > deadline) throw new Error(`${o.leases - gone} of ${o.leases} keys still there`);
      const sent = now();
      const r = await post(`${url}/v3/kv/range`,
        { key: b64(prefix), range_end: b64(end), count_only: true });
      const at = now();
      if (r.status !== 200) throw new Error(`range: ${r.status} ${JSON.stringify(r.json)}`);
      const count = Number(r.json.count ?? 0);
      // The k-th key to go (k = 0 …) was there at `sent` while count > k's rank from the end.
      for (let k = o.leases - count; k < o.leases; k++) seenAt[k] = sent;
      for (; gone < o.leases - count; gone++) goneBy[gone] = at;
      await sleep(pollMs);
    }
    try {
      await reader;
    } catch (e) {
      throw new Error(`${o.leases - deleted} of ${o.leases} keys not deleted: ${String(e)}`);
    }
    const r = await post(`${url}/v3/kv/range`,
      { key: b64(prefix), range_end: b64(end), count_only: true });
    if (o.burst !== true) {
      return {
        pastTtlMs: sentAt.map((s, i) => deletedAt[i]! - s - ttlMs),
        pastTtlMinMs: answeredAt.map((a, i) => deletedAt[i]! - a - ttlMs),
        pastTtlSureMs: sentAt.map(() => NaN),
        watchPastTtlMs: sentAt.map((s, i) => deletedAt[i]! - s - ttlMs),
        grantMs,
        keysLeft: Number(r.json.count ?? 0),
      };
    }
    const start = sentAt[0]!;
    return {
      pastTtlMs: goneBy.map((g) => g - start - ttlMs),
      pastTtlMinMs: goneBy.map((g) => g - roundEnd - ttlMs),
      pastTtlSureMs: seenAt.map((x) => x - roundEnd - ttlMs),
      watchPastTtlMs: sentAt.map((s, i) => deletedAt[i]! - s - ttlMs),
      grantMs,
      keysLeft: Number(r.json.count ?? 0),
    };
  } finally {
    watch.close();
  }
}

/** pollMs: the pause between two ranges that count the keys still there. */
const pollMs = 20;

/** keepAliveRound renews every lease, keepAliveStreamIds per keep-alive stream (all streams
 * at once: a stream's body must end within the server's streamBodyOpenMsMax), and returns how
 * many were renewed (answered with a TTL); answeredAt[i] gets the time of lease i's answer. */
async function keepAliveRound(url: string, ids: readonly string[], answeredAt?: number[]):
  Promise<number> {
  const parts: Promise<number>[] = [];
  for (let from = 0; from < ids.length; from += keepAliveStreamIds) {
    parts.push(keepAliveStream(url, ids, from, Math.min(ids.length, from + keepAliveStreamIds),
      answeredAt));
  }
  return (await Promise.all(parts)).reduce((a, b) => a + b, 0);
}

/** keepAliveStreamIds: leases renewed by one keep-alive stream. */
const keepAliveStreamIds = 500;

async function keepAliveStream(url: string, ids: readonly string[], from: number, to: number,
  answeredAt?: number[]): Promise<number> {
  const s = new LineStream(url, '/v3/lease/keepalive');
  try {
    let n = 0;
    const todo: number[] = [];
    for (let i = from; i < to; i++) if (ids[i] !== undefined) todo.push(i);
    for (const i of todo) s.send({ ID: ids[i] });
    s.end();
    for (const i of todo) {
      if (Number((await s.result()).TTL ?? 0) > 0) n++;
      if (answeredAt !== undefined) answeredAt[i] = now();
    }
    return n;
  } finally {
    s.close();
  }
}

const unb64 = (s: string): string => Buffer.from(s, 'base64').toString('utf8');

/** quantile of sorted values (nearest rank). */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}
