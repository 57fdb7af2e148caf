import type { Bytes } from '../types.js';
import { assert } from '../assert.js';
import { PackedKeys } from './packed-keys.js';

/**
 * chunkKeysMax bounds the keys held by one chunk of an OrderedMap. An insert moves at most
 * this many array slots (a memmove V8 does fast), and the chunk directory holds n/256 to
 * n/512 entries, so 1,000,000 keys need ~2,000-4,000 chunks: a directory splice on a split
 * moves a few thousand pointers once per ~256 inserts.
 */
const chunkKeysMax = 512;
/** chunkKeysMin: a chunk shrinking below this is merged into a neighbour when they fit. */
const chunkKeysMin = chunkKeysMax / 4;

interface Chunk<V> {
  keys: Bytes[];
  /** vals[i] is the value of keys[i]. */
  vals: V[];
  /** packed: the chunk's keys and values as loadPacked or repackCold left them, until first
   * touched (keys and vals are empty meanwhile); see `chunk`. */
  packed: PackedChunk<V> | undefined;
  /** touched: the chunk's keys were used since the repack cursor last passed it. */
  touched: boolean;
}

/** PackedChunk is a loaded chunk not touched yet: key nos[i] of table, with value vals[i]. */
interface PackedChunk<V> {
  table: PackedKeys;
  nos: ArrayLike<number>;
  vals: ArrayLike<V>;
}

/** Column is what loadPacked takes its key numbers and values from (a typed array). */
interface Column<T> {
  readonly length: number;
  subarray(begin: number, end: number): ArrayLike<T>;
}

/**
 * OrderedMap is a map from Bytes to V kept in byte order, the in-memory B-tree of etcd's
 * treeIndex. It is a two-level B+tree: a directory of chunk minimum keys over chunks of at
 * most chunkKeysMax sorted keys, each with its values beside it. Lookups are two binary
 * searches; inserts and deletes move at most one chunk's worth of slots, never the whole key
 * space. There is no hash index beside it: a `Map` of every key cost more to build at a
 * restart, and more memory, than it saved on lookups (the performance notes in docs/,
 * session 10).
 *
 * A restart loads a map with loadPacked: its chunks keep their keys as bytes in a PackedKeys
 * table, and a chunk's strings are made when it is first touched (a lookup that lands in it,
 * a scan that crosses it). Only the directory's minimum keys are strings from the start.
 *
 * Iteration is over half-open ranges [lo, hi) in either direction (lo undefined = from the
 * first key, hi undefined = to the last). Mutating the map while iterating it is a bug and
 * trips an assertion.
 *
 * Example: after set("b",2), set("a",1), set("c",3):
 *   [...ascend("b")]          → [["b",2],["c",3]]
 *   [...descend(undefined,"c")] → [["b",2],["a",1]]
 */
export class OrderedMap<V> {
  private chunks: Chunk<V>[] = [];
  /** mins[i] === chunks[i].keys[0]; no chunk is empty. */
  private mins: Bytes[] = [];
  private count = 0;
  /** version changes on every structural mutation; iterators check it. */
  private version = 0;
  /** atChunk, atSlot: where the last find() put a key (see find). */
  private atChunk = 0;
  private atSlot = 0;
  /** foundKey, foundVersion: the last find()'s key, and the version its place is valid at. */
  private foundKey: Bytes | undefined = undefined;
  private foundVersion = -1;
  /** repackAt: the chunk repackCold looks at next. */
  private repackAt = 0;

  /** size is the number of keys. */
  get size(): number {
    return this.count;
  }

  /** chunkCount is the number of chunks (what a full pass of repackCold looks at). */
  get chunkCount(): number {
    return this.chunks.length;
  }

  /** get returns the value stored under key, or undefined. */
  get(key: Bytes): V | undefined {
    return this.find(key) ? this.chunk(this.atChunk).vals[this.atSlot] : undefined;
  }

  /** storedKey returns the map's own string for key (equal to key), or undefined. */
  storedKey(key: Bytes): Bytes | undefined {
    return this.find(key) ? this.chunk(this.atChunk).keys[this.atSlot] : undefined;
  }

  /** has reports whether key is present. */
  has(key: Bytes): boolean {
    return this.find(key);
  }

  /** set inserts or replaces the value under key. */
  set(key: Bytes, value: V): void {
    if (this.chunks.length === 0) {
      this.chunks.push({ keys: [key], vals: [value], packed: undefined, touched: true });
      this.mins.push(key);
      this.count = 1;
      this.version++;
      return;
    }
    const found = this.find(key);
    const ci = this.atChunk;
    const i = this.atSlot;
    const c = this.chunk(ci);
    if (found) {
      c.vals[i] = value; // replacing keeps the structure, so iterators stay valid
      return;
    }
    c.keys.splice(i, 0, key);
    c.vals.splice(i, 0, value);
    if (i === 0) this.mins[ci] = key;
    this.count++;
    this.version++;
    if (c.keys.length > chunkKeysMax) this.split(ci);
  }

  /** delete removes key; it reports whether the key was present. */
  delete(key: Bytes): boolean {
    if (!this.find(key)) return false;
    const ci = this.atChunk;
    const i = this.atSlot;
    const c = this.chunk(ci);
    c.keys.splice(i, 1);
    c.vals.splice(i, 1);
    this.count--;
    this.version++;
    if (c.keys.length === 0) {
      this.chunks.splice(ci, 1);
      this.mins.splice(ci, 1);
      return true;
    }
    if (i === 0) this.mins[ci] = c.keys[0]!;
    if (c.keys.length < chunkKeysMin) this.maybeMerge(ci);
    return true;
  }

  /**
   * find sets (atChunk, atSlot) to key's slot, or to where key would be inserted (in the
   * first chunk when it is below every key), and reports whether key is there. The last
   * search is remembered until the structure changes: a write looks its key up, then stores
   * under it, and the second search is free (each is ~20 string comparisons that miss the
   * cache with a million keys).
   */
  private find(key: Bytes): boolean {
    if (this.chunks.length === 0) {
      this.atChunk = 0;
      this.atSlot = 0;
      return false;
    }
    if (this.foundVersion !== this.version || this.foundKey !== key) {
      const ci = Math.max(0, this.chunkFor(key));
      const keys = this.chunk(ci).keys;
      // Appending at the end is the common case of a bulk load in key order: skip the search.
      this.atSlot = keys[keys.length - 1]! < key ? keys.length : lowerBound(keys, key);
      this.atChunk = ci;
      this.foundKey = key;
      this.foundVersion = this.version;
    }
    return this.chunk(this.atChunk).keys[this.atSlot] === key;
  }

  /** clear removes every key. */
  clear(): void {
    this.chunks = [];
    this.mins = [];
    this.count = 0;
    this.version++;
  }

  /**
   * loadSorted replaces the contents with keys (strictly ascending, asserted) and their
   * values: chunks are cut at half capacity directly, with no search or splice per key
   * (a restart loads a shard's keys this way).
   */
  loadSorted(keys: readonly Bytes[], values: readonly V[]): void {
    assert(keys.length === values.length, 'OrderedMap.loadSorted: lengths differ');
    this.clear();
    const step = chunkKeysMax >>> 1;
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i]!;
      assert(i === 0 || keys[i - 1]! < k, 'OrderedMap.loadSorted: keys not ascending');
      if (i % step === 0) {
        this.chunks.push({ keys: [], vals: [], packed: undefined, touched: true });
        this.mins.push(k);
      }
      const c = this.chunks[this.chunks.length - 1]!;
      c.keys.push(k);
      c.vals.push(values[i]!);
    }
    this.count = keys.length;
  }

  /**
   * loadPacked replaces the contents with the keys numbered nos of table, which must be in
   * strictly ascending key order (the caller checks: PackedKeys.ascending, or sorts), and
   * their values: vals[i] is the value of key nos[i]. Chunks are cut as loadSorted cuts
   * them, but keep their keys packed until first touched (see `chunk`): the load makes one
   * string per chunk, its minimum, not one per key. nos, vals and table stay referenced
   * until every chunk has been touched.
   */
  loadPacked(table: PackedKeys, nos: Column<number>, vals: Column<V>): void {
    assert(nos.length === vals.length, 'OrderedMap.loadPacked: lengths differ');
    this.clear();
    const step = chunkKeysMax >>> 1;
    for (let i = 0; i < nos.length; i += step) {
      const end = Math.min(nos.length, i + step);
      const chunkNos = nos.subarray(i, end);
      const min = table.keyAt(chunkNos[0]!);
      const prev = this.mins[this.mins.length - 1];
      assert(prev === undefined || prev < min, 'OrderedMap.loadPacked: keys not ascending');
      this.chunks.push({
        keys: [], vals: [], packed: { table, nos: chunkNos, vals: vals.subarray(i, end) },
        touched: false,
      });
      this.mins.push(min);
    }
    this.count = nos.length;
  }

  /**
   * repackCold moves a cursor over up to chunksMax chunks, around the map as a clock: a chunk
   * touched since the cursor last passed it is only marked untouched, and one that was not
   * has its keys packed into a table of its own, as loadPacked leaves a restored chunk (its
   * next touch makes their strings again). Keys written since a restart and then left alone
   * are held as bytes again rather than a string each (about 65 bytes of V8 heap per key).
   * packVals gives the values as the chunk keeps them meanwhile (a typed array of numbers,
   * say); onPacked hears of each chunk packed: its table (key i is the chunk's i-th key) and
   * values. It returns the number of keys packed.
   */
  repackCold(chunksMax: number, packVals: (vals: V[]) => ArrayLike<V> = (v) => v,
    onPacked?: (table: PackedKeys, vals: ArrayLike<V>) => void): number {
    let packed = 0;
    const n = Math.min(chunksMax, this.chunks.length);
    for (let i = 0; i < n; i++) {
      if (this.repackAt >= this.chunks.length) this.repackAt = 0;
      const c = this.chunks[this.repackAt++]!;
      if (c.packed !== undefined) continue;
      if (c.touched) {
        c.touched = false;
        continue;
      }
      const table = PackedKeys.ofChunk(c.keys);
      c.packed = { table, nos: identityNos.subarray(0, c.keys.length), vals: packVals(c.vals) };
      onPacked?.(table, c.packed.vals);
      packed += c.keys.length;
      c.keys = [];
      c.vals = [];
    }
    // A packed chunk's arrays are new: iterators and the last find's place start over.
    if (packed > 0) this.version++;
    return packed;
  }

  /** first returns the smallest key, or undefined when empty. */
  firstKey(): Bytes | undefined {
    return this.mins[0];
  }

  /** lastKey returns the largest key, or undefined when empty. */
  lastKey(): Bytes | undefined {
    if (this.chunks.length === 0) return undefined;
    const keys = this.chunk(this.chunks.length - 1).keys;
    return keys[keys.length - 1];
  }

  /**
   * forEach visits keys in [lo, hi) in ascending order until fn returns false. It is the
   * allocation-free form of ascend, used by range scans.
   */
  forEach(lo: Bytes | undefined, hi: Bytes | undefined, fn: (k: Bytes, v: V) => boolean | void) {
    const version = this.version;
    let [ci, i] = lo === undefined ? [0, 0] : this.lowerBoundPos(lo);
    for (; ci < this.chunks.length; ci++, i = 0) {
      const c = this.chunk(ci);
      for (; i < c.keys.length; i++) {
        const k = c.keys[i]!;
        if (hi !== undefined && k >= hi) return;
        const go = fn(k, c.vals[i]!);
        assert(this.version === version, 'OrderedMap mutated during forEach');
        if (go === false) return;
      }
    }
  }

  /**
   * forEachValue visits the values of the keys in [lo, hi) in ascending key order, without
   * their keys: a chunk that lies wholly below hi (the next chunk's minimum is ≤ hi) is read
   * as it is, a packed one without making its keys' strings (a count over a million keys
   * loaded by loadPacked makes strings only at its ends). Same results as forEach.
   */
  forEachValue(lo: Bytes | undefined, hi: Bytes | undefined, fn: (v: V) => void): void {
    const version = this.version;
    let [ci, i] = lo === undefined ? [0, 0] : this.lowerBoundPos(lo);
    for (; ci < this.chunks.length; ci++, i = 0) {
      const next = this.mins[ci + 1];
      const whole = hi === undefined || (next !== undefined && next <= hi);
      const raw = this.chunks[ci]!;
      if (whole && raw.packed !== undefined) {
        const vals = raw.packed.vals;
        for (; i < vals.length; i++) fn(vals[i]!);
      } else {
        const c = this.chunk(ci);
        for (; i < c.keys.length; i++) {
          if (!whole && c.keys[i]! >= hi!) return;
          fn(c.vals[i]!);
        }
      }
      assert(this.version === version, 'OrderedMap mutated during forEachValue');
      if (!whole) return; // the next chunk starts at or past hi
    }
  }

  /** forEachDescending visits keys in [lo, hi) in descending order until fn returns false. */
  forEachDescending(
    lo: Bytes | undefined,
    hi: Bytes | undefined,
    fn: (k: Bytes, v: V) => boolean | void,
  ): void {
    const version = this.version;
    let [ci, i] = hi === undefined ? [this.chunks.length, 0] : this.lowerBoundPos(hi);
    // (ci, i) is one past the first key to visit; step back before each read.
    for (;;) {
      if (i === 0) {
        if (--ci < 0) return;
        i = this.chunk(ci).keys.length;
      }
      i--;
      const c = this.chunk(ci);
      const k = c.keys[i]!;
      if (lo !== undefined && k < lo) return;
      const go = fn(k, c.vals[i]!);
      assert(this.version === version, 'OrderedMap mutated during forEachDescending');
      if (go === false) return;
    }
  }

  /** ascend yields [key, value] for keys in [lo, hi), ascending. */
  *ascend(lo?: Bytes, hi?: Bytes): IterableIterator<[Bytes, V]> {
    const version = this.version;
    let [ci, i] = lo === undefined ? [0, 0] : this.lowerBoundPos(lo);
    for (; ci < this.chunks.length; ci++, i = 0) {
      const c = this.chunk(ci);
      for (; i < c.keys.length; i++) {
        const k = c.keys[i]!;
        if (hi !== undefined && k >= hi) return;
        yield [k, c.vals[i]!];
        assert(this.version === version, 'OrderedMap mutated during ascend');
      }
    }
  }

  /** descend yields [key, value] for keys in [lo, hi), descending. */
  *descend(lo?: Bytes, hi?: Bytes): IterableIterator<[Bytes, V]> {
    const version = this.version;
    let [ci, i] = hi === undefined ? [this.chunks.length, 0] : this.lowerBoundPos(hi);
    // (ci, i) is one past the first key to yield; step back before each read.
    for (;;) {
      if (i === 0) {
        if (--ci < 0) return;
        i = this.chunk(ci).keys.length;
      }
      i--;
      const c = this.chunk(ci);
      const k = c.keys[i]!;
      if (lo !== undefined && k < lo) return;
      yield [k, c.vals[i]!];
      assert(this.version === version, 'OrderedMap mutated during descend');
    }
  }

  /**
   * forEachKeyRef visits every key ascending without touching packed chunks (a snapshot's
   * walk, a memory estimate): fn gets a touched chunk's key as a string, with table
   * undefined, and a packed chunk's key as its number in table, with key undefined.
   */
  forEachKeyRef(
    fn: (key: Bytes | undefined, table: PackedKeys | undefined, no: number, v: V) => void,
  ): void {
    const version = this.version;
    for (const c of this.chunks) {
      const p = c.packed;
      if (p === undefined) {
        for (let i = 0; i < c.keys.length; i++) fn(c.keys[i]!, undefined, 0, c.vals[i]!);
      } else {
        for (let i = 0; i < p.nos.length; i++) fn(undefined, p.table, p.nos[i]!, p.vals[i]!);
      }
      assert(this.version === version, 'OrderedMap mutated during forEachKeyRef');
    }
  }

  /** packedChunks counts the chunks not touched since loadPacked (for tests). */
  packedChunks(): number {
    let n = 0;
    for (const c of this.chunks) if (c.packed !== undefined) n++;
    return n;
  }

  /** keys yields every key ascending. */
  *keys(): IterableIterator<Bytes> {
    for (const [k] of this.ascend()) yield k;
  }

  /** checkInvariants asserts the structure is sound (tests call it after random ops). */
  checkInvariants(): void {
    let n = 0;
    let prev: Bytes | undefined;
    assert(this.chunks.length === this.mins.length, 'directory length');
    for (let ci = 0; ci < this.chunks.length; ci++) {
      const c = this.chunk(ci);
      assert(c.keys.length > 0 && c.keys.length <= chunkKeysMax, 'chunk size');
      assert(c.vals.length === c.keys.length, 'a value for every key');
      assert(this.mins[ci] === c.keys[0], 'directory min');
      for (const k of c.keys) {
        assert(prev === undefined || prev < k, 'keys strictly ascending');
        prev = k;
        n++;
      }
    }
    assert(n === this.count, 'count');
  }

  /** chunkFor returns the index of the last chunk whose min ≤ key, or -1. */
  private chunkFor(key: Bytes): number {
    return upperBound(this.mins, key) - 1;
  }

  /** lowerBoundPos returns (chunk, slot) of the first key ≥ key; (chunks.length, 0) at end. */
  private lowerBoundPos(key: Bytes): [number, number] {
    this.find(key);
    if (this.chunks.length === 0) return [0, 0];
    const c = this.chunk(this.atChunk);
    if (this.atSlot < c.keys.length) return [this.atChunk, this.atSlot];
    return [this.atChunk + 1, 0];
  }

  /**
   * chunk returns chunk ci, making its keys' strings and its values' array first when it is
   * still packed (loadPacked). Every access to a chunk's keys goes through here.
   */
  private chunk(ci: number): Chunk<V> {
    const c = this.chunks[ci]!;
    c.touched = true;
    const p = c.packed;
    if (p === undefined) return c;
    const n = p.nos.length;
    const keys = new Array<Bytes>(n);
    const vals = new Array<V>(n);
    keys[0] = this.mins[ci]!; // the directory's string, shared
    vals[0] = p.vals[0]!;
    for (let i = 1; i < n; i++) {
      const k = p.table.keyAt(p.nos[i]!);
      assert(keys[i - 1]! < k, 'OrderedMap: packed keys not ascending');
      keys[i] = k;
      vals[i] = p.vals[i]!;
    }
    c.keys = keys;
    c.vals = vals;
    c.packed = undefined;
    return c;
  }

  private split(ci: number): void {
    const c = this.chunk(ci);
    const half = c.keys.length >>> 1;
    const right: Chunk<V> = {
      keys: c.keys.splice(half), vals: c.vals.splice(half), packed: undefined, touched: true,
    };
    this.chunks.splice(ci + 1, 0, right);
    this.mins.splice(ci + 1, 0, right.keys[0]!);
  }

  private maybeMerge(ci: number): void {
    const c = this.chunk(ci);
    const next = ci + 1 < this.chunks.length ? this.chunk(ci + 1) : undefined;
    if (next !== undefined && c.keys.length + next.keys.length <= chunkKeysMax) {
      c.keys.push(...next.keys);
      c.vals.push(...next.vals);
      this.chunks.splice(ci + 1, 1);
      this.mins.splice(ci + 1, 1);
      return;
    }
    const prev = ci > 0 ? this.chunk(ci - 1) : undefined;
    if (prev !== undefined && c.keys.length + prev.keys.length <= chunkKeysMax) {
      prev.keys.push(...c.keys);
      prev.vals.push(...c.vals);
      this.chunks.splice(ci, 1);
      this.mins.splice(ci, 1);
    }
  }
}

/** identityNos numbers a repacked chunk's keys in its own table: key i is number i. */
const identityNos = Uint16Array.from({ length: chunkKeysMax + 1 }, (_, i) => i);

/** lowerBound returns the first index i with a[i] ≥ key (a sorted ascending). */
export function lowerBound(a: readonly Bytes[], key: Bytes): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** upperBound returns the first index i with a[i] > key (a sorted ascending). */
export function upperBound(a: readonly Bytes[], key: Bytes): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! <= key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
