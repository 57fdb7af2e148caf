/**
 * bbolt: writes a bbolt (BoltDB) database file, the format etcd keeps its state in and streams
 * as a snapshot, so that `etcdctl snapshot save` gets a file `etcdctl snapshot status` (and
 * `snapshot restore`) can open. Pure: buckets in, bytes out. Only what a fresh, compact file
 * needs is written — no free pages, no nested buckets:
 *
 *   page 0, 1   meta pages (the same tree; txids 2 and 1, so page 0 is the current one)
 *   page 2      the freelist (empty)
 *   page 3      the root leaf: one element per bucket (bucket flag), value = bucket header
 *               {root page, sequence 0}
 *   then        each bucket's tree: leaves of at most leafElementsMax elements (a leaf larger
 *               than a page takes overflow pages), and a branch page above them when there is
 *               more than one leaf
 *
 * Page layout (bbolt's page.go): a 16-byte header {id u64, flags u16, count u16,
 * overflow u32}, then the elements (leaf: {flags u32, pos u32, ksize u32, vsize u32}; branch:
 * {pos u32, ksize u32, pgid u64}, pos counted from the element itself), then keys and values.
 * The meta {magic 0xED0CDAED, version 2, pageSize, flags, root {pgid, sequence}, freelist,
 * pgid (high water mark), txid, checksum} carries FNV-1a-64 of its first 56 bytes. All
 * integers little-endian, as bbolt writes them on the machines etcd runs on.
 */

/** EntrySource is a bucket's entries already in key-byte order, read by index, so that a
 * bucket of a million entries needs no object per entry. */
export interface EntrySource {
  readonly length: number;
  keyBytes(i: number): number;
  valueBytes(i: number): number;
  /** key is entry i's key (a branch page names each child by its first key). */
  key(i: number): Uint8Array;
  /** write copies entry i's key and then its value to `buf` at `at`. */
  write(i: number, buf: Uint8Array, at: number): void;
}

/** Bucket is one bucket: its name and its entries (pairs are sorted here by key bytes; an
 * EntrySource comes sorted). */
export interface Bucket {
  name: Uint8Array;
  entries: [Uint8Array, Uint8Array][] | EntrySource;
}

/** pairSource reads pairs, sorted by key bytes, as an EntrySource. */
function pairSource(pairs: readonly [Uint8Array, Uint8Array][]): EntrySource {
  const sorted = [...pairs].sort((x, y) => compare(x[0], y[0]));
  return {
    length: sorted.length,
    keyBytes: (i) => sorted[i]![0].length,
    valueBytes: (i) => sorted[i]![1].length,
    key: (i) => sorted[i]![0],
    write: (i, buf, at) => {
      const [k, v] = sorted[i]!;
      buf.set(k, at);
      buf.set(v, at + k.length);
    },
  };
}

/** pageBytes is the page size written (bbolt uses the OS page size; 4 KiB on Linux). */
export const pageBytes = 4096;
/** leafElementsMax bounds one leaf's elements (bbolt's count field is 16 bits). */
export const leafElementsMax = 1024;

const pageHeaderBytes = 16;
const leafElementBytes = 16;
const branchElementBytes = 16;
const branchPageFlag = 0x01;
const leafPageFlag = 0x02;
const metaPageFlag = 0x04;
const freelistPageFlag = 0x10;
const bucketLeafFlag = 0x01;
const magic = 0xed0cdaed;
const version = 2;

function compare(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

/** PageBuilder collects pages; a page's id is its index in 4 KiB units. */
class PageBuilder {
  readonly pages: Uint8Array[] = [];
  next = 0;

  /** alloc reserves enough pages for `bytes` and returns the first id and the buffer. */
  alloc(bytes: number): { id: number; buf: Uint8Array; view: DataView } {
    const n = Math.max(1, Math.ceil(bytes / pageBytes));
    const buf = new Uint8Array(n * pageBytes);
    const id = this.next;
    this.next += n;
    this.pages.push(buf);
    const view = new DataView(buf.buffer);
    view.setBigUint64(0, BigInt(id), true);
    view.setUint32(12, n - 1, true);
    return { id, buf, view };
  }
}

/** leaf writes entries [from, to) of `src` as one leaf (with overflow pages if larger than a
 * page) and returns its page id. */
function leaf(pb: PageBuilder, src: EntrySource, from: number, to: number, flags = 0): number {
  const n = to - from;
  let size = pageHeaderBytes + leafElementBytes * n;
  for (let i = from; i < to; i++) size += src.keyBytes(i) + src.valueBytes(i);
  const { id, buf, view } = pb.alloc(size);
  view.setUint16(8, leafPageFlag, true);
  view.setUint16(10, n, true);
  let data = pageHeaderBytes + leafElementBytes * n;
  for (let i = from; i < to; i++) {
    const el = pageHeaderBytes + leafElementBytes * (i - from);
    const k = src.keyBytes(i);
    const v = src.valueBytes(i);
    view.setUint32(el, flags, true);
    view.setUint32(el + 4, data - el, true);
    view.setUint32(el + 8, k, true);
    view.setUint32(el + 12, v, true);
    src.write(i, buf, data);
    data += k + v;
  }
  return id;
}

function branch(pb: PageBuilder, children: { key: Uint8Array; id: number }[]): number {
  let size = pageHeaderBytes + branchElementBytes * children.length;
  for (const c of children) size += c.key.length;
  const { id, buf, view } = pb.alloc(size);
  view.setUint16(8, branchPageFlag, true);
  view.setUint16(10, children.length, true);
  let data = pageHeaderBytes + branchElementBytes * children.length;
  children.forEach((c, i) => {
    const el = pageHeaderBytes + branchElementBytes * i;
    view.setUint32(el, data - el, true);
    view.setUint32(el + 4, c.key.length, true);
    view.setBigUint64(el + 8, BigInt(c.id), true);
    buf.set(c.key, data);
    data += c.key.length;
  });
  return id;
}

/** tree writes one bucket's entries as leaves (and branches above them) and returns its root
 * page id; it yields after each leaf. */
function* tree(pb: PageBuilder, src: EntrySource): Generator<void, number, void> {
  if (src.length <= leafElementsMax) return leaf(pb, src, 0, src.length);
  let level: { key: Uint8Array; id: number }[] = [];
  for (let i = 0; i < src.length; i += leafElementsMax) {
    const to = Math.min(src.length, i + leafElementsMax);
    level.push({ key: src.key(i), id: leaf(pb, src, i, to) });
    yield;
  }
  while (level.length > 1) {
    const up: { key: Uint8Array; id: number }[] = [];
    for (let i = 0; i < level.length; i += leafElementsMax) {
      const part = level.slice(i, i + leafElementsMax);
      up.push({ key: part[0]!.key, id: branch(pb, part) });
    }
    level = up;
  }
  return level[0]!.id;
}

/** fnv64a is FNV-1a, 64 bits (bbolt's meta checksum). */
export function fnv64a(b: Uint8Array): bigint {
  let h = 0xcbf29ce484222325n;
  for (const x of b) {
    h ^= BigInt(x);
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return h;
}

function meta(buf: Uint8Array, id: number, root: number, highWater: number, txid: number): void {
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  v.setBigUint64(0, BigInt(id), true);
  v.setUint16(8, metaPageFlag, true);
  const m = pageHeaderBytes;
  v.setUint32(m, magic, true);
  v.setUint32(m + 4, version, true);
  v.setUint32(m + 8, pageBytes, true);
  v.setUint32(m + 12, 0, true);
  v.setBigUint64(m + 16, BigInt(root), true);
  v.setBigUint64(m + 24, 0n, true);
  v.setBigUint64(m + 32, 2n, true); // freelist page
  v.setBigUint64(m + 40, BigInt(highWater), true);
  v.setBigUint64(m + 48, BigInt(txid), true);
  v.setBigUint64(m + 56, fnv64a(buf.subarray(m, m + 56)), true);
}

/** writeBbolt builds a complete database file holding the given buckets. */
export function writeBbolt(buckets: readonly Bucket[]): Uint8Array {
  const steps = bboltSteps(buckets);
  for (;;) {
    const r = steps.next();
    if (r.done === true) return r.value;
  }
}

/** bboltSteps builds the file as writeBbolt does, yielding after each leaf of up to
 * leafElementsMax entries, so that a caller can let other work run between them. */
export function* bboltSteps(buckets: readonly Bucket[]): Generator<void, Uint8Array, void> {
  const pb = new PageBuilder();
  const meta0 = pb.alloc(pageBytes);
  const meta1 = pb.alloc(pageBytes);
  const freelist = pb.alloc(pageBytes);
  freelist.view.setUint16(8, freelistPageFlag, true);
  const sorted = [...buckets].sort((a, b) => compare(a.name, b.name));
  const roots: number[] = [];
  for (const b of sorted) {
    roots.push(yield* tree(pb, Array.isArray(b.entries) ? pairSource(b.entries) : b.entries));
  }
  const rootEntries: [Uint8Array, Uint8Array][] = sorted.map((b, i) => {
    const header = new Uint8Array(16);
    new DataView(header.buffer).setBigUint64(0, BigInt(roots[i]!), true);
    return [b.name, header];
  });
  const root = leaf(pb, pairSource(rootEntries), 0, rootEntries.length, bucketLeafFlag);
  meta(meta0.buf, 0, root, pb.next, 2);
  meta(meta1.buf, 1, root, pb.next, 1);
  const out = new Uint8Array(pb.next * pageBytes);
  let at = 0;
  for (const p of pb.pages) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
