import test, { type ExecutionContext } from 'ava';
import { OrderedMap } from '../src/mvcc/index.js';
import { PackedKeys } from '../src/mvcc/packed-keys.js';
import { seeded } from './helpers/rng.js';

/** A naive twin: a sorted array of [key, value], spliced on every change. */
class Twin {
  items: [string, number][] = [];
  find(k: string): number {
    let i = 0;
    while (i < this.items.length && this.items[i]![0] < k) i++;
    return i;
  }
  set(k: string, v: number): void {
    const i = this.find(k);
    if (this.items[i]?.[0] === k) this.items[i]![1] = v;
    else this.items.splice(i, 0, [k, v]);
  }
  delete(k: string): boolean {
    const i = this.find(k);
    if (this.items[i]?.[0] !== k) return false;
    this.items.splice(i, 1);
    return true;
  }
  get(k: string): number | undefined {
    return this.items.find((e) => e[0] === k)?.[1];
  }
  between(lo?: string, hi?: string): [string, number][] {
    return this.items.filter(([k]) =>
      (lo === undefined || k >= lo) && (hi === undefined || k < hi));
  }
}

/**
 * reloadPacked loads m from its own contents as a restart does (loadPacked): the keys go
 * into a PackedKeys table in a shuffled number order, so the map must follow the numbers it
 * is given, not the table's order. Every chunk is left packed; a walk by forEachKeyRef sees
 * every key and value and touches none.
 */
function reloadPacked(t: ExecutionContext, m: OrderedMap<number>, rnd: () => number): void {
  const entries = [...m.ascend()];
  const order = entries.map((_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  // Key entries[i] is number tableNo[i] of the table.
  const tableNo = new Uint32Array(entries.length);
  order.forEach((i, no) => {
    tableNo[i] = no;
  });
  const table = PackedKeys.fromStrings(order.map((i) => entries[i]![0]));
  m.loadPacked(table, tableNo, new Int32Array(entries.map(([, v]) => v)));
  const chunks = m.packedChunks();
  t.is(chunks, Math.ceil(entries.length / 256), 'every chunk packed after a load');
  const seen: [string, number][] = [];
  m.forEachKeyRef((k, tbl, no, v) => {
    seen.push([k ?? tbl!.keyAt(no), v]);
  });
  t.deepEqual(seen, entries);
  t.is(m.packedChunks(), chunks, 'forEachKeyRef touches no chunk');
}

/**
 * agreesWithTwin runs `steps` random operations on an OrderedMap and on a Twin, over keys
 * drawn by `key`, checks every answer (gets, deletes, ranges both ways, the size), reloads the
 * map from its own contents halfway (a restart's loadSorted) and, for byte keys, a third of
 * the way (loadPacked: the operations after it run on chunks touched one by one), and
 * returns both.
 */
function agreesWithTwin(t: ExecutionContext, seed: number, steps: number,
  key: (rnd: () => number) => string, bytes = false): { m: OrderedMap<number>; twin: Twin } {
  const rnd = seeded(seed);
  const m = new OrderedMap<number>();
  const twin = new Twin();
  for (let step = 0; step < steps; step++) {
    const k = key(rnd);
    const x = rnd();
    const where = `seed ${seed} step ${step}`;
    if (x < 0.5) {
      m.set(k, step);
      twin.set(k, step);
    } else if (x < 0.8) {
      t.is(m.delete(k), twin.delete(k), where);
    } else if (x < 0.98) {
      if (m.get(k) !== twin.get(k) || m.has(k) !== (twin.get(k) !== undefined)) {
        t.fail(`${where}: get ${JSON.stringify(k)}`);
      }
      // A write right after a read of the same key, as the stores do (the map remembers
      // where its last search ended).
      const y = rnd();
      if (y < 0.4) {
        m.set(k, -step);
        twin.set(k, -step);
      } else if (y < 0.6) {
        t.is(m.delete(k), twin.delete(k), where);
      }
    } else {
      const lo = rnd() < 0.2 ? undefined : key(rnd);
      const hi = rnd() < 0.2 ? undefined : key(rnd);
      const want = JSON.stringify(twin.between(lo, hi));
      const wantDown = JSON.stringify([...twin.between(lo, hi)].reverse());
      t.is(JSON.stringify([...m.ascend(lo, hi)]), want, where);
      t.is(JSON.stringify([...m.descend(lo, hi)]), wantDown, where);
      const seen: [string, number][] = [];
      m.forEachDescending(lo, hi, (k2, v) => {
        seen.push([k2, v]);
      });
      t.is(JSON.stringify(seen), wantDown, where);
    }
    if (m.size !== twin.items.length) t.fail(`${where}: size`);
    // Byte keys: now and then the repack cursor moves (what it packs, later operations touch).
    if (bytes && rnd() < 0.02) m.repackCold(1 + Math.floor(rnd() * 16));
    if (bytes && step === Math.floor(steps / 3)) reloadPacked(t, m, rnd);
    if (step === steps >>> 1) {
      const entries = [...m.ascend()];
      m.loadSorted(entries.map(([k2]) => k2), entries.map(([, v]) => v));
      m.checkInvariants();
    }
  }
  m.checkInvariants();
  return { m, twin };
}

test('mvcc: ordered map agrees with a naive sorted array on random operations', (t) => {
  // Short binary keys over a small alphabet: collisions, "\0" and "\xff" bytes, and enough
  // distinct keys (~9,000) for chunks to split and merge.
  agreesWithTwin(t, Number(process.env.MVCC_SEED ?? 0x0ade), 30_000, (rnd) => {
    const n = 1 + Math.floor(rnd() * 5);
    let s = '';
    for (let i = 0; i < n; i++) s += String.fromCharCode([0, 0x61, 0x62, 0x7f, 0x80, 0xff][
      Math.floor(rnd() * 6)]!);
    return s;
  }, true);
});

test('mvcc: a packed ordered map makes the strings of the chunks a lookup touches only', (t) => {
  const keys = Array.from({ length: 10_000 }, (_, i) => `k/${String(i).padStart(5, '0')}`);
  const m = new OrderedMap<number>();
  const nos = new Uint32Array(keys.length).map((_, i) => i);
  m.loadPacked(PackedKeys.fromStrings(keys), nos, new Int32Array(keys.length).map((_, i) => i));
  const chunks = m.packedChunks();
  t.is(chunks, Math.ceil(keys.length / 256));
  t.is(m.size, keys.length);
  t.is(m.firstKey(), 'k/00000'); // the directory's own string: nothing touched
  t.is(m.packedChunks(), chunks);
  t.is(m.get('k/05000'), 5000);
  t.is(m.packedChunks(), chunks - 1, 'one lookup touches one chunk');
  t.is(m.get('k/05001x'), undefined);
  t.is(m.packedChunks(), chunks - 1, 'a miss in the same chunk touches nothing more');
  m.set('k/05000a', -1); // an insert into the touched chunk
  t.is(m.packedChunks(), chunks - 1);
  let n = 0;
  m.forEach('k/00500', 'k/00600', () => {
    n++;
  });
  t.is(n, 100);
  t.is(m.packedChunks(), chunks - 3, 'a scan touches the chunks it crosses (two here)');
  t.is(m.lastKey(), 'k/09999');
  m.checkInvariants();
  t.is(m.packedChunks(), 0);
  t.deepEqual([...m.keys()], [...keys, 'k/05000a'].sort());
});

test('mvcc: forEachValue visits what forEach visits, and makes strings only at the ends of ' +
  'a packed range', (t) => {
  const rnd = seeded(21);
  const keys = Array.from({ length: 6_000 }, (_, i) => `k/${String(i * 3).padStart(5, '0')}`);
  const load = () => {
    const m = new OrderedMap<number>();
    m.loadPacked(PackedKeys.fromStrings(keys), new Uint32Array(keys.length).map((_, i) => i),
      new Int32Array(keys.length).map((_, i) => i * 7));
    return m;
  };
  const key = () => `k/${String(Math.floor(rnd() * 18_500)).padStart(5, '0')}`;
  for (let round = 0; round < 200; round++) {
    const m = load();
    if (round % 2 === 1) for (let j = 0; j < 20; j++) m.set(key() + 'x', -j); // touched chunks
    const [a, b] = [key(), key()].sort();
    const lo = round % 5 === 0 ? undefined : a;
    const hi = round % 7 === 0 ? undefined : b;
    const want: number[] = [];
    m.forEach(lo, hi, (_, v) => {
      want.push(v);
    });
    const got: number[] = [];
    load().forEachValue(lo, hi, (v) => got.push(v)); // on an untouched copy…
    if (round % 2 === 0) t.deepEqual(got, want, `${lo} ${hi}`);
    const again: number[] = [];
    m.forEachValue(lo, hi, (v) => again.push(v)); // …and on the map itself
    t.deepEqual(again, want, `${lo} ${hi}`);
  }
  const m = load();
  const chunks = m.packedChunks();
  let n = 0;
  m.forEachValue('k/00300', 'k/15000', () => {
    n++;
  });
  t.is(n, 4_900);
  t.true(m.packedChunks() >= chunks - 2, 'at most the two end chunks are touched');
});

test('mvcc: repackCold packs a chunk once the cursor has passed it twice with no touch ' +
  'between, and a touch makes its strings again', (t) => {
  const keys = Array.from({ length: 5_000 }, (_, i) => `k/${String(i).padStart(5, '0')}`);
  const m = new OrderedMap<number>();
  for (const [i, k] of keys.entries()) m.set(k, i);
  m.checkInvariants();
  const chunks = Math.ceil(keys.length / 512);
  t.is(m.repackCold(1_000), 0, 'every chunk was touched: the first pass only marks them');
  t.is(m.packedChunks(), 0);
  let vals: number[] | undefined;
  t.is(m.repackCold(1_000, (v) => {
    vals ??= v;
    return Int32Array.from(v);
  }), keys.length, 'the second pass packs them all');
  t.true(vals !== undefined && vals.length > 0, 'packVals gets each chunk\'s values');
  const packed = m.packedChunks();
  t.true(packed >= chunks / 2 && packed > 1, `${packed} chunks packed`);
  t.is(m.get('k/02500'), 2500);
  t.is(m.packedChunks(), packed - 1, 'a lookup makes one chunk\'s strings');
  t.is(m.repackCold(packed), 0, 'touched since the cursor passed: marked, not packed');
  const again = m.repackCold(packed);
  t.true(again > 0 && again <= 512, `a full pass later it is packed (${again} keys)`);
  t.is(m.packedChunks(), packed);
  t.deepEqual([...m.ascend()], keys.map((k, i) => [k, i]), 'the same keys and values');
  m.checkInvariants();
});

test('mvcc: loadPacked refuses keys out of order, at the load or when a chunk is touched',
  (t) => {
    const table = PackedKeys.fromStrings(['a', 'b', 'c']);
    const m = new OrderedMap<number>();
    // Out of order inside a chunk: found when the chunk is touched.
    m.loadPacked(table, new Uint32Array([0, 2, 1]), new Int32Array(3));
    t.throws(() => m.get('b'), { message: /not ascending/ });
    // Out of order across chunks: found at the load, from the chunks' first keys.
    const many = Array.from({ length: 600 }, (_, i) => String(i).padStart(3, '0'));
    const nos = new Uint32Array(600).map((_, i) => i);
    [nos[0], nos[256]] = [nos[256]!, nos[0]!];
    t.throws(() => m.loadPacked(PackedKeys.fromStrings(many), nos, new Int32Array(600)),
      { message: /not ascending/ });
  });

test('mvcc: ordered map keeps its order with characters above 0xff and long shared prefixes',
  (t) => {
    // Keys are byte strings, but the order must stay right for any string: characters above
    // 0xff, and keys that differ only after a long shared prefix (a search that compares a
    // few bytes after the chunk's shared prefix first, tried in session 10, must fall back
    // to whole strings on ties).
    const alphabet = [0, 0x61, 0xff, 0x100, 0x17f, 0xffff];
    const { m, twin } = agreesWithTwin(t, Number(process.env.MVCC_SEED ?? 0x0bee), 20_000,
      (rnd) => {
        let s = rnd() < 0.5 ? 'registry/pods/default/' : '';
        const n = 1 + Math.floor(rnd() * 6);
        for (let i = 0; i < n; i++) s += String.fromCharCode(alphabet[Math.floor(rnd() * 6)]!);
        return s;
      });
    t.deepEqual([...m.ascend()], twin.items);
  });

test('mvcc: ordered map splits and merges chunks under many keys', (t) => {
  const m = new OrderedMap<number>();
  const n = 20_000;
  for (let i = 0; i < n; i++) m.set(String(i * 7919 % n).padStart(6, '0'), i);
  m.checkInvariants();
  t.is(m.size, n);
  for (let i = 0; i < n; i += 2) m.delete(String(i).padStart(6, '0'));
  m.checkInvariants();
  t.is(m.size, n / 2);
  t.is(m.firstKey(), '000001');
  t.is(m.lastKey(), String(n - 1).padStart(6, '0'));
  let visited = 0;
  m.forEach('000100', '000200', () => {
    visited++;
  });
  t.is(visited, 50);
});

test('mvcc: ordered map holds 1,000,000 keys', (t) => {
  // Not a benchmark (see the style notes): it fails only if inserts are quadratic enough to
  // hit the test timeout.
  const m = new OrderedMap<number>();
  const rnd = seeded(1);
  for (let i = 0; i < 1_000_000; i++) m.set((rnd() * 2 ** 52).toString(36), i);
  m.checkInvariants();
  t.true(m.size > 999_000);
  let n = 0;
  m.forEach(undefined, undefined, () => {
    n++;
  });
  t.is(n, m.size);
});

test('mvcc: mutating an ordered map while iterating it is a bug', (t) => {
  const m = new OrderedMap<number>();
  m.set('a', 1);
  m.set('b', 2);
  t.throws(() => m.forEach(undefined, undefined, (k) => {
    m.set(k + 'x', 0);
  }), { message: /mutated/ });
});
