import type { Bytes } from '../types.js';
import { assert } from '../assert.js';

/** wordCompareMin: keys this long or longer are compared a word at a time (compareWith). */
const wordCompareMin = 8;

/**
 * PackedKeys is a table of keys kept as bytes: every key's bytes concatenated in one buffer,
 * cut by an offset per key. A snapshot's keys load this way, so that a restart makes no
 * string per key: the key maps (OrderedMap) keep chunks of a table's keys packed until a
 * lookup or a scan first touches them, and only then make that chunk's strings (see
 * OrderedMap.loadPacked). A million keys packed are one buffer and one offset column; as
 * strings they were a million young objects that every scavenge of the restore copied
 * (the performance notes in docs/, session 18).
 *
 * Keys are numbered 0..count-1. Byte order is the order of Bytes' `<` (latin1 strings
 * compare by char code, one per byte).
 *
 * Example: PackedKeys.fromStrings(['b', 'ab']) holds bytes "bab" with starts [0, 1, 3];
 * keyAt(1) is 'ab' and compare(1, 0) < 0.
 */
export class PackedKeys {
  /** bytes holds every key's bytes, in number order; starts[k] is key k's first byte and
   * starts[count] the end. The buffer must be the table's own (never a view into a message
   * or a snapshot body, which it would keep alive): build tables with fromLengths,
   * fromStrings or a PackedKeysBuilder. */
  constructor(readonly bytes: Buffer, private readonly starts: Float64Array | Uint32Array) {}

  private view: DataView | undefined;

  /** wordView is a DataView of the bytes (compareWith), made once. */
  private wordView(): DataView {
    return this.view ??= new DataView(this.bytes.buffer, this.bytes.byteOffset,
      this.bytes.byteLength);
  }

  /** fromLengths takes the keys' bytes and their lengths (a v2 snapshot's keyBytes and
   * keyLens) and copies the bytes into a buffer of the table's own. It returns undefined when
   * the lengths do not add up to the bytes. */
  static fromLengths(bytes: Uint8Array, lens: ArrayLike<number>): PackedKeys | undefined {
    // 32-bit offsets unless the bytes are 4 GiB or more (lengths that do not add up to the
    // bytes are refused below, whatever the offsets hold).
    const starts = bytes.length < 2 ** 32 ? new Uint32Array(lens.length + 1)
      : new Float64Array(lens.length + 1);
    let o = 0;
    for (let k = 0; k < lens.length; k++) {
      starts[k] = o;
      o += lens[k]!;
    }
    starts[lens.length] = o;
    if (o !== bytes.length) return undefined;
    const own = Buffer.allocUnsafeSlow(o);
    own.set(bytes);
    return new PackedKeys(own, starts);
  }

  /** fromStrings packs keys given as strings (a v1 snapshot's, tests). */
  static fromStrings(keys: readonly Bytes[]): PackedKeys {
    let bytes = 0;
    for (const k of keys) bytes += k.length;
    const b = new PackedKeysBuilder(keys.length, bytes);
    for (const k of keys) b.addString(k);
    return b.finish();
  }

  /** ofChunk packs a few keys given as strings (an OrderedMap chunk's, at most a few MiB of
   * them) with 32-bit offsets. */
  static ofChunk(keys: readonly Bytes[]): PackedKeys {
    let bytes = 0;
    for (const k of keys) bytes += k.length;
    assert(bytes < 2 ** 32, 'PackedKeys.ofChunk: keys over 4 GiB');
    const own = Buffer.allocUnsafeSlow(bytes);
    const starts = new Uint32Array(keys.length + 1);
    let o = 0;
    for (let i = 0; i < keys.length; i++) {
      starts[i] = o;
      const k = keys[i]!;
      // A short key's bytes are copied here: a call into Buffer.write per key cost more.
      if (k.length > 64) o += own.write(k, o, 'latin1');
      else for (let j = 0; j < k.length; j++) own[o++] = k.charCodeAt(j);
    }
    starts[keys.length] = o;
    return new PackedKeys(own, starts);
  }

  /** count is the number of keys. */
  get count(): number {
    return this.starts.length - 1;
  }

  /** memoryBytes is what the table takes off the heap: its bytes and its offsets. */
  memoryBytes(): number {
    return this.bytes.length + this.starts.byteLength;
  }

  /** keyAt returns key k as a string of its own (a flat copy, which keeps no buffer alive). */
  keyAt(k: number): Bytes {
    return this.bytes.toString('latin1', this.starts[k]!, this.starts[k + 1]!);
  }

  /** toArray returns every key as a string, in number order (tests, a v1 dump). */
  toArray(): Bytes[] {
    return Array.from({ length: this.count }, (_, k) => this.keyAt(k));
  }

  /** keyStart returns where key k's bytes begin in `bytes`. */
  keyStart(k: number): number {
    return this.starts[k]!;
  }

  /** lengthOf returns key k's length in bytes. */
  lengthOf(k: number): number {
    return this.starts[k + 1]! - this.starts[k]!;
  }

  /** lengths returns every key's length, in number order (a v2 snapshot's keyLens). */
  lengths(): Uint32Array {
    const out = new Uint32Array(this.count);
    for (let k = 0; k < out.length; k++) out[k] = this.lengthOf(k);
    return out;
  }

  /** compare orders key a against key b of this table by bytes (<0, 0, >0). */
  compare(a: number, b: number): number {
    return this.compareWith(a, this, b);
  }

  /** compareWith orders key a of this table against key b of another table. Long keys are
   * compared four bytes at a time (big-endian words order as their bytes do) up to the word
   * that differs: a restore checks a million keys' order, most sharing a long prefix with
   * the key before (the performance notes in docs/, session 29). */
  compareWith(a: number, other: PackedKeys, b: number): number {
    const x = this.bytes;
    const y = other.bytes;
    let i = this.starts[a]!;
    const iEnd = this.starts[a + 1]!;
    let j = other.starts[b]!;
    const jEnd = other.starts[b + 1]!;
    const n = Math.min(iEnd - i, jEnd - j);
    if (n >= wordCompareMin) {
      const vx = this.wordView();
      const vy = other.wordView();
      const stop = i + n - 3; // a word starting before stop lies within both keys
      while (i < stop && vx.getUint32(i) === vy.getUint32(j)) {
        i += 4;
        j += 4;
      }
    }
    for (; i < iEnd && j < jEnd; i++, j++) {
      const d = x[i]! - y[j]!;
      if (d !== 0) return d;
    }
    return (iEnd - i) - (jEnd - j);
  }

  /** ascending reports whether the keys numbered nos[0..n) are strictly ascending. */
  ascending(nos: ArrayLike<number>, n = nos.length): boolean {
    for (let i = 1; i < n; i++) if (this.compare(nos[i - 1]!, nos[i]!) >= 0) return false;
    return true;
  }

  /** sort sorts key numbers into key order, in place. */
  sort(nos: Uint32Array): Uint32Array {
    return nos.sort((a, b) => this.compare(a, b));
  }
}

/**
 * PackedKeysBuilder appends keys, as strings or copied from another table, and finishes into
 * a PackedKeys. Given the count and the total bytes up front (a snapshot's walk knows them),
 * it allocates once and finish() copies nothing; otherwise it grows by doubling and finish()
 * trims to the bytes written.
 */
export class PackedKeysBuilder {
  private bytes: Buffer;
  private used = 0;
  private starts: Float64Array;
  private n = 0;

  constructor(keys = 1024, bytes = 4096) {
    this.bytes = Buffer.allocUnsafeSlow(Math.max(1, bytes));
    this.starts = new Float64Array(keys + 1);
  }

  /** addString appends key k (a Bytes string). */
  addString(k: Bytes): void {
    this.room(k.length);
    this.bytes.write(k, this.used, k.length, 'latin1');
    this.push(k.length);
  }

  /** addFrom appends key no of table t, byte for byte. */
  addFrom(t: PackedKeys, no: number): void {
    const len = t.lengthOf(no);
    this.room(len);
    const from = t.keyStart(no);
    t.bytes.copy(this.bytes, this.used, from, from + len);
    this.push(len);
  }

  /** finish returns the table of every key added. The builder is spent. */
  finish(): PackedKeys {
    const exact = this.used === this.bytes.length;
    const bytes = exact ? this.bytes : Buffer.allocUnsafeSlow(this.used);
    if (!exact) this.bytes.copy(bytes, 0, 0, this.used);
    const starts = this.n + 1 === this.starts.length ? this.starts
      : this.starts.slice(0, this.n + 1);
    return new PackedKeys(bytes, starts);
  }

  private room(len: number): void {
    if (this.used + len > this.bytes.length) {
      const grown = Buffer.allocUnsafeSlow(Math.max(this.bytes.length * 2, this.used + len));
      this.bytes.copy(grown, 0, 0, this.used);
      this.bytes = grown;
    }
    if (this.n + 2 > this.starts.length) {
      const grown = new Float64Array(this.starts.length * 2);
      grown.set(this.starts);
      this.starts = grown;
    }
  }

  private push(len: number): void {
    this.used += len;
    this.starts[++this.n] = this.used;
  }
}
