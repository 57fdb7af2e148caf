import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { LineStream } from './streams.js';
import { now } from './wait.js';

/**
 * Key lifetime past a lease's TTL, measured from outside the server (the integration test
 * and `npm run bench:lease-expiry` share it).
 *
 * Each lease gets one key. The measure of a key starts when its lease's grant (in burst mode:
 * the keep-alive that renewed all of them at once) was SENT — the server's clock for the
 * lease starts later, between sending and the answer — and ends at the answer of the first
 * range (polled every pollMs) that no longer lists the key: it was gone by then. `pastTtlMs`
 * = that interval − TTL is thus an upper bound of how long the key outlived its lease on the
 * server's own clock; never less than the truth. A watcher on the prefix must see every
 * DELETE too; `watchPastTtlMs` is the same to the event's arrival.
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

/** ExpiryResult: per lease, how long its key outlived the TTL (ms, upper bound), in index
 * order; grantMs is how long granting all of them took. */
export interface ExpiryResult {
  pastTtlMs: number[];
  /** pastTtlMinMs: the same from the grant's (burst: the keep-alive's) ANSWER: without the
   * request's travel and queueing (the key may still have outlived its lease by more). */
  pastTtlMinMs: number[];
  /** pastTtlSureMs: how long each key CERTAINLY outlived its lease: from the renewal's answer
   * (the lease was renewed by then) to the sending of the last range that still listed it
   * (it was there after that); NaN when no range listed it. A test asserts on this one: the
   * machine's slowness can only make it smaller. */
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
        sentAt[i] = now();
        const g = await post(`${url}/v3/lease/grant`, { TTL: o.ttlSeconds });
        if (g.status !== 200) throw new Error(`grant: ${g.status} ${JSON.stringify(g.json)}`);
        answeredAt[i] = now();
        ids[i] = g.json.ID as string;
        const p = await post(`${url}/v3/kv/put`,
          { key: b64(prefix + i), value: b64('v'), lease: g.json.ID });
        if (p.status !== 200) throw new Error(`put: ${p.status} ${JSON.stringify(p.json)}`);
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
      if (renewed !== ids.length) throw new Error(`${ids.length - renewed} leases not renewed`);
      sentAt.fill(at);
    }
    granting = false;
    deadline = now() + (o.timeoutMs ?? o.ttlSeconds * 1000 + 60_000);
    // The store, polled: a key absent from a range answered at a was gone by a.
    const goneAt = new Array<number>(o.leases).fill(NaN);
    const seenAt = new Array<number>(o.leases).fill(NaN);
    for (let left = o.leases; left > 0;) {
      if (now() > deadline) throw new Error(`${left} of ${o.leases} keys still there`);
      const sent = now();
      const r = await post(`${url}/v3/kv/range`,
        { key: b64(prefix), range_end: b64(end), keys_only: true });
      const at = now();
      if (r.status !== 200) throw new Error(`range: ${r.status} ${JSON.stringify(r.json)}`);
      const present = new Set<number>();
      for (const kv of r.json.kvs ?? []) {
        const i = Number(unb64(kv.key).slice(prefix.length));
        present.add(i);
        seenAt[i] = sent;
      }
      for (let i = 0; i < o.leases; i++) {
        if (Number.isNaN(goneAt[i]!) && !present.has(i)) {
          goneAt[i] = at;
          left--;
        }
      }
      await sleep(pollMs);
    }
    try {
      await reader;
    } catch (e) {
      throw new Error(`${o.leases - deleted} of ${o.leases} keys not deleted: ${String(e)}`);
    }
    const r = await post(`${url}/v3/kv/range`,
      { key: b64(prefix), range_end: b64(end), count_only: true });
    return {
      pastTtlMs: sentAt.map((s, i) => goneAt[i]! - s - o.ttlSeconds * 1000),
      pastTtlMinMs: answeredAt.map((a, i) => goneAt[i]! - a - o.ttlSeconds * 1000),
      pastTtlSureMs: answeredAt.map((a, i) => seenAt[i]! - a - o.ttlSeconds * 1000),
      watchPastTtlMs: sentAt.map((s, i) => deletedAt[i]! - s - o.ttlSeconds * 1000),
      grantMs,
      keysLeft: Number(r.json.count ?? 0),
    };
  } finally {
    watch.close();
  }
}

/** pollMs: the pause between two ranges that look for the keys still there. */
const pollMs = 20;

/** keepAliveRound renews every lease in one keep-alive stream and returns how many were
 * renewed (answered with a TTL). */
async function keepAliveRound(url: string, ids: readonly string[], answeredAt?: number[]):
  Promise<number> {
  const s = new LineStream(url, '/v3/lease/keepalive');
  try {
    let n = 0;
    const todo = ids.filter((id) => id !== undefined);
    for (const id of todo) s.send({ ID: id });
    s.end();
    for (let i = 0; i < todo.length; i++) {
      if (Number((await s.result()).TTL ?? 0) > 0) n++;
      if (answeredAt !== undefined) answeredAt[i] = now();
    }
    return n;
  } finally {
    s.close();
  }
}

/** post: ./server.ts's, which cannot be imported outside ava (a bench uses this module). */
function post(url: string, body: unknown): Promise<{ status: number; json: any }> {
  const data = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(url, {
      method: 'POST', agent: false,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        text += d;
      });
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end(data);
  });
}

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
const unb64 = (s: string): string => Buffer.from(s, 'base64').toString('utf8');

/** quantile of sorted values (nearest rank). */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}
