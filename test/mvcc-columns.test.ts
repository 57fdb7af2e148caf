import test, { type ExecutionContext } from 'ava';
import { spawnSync } from 'node:child_process';
import { KvColumns, RunCopier, ShardStore, tombstoneOf, type KeyValue } from '../src/mvcc/index.js';
import {
  loadArena, loadColumn, loadRowsCapacity, setPlainLoads,
} from '../src/mvcc/kv-columns.js';
import type { LeaseId, Revision } from '../src/types.js';
import { pack, unpack } from '../src/runtime/codec.js';
import { binaryString, seeded } from './helpers/rng.js';

const kvOf = (key: string, mod: number, value: string, lease = 0): KeyValue => ({
  key, createRevision: 1 as Revision, modRevision: mod as Revision, version: mod, value,
  lease: lease as LeaseId,
});

test('mvcc: KvColumns agrees with a Map on random add/set/free, across arena rebuilds', (t) => {
  // Values up to 3 KiB over 3,000 operations: the 64 KiB arena fills, doubles, and is rebuilt
  // when freed values reach half of it, many times over. Seed 1's rows take leases only from
  // its 1,000th operation (the lease column is made then); seed 3's revisions pass 2^32 at
  // its 2,000th (the columns widen).
  for (const seed of [1, 2, 3]) {
    const rnd = seeded(seed);
    const c = new KvColumns();
    const model = new Map<number, KeyValue>();
    const anyRow = (): number | undefined => {
      const rows = [...model.keys()];
      return rows.length === 0 ? undefined : rows[Math.floor(rnd() * rows.length)];
    };
    let rebuiltOrGrown = 0;
    let lastArena = c.arenaBytes;
    for (let i = 1; i <= 3000; i++) {
      const v = binaryString(rnd, Math.floor(rnd() * 3072));
      const lease = seed === 1 && i < 1000 ? 0 : Math.floor(rnd() * 3);
      const kv = kvOf('k', seed === 3 && i >= 2000 ? 2 ** 32 + i : i, v, lease);
      const op = rnd();
      const r = anyRow();
      if (op < 0.5 || r === undefined) {
        model.set(c.add(kv), kv);
      } else if (op < 0.8) {
        c.set(r, kv);
        model.set(r, kv);
      } else {
        c.free(r);
        model.delete(r);
        t.true(c.isFree(r));
      }
      if (c.arenaBytes !== lastArena) rebuiltOrGrown++;
      lastArena = c.arenaBytes;
      if (i % 250 === 0) c.compactArena();
    }
    t.true(rebuiltOrGrown > 3, `seed ${seed}: the arena changed ${rebuiltOrGrown} times`);
    t.is(c.liveRows, model.size);
    let live = 0;
    for (const [r, kv] of model) {
      t.deepEqual(c.kv(r, 'k'), kv, `seed ${seed} row ${r}`);
      t.is(c.valueCompare(r, kv.value), 0);
      t.is(c.valueCompare(r, kv.value + '\0'), -1);
      live += kv.value.length;
    }
    t.is(c.valueBytesLive, live);
    t.is(c.mod instanceof Float64Array, seed === 3, `seed ${seed}: widened past 2^32 only`);
  }
});

test('mvcc: KvColumns rows are 24 bytes while revisions fit 32 bits and no row has a lease; ' +
  'a lease column comes with the first lease, float64 revisions with the first past 2^32',
(t) => {
  const c = new KvColumns();
  const cap = c.capacity;
  const arena = c.arenaBytes;
  const rows = [c.add(kvOf('k', 5, 'a')), c.addTombstone(6 as Revision), c.add(kvOf('k', 7, 'b'))];
  t.is(c.allocatedBytes(), cap * 24 + arena);
  t.true(c.mod instanceof Uint32Array);
  t.is(c.leaseOf(rows[0]!), 0);
  rows.push(c.add(kvOf('k', 8, 'c', 2 ** 40 + 1)));
  t.is(c.allocatedBytes(), cap * (24 + 8) + arena, 'a lease column');
  t.is(c.leaseOf(rows[3]!), 2 ** 40 + 1);
  // A freed leased row reused without a lease reads 0, not the old lease.
  c.free(rows[3]!);
  rows[3] = c.add(kvOf('k', 9, 'd'));
  t.is(c.leaseOf(rows[3]!), 0);
  // A version past 2^32 - 1 through set(): the three columns widen, every row intact.
  const big: KeyValue = { ...kvOf('k', 10, 'e'), version: 2 ** 32, createRevision: 2 ** 33 as
    Revision };
  c.set(rows[2]!, big);
  t.true(c.mod instanceof Float64Array && c.create instanceof Float64Array &&
    c.version instanceof Float64Array);
  t.is(c.allocatedBytes(), cap * (24 + 12 + 8) + arena);
  t.deepEqual(c.kv(rows[2]!, 'k'), big);
  t.deepEqual(c.kv(rows[0]!, 'k'), kvOf('k', 5, 'a'));
  t.deepEqual(c.kv(rows[1]!, 'k'), { ...tombstoneOf('k', 6 as Revision), value: '' });
  t.deepEqual(c.kv(rows[3]!, 'k'), kvOf('k', 9, 'd'));
  // A tombstone past 2^32 - 1 widens a store that was narrow.
  const d = new KvColumns();
  const r = d.addTombstone((2 ** 35) as Revision);
  t.is(d.kv(r, 'k').modRevision as number, 2 ** 35);
  t.true(d.mod instanceof Float64Array);
});

test('mvcc: a shard dump keeps revisions past 2^32 exactly; one whose revisions fit restores ' +
  'into uint32 columns', (t) => {
  for (const from of [2, 2 ** 32 - 2]) {
    const s = new ShardStore();
    for (let i = 0; i < 5; i++) {
      const rev = (from + i) as Revision;
      s.apply(rev, [{ kind: 'put', kv: {
        key: `k${i % 2}`, value: `v${i}`, modRevision: rev,
        createRevision: (from + (i % 2)) as Revision, version: 1 + (i >> 1),
        lease: (i === 3 ? 2 ** 50 : 0) as LeaseId,
      } }]);
    }
    const back = ShardStore.fromSnapshot(unpack(pack(s.toSnapshot())));
    const at = (from + 4) as Revision;
    const all = { type: 'range' as const, key: 'k', rangeEnd: 'l' };
    t.deepEqual(back.range(all, at), s.range(all, at), `from ${from}`);
    const earlier = (from + 2) as Revision;
    t.deepEqual(back.range(all, earlier), s.range(all, earlier), `from ${from}: history`);
    const cols = (back as unknown as { cols: KvColumns }).cols;
    t.is(cols.mod instanceof Uint32Array, from === 2, `from ${from}: the column type`);
  }
});

test('mvcc: memory accounting of a small shard store counts columns, values and keys', (t) => {
  const s = new ShardStore();
  const m0 = s.memory();
  // Empty: 1,024 rows of columns (6 uint32 = 24 bytes: no lease column, revisions that fit
  // 32 bits) and a 1,024-row log (a row number and a sub revision: 8 bytes an entry).
  t.is(m0.columnBytes, 1024 * 24 + 1024 * 8);
  t.is(m0.arenaBytes, 64 * 1024);
  t.is(m0.valueBytesLive, 0);
  t.is(m0.heapBytesEstimate, 0);
  t.is(m0.offHeapUsedBytes, 0);
  const put = (key: string, rev: number, version: number, create: number, value: string) =>
    s.apply(rev as Revision, [{ kind: 'put', kv: {
      key, value, modRevision: rev as Revision, createRevision: create as Revision, version,
      lease: 0 as LeaseId,
    } }]);
  put('a', 2, 1, 2, 'x'.repeat(10));
  put('bb', 3, 1, 3, 'y'.repeat(20));
  put('a', 4, 2, 2, 'z'.repeat(30));
  s.apply(5 as Revision, [{ kind: 'delete', kv: tombstoneOf('bb', 5 as Revision) }]);
  const m1 = s.memory();
  t.is(m1.valueBytesLive, 60);
  // Two key strings of ≤ 8 bytes (16 + 8 each), 24 bytes of index per key, 8 per row (4 rows).
  t.is(m1.heapBytesEstimate, 2 * 24 + 2 * 24 + 4 * 8);
  t.is(m1.columnBytes, m0.columnBytes);
  t.is(m1.offHeapUsedBytes, 4 * 24 + 60 + 4 * 8); // 4 rows, 60 value bytes, 4 log entries
  t.deepEqual(s.stats(), { keys: 2, revisions: 4, bytes: 1 + 10 + 2 + 20 + 1 + 30 + 2 + 4 * 48 });
  // Compaction at 5 drops a@2 and the whole of bb (its newest ≤ 5 is a tombstone).
  s.compact(5 as Revision);
  const m2 = s.memory();
  t.is(m2.valueBytesLive, 30);
  t.deepEqual(s.stats(), { keys: 1, revisions: 1, bytes: 1 + 30 + 48 });
  t.is(m2.heapBytesEstimate, 24 + 24 + 4 * 8);
  // The arena was rebuilt (30 of 60 bytes were garbage); 3 rows wait on the free list.
  t.is(m2.arenaBytes, 64 * 1024);
  t.is(m2.offHeapUsedBytes, 4 * 24 + 30 + 3 * 8); // the log is empty: nothing ≥ 5 is left
  // A new version reuses a free row: rows handed out stay 4.
  put('c', 6, 1, 6, 'w');
  t.is(s.memory().offHeapUsedBytes, 4 * 24 + 31 + 2 * 8 + 1 * 8);
  t.is(s.memory().packedKeyBytes, 0);
  // Restored, the keys are packed: their bytes (a, c) and 3 uint32 offsets, a uint32 key
  // number for each of the 2 rows, and the index's packed chunk (a uint32 key number and an
  // int32 row per key); on the heap only the row → key table's 2 empty slots.
  const back = ShardStore.fromSnapshot(unpack(pack(s.toSnapshot())));
  const m3 = back.memory();
  t.is(m3.packedKeyBytes, 2 + 3 * 4 + 2 * 4 + 2 * 4 + 2 * 4);
  t.is(m3.heapBytesEstimate, 2 * 8);
  // A read touches the index's one chunk: its keys become strings again.
  t.is(back.range({ type: 'range', key: 'a' }, 6 as Revision).kvs.length, 1);
  t.is(back.memory().heapBytesEstimate, 2 * 24 + 2 * 24 + 2 * 8);
});

test('mvcc: RunCopier lands every range where a byte-by-byte copy does, joined or not',
  (t) => {
    const rnd = seeded(7);
    const int = (n: number): number => Math.floor(rnd() * n);
    for (let round = 0; round < 50; round++) {
      const src = Uint8Array.from({ length: 4_096 }, () => int(256));
      const want = new Uint8Array(8_192);
      const got = new Uint8Array(8_192);
      const copier = new RunCopier(src, got);
      let at = int(64);
      let o = 0;
      for (let i = 0; i < 60 && at < src.length; i++) {
        const len = Math.min(int(40), src.length - at);
        for (let b = 0; b < len; b++) want[o + b] = src[at + b]!;
        copier.copy(at, len, o);
        o += len + (rnd() < 0.3 ? int(8) : 0); // a gap in the destination breaks a run
        at += len + (rnd() < 0.3 ? int(8) : 0); // and so does one in the source
      }
      copier.flush();
      t.deepEqual(got, want);
    }
  });

test('mvcc: valuePiecesOf gives valueBytesOf\'s bytes, shares long runs of the arena, and ' +
  'its views keep their bytes while the store writes on, grows and rebuilds', (t) => {
  for (const seed of [1, 2, 3, 4]) {
    const rnd = seeded(seed);
    const c = new KvColumns();
    const rows: number[] = [];
    const value = (i: number) => String.fromCharCode(i & 0xff).repeat(Math.floor(rnd() * 40));
    // Rows written in order (their values lie one after the other), some rewritten or freed.
    for (let i = 0; i < 3000; i++) {
      const op = rnd();
      if (op < 0.8 || rows.length === 0) rows.push(c.add(kvOf('k', i + 1, value(i))));
      else if (op < 0.9) c.set(rows[Math.floor(rnd() * rows.length)]!, kvOf('k', i + 1, value(i)));
      else c.free(rows.splice(Math.floor(rnd() * rows.length), 1)[0]!);
    }
    // A dump's order: some rows out of order first (a compacted base), then the rest in order.
    const order = [...rows.slice(0, 200)].sort(() => rnd() - 0.5).concat(rows.slice(200));
    for (const shareMin of [1, 64, 4096, Infinity]) {
      const want = c.valueBytesOf(order);
      const got = c.valuePiecesOf(order, shareMin);
      const hex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.length).toString('hex');
      t.is(Buffer.concat(got.pieces).toString('hex'), hex(want.bytes), `seed ${seed} ${shareMin}`);
      t.is(got.pieces.reduce((n, p) => n + p.length, 0), want.bytes.length);
      t.deepEqual([...got.lens], [...want.lens]);
      const shared = got.pieces.filter((p) => p.buffer instanceof SharedArrayBuffer);
      const copied = got.pieces.filter((p) => !(p.buffer instanceof SharedArrayBuffer));
      for (const p of shared) t.true(p.length >= shareMin, 'only long runs are shared');
      for (const p of copied) t.true(p.length > 0, 'no empty piece');
      if (shareMin === Infinity) t.is(shared.length, 0);
      if (shareMin === 64) t.true(shared.length > 0, `seed ${seed}: runs of the arena shared`);
      // Writes, growth of the arena, then a rebuild: the views still read the same bytes.
      for (let i = 0; i < 4000; i++) c.add(kvOf('k', 5000 + i, value(i)));
      for (let i = 0; i < rows.length; i += 2) c.set(rows[i]!, kvOf('k', 9000 + i, value(i)));
      c.compactArena(true);
      t.is(Buffer.concat(got.pieces).toString('hex'), hex(want.bytes), `seed ${seed}: after`);
    }
  }
});

test('mvcc: KvColumns works when the address space to grow in place is refused', (t) => {
  // Under `ulimit -v`, reserving room to grow in place (resizable buffers) can be refused; the
  // columns then fall back to plain buffers that grow by copying. The child process checks
  // every row against what it wrote and reports which kinds of buffers it got.
  const url = new URL('../src/mvcc/kv-columns.js', import.meta.url).href;
  const script = `
    const { KvColumns } = await import(${JSON.stringify(url)});
    const c = new KvColumns();
    const want = new Map();
    for (let i = 0; i < 200000; i++) {
      const value = String(i).repeat(1 + (i % 7));
      const r = c.add({ key: '', value, modRevision: i + 1, createRevision: 1, version: 1,
        lease: 0 });
      want.set(r, value);
      if (i % 3 === 0) { c.free(r); want.delete(r); }
    }
    c.compactArena(true);
    let bad = 0;
    for (const [r, v] of want) if (c.kv(r, 'k').value !== v || c.mod[r] < 1) bad++;
    const kinds = [c.arena.buffer, c.mod.buffer, c.prev.buffer]
      .map((b) => b.resizable ?? b.growable);
    console.log(JSON.stringify({ rows: want.size, bad, kinds }));`;
  // Limits of address space around what Node needs plus a 1 GiB arena reservation: below it
  // Node itself may fail to start (its own std::bad_alloc), above it the reservation fits.
  // Every run that ran must be right, and at least one must have run on the fallback.
  let fellBack = 0;
  for (const kib of [1_800_000, 2_000_000, 2_200_000, 2_400_000, 2_600_000]) {
    const command = `ulimit -v ${kib} && exec "$0" --input-type=module -e "$1"`;
    const out = spawnSync('bash', ['-c', command, process.execPath, script], { encoding: 'utf8' });
    if (out.status !== 0) {
      // Only Node failing for want of address space is the limit's doing; anything else
      // (a JavaScript error from the store) is a failure.
      t.regex(out.stderr, /bad_alloc|Failed to reserve|out of memory/i, `ulimit -v ${kib}`);
      t.log(`ulimit -v ${kib}: Node could not run (${out.stderr.trim().slice(0, 80)})`);
      continue;
    }
    const r = JSON.parse(out.stdout.trim()) as { rows: number; bad: number; kinds: boolean[] };
    t.is(r.rows, 133_333);
    t.is(r.bad, 0, `ulimit -v ${kib}`);
    if (r.kinds[0] === false) fellBack++;
  }
  t.true(fellBack > 0, 'some run had its arena reservation refused and fell back');
});

test('mvcc: KvColumns counts only the buffers it replaced, not a growth in place', (t) => {
  const c = new KvColumns();
  const kv = (i: number): KeyValue => ({ key: '', value: 'v'.repeat(100), modRevision: i + 1,
    createRevision: 1, version: 1, lease: 0 as LeaseId } as KeyValue);
  // 100,000 rows and 10 MB of values grow the columns and the arena many times, in place.
  for (let i = 0; i < 100_000; i++) c.add(kv(i));
  t.is(c.droppedBytes, 0, 'growth in place leaves nothing to collect');
  // Freeing two thirds, then compacting, rebuilds the arena into a new buffer: the old one
  // is left to the collector.
  for (let r = 0; r < 100_000; r++) if (r % 3 !== 0) c.free(r);
  const arenaBefore = c.arenaBytes;
  c.compactArena();
  t.is(c.droppedBytes, arenaBefore);
  t.true(c.arenaBytes < arenaBefore);
});

test('mvcc: KvColumns.load takes columns built by loadColumn without a copy, copies others, ' +
  'and both grow past the loaded capacity with every row intact (plain loads too)', (t) => {
  const n = 2000;
  const rowsOf = (i: number) => ({ mod: i + 1, value: `v${i}`.repeat(1 + (i % 5)) });
  for (const built of ['loadColumn', 'plain', 'plainLoads'] as const) {
    // plainLoads: what a restore builds where huge pages are on (kv-columns.ts plainLoads).
    setPlainLoads(built === 'plainLoads');
    try {
      loadAndGrow(t, built, n, rowsOf);
    } finally {
      setPlainLoads(false);
    }
  }
});

/** resizable: whether a column's or an arena's buffer is a reservation (grows in place): a
 * resizable ArrayBuffer, or for an arena a growable SharedArrayBuffer. */
const resizable = (a: ArrayBufferView) =>
  (a.buffer as { resizable?: boolean; growable?: boolean }).resizable === true ||
  (a.buffer as { growable?: boolean }).growable === true;

function loadAndGrow(t: ExecutionContext, built: 'loadColumn' | 'plain' | 'plainLoads', n: number,
  rowsOf: (i: number) => { mod: number; value: string }): void {
  {
    const alloc = <T extends Float64Array | Uint32Array | Int32Array>(
      type: { new (n: number): T }, len: number): T =>
      built !== 'plain' ? loadColumn(type as never, len) as T : new type(len);
    // Revisions as a restore's decode leaves them when they fit: uint32 (shard-snapshot.ts).
    const mod = alloc(Uint32Array, n);
    const create = alloc(Uint32Array, n);
    const version = alloc(Uint32Array, n);
    const lease = alloc(Float64Array, n);
    const valueLens = alloc(Uint32Array, n);
    const prev = alloc(Int32Array, n).fill(-1);
    let total = 0;
    for (let i = 0; i < n; i++) total += rowsOf(i).value.length;
    const valueBytes = built !== 'plain' ? loadArena(total) : new Uint8Array(total);
    t.is(resizable(mod), built === 'loadColumn', `${built}: a reservation or a plain buffer`);
    t.is(resizable(valueBytes), built === 'loadColumn', `${built}: the arena`);
    let o = 0;
    for (let i = 0; i < n; i++) {
      const { mod: m, value } = rowsOf(i);
      mod[i] = m;
      create[i] = 1;
      version[i] = m;
      lease[i] = i % 3;
      valueLens[i] = value.length;
      valueBytes.set(Buffer.from(value, 'latin1'), o);
      o += value.length;
    }
    const c = new KvColumns();
    c.load(n, { mod, create, version, lease, valueLens, valueBytes, prev });
    t.is(c.capacity, loadRowsCapacity(n), built);
    t.is(c.mod.buffer === mod.buffer, built !== 'plain', `${built}: mod adopted or copied`);
    t.is(c.prev.buffer === prev.buffer, built !== 'plain', `${built}: prev`);
    t.true(c.mod instanceof Uint32Array, `${built}: mod stays uint32`);
    // Past the capacity: every column grows (out of the plain buffer, into a reservation),
    // and the arena too.
    const extra = loadRowsCapacity(n) - n + 500;
    const added: number[] = [];
    for (let i = 0; i < extra; i++) {
      added.push(c.add(kvOf('k', n + i + 1, 'x'.repeat(200), 0)));
    }
    t.true(c.capacity > loadRowsCapacity(n), `${built}: grew`);
    for (let i = 0; i < n; i++) {
      const kv = c.kv(i, 'k');
      const want = rowsOf(i);
      if (kv.modRevision !== want.mod || kv.value !== want.value || kv.lease !== i % 3 ||
        c.prev[i] !== -1) {
        t.fail(`${built}: row ${i} is ${JSON.stringify(kv)}`);
        return;
      }
    }
    t.deepEqual(added.map((r) => c.kv(r, 'k').modRevision),
      added.map((_, i) => n + i + 1), `${built}: the added rows`);
    // Grown past the load's room, every column and the arena are reservations (a plain
    // load's grow by one copy, then in place).
    const arena = (c as unknown as { arena: Uint8Array }).arena;
    t.true(resizable(c.mod), `${built}: the grown column`);
    t.true(resizable(arena), `${built}: the grown arena`);
    // Freeing most rows and compacting rebuilds the arena: every value left is intact.
    for (let i = 0; i < n; i += 2) c.free(i);
    c.compactArena();
    t.true(resizable((c as unknown as { arena: Uint8Array }).arena));
    for (let i = 1; i < n; i += 2) {
      if (c.kv(i, 'k').value !== rowsOf(i).value) t.fail(`${built}: row ${i} after the rebuild`);
    }
  }
}

test('mvcc: KvColumns loaded over a base of shared memory reads the values in place, agrees ' +
  'with a Map through writes, dumps and rebuilds, and lets the base go at its first rebuild',
(t) => {
  for (const seed of [11, 12, 13]) {
    const rnd = seeded(seed);
    // A base as a snapshot body holds it: other bytes around the values, in shared memory.
    const n = 400;
    const values = Array.from({ length: n }, () => binaryString(rnd, Math.floor(rnd() * 90)));
    const total = values.reduce((s, v) => s + v.length, 0);
    const body = new Uint8Array(new SharedArrayBuffer(total + 100));
    body.fill(0xee);
    const base = body.subarray(37, 37 + total);
    let o = 0;
    for (const v of values) {
      base.set(Buffer.from(v, 'latin1'), o);
      o += v.length;
    }
    const col = <T>(make: (len: number) => T) => make(n);
    const mod = col((k) => Float64Array.from({ length: k }, (_, i) => i + 1));
    const c = new KvColumns();
    c.load(n, {
      mod, create: new Float64Array(n).fill(1), version: mod.slice(), lease: new Float64Array(n),
      valueLens: Uint32Array.from(values, (v) => v.length), prev: new Int32Array(n).fill(-1),
      base,
    });
    t.is(c.sharedBytes, total);
    const model = new Map<number, KeyValue>();
    values.forEach((v, i) => model.set(i, kvOf('k', i + 1, v)));
    for (const [r, kv] of model) t.deepEqual(c.kv(r, 'k'), kv, `seed ${seed}: loaded row ${r}`);
    // New values go to the arena, after the base's offsets; dumps read both; the base's bytes
    // are never written.
    const bodyBefore = Buffer.from(body).toString('hex');
    const rows = [...model.keys()];
    let rebuiltAt = -1;
    for (let i = 0; i < 3000; i++) {
      const op = rnd();
      const kv = kvOf('k', n + i + 1, binaryString(rnd, Math.floor(rnd() * 200)));
      if (op < 0.4 || rows.length === 0) {
        const r = c.add(kv);
        model.set(r, kv);
        rows.push(r);
      } else if (op < 0.85) {
        const r = rows[Math.floor(rnd() * rows.length)]!;
        c.set(r, kv);
        model.set(r, kv);
      } else {
        const r = rows.splice(Math.floor(rnd() * rows.length), 1)[0]!;
        c.free(r);
        model.delete(r);
      }
      if (i % 300 === 0) {
        // A dump's order mixes rows of the base and of the arena, some out of order.
        const order = [...rows].sort(() => rnd() - 0.5).slice(0, 50).concat(rows);
        const want = c.valueBytesOf(order);
        const hex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.length)
          .toString('hex');
        t.is(hex(want.bytes), Buffer.from(order.map((r) => model.get(r)!.value).join(''),
          'latin1').toString('hex'), `seed ${seed} step ${i}: valueBytesOf`);
        for (const shareMin of [1, 64]) {
          const got = c.valuePiecesOf(order, shareMin);
          t.is(Buffer.concat(got.pieces).toString('hex'), hex(want.bytes),
            `seed ${seed} step ${i}: valuePiecesOf ${shareMin}`);
        }
      }
      if (rebuiltAt < 0 && c.sharedBytes === 0) rebuiltAt = i;
    }
    t.true(rebuiltAt > 0, `seed ${seed}: a rebuild let the base go`);
    t.is(Buffer.from(body).toString('hex'), bodyBefore, `seed ${seed}: the base was not written`);
    t.is(c.liveRows, model.size);
    let live = 0;
    for (const [r, kv] of model) {
      t.deepEqual(c.kv(r, 'k'), kv, `seed ${seed} row ${r}`);
      t.is(c.valueCompare(r, kv.value), 0);
      live += kv.value.length;
    }
    t.is(c.valueBytesLive, live);
  }
});

test('mvcc: a dump across the base and the arena shares no run over their boundary', (t) => {
  // Base values, then arena values that follow them in offsets: the two lie in different
  // buffers, so a shared run must stop at the boundary.
  const base = new Uint8Array(new SharedArrayBuffer(300)).fill(0x61);
  const c = new KvColumns();
  const n = 3;
  c.load(n, {
    mod: Float64Array.of(1, 2, 3), create: Float64Array.of(1, 1, 1),
    version: Float64Array.of(1, 1, 1), lease: new Float64Array(n),
    valueLens: Uint32Array.of(100, 100, 100), prev: new Int32Array(n).fill(-1), base,
  });
  const r = c.add(kvOf('k', 4, 'b'.repeat(100)));
  const got = c.valuePiecesOf([0, 1, 2, r], 1);
  t.deepEqual(got.pieces.map((p) => p.length), [300, 100]);
  t.is(Buffer.concat(got.pieces).toString('latin1'), 'a'.repeat(300) + 'b'.repeat(100));
  t.is(got.pieces[0]!.buffer, base.buffer, 'the base run is a view of the base');
});

test('mvcc: KvColumns rows that point into another store\'s arena read as copies would, ' +
  'through its rebuilds, and are copied out of arenas it left', (t) => {
  // `src` is the applier (the latest value of 40 keys, values up to 256 KiB, overwritten:
  // its arena grows in place, passes 4 MiB and is rebuilt into new ones); `dst` is a shard
  // whose rows mostly point into src's arenas (addShared), as ShardApply leaves them.
  for (const seed of [7, 8]) {
    const rnd = seeded(seed);
    const src = new KvColumns();
    const srcRows: number[] = [];
    const dst = new KvColumns();
    const model = new Map<number, KeyValue>();
    const ids = new Set<number>();
    let mostSegments = 0;
    for (let i = 1; i <= 600; i++) {
      const big = rnd() < 0.3;
      const kv = kvOf('k', i, binaryString(rnd, Math.floor(rnd() * (big ? 262144 : 2048))));
      const k = Math.floor(rnd() * 40);
      if (srcRows[k] === undefined) srcRows[k] = src.add(kv);
      else src.set(srcRows[k]!, kv);
      const arena = src.sharedArena()!;
      ids.add(arena.id);
      const at = src.arenaOffsetOf(srcRows[k]!);
      const op = rnd();
      const rows = [...model.keys()];
      if (op < 0.75 || rows.length === 0) {
        const r = at < 0 ? dst.add(kv)
          : dst.addShared(kv, -1, dst.useSegment(arena.id, arena.bytes.buffer as
            SharedArrayBuffer), at, kv.value.length);
        model.set(r, kv);
      } else {
        const r = rows[Math.floor(rnd() * rows.length)]!;
        if (op < 0.85) {
          dst.set(r, kv);
          model.set(r, kv);
        } else {
          dst.free(r);
          model.delete(r);
        }
      }
      if (i % 50 === 0) dst.compactArena();
      mostSegments = Math.max(mostSegments, dst.foreignSegments);
    }
    t.true(ids.size >= 3, `seed ${seed}: src moved to new arenas (${ids.size})`);
    t.true(mostSegments >= 2, `seed ${seed}: dst kept a retired arena (${mostSegments})`);
    t.true(dst.foreignBytes > 0);
    let live = 0;
    const rows = [...model.keys()];
    for (const [r, kv] of model) {
      t.deepEqual(dst.kv(r, 'k'), kv, `seed ${seed} row ${r}`);
      t.is(dst.valueCompare(r, kv.value), 0);
      t.is(dst.valueCompare(r, kv.value + '\0'), -1);
      live += kv.value.length;
    }
    t.is(dst.valueBytesLive + dst.foreignBytes, live, 'own and foreign bytes add up');
    const want = rows.map((r) => model.get(r)!.value).join('');
    t.is(Buffer.from(dst.valueBytesOf(rows).bytes).toString('latin1'), want);
    const pieces = dst.valuePiecesOf(rows, 4096).pieces;
    t.is(Buffer.concat(pieces).toString('latin1'), want);
    t.true(pieces.some((p) => p.buffer instanceof SharedArrayBuffer));
    const cur = src.sharedArena()!;
    const slot = dst.useSegment(cur.id, cur.bytes.buffer as SharedArrayBuffer);
    t.is(dst.useSegment(cur.id), slot, 'an arena it was given is found by its id alone');
    t.throws(() => dst.useSegment(-1), { message: /named before it was given/ });
    // Every row freed: no arena of src is held any more.
    for (const r of rows) dst.free(r);
    dst.compactArena();
    t.is(dst.foreignBytes, 0);
    t.true(dst.foreignSegments <= 1, 'only the current arena may stay (not retired)');
  }
});

test('mvcc: KvColumns that holds its garbage for readers rebuilds only once they compacted ' +
  'past it, and grows in place meanwhile', (t) => {
  // One key overwritten 2,000 times with 1 KiB values: without holding, the arena would be
  // rebuilt every few dozen writes; held, every overwritten value stays (a reader's history)
  // until releaseGarbage says the readers compacted past the revision that overwrote it.
  const c = new KvColumns();
  c.holdGarbage();
  const value = (i: number): string => String(i).padEnd(1024, '.');
  const r = c.add(kvOf('k', 1, value(1)));
  const first = c.sharedArena()!.id;
  for (let i = 2; i <= 2000; i++) c.set(r, kvOf('k', i, value(i)));
  t.is(c.sharedArena()!.id, first, 'no rebuild while the garbage is held');
  t.true(c.arenaBytes >= 2000 * 1024, 'every value is still in the arena');
  t.is(c.value(r), value(2000));
  c.releaseGarbage(1000); // readers compacted at 1000: values overwritten up to it are dead
  for (let i = 2001; i <= 2100 && c.sharedArena()!.id === first; i++) {
    c.set(r, kvOf('k', i, value(i)));
  }
  t.is(c.sharedArena()!.id, first, 'half the arena is not dead yet');
  c.releaseGarbage(2100);
  for (let i = 2101; i <= 4000 && c.sharedArena()!.id === first; i++) {
    c.set(r, kvOf('k', i, value(i)));
  }
  t.not(c.sharedArena()!.id, first, 'rebuilt once the dead garbage reached half of it');
  t.true(c.arenaBytes < 1024 * 1024, 'the rebuilt arena holds the live value, not the history');
});

/**
 * readerOfHoldingStore writes 1 KB values to a store that holds its garbage and mirrors each
 * version into a reader whose rows point into the store's arena, overwrites most keys, lets
 * the store release its garbage, then writes new keys until it rebuilds its arena; the reader
 * then frees the overwritten versions (its compaction) and looks at its retired arenas. With
 * `dropTable` the store drops its relocation table as soon as it has one, before the reader
 * sees the new arena (as the state machine does once every shard was sent it, and a shard
 * that had nothing in the new arena until then never gets it).
 */
function readerOfHoldingStore(t: ExecutionContext, dropTable: boolean):
  { dst: KvColumns; dstRows: Map<number, KeyValue>; rebuilt: boolean } {
  const src = new KvColumns();
  src.holdGarbage();
  const dst = new KvColumns();
  const srcRow = new Map<string, number>();
  const dstRows = new Map<number, KeyValue>(); // dst row → what it must read
  const history: number[] = []; // dst rows of versions overwritten since
  const dstHead = new Map<string, number>();
  let rev = 0;
  let rebuilt = false;
  const write = (key: string): void => {
    const kv = { ...kvOf(key, ++rev, `${key}@${rev}`.padEnd(1024, '~')) };
    const r = srcRow.get(key);
    if (r === undefined) srcRow.set(key, src.add(kv));
    else src.set(r, kv);
    if (dropTable && src.sharedArena()!.relocated !== undefined) {
      src.dropRelocation();
      rebuilt = true;
      t.is(src.sharedArena()!.relocated, undefined, 'the table is dropped');
    }
    const a = src.sharedArena()!;
    const slot = dst.useSegment(a.id, a.bytes.buffer as SharedArrayBuffer, a.relocated);
    if (a.relocated !== undefined) rebuilt = true;
    const old = dstHead.get(key);
    if (old !== undefined) history.push(old);
    const row = dst.addShared(kv, old ?? -1, slot, src.arenaOffsetOf(srcRow.get(key)!),
      kv.value.length);
    dstHead.set(key, row);
    dstRows.set(row, kv);
  };
  for (let i = 0; i < 200; i++) write(`k${i}`);
  for (let pass = 0; pass < 5; pass++) for (let i = 0; i < 150; i++) write(`k${i}`);
  src.releaseGarbage(rev); // the readers compacted: the overwritten values are dead to them
  for (let i = 200; !rebuilt && i < 5000; i++) write(`k${i}`);
  // dst compacts too: the overwritten versions go, then its retired arenas are looked at.
  for (const r of history) {
    dst.free(r);
    dstRows.delete(r);
  }
  dst.compactArena();
  return { dst, dstRows, rebuilt };
}

test('mvcc: a reader follows the values a holding store\'s rebuild moved (Relocation), and ' +
  'copies out only what it alone still holds', (t) => {
  const { dst, dstRows, rebuilt } = readerOfHoldingStore(t, false);
  t.true(rebuilt, 'the source rebuilt its arena');
  t.is(dst.foreignSegments, 1, 'the old arena was let go');
  t.is(dst.valueBytesLive, 0, 'nothing was copied out: the moved values were followed');
  for (const [r, kv] of dstRows) t.deepEqual(dst.kv(r, kv.key), kv);
});

test('mvcc: a holding store drops its relocation table once sent; a reader that never got it ' +
  'copies its old rows out instead and reads the same', (t) => {
  const { dst, dstRows, rebuilt } = readerOfHoldingStore(t, true);
  t.true(rebuilt, 'the source rebuilt its arena and dropped the table');
  t.is(dst.foreignSegments, 1, 'the old arena was let go');
  t.true(dst.valueBytesLive > 0, 'the rows in it were copied out');
  for (const [r, kv] of dstRows) t.deepEqual(dst.kv(r, kv.key), kv);
});
