/**
 * ConfChange encoding: an EntryConfChange's data is the MessagePack map
 * `{ type, nodeId, context? }` (keys in that order; context as bin), so any msgpack decoder
 * — the shell's `unpack` included — reads it as a ConfChange. This file writes and reads that
 * small subset by hand, keeping the core free of dependencies.
 *
 * Example: AddNode (0) of node 3 without context encodes as 18 bytes:
 *   82 a4 "type" 00 a6 "nodeId" 03
 * (fixmap of 2, fixstr "type", fixint 0, fixstr "nodeId", fixint 3).
 */
import type { MemberId } from '../types.js';
import { RaftError } from './errors.js';
import {
  ConfChangeAddLearnerNode, ConfChangeAddNode, ConfChangeRemoveNode, type ConfChange,
  type ConfChangeType,
} from './types.js';

const keyType = [0x74, 0x79, 0x70, 0x65]; // "type"
const keyNodeId = [0x6e, 0x6f, 0x64, 0x65, 0x49, 0x64]; // "nodeId"
const keyContext = [0x63, 0x6f, 0x6e, 0x74, 0x65, 0x78, 0x74]; // "context"

function malformed(): RaftError {
  return new RaftError('RAFT_MALFORMED_CONF_CHANGE');
}

/** encodeConfChange serializes cc for an EntryConfChange entry. */
export function encodeConfChange(cc: ConfChange): Uint8Array {
  const out: number[] = [cc.context ? 0x83 : 0x82, 0xa4, ...keyType, cc.type, 0xa6, ...keyNodeId];
  const id = cc.nodeId;
  if (id < 0x80) {
    out.push(id);
  } else if (id < 0x1_0000_0000) {
    out.push(0xce, (id >>> 24) & 0xff, (id >>> 16) & 0xff, (id >>> 8) & 0xff, id & 0xff);
  } else {
    const f = new DataView(new ArrayBuffer(8));
    f.setFloat64(0, id);
    out.push(0xcb);
    for (let i = 0; i < 8; i++) out.push(f.getUint8(i));
  }
  let head = Uint8Array.from(out);
  if (cc.context) {
    const n = cc.context.length;
    const ctxHead = [0xa7, ...keyContext, 0xc6, (n >>> 24) & 0xff, (n >>> 16) & 0xff,
      (n >>> 8) & 0xff, n & 0xff];
    const all = new Uint8Array(head.length + ctxHead.length + n);
    all.set(head);
    all.set(ctxHead, head.length);
    all.set(cc.context, head.length + ctxHead.length);
    head = all;
  }
  return head;
}

/** Reader is a cursor over msgpack bytes; every read checks bounds. */
class Reader {
  private pos = 0;
  private readonly dv: DataView;
  constructor(private readonly b: Uint8Array) {
    this.dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  }
  done(): boolean {
    return this.pos === this.b.length;
  }
  private need(n: number): void {
    if (this.pos + n > this.b.length) throw malformed();
  }
  u8(): number {
    this.need(1);
    return this.b[this.pos++]!;
  }
  bytes(n: number): Uint8Array {
    this.need(n);
    const v = this.b.slice(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }
  uint(n: 1 | 2 | 4): number {
    this.need(n);
    const v = n === 1 ? this.dv.getUint8(this.pos)
      : n === 2 ? this.dv.getUint16(this.pos) : this.dv.getUint32(this.pos);
    this.pos += n;
    return v;
  }
  str(): string {
    const t = this.u8();
    let n: number;
    if ((t & 0xe0) === 0xa0) n = t & 0x1f;
    else if (t === 0xd9) n = this.uint(1);
    else throw malformed();
    return String.fromCharCode(...this.bytes(n));
  }
  int(): number {
    const t = this.u8();
    if (t < 0x80) return t;
    if (t === 0xcc) return this.uint(1);
    if (t === 0xcd) return this.uint(2);
    if (t === 0xce) return this.uint(4);
    if (t === 0xcf) return this.uint(4) * 0x1_0000_0000 + this.uint(4);
    if (t === 0xcb) {
      this.need(8);
      const v = this.dv.getFloat64(this.pos);
      this.pos += 8;
      return v;
    }
    throw malformed();
  }
  bin(): Uint8Array | undefined {
    const t = this.u8();
    if (t === 0xc0) return undefined;
    if (t === 0xc4) return this.bytes(this.uint(1));
    if (t === 0xc5) return this.bytes(this.uint(2));
    if (t === 0xc6) return this.bytes(this.uint(4));
    throw malformed();
  }
}

/** decodeConfChange parses an EntryConfChange's data; throws ErrMalformedConfChange. */
export function decodeConfChange(data: Uint8Array): ConfChange {
  const r = new Reader(data);
  const head = r.u8();
  if ((head & 0xf0) !== 0x80) throw malformed();
  let type: number | undefined;
  let nodeId: number | undefined;
  let context: Uint8Array | undefined;
  for (let i = 0; i < (head & 0x0f); i++) {
    const k = r.str();
    if (k === 'type') type = r.int();
    else if (k === 'nodeId') nodeId = r.int();
    else if (k === 'context') context = r.bin();
    else throw malformed();
  }
  if (!r.done()) throw malformed();
  if (type !== ConfChangeAddNode && type !== ConfChangeRemoveNode
    && type !== ConfChangeAddLearnerNode) throw malformed();
  if (nodeId === undefined || !Number.isSafeInteger(nodeId) || nodeId <= 0) throw malformed();
  const cc: ConfChange = { type: type as ConfChangeType, nodeId: nodeId as MemberId };
  if (context) cc.context = context;
  return cc;
}
