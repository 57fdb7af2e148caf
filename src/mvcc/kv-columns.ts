import type { Bytes, LeaseId, Revision } from '../types.js';
import type { KeyValue, KeyValueSpan } from './types.js';
import { assert } from '../assert.js';

/**
 * kvColumnsRowsMin is the row capacity a fresh KvColumns starts with; it grows by
 * kvColumnsGrowth as rows are added, in place (see kvColumnsRowsReserved).
 */
const kvColumnsRowsMin = 1024;
/** valueArenaBytesMin is the value arena's first size; it grows by kvColumnsGrowth. */
const valueArenaBytesMin = 64 * 1024;
/**
 * kvColumnsGrowth is the factor by which full columns or a full arena grow: 1.5 keeps the
 * unused capacity under a third (pages never written are not resident).
 */
const kvColumnsGrowth = 1.5;
/**
 * kvColumnsRowsReserved is the rows each column reserves address space for: columns are
 * resizable ArrayBuffers that grow in place up to it, with no copy and no old buffer left for
 * the collector (those copies held ≈ 190 MiB with 1,000,000 keys until a full GC found them,
 * the performance notes in docs/, session 10). 2^24 rows: 128 MiB of address space for a
 * float64 column, ≈ 0.7 GiB for a store's columns; past it a column is copied once into a
 * reservation twice as large. Where even that is refused (a process under `ulimit -v`),
 * columns are plain buffers that grow by copying, as before.
 */
const kvColumnsRowsReserved = 2 ** 24;
/** valueArenaBytesReserved is the address space a value arena reserves to grow into in place
 * (then, as columns, a copy into twice as much, up to valueArenaBytesMax). */
const valueArenaBytesReserved = 2 ** 30;
/** kvColumnsRowBytes is one row's size over the columns every store has (see KvColumns):
 * mod, create, version, valueAt, valueLen and prev, four bytes each while the revisions fit
 * (wideRowBytes past that: fitRevisions); a store with leases adds leaseRowBytes. */
export const kvColumnsRowBytes = 4 * 6;
/** wideRowBytes is what a row's revisions add once they are float64 (fitRevisions). */
const wideRowBytes = 4 * 3;
/** leaseRowBytes is a row's lease column, made on the first leased row. */
const leaseRowBytes = 8;
/** narrowMax is the largest revision or version a uint32 column holds. */
const narrowMax = 2 ** 32 - 1;
/** freeRow marks a row on the free list in `prev`. */
const freeRow = -2;
/**
 * valueArenaGarbageRatio: when freed value bytes reach this share of the arena, the next
 * growth (or compact()) copies the live values into a fresh arena instead of doubling, so
 * the arena never holds more dead bytes than live ones for long.
 */
const valueArenaGarbageRatio = 0.5;
/** valueArenaBytesMax: offsets are kept as uint32 (one arena stays under 4 GiB). */
const valueArenaBytesMax = 2 ** 32 - 1;
/** kvColumnsBaseBytesMax: the largest base load() takes (see KvColumns), half the offsets'
 * range, so that the arena after it still has room to grow; a larger one is copied. */
const kvColumnsBaseBytesMax = 2 ** 31;

/**
 * sharedBaseOf is the one view of shared memory that holds all of `values` (one dump's value
 * bytes each), for KvColumns.load's `base`; undefined when they are not all in the same
 * SharedArrayBuffer, or that view would be over kvColumnsBaseBytesMax: such values are copied.
 * The caller vouches that nobody writes that memory (a snapshot file's body as read).
 */
export function sharedBaseOf(values: readonly Uint8Array[]): Uint8Array | undefined {
  const buf = values[0]?.buffer;
  if (!(buf instanceof SharedArrayBuffer)) return undefined;
  let lo = Infinity;
  let hi = 0;
  for (const v of values) {
    if (v.buffer !== buf) return undefined;
    lo = Math.min(lo, v.byteOffset);
    hi = Math.max(hi, v.byteOffset + v.length);
  }
  if (hi - lo > kvColumnsBaseBytesMax) return undefined;
  return new Uint8Array(buf, lo, hi - lo);
}

/**
 * KvColumns holds versions of keys (etcd's KeyValue minus the key) as rows of columnar typed
 * arrays, with the values' bytes in one off-heap arena (shared memory: valuePiecesOf). It
 * replaces one JS object per version (a KeyValue: ~64 bytes of object, a value string with
 * its 16-byte header, the pointers that reach both) by 48 bytes of columns plus the value's
 * bytes, none of which the garbage collector has to trace.
 *
 * A row r holds: mod[r], create[r], version[r] (0 = tombstone; uint32 columns until a value
 * past 2^32 - 1 arrives, then float64 ones: exact up to 2^53, as revisions are everywhere
 * else), leaseOf(r) (float64, in a column made on the first row with a lease), the value
 * bytes arena[valueAt[r] .. valueAt[r] + valueLen[r]) (uint32: one arena stays under 4 GiB),
 * and prev[r], the caller's link to an older row of the same key (-1 = none, -2 = a free
 * row): 24 bytes a row, 32 with leases, 44 with leases and revisions past 2^32.
 * Freed rows go on a free list and are reused; freed value bytes are garbage until the arena
 * is rebuilt (growth with enough garbage, or compactArena()).
 *
 * A restore may leave the values where they already are (load() with `base`): the base is a
 * view of shared memory that nobody writes (a snapshot file's body, as the WAL writer read
 * it), which the shards and the applier then all read instead of each copying the values into
 * fresh memory. Offsets below baseBytes are the base's; the arena's bytes follow them, at
 * valueAt - baseBytes. New values go to the arena; the base's dead values count as garbage, so
 * the first rebuild copies what is still live out of it and lets it go.
 *
 * Example: add(kvA) → row 0, add(kvB) → row 1; free(0) → row 0 on the free list; add(kvC)
 * reuses row 0. kv(1) materialises kvB again (a new object, its value decoded from the arena).
 */
export class KvColumns {
  mod: NumberColumn = column(Uint32Array, kvColumnsRowsMin);
  create: NumberColumn = column(Uint32Array, kvColumnsRowsMin);
  version: NumberColumn = column(Uint32Array, kvColumnsRowsMin);
  /** lease: made on the first row with a lease (undefined: every row's lease is 0). */
  private lease: Float64Array | undefined = undefined;
  valueAt = column(Uint32Array, kvColumnsRowsMin);
  valueLen = column(Uint32Array, kvColumnsRowsMin);
  prev = column(Int32Array, kvColumnsRowsMin);
  /** rowsUsed: rows ever handed out (live ones plus the free list); rows ≥ it are unused. */
  rowsUsed = 0;
  /** liveRows: rows in use (rowsUsed minus the free list). */
  liveRows = 0;
  private freeRows: number[] = [];
  /**
   * seg[r] is 0 when row r's value is this store's own (base or arena), else the slot in
   * `foreign` of the shared segment it lies in (see addShared). Made on the first foreign
   * segment, so a store that never takes one (the applier) pays nothing for it.
   */
  seg: Uint16Array | undefined = undefined;
  /** foreign: the segments of another store's arena this one reads values in, by slot (slot
   * 0 is never used: it is seg's "own value"). */
  private foreign: (ForeignSegment | undefined)[] = [undefined];
  /** foreignLive: the bytes of live rows' values that lie in foreign segments. */
  private foreignLive = 0;
  /** arenaId names the arena (a new one on every new buffer: rebuild, copy, load) for the
   * stores that read values in it (sharedArena). */
  private arenaId = newArenaId();
  /** shared: sharedArena()'s answer for the current arena (null: not made yet). */
  private shared: SharedArena | undefined | null = null;
  /** relocated: where the last rebuild moved the previous arena's live values (holding
   * stores only; SharedArena.relocated). */
  private relocated: Relocation | undefined = undefined;
  /** holding: other stores read this one's values in place (holdGarbage). */
  private holding = false;
  /** heldGarbage: the part of arenaGarbage other stores may still read; heldRevisions and
   * heldBytes list it by the revision that made it garbage (releaseGarbage). */
  private heldGarbage = 0;
  private heldRevisions: number[] = [];
  private heldBytes: number[] = [];
  /** arena tracks the length of its growable shared buffer, which grows in place. */
  private arena: Uint8Array = arenaOf(valueArenaBytesMin);
  /** view is `arena` as a Buffer, for its native latin1 encode/decode. */
  private view: Buffer = Buffer.from(this.arena.buffer, 0, this.arena.byteLength);
  /** base: values loaded where they lay (see the class comment); empty without one. */
  private base: Uint8Array = noBase;
  /** baseView is `base` as a Buffer. */
  private baseView: Buffer = Buffer.from(noBase.buffer, 0, 0);
  /** baseBytes: the base's length, where the arena's offsets start. */
  private baseBytes = 0;
  /** locatedAt: where the last valueBytes call's value starts in the bytes it returned. */
  private locatedAt = 0;
  /** arenaUsed: the offsets handed out, the base's included (live + garbage). */
  private arenaUsed = 0;
  /** arenaGarbage: bytes of freed values (and of the base's dead ones) inside arenaUsed. */
  private arenaGarbage = 0;

  /**
   * droppedBytes counts the bytes of the columns and arenas this store has replaced by new
   * ones (a rebuilt arena, a load, a growth past a reservation): memory only a garbage
   * collection returns. A growth in place adds nothing. Its owner collects when it changes.
   */
  droppedBytes = 0;

  /** capacity is the number of rows the columns can hold without growing. */
  get capacity(): number {
    return this.mod.length;
  }

  /**
   * add stores kv's fields (not its key) in a free row and returns the row; prev is the
   * caller's link (see the class comment).
   */
  add(kv: KeyValue, prev = -1): number {
    const r = this.addRow(kv, prev);
    this.storeValue(r, kv.value);
    return r;
  }

  /** addRow stores kv's fields but its value in a free row (the caller stores the value). */
  private addRow(kv: KeyValue, prev: number): number {
    const r = this.allocRow();
    this.setFields(r, kv);
    this.prev[r] = prev;
    return r;
  }

  /** setFields writes kv's revisions, version and lease into row r, widening the columns
   * that cannot hold them first. */
  private setFields(r: number, kv: KeyValue): void {
    const { modRevision: m, createRevision: c, version: v, lease } = kv;
    this.fitRevisions(Math.max(m, c, v));
    this.mod[r] = m;
    this.create[r] = c;
    this.version[r] = v;
    this.setLease(r, lease);
  }

  /** setLease writes row r's lease, making the lease column for the first one that is not 0. */
  private setLease(r: number, lease: number): void {
    if (this.lease === undefined) {
      if (lease === 0) return;
      this.lease = column(Float64Array, this.capacity);
    }
    this.lease[r] = lease;
  }

  /** leaseOf is row r's lease (0: none). */
  leaseOf(r: number): number {
    return this.lease === undefined ? 0 : this.lease[r]!;
  }

  /** fitRevisions makes mod, create and version float64 columns when `max` (a revision or
   * version about to be written) is past what their uint32 ones hold: a copy each, once in a
   * store's life. */
  private fitRevisions(max: number): void {
    if (max <= narrowMax || this.mod instanceof Float64Array) return;
    const cap = this.capacity;
    this.mod = this.widened(this.mod, cap);
    this.create = this.widened(this.create, cap);
    this.version = this.widened(this.version, cap);
  }

  private widened(a: NumberColumn, cap: number): Float64Array {
    const b = column(Float64Array, cap);
    b.set(a.subarray(0, this.rowsUsed));
    this.droppedBytes += a.byteLength;
    return b;
  }

  /** addTombstone stores a tombstone (version 0) at mod in a free row. */
  addTombstone(mod: Revision, prev = -1): number {
    const r = this.allocRow();
    this.fitRevisions(mod);
    this.mod[r] = mod;
    this.create[r] = 0;
    this.version[r] = 0;
    this.setLease(r, 0);
    this.prev[r] = prev;
    this.valueAt[r] = 0;
    this.valueLen[r] = 0;
    return r;
  }

  /** set overwrites row r with kv's fields (the old value's bytes become garbage, at
   * kv.modRevision: see holdGarbage). */
  set(r: number, kv: KeyValue): void {
    this.setFields(r, kv);
    this.dropValue(r, kv.modRevision);
    this.storeValue(r, kv.value);
  }

  /** free returns row r to the free list; its value's bytes become garbage (at `revision`:
   * see holdGarbage). */
  free(r: number, revision = 0): void {
    assert(this.prev[r] !== freeRow, 'KvColumns.free: row already free', r);
    this.dropValue(r, revision);
    this.prev[r] = freeRow;
    this.freeRows.push(r);
    this.liveRows--;
  }

  /** isFree reports whether row r is on the free list (or was never used). */
  isFree(r: number): boolean {
    return r >= this.rowsUsed || this.prev[r] === freeRow;
  }

  /** value decodes row r's value into the binary-string form. */
  value(r: number): Bytes {
    const len = this.valueLen[r]!;
    if (len === 0) return '';
    const bytes = this.valueBytes(r, len);
    const at = this.locatedAt;
    return bytes.toString('latin1', at, at + len);
  }

  /** valueCompare orders row r's value against v (-1, 0, 1) without decoding it. */
  valueCompare(r: number, v: Bytes): number {
    const len = this.valueLen[r]!;
    const bytes = this.valueBytes(r, len);
    const at = this.locatedAt;
    const n = Math.min(len, v.length);
    for (let i = 0; i < n; i++) {
      const d = bytes[at + i]! - v.charCodeAt(i);
      if (d !== 0) return d < 0 ? -1 : 1;
    }
    return len < v.length ? -1 : len > v.length ? 1 : 0;
  }

  /** span fills `out` with row r's fields and where its value's bytes lie (no copy, no
   * string: ShardStore.digest hashes a million of them). */
  span(r: number, key: Bytes, out: KeyValueSpan): void {
    out.key = key;
    out.createRevision = this.create[r]!;
    out.modRevision = this.mod[r]!;
    out.version = this.version[r]!;
    out.lease = this.leaseOf(r);
    const len = this.valueLen[r]!;
    out.value = this.valueBytes(r, len);
    out.valueAt = this.locatedAt;
    out.valueLen = len;
  }

  /** valueBytes returns the bytes row r's value (of len bytes) lies in — a foreign segment,
   * the base or the arena — and leaves its offset in them in locatedAt (no object made: the
   * reads of a million rows call it). */
  private valueBytes(r: number, len: number): Buffer {
    const at = this.valueAt[r]!;
    const s = this.seg?.[r] ?? 0;
    this.locatedAt = at;
    if (s !== 0) return this.segmentView(s, at + len);
    if (at < this.baseBytes) return this.baseView;
    this.locatedAt = at - this.baseBytes;
    return this.view;
  }

  /** kv materialises row r as a KeyValue of key (a new object: callers may keep it). */
  kv(r: number, key: Bytes): KeyValue {
    return {
      key,
      createRevision: this.create[r]! as Revision,
      modRevision: this.mod[r]! as Revision,
      version: this.version[r]!,
      value: this.value(r),
      lease: this.leaseOf(r) as LeaseId,
    };
  }

  /**
   * sharedArena is this store's value arena as another store may read it (addShared): its id
   * and a view of its whole buffer; undefined when the arena is not in shared memory. Bytes
   * once written there never change (values are appended; a rebuild, a growth by copy or a
   * load makes a new arena, with a new id), so a reader needs no lock.
   */
  sharedArena(): SharedArena | undefined {
    if (this.shared === null) {
      const buf = this.arena.buffer;
      this.shared = buf instanceof SharedArrayBuffer
        ? { id: this.arenaId, bytes: new Uint8Array(buf), relocated: this.relocated } : undefined;
    }
    return this.shared;
  }

  /** dropRelocation lets go of the last rebuild's relocation table once every reader has been
   * sent it (8 bytes a value moved): sharedArena() names no relocation from then on. A reader
   * sent the arena later copies its old rows out instead (useSegment). */
  dropRelocation(): void {
    if (this.relocated === undefined) return;
    this.relocated = undefined;
    this.shared = null;
  }

  /** arenaOffsetOf is where row r's value lies in sharedArena()'s bytes, or -1 where it does
   * not (an empty value, one in the base or in a foreign segment). */
  arenaOffsetOf(r: number): number {
    if (this.valueLen[r] === 0 || (this.seg !== undefined && this.seg[r] !== 0)) return -1;
    const at = this.valueAt[r]!;
    return at < this.baseBytes ? -1 : at - this.baseBytes;
  }

  /**
   * useSegment makes another store's arena (its sharedArena: id and buffer) a segment this
   * store's rows may point into (addShared), and returns its slot. A store reads one other
   * store's arenas, which replace each other: a new one retires those before it. A retired
   * segment smaller than foreignKeepBytesMin is copied out at once (see releaseSegments).
   * Once given, an arena may be named by its id alone (no buffer).
   */
  useSegment(id: number, buffer?: SharedArrayBuffer, relocated?: Relocation): number {
    for (let s = 1; s < this.foreign.length; s++) if (this.foreign[s]?.id === id) return s;
    assert(buffer !== undefined, 'KvColumns.useSegment: an arena named before it was given', id);
    let slot = this.foreign.indexOf(undefined, 1);
    if (slot < 0) slot = this.foreign.length;
    assert(slot <= foreignSegmentsMax, 'KvColumns: too many foreign segments', slot);
    const bytes = new Uint8Array(buffer);
    this.foreign[slot] = {
      id, buffer, bytes, view: Buffer.from(buffer, 0, bytes.length), rows: 0, live: 0,
      firstRow: Infinity, retired: false,
    };
    if (this.seg === undefined) this.seg = column(Uint16Array, this.capacity);
    for (let s = 1; s < this.foreign.length; s++) {
      const f = this.foreign[s];
      if (f === undefined || s === slot) continue;
      if (f.id === relocated?.fromId) this.relocate(s, slot, relocated.table);
      f.retired = true;
    }
    this.releaseSegments();
    return slot;
  }

  /** relocate points the rows in foreign segment `from` whose values its store copied into
   * segment `to` (a Relocation's table) at their new place. */
  private relocate(from: number, to: number, table: Uint8Array): void {
    const n = table.length / 8;
    // A small table crosses packed inside its message, where it may not be 4-byte aligned.
    const aligned = table.byteOffset % 4 === 0 ? table : table.slice();
    const words = new Uint32Array(aligned.buffer, aligned.byteOffset, 2 * n);
    const f = this.foreign[from]!;
    const t = this.foreign[to]!;
    const seg = this.seg!;
    let left = f.rows;
    for (let r = f.firstRow; r < this.rowsUsed && left > 0; r++) {
      if (seg[r] !== from) continue;
      left--;
      const at = this.valueAt[r]!;
      let lo = 0;
      let hi = n;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (words[mid]! < at) lo = mid + 1;
        else hi = mid;
      }
      if (lo === n || words[lo] !== at) continue;
      const len = this.valueLen[r]!;
      seg[r] = to;
      this.valueAt[r] = words[n + lo]!;
      f.rows--;
      f.live -= len;
      t.rows++;
      t.live += len;
      t.firstRow = Math.min(t.firstRow, r);
    }
  }

  /** addShared is add() with the value left where it lies: len bytes at `at` in the segment
   * at `slot` (useSegment). */
  addShared(kv: KeyValue, prev: number, slot: number, at: number, len: number): number {
    const f = this.foreign[slot];
    assert(f !== undefined && at + len <= f.buffer.byteLength,
      'KvColumns.addShared: a value outside its segment', at);
    const r = this.addRow(kv, prev);
    this.valueAt[r] = at;
    this.valueLen[r] = len;
    this.seg![r] = len === 0 ? 0 : slot;
    if (len > 0) {
      f.rows++;
      f.live += len;
      f.firstRow = Math.min(f.firstRow, r);
      this.foreignLive += len;
    }
    return r;
  }

  /**
   * holdGarbage tells this store that other stores read values in its arena in place (the
   * shards, the applier's): a value it overwrites or frees at revision R may still be a
   * version they hold until they compact at R or later, so a rebuild would not free its
   * bytes, only copy the live ones beside them. Such garbage does not count toward a rebuild
   * until releaseGarbage(C ≥ R). Without compactions the arena then holds every value once,
   * where before the readers held their own copies.
   */
  holdGarbage(): void {
    this.holding = true;
  }

  /** releaseGarbage: the readers compacted at `revision`; garbage made at or below it is
   * theirs no more. Held garbage is released in the order it was made (a later-listed value
   * of an earlier revision waits for the ones before it). */
  releaseGarbage(revision: number): void {
    let i = 0;
    while (i < this.heldRevisions.length && this.heldRevisions[i]! <= revision) {
      this.heldGarbage -= this.heldBytes[i]!;
      i++;
    }
    if (i === 0) return;
    this.heldRevisions.splice(0, i);
    this.heldBytes.splice(0, i);
  }

  /** holdBytes lists len bytes of garbage made at `revision` as held (holdGarbage); past
   * heldListMax entries the last one takes them, at the later revision of the two. */
  private holdBytes(revision: number, len: number): void {
    this.heldGarbage += len;
    const n = this.heldRevisions.length;
    if (n > 0 && (n >= heldListMax || this.heldRevisions[n - 1] === revision)) {
      this.heldRevisions[n - 1] = Math.max(this.heldRevisions[n - 1]!, revision);
      this.heldBytes[n - 1]! += len;
      return;
    }
    this.heldRevisions.push(revision);
    this.heldBytes.push(len);
  }

  /** foreignSegments: how many other stores' arenas this one holds (useSegment). */
  get foreignSegments(): number {
    let n = 0;
    for (const f of this.foreign) if (f !== undefined) n++;
    return n;
  }

  /** foreignBytes: the bytes of live rows' values that lie in other stores' arenas
   * (addShared), which those stores count. */
  get foreignBytes(): number {
    return this.foreignLive;
  }

  /**
   * releaseSegments copies out of each retired segment the values of the rows that point
   * into it, into this store's own arena, when they are under foreignKeepShareMin of its size
   * (or it is under foreignKeepBytesMin): the rest of it is the other store's garbage, kept
   * alive for their sake.
   */
  releaseSegments(): void {
    for (let s = 1; s < this.foreign.length; s++) {
      const f = this.foreign[s];
      if (f === undefined || !f.retired) continue;
      const size = f.buffer.byteLength;
      if (f.rows > 0 && size >= foreignKeepBytesMin && f.live >= size * foreignKeepShareMin) {
        continue;
      }
      this.copyOut(s);
    }
  }

  /** copyOut moves the values of the rows in foreign segment `slot` into the own arena and
   * lets the segment go. */
  private copyOut(slot: number): void {
    const f = this.foreign[slot]!;
    const seg = this.seg!;
    let left = f.rows;
    for (let r = f.firstRow; r < this.rowsUsed && left > 0; r++) {
      if (seg[r] !== slot) continue;
      const at = this.valueAt[r]!;
      const len = this.valueLen[r]!;
      const src = this.segmentView(slot, at + len);
      this.dropValue(r);
      this.storeValueBytes(r, src, at, len);
      left--;
    }
    this.foreign[slot] = undefined;
  }

  /** dropValue forgets row r's value (empty from now on): own bytes become garbage, a
   * foreign segment's count goes down (and an unused retired one is let go). */
  private dropValue(r: number, revision = 0): void {
    const len = this.valueLen[r]!;
    this.valueLen[r] = 0;
    const s = this.seg?.[r] ?? 0;
    if (s === 0) {
      this.arenaGarbage += len;
      if (this.holding && len > 0 && revision > 0 && this.valueAt[r]! >= this.baseBytes) {
        this.holdBytes(revision, len);
      }
      return;
    }
    this.seg![r] = 0;
    const f = this.foreign[s]!;
    f.rows--;
    f.live -= len;
    this.foreignLive -= len;
    if (f.rows === 0 && f.retired) this.foreign[s] = undefined;
  }

  /** segmentView is foreign segment s as a Buffer at least `end` bytes long (the other
   * store's arena grows in place: a view made before a growth is shorter). */
  private segmentView(s: number, end: number): Buffer {
    const f = this.foreign[s]!;
    if (end > f.view.length) {
      f.bytes = new Uint8Array(f.buffer);
      f.view = Buffer.from(f.buffer, 0, f.bytes.length);
    }
    return f.view;
  }

  /** arenaBytes is the value arena's size, the base's included (shared with the other stores
   * loaded from the same snapshot, which count it too). */
  get arenaBytes(): number {
    return this.arena.byteLength + this.baseBytes;
  }

  /** sharedBytes is the base's size (0 without one): values read where a restore found
   * them, in memory the other stores loaded from the same snapshot share (see load). */
  get sharedBytes(): number {
    return this.baseBytes;
  }

  /** valueBytesLive is the bytes of the values in live rows. */
  get valueBytesLive(): number {
    return this.arenaUsed - this.arenaGarbage;
  }

  /**
   * memoryBytes is what the columns and the arena take (typed arrays' capacity, the free
   * list's slots): the off-heap part of a store's footprint.
   */
  memoryBytes(): number {
    return this.capacity * this.rowBytes() + this.arenaBytes + this.freeRows.length * 8;
  }

  /** allocatedBytes is the columns' and the arena's capacity: it changes only when they are
   * reallocated (growth, an arena rebuild of another size), never on a row's add or free. */
  allocatedBytes(): number {
    return this.columnBytes() + this.arenaBytes;
  }

  /** rowBytes is a row's size over the columns this store has (kvColumnsRowBytes, wider
   * revisions, leases, and seg once it reads foreign segments). */
  private rowBytes(): number {
    return kvColumnsRowBytes + (this.mod instanceof Uint32Array ? 0 : wideRowBytes) +
      (this.lease === undefined ? 0 : leaseRowBytes) + (this.seg === undefined ? 0 : 2);
  }

  /** columnBytes is the columns' capacity (allocatedBytes without the arena). */
  private columnBytes(): number {
    return this.capacity * this.rowBytes();
  }

  /** usedBytes is the part of memoryBytes() ever written (the rows handed out, the arena's
   * used bytes): what is resident, since pages never written are not. */
  usedBytes(): number {
    return this.rowsUsed * this.rowBytes() + this.arenaUsed + this.freeRows.length * 8;
  }

  /** compactArena copies the live values into a fresh arena sized for them (dropping the
   * garbage), when garbage is at least valueArenaGarbageRatio of the used bytes. */
  compactArena(force = false): void {
    this.releaseSegments();
    if (!force && this.arenaGarbage < this.arenaUsed * valueArenaGarbageRatio) return;
    this.rebuildArena(0);
  }

  /** valueBytesOf returns the values of `rows`, concatenated in that order, and their lengths
   * (for snapshots). */
  valueBytesOf(rows: ArrayLike<number>): { bytes: Uint8Array; lens: Uint32Array } {
    let total = 0;
    for (let i = 0; i < rows.length; i++) total += this.valueLen[rows[i]!]!;
    const copier = this.copier(new Uint8Array(total));
    const lens = new Uint32Array(rows.length);
    let o = 0;
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i]!;
      const len = this.valueLen[r]!;
      copier.copy(this.seg?.[r] ?? 0, this.valueAt[r]!, len, o);
      lens[i] = len;
      o += len;
    }
    copier.flush();
    return { bytes: copier.dst, lens };
  }

  /**
   * valuePiecesOf is valueBytesOf as pieces whose concatenation is those bytes, without a
   * copy of what can be shared: a run of values that lie one after the other in the arena and
   * add up to `shareMin` bytes or more is a view of the arena itself (shared memory, so it
   * crosses to another thread uncopied); the values between such runs are copied, each stretch
   * into a buffer of its own. The views stay valid while this store goes on writing, because
   * bytes once written into an arena never change: values are appended, and a rebuild or a
   * growth by copy makes a new arena. A dump of a store written in order and never rebuilt
   * is then a few views instead of a copy of every value (100 MB with 1,000,000 keys).
   */
  valuePiecesOf(rows: ArrayLike<number>, shareMin: number):
    { pieces: Uint8Array[]; lens: Uint32Array } {
    // An arena not in shared memory (none is made so here) is copied whole.
    if (!(this.arena.buffer instanceof SharedArrayBuffer) ||
      (this.baseBytes > 0 && !(this.base.buffer instanceof SharedArrayBuffer))) {
      shareMin = Infinity;
    }
    // First pass: the size of each stretch to copy (one before each shared run, one after).
    const stretches: number[] = [0];
    this.forEachRun(rows, (_src, _at, len) => {
      if (len >= shareMin) stretches.push(0);
      else stretches[stretches.length - 1]! += len;
    });
    const pieces: Uint8Array[] = [];
    let s = 0;
    let dst = new Uint8Array(stretches[0]!);
    let o = 0;
    this.forEachRun(rows, (src, at, len) => {
      const bytes = this.bytesAt(src, at, len);
      if (len < shareMin) {
        dst.set(bytes, o);
        o += len;
        return;
      }
      if (dst.length > 0) pieces.push(dst);
      pieces.push(bytes);
      dst = new Uint8Array(stretches[++s]!);
      o = 0;
    });
    if (dst.length > 0) pieces.push(dst);
    const lens = new Uint32Array(rows.length);
    for (let i = 0; i < rows.length; i++) lens[i] = this.valueLen[rows[i]!]!;
    return { pieces, lens };
  }

  /** bytesAt is a view of the value bytes at offset `at` of source `src` (0: the base's or the
   * arena's; else a foreign segment's). */
  private bytesAt(src: number, at: number, len: number): Uint8Array {
    if (src !== 0) return this.segmentView(src, at + len).subarray(at, at + len);
    if (at < this.baseBytes) return this.base.subarray(at, at + len);
    const o = at - this.baseBytes;
    return this.arena.subarray(o, o + len);
  }

  /** copier copies values by their source and offset (see bytesAt) into dst. */
  private copier(dst: Uint8Array): ValueCopier {
    return new ValueCopier(this.base, this.arena, dst,
      (s, end) => new Uint8Array(this.segmentView(s, end).buffer));
  }

  /** forEachRun calls f with each maximal run of `rows`' values that lie one after the other
   * in the base, in the arena or in one foreign segment, in order (empty values neither start
   * nor end a run); src is as bytesAt's. */
  private forEachRun(rows: ArrayLike<number>,
    f: (src: number, at: number, len: number) => void): void {
    let src = 0;
    let from = 0;
    let len = 0;
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i]!;
      const n = this.valueLen[r]!;
      if (n === 0) continue;
      const at = this.valueAt[r]!;
      const s = this.seg?.[r] ?? 0;
      if (len > 0 && s === src && at === from + len && (s !== 0 || at !== this.baseBytes)) {
        len += n;
        continue;
      }
      if (len > 0) f(src, from, len);
      src = s;
      from = at;
      len = n;
    }
    if (len > 0) f(src, from, len);
  }

  /**
   * load replaces everything with n rows read from columns (a snapshot's): values are the
   * concatenation `valueBytes` cut by `valueLens`; prev comes from the caller.
   * load owns the arrays it is given: the caller must not use them after. A column
   * allocated by loadColumn(n) (or an arena by loadArena) is taken as it is, with no copy:
   * a restore builds its columns once, in their final place (each fresh page costs a fault,
   * ≈ 15 µs on a virtual machine: the performance notes in docs/, session 13). Any other is
   * copied once.
   *
   * With `base` instead of `valueBytes`, the values stay where they are: row r's value is
   * base[valueAt[r] .. valueAt[r] + valueLens[r]) (valueAt given, or `valueLens` summed in
   * row order when absent). base must be bytes nobody will ever write (see the class comment);
   * its bytes that no row names count as garbage.
   */
  load(n: number, cols: {
    mod: NumberColumn; create: NumberColumn; version: NumberColumn; lease: Float64Array;
    valueLens: Uint32Array; prev: Int32Array;
  } & ({ valueBytes: Uint8Array } | { base: Uint8Array; valueAt?: Uint32Array })): void {
    const cap = loadRowsCapacity(n);
    this.droppedBytes += this.columnBytes(); // the arena counts in setArena
    // uint32 when all three fit (as a restore's decode leaves them), else float64.
    const narrow = [cols.mod, cols.create, cols.version].every((c) => fitsNarrow(c, n));
    const type = narrow ? Uint32Array : Float64Array;
    this.mod = loadedNumbers(type, cols.mod, n, cap);
    this.create = loadedNumbers(type, cols.create, n, cap);
    this.version = loadedNumbers(type, cols.version, n, cap);
    this.lease = cols.lease.subarray(0, n).some((l) => l !== 0)
      ? loadedColumn(Float64Array, cols.lease, n, cap) : undefined;
    this.valueLen = loadedColumn(Uint32Array, cols.valueLens, n, cap);
    this.prev = loadedColumn(Int32Array, cols.prev, n, cap);
    this.valueAt = column(Uint32Array, cap);
    const given = 'base' in cols ? cols.valueAt : undefined;
    assert(given === undefined || given.length >= n, 'KvColumns.load: fewer offsets than rows');
    let o = 0;
    for (let r = 0; r < n; r++) {
      this.valueAt[r] = given === undefined ? o : given[r]!;
      o += this.valueLen[r]!;
    }
    this.rowsUsed = n;
    this.liveRows = n;
    this.freeRows = [];
    this.seg = undefined;
    this.foreign = [undefined];
    this.foreignLive = 0;
    if ('base' in cols) {
      this.loadBase(cols.base, o);
      return;
    }
    const v = cols.valueBytes;
    assert(o === v.length, 'KvColumns.load: value bytes do not add up');
    const size = loadArenaBytes(o);
    assert(size <= valueArenaBytesMax, 'KvColumns: value arena over its limit', size);
    this.setBase(noBase);
    if (v.byteOffset === 0 && v.buffer.byteLength === size) {
      this.setArena(new Uint8Array(v.buffer));
    } else {
      this.setArena(new Uint8Array(loadArena(o).buffer)); // size bytes (loadArenaBytes)
      this.arena.set(v);
    }
    this.arenaUsed = o;
    this.arenaGarbage = 0;
    this.clearHeld();
  }

  /** loadBase keeps `base` as the loaded rows' values (load with a base, their offsets in
   * valueAt already): `live` is the sum of their lengths. */
  private loadBase(base: Uint8Array, live: number): void {
    assert(base.length <= kvColumnsBaseBytesMax, 'KvColumns: a base over its limit');
    const n = this.rowsUsed;
    for (let r = 0; r < n; r++) {
      assert(this.valueAt[r]! + this.valueLen[r]! <= base.length,
        'KvColumns.load: a value past its base', r);
    }
    this.setBase(base);
    this.setArena(arenaOf(valueArenaBytesMin));
    this.arenaUsed = base.length;
    this.arenaGarbage = base.length - live;
    this.clearHeld();
  }

  /** clearHeld forgets held garbage (a new arena holds none). */
  private clearHeld(): void {
    this.heldGarbage = 0;
    this.heldRevisions = [];
    this.heldBytes = [];
  }

  /** setBase replaces the base (noBase: none). */
  private setBase(b: Uint8Array): void {
    if (b.buffer !== this.base.buffer) this.droppedBytes += this.baseBytes;
    this.base = b;
    this.baseView = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
    this.baseBytes = b.length;
  }

  private allocRow(): number {
    const r = this.freeRows.pop();
    if (r !== undefined) {
      this.liveRows++;
      return r;
    }
    if (this.rowsUsed === this.capacity) this.growRows();
    this.liveRows++;
    return this.rowsUsed++;
  }

  private growRows(): void {
    const cap = Math.ceil(this.capacity * kvColumnsGrowth);
    this.mod = this.grow(this.mod, cap);
    this.create = this.grow(this.create, cap);
    this.version = this.grow(this.version, cap);
    if (this.lease !== undefined) this.lease = this.grow(this.lease, cap);
    this.valueAt = this.grow(this.valueAt, cap);
    this.valueLen = this.grow(this.valueLen, cap);
    this.prev = this.grow(this.prev, cap);
    if (this.seg !== undefined) this.seg = this.grow(this.seg, cap);
  }

  /** grow is grown(), counting a column it had to copy in droppedBytes. */
  private grow<T extends Column>(a: T, cap: number): T {
    const b = grown(a, cap);
    this.droppedBytes += replacedBytes(a, b);
    return b;
  }

  private storeValue(r: number, v: Bytes): void {
    const o = this.placeValue(r, v.length);
    if (o >= 0) this.view.write(v, o, v.length, 'latin1');
  }

  /** storeValueBytes is storeValue of bytes (src[at, at + len)). */
  private storeValueBytes(r: number, src: Uint8Array, at: number, len: number): void {
    const o = this.placeValue(r, len);
    if (o >= 0) this.arena.set(src.subarray(at, at + len), o);
  }

  /** placeValue makes room for row r's value of len bytes at the arena's end (growing or
   * rebuilding it), sets the row's offset and length, and returns where in `arena` to write
   * it (-1 for an empty value). */
  private placeValue(r: number, len: number): number {
    this.valueLen[r] = len;
    if (len === 0) {
      this.valueAt[r] = 0;
      return -1;
    }
    if (this.arenaUsed - this.baseBytes + len > this.arena.byteLength) {
      const size = Math.ceil((this.arena.byteLength + len) * kvColumnsGrowth);
      // Rebuilding copies only live bytes; with enough garbage that beats growing. A base
      // that leaves no room for the grown arena's offsets goes the same way. Garbage that
      // readers may still read (holdGarbage) does not count: a rebuild would not free it.
      // Such a store rebuilds rather than copies its arena to grow it (growArena), which
      // would leave the readers a second whole copy.
      if (this.arenaGarbage - this.heldGarbage >= this.arenaUsed * valueArenaGarbageRatio ||
        this.baseBytes + size > valueArenaBytesMax ||
        (this.holding && !this.growsInPlace(size))) {
        this.valueLen[r] = 0; // not live yet: the rebuild must not copy it
        this.rebuildArena(len);
        this.valueLen[r] = len;
      } else {
        this.growArena(size);
      }
    }
    const at = this.arenaUsed;
    this.valueAt[r] = at;
    this.arenaUsed += len;
    return at - this.baseBytes;
  }

  /** growsInPlace: the arena's reservation holds `size` bytes (growArena makes no copy). */
  private growsInPlace(size: number): boolean {
    const buf = this.arena.buffer as GrowableSharedBuffer;
    return buf.growable === true && size <= buf.maxByteLength;
  }

  /** rebuildArena copies the live values into a fresh arena with at least `extra` free
   * bytes after them. */
  private rebuildArena(extra: number): void {
    const live = this.arenaUsed - this.arenaGarbage;
    const size = Math.max(valueArenaBytesMin,
      Math.ceil((live + extra) * kvColumnsGrowth));
    assert(size <= valueArenaBytesMax, 'KvColumns: value arena over its limit', size);
    const copier = this.copier(arenaOf(size));
    let o = 0;
    const seg = this.seg;
    // Readers pointing into this arena are told where its live values went (relocated).
    const moves: number[] | undefined = this.holding ? [] : undefined;
    for (let r = 0; r < this.rowsUsed; r++) {
      const len = this.valueLen[r]!;
      if (len === 0 || (seg !== undefined && seg[r] !== 0)) continue;
      const at = this.valueAt[r]!;
      copier.copy(0, at, len, o);
      if (moves !== undefined && at >= this.baseBytes) {
        moves.push((at - this.baseBytes) * 2 ** 32 + o);
      }
      this.valueAt[r] = o;
      o += len;
    }
    copier.flush();
    const fromId = this.arenaId;
    this.setBase(noBase);
    this.setArena(copier.dst);
    this.arenaUsed = o;
    this.arenaGarbage = 0;
    this.clearHeld();
    this.relocated = moves === undefined ? undefined : relocationOf(fromId, moves);
  }

  /** growArena makes the arena `size` bytes, in place when its reservation holds them (the
   * values stay where they are), else by a copy of the used bytes into a new arena. */
  private growArena(size: number): void {
    assert(size <= valueArenaBytesMax, 'KvColumns: value arena over its limit', size);
    const buf = this.arena.buffer as GrowableSharedBuffer;
    if (this.growsInPlace(size)) {
      buf.grow(size);
      this.setArena(this.arena);
      return;
    }
    const a = arenaOf(size);
    a.set(this.arena.subarray(0, this.arenaUsed - this.baseBytes));
    this.setArena(a);
  }

  private setArena(a: Uint8Array): void {
    if (a.buffer !== this.arena.buffer) {
      this.droppedBytes += this.arena.byteLength;
      this.arenaId = newArenaId();
      this.shared = null;
      this.relocated = undefined;
    }
    this.arena = a;
    // A Buffer's length is fixed when it is made, so it is made again after each growth.
    this.view = Buffer.from(a.buffer, a.byteOffset, a.byteLength);
  }
}

/** ResizableBuffer is ES2024's resizable ArrayBuffer, which Node 20's V8 has (the ES2022
 * library this project compiles against does not declare it). */
interface ResizableBuffer extends ArrayBuffer {
  readonly resizable: boolean;
  readonly maxByteLength: number;
  resize(byteLength: number): void;
}
const ResizableArrayBuffer = ArrayBuffer as unknown as
  new (byteLength: number, options: { maxByteLength: number }) => ResizableBuffer;

/** GrowableSharedBuffer is ES2024's growable SharedArrayBuffer, which Node 20's V8 has (as
 * ResizableBuffer). */
interface GrowableSharedBuffer extends SharedArrayBuffer {
  readonly growable: boolean;
  readonly maxByteLength: number;
  grow(byteLength: number): void;
}
const GrowableSharedArrayBuffer = SharedArrayBuffer as unknown as
  new (byteLength: number, options: { maxByteLength: number }) => GrowableSharedBuffer;

/** reserve returns a zeroed buffer of `bytes` that can grow in place to `reservedBytes`, or,
 * when the address space for that is refused (RangeError), a plain one of `bytes`. */
function reserve(bytes: number, reservedBytes: number): ArrayBuffer {
  return reserveOr((max) => new ResizableArrayBuffer(bytes, { maxByteLength: max }),
    () => new ArrayBuffer(bytes), bytes, reservedBytes);
}

/** reserveShared is reserve in shared memory, for a value arena: a snapshot's dump hands runs
 * of it to the threads that write the snapshot file without copying them (valuePiecesOf). */
function reserveShared(bytes: number, reservedBytes: number): SharedArrayBuffer {
  return reserveOr((max) => new GrowableSharedArrayBuffer(bytes, { maxByteLength: max }),
    () => new SharedArrayBuffer(bytes), bytes, reservedBytes);
}

/** reserveOr makes a reservation of max(bytes, reservedBytes) with `grows`, or falls back to
 * `plain` when the address space for it is refused (RangeError). */
function reserveOr<T>(grows: (max: number) => T, plain: () => T, bytes: number,
  reservedBytes: number): T {
  try {
    return grows(Math.max(bytes, reservedBytes));
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    return plain();
  }
}

/** loadRowsCapacity is the row capacity load(n) gives: an eighth more than n (at least
 * kvColumnsRowsMin), room for the writes after a restore before a column grows; with plain
 * loads twice n, since a plain column grows only by a copy (pages never written are not
 * resident either way). */
export function loadRowsCapacity(n: number): number {
  return Math.max(kvColumnsRowsMin, plainLoads ? 2 * n : n + (n >>> 3));
}

/** loadArenaBytes is the arena size load() gives for `used` value bytes: an eighth more, or
 * twice as much with plain loads (as loadRowsCapacity). */
export function loadArenaBytes(used: number): number {
  return Math.max(valueArenaBytesMin, plainLoads ? 2 * used : used + (used >>> 3));
}

/**
 * plainLoads: whether a restore builds its columns and arenas in plain ArrayBuffers instead of
 * reservations (setPlainLoads). A plain buffer is malloc'd, so under glibc's hugetlb tunable
 * (src/server/huge-pages.ts) its pages fault 2 MiB at a time; a reservation comes from V8's
 * page allocator and faults 4 KiB at a time, ≈ 25 µs each on a virtual machine: rebuilding
 * the latest values of 1,000,000 keys wrote ≈ 110 MiB into fresh pages in 0.69 s (the
 * performance notes in docs/, session 15). A plain buffer cannot grow in place, so a load
 * gets twice the room it needs (pages never written are not resident); past that, a column
 * or arena moves into a reservation, as any store's does when it outgrows its own (one copy,
 * counted in droppedBytes), and grows in place from then on. A store that starts empty and is
 * built by writes thus stays in reservations after its first growth.
 */
let plainLoads = false;

/** setPlainLoads chooses plain buffers for what restores load (the actors' shells turn it on
 * when the allocator backs large buffers with huge pages). */
export function setPlainLoads(on: boolean): void {
  plainLoads = on;
}

/** loadColumn allocates a column that load(n) takes without copying: a column() of
 * loadRowsCapacity(n) rows (or a plain one: plainLoads), viewed as its first n rows. */
export function loadColumn<T extends Column>(type: ColumnType<T>, n: number): T {
  const cap = loadRowsCapacity(n);
  const c = plainLoads ? new type(new ArrayBuffer(cap * type.BYTES_PER_ELEMENT))
    : column(type, cap);
  return c.subarray(0, n) as T;
}

/** loadArena allocates the value bytes that load() takes as its arena without copying: an
 * arena of loadArenaBytes(used) (plain: plainLoads, a SharedArrayBuffer that cannot grow),
 * viewed as its first `used` bytes. */
export function loadArena(used: number): Uint8Array {
  const size = loadArenaBytes(used);
  const a = plainLoads ? new Uint8Array(new SharedArrayBuffer(size)) : arenaOf(size);
  return a.subarray(0, used);
}

/** loadedColumn is `a`'s whole buffer when loadColumn made it (viewed from its start, exactly
 * cap rows long), else a copy of its first n rows into a column() of cap rows. */
function loadedColumn<T extends Column>(type: ColumnType<T>, a: Column, n: number,
  cap: number): T {
  if (a.byteOffset === 0 && a.buffer.byteLength === cap * type.BYTES_PER_ELEMENT) {
    return new type(a.buffer as ArrayBuffer);
  }
  const b = column(type, cap);
  b.set(a.subarray(0, n));
  return b;
}

/** Column is a typed array of rows. */
export type Column = Float64Array | Uint32Array | Int32Array | Uint16Array;
/** NumberColumn holds revisions or versions: uint32 while they fit, else float64. */
export type NumberColumn = Uint32Array | Float64Array;

/** fitsNarrow: column c's first n rows fit a uint32 column (they are integers ≥ 0). */
export function fitsNarrow(c: NumberColumn, n: number): boolean {
  if (c instanceof Uint32Array) return true;
  for (let i = 0; i < n; i++) if (c[i]! > narrowMax) return false;
  return true;
}

/** loadedNumbers is loadedColumn for a NumberColumn kept as `type`: a's own buffer when it
 * is of that type and loadColumn made it, else a copy (a float64 one narrowed: fitsNarrow). */
function loadedNumbers(type: ColumnType<NumberColumn>, a: NumberColumn, n: number,
  cap: number): NumberColumn {
  if (a.constructor === type) return loadedColumn(type, a, n, cap);
  const b = column(type, cap);
  for (let i = 0; i < n; i++) b[i] = a[i]!;
  return b;
}
/** ColumnType is a Column's constructor. */
export type ColumnType<T extends Column> =
  { new (b: ArrayBuffer): T; readonly BYTES_PER_ELEMENT: number };

/** column makes a column of `cap` zeroed rows that tracks the length of its resizable buffer,
 * which reserves room for kvColumnsRowsReserved rows (or twice cap, if more). */
export function column<T extends Column>(type: ColumnType<T>, cap: number): T {
  const reserved = cap <= kvColumnsRowsReserved ? kvColumnsRowsReserved : 2 * cap;
  const size = type.BYTES_PER_ELEMENT;
  return new type(reserve(cap * size, reserved * size));
}

/** arenaOf makes a value arena of `size` zeroed bytes of shared memory (see reserveShared)
 * that can grow in place to valueArenaBytesReserved (or twice its size, if more; never past
 * valueArenaBytesMax). */
function arenaOf(size: number): Uint8Array {
  const reserved = size <= valueArenaBytesReserved ? valueArenaBytesReserved : 2 * size;
  return new Uint8Array(reserveShared(size, Math.min(valueArenaBytesMax, reserved)));
}

/** replacedBytes is what `grown(a, …)` returning `b` left to the collector: a's bytes when b
 * is a copy, nothing when a grew in place. */
export function replacedBytes(a: Column, b: Column): number {
  return b === a ? 0 : a.byteLength;
}

/** grown returns column `a` with `cap` rows: the same array, its buffer resized in place,
 * while its reservation holds them; else a copy in a larger reservation. */
export function grown<T extends Column>(a: T, cap: number): T {
  const buf = a.buffer as ResizableBuffer;
  const size = a.BYTES_PER_ELEMENT;
  if (buf.resizable === true && cap * size <= buf.maxByteLength) {
    buf.resize(cap * size);
    return a;
  }
  const b = column(a.constructor as ColumnType<T>, cap);
  b.set(a);
  return b;
}

/**
 * RunCopier copies byte ranges from `src` to `dst`, joining ranges that follow each other in
 * both into one copy. Values loaded from a snapshot lie in row order, and most stay there, so
 * a million rows copy in a few calls instead of a million subarray views (a quarter of the
 * CPU of a shard's dump and load with 1,000,000 keys). Call flush() after the last copy.
 */
export class RunCopier {
  private from = 0;
  private to = 0;
  private len = 0;
  constructor(readonly src: Uint8Array, readonly dst: Uint8Array) {}

  /** copy arranges for src[at, at+len) to land at dst[o, o+len). */
  copy(at: number, len: number, o: number): void {
    if (len === 0) return;
    if (this.len > 0 && at === this.from + this.len && o === this.to + this.len) {
      this.len += len;
      return;
    }
    this.flush();
    this.from = at;
    this.to = o;
    this.len = len;
  }

  /** flush makes the pending run's copy. */
  flush(): void {
    if (this.len > 0) this.dst.set(this.src.subarray(this.from, this.from + this.len), this.to);
    this.len = 0;
  }
}

/**
 * ValueCopier is a RunCopier over a store's two places for values: offsets below base.length
 * are the base's, the rest the arena's (at offset - base.length). A value never spans both.
 */
class ValueCopier {
  private readonly fromBase: RunCopier;
  private readonly fromArena: RunCopier;
  /** fromSegment: a copier per foreign segment met so far (by slot). */
  private readonly fromSegment = new Map<number, RunCopier>();
  constructor(base: Uint8Array, arena: Uint8Array, readonly dst: Uint8Array,
    private readonly segment: (slot: number, end: number) => Uint8Array) {
    this.fromBase = new RunCopier(base, dst);
    this.fromArena = new RunCopier(arena, dst);
  }

  /** copy: src 0 is the base or the arena (by offset), else a foreign segment's slot. */
  copy(src: number, at: number, len: number, o: number): void {
    if (src !== 0) {
      let c = this.fromSegment.get(src);
      if (c === undefined || c.src.length < at + len) {
        c?.flush();
        c = new RunCopier(this.segment(src, at + len), this.dst);
        this.fromSegment.set(src, c);
      }
      c.copy(at, len, o);
      return;
    }
    const baseBytes = this.fromBase.src.length;
    if (at < baseBytes) this.fromBase.copy(at, len, o);
    else this.fromArena.copy(at - baseBytes, len, o);
  }

  flush(): void {
    this.fromBase.flush();
    this.fromArena.flush();
    for (const c of this.fromSegment.values()) c.flush();
  }
}

/** SharedArena is a store's value arena as others read it (KvColumns.sharedArena). */
export interface SharedArena {
  /** id names this arena among all a thread makes (newArenaId). */
  readonly id: number;
  /** bytes views the whole buffer (shared memory; it may have grown in place since). */
  readonly bytes: Uint8Array;
  /** relocated: where the rebuild that made this arena put the previous one's live values. */
  readonly relocated?: Relocation;
}

/**
 * Relocation tells readers of arena `fromId` where a rebuild copied its live values: `table`
 * is n uint32 offsets in the old arena, ascending, then the n offsets in the new arena where
 * the same bytes now lie (shared memory, so that it crosses to every reader uncopied).
 */
export interface Relocation {
  readonly fromId: number;
  readonly table: Uint8Array;
}

/** relocationOf packs a rebuild's moves (old offset × 2^32 + new offset, in row order) as a
 * Relocation. */
function relocationOf(fromId: number, moves: number[]): Relocation {
  const sorted = Float64Array.from(moves).sort();
  const n = sorted.length;
  const table = new Uint8Array(new SharedArrayBuffer(Math.max(4, n * 8)));
  const words = new Uint32Array(table.buffer, 0, 2 * n);
  for (let i = 0; i < n; i++) {
    const m = sorted[i]!;
    words[i] = Math.floor(m / 2 ** 32);
    words[n + i] = m % 2 ** 32;
  }
  return { fromId, table: table.subarray(0, n * 8) };
}

/** ForeignSegment is another store's arena that rows of this one point into (useSegment). */
interface ForeignSegment {
  id: number;
  buffer: SharedArrayBuffer;
  /** bytes, view: the buffer as long as it was when last viewed (segmentView). */
  bytes: Uint8Array;
  view: Buffer;
  /** rows: live rows whose values lie in it; live: those values' bytes. */
  rows: number;
  live: number;
  /** firstRow: no row below it points into it (where copyOut starts looking). */
  firstRow: number;
  /** retired: its store has moved to a newer arena (useSegment). */
  retired: boolean;
}

/**
 * foreignKeepBytesMin, foreignKeepShareMin: a retired foreign segment stays (its rows keep
 * pointing into it) while it is at least this large and this share of it is this store's
 * live values; else they are copied out and it is let go (releaseSegments). Small ones go at
 * once, so a store whose other arena is rebuilt often (a few keys overwritten) holds copies
 * instead of many small segments.
 */
const foreignKeepBytesMin = 4 * 1024 * 1024;
/** heldListMax bounds holdGarbage's list (revisions merge into the last entry past it). */
const heldListMax = 4096;
const foreignKeepShareMin = 0.5;
/** foreignSegmentsMax: seg is a uint16 column. */
const foreignSegmentsMax = 0xffff;

/** arenaIds: the last arena id handed out on this thread. Ids are told apart per thread of
 * origin only: a store reads the arenas of one other store, and the actors that hold them
 * (the Raft node's applier, the shards) are always started again together. */
let arenaIds = 0;

/** newArenaId names a new arena (SharedArena.id). */
function newArenaId(): number {
  return ++arenaIds;
}

/** noBase is a store's base when it has none. */
const noBase = new Uint8Array(0);
