/**
 * workloads: the requests each workload sends, as etcd 3.4's JSON gateway expects them (keys
 * and values base64, int64 as strings). A SourceSpec is plain data so the parent can hand it
 * to a load generator process, which turns it into a RequestSource there.
 */
import { buildPost } from './http1.js';

/** KeySpace names keys by index: flat "<prefix><index>" or grouped
 * "<prefix><index / groupSize>/<index % groupSize>" (one group per range prefix). */
export type KeySpace =
  | { kind: 'flat'; prefix: string }
  | { kind: 'grouped'; prefix: string; groupSize: number };

/** keyName is the key at an index of a key space; indexes are zero-padded to 8 digits so keys
 * sort as their indexes do. */
export function keyName(space: KeySpace, i: number): string {
  const pad = (n: number) => String(n).padStart(8, '0');
  if (space.kind === 'flat') return space.prefix + pad(i);
  return `${space.prefix}${pad(Math.floor(i / space.groupSize))}/${pad(i % space.groupSize)}`;
}

/** groupPrefix is the prefix shared by the keys of one group of a grouped key space. */
export function groupPrefix(space: KeySpace & { kind: 'grouped' }, group: number): string {
  return `${space.prefix}${String(group).padStart(8, '0')}/`;
}

/** SourceSpec describes a request stream; see RequestSource. */
export type SourceSpec =
  /** put a value to a key drawn uniformly from `keys` keys */
  | { kind: 'put'; space: KeySpace; keys: number; valueSize: number }
  /** range one key drawn uniformly from `keys`, linearizable or serializable */
  | { kind: 'get'; space: KeySpace; keys: number; serializable: boolean }
  /** deleterange keys 0, 1, 2, … once each (maxOps = count) */
  | { kind: 'delete'; space: KeySpace; count: number }
  /** range one whole group (prefix) drawn uniformly from `groups` */
  | { kind: 'range'; space: KeySpace & { kind: 'grouped' }; groups: number;
    serializable: boolean }
  /** txn: if the key's version > 0 then put it, else range it */
  | { kind: 'txn'; space: KeySpace; keys: number; valueSize: number }
  /** txns of `batch` puts writing keys 0..count-1 once (maxOps = ⌈count / batch⌉) */
  | { kind: 'load'; space: KeySpace; count: number; batch: number; valueSize: number }
  /** put whose value starts with the send time (process.hrtime.bigint(), ns) so a watcher in
   * another process can measure put-to-event latency (CLOCK_MONOTONIC is system-wide) */
  | { kind: 'stamped-put'; space: KeySpace; keys: number; valueSize: number };

/** RequestSource yields request bytes; next() returns undefined when the stream is done. */
export interface RequestSource {
  next(): Buffer | undefined;
}

const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64');

/** valueOf is a deterministic printable value of a size. */
export function valueOf(size: number, seed = 0): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  let s = '';
  for (let i = 0; i < size; i++) s += alphabet[(i * 7 + seed * 13) % alphabet.length];
  return s;
}

/** prefixEndOf is etcd's range end for a prefix: the prefix with its last byte incremented. */
export function prefixEndOf(prefix: string): Buffer {
  const b = Buffer.from(prefix);
  for (let i = b.length - 1; i >= 0; i--) {
    if (b[i]! < 0xff) {
      const out = Buffer.from(b.subarray(0, i + 1));
      out[i]! += 1;
      return out;
    }
  }
  return Buffer.from([0]);
}

/** putBody, rangeBody, … are the JSON bodies of etcd's requests. */
export const bodies = {
  put: (key: string, value: string | Buffer) =>
    JSON.stringify({ key: b64(key), value: b64(value) }),
  range: (key: string, serializable: boolean, rangeEnd?: Buffer) => JSON.stringify({
    key: b64(key), ...(rangeEnd ? { range_end: rangeEnd.toString('base64') } : {}),
    ...(serializable ? { serializable: true } : {}),
  }),
  deleteRange: (key: string) => JSON.stringify({ key: b64(key) }),
  txnCompareVersionPut: (key: string, value: string) => JSON.stringify({
    compare: [{ key: b64(key), target: 'VERSION', result: 'GREATER', version: '0' }],
    success: [{ request_put: { key: b64(key), value: b64(value) } }],
    failure: [{ request_range: { key: b64(key) } }],
  }),
  txnPuts: (kvs: [string, string][]) => JSON.stringify({
    success: kvs.map(([k, v]) => ({ request_put: { key: b64(k), value: b64(v) } })),
  }),
};

/**
 * makeSource builds a request stream. A spec whose requests are used once each (delete,
 * load) is split between `procs` generator processes by index: process p takes p, p+procs, ….
 * `random` is injected so tests can fix it.
 */
export function makeSource(spec: SourceSpec, host: string, procIndex = 0, procs = 1,
  random: () => number = Math.random): RequestSource {
  const pick = (n: number) => Math.floor(random() * n);
  /** requests built once for every key, when the stream draws from a fixed set */
  const prebuilt = (n: number, build: (i: number) => Buffer): RequestSource => {
    const all = Array.from({ length: n }, (_, i) => build(i));
    return { next: () => all[pick(n)] };
  };
  switch (spec.kind) {
    case 'put': {
      const value = valueOf(spec.valueSize);
      return prebuilt(spec.keys, (i) =>
        buildPost(host, '/v3/kv/put', bodies.put(keyName(spec.space, i), value)));
    }
    case 'get':
      return prebuilt(spec.keys, (i) => buildPost(host, '/v3/kv/range',
        bodies.range(keyName(spec.space, i), spec.serializable)));
    case 'range':
      return prebuilt(spec.groups, (g) => {
        const prefix = groupPrefix(spec.space, g);
        return buildPost(host, '/v3/kv/range',
          bodies.range(prefix, spec.serializable, prefixEndOf(prefix)));
      });
    case 'txn': {
      const value = valueOf(spec.valueSize, 1);
      return prebuilt(spec.keys, (i) => buildPost(host, '/v3/kv/txn',
        bodies.txnCompareVersionPut(keyName(spec.space, i), value)));
    }
    case 'delete': {
      let i = procIndex;
      return {
        next: () => {
          if (i >= spec.count) return undefined;
          const req = buildPost(host, '/v3/kv/deleterange',
            bodies.deleteRange(keyName(spec.space, i)));
          i += procs;
          return req;
        },
      };
    }
    case 'load': {
      const batches = Math.ceil(spec.count / spec.batch);
      let b = procIndex;
      return {
        next: () => {
          if (b >= batches) return undefined;
          const kvs: [string, string][] = [];
          for (let i = b * spec.batch; i < Math.min(spec.count, (b + 1) * spec.batch); i++) {
            kvs.push([keyName(spec.space, i), valueOf(spec.valueSize, i)]);
          }
          b += procs;
          return buildPost(host, '/v3/kv/txn', bodies.txnPuts(kvs));
        },
      };
    }
    case 'stamped-put': {
      const pad = valueOf(spec.valueSize);
      return {
        next: () => {
          const stamp = process.hrtime.bigint().toString() + ';';
          const value = (stamp + pad).slice(0, Math.max(spec.valueSize, stamp.length));
          return buildPost(host, '/v3/kv/put',
            bodies.put(keyName(spec.space, pick(spec.keys)), value));
        },
      };
    }
    default: {
      const never: never = spec;
      throw new Error(`unknown source ${JSON.stringify(never)}`);
    }
  }
}

/** stampOf reads the send time (ns) from a stamped value, or undefined. */
export function stampOf(value: Buffer): bigint | undefined {
  const semi = value.indexOf(59 /* ; */);
  if (semi <= 0) return undefined;
  const text = value.toString('latin1', 0, semi);
  return /^\d+$/.test(text) ? BigInt(text) : undefined;
}
