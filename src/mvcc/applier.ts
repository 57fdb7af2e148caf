import type { Bytes, LeaseId, Revision } from '../types.js';
import { assert, assertNever } from '../assert.js';
import { ownedBytes } from './owned-bytes.js';
import {
  ErrCompacted,
  ErrFutureRev,
  ErrKeyNotFound,
  ErrLeaseExists,
  ErrLeaseNotFound,
} from '../errors.js';
import { tombstoneOf } from './key-index.js';
import { keyRangeOf, type KeyRange } from './key-range.js';
import { mergeRanges } from './merge.js';
import {
  KvColumns, loadArena, loadColumn, type NumberColumn, RunCopier, type SharedArena,
  sharedBaseOf,
} from './kv-columns.js';
import { OrderedMap } from './ordered-map.js';
import { type PackedKeys, PackedKeysBuilder } from './packed-keys.js';
import { partialRangeLazy } from './range-plan.js';
import { type SnapshotColumns, valueOffsets } from './shard-snapshot.js';
import { initialRevision, noRevision, revision as toRevision } from './revision.js';
import type {
  Change,
  Compare,
  CompactionRequest,
  DeleteRangeRequest,
  DeleteRangeResponse,
  KeyValue,
  PutRequest,
  PutResponse,
  RangeRequest,
  RangeResponse,
  RequestOp,
  ResponseOp,
  TxnRequest,
  TxnResponse,
  WriteRequest,
  WriteResponse,
} from './types.js';

/** ApplierOptions sets where a fresh Applier starts (defaults: etcd's fresh store). */
export interface ApplierOptions {
  /** revision of the empty store; the first write gets revision + 1. Default 1. */
  revision?: number;
  /** compactRevision; default 0 (never compacted). */
  compactRevision?: number;
}

/**
 * DeferredRead is a range inside a txn that names a past revision (etcd allows any revision
 * from compactRevision to the revision before the txn). The Applier keeps only the latest
 * state, so it leaves an empty RangeResponse at `path` (indexes into nested
 * TxnResponse.responses) for the caller to replace with mergeRanges(request, the shards'
 * range(request, revision)) — see fillDeferredRead. The answer cannot change the txn's
 * outcome (reads never do), so deferring it keeps the txn deterministic. The shards must be
 * asked before they apply a later compaction beyond `revision`; sending the reads right
 * behind this txn's changes on each shard's channel guarantees that.
 */
export interface DeferredRead {
  path: number[];
  request: RangeRequest;
  revision: Revision;
}

/** ExecuteResult is what one committed write request did. */
export interface ExecuteResult {
  /** revision is the store revision after the request: the previous one + 1 when it wrote
   * something, unchanged otherwise (a delete of nothing, a read-only txn, a compaction). */
  revision: Revision;
  response: WriteResponse;
  /** changes are the writes, in order (etcd's sub revisions), all at `revision`. */
  changes: Change[];
  /** compacted is set by a compaction: shards must compact(compacted) too. */
  compacted?: Revision;
  /** deferredReads lists the txn ranges at past revisions (see DeferredRead). */
  deferredReads?: DeferredRead[];
}

/** LeaseRevokeResult is what revoking a lease did: its keys deleted at one revision. */
export interface LeaseRevokeResult {
  revision: Revision;
  changes: Change[];
}

/**
 * Applier is the single writer of the key space, on the Raft node thread. It holds only the
 * LATEST state — every live key's newest KeyValue, in key order, and the granted lease ids
 * with their keys — which is all etcd's write path reads: compares, put's create revision and
 * version, ignore_value/ignore_lease, delete ranges, prev_kv, ranges inside a txn. It turns
 * each committed request into (revision, response, changes) with etcd v3.4 semantics
 * (etcdserver/apply.go, mvcc/kvstore_txn.go); the shards store the history.
 *
 * Every method either fully applies or throws a typed error leaving the state untouched:
 * a txn's writes are undone if anything in it fails.
 *
 * Example: on a fresh store (revision 1)
 *   put foo=a            → revision 2, foo {create 2, mod 2, version 1}
 *   put foo=b            → revision 3, foo {create 2, mod 3, version 2}
 *   delete foo           → revision 4, change: tombstone foo@4
 *   delete foo           → revision 4 (nothing deleted, no new revision)
 *   txn(if foo.version=0 then put foo=c) → revision 5, foo {create 5, mod 5, version 1}
 */
export class Applier {
  /** revision is the revision of the latest write (etcd's currentRev). */
  revision: Revision;
  /** compactRevision is the last compaction's revision; 0 before any. */
  compactRevision: Revision;

  /** kvs maps every live key to its row in `cols`, which holds the latest version's fields
   * and value bytes off the V8 heap (the compact store, see kv-columns.ts); a version is
   * materialised as a KeyValue only when a request needs it. */
  private readonly kvs = new OrderedMap<number>();
  private readonly cols = new KvColumns();
  /** leases maps each granted lease to the live keys attached to it. */
  private readonly leases = new Map<number, Set<Bytes>>();
  /** leaseTtls holds each granted lease's TTL in seconds: replicated state (it goes through the
   * log with the grant), so every replica restores leases with the same TTL. */
  private readonly leaseTtls = new Map<number, number>();
  /** written: the rows the request being executed wrote (valueOffsetOf). */
  private readonly written = new WrittenRows();

  constructor(opts: ApplierOptions = {}) {
    this.revision = toRevision(opts.revision ?? initialRevision);
    this.compactRevision = toRevision(opts.compactRevision ?? noRevision);
    assert(this.compactRevision <= this.revision, 'compactRevision > revision');
    // The shards keep pointing at the values written here (valueOffsetOf): the versions they
    // hold stay until they compact, so a rebuild must wait for that too.
    this.cols.holdGarbage();
  }

  /**
   * fromLatest rebuilds an Applier from the shards' latest() versions, the revisions from
   * the snapshot and the granted leases. A key whose lease is not in `leases` keeps the id
   * but is attached to nothing (etcd logs and ignores the same on recovery).
   */
  static fromLatest(
    kvs: Iterable<KeyValue>,
    revision: Revision,
    compactRevision: Revision,
    leases: Iterable<LeaseId | { id: number; ttl: number }>,
  ): Applier {
    const a = new Applier({ revision, compactRevision });
    for (const l of leases) {
      const id = typeof l === 'number' ? l : l.id;
      a.leases.set(id, new Set());
      if (typeof l !== 'number') a.leaseTtls.set(id, l.ttl);
    }
    // In key order, a bulk load appends to the ordered map instead of searching it.
    const sorted = [...kvs].sort((x, y) => (x.key < y.key ? -1 : x.key > y.key ? 1 : 0));
    for (const kv of sorted) {
      assert(kv.version >= 1 && kv.modRevision <= revision, 'fromLatest: bad KeyValue');
      assert(!a.kvs.has(kv.key), 'fromLatest: duplicate key');
      a.setRaw(kv.key, kv);
    }
    return a;
  }

  /**
   * fromSnapshotColumns rebuilds an Applier straight from decoded shard dumps
   * (decodeShardSnapshot): each key's last row is its latest version (a tombstone there: the
   * key is deleted). The live keys are merged in key order across the dumps and their fields
   * copied column to column — no KeyValue object is built per key. Equivalent to
   * fromLatest(the dumps' latestOfSnapshot, ...).
   *
   * One dump whose rows are mostly live versions (adoptLiveShareMin) gives its columns to the
   * applier as they are, its other rows freed: fromSnapshotColumns owns the dumps' columns,
   * which the caller must not use after (decodeShardSnapshot makes them for each call).
   *
   * With shareValues, dumps whose values all lie in one piece of shared memory that nobody
   * writes (a snapshot file's body, as the WAL writer read it) leave them there: the applier
   * reads them in place (KvColumns.load with a base) instead of copying them; the shards
   * loading the same dumps do the same.
   */
  static fromSnapshotColumns(
    dumps: readonly SnapshotColumns[],
    revision: Revision,
    compactRevision: Revision,
    leases: Iterable<LeaseId | { id: number; ttl: number }>,
    shareValues = false,
  ): Applier {
    const a = Applier.fromLatest([], revision, compactRevision, leases);
    const lists = dumps.map(liveKeysOf);
    const { keys, nos, from, row } = mergeLiveKeys(lists);
    const n = nos.length;
    for (let j = 0; j < n; j++) {
      const l = lists[from[j]!]!;
      const r = row[j]!;
      assert(l.d.mod[r]! <= revision, 'fromSnapshotColumns: a version after the revision');
      const lease = l.d.lease[r]!;
      if (lease !== 0) a.leases.get(lease)?.add(keys.keyAt(nos[j]!));
    }
    const base = shareValues ? sharedBaseOf(dumps.map((d) => d.valueBytes)) : undefined;
    let rows: Int32Array;
    if (dumps.length === 1 && n >= dumps[0]!.rows * adoptLiveShareMin) {
      rows = row;
      a.cols.load(dumps[0]!.rows, adoptedColumns(dumps[0]!, base));
      // The rows that are not a live key's last version go on the free list.
      const live = new Uint8Array(dumps[0]!.rows);
      for (let j = 0; j < n; j++) live[row[j]!] = 1;
      for (let r = live.length - 1; r >= 0; r--) if (live[r] === 0) a.cols.free(r);
      assert(a.cols.liveRows === n, 'fromSnapshotColumns: live rows are the live keys');
    } else {
      rows = new Int32Array(n);
      for (let j = 0; j < n; j++) rows[j] = j;
      a.cols.load(n, gatheredColumns(lists, from, row, base));
    }
    // No string per key: the map's chunks keep the keys packed until first touched.
    a.kvs.loadPacked(keys, nos, rows);
    return a;
  }

  /**
   * execute applies one committed write request. Expected failures (ErrKeyNotFound,
   * ErrLeaseNotFound, ErrCompacted, ErrFutureRev) are thrown and change nothing; the
   * request should have passed validateWriteRequest (validate.ts) before it was proposed.
   */
  execute(req: WriteRequest): ExecuteResult {
    switch (req.type) {
      case 'put':
        // etcd checks the lease before ignore_value/ignore_lease outside a txn (Put with
        // txn == nil), and after them inside one (checkPut).
        if ((req.lease ?? 0) !== 0 && !this.leases.has(req.lease!)) throw new ErrLeaseNotFound();
        return this.write((w) => w.put(req));
      case 'deleteRange':
        return this.write((w) => w.deleteRange(req));
      case 'txn':
        return this.txn(req);
      case 'compaction':
        return this.compact(req);
      default:
        return assertNever(req);
    }
  }

  /** range reads at the latest revision (req.revision must be 0 or the latest). */
  range(req: RangeRequest): RangeResponse {
    const rev = req.revision ?? 0;
    if (rev > 0) {
      if (rev > this.revision) throw new ErrFutureRev();
      if (rev < this.compactRevision) throw new ErrCompacted();
      assert(rev === this.revision, 'Applier.range reads only the latest revision');
    }
    return this.rangeLatest(req);
  }

  /** get returns the live version of key, if any. */
  get(key: Bytes): KeyValue | undefined {
    const r = this.kvs.get(key);
    return r === undefined ? undefined : this.cols.kv(r, key);
  }

  /** repackKeys packs the keys of the latest state's chunks that were left alone since the
   * last pass into bytes again (OrderedMap.repackCold), looking at up to chunksMax chunks;
   * their rows are kept as an Int32Array meanwhile. It returns the keys packed. */
  repackKeys(chunksMax: number): number {
    return this.kvs.repackCold(chunksMax, (rows) => Int32Array.from(rows));
  }

  /** keyChunks is the number of chunks of the latest state's key map (a repack pass). */
  keyChunks(): number {
    return this.kvs.chunkCount;
  }

  /** memoryBytes is what the latest state's columns and value arena take off the heap. */
  memoryBytes(): number {
    return this.cols.memoryBytes();
  }

  /** sharedArena is the value arena the latest values are written into, for the shards to
   * read them there (KvColumns.sharedArena; valueOffsetOf). */
  sharedArena(): SharedArena | undefined {
    return this.cols.sharedArena();
  }

  /** dropRelocation: every shard has been sent the arena and its relocation table
   * (KvColumns.dropRelocation). */
  dropRelocation(): void {
    this.cols.dropRelocation();
  }

  /**
   * valueOffsetOf is where kv's value lies in sharedArena()'s bytes, when kv is its key's
   * latest version here (a change just applied) and its value was written there; else -1.
   */
  valueOffsetOf(kv: KeyValue): number {
    const r = this.written.rowOf(kv) ?? this.kvs.get(kv.key);
    if (r === undefined || this.cols.mod[r] !== kv.modRevision) return -1;
    if (this.cols.valueLen[r] !== kv.value.length) return -1;
    return this.cols.arenaOffsetOf(r);
  }

  /** sharedValueBytes is the part of memoryBytes() that is a snapshot body's values, read in
   * place and shared with the shards (KvColumns.sharedBytes; fromSnapshotColumns). */
  sharedValueBytes(): number {
    return this.cols.sharedBytes;
  }

  /** usedBytes is what the latest state's columns and values use (KvColumns.usedBytes): the
   * size of the store a snapshot writes, roughly. */
  usedBytes(): number {
    return this.cols.usedBytes();
  }

  /** droppedBytes counts the columns and arenas the applier replaced (KvColumns.droppedBytes):
   * when it changes, a garbage collection has memory to return. */
  droppedBytes(): number {
    return this.cols.droppedBytes;
  }

  /** keyCount is the number of live keys. */
  keyCount(): number {
    return this.kvs.size;
  }

  /** grantLease records a granted lease and its TTL (the expiry clock lives in the lease
   * actor, on the leader). */
  grantLease(id: LeaseId, ttlSeconds = 0): void {
    assert(Number.isSafeInteger(id) && id !== 0, 'lease id is a safe non-zero integer', id);
    if (this.leases.has(id)) throw new ErrLeaseExists();
    this.leases.set(id, new Set());
    this.leaseTtls.set(id, ttlSeconds);
  }

  /** leaseTtl returns a granted lease's TTL in seconds (0 when unknown). */
  leaseTtl(id: LeaseId): number {
    return this.leaseTtls.get(id) ?? 0;
  }

  /** leasesWithTtl lists every granted lease with its TTL (for snapshots), ascending. */
  leasesWithTtl(): { id: number; ttl: number }[] {
    return this.leaseIds().map((id) => ({ id, ttl: this.leaseTtls.get(id) ?? 0 }));
  }

  /**
   * revokeLease forgets the lease and deletes its keys in ONE new revision, in key order
   * (etcd's lessor.Revoke sorts them). With no keys attached, the revision stays.
   */
  revokeLease(id: LeaseId): LeaseRevokeResult {
    const keys = this.leases.get(id);
    if (keys === undefined) throw new ErrLeaseNotFound();
    const sorted = [...keys].sort();
    const r = this.write((w) => {
      for (const k of sorted) w.deleteKey(k);
      return { type: 'deleteRange', deleted: sorted.length };
    });
    this.leases.delete(id);
    this.leaseTtls.delete(id);
    return { revision: r.revision, changes: r.changes };
  }

  /** leaseExists reports whether the lease is granted and not revoked. */
  leaseExists(id: LeaseId): boolean {
    return this.leases.has(id);
  }

  /** keysOfLease returns the live keys attached to the lease, in key order. */
  keysOfLease(id: LeaseId): Bytes[] {
    return [...(this.leases.get(id) ?? [])].sort();
  }

  /** leaseIds returns every granted lease id, ascending (for snapshots). */
  leaseIds(): LeaseId[] {
    return ([...this.leases.keys()] as LeaseId[]).sort((a, b) => a - b);
  }

  /** latest yields every live key's newest version in key order. */
  *latest(): IterableIterator<KeyValue> {
    for (const [k, r] of this.kvs.ascend()) yield this.cols.kv(r, k);
  }

  // ---- internals ----

  /** rangeLatest answers a range from the current map (txn ranges see the txn's writes). */
  rangeLatest(req: RangeRequest): RangeResponse {
    const r = keyRangeOf(req.key, req.rangeEnd);
    let row = 0;
    let key = '';
    const load = (): KeyValue => this.cols.kv(row, key);
    return mergeRanges(req, [partialRangeLazy(req, (visit) => {
      if (r.single) {
        const found = this.kvs.get(r.start);
        if (found === undefined) return;
        row = found;
        key = r.start;
        visit(load);
        return;
      }
      this.kvs.forEach(r.start, r.end, (k, found) => {
        row = found;
        key = k;
        return visit(load);
      });
    })]);
  }

  /** scan calls visit with every live version in r, in key order (materialised). */
  scan(r: KeyRange, visit: (kv: KeyValue) => void): void {
    if (r.single) {
      const row = this.kvs.get(r.start);
      if (row !== undefined) visit(this.cols.kv(row, r.start));
      return;
    }
    this.kvs.forEach(r.start, r.end, (k, row) => visit(this.cols.kv(row, k)));
  }

  /**
   * undo takes back writes this applier made since it was at `revision`: `changes` are all of
   * them, in the order they were made (each ExecuteResult's changes, one request after the
   * other). Each change restores the version it replaced (its prevKv; none: the key did not
   * exist), newest first, so a key written twice ends as it was before the first write. For
   * requests applied ahead of their fsync that then failed (actors/raft/node.ts). Leases
   * granted or revoked, and compactions, cannot be undone: they are never applied ahead.
   */
  undo(changes: readonly Change[], revision: Revision): void {
    assert(revision <= this.revision && revision >= this.compactRevision,
      'undo: a revision outside the store', revision);
    for (let i = changes.length - 1; i >= 0; i--) {
      const c = changes[i]!;
      assert(c.kv.modRevision > revision, 'undo: a change at or before the revision');
      this.setRaw(c.kv.key, c.prevKv);
    }
    this.revision = revision;
  }

  /** setRaw stores (or with undefined removes) key's latest version, moving it between
   * leases. It returns the version's row (-1: removed). */
  setRaw(key: Bytes, kv: KeyValue | undefined): number {
    const row = this.kvs.get(key);
    if (row !== undefined) {
      const oldLease = this.cols.leaseOf(row);
      if (oldLease !== 0) this.leases.get(oldLease)?.delete(key);
    }
    if (kv === undefined) {
      if (row !== undefined) {
        // The shards hold the value until they compact past the delete (revision + 1 at
        // the latest: the one being written).
        this.cols.free(row, this.revision + 1);
        this.kvs.delete(key);
      }
      return -1;
    }
    // A key decoded from a message is a slice of the message's strings: keep a copy.
    let r = row;
    if (r !== undefined) this.cols.set(r, kv);
    else this.kvs.set(ownedBytes(key), r = this.cols.add(kv));
    if (kv.lease !== 0) this.leases.get(kv.lease)?.add(ownedBytes(key));
    return r;
  }

  /** setWritten is setRaw for a request's writer (TxnWriter): the row is remembered for
   * valueOffsetOf. */
  setWritten(key: Bytes, kv: KeyValue | undefined): void {
    this.written.wrote(kv, this.setRaw(key, kv));
  }

  private write(fn: (w: TxnWriter) => WriteResponse): ExecuteResult {
    this.written.reset();
    const w = new TxnWriter(this);
    let response: WriteResponse;
    try {
      response = fn(w);
    } catch (e) {
      w.rollback();
      throw e;
    }
    if (w.changes.length > 0) this.revision = w.rev;
    const result: ExecuteResult = { revision: this.revision, response, changes: w.changes };
    if (w.deferred.length > 0) result.deferredReads = w.deferred;
    return result;
  }

  private txn(req: TxnRequest): ExecuteResult {
    // etcd evaluates every compare — the nested txns' too — against the state before the
    // txn (compareToPath), then checks the chosen puts and ranges, then applies.
    const plan = this.planTxn(req);
    if (!isTxnReadOnly(req)) this.checkOps(req, plan, (op) => this.checkPut(op));
    this.checkOps(req, plan, (op) => this.checkRange(op));
    return this.write((w) => w.txn(req, plan, []));
  }

  private planTxn(req: TxnRequest): TxnPlan {
    const succeeded = req.compare.every((c) => this.compare(c));
    const nested: TxnPlan[] = [];
    for (const op of succeeded ? req.success : req.failure) {
      if (op.type === 'txn') nested.push(this.planTxn(op));
    }
    return { succeeded, nested };
  }

  private checkOps(req: TxnRequest, plan: TxnPlan, check: (op: RequestOp) => void): void {
    let j = 0;
    for (const op of plan.succeeded ? req.success : req.failure) {
      if (op.type === 'txn') this.checkOps(op, plan.nested[j++]!, check);
      else check(op);
    }
  }

  private checkPut(op: RequestOp): void {
    if (op.type !== 'put') return;
    if ((op.ignoreValue || op.ignoreLease) && !this.kvs.has(op.key)) throw new ErrKeyNotFound();
    if ((op.lease ?? 0) !== 0 && !this.leases.has(op.lease!)) throw new ErrLeaseNotFound();
  }

  private checkRange(op: RequestOp): void {
    if (op.type !== 'range') return;
    const rev = op.revision ?? 0;
    if (rev === 0) return;
    if (rev > this.revision) throw new ErrFutureRev();
    if (rev < this.compactRevision) throw new ErrCompacted();
  }

  /** compare is etcd's applyCompare: every existing key in the range must satisfy c; an
   * empty range compares a zero KeyValue, except that a VALUE compare then fails. */
  private compare(c: Compare): boolean {
    let any = false;
    let ok = true;
    this.scan(keyRangeOf(c.key, c.rangeEnd), (kv) => {
      any = true;
      if (ok && !compareKv(c, kv)) ok = false;
    });
    if (!any) return c.target === 'VALUE' ? false : compareKv(c, zeroKv);
    return ok;
  }

  private compact(req: CompactionRequest): ExecuteResult {
    // etcd's store.updateCompactRev: at or below the last compaction is ErrCompacted
    // (etcd starts at -1 so that a first compact(0) passes; we start at 0 and refuse it).
    if (req.revision <= this.compactRevision) throw new ErrCompacted();
    if (req.revision > this.revision) throw new ErrFutureRev();
    this.compactRevision = toRevision(req.revision);
    this.cols.releaseGarbage(this.compactRevision);
    return {
      revision: this.revision,
      response: { type: 'compaction' },
      changes: [],
      compacted: this.compactRevision,
    };
  }
}

/** LiveKeys are one dump's live keys: their numbers in key order and each key's last row. */
interface LiveKeys {
  d: SnapshotColumns;
  last: Int32Array;
  live: Uint32Array;
}

/** liveKeysOf finds a dump's live keys (last row a put), in key order. */
function liveKeysOf(d: SnapshotColumns): LiveKeys {
  const last = new Int32Array(d.keys.count).fill(-1);
  for (let i = 0; i < d.rows; i++) last[d.key[i]!] = i;
  const all = new Uint32Array(d.keys.count);
  let m = 0;
  for (let k = 0; k < d.keys.count; k++) {
    const r = last[k]!;
    if (r >= 0 && d.version[r]! > 0) all[m++] = k;
  }
  const live = d.keys.ascending(all, m) ? all.subarray(0, m) : d.keys.sort(all.subarray(0, m));
  return { d, last, live };
}

/**
 * mergeLiveKeys merges the dumps' live keys into one key order: the j-th key is key nos[j]
 * of the table keys; its dump is `from` and its row there `row`. One dump's table is used
 * as it is; several dumps' keys are copied into a merged table. A key in two dumps is a
 * corrupt snapshot and asserts.
 */
function mergeLiveKeys(lists: readonly LiveKeys[]):
  { keys: PackedKeys; nos: Uint32Array; from: Int32Array; row: Int32Array } {
  let n = 0;
  for (const l of lists) n += l.live.length;
  const from = new Int32Array(n);
  const row = new Int32Array(n);
  if (lists.length === 1) {
    const l = lists[0]!;
    for (let j = 0; j < n; j++) row[j] = l.last[l.live[j]!]!;
    return { keys: l.d.keys, nos: l.live, from, row };
  }
  let bytes = 0;
  for (const l of lists) for (const k of l.live) bytes += l.d.keys.lengthOf(k);
  const merged = new PackedKeysBuilder(n, bytes); // one buffer of its final size
  const pos = lists.map(() => 0);
  let prev = -1;
  let prevNo = 0;
  for (let j = 0; j < n; j++) {
    // N-way merge: N is the shard count, a handful.
    let best = -1;
    for (let i = 0; i < lists.length; i++) {
      const l = lists[i]!;
      if (pos[i]! >= l.live.length) continue;
      if (best < 0) {
        best = i;
        continue;
      }
      const b = lists[best]!;
      if (l.d.keys.compareWith(l.live[pos[i]!]!, b.d.keys, b.live[pos[best]!]!) < 0) best = i;
    }
    const l = lists[best]!;
    const k = l.live[pos[best]!++]!;
    assert(prev < 0 || lists[prev]!.d.keys.compareWith(prevNo, l.d.keys, k) < 0,
      'fromSnapshotColumns: duplicate key');
    [prev, prevNo] = [best, k];
    merged.addFrom(l.d.keys, k);
    from[j] = best;
    row[j] = l.last[k]!;
  }
  const nos = new Uint32Array(n);
  for (let j = 0; j < n; j++) nos[j] = j;
  return { keys: merged.finish(), nos, from, row };
}

/** adoptLiveShareMin: from this share of a single dump's rows being live versions, the
 * applier takes the dump's columns as they are and frees the rest (the free rows are reused
 * by later writes) instead of gathering the live rows into new columns. */
const adoptLiveShareMin = 0.5;

/** LoadedColumns is what KvColumns.load takes. */
type LoadedColumns = Parameters<KvColumns['load']>[1];

/** adoptedColumns gives a dump's own columns to KvColumns.load, its values as a base when
 * `base` is given (sharedBaseOf of this one dump: exactly its values, in row order, which
 * load() cuts by valueLens) or else to be copied. */
function adoptedColumns(d: SnapshotColumns, base: Uint8Array | undefined): LoadedColumns {
  const cols = {
    mod: d.mod, create: d.create, version: d.version, lease: d.lease, valueLens: d.valueLens,
    prev: loadColumn(Int32Array, d.rows).fill(-1),
  };
  return base === undefined ? { ...cols, valueBytes: d.valueBytes } : { ...cols, base };
}

/** gatheredColumns copies the live keys' fields (dump from[j], row row[j]) into new columns
 * in key order, and their values into one arena (or, with `base`, their offsets there). */
function gatheredColumns(lists: readonly LiveKeys[], from: Int32Array, row: Int32Array,
  base: Uint8Array | undefined): LoadedColumns {
  const n = row.length;
  // uint32 revisions when every dump's are (as decoded: KvColumns keeps them so).
  const narrow = lists.every(({ d }) => d.mod instanceof Uint32Array &&
    d.create instanceof Uint32Array && d.version instanceof Uint32Array);
  const numbers = (): NumberColumn =>
    narrow ? loadColumn(Uint32Array, n) : loadColumn(Float64Array, n);
  const cols = {
    mod: numbers(), create: numbers(), version: numbers(), lease: loadColumn(Float64Array, n),
    valueLens: loadColumn(Uint32Array, n), prev: loadColumn(Int32Array, n).fill(-1),
  };
  for (let j = 0; j < n; j++) {
    const d = lists[from[j]!]!.d;
    const r = row[j]!;
    cols.mod[j] = d.mod[r]!;
    cols.create[j] = d.create[r]!;
    cols.version[j] = d.version[r]!;
    const lease = d.lease[r]!;
    if (lease !== 0) cols.lease[j] = lease; // zeros stay untouched pages (load drops them)
    cols.valueLens[j] = d.valueLens[r]!;
  }
  const offsets = lists.map((l) => valueOffsets(l.d));
  if (base !== undefined) {
    const valueAt = new Uint32Array(n);
    for (let j = 0; j < n; j++) {
      const d = lists[from[j]!]!.d;
      valueAt[j] = d.valueBytes.byteOffset - base.byteOffset + offsets[from[j]!]![row[j]!]!;
    }
    return { ...cols, base, valueAt };
  }
  let total = 0;
  for (let j = 0; j < n; j++) total += cols.valueLens[j]!;
  const out = loadArena(total);
  const copiers = lists.map((l) => new RunCopier(l.d.valueBytes, out));
  let o = 0;
  for (let j = 0; j < n; j++) {
    const len = cols.valueLens[j]!;
    copiers[from[j]!]!.copy(offsets[from[j]!]![row[j]!]!, len, o);
    o += len;
  }
  for (const c of copiers) c.flush();
  return { ...cols, valueBytes: out };
}

/** fillDeferredRead puts the answer of a DeferredRead into the txn response. */
export function fillDeferredRead(
  response: WriteResponse,
  path: readonly number[],
  answer: RangeResponse,
): void {
  assert(response.type === 'txn' && path.length > 0, 'deferred read outside a txn');
  let t: TxnResponse = response;
  for (let i = 0; i < path.length - 1; i++) {
    const next = t.responses[path[i]!];
    assert(next?.type === 'txn', 'deferred read path');
    t = next;
  }
  const last = path[path.length - 1]!;
  assert(t.responses[last]?.type === 'range', 'deferred read path end');
  t.responses[last] = answer;
}

/** TxnPlan is etcd's txnPath as a tree: which branch each (nested) txn takes. */
interface TxnPlan {
  succeeded: boolean;
  /** nested holds the plans of the txn ops in the chosen branch, in order. */
  nested: TxnPlan[];
}

/**
 * TxnWriter applies the writes of one request at revision applier.revision + 1, directly
 * to the applier's map (so later ops of a txn read earlier ones, as in etcd's storeTxnWrite)
 * while keeping an undo log for rollback.
 */
class TxnWriter {
  readonly rev: Revision;
  readonly changes: Change[] = [];
  readonly deferred: DeferredRead[] = [];
  private readonly undo: [Bytes, KeyValue | undefined][] = [];

  constructor(private readonly a: Applier) {
    this.rev = (a.revision + 1) as Revision;
  }

  put(p: PutRequest): PutResponse {
    const prev = this.a.get(p.key);
    if (p.ignoreValue || p.ignoreLease) {
      // Only reachable inside a txn when an earlier op deleted the key (a from-key delete
      // that checkIntervals lets through); etcd panics there, we refuse the txn.
      if (prev === undefined) throw new ErrKeyNotFound();
    }
    const kv: KeyValue = {
      key: p.key,
      createRevision: prev === undefined ? this.rev : prev.createRevision,
      modRevision: this.rev,
      version: prev === undefined ? 1 : prev.version + 1,
      value: p.ignoreValue ? prev!.value : p.value,
      lease: (p.ignoreLease ? prev!.lease : (p.lease ?? 0)) as LeaseId,
    };
    this.set(p.key, kv, prev);
    this.changes.push(prev === undefined ? { kind: 'put', kv } : { kind: 'put', kv, prevKv: prev });
    const resp: PutResponse = { type: 'put' };
    if (p.prevKv && prev !== undefined) resp.prevKv = prev;
    return resp;
  }

  deleteRange(d: DeleteRangeRequest): DeleteRangeResponse {
    const victims: KeyValue[] = [];
    this.a.scan(keyRangeOf(d.key, d.rangeEnd), (kv) => victims.push(kv));
    for (const kv of victims) this.deleteKey(kv.key);
    const resp: DeleteRangeResponse = { type: 'deleteRange', deleted: victims.length };
    if (d.prevKv) resp.prevKvs = victims;
    return resp;
  }

  deleteKey(key: Bytes): void {
    const prev = this.a.get(key);
    assert(prev !== undefined, 'delete of a missing key');
    this.set(key, undefined, prev);
    this.changes.push({ kind: 'delete', kv: tombstoneOf(key, this.rev), prevKv: prev });
  }

  range(r: RangeRequest, path: number[]): RangeResponse {
    if ((r.revision ?? 0) > 0) {
      this.deferred.push({ path, request: r, revision: r.revision! as Revision });
      return { type: 'range', kvs: [], more: false, count: 0 };
    }
    return this.a.rangeLatest(r);
  }

  txn(req: TxnRequest, plan: TxnPlan, path: number[]): TxnResponse {
    const ops = plan.succeeded ? req.success : req.failure;
    const responses: ResponseOp[] = [];
    let j = 0;
    ops.forEach((op, i) => {
      switch (op.type) {
        case 'range':
          responses.push(this.range(op, [...path, i]));
          break;
        case 'put':
          responses.push(this.put(op));
          break;
        case 'deleteRange':
          responses.push(this.deleteRange(op));
          break;
        case 'txn':
          responses.push(this.txn(op, plan.nested[j++]!, [...path, i]));
          break;
        default:
          assertNever(op);
      }
    });
    return { type: 'txn', succeeded: plan.succeeded, responses };
  }

  rollback(): void {
    for (let i = this.undo.length - 1; i >= 0; i--) {
      const [key, kv] = this.undo[i]!;
      this.a.setRaw(key, kv);
    }
    this.undo.length = 0;
    this.changes.length = 0;
  }

  /** set stores kv (undefined: deletes) over prev, the key's current version. */
  private set(key: Bytes, kv: KeyValue | undefined, prev: KeyValue | undefined): void {
    this.undo.push([key, prev]);
    this.a.setWritten(key, kv);
  }
}

/**
 * WrittenRows remembers the rows a request's puts went to, in the order written, so that
 * valueOffsetOf, asked for the same puts in the same order (partitionChanges), finds each row
 * without searching the key map again: a 128-put txn searched it 128 times more, ≈ a quarter
 * of the apply in a WAL replay of such txns with a million keys (the performance notes in
 * docs/, session 31). Once the request removes a key, its row may be taken by a later write
 * of another key, so the rows are no longer trusted and every ask searches, as before. Holds
 * one request's puts (bounded by a request's op limit); reset by each request.
 */
class WrittenRows {
  private readonly kvs: KeyValue[] = [];
  private readonly rows: number[] = [];
  private next = 0;
  private exact = true;

  /** reset: a new request. */
  reset(): void {
    this.kvs.length = 0;
    this.rows.length = 0;
    this.next = 0;
    this.exact = true;
  }

  /** wrote records a write: kv at row, or (kv undefined) a removal. */
  wrote(kv: KeyValue | undefined, row: number): void {
    if (kv === undefined) {
      this.exact = false;
      return;
    }
    this.kvs.push(kv);
    this.rows.push(row);
  }

  /** rowOf is kv's row when kv is the next put in the order written; else undefined. */
  rowOf(kv: KeyValue): number | undefined {
    if (!this.exact || this.kvs[this.next] !== kv) return undefined;
    return this.rows[this.next++];
  }
}

/** isTxnReadOnly: no put or delete anywhere in the txn, either branch (etcd's
 * isTxnReadonly). */
export function isTxnReadOnly(req: TxnRequest): boolean {
  const ro = (op: RequestOp): boolean =>
    op.type === 'range' || (op.type === 'txn' && isTxnReadOnly(op));
  return req.success.every(ro) && req.failure.every(ro);
}

const zeroKv: KeyValue = {
  key: '',
  createRevision: 0 as Revision,
  modRevision: 0 as Revision,
  version: 0,
  value: '',
  lease: 0 as LeaseId,
};

/** compareKv is etcd's compareKV: kv's target field against the compare's operand (an
 * absent operand is 0 or the empty value). */
export function compareKv(c: Compare, kv: KeyValue): boolean {
  let r: number;
  switch (c.target) {
    case 'VALUE': {
      const v = c.value ?? '';
      r = kv.value < v ? -1 : kv.value > v ? 1 : 0;
      break;
    }
    case 'CREATE':
      r = Math.sign(kv.createRevision - (c.createRevision ?? 0));
      break;
    case 'MOD':
      r = Math.sign(kv.modRevision - (c.modRevision ?? 0));
      break;
    case 'VERSION':
      r = Math.sign(kv.version - (c.version ?? 0));
      break;
    case 'LEASE':
      r = Math.sign(kv.lease - (c.lease ?? 0));
      break;
    default:
      return assertNever(c.target);
  }
  switch (c.result) {
    case 'EQUAL':
      return r === 0;
    case 'NOT_EQUAL':
      return r !== 0;
    case 'GREATER':
      return r > 0;
    case 'LESS':
      return r < 0;
    default:
      return assertNever(c.result);
  }
}
