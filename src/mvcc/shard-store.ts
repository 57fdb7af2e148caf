import type { Bytes, LeaseId, Revision } from '../types.js';
import type {
  Change, KeyValue, KeyValueSpan, RangeRequest, RangeResponse, SharedValues,
} from './types.js';
import { assert, AssertionFailed } from '../assert.js';
import { ownedBytes } from './owned-bytes.js';
import { ErrCompacted, ErrFutureRev, ErrSnapshotCorrupt } from '../errors.js';
import { tombstoneOf } from './key-index.js';
import { inKeyRange, keyRangeOf } from './key-range.js';
import {
  column, grown, KvColumns, loadColumn, type Relocation, replacedBytes, sharedBaseOf,
} from './kv-columns.js';
import { OrderedMap } from './ordered-map.js';
import { type PackedKeys, PackedKeysBuilder } from './packed-keys.js';
import { partialRangeLazy, rangePlanOf } from './range-plan.js';
import { initialRevision, noRevision, revision as toRevision } from './revision.js';
import {
  decodeShardSnapshot, encodeShardSnapshot, type ShardSnapshot, type SnapshotColumns,
  valueOffsets,
} from './shard-snapshot.js';

export {
  shardSnapshotFormat, shardSnapshotFormatV1, type ShardSnapshot, type ShardSnapshotV1,
} from './shard-snapshot.js';

/**
 * entryOverheadBytes approximates what one stored version costs beyond its key and value
 * (etcd: a 17-byte bbolt key plus the protobuf KeyValue's integer fields and framing). It
 * only feeds stats(), which backs etcd_mvcc_db_total_size_in_bytes.
 */
const entryOverheadBytes = 48;

/** ShardStoreStats is the size of one shard's history. */
export interface ShardStoreStats {
  /** keys with any retained history (live or deleted-but-not-yet-compacted). */
  keys: number;
  /** revisions counts retained versions (puts and tombstones). */
  revisions: number;
  /** bytes approximates the memory/disk the history takes. */
  bytes: number;
}

/**
 * ShardStoreMemory is what a ShardStore's structures take, in bytes (memory accounting for
 * metrics and the benchmark's per-key figures). Off-heap: the typed-array columns and the
 * value arena. On the V8 heap: the key strings, the key index and the row → key table.
 */
export interface ShardStoreMemory {
  /** columnBytes: the version columns' capacity (24 bytes a row and more: KvColumns) and
   * the change log's. */
  columnBytes: number;
  /** offHeapUsedBytes: the part of columnBytes + arenaBytes ever written (rows handed out,
   * arena bytes used, log entries): what is resident, as untouched pages are not. */
  offHeapUsedBytes: number;
  /** arenaBytes: the value arena's size (live values, garbage not yet reclaimed, room). */
  arenaBytes: number;
  /** valueBytesLive: the bytes of the retained versions' values. */
  valueBytesLive: number;
  /** sharedValueBytes: the part of arenaBytes that is a snapshot body's values, read in place
   * and shared with the applier and the other shards (KvColumns.sharedBytes). */
  sharedValueBytes: number;
  /** applierValueBytes: the retained versions' values that lie in the applier's value arena
   * (apply's `shared`), counted there; not part of arenaBytes or valueBytesLive. */
  applierValueBytes: number;
  /** applierArenas: how many of the applier's arenas those lie in (one, the current, unless
   * the applier moved to a new one and the old still holds enough of this store's values). */
  applierArenas: number;
  /** heapBytesEstimate: key strings (16-byte header, length rounded up to 8), the index's
   * key and value slots per key with its chunks' spare capacity (~24 bytes), the row → key
   * table (8 bytes a row). Keys in packed chunks (a restore's, untouched) count in
   * packedKeyBytes instead. */
  heapBytesEstimate: number;
  /** packedKeyBytes: a restore's keys, packed off the heap: their bytes and offsets
   * (PackedKeys), a key number per restored row, and the key index's packed chunks (a key
   * number and a row per key). They stay until the store is replaced. */
  packedKeyBytes: number;
}

/** keyIndexBytesPerKey estimates the OrderedMap's cost per key beyond the key string: a key
 * slot and a value slot (8 bytes each) in a chunk that is half to wholly full. */
const keyIndexBytesPerKey = 24;
/** logRowsMin is the change log's first capacity. */
const logRowsMin = 1024;

/** exportPageBytesFirst: an export page's first buffer (it doubles as needed). */
const exportPageBytesFirst = 256 * 1024;

/** SpanEncoder writes a key-value from a span (src/grpc/wire.ts keyValueSpanBytes and
 * putKeyValueSpan): bytes < 0 when it cannot. */
export interface SpanEncoder {
  bytes(s: KeyValueSpan): number;
  put(s: KeyValueSpan, buf: Buffer, at: number): number;
}

/** EntryEncoder writes a key-value from a span as an item of RangeResponse's kvs field
 * (src/grpc/wire.ts keyValueSpanBytes, putRangeEntry): bytes < 0 when it cannot. */
export interface EntryEncoder {
  bytes(s: KeyValueSpan): number;
  put(s: KeyValueSpan, n: number, buf: Buffer, at: number): number;
}

/** RangeEntries is ShardStore.rangeEntries' answer: the items back to back, each one's
 * end, the shard's count of keys in the range, and whether it cut any. */
export interface RangeEntries {
  bytes: Uint8Array;
  ends: Uint32Array;
  count: number;
  more: boolean;
}

/** entriesRangeable: a request whose answer is its keys in key order, nothing filtered and
 * not count-only — what ShardStore.rangeEntries answers. */
export function entriesRangeable(req: RangeRequest): boolean {
  const plan = rangePlanOf(req);
  return req.countOnly !== true && !plan.hasFilters && plan.target === 'KEY' &&
    (plan.order === 'NONE' || plan.order === 'ASCEND');
}

/** ShardExportPage is one page of ShardStore.exportPage: the key-values' encodings back to
 * back, each one's mod revision and end offset, and the last key when more may follow. */
export interface ShardExportPage {
  bytes: Uint8Array;
  mods: Float64Array;
  ends: Uint32Array;
  last?: Bytes;
}

/** emptyBytes: a span's value before its first row. */
const emptyBytes = new Uint8Array(0);

/** emptySpan is a span for KvColumns.span to fill, one per read (a store-wide one would keep
 * a replaced arena alive through its `value`). */
function emptySpan(): KeyValueSpan {
  return { key: '', createRevision: 0, modRevision: 0, version: 0, lease: 0,
    value: emptyBytes, valueAt: 0, valueLen: 0 };
}

/** ShardDigestPage is one page of ShardStore.digest: the hashes' sum (mod 2^32), how many
 * keys it covers, and the last of them when more may follow. */
export interface ShardDigestPage {
  sum: number;
  keys: number;
  last?: Bytes;
}

/**
 * ShardStore holds the MVCC history of one partition of the key space (the keys k with
 * shardOf(k, n) === this shard). It never decides anything: the Applier on the Raft thread
 * turns each committed write into a revision and a list of Changes, and every shard gets
 * apply(revision, its share of the changes) — possibly none, so that all shards agree on
 * currentRevision and a cross-shard read at one revision sees whole transactions or none.
 *
 * Layout (the compact store): every retained version is a row of KvColumns (typed-array
 * columns, values in an off-heap arena). The key index (an OrderedMap, key → the key's
 * newest row) answers range reads; each row links to the key's previous row (`prev`), so a
 * key's versions are a newest-first chain: etcd's keyIndex generations, flattened, with a
 * tombstone (version 0) closing each generation (see the worked example in key-index.ts).
 * "The version visible at revision r" walks the chain from the newest row to the first
 * with mod ≤ r: one step for the common read at the latest revision. A change log (row
 * numbers of every version at or after compactRevision, in revision order, in an Int32Array)
 * answers history() for watch catch-up and makes compaction cost proportional to the changes
 * since the previous one.
 *
 * Example: put foo@2, put foo@3, delete foo@4 → rows 0 (v1 mod 2), 1 (v2 mod 3, prev 0),
 * 2 (tombstone mod 4, prev 1); index foo → 2; log [0, 1, 2]. A read at 3 walks 2 → 1 and
 * answers row 1. compact(3) frees row 0, cuts row 1's prev, and leaves log [1, 2].
 */
export class ShardStore {
  /** currentRevision is the last revision applied (every shard has the same). */
  currentRevision: Revision;
  /** compactRevision: reads below it fail with ErrCompacted; 0 before any compaction. */
  compactRevision: Revision;

  private cols = new KvColumns();
  /** index maps every key with retained history to its newest row. */
  private readonly index = new OrderedMap<number>();
  /** rowKey[r] is row r's key (the index's own string, shared), or the table of the index
   * chunk repackKeys packed it into, where it is key number rowKeyNo[r]; undefined for a row
   * loaded by a restore, whose key is restoredKeys' key number restoredKeyNo[r] (keyOfRow). */
  private rowKey: (Bytes | PackedKeys | undefined)[] = [];
  private rowKeyNo = new Uint32Array(0);
  /** restoredKeys, restoredKeyNo: the restored rows' keys, still packed (see loadColumns). */
  private restoredKeys: PackedKeys | undefined = undefined;
  private restoredKeyNo: Uint32Array | undefined = undefined;
  /** restoredBytes: what those and the index's packed chunks (key numbers, rows) take. */
  private restoredBytes = 0;
  /** log[0, logLen) holds the rows with modRevision ≥ compactRevision, in order. */
  private log = column(Int32Array, logRowsMin);
  /** logSub[i] is log[i]'s sub revision: its place in its transaction's changes across all
   * shards (etcd's sub revision), so that a history merged from the shards keeps txn order. */
  private logSub = column(Uint32Array, logRowsMin);
  private logLen = 0;
  /** logDroppedBytes: change-log buffers replaced by a growth past their reservation. */
  private logDroppedBytes = 0;
  private sizeBytes = 0;

  constructor(opts: { revision?: number; compactRevision?: number } = {}) {
    this.currentRevision = toRevision(opts.revision ?? initialRevision);
    this.compactRevision = toRevision(opts.compactRevision ?? noRevision);
    assert(this.compactRevision <= this.currentRevision, 'compactRevision > currentRevision');
  }

  /**
   * apply appends the changes one transaction made to this shard's keys, at revision. An
   * empty list still advances currentRevision. Revisions must strictly increase, and every
   * change must be consistent with the history (a put continues the key's generation or
   * starts one; a delete ends a live key): anything else is a bug upstream and asserts.
   * subs[j] is changes[j]'s sub revision in the whole transaction (absent: the changes are
   * the whole transaction, subs 0, 1, 2 ...). With `shared`, the puts it names keep their
   * values where they lie in the segment at `slot` (useSegment) instead of a copy.
   */
  apply(revision: Revision, changes: readonly Change[], subs?: readonly number[],
    shared?: SharedValues, slot = 0): void {
    assert(revision > this.currentRevision, 'apply moves the revision forward',
      [revision, this.currentRevision]);
    const c = this.cols;
    for (let j = 0; j < changes.length; j++) {
      const ch = changes[j]!;
      const kv = ch.kv;
      assert(kv.modRevision === revision, 'change modRevision differs from its revision');
      const head = this.index.get(kv.key);
      const live = head !== undefined && c.version[head]! > 0;
      let r: number;
      if (ch.kind === 'put') {
        if (!live) {
          assert(kv.version === 1 && kv.createRevision === revision, 'put does not create key');
        } else {
          assert(
            kv.version === c.version[head]! + 1 && kv.createRevision === c.create[head]!,
            'put does not continue the key generation',
          );
        }
        const at = shared === undefined ? -1 : shared.at[j]!;
        const len = at < 0 ? kv.value.length : shared!.len[j]!;
        r = at < 0 ? c.add(kv, head ?? -1) : c.addShared(kv, head ?? -1, slot, at, len);
        this.sizeBytes += kv.key.length + len + entryOverheadBytes;
      } else {
        assert(live, 'a tombstone ends a live key', kv.key);
        r = c.addTombstone(revision, head!);
        this.sizeBytes += kv.key.length + entryOverheadBytes;
      }
      // A new key is a slice of the ShardApply message's strings (see ownedBytes): copy it.
      const headKey = head === undefined ? undefined : this.rowKey[head];
      const key = head === undefined ? ownedBytes(kv.key)
        : typeof headKey === 'string' ? headKey : this.index.storedKey(kv.key)!;
      this.setRowKey(r, key);
      this.index.set(key, r);
      this.logPush(r, subs?.[j] ?? j);
    }
    this.currentRevision = revision;
  }

  /**
   * useSegment makes the applier's value arena (its id and shared buffer, as ShardApply
   * carries them) one that apply's `shared` values may lie in, and returns its slot
   * (KvColumns.useSegment; the buffer may be left out once the store has it).
   */
  useSegment(id: number, buffer?: SharedArrayBuffer, relocated?: Relocation): number {
    return this.cols.useSegment(id, buffer, relocated);
  }

  /** readRevision is the revision a read at atRevision sees (0: currentRevision): one this
   * store has (ErrFutureRev beyond it) and still keeps (ErrCompacted below compaction). */
  private readRevision(atRevision: Revision): number {
    const rev = atRevision > 0 ? atRevision : this.currentRevision;
    if (rev > this.currentRevision) throw new ErrFutureRev();
    if (rev < this.compactRevision) throw new ErrCompacted();
    return rev;
  }

  /**
   * range answers req on this shard's keys at atRevision (0 = currentRevision), as a partial
   * result for mergeRanges: count is this shard's count, kvs its best `limit` in the
   * requested order. The request's own `revision` field is ignored: the gateway resolves it
   * to atRevision so all shards read the same revision.
   */
  range(req: RangeRequest, atRevision: Revision): RangeResponse {
    const rev = this.readRevision(atRevision);
    const r = keyRangeOf(req.key, req.rangeEnd);
    const c = this.cols;
    let row = -1;
    let key = '';
    const load = (): KeyValue => c.kv(row, key);
    return partialRangeLazy(req, (visit) => {
      if (r.single) {
        const head = this.index.get(r.start);
        if (head === undefined) return;
        row = this.visibleAt(head, rev);
        key = r.start;
        if (row >= 0) visit(load);
        return;
      }
      if (req.countOnly === true) {
        // Only the rows count: no key is needed (packed chunks stay packed).
        this.index.forEachValue(r.start, r.end, (head) => {
          if (this.visibleAt(head, rev) >= 0) visit(load);
        });
        return;
      }
      this.index.forEach(r.start, r.end, (k, head) => {
        row = this.visibleAt(head, rev);
        key = k;
        return row < 0 || visit(load);
      });
    });
  }

  /**
   * digest hashes a page of this shard's live keys at atRevision: the keys from `from` (in
   * key order), at most `limit` of them, each through `hash` as a span of the columns (no
   * key-value is built), the hashes summed modulo 2^32 (a sum does not depend on how the keys
   * are spread over shards, so the shards' sums add up to the same number for any shard
   * count). `last` is the last key hashed when the page is full (the next page starts after
   * it); absent when no key is left.
   */
  digest(from: Bytes, limit: number, atRevision: Revision,
    hash: (kv: KeyValueSpan) => number): ShardDigestPage {
    assert(limit >= 1, 'a digest page holds at least one key', limit);
    const rev = this.readRevision(atRevision);
    const c = this.cols;
    const page: ShardDigestPage = { sum: 0, keys: 0 };
    const span = emptySpan();
    this.index.forEach(from, undefined, (k, head) => {
      const row = this.visibleAt(head, rev);
      if (row < 0) return true;
      c.span(row, k, span);
      page.sum = (page.sum + hash(span)) >>> 0;
      page.keys++;
      if (page.keys < limit) return true;
      page.last = k;
      return false;
    });
    return page;
  }

  /**
   * rangeEntries answers req as `range` does, for a request answered in key order with
   * nothing filtered or sorted otherwise (entriesRangeable): this shard's count, its first
   * `cap` key-values written by `enc` back to back (items of RangeResponse's kvs field, no
   * KeyValue built), each one's end, and whether it had more. Undefined when enc cannot
   * write one (the caller reads the general way).
   */
  rangeEntries(req: RangeRequest, atRevision: Revision, enc: EntryEncoder):
    RangeEntries | undefined {
    const rev = this.readRevision(atRevision);
    const r = keyRangeOf(req.key, req.rangeEnd);
    const cap = rangePlanOf(req).cap;
    const keysOnly = req.keysOnly === true;
    const c = this.cols;
    const span = emptySpan();
    let buf = Buffer.allocUnsafe(0);
    let at = 0;
    const ends: number[] = [];
    let count = 0;
    let refused = false;
    const visit = (k: Bytes, row: number): boolean => {
      count++;
      if (ends.length > cap) return true; // counted only
      c.span(row, k, span);
      if (keysOnly) span.valueLen = 0;
      const n = enc.bytes(span);
      if (n < 0) {
        refused = true;
        return false;
      }
      if (at + n + 11 > buf.length) {
        const grown = Buffer.allocUnsafe(Math.max(buf.length * 2, at + n + 11, 1024));
        buf.copy(grown, 0, 0, at);
        buf = grown;
      }
      at = enc.put(span, n, buf, at);
      ends.push(at);
      return true;
    };
    if (r.single) {
      const head = this.index.get(r.start);
      const row = head === undefined ? -1 : this.visibleAt(head, rev);
      if (row >= 0) visit(r.start, row);
    } else {
      this.index.forEach(r.start, r.end, (k, head) => {
        const row = this.visibleAt(head, rev);
        return row < 0 || visit(k, row);
      });
    }
    if (refused) return undefined;
    const more = ends.length > cap;
    if (more) ends.length = cap;
    return { bytes: buf.subarray(0, ends.at(-1) ?? 0), ends: Uint32Array.from(ends), count, more };
  }

  /**
   * exportPage encodes a page of this shard's live keys at atRevision for a snapshot file:
   * the keys from `from` (key order), at most `limit`, each written by `enc` from a span of
   * the columns (no KeyValue built) back to back into one buffer, with each one's mod
   * revision and end. `last` as in digest. Undefined when `enc` cannot write a key-value
   * (enc.bytes < 0): the caller reads the page the general way.
   */
  exportPage(from: Bytes, limit: number, atRevision: Revision, enc: SpanEncoder):
    ShardExportPage | undefined {
    assert(limit >= 1, 'an export page holds at least one key', limit);
    const rev = this.readRevision(atRevision);
    const c = this.cols;
    const span = emptySpan();
    let buf = Buffer.allocUnsafe(exportPageBytesFirst);
    let at = 0;
    const mods: number[] = [];
    const ends: number[] = [];
    let last: Bytes | undefined;
    let refused = false;
    this.index.forEach(from, undefined, (k, head) => {
      const row = this.visibleAt(head, rev);
      if (row < 0) return true;
      c.span(row, k, span);
      const n = enc.bytes(span);
      if (n < 0) {
        refused = true;
        return false;
      }
      if (at + n > buf.length) {
        const grown = Buffer.allocUnsafe(Math.max(buf.length * 2, at + n));
        buf.copy(grown, 0, 0, at);
        buf = grown;
      }
      at = enc.put(span, buf, at);
      mods.push(span.modRevision);
      ends.push(at);
      if (mods.length < limit) return true;
      last = k;
      return false;
    });
    if (refused) return undefined;
    return { bytes: buf.subarray(0, at), mods: Float64Array.from(mods),
      ends: Uint32Array.from(ends), ...(last !== undefined ? { last } : {}) };
  }

  /**
   * compact drops the history no read at revision ≥ `revision` needs: per key, of the rows
   * at or below it only the newest survives, and only when it is a put (etcd's
   * keyIndex.compact; see key-index.ts). Compacting at or below compactRevision does nothing
   * (so a replayed compaction is harmless); beyond currentRevision is ErrFutureRev. Cost: the
   * changes since the last compaction, not the key space.
   */
  compact(revision: Revision): void {
    if (revision <= this.compactRevision) return;
    if (revision > this.currentRevision) throw new ErrFutureRev();
    const end = this.firstAtOrAfter(revision + 1);
    const touched = new Set<Bytes>();
    for (let i = 0; i < end; i++) touched.add(this.keyOfRow(this.log[i]!));
    for (const key of touched) this.compactKey(key, revision);
    // Of the versions at exactly `revision`, keep those compaction kept (a put that is the
    // key's newest at `revision`): history(revision, ...) still serves them, as in etcd.
    const from = this.firstAtOrAfter(revision);
    let o = 0;
    for (let i = from; i < this.logLen; i++) {
      const r = this.log[i]!;
      if (i >= end || !this.cols.isFree(r)) {
        this.logSub[o] = this.logSub[i]!;
        this.log[o++] = r;
      }
    }
    this.logLen = o;
    this.compactRevision = revision;
    this.cols.compactArena();
  }

  /**
   * history returns the changes to keys in [key, rangeEnd) (rangeEnd as in a RangeRequest)
   * at revisions fromRevision..toRevision (toRevision capped at currentRevision), in
   * revision order, for watch catch-up. A delete's kv is the tombstone (key, modRevision).
   * prevKv is set when the replaced version is still retained (always, except for changes
   * at exactly compactRevision).
   *
   * With limit > 0, stops after the first revision that brings the count to limit: a
   * revision is never split, so the caller resumes at the last modRevision + 1.
   *
   * Like etcd's watch, fromRevision = compactRevision is allowed (a client told "compacted
   * at C" re-watches from C); what compaction removed at C itself (tombstones, overwritten
   * versions) is not returned. fromRevision < compactRevision is ErrCompacted.
   *
   * subs, when given, receives each returned change's sub revision (see apply).
   */
  history(
    fromRevision: Revision,
    toRevision: Revision,
    key: Bytes,
    rangeEnd?: Bytes,
    limit = 0,
    subs?: number[],
  ): Change[] {
    assert(fromRevision >= 1, 'history starts at revision 1 or later', fromRevision);
    if (fromRevision < this.compactRevision) throw new ErrCompacted();
    const to = Math.min(toRevision, this.currentRevision);
    const r = keyRangeOf(key, rangeEnd);
    const c = this.cols;
    const out: Change[] = [];
    for (let i = this.firstAtOrAfter(fromRevision); i < this.logLen; i++) {
      const row = this.log[i]!;
      const mod = c.mod[row]!;
      if (mod > to) break;
      const lastRev = out[out.length - 1]?.kv.modRevision;
      if (limit > 0 && out.length >= limit && lastRev !== mod) break;
      const k = this.keyOfRow(row);
      if (!inKeyRange(r, k)) continue;
      const put = c.version[row]! > 0;
      const change: Change = {
        kind: put ? 'put' : 'delete',
        kv: put ? c.kv(row, k) : tombstoneOf(k, mod as Revision),
      };
      const p = c.prev[row]!;
      if (p >= 0 && c.version[p]! > 0) change.prevKv = c.kv(p, k);
      out.push(change);
      subs?.push(this.logSub[i]!);
    }
    return out;
  }

  /** latest yields the newest version of every live key, in key order (to rebuild the
   * Applier from shards). */
  *latest(): IterableIterator<KeyValue> {
    const live: KeyValue[] = [];
    const c = this.cols;
    this.index.forEach(undefined, undefined, (k, head) => {
      if (c.version[head]! > 0) live.push(c.kv(head, k));
    });
    yield* live;
  }

  /** stats reports the size of the retained history. */
  stats(): ShardStoreStats {
    return { keys: this.index.size, revisions: this.cols.liveRows, bytes: this.sizeBytes };
  }

  /** memory reports what the store's structures take (see ShardStoreMemory). */
  memory(): ShardStoreMemory {
    let keyStrings = 0;
    let touched = 0; // keys whose chunk holds strings (packed chunks hold numbers off the heap)
    this.index.forEachKeyRef((k) => {
      if (k === undefined) return;
      keyStrings += 16 + Math.ceil(k.length / 8) * 8;
      touched++;
    });
    return {
      columnBytes: this.cols.memoryBytes() - this.cols.arenaBytes + this.log.byteLength +
        this.logSub.byteLength,
      offHeapUsedBytes: this.cols.usedBytes() + this.logLen * 8,
      arenaBytes: this.cols.arenaBytes,
      valueBytesLive: this.cols.valueBytesLive,
      sharedValueBytes: this.cols.sharedBytes,
      applierValueBytes: this.cols.foreignBytes,
      applierArenas: this.cols.foreignSegments,
      heapBytesEstimate: keyStrings + touched * keyIndexBytesPerKey + this.rowKey.length * 8,
      packedKeyBytes: this.restoredBytes,
    };
  }

  /** sharedValueBytes: ShardStoreMemory.sharedValueBytes, cheaply. */
  sharedValueBytes(): number {
    return this.cols.sharedBytes;
  }

  /** applierValueBytes: ShardStoreMemory.applierValueBytes, cheaply. */
  applierValueBytes(): number {
    return this.cols.foreignBytes;
  }

  /** offHeapBytes is what the columns, the arena and the change log take, by capacity (cheap,
   * unlike memory(), which walks every key; it changes only when one is reallocated). */
  offHeapBytes(): number {
    return this.cols.allocatedBytes() + this.log.byteLength + this.logSub.byteLength;
  }

  /** droppedBytes counts the columns, arenas and change logs the store replaced by new ones
   * (KvColumns.droppedBytes): when it changes, a garbage collection has memory to return. */
  droppedBytes(): number {
    return this.cols.droppedBytes + this.logDroppedBytes;
  }

  /** toSnapshot returns the dump, format v2 (see shard-snapshot.ts). */
  toSnapshot(): ShardSnapshot {
    const { rows, cols } = this.dumpColumns();
    const values = this.cols.valueBytesOf(rows);
    return encodeShardSnapshot({ ...cols, valueLens: values.lens, valueBytes: values.bytes });
  }

  /**
   * toSnapshotPieces is toSnapshot with the values as pieces whose concatenation is
   * toSnapshot's valueBytes: runs of `shareMin` bytes or more are views of the value arena,
   * in shared memory (KvColumns.valuePiecesOf). The dump stays valid while the store goes on
   * writing, so a snapshot file is written from it without a copy of every value.
   */
  toSnapshotPieces(shareMin: number): ShardSnapshot<Uint8Array[]> {
    const { rows, cols } = this.dumpColumns();
    const values = this.cols.valuePiecesOf(rows, shareMin);
    return encodeShardSnapshot({ ...cols, valueLens: values.lens, valueBytes: values.pieces });
  }

  /** dumpColumns gathers a dump's rows (those below the compaction point, in key order, then
   * the change log) and their columns, all but the values. */
  private dumpColumns(): { rows: Int32Array; cols: Omit<SnapshotColumns, 'valueLens' |
    'valueBytes'> } {
    const c = this.cols;
    // Keys are numbered in key order (the index's), so that a load finds them sorted and
    // sorts nothing; each row gets its key's number on the walk down the key's chain (every
    // retained row is on one), with no map from key to number (a Map of a million keys was
    // ≈ 1.3 s of a dump's 2.9).
    let keyBytes = 0;
    this.index.forEachKeyRef((k, table, tableNo) => {
      keyBytes += k !== undefined ? k.length : table!.lengthOf(tableNo);
    });
    const keys = new PackedKeysBuilder(this.index.size, keyBytes); // one buffer, no copy
    const rowKeyNo = new Int32Array(c.mod.length);
    // At most one row per key below the compaction point, then the log.
    const all = new Int32Array(this.index.size + this.logLen);
    let base = 0;
    let no = -1;
    // Packed keys (a restore's, not touched since) are copied as bytes, not made strings.
    this.index.forEachKeyRef((k, table, tableNo, head) => {
      no++;
      if (k !== undefined) keys.addString(k);
      else keys.addFrom(table!, tableNo);
      let r = head;
      rowKeyNo[r] = no;
      while (c.prev[r]! >= 0) {
        r = c.prev[r]!;
        rowKeyNo[r] = no;
      }
      if (c.mod[r]! < this.compactRevision) all[base++] = r;
    });
    all.set(this.log.subarray(0, this.logLen), base);
    const n = base + this.logLen;
    const rows = all.subarray(0, n);
    const sub = new Uint32Array(n);
    sub.set(this.logSub.subarray(0, this.logLen), base);
    const key = new Uint32Array(n);
    const mod = new Float64Array(n);
    const create = new Float64Array(n);
    const version = new Float64Array(n);
    const lease = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const r = rows[i]!;
      key[i] = rowKeyNo[r]!;
      mod[i] = c.mod[r]!;
      create[i] = c.create[r]!;
      version[i] = c.version[r]!;
      lease[i] = c.leaseOf(r);
    }
    return {
      rows,
      cols: {
        currentRevision: this.currentRevision, compactRevision: this.compactRevision,
        keys: keys.finish(), rows: n, key, mod, create, version, lease, sub,
      },
    };
  }

  /**
   * fromSnapshot rebuilds a ShardStore from a dump of either format (shard-snapshot.ts),
   * after a msgpack round trip; anything malformed or inconsistent is ErrSnapshotCorrupt.
   * The columns are copied whole and the key index is bulk-loaded in key order: no object
   * per version is built. With shareValues, values that lie in shared memory nobody writes
   * (a snapshot file's body, as the WAL writer read it) stay there: the store reads them in
   * place (KvColumns.load with a base), as the applier does, instead of copying them.
   * `values`: the dump's values when it came without them (decodeShardSnapshot).
   */
  static fromSnapshot(x: unknown, shareValues = false, values?: Uint8Array): ShardStore {
    const s = decodeShardSnapshot(x, values);
    const store = new ShardStore({
      revision: s.currentRevision,
      compactRevision: s.compactRevision,
    });
    try {
      store.loadColumns(s, shareValues ? sharedBaseOf([s.valueBytes]) : undefined);
    } catch (e) {
      if (e instanceof AssertionFailed) throw new ErrSnapshotCorrupt(e.message);
      throw e;
    }
    return store;
  }

  // ---- internals ----

  private loadColumns(s: SnapshotColumns, base: Uint8Array | undefined): void {
    const n = s.rows;
    const head = new Int32Array(s.keys.count).fill(-1);
    const prev = loadColumn(Int32Array, n); // where cols.load() keeps it
    let lastMod = 0;
    let size = 0;
    for (let i = 0; i < n; i++) {
      const k = s.key[i]!;
      const h = head[k]!;
      const mod = s.mod[i]!;
      const ver = s.version[i]!;
      const create = s.create[i]!;
      assert(mod <= s.currentRevision, 'row after currentRevision');
      if (h >= 0) assert(mod >= s.mod[h]!, 'revision went back');
      if (ver > 0) {
        assert(create >= 1 && create <= mod, 'create rev');
        if (h >= 0 && s.version[h]! > 0) {
          assert(ver === s.version[h]! + 1 && create === s.create[h]!, 'generation broken');
        } else if (h >= 0) {
          assert(ver === 1 && create === mod, 'a generation starts at version 1');
        }
      } else {
        assert(create === 0 && s.lease[i] === 0 && s.valueLens[i] === 0, 'tombstone row');
        assert(h >= 0 && s.version[h]! > 0, 'tombstone of a deleted key');
      }
      if (mod >= s.compactRevision) {
        assert(mod >= lastMod, 'change log out of order');
        lastMod = mod;
        this.logPush(i, s.sub?.[i] ?? 0);
      } else {
        assert(lastMod === 0, 'old row after the change log');
        assert(h < 0, 'two old rows for a key');
      }
      prev[i] = h;
      head[k] = i;
      size += s.keys.lengthOf(k) + s.valueLens[i]! + entryOverheadBytes;
    }
    const cols = {
      mod: s.mod, create: s.create, version: s.version, lease: s.lease, valueLens: s.valueLens,
      prev,
    };
    this.cols.load(n, base !== undefined ? { ...cols, base }
      : { ...cols, valueBytes: s.valueBytes });
    // No string per key: the rows' keys stay packed (keyOfRow), and so do the index's chunks
    // until first touched (OrderedMap.loadPacked).
    // Filled, not left as holes: V8 pushed onto a `new Array(n)` of a million holes 20–40×
    // slower than onto a filled one (a WAL replay's new rows; the performance notes in
    // docs/, session 31).
    this.rowKey = new Array<Bytes | undefined>(n).fill(undefined);
    this.restoredKeys = s.keys;
    this.restoredKeyNo = s.key;
    let m = 0;
    const order = new Uint32Array(s.keys.count);
    for (let k = 0; k < s.keys.count; k++) if (head[k]! >= 0) order[m++] = k;
    const live = s.keys.ascending(order, m) ? order.subarray(0, m)
      : s.keys.sort(order.subarray(0, m));
    const heads = new Int32Array(m);
    for (let i = 0; i < m; i++) heads[i] = head[live[i]!]!;
    this.index.loadPacked(s.keys, live, heads);
    this.restoredBytes = s.keys.memoryBytes() + s.key.byteLength + order.byteLength +
      heads.byteLength;
    this.sizeBytes = size;
  }

  /** visibleAt returns the row of the version visible at rev from the chain at head (a
   * tombstone included), or -1 when none is. */
  private visibleAt(head: number, rev: number): number {
    const c = this.cols;
    let r = head;
    while (r >= 0 && c.mod[r]! > rev) r = c.prev[r]!;
    return r >= 0 && c.version[r]! > 0 ? r : -1;
  }

  /** compactKey applies compaction at rev to one key's chain. */
  private compactKey(key: Bytes, rev: Revision): void {
    const c = this.cols;
    const head = this.index.get(key);
    if (head === undefined) return;
    let newer = -1;
    let r = head;
    while (r >= 0 && c.mod[r]! > rev) {
      newer = r;
      r = c.prev[r]!;
    }
    if (r < 0) return;
    // r is the newest row ≤ rev: keep it when it is a put, and free everything older.
    let drop = r;
    if (c.version[r]! > 0) {
      drop = c.prev[r]!;
      c.prev[r] = -1;
    } else if (newer >= 0) {
      c.prev[newer] = -1;
    } else {
      this.index.delete(key);
    }
    while (drop >= 0) {
      const older = c.prev[drop]!;
      this.sizeBytes -= key.length + c.valueLen[drop]! + entryOverheadBytes;
      c.free(drop);
      drop = older;
    }
  }

  /** keyChunks is the number of chunks of the key index (a repack pass). */
  keyChunks(): number {
    return this.index.chunkCount;
  }

  /** keyOfRow returns row r's key: its string, or one made from the packed keys it is in. */
  private keyOfRow(r: number): Bytes {
    const k = this.rowKey[r];
    if (typeof k === 'string') return k;
    if (k !== undefined) return k.keyAt(this.rowKeyNo[r]!);
    return this.restoredKeys!.keyAt(this.restoredKeyNo![r]!);
  }

  /**
   * repackKeys packs the keys of the index's chunks left alone since the last pass into bytes
   * again (OrderedMap.repackCold), looking at up to chunksMax chunks, and points every row of
   * those keys at the chunk's table instead of the string: a key written since the restart
   * and then left alone costs no string. It returns the keys packed.
   */
  repackKeys(chunksMax: number): number {
    const prev = this.cols.prev;
    if (this.rowKeyNo.length < this.rowKey.length) {
      this.rowKeyNo = grown(this.rowKeyNo, Math.max(this.rowKey.length, this.rowKeyNo.length * 2));
    }
    return this.index.repackCold(chunksMax, (heads) => Int32Array.from(heads), (table, heads) => {
      for (let i = 0; i < heads.length; i++) {
        for (let r = heads[i]!; r >= 0; r = prev[r]!) {
          if (this.rowKey[r] === undefined) continue; // a restored row: packed already
          this.rowKey[r] = table;
          this.rowKeyNo[r] = i;
        }
      }
    });
  }

  private setRowKey(r: number, key: Bytes): void {
    if (r === this.rowKey.length) this.rowKey.push(key);
    else this.rowKey[r] = key;
  }

  private logPush(r: number, sub: number): void {
    if (this.logLen === this.log.length) {
      const [log, logSub] = [this.log, this.logSub];
      this.log = grown(log, log.length * 2);
      this.logSub = grown(logSub, this.log.length);
      this.logDroppedBytes += replacedBytes(log, this.log) + replacedBytes(logSub, this.logSub);
    }
    this.logSub[this.logLen] = sub;
    this.log[this.logLen++] = r;
  }

  /** firstAtOrAfter returns the first log position whose row has modRevision ≥ rev. */
  private firstAtOrAfter(rev: number): number {
    let lo = 0;
    let hi = this.logLen;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.cols.mod[this.log[mid]!]! < rev) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

/**
 * latestOfSnapshot returns the live keys' newest versions straight from a shard dump's
 * columns (either format) — what `ShardStore.fromSnapshot(x).latest()` yields, without
 * building the store. Rows are in revision order, so a key's last row is its newest
 * version; a tombstone there means the key is deleted.
 */
export function latestOfSnapshot(x: unknown): KeyValue[] {
  const s = decodeShardSnapshot(x);
  const lastRow = new Int32Array(s.keys.count).fill(-1);
  for (let i = 0; i < s.rows; i++) lastRow[s.key[i]!] = i;
  const valueAt = valueOffsets(s);
  const view = Buffer.from(s.valueBytes.buffer, s.valueBytes.byteOffset, s.valueBytes.length);
  const out: KeyValue[] = [];
  for (let k = 0; k < s.keys.count; k++) {
    const i = lastRow[k]!;
    if (i < 0 || s.version[i] === 0) continue;
    const at = valueAt[i]!;
    out.push({
      key: s.keys.keyAt(k), createRevision: s.create[i]! as Revision,
      modRevision: s.mod[i]! as Revision, version: s.version[i]!,
      value: view.toString('latin1', at, at + s.valueLens[i]!), lease: s.lease[i]! as LeaseId,
    });
  }
  return out;
}
