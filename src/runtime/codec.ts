import { MessageChannel } from 'node:worker_threads';
import { addExtension, Packr } from 'msgpackr';
import type { TraceField } from './trace.js';
import { packScratchBytesMax } from '../constants.js';

/**
 * codec: how messages cross threads. Every hop carries ONE msgpack-encoded batch of
 * envelopes (see Envelope), never a structured clone per message: packing 1,000 small
 * messages costs ≈ 0.6 µs each here, and the wake-up of the receiving thread (≈ 40 µs) is
 * paid once per batch instead of once per message (shared/notes/threads.md).
 *
 * Records are on, but never shared across buffers: each packed buffer defines the record
 * shapes it uses (the first object of a shape carries its keys, the rest only values), so a
 * batch of 1,000 replies spells "revision" once instead of 1,000 times (≈ 3× smaller, ≈ 25%
 * faster here) and every buffer still decodes on its own — a restarted actor, or the WAL read
 * back years later, needs no table agreed with anyone.
 */
const packr = new Packr({ useRecords: true, moreTypes: false, int64AsType: 'number' });
/**
 * plainPackr packs what travels one value per buffer (packTransient: a request inside a Raft
 * entry). For a value of a few objects a record saves nothing — its one object spells its
 * keys in the definition anyway — and costs every decode a fresh structure and reader: ≈ 2 KB
 * of garbage per request on the Raft thread, and 0.56 against 0.32 µs to unpack a put
 * (docs/performance.md, session 17). Many objects of one shape (a txn of 128 puts) are
 * smaller and faster with records: packTransient's `records`. unpackTransient decodes both,
 * and an entry written with records (by an older build) carries its definitions with it.
 */
const plainPackr = new Packr({ useRecords: false, moreTypes: false, int64AsType: 'number' });

/** EnvelopeKind tells the receiver what to do with an envelope. */
export const enum EnvelopeKind {
  /** Send: fire-and-forget message. */
  Send = 0,
  /** Ask: a request; the receiver answers with Reply or ReplyError to `from` with `id`. */
  Ask = 1,
  /** Reply: the answer to an Ask. */
  Reply = 2,
  /** ReplyError: the Ask failed with a typed error ({code, message}). */
  ReplyError = 3,
}

/** Envelope is [kind, id, from, body] — id and from are 0/'' for Send — plus, only on a traced
 * message, a fifth element: its TraceField (src/runtime/trace.ts). Untraced, the fifth element
 * is absent, not nil: tracing off adds no byte to any message. */
export type Envelope = [EnvelopeKind, number, string, unknown, TraceField?];

/**
 * MovedBytes marks bytes that cross to another thread beside a batch instead of inside it:
 * their ArrayBuffer is transferred (moved, not copied) and the batch holds only their place
 * in the list. A 1,000,000-key snapshot body (≈ 170 MB) packed into a batch cost two copies
 * on the sending thread (into msgpack's scratch buffer, then out of it) before anyone could
 * read it. The sender gives the WHOLE ArrayBuffer under the view away: make one with
 * moveBytes only from a buffer nothing else on the thread will touch again (or moveCopy).
 * Outside a batch (pack) their bytes are written inline, behind the extension's tag, and read
 * back as plain bytes; only the batches between threads ever carry them.
 */
export class MovedBytes extends Uint8Array {}

/** movedBytesMin: smaller bytes are packed as before: a copy that small is cheaper than a
 * transfer, and a small Buffer may live in Node's shared pool, which must never move. */
export const movedBytesMin = 64 * 1024;

/** moveBytes wraps bytes (the same memory, no copy) to be moved by the next batch, when they
 * are large enough to be worth it (movedBytesMin). Bytes in shared memory are not moved but
 * shared: the receiver gets a view of the same memory (a shard's dump viewing its value
 * arena, KvColumns.valuePiecesOf), and the sender must never change those bytes. */
export function moveBytes(bytes: Uint8Array): Uint8Array {
  if (bytes.length < movedBytesMin) return bytes;
  return new MovedBytes(bytes.buffer as ArrayBuffer, bytes.byteOffset, bytes.length);
}

/** isShared: the bytes are a view of shared memory (a SharedArrayBuffer). */
export function isShared(bytes: Uint8Array): boolean {
  return bytes.buffer instanceof SharedArrayBuffer;
}

/** moveCopy is moveBytes of a copy, for bytes the sender keeps: large ones cost one copy
 * here instead of two in the batch; small ones go as they are (packed, one copy). */
export function moveCopy(bytes: Uint8Array): Uint8Array {
  return bytes.length < movedBytesMin ? bytes : moveBytes(bytes.slice());
}

/** ownsBuffer: the bytes are the whole of an ArrayBuffer (not shared memory, not a view into a
 * larger buffer that other views may hold), so that buffer may be transferred or freed. */
export function ownsBuffer(bytes: Uint8Array): boolean {
  const buf = bytes.buffer;
  return buf instanceof ArrayBuffer && bytes.byteOffset === 0 &&
    bytes.byteLength === buf.byteLength;
}

/**
 * releaseBytes frees the memory under bytes now, without waiting for a garbage collection,
 * when they own their whole ArrayBuffer (moved bytes do): the buffer is transferred into a
 * message on a channel that is closed at once, and the discarded message frees it. A large
 * buffer dropped by a thread about to do more work (a shard's restore dump, 170 MB with a
 * million keys) otherwise stays resident until its next full collection. The caller must hold
 * no other view of the buffer: any becomes empty. It reports whether the memory was freed.
 */
export function releaseBytes(bytes: Uint8Array): boolean {
  if (!ownsBuffer(bytes) || bytes.byteLength < movedBytesMin) return false;
  const { port1, port2 } = new MessageChannel();
  port1.postMessage(null, [bytes.buffer as ArrayBuffer]);
  port1.close();
  port2.close();
  return true;
}

/** movedExtensionType: msgpackr extension 'm' (free among msgpackr's own). */
const movedExtensionType = 0x6d;
/** packingMoved / unpackingMoved: the side list of the batch being packed or unpacked. */
let packingMoved: Uint8Array[] | undefined;
let unpackingMoved: readonly Uint8Array[] | undefined;

addExtension({
  Class: MovedBytes,
  type: movedExtensionType,
  write(m: MovedBytes): number | Uint8Array {
    const plain = new Uint8Array(m.buffer, m.byteOffset, m.length);
    if (packingMoved === undefined) return plain;
    packingMoved.push(plain);
    return packingMoved.length - 1;
  },
  read(x: number | Uint8Array): Uint8Array {
    if (typeof x !== 'number') return x;
    const bytes = unpackingMoved?.[x];
    if (bytes === undefined) throw new Error(`moved bytes #${x} missing beside the batch`);
    return bytes;
  },
});

/** packBatch encodes envelopes into a fresh buffer the caller may transfer. With `moved`,
 * the MovedBytes inside are appended to it (to be transferred beside the batch) instead of
 * packed. */
export function packBatch(batch: Envelope[], moved?: Uint8Array[]): Uint8Array {
  // pack() returns a view into a reused buffer; copy so the next pack cannot overwrite it
  // while the receiver still reads it (and so it can be transferred, not cloned).
  packingMoved = moved;
  try {
    return packOut(batch, newBytes);
  } finally {
    packingMoved = undefined;
  }
}

/**
 * shrinkAfterLargePack gives msgpackr a small scratch buffer again after a large pack: it
 * keeps the buffer it grew for its largest output for good, so one snapshot dump (100+ MiB
 * with a million keys) used to stay resident as scratch space on every thread that packed it.
 */
function shrinkAfterLargePack(packer: Packr, packedBytes: number): void {
  if (packedBytes > packScratchBytesMax) packer.useBuffer(Buffer.allocUnsafeSlow(8192));
}

/** unpackBatch decodes a batch, with the bytes moved beside it; throws on malformed input (a
 * bug: every actor is our own code). */
export function unpackBatch(buf: Uint8Array, moved?: readonly Uint8Array[]): Envelope[] {
  unpackingMoved = moved;
  try {
    return packr.unpack(buf) as Envelope[];
  } finally {
    unpackingMoved = undefined;
  }
}

/** pack / unpack encode single values (Raft entry payloads, snapshots, WAL bodies). */
export function pack(value: unknown): Uint8Array {
  return packOut(value, newBytes);
}

/**
 * packWithBins encodes {...head, [key]: bins} as parts whose concatenation is that value's
 * msgpack: the packed head with `key` last, then each bin's header and the bin itself, never
 * copied. A bin may be given as parts (packBinFieldsApart's), whose concatenation is the bin.
 * A snapshot body (a million keys: 170 MB of shard dumps) is written to its file and
 * checksummed part by part instead of being packed into one more buffer. `head` must not
 * already hold `key`.
 */
export function packWithBins(head: object, key: string,
  bins: readonly (Uint8Array | readonly Uint8Array[])[]): Uint8Array[] {
  if (Object.hasOwn(head, key)) throw new Error(`packWithBins: head already has ${key}`);
  const n = bins.length;
  if (n > 0xffff) throw new Error('packWithBins: too many bins');
  const packed = pack({ ...head, [key]: [] });
  // The empty array is the last thing msgpackr wrote: fixarray 0 (0x90). It is replaced by
  // the array's real header: fixarray n, or array 16.
  if (packed[packed.length - 1] !== 0x90) throw new Error('packWithBins: unexpected encoding');
  const parts: Uint8Array[] = [packed.subarray(0, packed.length - 1),
    Uint8Array.from(n < 16 ? [0x90 | n] : [0xdc, n >>> 8, n & 0xff])];
  for (const b of bins) {
    const pieces = b instanceof Uint8Array ? [b] : b;
    parts.push(binHeader(pieces.reduce((sum, p) => sum + p.length, 0)), ...pieces);
  }
  return parts;
}

/**
 * packBinFieldsApart encodes a flat object as parts whose concatenation is its msgpack, with
 * each bytes field of movedBytesMin or more left out of the packing: the part is the field's
 * own bytes, never copied. A shard's dump (≈ 130 MB of columns with a million keys) is moved
 * to the WAL writer as its columns instead of being packed into one more buffer of its size
 * first. The large fields come last in the encoding (a decoder reads fields by name).
 */
export function packBinFieldsApart(value: object): Uint8Array[] {
  const rest: Record<string, unknown> = {};
  const apart: Uint8Array[] = [];
  const names: string[] = [];
  for (const [name, v] of Object.entries(value)) {
    if (v instanceof Uint8Array && v.length >= movedBytesMin) {
      apart.push(v);
      names.push(name);
    } else {
      rest[name] = v;
    }
  }
  // Each large field is packed as an empty bin (bin 8 of length 0: 0xc4 0x00): they are the
  // last values msgpackr writes, and their headers are replaced by the real ones.
  for (const name of names) rest[name] = new Uint8Array(0);
  const packed = pack(rest);
  const head = packed.length - 2 * apart.length;
  for (let i = head; i < packed.length; i += 2) {
    if (packed[i] !== 0xc4 || packed[i + 1] !== 0) {
      throw new Error('packBinFieldsApart: unexpected encoding');
    }
  }
  const parts = [packed.subarray(0, head)];
  for (const b of apart) parts.push(binHeader(b.length), b);
  return parts;
}

/** binHeader is msgpack's bin 32 header for n bytes: 0xc6 and the length, big-endian. */
function binHeader(n: number): Uint8Array {
  const h = new Uint8Array(5);
  h[0] = 0xc6;
  new DataView(h.buffer).setUint32(1, n);
  return h;
}

/**
 * packTransient encodes a small value that is copied again before anything keeps it (a
 * request's bytes inside a batch, framed into an entry by the Raft node). Its copy out of
 * msgpackr's scratch buffer comes from Node's shared 8 KiB pool (Buffer.allocUnsafe) instead
 * of a new ArrayBuffer: a fresh backing store for 100+ bytes (V8 keeps only ≤ 64 on its heap)
 * cost ≈ 1.2 µs per PUT on the gateway (docs/performance.md, "Session 5"). The result must
 * not be transferred (its buffer is the pool's) nor kept for long (it pins the pool's slab).
 */
export function packTransient(value: unknown, records = false): Uint8Array {
  return packOut(value, poolBytes, records ? packr : plainPackr);
}

/** poolBytes: a copy in Node's shared buffer pool (see packTransient). */
function poolBytes(n: number): Uint8Array {
  return Buffer.allocUnsafe(n);
}

/** newBytes: a copy with its own ArrayBuffer (it may be kept or transferred). */
function newBytes(n: number): Uint8Array {
  return new Uint8Array(n);
}

/** packOut encodes value and copies it out of msgpackr's scratch buffer into alloc(n). */
function packOut(value: unknown, alloc: (n: number) => Uint8Array, packer = packr): Uint8Array {
  const view = packer.pack(value);
  const out = alloc(view.length);
  out.set(view);
  shrinkAfterLargePack(packer, view.length);
  return out;
}

export function unpack<T>(buf: Uint8Array): T {
  const value = packr.unpack(buf) as T;
  // msgpackr keeps a DataView of the last buffer it read until it reads another: on a thread
  // that then goes quiet (a shard after its restore), a dump in shared memory (a snapshot
  // file's body, 190 MiB with a million keys) stayed alive for as long. A nil read drops it.
  if (buf.length >= movedBytesMin) packr.unpack(nilBytes);
  return value;
}

/** nilBytes is msgpack's nil, read to make msgpackr forget its last source (unpack). */
const nilBytes = Uint8Array.of(0xc0);

/** unpackTransient decodes what packTransient wrote (plain maps decode as objects, where
 * `unpack` gives Maps) and what pack wrote of plain objects (records define themselves). */
export function unpackTransient<T>(buf: Uint8Array): T {
  return plainPackr.unpack(buf) as T;
}
