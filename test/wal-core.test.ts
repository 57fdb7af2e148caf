import test from 'ava';
import {
  WalCorruptError,
  WalEncoder,
  SnapshotCorruptError,
  crc32c,
  crc32cTables,
  crc32cUpdate,
  nativeCrc32cInUse,
  nativeCrcBytesMin,
  useNativeCrc32c,
  decodeSegment,
  decodeSnapshotFile,
  encodeRecords,
  encodeSnapshotFile,
  decodeFramedEntries,
  frameEntries,
  foldWal,
  readWal,
  walSegmentName,
  parseWalSegmentName,
  snapshotFileName,
  parseSnapshotFileName,
  bodyRegions,
  encodeSnapshotHeader,
  encodeSplitBodyPrefix,
  snapshotFileSplitAt,
  snapshotHeaderBytes,
  splitBodyPrefixBytes,
} from '../src/wal/index.js';
import type { EntryType, WalEntry, WalRecord, WalRecordInput } from '../src/wal/index.js';
import type { Index, MemberId, Term } from '../src/types.js';
import { seeded } from './helpers/rng.js';

const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const entry = (term: number, index: number, data = '', type: EntryType = 0): WalEntry =>
  ({ term: term as Term, index: index as Index, type, data: text(data) });

function naiveCrc32c(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return ~c >>> 0;
}

test('crc32c: known vectors (the check value and RFC 3720 iSCSI vectors)', (t) => {
  t.is(crc32c(text('123456789')), 0xe3069283);
  t.is(crc32c(new Uint8Array(0)), 0);
  t.is(crc32c(new Uint8Array(32)), 0x8a9136aa);
  t.is(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
  t.is(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i)), 0x46dd794e);
  t.is(crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i)), 0x113fdb5c);
});

test('crc32c: slicing-by-8 matches the bitwise twin and chains across any split', (t) => {
  const seed = 1234;
  const rnd = seeded(seed);
  for (let n = 0; n < 300; n++) {
    const len = Math.floor(rnd() * 200);
    const b = Uint8Array.from({ length: len }, () => Math.floor(rnd() * 256));
    const whole = crc32c(b);
    t.is(whole, naiveCrc32c(b), `seed ${seed} case ${n}`);
    const cut = Math.floor(rnd() * (len + 1));
    t.is(crc32cUpdate(crc32cUpdate(0, b, 0, cut), b, cut, len), whole, `seed ${seed} case ${n}`);
  }
});

test('crc32c: the WAL writer installs the native add-on, and it agrees with the tables ' +
  'across the cut-over', async (t) => {
  // Importing the WAL writer's store installs it, as in the actor's thread. The CI machines
  // are linux-x64, where the add-on has a prebuilt binary: its absence would cost a restart
  // ≈ 0.2 s per 170 MB, so it fails here.
  const { loadNativeCrc32c } = await import('../actors/wal/native-crc.js');
  await import('../actors/wal/wal-store.js');
  t.true(nativeCrc32cInUse(), '@node-rs/crc32 did not load');
  const rnd = seeded(99);
  const sizes = [nativeCrcBytesMin - 1, nativeCrcBytesMin, nativeCrcBytesMin + 7, 65_537,
    1_000_003];
  for (const len of sizes) {
    const b = Uint8Array.from({ length: len }, () => Math.floor(rnd() * 256));
    const tables = crc32cTables(0, b);
    t.is(crc32c(b), tables, `length ${len}`);
    // Chained across a cut that puts one side on each path, and from an offset.
    const cut = Math.floor(rnd() * len);
    t.is(crc32cUpdate(crc32cUpdate(0, b, 0, cut), b, cut, len), tables, `cut ${cut}/${len}`);
    const from = Math.floor(len / 3);
    t.is(crc32cUpdate(0, b, from, len), crc32cTables(0, b.subarray(from)), `from ${from}`);
  }
  // Removed, the tables answer alone, the same.
  const b = Uint8Array.from({ length: 4096 }, (_, i) => i * 7);
  const native = crc32c(b);
  useNativeCrc32c(undefined);
  try {
    t.false(nativeCrc32cInUse());
    t.is(crc32c(b), native);
  } finally {
    useNativeCrc32c(loadNativeCrc32c());
  }
});

test('wal-format: the worked example in docs/wal-format.md encodes byte for byte', (t) => {
  const enc = new WalEncoder(0, 16);
  enc.addCrc(0);
  t.is(enc.crc, 0xa537c885);
  enc.addEntry(entry(1, 1, 'foo'));
  t.is(enc.crc, 0xd5aa1c9a);
  const hex = Buffer.from(enc.bytes()).toString('hex');
  t.is(
    hex,
    '0900000000000087' + '85c837a5' + '04' + '00000000' + '00000000000000' +
      '1900000000000087' + '9a1caad5' + '02' + '0100000000000000' + '0100000000000000' + '00' +
      '666f6f' + '00000000000000',
  );
});

function randomRecords(rnd: () => number, n: number, startIndex: number): WalRecordInput[] {
  const out: WalRecordInput[] = [];
  let index = startIndex;
  const types: EntryType[] = [0, 1, 2];
  for (let i = 0; i < n; i++) {
    const k = rnd();
    if (k < 0.7) {
      const len = Math.floor(rnd() * 100);
      const data = Uint8Array.from({ length: len }, () => Math.floor(rnd() * 256));
      const type = types[Math.floor(rnd() * 3)]!;
      out.push({ type: 'entry', entry: { term: 3 as Term, index: ++index as Index, type, data } });
    } else if (k < 0.85) {
      const commit = Math.floor(rnd() * index) as Index;
      out.push({ type: 'state', state: { term: 3 as Term, vote: 2 as MemberId, commit } });
    } else if (k < 0.95) {
      out.push({ type: 'snapshot', index: index as Index, term: 2 as Term });
    } else {
      out.push({ type: 'metadata', nodeId: 7 as MemberId, clusterId: 2 ** 53 - 1 });
    }
  }
  return out;
}

/** plain turns decoded records into comparable objects (data views become arrays). */
function plain(r: WalRecord | WalRecordInput): unknown {
  if (r.type === 'entry') return { ...r, entry: { ...r.entry, data: [...r.entry.data] } };
  return r;
}

test('wal codec: random batches round-trip through encode and decode (seeded)', (t) => {
  for (const seed of [1, 2, 3, 42, 777]) {
    const rnd = seeded(seed);
    const head = encodeRecords([], 0);
    t.is(head.bytes.length, 0);
    const enc = new WalEncoder(0, 8);
    enc.addCrc(0);
    const records = randomRecords(rnd, 200, 0);
    // Several batches through one reused encoder, as the writer does.
    const chunks: Uint8Array[] = [enc.bytes().slice()];
    for (let i = 0; i < records.length; ) {
      const n = 1 + Math.floor(rnd() * 20);
      enc.reset();
      for (const r of records.slice(i, i + n)) enc.add(r);
      chunks.push(enc.bytes().slice());
      i += n;
    }
    const file = Buffer.concat(chunks);
    const d = decodeSegment(file, { name: 'x.wal', isLast: true, prevCrc: undefined });
    t.is(d.torn, undefined, `seed ${seed}`);
    t.is(d.validBytes, file.length);
    t.is(d.crc, enc.crc);
    t.deepEqual(d.records.slice(1).map(plain), records.map(plain), `seed ${seed}`);
    t.deepEqual(d.records[0], { type: 'crc', prevCrc: 0 });
    for (const o of d.offsets) t.is(o % 8, 0);
  }
});

test('wal codec: entries framed apart and chained by the writer encode byte for byte as ' +
  'entries encoded by the writer (seeded)', (t) => {
  for (const seed of [5, 6, 99]) {
    const rnd = seeded(seed);
    const direct = new WalEncoder(0x1234, 8);
    const framed = new WalEncoder(0x1234, 8);
    let index = 0;
    for (let batch = 0; batch < 40; batch++) {
      direct.reset();
      framed.reset();
      const entries: WalEntry[] = [];
      const n = Math.floor(rnd() * 12); // 0: a hard state alone
      for (let i = 0; i < n; i++) {
        // Every length mod 8 (the padding), empty data, and now and then one past 64 KiB.
        const len = rnd() < 0.02 ? 70_000 : Math.floor(rnd() * 300);
        const data = Uint8Array.from({ length: len }, () => Math.floor(rnd() * 256));
        entries.push(entry(1 + batch, ++index, '', (i % 3) as EntryType));
        entries[i] = { ...entries[i]!, data };
      }
      const state = { term: (1 + batch) as Term, vote: 1 as MemberId, commit: index as Index };
      for (const e of entries) direct.add({ type: 'entry', entry: e });
      direct.add({ type: 'state', state });
      const bytes = frameEntries(entries);
      if (n > 0) framed.add({ type: 'framed', bytes });
      framed.add({ type: 'state', state });
      t.deepEqual(framed.bytes(), direct.bytes(), `seed ${seed} batch ${batch}`);
      t.is(framed.crc, direct.crc);
      // The frames read back as the entries (their CRCs unset: nothing to check there).
      t.deepEqual(decodeFramedEntries(bytes).map((e) => ({ ...e, data: [...e.data] })),
        entries.map((e) => ({ ...e, data: [...e.data] })), `seed ${seed} batch ${batch}`);
    }
  }
});

test('wal codec: framed entries that are not whole entry records are refused before ' +
  'anything is encoded', (t) => {
  const bytes = frameEntries([entry(1, 1, 'abc'), entry(1, 2, 'defghij')]);
  const enc = new WalEncoder(0, 8);
  // Cut short, padded with a zero frame, or holding another record type.
  const cut = bytes.subarray(0, bytes.length - 8);
  t.throws(() => decodeFramedEntries(cut), { instanceOf: RangeError });
  t.throws(() => enc.addFramed({ type: 'framed', bytes: cut }));
  const padded = new Uint8Array(bytes.length + 8);
  padded.set(bytes);
  t.throws(() => decodeFramedEntries(padded), { message: /zero frame/ });
  t.throws(() => enc.addFramed({ type: 'framed', bytes: padded }));
  const state = new WalEncoder(0, 8, false);
  state.addState({ term: 1 as Term, vote: 0 as MemberId, commit: 0 as Index });
  t.throws(() => decodeFramedEntries(state.bytes()), { message: /a state record/ });
  t.throws(() => enc.addFramed({ type: 'framed', bytes: state.bytes() }));
  t.is(enc.length, 0);
  t.is(enc.crc, 0);
});

test('wal codec: a segment chained from a previous one must carry its CRC', (t) => {
  const a = new WalEncoder(0);
  a.addCrc(0);
  a.addEntry(entry(1, 1, 'a'));
  const seg0 = a.bytes().slice();
  const b = new WalEncoder(0);
  b.addCrc(a.crc);
  b.addEntry(entry(1, 2, 'b'));
  const seg1 = b.bytes().slice();
  const ok = readWal([
    { name: walSegmentName(0, 0), bytes: seg0 },
    { name: walSegmentName(1, 2), bytes: seg1 },
  ]);
  t.is(ok.crc, b.crc);
  const c = new WalEncoder(0);
  c.addCrc(a.crc ^ 1);
  c.addEntry(entry(1, 2, 'b'));
  const err = t.throws(
    () =>
      readWal([
        { name: walSegmentName(0, 0), bytes: seg0 },
        { name: walSegmentName(1, 2), bytes: c.bytes().slice() },
        { name: walSegmentName(2, 3), bytes: seg1 },
      ]),
    { instanceOf: WalCorruptError },
  );
  t.is(err?.file, walSegmentName(1, 2));
  t.is(err?.offset, 0);
  t.throws(
    () =>
      readWal([
        { name: walSegmentName(0, 0), bytes: seg0 },
        { name: walSegmentName(2, 2), bytes: seg1 },
      ]),
    { instanceOf: WalCorruptError, message: /sequence gap/ },
  );
});

function log(...recs: WalRecordInput[]): Uint8Array {
  const enc = new WalEncoder(0);
  enc.addCrc(0);
  for (const r of recs) enc.add(r);
  return enc.bytes().slice();
}
const E = (term: number, index: number, data = ''): WalRecordInput => ({
  type: 'entry',
  entry: entry(term, index, data),
});

test('wal recovery: a later entry replaces the entry at its index and all after it', (t) => {
  const bytes = log(E(1, 1), E(1, 2), E(1, 3), E(1, 4), E(2, 3, 'x'), E(2, 4, 'y'), E(3, 4, 'z'));
  const r = foldWal(readWal([{ name: walSegmentName(0, 0), bytes }]), undefined);
  t.deepEqual(
    r.entries.map((e) => [e.term, e.index]),
    [[1, 1], [1, 2], [2, 3], [3, 4]],
  );
  const r2 = foldWal(
    readWal([{ name: walSegmentName(0, 0), bytes: log(E(1, 1), E(1, 2), E(1, 3), E(2, 2)) }]),
    undefined,
  );
  t.deepEqual(r2.entries.map((e) => [e.term, e.index]), [[1, 1], [2, 2]]);
  t.is(r2.lastIndex, 2);
});

test('wal recovery: starts after the snapshot and needs its marker', (t) => {
  const snap = { type: 'snapshot', index: 2 as Index, term: 1 as Term } as const;
  const bytes = log(E(1, 1), E(1, 2), snap, E(1, 3), E(1, 4));
  const scan = readWal([{ name: walSegmentName(0, 0), bytes }]);
  const r = foldWal(scan, { index: 2 as Index, term: 1 as Term });
  t.deepEqual(r.entries.map((e) => e.index), [3, 4]);
  t.deepEqual(r.snapshot, { index: 2, term: 1 });
  t.throws(() => foldWal(scan, { index: 2 as Index, term: 9 as Term }), {
    instanceOf: WalCorruptError,
    message: /does not match/,
  });
  t.throws(() => foldWal(scan, { index: 3 as Index, term: 1 as Term }), {
    instanceOf: WalCorruptError,
    message: /not found/,
  });
});

test('wal recovery: a gap in entry indexes or conflicting metadata is corruption', (t) => {
  const gap = log(E(1, 1), E(1, 3));
  const gapScan = readWal([{ name: walSegmentName(0, 0), bytes: gap }]);
  const err = t.throws(() => foldWal(gapScan, undefined), {
    instanceOf: WalCorruptError,
  });
  t.regex(err?.message ?? '', /gap/);
  const m = (nodeId: number): WalRecordInput => ({
    type: 'metadata',
    nodeId: nodeId as MemberId,
    clusterId: 1,
  });
  t.throws(
    () => foldWal(readWal([{ name: walSegmentName(0, 0), bytes: log(m(1), m(2)) }]), undefined),
    { instanceOf: WalCorruptError, message: /metadata conflict/ },
  );
});

test('wal decoder: a torn last record is cut; the same damage before more data is refused', (t) => {
  const full = log(E(1, 1, 'hello'), E(1, 2, 'world'));
  const d = decodeSegment(full, { name: 'a.wal', isLast: true, prevCrc: undefined });
  const second = d.offsets[2]!;
  const torn = decodeSegment(full.subarray(0, full.length - 3), {
    name: 'a.wal',
    isLast: true,
    prevCrc: undefined,
  });
  t.is(torn.torn?.offset, second);
  t.is(torn.records.length, 2);
  t.throws(
    () =>
      decodeSegment(full.subarray(0, full.length - 3), {
        name: 'a.wal',
        isLast: false,
        prevCrc: undefined,
      }),
    { instanceOf: WalCorruptError },
  );
  // Zeros after the records, to the end of the file, are preallocated space: the records end
  // there, in any segment, with nothing torn.
  const zeroTail = new Uint8Array(full.length + 64 + 5);
  zeroTail.set(full);
  for (const isLast of [true, false]) {
    const z = decodeSegment(zeroTail, { name: 'a.wal', isLast, prevCrc: undefined });
    t.is(z.torn, undefined);
    t.is(z.validBytes, full.length);
    t.is(z.records.length, 3);
  }
  // A zero frame with anything after it is damage: torn in the last segment (no plausible
  // record follows), refused elsewhere.
  zeroTail[zeroTail.length - 1] = 1;
  const z = decodeSegment(zeroTail, { name: 'a.wal', isLast: true, prevCrc: undefined });
  t.is(z.torn?.offset, full.length);
  t.is(z.records.length, 3);
  t.throws(() => decodeSegment(zeroTail, { name: 'a.wal', isLast: false, prevCrc: undefined }),
    { instanceOf: WalCorruptError });
});

test('wal names: segment and snapshot names format and parse like etcd', (t) => {
  t.is(walSegmentName(1, 0x1f41), '0000000000000001-0000000000001f41.wal');
  t.deepEqual(parseWalSegmentName('0000000000000001-0000000000001f41.wal'), {
    seq: 1,
    index: 0x1f41,
    name: '0000000000000001-0000000000001f41.wal',
  });
  t.is(parseWalSegmentName('0000000000000001-0000000000001f41.wal.tmp'), undefined);
  t.is(snapshotFileName(3, 0x1f40), '0000000000000003-0000000000001f40.snap');
  t.is(parseSnapshotFileName(snapshotFileName(3, 8000))?.index, 8000);
});

test('snapshot format: a split body reads back in two regions, and both are checked', (t) => {
  const head = Uint8Array.from({ length: 40 }, (_, i) => (i * 11) & 0xff);
  const tail = Uint8Array.from({ length: 70 }, (_, i) => (i * 5 + 1) & 0xff);
  const parts = [encodeSplitBodyPrefix(head.length), head, tail];
  const file = Buffer.concat([encodeSnapshotHeader(2, 900, parts), ...parts]);
  const at = snapshotFileSplitAt(file.subarray(0, 64), file.length);
  t.is(at, snapshotHeaderBytes + splitBodyPrefixBytes + head.length);
  const d = decodeSnapshotFile(file.subarray(0, at), 'y.snap', { term: 2, index: 900 },
    file.subarray(at));
  const whole = decodeSnapshotFile(file, 'y.snap');
  t.is(whole.tail, undefined);
  // Cut from the two regions or from the body read whole: the same head and tail.
  for (const r of [bodyRegions(d.body, d.tail), bodyRegions(whole.body)]) {
    t.deepEqual([...r.head], [...head]);
    t.deepEqual([...r.tail!], [...tail]);
  }
  // The checksum covers the tail; the length counts it.
  for (let i = 0; i < tail.length; i += 7) {
    const bad = Buffer.from(file.subarray(at));
    bad[i]! ^= 0x08;
    t.throws(() => decodeSnapshotFile(file.subarray(0, at), 'y.snap', undefined, bad),
      { instanceOf: SnapshotCorruptError, message: /crc mismatch/ }, `tail byte ${i}`);
  }
  t.throws(() => decodeSnapshotFile(file.subarray(0, at), 'y.snap', undefined,
    Buffer.concat([file.subarray(at), Buffer.from([0])])), { message: /length/ });
  // A body that is not split is one region; a prefix naming more than there is, refused.
  const plain = Uint8Array.from([0x81, 0xa1, 0x61, 0x01]);
  t.is(snapshotFileSplitAt(encodeSnapshotFile(1, 1, plain), 52), undefined);
  t.deepEqual([...bodyRegions(plain).head], [...plain]);
  t.is(bodyRegions(plain).tail, undefined);
  t.throws(() => bodyRegions(plain, tail), { instanceOf: SnapshotCorruptError });
  const long = Buffer.concat([encodeSplitBodyPrefix(head.length + tail.length + 1), head, tail]);
  t.throws(() => bodyRegions(long), { instanceOf: SnapshotCorruptError });
  // Read in two regions, the first must end where the prefix says the head does.
  const over = Buffer.concat([encodeSplitBodyPrefix(head.length), head, Buffer.from([1])]);
  t.throws(() => bodyRegions(over, tail), { instanceOf: SnapshotCorruptError });
  // An offset past the file's end (a damaged prefix) reads the file whole: its checks judge.
  const cut = file.subarray(0, at! - 1);
  t.is(snapshotFileSplitAt(cut.subarray(0, 64), at! - 1), undefined);
});

test('snapshot format: round trip, and every single-byte flip is detected', (t) => {
  const body = Uint8Array.from({ length: 100 }, (_, i) => (i * 7) & 0xff);
  const file = encodeSnapshotFile(3, 8000, body);
  const d = decodeSnapshotFile(file, 'x.snap', { term: 3, index: 8000 });
  t.deepEqual([d.term, d.index, [...d.body]], [3, 8000, [...body]]);
  t.throws(() => decodeSnapshotFile(file, 'x.snap', { term: 3, index: 8001 }), {
    instanceOf: SnapshotCorruptError,
  });
  for (let i = 0; i < file.length; i++) {
    const bad = file.slice();
    bad[i]! ^= 0x20;
    const what = `byte ${i}`;
    t.throws(() => decodeSnapshotFile(bad, 'x.snap'), { instanceOf: SnapshotCorruptError }, what);
  }
  t.throws(() => decodeSnapshotFile(file.subarray(0, file.length - 1), 'x.snap'), {
    instanceOf: SnapshotCorruptError,
  });
});
