import type {
  DeleteResult,
  KeyValue,
  Member,
  MemberAddResult,
  MemberListResult,
  PutResult,
  RangeResult,
  ResponseHeader,
  TxnOpResult,
  TxnResult,
  WatchEvent,
} from '../client/types.js';
import type { WatchPrint } from './format.js';

/**
 * protobuf: the wire encoding of the etcd responses that `etcdctl -w protobuf` prints (what
 * gogo-protobuf's generated Marshal writes): fields in field-number order, proto3 scalars left
 * out when zero, an embedded message written whenever it is present (even empty), int64 as a
 * varint of its two's complement. The field numbers are those of etcd 3.4's rpc.proto and
 * kv.proto:
 *
 *   ResponseHeader  1 cluster_id  2 member_id  3 revision  4 raft_term
 *   KeyValue        1 key  2 create_revision  3 mod_revision  4 version  5 value  6 lease
 *   RangeResponse   1 header  2 kvs  3 more  4 count
 *   PutResponse     1 header  2 prev_kv
 *   DeleteRange…    1 header  2 deleted  3 prev_kvs
 *   TxnResponse     1 header  2 succeeded  3 responses (ResponseOp: 1 range 2 put 3 delete 4 txn)
 *   WatchResponse   1 header  2 watch_id  3 created  4 canceled  5 compact_revision
 *                   6 cancel_reason  7 fragment  11 events (Event: 1 type  2 kv  3 prev_kv)
 *   Member          1 ID  2 name  3 peerURLs  4 clientURLs  5 isLearner
 *   MemberAdd…      1 header  2 member  3 members;  other member responses: 1 header  2 members
 */

/** Writer accumulates one message's bytes. */
class Writer {
  private readonly parts: Buffer[] = [];

  private varint(v: bigint): void {
    let x = BigInt.asUintN(64, v);
    const out: number[] = [];
    while (x >= 0x80n) {
      out.push(Number(x & 0x7fn) | 0x80);
      x >>= 7n;
    }
    out.push(Number(x));
    this.parts.push(Buffer.from(out));
  }

  private tag(field: number, wire: 0 | 2): void {
    this.varint(BigInt((field << 3) | wire));
  }

  /** int writes an int64/uint64 field (a number or a decimal string), left out when zero. */
  int(field: number, v: number | string): this {
    const x = BigInt(v);
    if (x === 0n) return this;
    this.tag(field, 0);
    this.varint(x);
    return this;
  }

  bool(field: number, v: boolean): this {
    return v ? this.int(field, 1) : this;
  }

  /** bytes writes a bytes or string field, left out when empty. */
  bytes(field: number, v: Buffer | string): this {
    const b = typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
    return b.length === 0 ? this : this.embed(field, b);
  }

  /** embed writes a length-delimited field even when empty (a present sub-message). */
  embed(field: number, b: Buffer): this {
    this.tag(field, 2);
    this.varint(BigInt(b.length));
    this.parts.push(b);
    return this;
  }

  done(): Buffer {
    return Buffer.concat(this.parts);
  }
}

/** headerPb encodes a ResponseHeader. */
export function headerPb(h: ResponseHeader): Buffer {
  return new Writer()
    .int(1, h.clusterId)
    .int(2, h.memberId)
    .int(3, h.revision)
    .int(4, h.raftTerm)
    .done();
}

function kvPb(kv: KeyValue): Buffer {
  return new Writer()
    .bytes(1, kv.key)
    .int(2, kv.createRevision)
    .int(3, kv.modRevision)
    .int(4, kv.version)
    .bytes(5, kv.value)
    .int(6, kv.lease)
    .done();
}

/** rangePb encodes a RangeResponse. */
export function rangePb(r: RangeResult): Buffer {
  const w = new Writer().embed(1, headerPb(r.header));
  for (const kv of r.kvs) w.embed(2, kvPb(kv));
  return w.bool(3, r.more).int(4, r.count).done();
}

/** putPb encodes a PutResponse. */
export function putPb(r: PutResult): Buffer {
  const w = new Writer().embed(1, headerPb(r.header));
  if (r.prevKv !== undefined) w.embed(2, kvPb(r.prevKv));
  return w.done();
}

/** deletePb encodes a DeleteRangeResponse. */
export function deletePb(r: DeleteResult): Buffer {
  const w = new Writer().embed(1, headerPb(r.header)).int(2, r.deleted);
  for (const kv of r.prevKvs) w.embed(3, kvPb(kv));
  return w.done();
}

function responseOpPb(x: TxnOpResult): Buffer {
  const w = new Writer();
  switch (x.type) {
    case 'range':
      return w.embed(1, rangePb(x.range)).done();
    case 'put':
      return w.embed(2, putPb(x.put)).done();
    case 'delete':
      return w.embed(3, deletePb(x.delete)).done();
    case 'txn':
      return w.embed(4, txnPb(x.txn)).done();
  }
}

/** txnPb encodes a TxnResponse. */
export function txnPb(r: TxnResult): Buffer {
  const w = new Writer().embed(1, headerPb(r.header)).bool(2, r.succeeded);
  for (const x of r.responses) w.embed(3, responseOpPb(x));
  return w.done();
}

function eventPb(e: WatchEvent): Buffer {
  const w = new Writer().int(1, e.type === 'DELETE' ? 1 : 0).embed(2, kvPb(e.kv));
  if (e.prevKv !== undefined) w.embed(3, kvPb(e.prevKv));
  return w.done();
}

/** watchPb encodes the WatchResponse etcdctl builds (header, events, compact revision,
 * canceled, created; no watch id). */
export function watchPb(r: WatchPrint): Buffer {
  const w = new Writer()
    .embed(1, headerPb(r.header))
    .bool(3, r.created)
    .bool(4, r.canceled)
    .int(5, r.compactRevision);
  for (const e of r.events) w.embed(11, eventPb(e));
  return w.done();
}

function memberPb(m: Member): Buffer {
  const w = new Writer().int(1, m.id).bytes(2, m.name);
  for (const u of m.peerURLs) w.embed(3, Buffer.from(u, 'utf8'));
  for (const u of m.clientURLs) w.embed(4, Buffer.from(u, 'utf8'));
  return w.bool(5, m.isLearner).done();
}

/** membersPb encodes a MemberListResponse (and the remove, update, promote responses, which
 * have the same fields). */
export function membersPb(r: MemberListResult): Buffer {
  const w = new Writer().embed(1, headerPb(r.header));
  for (const m of r.members) w.embed(2, memberPb(m));
  return w.done();
}

/** memberAddPb encodes a MemberAddResponse. */
export function memberAddPb(r: MemberAddResult): Buffer {
  const w = new Writer().embed(1, headerPb(r.header)).embed(2, memberPb(r.member));
  for (const m of r.members) w.embed(3, memberPb(m));
  return w.done();
}

/** headerOnlyPb encodes a response whose only field is its header (MoveLeaderResponse). */
export function headerOnlyPb(h: ResponseHeader): Buffer {
  return new Writer().embed(1, headerPb(h)).done();
}
