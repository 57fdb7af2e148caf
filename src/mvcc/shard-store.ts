import type { Bytes, LeaseId, Revision } from '../types.js';
import type { Change, KeyValue, RangeRequest, RangeResponse } from './types.js';
import { assert, AssertionFailed } from '../assert.js';
import { ErrCompacted, ErrFutureRev, ErrSnapshotCorrupt } from '../errors.js';
import { inKeyRange, keyRangeOf } from './key-range.js';
import { partialRange } from './range-plan.js';
import { initialRevision, noRevision, revision as toRevision } from './revision.js';
import { TreeIndex } from './tree-index.js';

/**
 * entryOverheadBytes approximates what one stored version costs beyond its key and value
 * (etcd: a 17-byte bbolt key plus the protobuf KeyValue's integer fields and framing). It
 * only feeds stats(), which backs etcd_mvcc_db_total_size_in_bytes.
 */
const entryOverheadBytes = 48;

/** shardSnapshotFormat names the layout of ShardSnapshot; bump it when the layout changes. */
export const shardSnapshotFormat = 'myetcd.mvcc.shard.v1';

/**
 * ShardSnapshot is the plain-object form of a ShardStore: arrays of numbers and strings
 * only, column by column (msgpack packs a number array far tighter than an array of
 * objects), with each distinct key stored once.
 *
 * Row i is one retained version: keys[key[i]] at mod[i], with create[i], version[i],
 * lease[i], value[i]; a tombstone has version 0 (and zeros/"" elsewhere). Rows come in two
 * runs: first the versions older than compactRevision (at most one per key, the one reads
 * at compactRevision still see), in key order; then the change log — every version at or
 * after compactRevision — in revision order, a transaction's changes in their original
 * order. Replaying the rows in order rebuilds the store.
 */
export interface ShardSnapshot {
  format: typeof shardSnapshotFormat;
  currentRevision: number;
  compactRevision: number;
  keys: string[];
  key: number[];
  mod: number[];
  create: number[];
  version: number[];
  lease: number[];
  value: string[];
}

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
 * ShardStore holds the MVCC history of one partition of the key space (the keys k with
 * shardOf(k, n) === this shard). It never decides anything: the Applier on the Raft thread
 * turns each committed write into a revision and a list of Changes, and every shard gets
 * apply(revision, its share of the changes) — possibly none, so that all shards agree on
 * currentRevision and a cross-shard read at one revision sees whole transactions or none.
 *
 * Layout: a TreeIndex (key → KeyIndex, the versions of the key) answers range reads at any
 * retained revision; a change log (every version at or after compactRevision, in revision
 * order) answers history() for watch catch-up without scanning the key space, and makes
 * compaction cost proportional to the changes since the previous one.
 */
export class ShardStore {
  /** currentRevision is the last revision applied (every shard has the same). */
  currentRevision: Revision;
  /** compactRevision: reads below it fail with ErrCompacted; 0 before any compaction. */
  compactRevision: Revision;

  private readonly index = new TreeIndex();
  /** log holds every retained version with modRevision ≥ compactRevision, in order. */
  private log: KeyValue[] = [];
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
   */
  apply(revision: Revision, changes: readonly Change[]): void {
    assert(revision > this.currentRevision, 'apply moves the revision forward',
      [revision, this.currentRevision]);
    for (const c of changes) {
      const kv = c.kv;
      assert(kv.modRevision === revision, 'change modRevision differs from its revision');
      let stored: KeyValue;
      if (c.kind === 'put') {
        const prev = this.index.keyIndex(kv.key)?.latest();
        if (prev === undefined) {
          assert(kv.version === 1 && kv.createRevision === revision, 'put does not create key');
        } else {
          assert(
            kv.version === prev.version + 1 && kv.createRevision === prev.createRevision,
            'put does not continue the key generation',
          );
        }
        this.index.put(kv);
        stored = kv;
      } else {
        stored = this.index.tombstone(kv.key, revision);
      }
      this.log.push(stored);
      this.sizeBytes += entryBytes(stored);
    }
    this.currentRevision = revision;
  }

  /**
   * range answers req on this shard's keys at atRevision (0 = currentRevision), as a partial
   * result for mergeRanges: count is this shard's count, kvs its best `limit` in the
   * requested order. The request's own `revision` field is ignored: the gateway resolves it
   * to atRevision so all shards read the same revision.
   */
  range(req: RangeRequest, atRevision: Revision): RangeResponse {
    const rev = atRevision > 0 ? atRevision : this.currentRevision;
    if (rev > this.currentRevision) throw new ErrFutureRev();
    if (rev < this.compactRevision) throw new ErrCompacted();
    const r = keyRangeOf(req.key, req.rangeEnd);
    return partialRange(req, (visit) => this.index.visit(r, rev, visit));
  }

  /**
   * compact drops the history no read at revision ≥ `revision` needs (KeyIndex.compact per
   * key). Compacting at or below compactRevision does nothing (so a replayed compaction is
   * harmless); beyond currentRevision is ErrFutureRev. Cost: the changes since the last
   * compaction, not the key space (a key without such changes has nothing to drop).
   */
  compact(revision: Revision): void {
    if (revision <= this.compactRevision) return;
    if (revision > this.currentRevision) throw new ErrFutureRev();
    const end = firstAfter(this.log, revision);
    const touched = new Set<Bytes>();
    for (let i = 0; i < end; i++) touched.add(this.log[i]!.key);
    for (const key of touched) {
      for (const kv of this.index.compactKey(key, revision)) this.sizeBytes -= entryBytes(kv);
    }
    // Of the versions at exactly `revision`, keep those the index kept (a put that is the
    // key's newest at `revision`): history(revision, ...) still serves them, as in etcd.
    const kept: KeyValue[] = [];
    for (let i = firstAtOrAfter(this.log, revision); i < end; i++) {
      const kv = this.log[i]!;
      if (this.index.keyIndex(kv.key)?.entries[0] === kv) kept.push(kv);
    }
    this.log = kept.concat(this.log.slice(end));
    this.compactRevision = revision;
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
   */
  history(
    fromRevision: Revision,
    toRevision: Revision,
    key: Bytes,
    rangeEnd?: Bytes,
    limit = 0,
  ): Change[] {
    assert(fromRevision >= 1, 'history starts at revision 1 or later', fromRevision);
    if (fromRevision < this.compactRevision) throw new ErrCompacted();
    const to = Math.min(toRevision, this.currentRevision);
    const r = keyRangeOf(key, rangeEnd);
    const out: Change[] = [];
    for (let i = firstAtOrAfter(this.log, fromRevision); i < this.log.length; i++) {
      const kv = this.log[i]!;
      if (kv.modRevision > to) break;
      const lastRev = out[out.length - 1]?.kv.modRevision;
      if (limit > 0 && out.length >= limit && lastRev !== kv.modRevision) break;
      if (!inKeyRange(r, kv.key)) continue;
      const ki = this.index.keyIndex(kv.key)!;
      const prevKv = ki.previous(ki.indexOf(kv));
      const change: Change = { kind: kv.version > 0 ? 'put' : 'delete', kv };
      if (prevKv !== undefined) change.prevKv = prevKv;
      out.push(change);
    }
    return out;
  }

  /** latest yields the newest version of every live key, in key order (to rebuild the
   * Applier from shards). */
  *latest(): IterableIterator<KeyValue> {
    const live: KeyValue[] = [];
    this.index.forEachKey((ki) => {
      const kv = ki.latest();
      if (kv !== undefined) live.push(kv);
    });
    yield* live;
  }

  /** stats reports the size of the retained history. */
  stats(): ShardStoreStats {
    return { keys: this.index.keyCount, revisions: this.index.entryCount, bytes: this.sizeBytes };
  }

  /** toSnapshot returns the plain-object form (see ShardSnapshot). */
  toSnapshot(): ShardSnapshot {
    const s: ShardSnapshot = {
      format: shardSnapshotFormat,
      currentRevision: this.currentRevision,
      compactRevision: this.compactRevision,
      keys: [],
      key: [],
      mod: [],
      create: [],
      version: [],
      lease: [],
      value: [],
    };
    const keyNo = new Map<Bytes, number>();
    const row = (kv: KeyValue): void => {
      let k = keyNo.get(kv.key);
      if (k === undefined) {
        k = s.keys.length;
        keyNo.set(kv.key, k);
        s.keys.push(kv.key);
      }
      s.key.push(k);
      s.mod.push(kv.modRevision);
      s.create.push(kv.createRevision);
      s.version.push(kv.version);
      s.lease.push(kv.lease);
      s.value.push(kv.value);
    };
    this.index.forEachKey((ki) => {
      const first = ki.entries[0]!;
      if (first.modRevision < this.compactRevision) row(first);
    });
    for (const kv of this.log) row(kv);
    return s;
  }

  /** fromSnapshot rebuilds a ShardStore from toSnapshot's output (possibly after a msgpack
   * or JSON round trip); anything malformed is ErrSnapshotCorrupt. */
  static fromSnapshot(x: unknown): ShardStore {
    const s = checkSnapshot(x);
    const store = new ShardStore({
      revision: s.currentRevision,
      compactRevision: s.compactRevision,
    });
    try {
      let lastMod = 0;
      for (let i = 0; i < s.key.length; i++) {
        const kv: KeyValue = {
          key: s.keys[s.key[i]!]!,
          createRevision: s.create[i]! as Revision,
          modRevision: s.mod[i]! as Revision,
          version: s.version[i]!,
          value: s.value[i]!,
          lease: s.lease[i]! as LeaseId,
        };
        assert(kv.modRevision <= s.currentRevision, 'row after currentRevision');
        if (kv.version > 0) {
          assert(kv.createRevision >= 1 && kv.createRevision <= kv.modRevision, 'create rev');
          store.index.put(kv);
        } else {
          assert(kv.createRevision === 0 && kv.lease === 0 && kv.value === '', 'tombstone row');
          store.index.tombstone(kv.key, kv.modRevision);
        }
        const stored = kv.version > 0 ? kv : store.index.keyIndex(kv.key)!.entries.at(-1)!;
        if (kv.modRevision >= s.compactRevision) {
          assert(kv.modRevision >= lastMod, 'change log out of order');
          lastMod = kv.modRevision;
          store.log.push(stored);
        } else {
          assert(lastMod === 0, 'old row after the change log');
          assert(store.index.keyIndex(kv.key)!.entries.length === 1, 'two old rows for a key');
        }
        store.sizeBytes += entryBytes(stored);
      }
    } catch (e) {
      if (e instanceof AssertionFailed) throw new ErrSnapshotCorrupt(e.message);
      throw e;
    }
    return store;
  }
}

function entryBytes(kv: KeyValue): number {
  return kv.key.length + kv.value.length + entryOverheadBytes;
}

/** firstAtOrAfter returns the first index in log with modRevision ≥ rev. */
function firstAtOrAfter(log: readonly KeyValue[], rev: number): number {
  let lo = 0;
  let hi = log.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (log[mid]!.modRevision < rev) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** firstAfter returns the first index in log with modRevision > rev. */
function firstAfter(log: readonly KeyValue[], rev: number): number {
  return firstAtOrAfter(log, rev + 1);
}

/**
 * latestOfSnapshot returns the live keys' newest versions straight from a shard snapshot's
 * columns — what `ShardStore.fromSnapshot(x).latest()` yields, without building the index and
 * history (the Raft node rebuilds its Applier this way at start-up, once per shard). Rows are
 * in revision order, so a key's last row is its newest version; a tombstone there means the
 * key is deleted.
 */
export function latestOfSnapshot(x: unknown): KeyValue[] {
  const s = checkSnapshot(x);
  const lastRow = new Int32Array(s.keys.length).fill(-1);
  for (let i = 0; i < s.key.length; i++) lastRow[s.key[i]!] = i;
  const out: KeyValue[] = [];
  for (let k = 0; k < s.keys.length; k++) {
    const i = lastRow[k]!;
    if (i < 0 || s.version[i] === 0) continue;
    out.push({
      key: s.keys[k]!, createRevision: s.create[i]! as Revision,
      modRevision: s.mod[i]! as Revision, version: s.version[i]!, value: s.value[i]!,
      lease: s.lease[i]! as LeaseId,
    });
  }
  return out;
}

function checkSnapshot(x: unknown): ShardSnapshot {
  const bad = (what: string): never => {
    throw new ErrSnapshotCorrupt(what);
  };
  if (typeof x !== 'object' || x === null) return bad('not an object');
  const s = x as Record<string, unknown>;
  if (s.format !== shardSnapshotFormat) return bad(`format ${String(s.format)}`);
  const rev = (v: unknown, name: string): void => {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) bad(`${name} ${String(v)}`);
  };
  rev(s.currentRevision, 'currentRevision');
  rev(s.compactRevision, 'compactRevision');
  if ((s.compactRevision as number) > (s.currentRevision as number)) bad('compact > current');
  const strings = (v: unknown, name: string): string[] => {
    if (!Array.isArray(v) || !v.every((e) => typeof e === 'string' && !/[^\0-\xff]/.test(e))) {
      return bad(`${name} is not an array of byte strings`);
    }
    return v as string[];
  };
  const numbers = (v: unknown, name: string): number[] => {
    if (!Array.isArray(v) || !v.every((e) => Number.isSafeInteger(e) && e >= 0)) {
      return bad(`${name} is not an array of safe non-negative integers`);
    }
    return v as number[];
  };
  const keys = strings(s.keys, 'keys');
  const key = numbers(s.key, 'key');
  const cols = [numbers(s.mod, 'mod'), numbers(s.create, 'create'), numbers(s.version, 'version')];
  cols.push(numbers(s.lease, 'lease'));
  const value = strings(s.value, 'value');
  if (!cols.every((c) => c.length === key.length) || value.length !== key.length) {
    return bad('columns differ in length');
  }
  if (!key.every((k) => k < keys.length)) bad('key number out of range');
  return s as unknown as ShardSnapshot;
}
