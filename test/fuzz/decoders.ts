import fc from 'fast-check';
import { peerFrameBytesMax } from '../../src/constants.js';
import {
  checkHandshake, FrameDecoder, FrameTooLargeError, frameHeader, type StreamFrame, wireVersion,
} from '../../src/cluster/wire.js';
import { validateMessage } from '../../src/raft/validate.js';
import type { Message } from '../../src/raft/index.js';
import { pack, unpack } from '../../src/runtime/codec.js';
import type { Index, MemberId, Term } from '../../src/types.js';
import {
  crc32cUpdate, decodeSnapshotFile, encodeSegmentHead, encodeSnapshotFile, foldWal, readWal,
  SnapshotCorruptError, usableSnapshotMarkers, WalCorruptError, WalEncoder, type WalRecordInput,
  walSegmentName,
} from '../../src/wal/index.js';
import { getU32, putU32 } from '../../src/wal/little-endian.js';

/**
 * Fuzzing of the decoders that read what the outside world wrote: WAL segments and snapshot
 * files (a damaged disk) and peer frames (another member, or anything that connects to the
 * peer port). Each property starts from a VALID input — generated, so every record type and
 * frame shape occurs — and mutates it: bit flips, truncation, bytes inserted, length fields and
 * other 32-bit words overwritten with edge values; and, so that the checks behind the CRCs are
 * reached too, mutations whose CRCs are recomputed (a corruption a CRC cannot see). The
 * invariant: the decoder returns a value or throws the module's typed error (WalCorruptError,
 * SnapshotCorruptError, FrameTooLargeError), never anything else (RangeError, TypeError, an
 * assertion), and within decodeMsMax (no loop). An unmutated input must decode to itself.
 */

/** decodeMsMax bounds one decode of these small inputs (kilobytes): a hang is a failure. */
export const decodeMsMax = 2_000;

/** Mutation is one edit of a byte string; positions are fractions of its length. */
export type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'word'; at: number; value: number }
  | { kind: 'zero'; at: number; len: number };

/** edgeWords are 32-bit values that hit length and bound checks. */
const edgeWords = [0, 1, 4, 5, 7, 8, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 0x1fffff,
  0x200000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];

/** mutationArb generates one mutation. */
export const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.double({ min: 0, max: 1, noNaN: true }),
    bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('truncate' as const),
    at: fc.double({ min: 0, max: 1, noNaN: true }) }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.double({ min: 0, max: 1, noNaN: true }),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
  fc.record({ kind: fc.constant('word' as const), at: fc.double({ min: 0, max: 1, noNaN: true }),
    value: fc.oneof(fc.constantFrom(...edgeWords), fc.integer({ min: 0, max: 0xffffffff })) }),
  fc.record({ kind: fc.constant('zero' as const), at: fc.double({ min: 0, max: 1, noNaN: true }),
    len: fc.integer({ min: 1, max: 64 }) }),
);

/** mutate applies mutations in order to a copy of b. A word lands on a 4-aligned offset, where
 * the formats keep their lengths and CRCs. */
export function mutate(b: Uint8Array, ms: readonly Mutation[]): Uint8Array {
  let out = b.slice();
  for (const m of ms) {
    const pos = Math.min(out.length, Math.floor(m.at * out.length));
    switch (m.kind) {
      case 'flip':
        if (pos < out.length) out[pos]! ^= 1 << m.bit;
        break;
      case 'truncate':
        out = out.slice(0, pos);
        break;
      case 'insert': {
        const n = new Uint8Array(out.length + m.bytes.length);
        n.set(out.subarray(0, pos), 0);
        n.set(m.bytes, pos);
        n.set(out.subarray(pos), pos + m.bytes.length);
        out = n;
        break;
      }
      case 'word': {
        const p = pos & ~3;
        if (p + 4 <= out.length) putU32(out, p, m.value >>> 0);
        break;
      }
      case 'zero':
        out.fill(0, pos, Math.min(out.length, pos + m.len));
        break;
    }
  }
  return out;
}

/** timed runs fn and fails when it took longer than decodeMsMax. */
function timed<T>(what: string, fn: () => T): T {
  const t0 = performance.now();
  try {
    return fn();
  } finally {
    const ms = performance.now() - t0;
    if (ms > decodeMsMax) throw new Error(`${what} took ${ms.toFixed(0)} ms (> ${decodeMsMax})`);
  }
}

// ---- WAL ----

/** WalInput is a valid WAL of 1–3 segments, the records it holds, and how to damage it. */
export interface WalInput {
  segments: { name: string; bytes: Uint8Array }[];
  /** target: the segment to mutate (index into segments). */
  target: number;
  mutations: Mutation[];
  /** fixCrcs: recompute every record's CRC after the mutations (when the frames allow). */
  fixCrcs: boolean;
}

const walRecordArb = (i: number): fc.Arbitrary<WalRecordInput> => fc.oneof(
  { weight: 6, arbitrary: fc.record({
    term: fc.integer({ min: 1, max: 5 }), type: fc.constantFrom(0, 1, 2) as fc.Arbitrary<0 | 1 | 2>,
    data: fc.uint8Array({ maxLength: 40 }),
  }).map(({ term, type, data }) => ({
    type: 'entry' as const,
    entry: { term: term as Term, index: i as Index, type, data },
  })) },
  { weight: 2, arbitrary: fc.record({ term: fc.integer({ min: 1, max: 5 }),
    vote: fc.integer({ min: 0, max: 3 }), commit: fc.integer({ min: 0, max: i }) })
    .map((s) => ({ type: 'state' as const, state: {
      term: s.term as Term, vote: s.vote as MemberId, commit: s.commit as Index } })) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 5 }).map((term) => ({
    type: 'snapshot' as const, index: Math.max(0, i - 1) as Index, term: term as Term })) },
);

/** walInputArb generates a valid WAL and its damage. */
export const walInputArb: fc.Arbitrary<WalInput> = fc.record({
  count: fc.integer({ min: 1, max: 30 }),
  cuts: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 2 }),
  seed: fc.integer(),
  mutations: fc.array(mutationArb, { minLength: 0, maxLength: 4 }),
  target: fc.double({ min: 0, max: 1, noNaN: true }),
  fixCrcs: fc.boolean(),
}).chain((p) => fc.tuple(...Array.from({ length: p.count }, (_, i) => walRecordArb(i + 1)))
  .map((records) => {
    // Entry indexes run 1, 2, 3 … over the entries only (the others keep what they drew).
    let index = 0;
    const recs = records.map((r) => r.type === 'entry'
      ? { ...r, entry: { ...r.entry, index: ++index as Index } } : r);
    const cuts = [...new Set(p.cuts.map((c) => Math.floor(c * recs.length)))].sort((a, b) => a - b);
    const parts: WalRecordInput[][] = [];
    let from = 0;
    for (const c of [...cuts, recs.length]) {
      if (c > from || parts.length === 0) parts.push(recs.slice(from, Math.max(from, c)));
      from = Math.max(from, c);
    }
    let crc = 0;
    let first = 0;
    const segments = parts.map((part, seq) => {
      const enc = new WalEncoder(crc, 1024);
      encodeSegmentHead(enc, crc, { nodeId: 1 as MemberId, clusterId: 7 }, undefined);
      for (const r of part) enc.add(r);
      const name = walSegmentName(seq, first);
      for (const r of part) if (r.type === 'entry') first = r.entry.index;
      crc = enc.crc;
      return { name, bytes: enc.bytes().slice() };
    });
    return {
      segments, mutations: p.mutations, fixCrcs: p.fixCrcs,
      target: Math.min(segments.length - 1, Math.floor(p.target * segments.length)),
    };
  }));

/** recrc rewrites the CRC of every record whose frame still reads as one, chaining from the
 * segment's first record (its seed); it stops at the first frame that does not fit. */
export function recrc(b: Uint8Array): void {
  let off = 0;
  let crc: number | undefined;
  while (off + 8 + 5 <= b.length) {
    const len = getU32(b, off);
    if (len < 5 || off + 8 + len > b.length) return;
    const body = off + 8;
    const seed = crc ?? getU32(b, body + 5 <= b.length - 4 ? body + 5 : body);
    crc = crc32cUpdate(seed, b, body + 4, body + len);
    putU32(b, body, crc);
    off = body + len + ((8 - (len % 8)) % 8);
  }
}

/** walProperty: a damaged WAL is read and replayed, or refused with WalCorruptError. */
export function walProperty(input: WalInput): void {
  const segments = input.segments.map((s, i) => {
    if (i !== input.target || input.mutations.length === 0) return s;
    const bytes = mutate(s.bytes, input.mutations);
    if (input.fixCrcs) recrc(bytes);
    return { name: s.name, bytes };
  });
  try {
    timed('WAL recovery', () => {
      const scan = readWal(segments);
      const marker = usableSnapshotMarkers(scan)[0];
      foldWal(scan, undefined);
      if (marker !== undefined) foldWal(scan, marker);
    });
  } catch (e) {
    const damaged = input.mutations.length > 0 && segments.length > 0;
    if (e instanceof WalCorruptError && damaged) return;
    throw e;
  }
}

// ---- Snapshot files ----

/** SnapInput is a valid snapshot file's parts and its damage. */
export interface SnapInput {
  term: number;
  index: number;
  body: Uint8Array;
  mutations: Mutation[];
  /** fixCrcs: recompute the body's and the header's CRC after the mutations. */
  fixCrcs: boolean;
  /** expect: pass the file name's term and index to the decoder. */
  expect: boolean;
}

/** snapInputArb generates a snapshot file and its damage. */
export const snapInputArb: fc.Arbitrary<SnapInput> = fc.record({
  term: fc.integer({ min: 0, max: 2 ** 40 }),
  index: fc.integer({ min: 0, max: 2 ** 40 }),
  body: fc.uint8Array({ maxLength: 200 }),
  mutations: fc.array(mutationArb, { maxLength: 4 }),
  fixCrcs: fc.boolean(),
  expect: fc.boolean(),
});

/** snapProperty: a damaged snapshot file decodes or is refused with SnapshotCorruptError. */
export function snapProperty(input: SnapInput): void {
  const valid = encodeSnapshotFile(input.term, input.index, input.body);
  const bytes = mutate(valid, input.mutations);
  if (input.fixCrcs && bytes.length >= 48) {
    putU32(bytes, 12, crc32cUpdate(0, bytes, 48, bytes.length));
    putU32(bytes, 40, crc32cUpdate(0, bytes, 0, 40));
  }
  const expect = input.expect ? { term: input.term, index: input.index } : undefined;
  try {
    const f = timed('snapshot decode', () => decodeSnapshotFile(bytes, 'fuzz.snap', expect));
    if (input.mutations.length === 0 && (f.term !== input.term || f.index !== input.index)) {
      throw new Error('an undamaged snapshot file decoded to other values');
    }
  } catch (e) {
    if (e instanceof SnapshotCorruptError) return;
    throw e;
  }
}

// ---- Peer frames ----

/** PeerInput is a valid peer stream (a handshake then stream frames), its damage, and the
 * chunks it arrives in. */
export interface PeerInput {
  bytes: Uint8Array;
  mutations: Mutation[];
  /** chunks: where the stream is cut as it arrives (fractions). */
  chunks: number[];
}

const messageArb: fc.Arbitrary<Message> = fc.record({
  type: fc.integer({ min: 0, max: 19 }),
  to: fc.constantFrom(1, 2), from: fc.constantFrom(1, 2),
  term: fc.nat(9), logTerm: fc.nat(9), index: fc.nat(99), commit: fc.nat(99),
  reject: fc.boolean(), rejectHint: fc.nat(9),
  entries: fc.array(fc.record({
    term: fc.nat(9), index: fc.nat(99), type: fc.constantFrom(0, 1),
    data: fc.uint8Array({ maxLength: 20 }),
  }), { maxLength: 3 }),
}) as unknown as fc.Arbitrary<Message>;

const frameArb: fc.Arbitrary<StreamFrame> = fc.record({
  m: fc.array(messageArb, { maxLength: 3 }),
  q: fc.array(fc.record({ id: fc.nat(), target: fc.constantFrom('lease', 'raft', 'kv'),
    msg: fc.record({ type: fc.constantFrom('LeaseKeepAlive', 'Nope'), id: fc.nat() }) }),
  { maxLength: 2 }),
  p: fc.double({ noNaN: true }),
}, { requiredKeys: [] });

/** peerInputArb generates a peer stream and its damage. */
export const peerInputArb: fc.Arbitrary<PeerInput> = fc.record({
  frames: fc.array(frameArb, { minLength: 1, maxLength: 4 }),
  kind: fc.constantFrom('stream', 'snap', 'join'),
  mutations: fc.array(mutationArb, { maxLength: 4 }),
  chunks: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 4 }),
}).map(({ frames, kind, mutations, chunks }) => {
  const bodies = [pack({ v: wireVersion, kind, cluster: 7, from: 2, to: 1 }),
    ...frames.map((f) => pack(f))];
  const parts: Uint8Array[] = [];
  for (const b of bodies) parts.push(frameHeader(b.length), b);
  const bytes = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    bytes.set(p, off);
    off += p.length;
  }
  return { bytes, mutations, chunks };
});

/** peerProperty: the peer actor's reading of a damaged stream — frames cut by FrameDecoder
 * (FrameTooLargeError on a huge length), each body unpacked (a throw there closes the
 * connection: 'undecodable frame'), the handshake checked, the Raft messages validated — never
 * throws anything else and never hangs. */
export function peerProperty(input: PeerInput): void {
  const bytes = mutate(input.bytes, input.mutations);
  const cuts = [...new Set(input.chunks.map((c) => Math.floor(c * bytes.length)))]
    .sort((a, b) => a - b);
  const dec = new FrameDecoder(peerFrameBytesMax);
  const local = { selfId: 1, clusterId: 7, isMember: (id: number) => id === 2,
    isRemoved: (id: number) => id === 3 };
  let first = true;
  timed('peer decode', () => {
    let from = 0;
    for (const c of [...cuts, bytes.length]) {
      let bodies: Uint8Array[];
      try {
        bodies = dec.push(bytes.subarray(from, c));
      } catch (e) {
        if (e instanceof FrameTooLargeError) return; // the connection is closed
        throw e;
      }
      from = c;
      for (const body of bodies) {
        let v: unknown;
        try {
          v = unpack(body);
        } catch {
          return; // 'undecodable frame': the connection is closed
        }
        if (first) {
          first = false;
          checkHandshake(v, local);
          continue;
        }
        const f = v as StreamFrame;
        if (typeof f !== 'object' || f === null || !Array.isArray(f.m)) continue;
        for (const m of f.m) validateMessage(m as Message);
      }
    }
  });
}

/** decoderTargets names each decoder property with its arbitrary, for the test and the long
 * mode. */
export const decoderTargets = [
  { name: 'wal', arb: walInputArb, run: walProperty },
  { name: 'snapshot', arb: snapInputArb, run: snapProperty },
  { name: 'peer', arb: peerInputArb, run: peerProperty },
] as const;
