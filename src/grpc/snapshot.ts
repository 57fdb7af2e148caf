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
import { type Bucket, writeBbolt } from './bbolt.js';

/** SnapshotState is what a snapshot is built from. */
export interface SnapshotState {
  kvs: readonly KeyValue[];
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
  const out: number[] = [];
  pbBytes(1, kv.key, out);
  pbInt(2, kv.createRevision, out);
  pbInt(3, kv.modRevision, out);
  pbInt(4, kv.version, out);
  pbBytes(5, kv.value, out);
  pbInt(6, kv.lease, out);
  return Uint8Array.from(out);
}

/** revisionKey is etcd's 17-byte revision key: main, '_', sub, each 8 bytes big-endian. */
export function revisionKey(main: number, sub: number): Uint8Array {
  const b = new Uint8Array(17);
  const v = new DataView(b.buffer);
  v.setBigUint64(0, BigInt(main));
  b[8] = 0x5f;
  v.setBigUint64(9, BigInt(sub));
  return b;
}

function u64be(n: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt.asUintN(64, BigInt(n)));
  return b;
}

/** snapshotBuckets lays the state out in etcd's buckets. */
export function snapshotBuckets(s: SnapshotState): Bucket[] {
  const byRev = [...s.kvs].sort((a, b) => a.modRevision - b.modRevision ||
    (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const keys: [Uint8Array, Uint8Array][] = [];
  let sub = 0;
  byRev.forEach((kv, i) => {
    sub = i > 0 && byRev[i - 1]!.modRevision === kv.modRevision ? sub + 1 : 0;
    keys.push([revisionKey(kv.modRevision, sub), keyValueProto(kv)]);
  });
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
    bucket('key', keys), bucket('lease', leases), bucket('members', members),
    bucket('members_removed'), bucket('meta', meta),
  ];
}

/** snapshotDb is the backend file of a state (without etcd's appended SHA-256). */
export function snapshotDb(s: SnapshotState): Uint8Array {
  return writeBbolt(snapshotBuckets(s));
}
