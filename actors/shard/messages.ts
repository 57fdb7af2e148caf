import { assert } from '../../src/assert.js';
import type {
  Change, KeyValue, RangeRequest, RangeResponse, SharedValues,
} from '../../src/mvcc/types.js';
import type { SharedArena } from '../../src/mvcc/kv-columns.js';
import type { Applier } from '../../src/mvcc/applier.js';
import type { ShardDigestPage, ShardStore } from '../../src/mvcc/shard-store.js';
import { moveBytes, movedBytesMin } from '../../src/runtime/codec.js';
import { shardOf } from '../../src/mvcc/shard-of.js';
import type { LeaseId, Revision } from '../../src/types.js';

/**
 * The storage shard's protocol. A shard owns the keys that hash to it (shardOf) and keeps
 * their MVCC history; the Raft node feeds it the changes of every applied revision, in log
 * order, and the gateway reads from it.
 */

/** AppliedRevision is one write transaction's changes for this shard (possibly none: every
 * shard still advances to the revision, so all shards agree on the current revision). */
export interface AppliedRevision {
  revision: number;
  changes: Change[];
  /** subs: each change's sub revision (its place in the whole transaction), sent only when
   * the transaction's changes went to more than one shard; absent: 0, 1, 2 ... */
  subs?: number[];
  /** compact, when set, is a compaction to this revision applied after the changes. */
  compact?: number;
  /** shared: the changes whose values were left in ShardApply.arena (decodeApplied without
   * the arena): their kv.value is empty, their bytes are there. */
  shared?: SharedValues;
}

/** ShardApply carries applied revisions in log order (Raft node → shard, send). */
export interface ShardApply {
  type: 'ShardApply';
  /** revisions: AppliedRevision[] in bytes (AppliedWriter, decodeApplied; below). */
  revisions: Uint8Array;
  /** index is the Raft log index this batch brings the shard to. A compaction changes the
   * store without a new revision, so reads wait on the index too (ShardRange.waitIndex). */
  index: number;
  /** arena, arenaId: the applier's value arena (a view of its shared memory, never copied)
   * and its id (KvColumns.sharedArena), when changes here leave their values in it. The view
   * goes in the first ShardApply into an arena; the next name it by id only (a view of shared
   * memory costs ≈ 0.7 µs to post and as much to receive). */
  arena?: Uint8Array;
  arenaId?: number;
  /** relocation: with `arena`, where the applier's rebuild that made it put the live values
   * of the arena before it (KvColumns.Relocation's table and fromId): the shard's rows there
   * move with them instead of being copied out. */
  relocation?: Uint8Array;
  relocatedFrom?: number;
}

/** ShardRange reads at a revision. The shard first waits until it has applied
 * waitRevision (the revision the Raft node had applied when the read was admitted), so a
 * linearizable read never runs against a shard that lags behind the read index. */
export interface ShardRange {
  type: 'ShardRange';
  req: RangeRequest;
  /** atRevision is the revision to read at (the request's, or the read index's). */
  atRevision: number;
  waitRevision: number;
  /** waitIndex: the Raft index of the last ShardApply sent when the read was admitted; the
   * shard waits for it as well (0: no wait). */
  waitIndex?: number;
  /** rewinds: the read point's count of rewinds, for a read that took the Raft node's
   * published point (ShardRewind); absent: a point that no rewind can take back. */
  rewinds?: number;
}

/** ShardPageRead reads a page of the shard's live keys at atRevision: the keys from `from`
 * (key order), at most `limit`. It waits as a ShardRange does. */
interface ShardPageRead {
  from: string;
  limit: number;
  atRevision: number;
  waitRevision: number;
  waitIndex?: number;
  rewinds?: number;
}

/** ShardDigest hashes a page of the shard's live keys for HashKV (ShardStore.digest with
 * src/grpc/digest.ts keyValueSpanHash). */
export interface ShardDigest extends ShardPageRead {
  type: 'ShardDigest';
}

/** ShardExport encodes a page of the shard's live keys for a snapshot file
 * (ShardStore.exportPage with src/grpc/wire.ts putKeyValueSpan). */
export interface ShardExport extends ShardPageRead {
  type: 'ShardExport';
}

/** ShardExportResp answers ShardExport: the key-values' mvccpb.KeyValue encodings back to
 * back (`bytes`), and `index`: each one's mod revision (float64, little-endian) then each
 * one's end offset in `bytes` (uint32, little-endian), `keys` of each; `last` as in
 * ShardDigestPage. `refused`: a key-value the fast encoder cannot write (read the general
 * way). */
export interface ShardExportResp {
  bytes: Uint8Array;
  index: Uint8Array;
  keys: number;
  last?: string;
  refused?: boolean;
}

/** ShardRangeEntries is a ShardRange whose answer the shard writes as bytes (for the gRPC
 * gateway; ShardStore.rangeEntries), for requests answered in key order (entriesRangeable). */
export interface ShardRangeEntries extends Omit<ShardRange, 'type'> {
  type: 'ShardRangeEntries';
}

/** ShardRangeEntriesResp answers ShardRangeEntries: the items of RangeResponse's kvs field
 * back to back (`bytes`), `ends` each one's end (uint32, little-endian), the shard's count,
 * whether it cut any; `refused`: a key-value the fast encoder cannot write (read the general
 * way). */
export interface ShardRangeEntriesResp {
  bytes: Uint8Array;
  ends: Uint8Array;
  count: number;
  more: boolean;
  refused?: boolean;
}

/** ShardRestore replaces the shard's state with a snapshot dump (or empty): at start-up, and
 * when a follower installs its leader's snapshot. */
export interface ShardRestore {
  type: 'ShardRestore';
  dump: Uint8Array | null;
  /** values: the dump's values, when the snapshot keeps them apart from its dumps. */
  values?: Uint8Array;
  /** index: the Raft index the dump reflects (reads waiting on an index compare with it). */
  index?: number;
}

/** ShardSnapshot asks for a dump of the shard's state after every revision sent so far. */
export interface ShardSnapshot {
  type: 'ShardSnapshot';
}

/** ShardHistory reads the changes of revisions [fromRevision, toRevision] in a key range
 * (watch catch-up). */
export interface ShardHistory {
  type: 'ShardHistory';
  fromRevision: number;
  toRevision: number;
  key: string;
  rangeEnd?: string;
  limit: number;
}

/** ShardStatsReq asks for size figures. */
export interface ShardStatsReq {
  type: 'ShardStats';
}

/**
 * ShardRewind: the Raft node took back entries it had applied ahead of their fsync (the
 * append failed), so no ShardApply will bring this shard past `index` and `revision` for
 * them. A read that took the read point moved ahead waits for exactly that: it fails with
 * READ_POINT_TAKEN_BACK, and the gateway reads again from a new point.
 */
export interface ShardRewind {
  type: 'ShardRewind';
  /** index, revision: the Raft index of the last ShardApply sent, and the store revision. */
  index: number;
  revision: number;
  /** rewinds: the Raft node's count of rewinds, this one included (the read point's). */
  rewinds: number;
}

export type ShardMsg = ShardApply | ShardRange | ShardRangeEntries | ShardDigest | ShardExport |
  ShardRestore | ShardSnapshot | ShardHistory | ShardStatsReq | ShardRewind;

/** ShardStatsResp are the shard's size figures. */
export interface ShardStatsResp {
  keys: number;
  revisions: number;
  bytes: number;
  currentRevision: number;
  compactRevision: number;
}

/** ShardHistoryResp: changes in revision order and the revision they reach. */
export interface ShardHistoryResp {
  changes: { revision: number; change: Change }[];
  /** throughRevision: every revision ≤ it (within the request's bounds) is included. */
  throughRevision: number;
}

/** ShardReplies maps each ask to its reply. */
export interface ShardReplies {
  ShardRange: RangeResponse;
  ShardRangeEntries: ShardRangeEntriesResp;
  ShardDigest: ShardDigestPage;
  ShardExport: ShardExportResp;
  ShardRestore: { revision: number };
  /** the dump's msgpack without its values, in parts (packBinFieldsApart), and its values
   * (the concatenation of the pieces) */
  ShardSnapshot: { dump: Uint8Array[]; values: Uint8Array[] };
  ShardHistory: ShardHistoryResp;
  ShardStats: ShardStatsResp;
}

/** ShardConfig is the shard thread's start-up configuration. */
export interface ShardConfig {
  index: number;
  count: number;
  logLevel: string;
  /** failpoints enables test-only faults (env GOFAIL_FAILPOINTS, as etcd's gofail):
   * 'shard-crash-on-read' crashes the shard thread on a read of the key "failpoint/crash". */
  failpoints?: string[];
}

/*
 * The applied revisions a shard is sent (ShardApply.revisions), as bytes of their
 * own rather than as msgpack objects. They are the busiest message the Raft thread packs: as
 * records, an AppliedRevision, its Change and its KeyValue cost ≈ 2 µs per PUT there
 * (docs/performance.md, session 21), most of it spent dispatching on each field. Here a
 * revision is a few fixed-width numbers and two latin1 copies.
 *
 * Layout (little-endian), after a u32 count of revisions, each revision:
 *   f64 revision · u8 flags (1: compact follows, 2: each change has its sub) · [f64 compact]
 *   · u32 changes, and each change:
 *     u8 kind (0 put, 1 delete, 2 put with its value in the arena) · f64 createRevision
 *     · f64 modRevision · f64 version · f64 lease · u32 key length · key · u32 value length
 *     · value, or for kind 2 the u32 offset of the value in ShardApply.arena · [u32 sub]
 * Keys and values are the store's binary strings (one byte per character, src/bytes.ts).
 * A change's prevKv is not carried: shards keep their own history.
 *
 * A put's value is usually not carried either: the applier has just written it into its
 * value arena, which is shared memory it only ever appends to, so the shard keeps the
 * offset instead of a second copy of every latest value (docs/performance.md, session 28).
 */

const flagCompact = 1;
const flagSubs = 2;
/** changeFixedBytes: a change's bytes besides its key, value and sub. */
const changeFixedBytes = 1 + 4 * 8 + 4 + 4;
/** writerBytesMin: a writer's first buffer, small enough to be a slice of Node's buffer pool
 * (a batch of about ten small puts fits; a larger one doubles it as needed). */
const writerBytesMin = 2048;

const noBytes = Buffer.alloc(0);
const noView = new DataView(noBytes.buffer, noBytes.byteOffset, 0);

/** AppliedWriter builds one shard's ShardApply.revisions for one batch. */
export class AppliedWriter {
  /** buf: empty until the first write (a batch that touches no shard allocates nothing). */
  private buf: Buffer = noBytes;
  private view = noView;
  private len = 4;
  private count = 0;
  private subs = false;
  /** changesAt: where the open revision's change count is; changes: that count. */
  private changesAt = 0;
  private changes = 0;
  private last = 0;
  /** arena: the applier arena this batch's kind-2 changes point into (takesArena). */
  private arena: SharedArena | undefined = undefined;

  /** takesArena reports whether this batch may leave values in `arena`: one arena a batch
   * (the first it is offered), large enough to cross as shared memory (moveBytes). */
  takesArena(arena: SharedArena): boolean {
    if (this.arena === undefined && arena.bytes.length >= movedBytesMin) this.arena = arena;
    return this.arena === arena;
  }

  /** arenaFields are ShardApply's arena fields for this batch (none when no value is left
   * in an arena): its id, and a view of it unless it is `sentId`, the arena the shard was
   * last sent. */
  arenaFields(sentId?: number):
    Pick<ShardApply, 'arena' | 'arenaId' | 'relocation' | 'relocatedFrom'> {
    const a = this.arena;
    if (a === undefined) return {};
    if (a.id === sentId) return { arenaId: a.id };
    const moved = a.relocated;
    return moved === undefined ? { arena: moveBytes(a.bytes), arenaId: a.id } : {
      arena: moveBytes(a.bytes), arenaId: a.id, relocation: moveBytes(moved.table),
      relocatedFrom: moved.fromId,
    };
  }

  /** lastRevision is the revision written last (0: none yet). */
  get lastRevision(): number {
    return this.last;
  }

  /** revision opens a revision; its changes follow (change()). */
  revision(revision: number, compact: number | undefined, subs: boolean): void {
    this.close();
    this.reserve(8 + 1 + 8 + 4);
    const v = this.view;
    v.setFloat64(this.len, revision, true);
    v.setUint8(this.len + 8, (compact !== undefined ? flagCompact : 0) | (subs ? flagSubs : 0));
    this.len += 9;
    if (compact !== undefined) {
      v.setFloat64(this.len, compact, true);
      this.len += 8;
    }
    this.changesAt = this.len;
    this.changes = 0;
    this.len += 4;
    this.subs = subs;
    this.count++;
    this.last = revision;
  }

  /** change adds one change to the open revision; sub is its place in the transaction
   * (written only when the revision was opened with subs). A put's value is left where it
   * lies in the batch's arena (takesArena) when `at` ≥ 0 is its offset there. */
  change(c: Change, sub: number, at = -1): void {
    const kv = c.kv;
    const keyLen = kv.key.length;
    const valueLen = kv.value.length;
    const inArena = at >= 0 && c.kind === 'put' && this.arena !== undefined;
    this.reserve(changeFixedBytes + keyLen + (inArena ? 4 : valueLen) + 4);
    const v = this.view;
    let o = this.len;
    v.setUint8(o, c.kind === 'put' ? (inArena ? 2 : 0) : 1);
    v.setFloat64(o + 1, kv.createRevision, true);
    v.setFloat64(o + 9, kv.modRevision, true);
    v.setFloat64(o + 17, kv.version, true);
    v.setFloat64(o + 25, kv.lease, true);
    v.setUint32(o + 33, keyLen, true);
    o += 37;
    if (keyLen > 0) this.buf.write(kv.key, o, keyLen, 'latin1');
    o += keyLen;
    v.setUint32(o, valueLen, true);
    o += 4;
    if (inArena) {
      v.setUint32(o, at, true);
      o += 4;
    } else {
      if (valueLen > 0) this.buf.write(kv.value, o, valueLen, 'latin1');
      o += valueLen;
    }
    if (this.subs) {
      v.setUint32(o, sub, true);
      o += 4;
    }
    this.len = o;
    this.changes++;
  }

  /** finish returns the revisions written; the writer is not to be used after. */
  finish(): Uint8Array {
    this.reserve(0);
    this.close();
    this.view.setUint32(0, this.count, true);
    return this.buf.subarray(0, this.len);
  }

  private close(): void {
    if (this.count > 0) this.view.setUint32(this.changesAt, this.changes, true);
  }

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(writerBytesMin, this.buf.length * 2, this.len + n));
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
    this.view = new DataView(next.buffer, next.byteOffset, next.byteLength);
  }
}

/**
 * partitionChanges writes one applied request's changes (and compaction) into the writers
 * of the shards they belong to (shardOf). Shards keep their own history, so the previous
 * versions (for watchers, not shards) stay behind. A put's value stays where `values` (the
 * applier) just wrote it, its arena being shared memory only ever appended to: the shard
 * keeps the offset, not a second copy. A transaction over several shards: each shard keeps
 * its changes' place in it (subs), so a watch catching up from history gets them in order.
 */
export function partitionChanges(writers: readonly AppliedWriter[], revision: number,
  changes: readonly Change[], compact: number | undefined,
  values: Pick<Applier, 'sharedArena' | 'valueOffsetOf'>): void {
  const n = writers.length;
  const shardOfChange = changes.map((c) => shardOf(c.kv.key, n));
  const spread = shardOfChange.some((s) => s !== shardOfChange[0]);
  const arena = values.sharedArena();
  const at = arena === undefined ? undefined
    : changes.map((c) => (c.kind === 'put' ? values.valueOffsetOf(c.kv) : -1));
  for (let i = 0; i < n; i++) {
    const mine = shardOfChange.includes(i);
    if (!mine && compact === undefined) continue;
    const w = writers[i]!;
    w.revision(revision, compact, spread && mine);
    for (let sub = 0; sub < changes.length; sub++) {
      if (shardOfChange[sub] !== i) continue;
      w.change(changes[sub]!, sub, at === undefined || !w.takesArena(arena!) ? -1 : at[sub]!);
    }
  }
}

/** applyShardApply applies a ShardApply to a shard's store: its revisions in order (those the
 * store has are passed over), their compactions, the puts whose values stay in the applier's
 * arena pointing into it. */
export function applyShardApply(store: ShardStore, msg: ShardApply): void {
  const relocated = msg.relocation === undefined ? undefined
    : { fromId: msg.relocatedFrom!, table: msg.relocation };
  const slot = msg.arenaId === undefined ? 0 : store.useSegment(msg.arenaId,
    msg.arena?.buffer as SharedArrayBuffer | undefined, relocated);
  for (const r of decodeApplied(msg.revisions)) {
    if (r.revision > store.currentRevision) {
      store.apply(r.revision as Revision, r.changes, r.subs, r.shared, slot);
    }
    if (r.compact !== undefined) store.compact(r.compact as Revision);
  }
}

/** encodeApplied writes revisions as one ShardApply.revisions (tests, tools). */
export function encodeApplied(revs: readonly AppliedRevision[]): Uint8Array {
  const w = new AppliedWriter();
  for (const r of revs) {
    w.revision(r.revision, r.compact, r.subs !== undefined);
    r.changes.forEach((c, i) => w.change(c, r.subs?.[i] ?? i));
  }
  return w.finish();
}

/**
 * decodeApplied reads ShardApply.revisions back into revisions. Values left in the arena
 * are read from `arena` when it is given (tests, tools); without it they are listed in each
 * revision's `shared` and their kv.value is empty (the shard keeps them where they lie).
 */
export function decodeApplied(bytes: Uint8Array, arena?: Uint8Array): AppliedRevision[] {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const a = arena === undefined ? undefined
    : Buffer.from(arena.buffer, arena.byteOffset, arena.byteLength);
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const count = v.getUint32(0, true);
  const out: AppliedRevision[] = [];
  let o = 4;
  for (let i = 0; i < count; i++) {
    const revision = v.getFloat64(o, true);
    const flags = v.getUint8(o + 8);
    o += 9;
    const r: AppliedRevision = { revision, changes: [] };
    if ((flags & flagCompact) !== 0) {
      r.compact = v.getFloat64(o, true);
      o += 8;
    }
    const n = v.getUint32(o, true);
    o += 4;
    const subs: number[] | undefined = (flags & flagSubs) !== 0 ? [] : undefined;
    for (let j = 0; j < n; j++) {
      const c = o;
      const k = v.getUint8(c);
      const keyLen = v.getUint32(c + 33, true);
      const keyAt = c + 37;
      const valueLen = v.getUint32(keyAt + keyLen, true);
      let valueAt = keyAt + keyLen + 4;
      let from = b;
      o = valueAt + valueLen;
      if (k === 2) {
        o = valueAt + 4;
        valueAt = v.getUint32(valueAt, true);
        if (a === undefined) {
          r.shared ??= { at: new Array<number>(n).fill(-1), len: new Array<number>(n).fill(0) };
          r.shared.at[j] = valueAt;
          r.shared.len[j] = valueLen;
        }
        from = a ?? noBytes;
      }
      const kv: KeyValue = {
        key: b.toString('latin1', keyAt, keyAt + keyLen),
        createRevision: v.getFloat64(c + 1, true) as Revision,
        modRevision: v.getFloat64(c + 9, true) as Revision,
        version: v.getFloat64(c + 17, true),
        value: valueLen === 0 || from === noBytes ? ''
          : from.toString('latin1', valueAt, valueAt + valueLen),
        lease: v.getFloat64(c + 25, true) as LeaseId,
      };
      r.changes.push({ kind: k === 1 ? 'delete' : 'put', kv });
      if (subs !== undefined) {
        subs.push(v.getUint32(o, true));
        o += 4;
      }
    }
    if (subs !== undefined) r.subs = subs;
    out.push(r);
  }
  assert(o === bytes.length, 'ShardApply: revisions end where their bytes do', o);
  return out;
}
