import type { Bytes } from '../types.js';
import { ErrSnapshotCorrupt } from '../errors.js';
import { fitsNarrow, loadColumn, type NumberColumn } from './kv-columns.js';
import { PackedKeys } from './packed-keys.js';

/**
 * The shard snapshot formats. A shard's dump lists its retained versions as rows in two runs:
 * first the versions older than compactRevision (at most one per key, the one reads at
 * compactRevision still see), then the change log — every version at or after
 * compactRevision — in revision order, a transaction's changes in their original order.
 * Replaying the rows in order rebuilds the store. Each distinct key is stored once and rows
 * name it by number.
 *
 * v1 (`myetcd.mvcc.shard.v1`, written until the compact store): a msgpack map of arrays —
 * `keys: string[]`, and per row `key`, `mod`, `create`, `version`, `lease` (number arrays)
 * and `value` (string array). Loading it allocates one JS value per row and field.
 *
 * v2 (`myetcd.mvcc.shard.v2`): the same rows as whole binary columns, so a load is a few
 * large copies: `keyBytes` (every key's bytes, concatenated) cut by `keyLens` (uint32 each),
 * `key` (uint32 per row), `mod`, `create`, `version`, `lease` (float64 per row — exact for
 * every safe integer), `valueBytes` cut by `valueLens` (uint32 per row). Multi-byte columns
 * are little-endian (the byte order of every host Node runs on here; a big-endian host is
 * refused at load with a clear error rather than misread). Version 0 marks a tombstone,
 * whose create, lease and value are zero/empty. An optional `sub` column (uint32 per row,
 * added later: absent in older dumps, read as zeros) holds each change-log row's sub revision
 * — its place in its transaction across all shards — so that watch catch-up from a restored
 * store still gives a transaction's events in transaction order.
 *
 * Both load into SnapshotColumns; writers write v2 only. A member upgraded in place reads
 * its v1 snapshot once and writes v2 from its next snapshot on.
 */

/** shardSnapshotFormatV1 names the previous layout, still read. */
export const shardSnapshotFormatV1 = 'myetcd.mvcc.shard.v1';
/** shardSnapshotFormat names the layout written now (see the file comment). */
export const shardSnapshotFormat = 'myetcd.mvcc.shard.v2';

/** ShardSnapshotV1 is the previous plain-object layout (see the file comment). */
export interface ShardSnapshotV1 {
  format: typeof shardSnapshotFormatV1;
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

/** ShardSnapshot is the layout written now: binary columns (see the file comment). A dump
 * made to be written (ShardStore.toSnapshotPieces) gives its values as pieces (V). */
export interface ShardSnapshot<V = Uint8Array> {
  format: typeof shardSnapshotFormat;
  currentRevision: number;
  compactRevision: number;
  keyBytes: Uint8Array;
  keyLens: Uint8Array;
  key: Uint8Array;
  mod: Uint8Array;
  create: Uint8Array;
  version: Uint8Array;
  lease: Uint8Array;
  valueBytes: V;
  valueLens: Uint8Array;
  /** sub: the rows' sub revisions (optional, see the file comment). */
  sub?: Uint8Array;
}

/** SnapshotColumns is a decoded dump of either format, as aligned typed arrays; its keys are
 * a packed table, so that a load makes no string per key (see PackedKeys). V: as in
 * ShardSnapshot. */
export interface SnapshotColumns<V = Uint8Array> {
  currentRevision: number;
  compactRevision: number;
  keys: PackedKeys;
  rows: number;
  key: Uint32Array;
  /** mod, create, version: uint32 where every row's fits (a decoded dump's), else float64. */
  mod: NumberColumn;
  create: NumberColumn;
  version: NumberColumn;
  lease: Float64Array;
  valueLens: Uint32Array;
  valueBytes: V;
  /** sub: each row's sub revision (absent: unknown, all 0). */
  sub?: Uint32Array;
}

const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** KeyTable numbers a dump's distinct keys in first-seen order (SnapshotColumns' keys and
 * key column). */
export class KeyTable {
  readonly keys: Bytes[] = [];
  private readonly numbers = new Map<Bytes, number>();

  /** numberOf returns k's number, adding k when it is new. */
  numberOf(k: Bytes): number {
    let no = this.numbers.get(k);
    if (no === undefined) {
      no = this.keys.length;
      this.numbers.set(k, no);
      this.keys.push(k);
    }
    return no;
  }
}

/** bytesOf views a typed array's bytes (no copy). */
function bytesOf(a: Float64Array | Uint32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** f64BytesOf is a number column's first n rows as the bytes of float64s (v2's columns): a
 * view of a float64 column, a widened copy of a uint32 one. */
function f64BytesOf(a: NumberColumn, n: number): Uint8Array {
  const rows = a.subarray(0, n);
  return bytesOf(rows instanceof Float64Array ? rows : Float64Array.from(rows));
}

/** encodeShardSnapshot builds a v2 dump from columns (views of them: no copies but of uint32
 * revisions, widened to v2's float64). */
export function encodeShardSnapshot<V>(c: SnapshotColumns<V>): ShardSnapshot<V> {
  const n = c.rows;
  return {
    format: shardSnapshotFormat,
    currentRevision: c.currentRevision,
    compactRevision: c.compactRevision,
    keyBytes: c.keys.bytes, keyLens: bytesOf(c.keys.lengths()),
    key: bytesOf(c.key.subarray(0, n)),
    mod: f64BytesOf(c.mod, n),
    create: f64BytesOf(c.create, n),
    version: f64BytesOf(c.version, n),
    lease: bytesOf(c.lease.subarray(0, n)),
    valueBytes: c.valueBytes,
    valueLens: bytesOf(c.valueLens.subarray(0, n)),
    ...(c.sub === undefined ? {} : { sub: bytesOf(c.sub.subarray(0, n)) }),
  };
}

/** valueOffsets gives where each of a dump's rows' value begins in its valueBytes (the running
 * sums of valueLens). */
export function valueOffsets(d: Pick<SnapshotColumns, 'rows' | 'valueLens'>): Float64Array {
  const valueAt = new Float64Array(d.rows);
  let o = 0;
  for (let i = 0; i < d.rows; i++) {
    valueAt[i] = o;
    o += d.valueLens[i]!;
  }
  return valueAt;
}

/**
 * decodeShardSnapshot checks a dump of either format (after a msgpack round trip) and returns
 * its columns; anything malformed is ErrSnapshotCorrupt. It checks shapes, lengths and
 * ranges; the rows' consistency (generations, order) is checked by whoever replays them.
 * `values` are a v2 dump's value bytes when it was stored without them (a split snapshot
 * body keeps every dump's values apart: src/cluster/proposal.ts).
 */
export function decodeShardSnapshot(x: unknown, values?: Uint8Array): SnapshotColumns {
  if (typeof x !== 'object' || x === null) return bad('not an object');
  const s = x as Record<string, unknown>;
  const rev = (v: unknown, name: string): number => {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) bad(`${name} ${String(v)}`);
    return v as number;
  };
  const currentRevision = rev(s.currentRevision, 'currentRevision');
  const compactRevision = rev(s.compactRevision, 'compactRevision');
  if (compactRevision > currentRevision) bad('compact > current');
  if (s.format === shardSnapshotFormatV1) {
    if (values !== undefined) bad('v1 dump with values apart');
    return decodeV1(s, currentRevision, compactRevision);
  }
  if (s.format !== shardSnapshotFormat) return bad(`format ${String(s.format)}`);
  if (!littleEndian) bad('this host is big-endian; v2 snapshots are little-endian');
  const bin = (v: unknown, name: string): Uint8Array => {
    if (!(v instanceof Uint8Array)) return bad(`${name} is not binary`);
    return v;
  };
  /** u32 copies a column of uint32s out, into `alloc`'s array (default: a plain one). */
  const u32 = (v: unknown, name: string, n?: number,
    alloc = (len: number): Uint32Array => new Uint32Array(len)): Uint32Array => {
    const b = bin(v, name);
    if (b.length % 4 !== 0 || (n !== undefined && b.length !== n * 4)) {
      bad(`${name} holds ${b.length} bytes`);
    }
    const out = alloc(b.length / 4);
    bytesOf(out).set(b);
    return out;
  };
  const key = u32(s.key, 'key');
  const rows = key.length;
  const keyLens = u32(s.keyLens, 'keyLens');
  // The key bytes are copied into a table of their own: they must not keep the message or
  // the snapshot body they came in alive.
  const keys = PackedKeys.fromLengths(bin(s.keyBytes, 'keyBytes'), keyLens) ??
    bad('keyLens do not add up to keyBytes');
  for (let i = 0; i < rows; i++) if (key[i]! >= keys.count) bad('key number out of range');
  // In the buffer a store's load() keeps, as f64's columns.
  const valueLens = u32(s.valueLens, 'valueLens', rows, (len) => loadColumn(Uint32Array, len));
  if (values !== undefined && s.valueBytes !== undefined) bad('values given twice');
  const valueBytes = values ?? bin(s.valueBytes, 'valueBytes');
  let total = 0;
  for (let i = 0; i < rows; i++) total += valueLens[i]!;
  if (total !== valueBytes.length) bad('valueLens do not add up to valueBytes');
  const [mod, create, version] = numberColumns([s.mod, s.create, s.version], rows);
  return {
    currentRevision, compactRevision, keys, rows, key, mod, create, version,
    lease: leaseColumn(s.lease, rows), valueLens, valueBytes,
    ...(s.sub === undefined ? {} : { sub: u32(s.sub, 'sub', rows) }),
  };
}

function decodeV1(s: Record<string, unknown>, currentRevision: number,
  compactRevision: number): SnapshotColumns {
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
  const mod = numbers(s.mod, 'mod');
  const create = numbers(s.create, 'create');
  const version = numbers(s.version, 'version');
  const lease = numbers(s.lease, 'lease');
  const value = strings(s.value, 'value');
  const rows = key.length;
  if (![mod, create, version, lease, value].every((c) => c.length === rows)) {
    bad('columns differ in length');
  }
  if (!key.every((k) => k < keys.length)) bad('key number out of range');
  const valueLens = new Uint32Array(value.map((v) => v.length));
  let total = 0;
  for (const v of value) total += v.length;
  const valueBytes = new Uint8Array(total);
  const view = Buffer.from(valueBytes.buffer, 0, total);
  let o = 0;
  for (const v of value) o += view.write(v, o, v.length, 'latin1');
  return {
    currentRevision, compactRevision, keys: PackedKeys.fromStrings(keys), rows,
    key: new Uint32Array(key),
    mod: new Float64Array(mod), create: new Float64Array(create),
    version: new Float64Array(version), lease: new Float64Array(lease), valueLens, valueBytes,
  };
}

/** f64In views a dump's column of float64s in the message (a copy when it is not aligned),
 * checked: reads of the message's plain buffer cost V8 less than of a store's resizable one. */
function f64In(v: unknown, name: string, n: number): Float64Array {
  if (!(v instanceof Uint8Array)) return bad(`${name} is not binary`);
  if (v.length !== n * 8) bad(`${name} holds ${v.length} bytes for ${n} rows`);
  const a = v.byteOffset % 8 === 0 ? new Float64Array(v.buffer, v.byteOffset, n)
    : new Float64Array(new Uint8Array(v).buffer);
  if (!safeNonNegative(a)) bad(`${name} is not safe non-negative integers`);
  return a;
}

/** leaseColumn copies out a dump's lease column, into the buffer a store's load() keeps; one
 * of zeros only stays untouched memory (a store then keeps no lease column: KvColumns). */
function leaseColumn(v: unknown, n: number): Float64Array {
  const a = f64In(v, 'lease', n);
  if (!a.some((l) => l !== 0)) return new Float64Array(n);
  const out = loadColumn(Float64Array, n);
  out.set(a);
  return out;
}

/** numberColumns copies out a dump's mod, create and version columns, into the buffers a
 * store's load() keeps: uint32 ones (half the bytes, as a store keeps them: KvColumns) when
 * all three fit them, else float64 ones. */
function numberColumns(vs: [unknown, unknown, unknown], n: number):
  [NumberColumn, NumberColumn, NumberColumn] {
  const ins = [f64In(vs[0], 'mod', n), f64In(vs[1], 'create', n), f64In(vs[2], 'version', n)];
  const type = ins.every((c) => fitsNarrow(c, n)) ? Uint32Array : Float64Array;
  const [mod, create, version] = ins.map((c) => {
    const out: NumberColumn = loadColumn<NumberColumn>(type, n);
    out.set(c);
    return out;
  });
  return [mod!, create!, version!];
}

/** safeNonNegative reports whether every element is a safe integer ≥ 0 (one function for
 * every column, so that its loop stays optimized from one call to the next). */
function safeNonNegative(a: Float64Array): boolean {
  for (let i = 0; i < a.length; i++) {
    const e = a[i]!;
    if (!(Number.isSafeInteger(e) && e >= 0)) return false;
  }
  return true;
}

function bad(what: string): never {
  throw new ErrSnapshotCorrupt(what);
}
