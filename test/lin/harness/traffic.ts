import type { Operation } from '../checker.js';
import type { KvCompare, KvInput, KvOutput, KvRead, KvSub, KvSubOut } from '../kv-model.js';
import { type Cluster, type Member, sleep } from './cluster.js';

/** liveMembers returns the members serving now; when none is, it waits 20 ms first and
 * returns none (each client loop then checks its `stop()` and asks again). */
async function liveMembers(c: Cluster): Promise<Member[]> {
  const live = c.live();
  if (live.length === 0) await sleep(20);
  return live;
}

/**
 * traffic (robustness harness): concurrent clients through the /v3 JSON API, each recording
 * its operations' call and return times (ms since the run began) for the checker. A request
 * that times out, loses its connection or gets anything but 200 has an unknown outcome (it
 * may have been applied); a 200 is a known outcome, and so is a write refused with etcd's
 * NOSPACE text (`noSpaceText`, 429): a member refuses it before proposing, or every member
 * refuses its entry at apply (etcd's capped applier) — it took no effect (a failed operation).
 * Keys live under `kvPrefix`; every put writes a value unique in the run, so a read names the
 * write it saw.
 */

/** kvPrefix holds the checked keys; leasePrefix the keys attached to leases. */
export const kvPrefix = 'lin/kv/';
/** leasePrefix holds the keys attached to leases (kept out of the KV history: a lease
 * revocation deletes them at a revision no client asked for). */
export const leasePrefix = 'lin/lease/';
/** keysPerRun: few keys, so that operations collide. */
export const keysPerRun = 12;
/** keysPerGroup: a multi-key txn stays inside one group of keys, so that the history splits
 * into keysPerRun / keysPerGroup independent parts for the checker (P-compositionality). */
export const keysPerGroup = 3;
/** noSpaceText is etcd's refusal of a write while a NOSPACE alarm (or a full disk) holds. */
export const noSpaceText = 'etcdserver: mvcc: database space exceeded';
/** refusedOutcome marks an operation refused with noSpaceText: it took no effect. */
export const refusedOutcome = 'refused';

/** requestMsMax: past this a request's outcome is unknown. */
export const requestMsMax = 3_000;

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
const unb64 = (s: string | undefined) => Buffer.from(s ?? '', 'base64').toString('utf8');

/** EtcdKv is a kv as the JSON gateway encodes it. */
interface EtcdKv { key?: string; value?: string; mod_revision?: string; create_revision?: string;
  version?: string; lease?: string }

/** readOf converts a gateway kv to the model's read. */
export function readOf(kv: EtcdKv | undefined): KvRead | undefined {
  if (kv === undefined) return undefined;
  return { value: unb64(kv.value), mod: Number(kv.mod_revision ?? 0),
    create: Number(kv.create_revision ?? 0), version: Number(kv.version ?? 0) };
}

/** post sends one request; undefined when the outcome is unknown. */
export async function post(url: string, path: string, body: unknown,
  timeoutMs = requestMsMax): Promise<{ status: number; json: any } | undefined> {
  if (url === '') return undefined;
  try {
    const r = await fetch(`${url}${path}`, { method: 'POST', body: JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs) });
    const text = await r.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = text;
    }
    return { status: r.status, json };
  } catch {
    return undefined;
  }
}

/** subRequest encodes a request of a txn branch. */
function subRequest(s: KvSub): unknown {
  switch (s.t) {
    case 'get': return { request_range: { key: b64(s.key) } };
    case 'put': return { request_put: { key: b64(s.key), value: b64(s.value) } };
    case 'del': return { request_delete_range: { key: b64(s.key) } };
  }
}

/** compareOf encodes a compare. */
function compareOf(c: KvCompare): unknown {
  const target = { value: 'VALUE', version: 'VERSION', mod: 'MOD', create: 'CREATE' }[c.target];
  const result = { '=': 'EQUAL', '!=': 'NOT_EQUAL', '<': 'LESS', '>': 'GREATER' }[c.op];
  const field = { value: 'value', version: 'version', mod: 'mod_revision',
    create: 'create_revision' }[c.target];
  return { key: b64(c.key), target, result,
    [field]: c.target === 'value' ? b64(String(c.value)) : String(c.value) };
}

/** execute sends one operation and decodes its outcome (undefined: unknown; refusedOutcome:
 * refused for space, no effect). */
export async function execute(url: string, i: KvInput, serializable = false):
  Promise<KvOutput | typeof refusedOutcome | undefined> {
  let r;
  switch (i.t) {
    case 'get': r = await post(url, '/v3/kv/range', { key: b64(i.key),
      ...(serializable ? { serializable: true } : {}) }); break;
    case 'put': r = await post(url, '/v3/kv/put', { key: b64(i.key), value: b64(i.value) });
      break;
    case 'del': r = await post(url, '/v3/kv/deleterange', { key: b64(i.key) }); break;
    case 'txn': r = await post(url, '/v3/kv/txn', { compare: i.cmp.map(compareOf),
      success: i.then.map(subRequest), failure: i.else.map(subRequest) }); break;
  }
  if (r?.status === 429 && r.json?.error === noSpaceText) return refusedOutcome;
  if (r === undefined || r.status !== 200) return undefined;
  const j = r.json;
  const rev = Number(j.header?.revision ?? 0);
  switch (i.t) {
    case 'get': return { rev, results: [{ kv: readOf(j.kvs?.[0]) }] };
    case 'put': return { rev, results: [{}] };
    case 'del': return { rev, results: [{ deleted: Number(j.deleted ?? 0) }] };
    case 'txn': {
      const succeeded = j.succeeded === true;
      const subs = succeeded ? i.then : i.else;
      const results = subs.map((s, k): KvSubOut => {
        const resp = j.responses?.[k] ?? {};
        if (s.t === 'get') return { kv: readOf(resp.response_range?.kvs?.[0]) };
        if (s.t === 'del') return { deleted: Number(resp.response_delete_range?.deleted ?? 0) };
        return {};
      });
      return { rev, succeeded, results };
    }
  }
}

/** Rng is the seeded generator every choice of a run comes from. */
export type Rng = () => number;

/** Client is one KV client: it remembers what it last saw of each key, for its CAS. */
export class Client {
  private n = 0;
  private readonly seen = new Map<string, KvRead>();
  /** serializable makes plain gets serializable (a member's local state, possibly stale):
   * not linearizable by design, the harness's positive control (--serializable-reads). */
  serializable = false;
  /** refused lists the operations refused with noSpaceText (no effect: kept out of the
   * history; one found applied in the final history is a violation). */
  readonly refused: Operation<KvInput, KvOutput>[] = [];
  constructor(readonly id: number, private readonly rng: Rng, private readonly t0: number,
    private readonly c: Cluster, private readonly ops: Operation<KvInput, KvOutput>[]) {}

  private pick<T>(xs: T[]): T {
    return xs[Math.floor(this.rng() * xs.length)]!;
  }

  private key(): string {
    return `${kvPrefix}${Math.floor(this.rng() * keysPerRun)}`;
  }

  private value(): string {
    return `c${this.id}-${this.n++}`;
  }

  /** next draws an operation: gets, puts, deletes, CAS txns on a value or a mod revision,
   * multi-key writes and multi-key reads. */
  next(): KvInput {
    const x = this.rng();
    const k = this.key();
    if (x < 0.3) return { t: 'get', key: k };
    if (x < 0.55) return { t: 'put', key: k, value: this.value() };
    if (x < 0.6) return { t: 'del', key: k };
    if (x < 0.8) {
      const last = this.seen.get(k);
      const cmp: KvCompare = this.rng() < 0.5
        ? { key: k, target: 'value', op: '=', value: last?.value ?? '' }
        : { key: k, target: 'mod', op: '=', value: last?.mod ?? 0 };
      return { t: 'txn', cmp: [cmp], then: [{ t: 'put', key: k, value: this.value() }],
        else: [{ t: 'get', key: k }] };
    }
    const g = Math.floor(Number(k.slice(kvPrefix.length)) / keysPerGroup) * keysPerGroup;
    const inGroup = () => `${kvPrefix}${g + Math.floor(this.rng() * keysPerGroup)}`;
    const ks = [...new Set([k, inGroup(), inGroup()])].sort();
    if (x < 0.9) {
      return { t: 'txn', cmp: [{ key: ks[0]!, target: 'version', op: '>', value: -1 }],
        then: ks.map((key) => ({ t: 'put', key, value: this.value() })), else: [] };
    }
    return { t: 'txn', cmp: [], then: ks.map((key) => ({ t: 'get', key })), else: [] };
  }

  /** run issues operations one after the other until `stop()` says so. */
  async run(stop: () => boolean): Promise<void> {
    while (!stop()) {
      const live = await liveMembers(this.c);
      if (live.length === 0) continue;
      const m = this.pick(live);
      const input = this.next();
      const call = performance.now() - this.t0;
      const out = await execute(m.url, input, this.serializable);
      if (out === refusedOutcome) {
        this.refused.push({ client: this.id, call, ret: performance.now() - this.t0, input,
          output: undefined });
        continue;
      }
      const output = out;
      const ret = output === undefined ? Infinity : performance.now() - this.t0;
      this.ops.push({ client: this.id, call, ret, input, output });
      if (output !== undefined) this.learn(input, output);
      // A failed request to a member that is down: let the next one pick another.
    }
  }

  private learn(i: KvInput, o: KvOutput): void {
    const subs = i.t === 'txn' ? (o.succeeded ? i.then : i.else) : [i];
    subs.forEach((s, k) => {
      const r = o.results[k];
      if (s.t === 'get' && r !== undefined && 'kv' in r) {
        if (r.kv === undefined) this.seen.delete(s.key);
        else this.seen.set(s.key, r.kv);
      } else if (s.t === 'put' && o.rev !== undefined) {
        this.seen.set(s.key, { value: s.value, mod: o.rev });
      }
    });
  }
}

/** LeaseKey is a key put with a lease: when it was acknowledged and the TTL granted. */
export interface LeaseKey { key: string; lease: string; ttlS: number; grantedAt: number;
  putAckAt: number }

/** runLeases grants short leases and attaches a key to each, until `stop()`. */
export async function runLeases(c: Cluster, rng: Rng, t0: number, stop: () => boolean,
  out: LeaseKey[]): Promise<void> {
  let n = 0;
  while (!stop()) {
    const live = await liveMembers(c);
    if (live.length === 0) continue;
    const m = live[Math.floor(rng() * live.length)]!;
    const grantedAt = performance.now() - t0;
    const g = await post(m.url, '/v3/lease/grant', { TTL: '2' });
    if (g === undefined || g.status !== 200) continue;
    const lease = String(g.json.ID);
    const key = `${leasePrefix}${n++}`;
    const p = await post(m.url, '/v3/kv/put', { key: b64(key), value: b64('l'), lease });
    if (p === undefined || p.status !== 200) {
      // unknown: the key may exist; it must still go with its lease
      out.push({ key, lease, ttlS: Number(g.json.TTL), grantedAt, putAckAt: NaN });
      continue;
    }
    out.push({ key, lease, ttlS: Number(g.json.TTL), grantedAt,
      putAckAt: performance.now() - t0 });
    await new Promise((r) => setTimeout(r, 100 + rng() * 200));
  }
}

/** WatchEvent is one event as a watcher received it. */
export interface WatchEvent { type: 'PUT' | 'DELETE'; key: string; value: string; mod: number;
  prev: KvRead | undefined }
/** WatchResponse is one response with events, as received. */
export interface WatchResponse { rev: number; events: WatchEvent[]; at: number }

/** decodeEvents converts a gateway watch result's events. */
function decodeEvents(res: any): WatchEvent[] {
  return (res.events ?? []).map((e: any) => ({
    type: e.type === 'DELETE' ? 'DELETE' : 'PUT', key: unb64(e.kv?.key),
    value: unb64(e.kv?.value), mod: Number(e.kv?.mod_revision ?? 0),
    prev: e.prev_kv === undefined ? undefined : readOf(e.prev_kv),
  }));
}

/**
 * watchOnce opens one /v3/watch stream on `prefix` from `startRev` with prev_kv and hands
 * each response with events to `onResp`, until the stream ends, `stop()` (checked at each
 * line and every 100 ms) or an error. Returns whether it ended because of stop.
 */
export async function watchOnce(url: string, prefix: string, startRev: number,
  onResp: (r: WatchResponse) => void, stop: () => boolean, t0: number): Promise<boolean> {
  const ac = new AbortController();
  const timer = setInterval(() => {
    if (stop()) ac.abort();
  }, 100);
  const end = b64(prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1)
    + 1));
  try {
    const r = await fetch(`${url}/v3/watch`, { method: 'POST', signal: ac.signal,
      body: JSON.stringify({ create_request: { key: b64(prefix), range_end: end,
        start_revision: String(startRev), prev_kv: true } }) });
    if (r.status !== 200 || r.body === null) return false;
    const dec = new TextDecoder();
    let buf = '';
    for await (const chunk of r.body as AsyncIterable<Uint8Array>) {
      buf += dec.decode(chunk, { stream: true });
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i).trim();
        buf = buf.slice(i + 1);
        if (line === '') continue;
        const j = JSON.parse(line);
        const res = j.result;
        if (res === undefined) return false;
        if (res.canceled === true) return false;
        const events = decodeEvents(res);
        if (events.length > 0) {
          onResp({ rev: Number(res.header?.revision ?? 0), events, at: performance.now() - t0 });
        }
        if (stop()) return true;
      }
    }
    return false;
  } catch {
    return stop();
  } finally {
    clearInterval(timer);
  }
}

/**
 * Watcher is a watch that is never cancelled: when its stream breaks (a member killed, a
 * restart) it resumes on a live member from its last revision + 1, so it must see every event
 * exactly once. `streams` counts the streams it opened.
 */
export class Watcher {
  readonly responses: WatchResponse[] = [];
  streams = 0;
  /** last is the highest revision received. */
  last = 0;
  /** on names the member of the current stream (and its url). */
  on = '';
  constructor(private readonly c: Cluster, private readonly rng: Rng,
    private readonly t0: number) {}

  /** run watches from revision 1 until `stop()`. */
  async run(stop: () => boolean): Promise<void> {
    while (!stop()) {
      const live = await liveMembers(this.c);
      if (live.length === 0) continue;
      const m = live[Math.floor(this.rng() * live.length)]!;
      this.streams++;
      this.on = `${m.name} ${m.url}`;
      const ended = await watchOnce(m.url, 'lin/', this.last + 1, (r) => {
        this.responses.push(r);
        this.last = Math.max(this.last, ...r.events.map((e) => e.mod));
      }, stop, this.t0);
      if (ended) return;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}
