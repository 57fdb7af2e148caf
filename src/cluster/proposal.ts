import type { ProposalRequest } from '../../actors/raft/messages.js';
import type { ConfState } from '../raft/index.js';
import { entryBytes } from '../raft/entry-slab.js'; // not the index: no Raft core here
import { ownedBytes } from '../mvcc/owned-bytes.js';
import type { RequestOp } from '../mvcc/types.js';
import {
  pack, packTransient, packWithBins, unpack, unpackTransient,
} from '../runtime/codec.js';
import { ErrSnapshotCorrupt } from '../errors.js';
import { bodyRegions, encodeSplitBodyPrefix } from '../wal/snapshot-format.js';
import { SnapshotCorruptError } from '../wal/errors.js';
import type { Member, MembershipJson } from './membership.js';
import type { AuthStateJson } from '../auth/store.js';
import type { AlarmMember } from '../alarms.js';

/**
 * proposal: what a normal Raft entry's data holds, and what a snapshot's body holds. Both
 * are persisted (WAL, snapshot files) and replicated, so their shape is a file format:
 * fields are short and only ever added.
 */

/** ProposalId identifies the proposer of an entry (member id, boot nonce, sequence), so that
 * only the node that proposed it answers the client. */
export interface ProposalId {
  m: number;
  b: number;
  n: number;
}

/** Proposal is a decoded entry: who proposed it and the request. */
export interface Proposal extends ProposalId {
  req: ProposalRequest;
}

/** proposalHeaderBytes: m (float64), b (int32), n (float64), then the msgpack request. */
const proposalHeaderBytes = 20;

/** encodeRequest encodes a request as it travels inside an entry. The bytes are transient
 * (codec.ts packTransient): a batch or encodeProposal copies them before they are kept. A
 * request of many operations is packed with records (codec.ts plainPackr): a txn of 128
 * puts is 12 % smaller and decodes twice as fast; one of a few, slower with them. */
export function encodeRequest(req: ProposalRequest): Uint8Array {
  return packTransient(req, requestOps(req) >= requestRecordsOpsMin);
}

/** requestRecordsOpsMin: from this many operations a request is packed with records; where
 * the two encodings decode equally fast (a txn of 16 puts, measured in session 17). */
const requestRecordsOpsMin = 16;

/** requestOps: a request's operations and compares at its top level (1 for a plain one). */
function requestOps(req: ProposalRequest): number {
  const r = req.type === 'authed' ? req.req : req;
  return r.type === 'txn' ? r.compare.length + r.success.length + r.failure.length : 1;
}

/** encodeProposal frames an encoded request with its proposer's identity, in a slab of
 * entries (src/raft/entry-slab.ts), where the Raft log keeps it as it is. */
export function encodeProposal(id: ProposalId, req: Uint8Array): Uint8Array {
  const out = entryBytes(proposalHeaderBytes + req.length);
  const v = new DataView(out.buffer, out.byteOffset, out.byteLength);
  v.setFloat64(0, id.m);
  v.setInt32(8, id.b);
  v.setFloat64(12, id.n);
  out.set(req, proposalHeaderBytes);
  return out;
}

/** decodeProposal reads an entry written by encodeProposal. The request's keys are strings
 * of their own (ownKeys), as the apply searches the key map for each. */
export function decodeProposal(data: Uint8Array): Proposal {
  const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const req = unpackTransient<ProposalRequest>(data.subarray(proposalHeaderBytes));
  ownKeys(req.type === 'authed' ? req.req : req);
  return { m: v.getFloat64(0), b: v.getInt32(8), n: v.getFloat64(12), req };
}

/** ownKeys replaces, in place, the keys and range ends of a decoded KV request (a txn's
 * compares and operations included) by strings of their own: as decoded they are slices of
 * the message's strings, which V8 compares several times slower (ownedBytes). */
function ownKeys(req: ProposalRequest | RequestOp): void {
  switch (req.type) {
    case 'put':
      req.key = ownedBytes(req.key);
      return;
    case 'range':
    case 'deleteRange':
      req.key = ownedBytes(req.key);
      if (req.rangeEnd !== undefined) req.rangeEnd = ownedBytes(req.rangeEnd);
      return;
    case 'txn':
      for (const c of req.compare) {
        c.key = ownedBytes(c.key);
        if (c.rangeEnd !== undefined) c.rangeEnd = ownedBytes(c.rangeEnd);
      }
      for (const op of req.success) ownKeys(op);
      for (const op of req.failure) ownKeys(op);
      return;
    default:
      return; // no key that the apply searches for
  }
}

/** SnapshotBody is the application state at a snapshot's index: the store's revisions, the
 * leases that exist, the membership, and one dump per shard (msgpack of ShardStore). The
 * shard count is the snapshotting member's: a member with another count re-partitions the
 * dumps by key when it loads them (src/mvcc/repartition.ts), so members on machines with
 * different core counts exchange snapshots. */
export interface SnapshotBody {
  revision: number;
  compactRevision: number;
  /** leases: every granted lease with its TTL in seconds. */
  leases: { id: number; ttl: number }[];
  confState: ConfState;
  shards: Uint8Array[];
  /** members: the member table (absent in snapshots written before clusters existed). */
  members?: MembershipJson;
  /** leaseCheckpoints: [lease id, remaining seconds] of checkpointed leases (etcd 3.6). */
  leaseCheckpoints?: [number, number][];
  /** auth: users, roles, permissions and the auth revision (absent in snapshots written
   * before auth existed: auth disabled, no users). */
  auth?: AuthStateJson;
  /** alarms: every member's active alarms (absent in snapshots written before alarms were
   * replicated: none). */
  alarms?: AlarmMember[];
  /** valueRegions: in a split body (snapshotBodyParts), the byte length of each shard dump's
   * values, which lie in the body's tail one after the other in shard order, not in the
   * dumps (absent in bodies written before the split: each dump holds its values). */
  valueRegions?: number[];
}

/** DecodedSnapshotBody is a SnapshotBody as decodeSnapshotBody gives it: with each shard
 * dump's values when the body keeps them apart. */
export interface DecodedSnapshotBody extends SnapshotBody {
  /** shardValues: views of a split body's tail, one per dump (valueRegions); not stored. */
  readonly shardValues?: readonly Uint8Array[];
}

/**
 * snapshotBodyParts lays out a snapshot body as parts to write one after the other: split
 * (src/wal/snapshot-format.ts), its head the metadata and the shards' dumps without their
 * values (each dump as packBinFieldsApart's parts), its tail every dump's values (each as
 * pieces) in shard order. A member restarting from the file reads the tail into memory of
 * its own, which the stores keep reading values from, and the head into memory that goes
 * once the stores have copied their keys and columns out of it.
 */
export function snapshotBodyParts(meta: Omit<SnapshotBody, 'shards' | 'valueRegions'>,
  dumps: readonly (readonly Uint8Array[])[], values: readonly (readonly Uint8Array[])[]):
  Uint8Array[] {
  const valueRegions = values.map((v) => v.reduce((n, p) => n + p.length, 0));
  const head = packWithBins({ ...meta, valueRegions }, 'shards' satisfies keyof SnapshotBody,
    dumps);
  const headLength = head.reduce((n, p) => n + p.length, 0);
  return [encodeSplitBodyPrefix(headLength), ...head, ...values.flat()];
}

/**
 * decodeSnapshotBody decodes a snapshot body, given whole (a leader's) or as a file read in
 * two regions (`tail`, snapshot-format.ts); a split body's dumps get their values as views of
 * the tail (shardValues). Throws ErrSnapshotCorrupt when the regions do not add up.
 */
export function decodeSnapshotBody(bytes: Uint8Array, tail?: Uint8Array): DecodedSnapshotBody {
  let regions;
  try {
    regions = bodyRegions(bytes, tail);
  } catch (e) {
    if (!(e instanceof SnapshotCorruptError)) throw e;
    throw new ErrSnapshotCorrupt(e.reason);
  }
  const body = unpack<SnapshotBody>(regions.head);
  if (typeof body !== 'object' || body === null) throw new ErrSnapshotCorrupt('body not a map');
  const lens = body.valueRegions;
  if (regions.tail === undefined) {
    if (lens !== undefined) throw new ErrSnapshotCorrupt('value regions without a tail');
    return body;
  }
  if (!Array.isArray(lens) || !Array.isArray(body.shards) ||
    lens.length !== body.shards.length ||
    !lens.every((n) => Number.isSafeInteger(n) && n >= 0)) {
    throw new ErrSnapshotCorrupt('value regions do not match the shard dumps');
  }
  const shardValues: Uint8Array[] = [];
  let at = 0;
  for (const n of lens) {
    shardValues.push(regions.tail.subarray(at, at + n));
    at += n;
  }
  if (at !== regions.tail.length) throw new ErrSnapshotCorrupt('value regions do not add up');
  return { ...body, shardValues };
}

/** ConfChangeContext is what an EntryConfChange's context holds: the member the change is
 * about (its URLs, for the peer transport) and who proposed it, to answer the client. */
export interface ConfChangeContext {
  member: Member;
  /** p: the proposer (absent in bootstrap entries). */
  p?: ProposalId;
}

/** encodeConfChangeContext encodes a conf change's context. */
export function encodeConfChangeContext(c: ConfChangeContext): Uint8Array {
  return pack(c);
}

/** decodeConfChangeContext reads a context written by encodeConfChangeContext; undefined for
 * an empty or foreign one. */
export function decodeConfChangeContext(b: Uint8Array | undefined): ConfChangeContext | undefined {
  if (b === undefined || b.length === 0) return undefined;
  try {
    const c = unpack<ConfChangeContext>(b);
    if (typeof c !== 'object' || c === null || typeof c.member?.id !== 'number') return undefined;
    return c;
  } catch {
    return undefined;
  }
}
