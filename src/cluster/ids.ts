import { createHash } from 'node:crypto';

/**
 * ids: how members and clusters are named, derived as etcd derives them so that every member
 * computes the same ids whatever the order of --initial-cluster:
 *
 * - a member's id hashes its sorted peer URLs, joined, then the cluster token (etcd's
 *   NewMember; a member added at run time also mixes in the time of the add, as etcd does);
 * - the cluster id hashes the sorted member ids, each as 8 big-endian bytes (etcd's genID).
 *
 * etcd keeps the first 8 bytes of the SHA-1 as a uint64. MyEtcd keeps its first 53 bits (the
 * uint64 shifted right by 11), so an id stays an exact JS number (a MemberId), and shows it
 * as etcd does in JSON: a decimal string. Zero is Raft's "no node", so an id is never 0.
 * The cluster id hashes the founders' full uint64 ids, so it too is etcd's, shifted.
 *
 * Example: peer URL `http://127.0.0.1:2380` with token `etcd-cluster` hashes
 * "http://127.0.0.1:2380etcd-cluster".
 */

/** sha1 is the SHA-1 digest etcd hashes ids with (ids are derived a handful of times per
 * process, on the main thread or in the Raft actor: both may use node:crypto). */
function sha1(data: Uint8Array): Uint8Array {
  return createHash('sha1').update(data).digest();
}

/** digest64 is the first 8 bytes of a digest as a uint64 (etcd's id). */
function digest64(h: Uint8Array): bigint {
  return new DataView(h.buffer, h.byteOffset, h.byteLength).getBigUint64(0);
}

/** idOf keeps the first 53 bits of an etcd id, never 0. */
function idOf(id64: bigint): number {
  return Number(id64 >> 11n) || 1;
}

/** memberId64 is etcd's member id: a hash of the sorted peer URLs, the cluster token and,
 * for a member added at run time, the time of the add in milliseconds (etcd: NewMember). */
export function memberId64(peerUrls: readonly string[], token: string, addedAtMs?: number):
  bigint {
  let text = [...peerUrls].sort().join('') + token;
  if (addedAtMs !== undefined) text += String(addedAtMs);
  return digest64(sha1(new TextEncoder().encode(text)));
}

/** memberIdOf is a member's id in MyEtcd: etcd's id's first 53 bits. */
export function memberIdOf(peerUrls: readonly string[], token: string, addedAtMs?: number): number {
  return idOf(memberId64(peerUrls, token, addedAtMs));
}

/** clusterIdOf derives the cluster id from the founding members' etcd ids (memberId64) as
 * etcd's genID does, keeping its first 53 bits. */
export function clusterIdOf(memberIds64: readonly bigint[]): number {
  const sorted = [...memberIds64].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const b = new Uint8Array(8 * sorted.length);
  const dv = new DataView(b.buffer);
  sorted.forEach((id, i) => dv.setBigUint64(i * 8, id));
  return idOf(digest64(sha1(b)));
}

/** formatId shows an id as etcdctl does: lowercase hexadecimal without leading zeros. */
export function formatId(id: number): string {
  return id.toString(16);
}
