/**
 * snapshot: the state of a member as etcd 3.4's backend file (a bbolt database with etcd's
 * buckets), which Maintenance.Snapshot streams and `etcdctl snapshot save` stores. Pure.
 *
 * What it holds: every live key at the snapshot's revision (bucket "key": a 17-byte revision
 * key — main revision, '_', sub revision, big-endian — and the mvccpb.KeyValue), the leases
 * ("lease": 8-byte id → leasepb.Lease {ID, TTL}), the members ("members": id in hex →
 * etcd's RaftAttributes {"peerURLs","isLearner"}), the applied Raft index ("meta":
 * consistent_index), the compaction ("meta": finishedCompactRev) and the cluster version.
 * Unlike etcd's file it holds no history below the current versions (as if compacted at the
 * snapshot's revision),
 * so `snapshot status` counts fewer keys and reports as revision the newest live key's
 * modification (etcd: the newest revision, even a delete's). Keys changed by one transaction
 * share a main revision; their sub revisions are numbered here in key order (MyEtcd does not
 * keep etcd's sub revisions).
 */
import type { Member } from '../cluster/membership.js';
import type { KeyValue } from '../mvcc/types.js';
import { keyValueBytes, putKeyValue } from './wire.js';
import { bboltSteps, type Bucket, type EntrySource, writeBbolt } from './bbolt.js';

/** SnapshotState is what a snapshot is built from. */
export interface SnapshotState {
  keys: SnapshotKeys;
  leases: readonly { id: number; ttlSeconds: number }[];
  members: readonly Member[];
  consistentIndex: number;
  compactRevision: number;
  clusterVersion: string;
}

const text = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0) & 0xff);

function varint(n: bigint, out: number[]): void {
  let v = BigInt.asUintN(64, n);
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
}

/** pbInt appends a varint field (omitted when zero, as protobuf does). */
function pbInt(field: number, n: number, out: number[]): void {
  if (n === 0) return;
  out.push(field << 3);
  varint(BigInt(n), out);
}

/** pbBytes appends a length-delimited field (omitted when empty). */
function pbBytes(field: number, b: string, out: number[]): void {
  if (b.length === 0) return;
  out.push((field << 3) | 2);
  varint(BigInt(b.length), out);
  for (let i = 0; i < b.length; i++) out.push(b.charCodeAt(i) & 0xff);
}

/** keyValueProto marshals mvccpb.KeyValue. */
export function keyValueProto(kv: KeyValue): Uint8Array {
  const n = keyValueBytes(kv);
  if (n >= 0) {
    const buf = Buffer.allocUnsafe(n);
    putKeyValue(kv, buf, 0);
    return buf;
  }
  const out: number[] = [];
  pbBytes(1, kv.key, out);
  pbInt(2, kv.createRevision, out);
  pbInt(3, kv.modRevision, out);
  pbInt(4, kv.version, out);
  pbBytes(5, kv.value, out);
  pbInt(6, kv.lease, out);
  return Uint8Array.from(out);
}

/** putRevisionKey writes etcd's 17-byte revision key at `at`: main, '_', sub, each 8 bytes
 * big-endian (both below 2^53). */
function putRevisionKey(main: number, sub: number, buf: Uint8Array, at: number): void {
  const u64 = (n: number, o: number): void => {
    const hi = Math.floor(n / 0x1_0000_0000);
    const lo = n - hi * 0x1_0000_0000;
    buf[o] = hi >>> 24; buf[o + 1] = (hi >>> 16) & 0xff;
    buf[o + 2] = (hi >>> 8) & 0xff; buf[o + 3] = hi & 0xff;
    buf[o + 4] = lo >>> 24; buf[o + 5] = (lo >>> 16) & 0xff;
    buf[o + 6] = (lo >>> 8) & 0xff; buf[o + 7] = lo & 0xff;
  };
  u64(main, at);
  buf[at + 8] = 0x5f;
  u64(sub, at + 9);
}

/** revisionKey is etcd's 17-byte revision key: main, '_', sub, each 8 bytes big-endian. */
export function revisionKey(main: number, sub: number): Uint8Array {
  const b = new Uint8Array(17);
  putRevisionKey(main, sub, b, 0);
  return b;
}

/** packedSortKeys, packedSortRevision: below this many keys and revisions below this, the
 * revision order is sorted as one float64 per key, revision × 2^21 + index, with no
 * comparator. */
const packedSortKeys = 2 ** 21;
const packedSortRevision = 2 ** 32;

/**
 * SnapshotKeys is the "key" bucket, built from the live keys a page at a time: each kv is
 * encoded into its page's buffer as it is added (so a million keys leave no million objects
 * behind), then `seal` orders them by revision — keys sharing a main revision numbered by
 * sub revision in key order — and the bucket is read by index (EntrySource).
 */
export class SnapshotKeys implements EntrySource {
  private readonly pages: Buffer[] = [];
  /** Per key, in the order added (key order): its revision, page, and bytes in the page. */
  private readonly mods: number[] = [];
  private readonly pageOf: number[] = [];
  private readonly starts: number[] = [];
  private readonly ends: number[] = [];
  private lastKey: string | undefined;
  /** streams: the keys added by addEncoded, per shard, in that shard's key order (absent:
   * keys added by add, in key order as they came). */
  private streams: Map<number, number[]> | undefined;
  /** After seal: the keys in revision order (indexes into the lists above), and subs. */
  private order: Uint32Array | undefined;
  private subs: Uint32Array | undefined;

  get length(): number {
    return this.mods.length;
  }

  /** add appends a page of kvs; pages come in key order, each above the last page's keys. */
  add(kvs: readonly KeyValue[]): void {
    if (this.order !== undefined) throw new Error('SnapshotKeys: add after seal');
    if (this.streams !== undefined) throw new Error('SnapshotKeys: add after addEncoded');
    // A number the fast path cannot write (none a store holds) is encoded once, the slow way.
    const slow = kvs.map((kv) => (keyValueBytes(kv) < 0 ? keyValueProto(kv) : undefined));
    let total = 0;
    kvs.forEach((kv, i) => {
      total += slow[i]?.length ?? keyValueBytes(kv);
    });
    const page = Buffer.allocUnsafe(total);
    let at = 0;
    kvs.forEach((kv, i) => {
      if (this.lastKey !== undefined && !(this.lastKey < kv.key)) {
        throw new Error('SnapshotKeys: keys out of order');
      }
      this.lastKey = kv.key;
      const start = at;
      const encoded = slow[i];
      if (encoded === undefined) at = putKeyValue(kv, page, at);
      else at += Buffer.from(encoded).copy(page, at);
      this.mods.push(kv.modRevision);
      this.pageOf.push(this.pages.length);
      this.starts.push(start);
      this.ends.push(at);
    });
    this.pages.push(page);
  }

  /**
   * addEncoded appends a page of one shard's keys already encoded (a shard's ShardExportResp):
   * `bytes` holds `keys` mvccpb.KeyValue encodings back to back; `index` holds each one's mod
   * revision (float64, little-endian) then each one's end in `bytes` (uint32, little-endian),
   * read where it lies (any byte offset). Each shard's pages come in its key order; the
   * shards' pages may come interleaved in any order (seal merges them by key).
   */
  addEncoded(shard: number, bytes: Uint8Array, index: Uint8Array, keys: number): void {
    if (this.order !== undefined) throw new Error('SnapshotKeys: add after seal');
    if (index.length !== keys * 12) throw new Error('SnapshotKeys: a page\'s index is cut');
    if (this.streams === undefined) {
      if (this.mods.length > 0) throw new Error('SnapshotKeys: addEncoded after add');
      this.streams = new Map();
    }
    let stream = this.streams.get(shard);
    if (stream === undefined) this.streams.set(shard, stream = []);
    const page = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
    const p = this.pages.length;
    this.pages.push(page);
    const view = new DataView(index.buffer, index.byteOffset, index.length);
    let start = 0;
    for (let i = 0; i < keys; i++) {
      const e = this.mods.length;
      this.mods.push(view.getFloat64(i * 8, true));
      this.pageOf.push(p);
      this.starts.push(start);
      this.ends.push(start = view.getUint32(keys * 8 + i * 4, true));
      if (i === 0 && stream.length > 0 && this.compareKeys(stream.at(-1)!, e) >= 0) {
        throw new Error('SnapshotKeys: keys out of order');
      }
      stream.push(e);
    }
    if (start !== bytes.length) throw new Error('SnapshotKeys: a page\'s ends do not add up');
  }

  /** keyAt: where key-value e's key lies in its page (field 1, first in the encoding). */
  private keyAt(e: number): [Buffer, number, number] {
    const page = this.pages[this.pageOf[e]!]!;
    let at = this.starts[e]! + 1;
    let len = 0;
    for (let shift = 0; ; shift += 7) {
      const x = page[at++]!;
      len += (x & 0x7f) * 2 ** shift;
      if (x < 0x80) break;
    }
    return [page, at, at + len];
  }

  /** compareKeys orders key-values a and b by key bytes. */
  private compareKeys(a: number, b: number): number {
    const [pa, sa, ea] = this.keyAt(a);
    const [pb, sb, eb] = this.keyAt(b);
    return pa.compare(pb, sb, eb, sa, ea);
  }

  /** keyOrder: the key-values in key order (the shards' streams merged); undefined when they
   * were added in key order. */
  private keyOrder(): Uint32Array | undefined {
    const streams = this.streams === undefined ? [] : [...this.streams.values()];
    if (streams.length <= 1) {
      return streams.length === 1 ? Uint32Array.from(streams[0]!) : undefined;
    }
    const out = new Uint32Array(this.mods.length);
    const heads = streams.map(() => 0);
    for (let o = 0; o < out.length; o++) {
      let best = -1;
      for (let s = 0; s < streams.length; s++) {
        if (heads[s]! >= streams[s]!.length) continue;
        if (best < 0 || this.compareKeys(streams[s]![heads[s]!]!,
          streams[best]![heads[best]!]!) < 0) best = s;
      }
      out[o] = streams[best]![heads[best]!++]!;
    }
    return out;
  }

  /** seal orders the keys by revision (once), those of one revision in key order; the
   * bucket is read only after it. */
  seal(): void {
    if (this.order !== undefined) return;
    const n = this.mods.length;
    const byRank = this.keyOrder();
    const entry = (rank: number): number => (byRank === undefined ? rank : byRank[rank]!);
    const order = new Uint32Array(n);
    if (n < packedSortKeys && this.mods.every((m) => m < packedSortRevision)) {
      const packed = new Float64Array(n);
      for (let r = 0; r < n; r++) packed[r] = this.mods[entry(r)]! * packedSortKeys + r;
      packed.sort();
      for (let j = 0; j < n; j++) order[j] = entry(packed[j]! % packedSortKeys);
    } else {
      const ranks = new Uint32Array(n);
      for (let r = 0; r < n; r++) ranks[r] = r;
      ranks.sort((a, b) => this.mods[entry(a)]! - this.mods[entry(b)]! || a - b);
      for (let j = 0; j < n; j++) order[j] = entry(ranks[j]!);
    }
    const subs = new Uint32Array(n);
    for (let j = 1; j < n; j++) {
      if (this.mods[order[j]!] === this.mods[order[j - 1]!]) subs[j] = subs[j - 1]! + 1;
    }
    this.order = order;
    this.subs = subs;
  }

  private at(j: number): number {
    if (this.order === undefined) throw new Error('SnapshotKeys: read before seal');
    return this.order[j]!;
  }

  keyBytes(): number {
    return 17;
  }

  valueBytes(j: number): number {
    const i = this.at(j);
    return this.ends[i]! - this.starts[i]!;
  }

  key(j: number): Uint8Array {
    return revisionKey(this.mods[this.at(j)]!, this.subs![j]!);
  }

  write(j: number, buf: Uint8Array, at: number): void {
    const i = this.at(j);
    putRevisionKey(this.mods[i]!, this.subs![j]!, buf, at);
    this.pages[this.pageOf[i]!]!.copy(buf, at + 17, this.starts[i]!, this.ends[i]!);
  }
}

function u64be(n: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt.asUintN(64, BigInt(n)));
  return b;
}

/** snapshotBuckets lays the state out in etcd's buckets. */
export function snapshotBuckets(s: SnapshotState): Bucket[] {
  s.keys.seal();
  const leases: [Uint8Array, Uint8Array][] = s.leases.map((l) => {
    const out: number[] = [];
    pbInt(1, l.id, out);
    pbInt(2, l.ttlSeconds, out);
    return [u64be(l.id), Uint8Array.from(out)];
  });
  const members: [Uint8Array, Uint8Array][] = s.members.map((m) => [
    text(m.id.toString(16)),
    text(JSON.stringify({ peerURLs: m.peerURLs,
      ...(m.isLearner ? { isLearner: true } : {}) })),
  ]);
  const meta: [Uint8Array, Uint8Array][] = [[text('consistent_index'), u64be(s.consistentIndex)]];
  if (s.compactRevision > 0) {
    meta.push([text('finishedCompactRev'), revisionKey(s.compactRevision, 0)]);
  }
  const bucket = (name: string, entries: [Uint8Array, Uint8Array][] = []): Bucket =>
    ({ name: text(name), entries });
  return [
    bucket('alarm'), bucket('auth'), bucket('authRoles'), bucket('authUsers'),
    bucket('cluster', [[text('clusterVersion'), text(s.clusterVersion)]]),
    { name: text('key'), entries: s.keys }, bucket('lease', leases), bucket('members', members),
    bucket('members_removed'), bucket('meta', meta),
  ];
}

/** snapshotDb is the backend file of a state (without etcd's appended SHA-256). */
export function snapshotDb(s: SnapshotState): Uint8Array {
  return writeBbolt(snapshotBuckets(s));
}

/** snapshotDbSteps builds the same file, yielding between leaves (bboltSteps). */
export function snapshotDbSteps(s: SnapshotState): Generator<void, Uint8Array, void> {
  return bboltSteps(snapshotBuckets(s));
}
