import { deepStrictEqual, ok } from 'node:assert';
import test from 'ava';
import {
  Applier,
  decodeShardSnapshot,
  ErrCompacted,
  ErrFutureRev,
  ErrKeyNotFound,
  ErrLeaseNotFound,
  fillDeferredRead,
  mergeRanges,
  EtcdError,
  ShardStore,
  shardOf,
  validateWriteRequest,
  type Change,
  type Compare,
  type KeyValue,
  type RangeRequest,
  type RangeResponse,
  type RequestOp,
  type TxnRequest,
  type TxnResponse,
  type WriteRequest,
  type WriteResponse,
} from '../src/mvcc/index.js';
import { pack, unpack } from '../src/runtime/codec.js';
import { AppliedWriter, decodeApplied, partitionChanges } from '../actors/shard/messages.js';
import type { LeaseId, Revision } from '../src/types.js';
import { seeded } from './helpers/rng.js';

/*
 * The system (Applier + K ShardStores fed with partitioned changes + mergeRanges) against a
 * NAIVE MODEL: a flat list of every (key, revision, kv) ever written, answering everything by
 * brute-force scans, written straight from etcd v3.4's rules without sharing code with the
 * system. Thousands of random operations per shard count; the seed is printed on failure and
 * MVCC_SEED=<n> replays it (MVCC_OPS=<n> changes the length).
 */

// ---------------------------------------------------------------- seeded randomness

class Rng {
  constructor(readonly next: () => number) {}
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.next() * xs.length)]!;
  }
}

// ---------------------------------------------------------------- the naive model

interface Rec {
  key: string;
  rev: number;
  /** null is a tombstone. */
  kv: KeyValue | null;
}

type State = Map<string, KeyValue>;

function selects(key: string, rangeEnd: string | undefined, k: string): boolean {
  if (rangeEnd === undefined || rangeEnd === '') return k === key;
  if (rangeEnd === '\0') return k >= key;
  return k >= key && k < rangeEnd;
}

function sortedIn(state: State, key: string, rangeEnd?: string): KeyValue[] {
  const out = [...state.values()].filter((kv) => selects(key, rangeEnd, kv.key));
  return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/** modelRange is etcd's applierV3backend.Range over a whole state, by the book. */
function modelRange(req: RangeRequest, state: State): RangeResponse {
  const s = sortedIn(state, req.key, req.rangeEnd);
  const count = s.length;
  if (req.countOnly) return { type: 'range', kvs: [], more: false, count };
  const limit = (req.limit ?? 0) > 0 ? req.limit! : 0;
  const nz = (n?: number) => n !== undefined && n !== 0;
  const filtered =
    nz(req.minModRevision) || nz(req.maxModRevision) ||
    nz(req.minCreateRevision) || nz(req.maxCreateRevision);
  const order0 = req.sortOrder ?? 'NONE';
  let f = order0 !== 'NONE' || filtered ? s : limit > 0 ? s.slice(0, limit + 1) : s;
  f = f.filter((kv) =>
    !(nz(req.maxModRevision) && kv.modRevision > req.maxModRevision!) &&
    !(nz(req.minModRevision) && kv.modRevision < req.minModRevision!) &&
    !(nz(req.maxCreateRevision) && kv.createRevision > req.maxCreateRevision!) &&
    !(nz(req.minCreateRevision) && kv.createRevision < req.minCreateRevision!));
  const target = req.sortTarget ?? 'KEY';
  const order = order0 === 'NONE' && target !== 'KEY' ? 'ASCEND' : order0;
  if (order !== 'NONE') {
    const field = (kv: KeyValue): number | string =>
      target === 'KEY' ? kv.key : target === 'VERSION' ? kv.version
        : target === 'CREATE' ? kv.createRevision : target === 'MOD' ? kv.modRevision
          : kv.value;
    const sign = order === 'DESCEND' ? -1 : 1;
    // Array.prototype.sort is stable: ties keep ascending key order.
    f = [...f].sort((a, b) => {
      const x = field(a);
      const y = field(b);
      return x === y ? 0 : x < y ? -sign : sign;
    });
  }
  let more = false;
  if (limit > 0 && f.length > limit) {
    f = f.slice(0, limit);
    more = true;
  }
  if (req.keysOnly) f = f.map((kv) => ({ ...kv, value: '' }));
  return { type: 'range', kvs: f, more, count };
}

class Model {
  recs: Rec[] = [];
  rev = 1;
  compact = 0;
  leases = new Set<number>();

  stateAt(rev: number): State {
    const m: State = new Map();
    for (const r of this.recs) {
      if (r.rev > rev) break;
      if (r.kv === null) m.delete(r.key);
      else m.set(r.key, r.kv);
    }
    return m;
  }

  range(req: RangeRequest, rev: number): RangeResponse {
    const at = rev > 0 ? rev : this.rev;
    if (at > this.rev) throw new ErrFutureRev();
    if (at < this.compact) throw new ErrCompacted();
    return modelRange(req, this.stateAt(at));
  }

  execute(req: WriteRequest): { revision: number; response: WriteResponse; changes: Change[] } {
    const before = this.stateAt(this.rev);
    const work: State = new Map(before);
    const rev = this.rev + 1;
    const changes: Change[] = [];
    const put = (p: Extract<RequestOp, { type: 'put' }>) => {
      const prev = work.get(p.key);
      if ((p.ignoreValue || p.ignoreLease) && !prev) throw new ErrKeyNotFound();
      const kv: KeyValue = {
        key: p.key,
        createRevision: (prev ? prev.createRevision : rev) as Revision,
        modRevision: rev as Revision,
        version: prev ? prev.version + 1 : 1,
        value: p.ignoreValue ? prev!.value : p.value,
        lease: (p.ignoreLease ? prev!.lease : p.lease ?? 0) as LeaseId,
      };
      work.set(p.key, kv);
      changes.push(prev ? { kind: 'put', kv, prevKv: prev } : { kind: 'put', kv });
      return prev && p.prevKv ? { type: 'put' as const, prevKv: prev } : { type: 'put' as const };
    };
    const del = (d: Extract<RequestOp, { type: 'deleteRange' }>) => {
      const victims = sortedIn(work, d.key, d.rangeEnd);
      for (const v of victims) {
        work.delete(v.key);
        const kv = { key: v.key, createRevision: 0, modRevision: rev, version: 0, value: '',
          lease: 0 } as KeyValue;
        changes.push({ kind: 'delete', kv, prevKv: v });
      }
      return d.prevKv
        ? { type: 'deleteRange' as const, deleted: victims.length, prevKvs: victims }
        : { type: 'deleteRange' as const, deleted: victims.length };
    };
    let response: WriteResponse;
    switch (req.type) {
      case 'put':
        if ((req.lease ?? 0) !== 0 && !this.leases.has(req.lease!)) throw new ErrLeaseNotFound();
        response = put(req);
        break;
      case 'deleteRange':
        response = del(req);
        break;
      case 'compaction':
        if (req.revision <= this.compact) throw new ErrCompacted();
        if (req.revision > this.rev) throw new ErrFutureRev();
        this.compact = req.revision;
        return { revision: this.rev, response: { type: 'compaction' }, changes: [] };
      case 'txn': {
        const holds = (c: Compare): boolean => {
          const kvs = sortedIn(before, c.key, c.rangeEnd);
          const cmp = (kv: KeyValue): boolean => {
            const [x, y] =
              c.target === 'VALUE' ? [kv.value, c.value ?? ''] :
                c.target === 'VERSION' ? [kv.version, c.version ?? 0] :
                  c.target === 'CREATE' ? [kv.createRevision, c.createRevision ?? 0] :
                    c.target === 'MOD' ? [kv.modRevision, c.modRevision ?? 0] :
                      [kv.lease, c.lease ?? 0];
            const r = x < y ? -1 : x > y ? 1 : 0;
            return c.result === 'EQUAL' ? r === 0 : c.result === 'NOT_EQUAL' ? r !== 0
              : c.result === 'GREATER' ? r > 0 : r < 0;
          };
          if (kvs.length === 0) {
            if (c.target === 'VALUE') return false;
            return cmp({ key: c.key, createRevision: 0, modRevision: 0, version: 0, value: '',
              lease: 0 } as KeyValue);
          }
          return kvs.every(cmp);
        };
        // Every branch decision is taken up front against `before`.
        const decide = new Map<TxnRequest, boolean>();
        const plan = (t: TxnRequest): void => {
          const ok = t.compare.every(holds);
          decide.set(t, ok);
          for (const op of ok ? t.success : t.failure) if (op.type === 'txn') plan(op);
        };
        plan(req);
        const chosen = (t: TxnRequest): RequestOp[] => {
          const out: RequestOp[] = [];
          for (const op of decide.get(t)! ? t.success : t.failure) {
            if (op.type === 'txn') out.push(...chosen(op));
            else out.push(op);
          }
          return out;
        };
        const ops = chosen(req);
        const writes = (t: TxnRequest): boolean =>
          [...t.success, ...t.failure].some((o) =>
            o.type === 'put' || o.type === 'deleteRange' || (o.type === 'txn' && writes(o)));
        if (writes(req)) {
          for (const op of ops) {
            if (op.type !== 'put') continue;
            if ((op.ignoreValue || op.ignoreLease) && !before.has(op.key)) {
              throw new ErrKeyNotFound();
            }
            if ((op.lease ?? 0) !== 0 && !this.leases.has(op.lease!)) {
              throw new ErrLeaseNotFound();
            }
          }
        }
        for (const op of ops) {
          if (op.type !== 'range' || (op.revision ?? 0) === 0) continue;
          if (op.revision! > this.rev) throw new ErrFutureRev();
          if (op.revision! < this.compact) throw new ErrCompacted();
        }
        const run = (t: TxnRequest): TxnResponse => {
          const ok = decide.get(t)!;
          const responses = (ok ? t.success : t.failure).map((op) => {
            switch (op.type) {
              case 'range':
                return (op.revision ?? 0) > 0
                  ? modelRange(op, this.stateAt(op.revision!))
                  : modelRange(op, work);
              case 'put':
                return put(op);
              case 'deleteRange':
                return del(op);
              case 'txn':
                return run(op);
            }
          });
          return { type: 'txn', succeeded: ok, responses };
        };
        response = run(req);
        break;
      }
    }
    if (changes.length > 0) this.commit(rev, changes);
    return { revision: this.rev, response, changes };
  }

  commit(rev: number, changes: Change[]): void {
    for (const c of changes) {
      this.recs.push({ key: c.kv.key, rev, kv: c.kind === 'put' ? c.kv : null });
    }
    this.rev = rev;
  }

  revokeLease(id: number): { revision: number; changes: Change[] } {
    if (!this.leases.has(id)) throw new ErrLeaseNotFound();
    this.leases.delete(id);
    const live = [...this.stateAt(this.rev).values()].filter((kv) => kv.lease === id);
    const victims = live.sort((a, b) => (a.key < b.key ? -1 : 1));
    const rev = this.rev + 1;
    const changes: Change[] = victims.map((v) => ({
      kind: 'delete',
      kv: { key: v.key, createRevision: 0, modRevision: rev, version: 0, value: '', lease: 0 } as
        KeyValue,
      prevKv: v,
    }));
    if (changes.length > 0) this.commit(rev, changes);
    return { revision: this.rev, changes };
  }

  /** retained: is record i still stored after compaction at this.compact? */
  retained(i: number): boolean {
    const r = this.recs[i]!;
    if (r.rev > this.compact) return true;
    if (r.kv === null) return false;
    for (let j = i + 1; j < this.recs.length; j++) {
      const n = this.recs[j]!;
      if (n.rev > this.compact) break;
      if (n.key === r.key) return false;
    }
    return true;
  }

  history(from: number, to: number, key: string, rangeEnd?: string): Change[] {
    if (from < this.compact) throw new ErrCompacted();
    const out: Change[] = [];
    this.recs.forEach((r, i) => {
      if (r.rev < from || r.rev > to || !selects(key, rangeEnd, r.key)) return;
      if (!this.retained(i)) return;
      let prev: Rec | undefined;
      for (let j = i - 1; j >= 0; j--) {
        if (this.recs[j]!.key === r.key) {
          prev = this.recs[j];
          break;
        }
      }
      const kv = r.kv ?? ({ key: r.key, createRevision: 0, modRevision: r.rev, version: 0,
        value: '', lease: 0 } as KeyValue);
      const c: Change = { kind: r.kv ? 'put' : 'delete', kv };
      if (prev?.kv && r.rev > this.compact) c.prevKv = prev.kv;
      out.push(c);
    });
    return out;
  }

  retainedCount(): number {
    let n = 0;
    for (let i = 0; i < this.recs.length; i++) if (this.retained(i)) n++;
    return n;
  }
}

// ---------------------------------------------------------------- random requests

const keys = ['a', 'aa', 'ab', 'b', 'b\0', 'b\xff', 'ba', 'c', 'cc', 'd', 'e\x80', '\xff'];
const ends = [undefined, '', '\0', 'b', 'c', 'ba', 'e', '\xff', 'a'];
const smallValues = ['', 'x', 'y', 'zz', '\x00v', '\xffw'];
/** bigValues make the applier fill its arena, rebuild it and move to a new one often, and
 * its arenas grow past the size a shard keeps a retired one at (KvColumns.useSegment). */
const bigValues = ['', 'x', 'v'.repeat(3000), 'w'.repeat(300_000), '\xff'.repeat(1_000_000)];
/** values: what puts and compares use (the big values' test swaps them in). */
let values = smallValues;
const leaseIds = [1, 2, 3, 4];

function genRange(rng: Rng, m: Model, pastRevisions: boolean): RangeRequest {
  const r: RangeRequest = { type: 'range', key: rng.pick(keys) };
  const end = rng.pick(ends);
  if (end !== undefined) r.rangeEnd = end;
  if (rng.chance(0.5)) r.limit = rng.int(0, 4);
  if (rng.chance(0.4)) r.sortOrder = rng.pick(['NONE', 'ASCEND', 'DESCEND'] as const);
  const targets = ['KEY', 'VERSION', 'CREATE', 'MOD', 'VALUE'] as const;
  if (rng.chance(0.4)) r.sortTarget = rng.pick(targets);
  if (rng.chance(0.15)) r.keysOnly = true;
  if (rng.chance(0.1)) r.countOnly = true;
  const someRev = () => rng.int(0, m.rev + 1);
  if (rng.chance(0.1)) r.minModRevision = someRev();
  if (rng.chance(0.1)) r.maxModRevision = someRev();
  if (rng.chance(0.1)) r.minCreateRevision = someRev();
  if (rng.chance(0.1)) r.maxCreateRevision = someRev();
  if (pastRevisions && rng.chance(0.2)) r.revision = rng.int(Math.max(0, m.compact - 1), m.rev + 1);
  return r;
}

function genPut(rng: Rng): Extract<RequestOp, { type: 'put' }> {
  const p: Extract<RequestOp, { type: 'put' }> = {
    type: 'put', key: rng.pick(keys), value: rng.pick(values),
  };
  if (rng.chance(0.25)) p.lease = rng.pick(leaseIds);
  if (rng.chance(0.5)) p.prevKv = true;
  if (rng.chance(0.07)) {
    p.ignoreValue = true;
    p.value = '';
  }
  if (rng.chance(0.07)) {
    p.ignoreLease = true;
    delete p.lease;
  }
  return p;
}

function genDelete(rng: Rng): Extract<RequestOp, { type: 'deleteRange' }> {
  const d: Extract<RequestOp, { type: 'deleteRange' }> = {
    type: 'deleteRange',
    key: rng.pick(keys),
  };
  if (rng.chance(0.4)) d.rangeEnd = rng.pick(ends);
  if (rng.chance(0.5)) d.prevKv = true;
  return d;
}

function genCompare(rng: Rng, m: Model): Compare {
  const c: Compare = {
    key: rng.pick(keys),
    target: rng.pick(['VERSION', 'CREATE', 'MOD', 'VALUE', 'LEASE'] as const),
    result: rng.pick(['EQUAL', 'GREATER', 'LESS', 'NOT_EQUAL'] as const),
  };
  if (rng.chance(0.2)) c.rangeEnd = rng.pick(ends);
  const n = rng.int(0, Math.min(m.rev, 3) + (rng.chance(0.5) ? m.rev : 0));
  if (c.target === 'VALUE') {
    if (rng.chance(0.9)) c.value = rng.pick(values);
  } else if (rng.chance(0.9)) {
    const f = { VERSION: 'version', CREATE: 'createRevision', MOD: 'modRevision', LEASE: 'lease' }
      [c.target] as 'version';
    c[f] = c.target === 'LEASE' ? rng.pick([0, ...leaseIds]) : n;
  }
  return c;
}

function genTxn(rng: Rng, m: Model, depth: number): TxnRequest {
  const ops = (): RequestOp[] =>
    Array.from({ length: rng.int(0, 3) }, () => {
      const x = rng.next();
      if (x < 0.3) return genRange(rng, m, true);
      if (x < 0.65) return genPut(rng);
      if (x < 0.85 || depth >= 2) return genDelete(rng);
      return genTxn(rng, m, depth + 1);
    });
  return {
    type: 'txn',
    compare: Array.from({ length: rng.int(0, 3) }, () => genCompare(rng, m)),
    success: ops(),
    failure: ops(),
  };
}

// ---------------------------------------------------------------- the system under test

class System {
  shards: ShardStore[];
  applier = new Applier();
  constructor(readonly n: number) {
    this.shards = Array.from({ length: n }, () => new ShardStore());
  }

  /**
   * feed gives the shards an applied request's changes (and compaction) as the Raft node
   * does: partitioned into each shard's ShardApply bytes, the puts' values left in the
   * applier's arena (shared memory), decoded by the shard, which keeps pointing there.
   */
  feed(revision: Revision, changes: Change[], compact?: number): void {
    const writers = this.shards.map(() => new AppliedWriter());
    partitionChanges(writers, revision, changes, compact, this.applier);
    this.shards.forEach((s, i) => {
      const w = writers[i]!;
      if (w.lastRevision !== revision) w.revision(revision, undefined, false);
      const { arena, arenaId } = w.arenaFields();
      if (arenaId !== undefined) this.arenaIds.add(arenaId);
      const slot = arena === undefined ? 0
        : s.useSegment(arenaId!, arena.buffer as SharedArrayBuffer);
      for (const r of decodeApplied(w.finish())) {
        if (r.revision > s.currentRevision) {
          s.apply(r.revision as Revision, r.changes, r.subs, r.shared, slot);
        }
        if (r.shared !== undefined) this.sharedPuts++;
        if (r.compact !== undefined) s.compact(r.compact as Revision);
      }
    });
  }
  /** sharedPuts: revisions whose values a shard left in the applier's arena. */
  sharedPuts = 0;
  /** arenaIds: the applier arenas the shards were pointed into. */
  arenaIds = new Set<number>();

  read(req: RangeRequest, rev: number): RangeResponse {
    return mergeRanges(req, this.shards.map((s) => s.range(req, rev as Revision)));
  }

  /** restart rebuilds shards from (serialized) snapshots and the applier from them. */
  restart(): void {
    // As a member restarts: every shard and the applier load from the same msgpack'd dumps
    // (the applier column to column, as actors/raft/state-machine.ts does). The stores kept
    // are not read here, so they go on with their keys still packed (OrderedMap.loadPacked),
    // as a restarted member's do; the checks read twins loaded from the same dumps. Every
    // other restart reads the dumps from one buffer of shared memory, as the WAL writer reads
    // a snapshot file, and the stores keep reading their values there (a base); the writes
    // after it go to their own arenas, and a rebuild copies the live values out.
    const shared = this.restarts % 4 < 2;
    const dumps = shared ? inSharedMemory(this.shards.map((s) => pack(s.toSnapshot())))
      : this.shards.map((s) => unpack(pack(s.toSnapshot())));
    this.shards = dumps.map((d) => ShardStore.fromSnapshot(d, shared));
    const viaColumns = (): Applier => Applier.fromSnapshotColumns(
      dumps.map((d) => decodeShardSnapshot(d)), this.applier.revision,
      this.applier.compactRevision, this.applier.leaseIds(), shared);
    const checked = viaColumns();
    const latest = dumps.flatMap((d) => [...ShardStore.fromSnapshot(d).latest()]);
    const viaLatest = Applier.fromLatest(
      latest, this.applier.revision, this.applier.compactRevision, this.applier.leaseIds());
    deepStrictEqual([...checked.latest()], [...viaLatest.latest()]);
    for (const id of viaLatest.leaseIds()) {
      deepStrictEqual(checked.keysOfLease(id), viaLatest.keysOfLease(id));
    }
    if (shared && checked.keyCount() > 0) {
      // The values were left where they were, not copied (no shard, or no applier, whose
      // values are all empty has nothing to share: they count as not shared).
      ok(checked.sharedValueBytes() > 0 || [...checked.latest()].every((kv) => kv.value === ''),
        'the applier shares the dumps\' values');
      for (const s of this.shards) {
        ok(s.sharedValueBytes() > 0 || s.memory().valueBytesLive === 0,
          'a shard shares its dump\'s values');
      }
    }
    this.applier = this.restarts++ % 2 === 0 ? viaColumns() : viaLatest;
  }
  restarts = 0;
}

/** inSharedMemory lays packed dumps one after the other in one SharedArrayBuffer, as a
 * snapshot file's body is read (actors/wal/fs-ops.ts readFileSharedSync), and decodes each
 * from its view: their binary fields are views of that shared memory. */
function inSharedMemory(packed: Uint8Array[]): unknown[] {
  let total = 0;
  for (const p of packed) total += p.length;
  const body = new Uint8Array(new SharedArrayBuffer(total + 16));
  let o = 16; // not at the buffer's start: a dump is a view inside the body
  return packed.map((p) => {
    const view = body.subarray(o, o + p.length);
    body.set(p, o);
    o += p.length;
    return unpack(view);
  });
}

const plain = (x: unknown): unknown => JSON.parse(JSON.stringify(x ?? null));

function outcome<T>(f: () => T): { ok: T } | { err: string } {
  try {
    return { ok: f() };
  } catch (e) {
    if (e instanceof EtcdError) return { err: e.code };
    throw e;
  }
}

/** Tally counts what a run exercised, so a generator change that stops covering something
 * shows up in the test log. */
type Tally = Record<string, number>;

function runRandom(seed: number, shardCount: number, ops: number): Tally {
  const tally: Tally = {};
  const count = (what: string) => {
    tally[what] = (tally[what] ?? 0) + 1;
  };
  const rng = new Rng(seeded(seed));
  const m = new Model();
  const sys = new System(shardCount);
  const fail = (step: number, what: string, got: unknown, want: unknown): never => {
    throw new Error(
      `seed ${seed} (MVCC_SEED=${seed} replays), ${shardCount} shard(s), step ${step}: ${what}\n` +
        `got:  ${JSON.stringify(got)}\nwant: ${JSON.stringify(want)}`);
  };
  const same = (step: number, what: string, got: unknown, want: unknown): void => {
    const g = JSON.stringify(plain(got));
    const w = JSON.stringify(plain(want));
    if (g !== w) fail(step, what, plain(got), plain(want));
  };

  for (let step = 0; step < ops; step++) {
    const x = rng.next();
    if (x < 0.05) {
      // leases
      const id = rng.pick(leaseIds);
      if (rng.chance(0.5)) {
        const want = m.leases.has(id) ? 'LEASE_EXISTS' : undefined;
        const got = outcome(() => sys.applier.grantLease(id as LeaseId));
        if (want === undefined) m.leases.add(id);
        same(step, `grant ${id}`, 'err' in got ? got.err : undefined, want);
      } else {
        const want = outcome(() => m.revokeLease(id));
        const got = outcome(() => sys.applier.revokeLease(id as LeaseId));
        same(step, `revoke ${id}`, got, want);
        if ('ok' in got && got.ok.changes.length > 0) sys.feed(got.ok.revision, got.ok.changes);
      }
    } else {
      let req: WriteRequest;
      if (x < 0.45) req = genPut(rng);
      else if (x < 0.58) req = genDelete(rng);
      else if (x < 0.96) req = genTxn(rng, m, 0);
      else {
        // Mostly modest steps, so plenty of history stays readable; sometimes anything.
        const revision = rng.chance(0.7)
          ? rng.int(m.compact, m.compact + Math.ceil((m.rev - m.compact) / 4))
          : rng.int(Math.max(0, m.compact - 1), m.rev + 1);
        req = { type: 'compaction', revision };
      }
      const invalid = outcome(() => validateWriteRequest(req));
      if ('err' in invalid) {
        count(`invalid ${invalid.err}`);
        continue;
      }
      const want = outcome(() => m.execute(req));
      const got = outcome(() => sys.applier.execute(req));
      count('err' in got ? `${req.type} ${got.err}` : `${req.type} ok`);
      if ('ok' in got && got.ok.deferredReads) count('deferred reads');
      if ('ok' in got && req.type === 'txn' && got.ok.changes.length === 0) count('txn no write');
      if ('ok' in got) {
        const r = got.ok;
        if (r.changes.length > 0 || r.compacted !== undefined) {
          sys.feed(r.revision, r.changes, r.compacted);
        }
        for (const d of r.deferredReads ?? []) {
          fillDeferredRead(r.response, d.path, sys.read(d.request, d.revision));
        }
        same(step, `execute ${JSON.stringify(req)}`,
          { revision: r.revision, response: r.response, changes: r.changes },
          'ok' in want ? want.ok : want);
      } else {
        same(step, `execute ${JSON.stringify(req)} (error)`, got, want);
      }
    }
    same(step, 'revision', sys.applier.revision, m.rev);
    // The Raft node packs the applier's untouched keys while idle (repackKeys): later steps
    // read and write through chunks packed at any point.
    // Twice: the first pass marks the chunks the step touched, the second packs them.
    if (rng.chance(0.1)) for (let k = 0; k < 2; k++) sys.applier.repackKeys(rng.int(1, 8));
    // So do the shards with theirs (ShardStore.repackKeys): reads at old revisions, writes to
    // the same keys, compactions and dumps then find rows whose key is in a packed table.
    for (const s of sys.shards) {
      if (rng.chance(0.1)) for (let k = 0; k < 2; k++) s.repackKeys(rng.int(1, 8));
    }
    for (const s of sys.shards) {
      if (s.currentRevision !== m.rev) fail(step, 'shard revision', s.currentRevision, m.rev);
      const arenas = s.memory().applierArenas;
      tally['most applier arenas a shard read'] = Math.max(
        tally['most applier arenas a shard read'] ?? 0, arenas);
    }

    // Reads at random revisions, some compacted or in the future.
    for (let k = 0; k < 3; k++) {
      const req = genRange(rng, m, false);
      const rev = rng.chance(0.3) ? 0 : rng.int(Math.max(1, m.compact - 1), m.rev + 1);
      same(step, `range ${JSON.stringify(req)} at ${rev}`,
        outcome(() => sys.read(req, rev)), outcome(() => m.range(req, rev)));
    }
    if (rng.chance(0.2)) {
      const req = genRange(rng, m, false);
      same(step, `applier range ${JSON.stringify(req)}`,
        outcome(() => sys.applier.range(req)), outcome(() => m.range(req, 0)));
    }
    if (rng.chance(0.1)) {
      const from = rng.int(Math.max(1, m.compact - 1), m.rev + 1);
      const key = rng.pick(keys);
      const end = rng.pick(ends);
      sys.shards.forEach((s, i) => {
        const want = outcome(() =>
          m.history(from, m.rev, key, end).filter((c) => shardOf(c.kv.key, shardCount) === i));
        same(step, `history shard ${i} from ${from} ${JSON.stringify([key, end])}`,
          outcome(() => s.history(from as Revision, m.rev as Revision, key, end)), want);
      });
    }
    if (rng.chance(0.01) || step === ops - 1) {
      sys.restart();
      const total = sys.shards.reduce((n, s) => n + s.stats().revisions, 0);
      same(step, 'retained revisions after restart', total, m.retainedCount());
      same(step, 'latest after restart', [...sys.applier.latest()],
        sortedIn(m.stateAt(m.rev), '\0', '\0'));
      count('restarts');
    }
  }
  tally['final revision'] = m.rev;
  tally['revisions with values left in the applier arena'] = sys.sharedPuts;
  tally['applier arenas the shards were pointed into'] = sys.arenaIds.size;
  tally['compact revision'] = m.compact;
  return tally;
}

const ops = Number(process.env.MVCC_OPS ?? 3000);
for (const shardCount of [1, 2, 3]) {
  test(`mvcc: applier + ${shardCount} shard(s) + merge agree with the naive model`, (t) => {
    const seeds = process.env.MVCC_SEED !== undefined
      ? [Number(process.env.MVCC_SEED)]
      : [0x5eed + shardCount, 0xbeef * shardCount, (Date.now() ^ (shardCount << 20)) >>> 0];
    for (const seed of seeds) {
      const tally = runRandom(seed, shardCount, ops);
      t.log(`seed ${seed}: ${JSON.stringify(tally)}`);
      t.true(tally['revisions with values left in the applier arena']! > 0);
    }
    t.pass();
  });
}

test('mvcc: with large values the shards keep reading the applier\'s arenas as it rebuilds',
  (t) => {
    // Values up to 1 MB over 12 keys: the applier's arena grows past 4 MiB and, once a
    // compaction has freed half of it from the shards' history too, is rebuilt into a new
    // one; the shards copy their values out of the retired ones (or keep reading them while
    // half of one is still theirs).
    values = bigValues;
    try {
      const seeds = process.env.MVCC_SEED !== undefined ? [Number(process.env.MVCC_SEED)]
        : [2, (Date.now() ^ 0xb16) >>> 0];
      let most = 0;
      for (const seed of seeds) {
        const tally = runRandom(seed, 2, Number(process.env.MVCC_BIG_OPS ?? 300));
        t.log(`seed ${seed}: ${JSON.stringify(tally)}`);
        most = Math.max(most, tally['applier arenas the shards were pointed into']!);
      }
      t.true(most >= 3, 'the applier moved to new arenas under the shards');
    } finally {
      values = smallValues;
    }
  });

// Writes applied ahead of their fsync are taken back when the fsync fails (Applier.undo,
// actors/raft/state-machine.ts applyAhead). Two appliers see the same writes, except that
// one of them also applies doomed batches and undoes them: after every step both must hold
// the same state (latest versions, revision, each lease's keys), and answer the next writes
// alike — so an undo that leaves anything behind shows up at once or later.
function runUndo(seed: number, steps: number): Tally {
  const tally: Tally = {};
  const count = (what: string, n = 1) => {
    tally[what] = (tally[what] ?? 0) + n;
  };
  const rng = new Rng(seeded(seed));
  const m = new Model();
  const a = new Applier();
  const b = new Applier();
  for (const id of leaseIds.slice(0, 3)) {
    a.grantLease(id as LeaseId);
    b.grantLease(id as LeaseId);
    m.leases.add(id);
  }
  const fail = (step: number, what: string, got: unknown, want: unknown): never => {
    throw new Error(`undo seed ${seed} (MVCC_SEED=${seed} replays), step ${step}: ${what}\n` +
      `got:  ${JSON.stringify(plain(got))}\nwant: ${JSON.stringify(plain(want))}`);
  };
  const same = (step: number, what: string, got: unknown, want: unknown): void => {
    if (JSON.stringify(plain(got)) !== JSON.stringify(plain(want))) fail(step, what, got, want);
  };
  const genWrite = (): WriteRequest => {
    const x = rng.next();
    return x < 0.5 ? genPut(rng) : x < 0.65 ? genDelete(rng) : genTxn(rng, m, 0);
  };
  for (let step = 0; step < steps; step++) {
    const doomed = rng.chance(0.35);
    const before = a.revision;
    const changes: Change[] = [];
    for (let i = rng.int(1, 8); i > 0; i--) {
      const req = genWrite();
      if ('err' in outcome(() => validateWriteRequest(req))) continue;
      const got = outcome(() => a.execute(req));
      if (doomed) {
        if ('ok' in got) for (const c of got.ok.changes) changes.push(c);
        continue;
      }
      const want = outcome(() => b.execute(req));
      outcome(() => m.execute(req));
      same(step, `execute ${JSON.stringify(req)}`, got, want);
    }
    if (doomed) {
      a.undo(changes, before as Revision);
      count('batches undone');
      count('changes undone', changes.length);
    } else {
      count('batches kept');
    }
    same(step, 'revision', a.revision, b.revision);
    same(step, 'latest', [...a.latest()], [...b.latest()]);
    for (const id of leaseIds) {
      same(step, `keys of lease ${id}`, a.keysOfLease(id as LeaseId), b.keysOfLease(id as LeaseId));
    }
  }
  return tally;
}

test('mvcc: Applier.undo takes back a batch of writes exactly, and the store goes on alike',
  (t) => {
    const seeds = process.env.MVCC_SEED !== undefined ? [Number(process.env.MVCC_SEED)]
      : [0x0dd, 0x5eed5, Date.now() >>> 0];
    for (const seed of seeds) {
      const tally = runUndo(seed, 1500);
      t.log(`seed ${seed}: ${JSON.stringify(tally)}`);
      t.true((tally['changes undone'] ?? 0) > 500, 'the doomed batches wrote');
    }
  });

test('mvcc: Applier.undo of a key written twice restores the first version, with its lease',
  (t) => {
    const a = new Applier();
    a.grantLease(7 as LeaseId);
    a.execute({ type: 'put', key: 'k', value: 'v0', lease: 7 });
    const before = a.revision;
    const r1 = a.execute({ type: 'put', key: 'k', value: 'v1' });
    const r2 = a.execute({ type: 'deleteRange', key: 'k' });
    const r3 = a.execute({
      type: 'txn', compare: [], failure: [],
      success: [{ type: 'put', key: 'k', value: 'v2' }, { type: 'put', key: 'n', value: 'x' }],
    });
    t.is(a.revision as number, before + 3);
    a.undo([...r1.changes, ...r2.changes, ...r3.changes], before);
    t.is(a.revision, before);
    t.like(a.get('k'), { value: 'v0', version: 1, lease: 7, modRevision: before });
    t.is(a.get('n'), undefined);
    t.deepEqual(a.keysOfLease(7 as LeaseId), ['k']);
    t.throws(() => a.undo([], (before + 1) as Revision), { message: /outside the store/ },
      'a revision the store has not reached is refused');
    const after = a.execute({ type: 'put', key: 'k', value: 'v3' });
    t.throws(() => a.undo(after.changes, after.revision), { message: /at or before/ },
      'a change that is not past the revision is refused');
  });
