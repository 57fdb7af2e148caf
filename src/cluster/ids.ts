import { sha1 } from './sha1.js';

/**
 * ids: how members and clusters are named, derived as etcd derives them so that every member
 * computes the same ids whatever the order of --initial-cluster:
 *
 * - a member's id hashes its sorted peer URLs, joined, then the cluster token (etcd's
 *   NewMember; a member added at run time also mixes in the time of the add, as etcd does);
 * - the cluster id hashes the sorted member ids, each as 8 big-endian bytes (etcd's genID).
 *
 * etcd keeps the first 8 bytes of the SHA-1 as a uint64. MyEtcd keeps the first 53 bits, so
 * an id stays an exact JS number (a MemberId), and shows it as etcd does in JSON: a decimal
 * string. Zero is Raft's "no node", so an id is never 0.
 *
 * Example: peer URL `http://127.0.0.1:2380` with token `etcd-cluster` hashes
 * "http://127.0.0.1:2380etcd-cluster".
 */

/** idOfDigest keeps the first 53 bits of a digest, never 0. */
function idOfDigest(h: Uint8Array): number {
  const dv = new DataView(h.buffer, h.byteOffset, h.byteLength);
  return (dv.getUint32(0) * 0x20_0000 + (dv.getUint32(4) >>> 11)) || 1;
}

/** memberIdOf derives a member id from its peer URLs, the cluster token and, for a member
 * added at run time, the time of the add in milliseconds (etcd: NewMember). */
export function memberIdOf(peerUrls: readonly string[], token: string, addedAtMs?: number): number {
  let text = [...peerUrls].sort().join('') + token;
  if (addedAtMs !== undefined) text += String(addedAtMs);
  return idOfDigest(sha1(new TextEncoder().encode(text)));
}

/** clusterIdOf derives the cluster id from the founding members' ids (etcd: genID). */
export function clusterIdOf(memberIds: readonly number[]): number {
  const sorted = [...memberIds].sort((a, b) => a - b);
  const b = new Uint8Array(8 * sorted.length);
  const dv = new DataView(b.buffer);
  sorted.forEach((id, i) => {
    dv.setUint32(i * 8, Math.floor(id / 0x1_0000_0000));
    dv.setUint32(i * 8 + 4, id >>> 0);
  });
  return idOfDigest(sha1(b));
}

/** formatId shows an id as etcdctl does: lowercase hexadecimal without leading zeros. */
export function formatId(id: number): string {
  return id.toString(16);
}

/** parseId reads an id given in decimal (JSON) or hexadecimal (etcdctl) text, or undefined. */
export function parseId(text: string, hex: boolean): number | undefined {
  const ok = hex ? /^[0-9a-fA-F]{1,16}$/.test(text) : /^[0-9]{1,20}$/.test(text);
  if (!ok) return undefined;
  const n = hex ? parseInt(text, 16) : Number(text);
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}
