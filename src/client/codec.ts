import type {
  Bytesish,
  DeleteResult,
  KeyValue,
  PutResult,
  RangeResult,
  ResponseHeader,
  Member,
  MemberListResult,
  TxnOpResult,
  TxnResult,
} from './types.js';

/**
 * codec: etcd 3.4's JSON gateway encoding, both ways. Bytes travel as base64, int64 as
 * decimal strings, and fields equal to their zero value are left out (so every reader must
 * default them).
 */

/** Json is a decoded JSON object as the gateway sends it. */
export type Json = Record<string, unknown>;

/** toBuffer turns text (UTF-8) or bytes into a Buffer. */
export function toBuffer(b: Bytesish): Buffer {
  return typeof b === 'string'
    ? Buffer.from(b, 'utf8')
    : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

/** b64 encodes a key or value for the gateway. */
export function b64(b: Bytesish): string {
  return toBuffer(b).toString('base64');
}

/** prefixEnd is etcd's GetPrefixRangeEnd: the smallest key after every key with the prefix;
 * "\0" (read to the end) when every byte is 0xff or the prefix is empty. */
export function prefixEnd(prefix: Bytesish): Buffer {
  const end = Buffer.from(toBuffer(prefix));
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]! += 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

/** rangeOf computes etcd's (key, range_end) for prefix / fromKey / rangeEnd options. As
 * clientv3, an empty key with prefix or fromKey means "every key": key "\0", end "\0". */
export function rangeOf(
  key: Bytesish,
  o: { prefix?: boolean; fromKey?: boolean; rangeEnd?: Bytesish },
): { key: string; range_end?: string } {
  let k = toBuffer(key);
  if ((o.prefix || o.fromKey) && k.length === 0) k = Buffer.from([0]);
  if (o.prefix) return { key: k.toString('base64'), range_end: prefixEnd(key).toString('base64') };
  if (o.fromKey) return { key: k.toString('base64'), range_end: 'AA==' };
  if (o.rangeEnd !== undefined) return { key: k.toString('base64'), range_end: b64(o.rangeEnd) };
  return { key: k.toString('base64') };
}

/** int reads an int64 field (string or number, absent = 0) as a number. */
export function int(v: unknown): number {
  if (v === undefined || v === null || v === '') return 0;
  const n = typeof v === 'number' ? v : Number(v);
  if (!Number.isFinite(n)) throw new TypeError(`client: not an integer: ${String(v)}`);
  return n;
}

/** id reads an int64 id field as a decimal string (absent = '0'). */
export function id(v: unknown): string {
  if (v === undefined || v === null || v === '') return '0';
  return typeof v === 'string' ? v : BigInt(v as number).toString();
}

/** idParam encodes a lease id for a request: decimal string, as the gateway expects. */
export function idParam(v: string | number | bigint): string {
  const s = typeof v === 'string' ? v : v.toString();
  if (!/^-?\d+$/.test(s)) throw new TypeError(`client: lease id must be a decimal integer: ${s}`);
  return s;
}

/** bytes reads a base64 field (absent = empty). */
export function bytes(v: unknown): Buffer {
  return typeof v === 'string' ? Buffer.from(v, 'base64') : Buffer.alloc(0);
}

/** header reads a response header. */
export function header(v: unknown): ResponseHeader {
  const h = (v ?? {}) as Json;
  return {
    clusterId: id(h.cluster_id),
    memberId: id(h.member_id),
    revision: int(h.revision),
    raftTerm: int(h.raft_term),
  };
}

/** keyValue reads a KeyValue. */
export function keyValue(v: unknown): KeyValue {
  const k = (v ?? {}) as Json;
  return {
    key: bytes(k.key),
    value: bytes(k.value),
    createRevision: int(k.create_revision),
    modRevision: int(k.mod_revision),
    version: int(k.version),
    lease: id(k.lease),
  };
}

/** rangeResult reads a RangeResponse. */
export function rangeResult(j: Json): RangeResult {
  return {
    header: header(j.header),
    kvs: ((j.kvs ?? []) as unknown[]).map(keyValue),
    more: j.more === true,
    count: int(j.count),
  };
}

/** putResult reads a PutResponse. */
export function putResult(j: Json): PutResult {
  const r: PutResult = { header: header(j.header) };
  if (j.prev_kv !== undefined) r.prevKv = keyValue(j.prev_kv);
  return r;
}

/** deleteResult reads a DeleteRangeResponse. */
export function deleteResult(j: Json): DeleteResult {
  return {
    header: header(j.header),
    deleted: int(j.deleted),
    prevKvs: ((j.prev_kvs ?? []) as unknown[]).map(keyValue),
  };
}

/** txnOpResult reads one ResponseOp. */
export function txnOpResult(v: unknown): TxnOpResult {
  const r = (v ?? {}) as Json;
  if (r.response_range !== undefined)
    return { type: 'range', range: rangeResult(r.response_range as Json) };
  if (r.response_put !== undefined) return { type: 'put', put: putResult(r.response_put as Json) };
  if (r.response_delete_range !== undefined) {
    return { type: 'delete', delete: deleteResult(r.response_delete_range as Json) };
  }
  if (r.response_txn !== undefined) return { type: 'txn', txn: txnResult(r.response_txn as Json) };
  // An empty object is a put whose response had only zero fields.
  return { type: 'put', put: { header: header(undefined) } };
}

/** txnResult reads a TxnResponse. */
export function txnResult(j: Json): TxnResult {
  return {
    header: header(j.header),
    succeeded: j.succeeded === true,
    responses: ((j.responses ?? []) as unknown[]).map(txnOpResult),
  };
}

/** member reads a Member. */
export function member(v: unknown): Member {
  const m = (v ?? {}) as Json;
  return {
    id: id(m.ID),
    name: typeof m.name === 'string' ? m.name : '',
    peerURLs: (m.peerURLs ?? []) as string[],
    clientURLs: (m.clientURLs ?? []) as string[],
    isLearner: m.isLearner === true,
  };
}

/** memberListResult reads a member list, remove, update or promote response. */
export function memberListResult(j: Json): MemberListResult {
  return { header: header(j.header), members: ((j.members ?? []) as unknown[]).map(member) };
}

/** leaseHex formats a lease id as etcdctl prints it: 16 hex digits. */
export function leaseHex(leaseId: string): string {
  return BigInt.asUintN(64, BigInt(leaseId)).toString(16).padStart(16, '0');
}

/** leaseFromHex parses etcdctl's hexadecimal lease id into a decimal string. */
export function leaseFromHex(hex: string): string {
  if (!/^[0-9a-fA-F]{1,16}$/.test(hex))
    throw new TypeError(`bad lease ID (${hex}), expecting ID in Hex`);
  return BigInt.asIntN(64, BigInt('0x' + hex)).toString();
}
