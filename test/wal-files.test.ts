import test from 'ava';
import type { ExecutionContext } from 'ava';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { WalCorruptError, WalStore } from '../actors/wal/wal-store.js';
import {
  listSnapshots,
  loadNewestSnapshot,
  purgeSnapshots,
  writeSnapshotFile,
} from '../actors/wal/snap-store.js';
import { snapDirOf, walDirOf } from '../src/server/data-dir.js';
import { walPreallocateStepBytes } from '../src/constants.js';
import { nodeFsOps, readFileSharedSync, splitProbeBytes } from '../actors/wal/fs-ops.js';
import type { FsOps, StoreLogger } from '../actors/wal/fs-ops.js';
import {
  bodyRegions, decodeSegment, encodeSplitBodyPrefix, walSegmentName,
} from '../src/wal/index.js';
import type { WalEntry, WalRecordInput } from '../src/wal/index.js';
import type { Index, MemberId, Term } from '../src/types.js';
import { seeded } from './helpers/rng.js';
import { entry, hs, tmpDir } from './helpers/wal.js';

interface TestLogger extends StoreLogger {
  warns: string[];
}
function newLogger(): TestLogger {
  const warns: string[] = [];
  return { warns, warn: (_o, msg) => void warns.push(msg), info: () => {} };
}

/** noSync skips fsyncs: for the exhaustive damage loops, which test decoding, not durability. */
const noSync: FsOps = { ...nodeFsOps, fdatasyncSync: () => {}, fsyncSync: () => {} };

const enc = new TextEncoder();
const dec = new TextDecoder();
const meta: WalRecordInput = { type: 'metadata', nodeId: 1 as MemberId, clusterId: 99 };
const show = (es: readonly WalEntry[]): [number, number, string][] =>
  es.map((e) => [e.term, e.index, dec.decode(e.data)]);

/** segmentsOf reads the WAL dir's segments, oldest first. */
function segmentsOf(dataDir: string): { name: string; bytes: Buffer }[] {
  const dir = walDirOf(dataDir);
  return fs
    .readdirSync(dir)
    .filter((n) => n.endsWith('.wal'))
    .sort()
    .map((name) => ({ name, bytes: recordsOf(fs.readFileSync(path.join(dir, name))) }));
}

/** recordsOf cuts a segment file's preallocated zeros off: its bytes up to the end of its
 * records, as the decoder finds it. */
function recordsOf(file: Buffer): Buffer {
  const d = decodeSegment(file, { name: 'segment', isLast: true, prevCrc: undefined });
  return file.subarray(0, d.validBytes);
}

/** writeSegments replaces a data dir's WAL with the given segments. */
function writeSegments(dataDir: string, segs: { name: string; bytes: Uint8Array }[]): void {
  fs.rmSync(dataDir, { recursive: true, force: true });
  fs.mkdirSync(walDirOf(dataDir), { recursive: true });
  for (const s of segs) fs.writeFileSync(path.join(walDirOf(dataDir), s.name), s.bytes);
}

interface RecordSpan {
  seg: number;
  start: number;
  end: number;
  rec: ReturnType<typeof decodeSegment>['records'][number];
}
/** spans decodes intact segments into records with their byte ranges. */
function spans(segs: { name: string; bytes: Uint8Array }[]): RecordSpan[] {
  const out: RecordSpan[] = [];
  let crc: number | undefined;
  segs.forEach((s, seg) => {
    const d = decodeSegment(s.bytes, { name: s.name, isLast: true, prevCrc: crc });
    crc = d.crc;
    d.records.forEach((rec, i) => {
      const end = d.offsets[i + 1] ?? s.bytes.length;
      out.push({ seg, start: d.offsets[i]!, end, rec });
    });
  });
  return out;
}
const entriesOf = (rs: RecordSpan[]): [number, number, string][] =>
  show(rs.flatMap((r) => (r.rec.type === 'entry' ? [r.rec.entry] : [])));

/** smallLog writes a short single-segment log: metadata, state and entries in four batches. */
function smallLog(dataDir: string): void {
  const w = WalStore.open(dataDir, { logger: newLogger(), fsOps: noSync });
  w.append([meta]);
  w.save([entry(1, 1, 'one'), entry(1, 2, 'two')], hs(1, 1));
  w.save([entry(1, 3, 'three')]);
  w.save([entry(2, 4, 'four'), entry(2, 5, 'five!')], hs(2, 4, 2));
  w.close();
}

test('wal files: first start creates the directories and an empty log', (t) => {
  const dir = path.join(tmpDir(t), 'data');
  const w = WalStore.open(dir, { logger: newLogger() });
  t.true(w.recovered.firstStart);
  t.deepEqual(w.recovered.entries, []);
  t.is(w.recovered.hardState, undefined);
  t.deepEqual(w.segmentNames(), [walSegmentName(0, 0)]);
  t.true(fs.statSync(snapDirOf(dir)).isDirectory());
  w.append([meta, { type: 'entry', entry: entry(1, 1, 'a') }, { type: 'state', state: hs(1, 1) }]);
  w.close();
  const w2 = WalStore.open(dir, { logger: newLogger() });
  t.false(w2.recovered.firstStart);
  t.deepEqual(w2.recovered.metadata, { nodeId: 1, clusterId: 99 });
  t.deepEqual(w2.recovered.hardState, hs(1, 1));
  t.deepEqual(show(w2.recovered.entries), [[1, 1, 'a']]);
  w2.close();
});

test('wal files: truncating the log at every byte offset recovers exactly a prefix', (t) => {
  const src = tmpDir(t);
  smallLog(src);
  const segs = segmentsOf(src);
  t.is(segs.length, 1);
  const full = segs[0]!.bytes;
  const all = spans(segs);
  const work = tmpDir(t);
  for (let cut = 0; cut <= full.length; cut++) {
    writeSegments(work, [{ name: segs[0]!.name, bytes: full.subarray(0, cut) }]);
    const logger = newLogger();
    const w = WalStore.open(work, { logger, fsOps: noSync });
    const kept = all.filter((r) => r.end <= cut);
    const want = entriesOf(kept);
    t.deepEqual(show(w.recovered.entries), want, `cut ${cut}`);
    const states = kept.filter((r) => r.rec.type === 'state');
    const lastState = states[states.length - 1]?.rec;
    t.deepEqual(w.recovered.hardState, lastState?.type === 'state' ? lastState.state : undefined);
    t.is(logger.warns.length, kept.some((r) => r.end === cut) || cut === 0 ? 0 : 1, `cut ${cut}`);
    // Appending after recovery continues the log, and the result recovers too.
    const next = want.length + 1;
    w.save([entry(3, next, 'after')], hs(3, next - 1));
    w.close();
    const w2 = WalStore.open(work, { logger: newLogger(), fsOps: noSync });
    t.deepEqual(show(w2.recovered.entries), [...want, [3, next, 'after']], `cut ${cut}`);
    t.deepEqual(w2.recovered.hardState, hs(3, next - 1));
    w2.close();
  }
});

/**
 * expectFlip opens a copy of `segs` with one byte altered and checks the verdict: a damaged
 * record that is the very last one may be cut off (a torn tail); any other is refused with
 * WalCorruptError naming its file and offset. Nothing else is acceptable.
 */
function expectFlip(
  t: ExecutionContext,
  work: string,
  segs: { name: string; bytes: Buffer }[],
  all: RecordSpan[],
  seg: number,
  at: number,
  xor: number,
): void {
  const copy = segs.map((s) => ({ name: s.name, bytes: Buffer.from(s.bytes) }));
  copy[seg]!.bytes[at]! ^= xor;
  writeSegments(work, copy);
  const k = all.findIndex((r) => r.seg === seg && r.start <= at && at < r.end);
  const what = `segment ${seg} byte ${at} xor ${xor}`;
  if (k === all.length - 1) {
    const w = WalStore.open(work, { logger: newLogger(), fsOps: noSync });
    t.deepEqual(show(w.recovered.entries), entriesOf(all.slice(0, k)), what);
    w.close();
    return;
  }
  const err = t.throws(() => WalStore.open(work, { logger: newLogger(), fsOps: noSync }), {
    instanceOf: WalCorruptError,
  }, what);
  t.is(err?.file, segs[seg]!.name, what);
  t.is(err?.offset, all[k]!.start, what);
}

test('wal files: a flipped byte is refused with file and offset, or cuts the last record', (t) => {
  const src = tmpDir(t);
  smallLog(src);
  const segs = segmentsOf(src);
  const all = spans(segs);
  const work = tmpDir(t);
  const rnd = seeded(7);
  for (let at = 0; at < segs[0]!.bytes.length; at++) {
    expectFlip(t, work, segs, all, 0, at, 1 + Math.floor(rnd() * 255));
  }
});

test('wal files: byte flips across several segments (seeded sample)', (t) => {
  const src = tmpDir(t);
  const w = WalStore.open(src, { logger: newLogger(), fsOps: noSync, segmentSizeBytes: 300 });
  w.append([meta]);
  for (let i = 1; i <= 40; i += 2) {
    w.save([entry(1, i, `e${i}`), entry(1, i + 1, `e${i + 1}`)], hs(1, i));
  }
  w.close();
  const segs = segmentsOf(src);
  t.true(segs.length >= 4, `${segs.length} segments`);
  const all = spans(segs);
  const work = tmpDir(t);
  const seed = 99;
  const rnd = seeded(seed);
  for (let n = 0; n < 300; n++) {
    const seg = Math.floor(rnd() * segs.length);
    const at = Math.floor(rnd() * segs[seg]!.bytes.length);
    expectFlip(t, work, segs, all, seg, at, 1 + Math.floor(rnd() * 255));
  }
});

test('wal files: a zeroed sector mid-log is refused; a zeroed tail sector is cut off', (t) => {
  const src = tmpDir(t);
  const w = WalStore.open(src, { logger: newLogger(), fsOps: noSync });
  w.append([meta]);
  for (let i = 1; i <= 40; i++) w.save([entry(1, i, 'v'.repeat(90) + i)], hs(1, i - 1));
  w.close();
  const segs = segmentsOf(src);
  const full = segs[0]!.bytes;
  t.true(full.length > 3000);
  const all = spans(segs);
  const work = tmpDir(t);

  const mid = Buffer.from(full);
  mid.fill(0, 1024, 1536);
  writeSegments(work, [{ name: segs[0]!.name, bytes: mid }]);
  const err = t.throws(() => WalStore.open(work, { logger: newLogger(), fsOps: noSync }), {
    instanceOf: WalCorruptError,
  });
  t.is(err?.file, segs[0]!.name);
  t.true(err!.offset <= 1024 && err!.offset > 1024 - 200, `offset ${err?.offset}`);

  const start = Math.floor((full.length - 1) / 512) * 512;
  const tail = Buffer.from(full);
  tail.fill(0, start);
  writeSegments(work, [{ name: segs[0]!.name, bytes: tail }]);
  const logger = newLogger();
  const w2 = WalStore.open(work, { logger, fsOps: noSync });
  t.deepEqual(show(w2.recovered.entries), entriesOf(all.filter((r) => r.end <= start)));
  t.is(logger.warns.length, 1);
  w2.close();
});

test('wal files: the tail is preallocated ahead of its records; recovery reads its zeros as ' +
  'their end, and a cut leaves none in the segments before', (t) => {
  const dir = tmpDir(t);
  const walDir = walDirOf(dir);
  const files = (): string[] => fs.readdirSync(walDir).filter((n) => n.endsWith('.wal')).sort();
  const sizeOf = (n: string): number => fs.statSync(path.join(walDir, n)).size;
  const opts = { segmentSizeBytes: 4096 };
  const w = WalStore.open(dir, { logger: newLogger(), ...opts });
  w.append([meta]);
  for (let i = 1; i <= 10; i++) w.save([entry(1, i, 'x'.repeat(100))], hs(1, i));
  w.close();
  t.is(files().length, 1);
  const records = segmentsOf(dir)[0]!.bytes.length;
  t.true(records > 10 * 100, `${records} bytes of records`);
  t.is(sizeOf(files()[0]!), walPreallocateStepBytes, 'the file reaches one step ahead');
  // Reopened: nothing torn, nothing cut off, and appends go on right after the records.
  const logger = newLogger();
  const w2 = WalStore.open(dir, { logger, ...opts });
  t.deepEqual(w2.recovered.entries.map((e) => e.index), range(1, 10));
  t.deepEqual(logger.warns, []);
  for (let i = 11; i <= 60; i++) w2.save([entry(1, i, 'y'.repeat(100))], hs(1, i));
  w2.close();
  const names = files();
  t.true(names.length >= 3, `${names.length} segments`);
  const segs = segmentsOf(dir);
  names.slice(0, -1).forEach((n, i) => t.is(sizeOf(n), segs[i]!.bytes.length, `${n} has no zeros`));
  t.true(sizeOf(names.at(-1)!) > segs.at(-1)!.bytes.length, 'the tail is preallocated');
  const w3 = WalStore.open(dir, { logger: newLogger(), ...opts });
  t.deepEqual(w3.recovered.entries.map((e) => e.index), range(1, 60));
  t.true(w3.recovered.entries.every((e, i) => e.data.length === 100 && e.data[0] ===
    (i < 10 ? 0x78 : 0x79)));
  w3.close();
});

test('wal files: segments rotate and recover; releaseTo keeps what recovery needs', (t) => {
  const dir = tmpDir(t);
  const w = WalStore.open(dir, { logger: newLogger(), segmentSizeBytes: 1024 });
  w.append([meta]);
  // Entries 98 and 99 stay uncommitted: a new leader replaces them below.
  for (let i = 1; i <= 100; i++) {
    w.save([entry(1, i, `value-${i}-`.padEnd(40, '.'))], hs(1, Math.min(i - 1, 97)));
  }
  const names = w.segmentNames();
  t.true(names.length >= 5, `${names.length} segments`);
  names.forEach((n, i) => t.true(n.startsWith(i.toString(16).padStart(16, '0') + '-')));
  // Each segment's name index is one past the last entry before the cut.
  const segs = segmentsOf(dir);
  const all = spans(segs);
  for (let s = 1; s < segs.length; s++) {
    const before = all.filter((r) => r.seg < s && r.rec.type === 'entry');
    const last = before[before.length - 1]!.rec;
    t.is(segs[s]!.name, walSegmentName(s, (last.type === 'entry' ? last.entry.index : 0) + 1));
  }
  w.close();

  const w2 = WalStore.open(dir, { logger: newLogger(), segmentSizeBytes: 1024 });
  t.deepEqual(show(w2.recovered.entries).map((e) => e[1]), range(1, 100));
  t.deepEqual(w2.recovered.hardState, hs(1, 97));
  t.deepEqual(w2.recovered.metadata, { nodeId: 1, clusterId: 99 });
  // A new leader overwrites an uncommitted suffix across the segment boundary.
  w2.save([entry(2, 98, 'new98'), entry(2, 99, 'new99')], hs(2, 97, 2));
  // Nothing is released without a usable snapshot marker.
  t.deepEqual(w2.releaseTo(60), []);
  writeSnapshotFile(dir, 1, 60, enc.encode('state@60'));
  w2.saveSnapshotMarker(60 as Index, 1 as Term);
  const before = w2.segmentNames();
  const released = w2.releaseTo(60);
  t.true(released.length > 0);
  const kept = w2.segmentNames();
  t.deepEqual([...released, ...kept], before);
  // Kept: the first kept segment starts at or below 60; the next one above it.
  t.true(Number.parseInt(kept[0]!.slice(17, 33), 16) <= 60);
  t.true(Number.parseInt(kept[1]!.slice(17, 33), 16) > 60);
  t.deepEqual(w2.releaseTo(95), [], 'clamped to the newest marker');
  w2.close();

  const w3 = WalStore.open(dir, { logger: newLogger(), segmentSizeBytes: 1024 });
  t.is(Number(w3.recovered.snapshot?.index), 60);
  t.is(dec.decode(w3.recovered.snapshot!.body), 'state@60');
  const es = show(w3.recovered.entries);
  t.deepEqual(es.map((e) => e[1]), range(61, 99));
  t.deepEqual(es.slice(-2), [[2, 98, 'new98'], [2, 99, 'new99']]);
  t.deepEqual(w3.recovered.metadata, { nodeId: 1, clusterId: 99 });
  t.deepEqual(w3.recovered.hardState, hs(2, 97, 2));
  w3.close();
});

test('wal files: a snapshot of the whole log starts a segment named after it, and every ' +
  'older segment goes; a start from it reads no entry', (t) => {
  const dir = tmpDir(t);
  const opts = { logger: newLogger(), segmentSizeBytes: 4096 };
  const w = WalStore.open(dir, opts);
  w.append([meta]);
  for (let i = 1; i <= 60; i++) w.save([entry(1, i, `value-${i}-`.padEnd(40, '.'))], hs(1, i));
  t.true(w.segmentNames().length >= 2);
  t.false(w.cutAtSnapshot(59, 0), 'entries after the snapshot: no cut');
  t.false(w.cutAtSnapshot(60, 1 << 20), 'a tail smaller than minBytes: no cut');
  t.true(w.cutAtSnapshot(60, 0));
  // Cut, no marker yet (a crash here): the start recovers every entry from the beginning.
  const w1 = WalStore.open(dir, { logger: newLogger(), segmentSizeBytes: 4096 });
  t.deepEqual(w1.recovered.entries.map((e) => e.index), range(1, 60));
  w1.close();
  writeSnapshotFile(dir, 1, 60, enc.encode('state@60'));
  w.saveSnapshotMarker(60 as Index, 1 as Term);
  const released = w.releaseTo(60);
  t.deepEqual(w.segmentNames(), [walSegmentName(released.length, 60)],
    'one segment left, named after the snapshot');
  t.true(released.length >= 2);
  w.save([entry(1, 61, 'after')], hs(1, 61));
  w.close();
  const w2 = WalStore.open(dir, { logger: newLogger(), segmentSizeBytes: 4096 });
  t.is(Number(w2.recovered.snapshot?.index), 60);
  t.deepEqual(show(w2.recovered.entries), [[1, 61, 'after']]);
  t.deepEqual(w2.recovered.hardState, hs(1, 61));
  t.deepEqual(w2.recovered.metadata, { nodeId: 1, clusterId: 99 });
  // The next cut names the next entry again.
  for (let i = 62; i <= 160; i++) w2.save([entry(1, i, `v${i}`.padEnd(40, '.'))], hs(1, i));
  const names = w2.segmentNames();
  t.true(names.length >= 2);
  t.true(Number.parseInt(names[1]!.slice(17, 33), 16) > 61);
  w2.close();
  const w3 = WalStore.open(dir, { logger: newLogger(), segmentSizeBytes: 4096 });
  t.deepEqual(w3.recovered.entries.map((e) => e.index), range(61, 160));
  w3.close();
});

test('wal files: a start whose newest segment begins at a usable snapshot reads that segment ' +
  'alone; with that snapshot\'s file damaged it reads them all and falls back', (t) => {
  const dir = tmpDir(t);
  const w = WalStore.open(dir, { logger: newLogger(), segmentSizeBytes: 4096 });
  w.append([meta]);
  for (let i = 1; i <= 60; i++) {
    w.save([entry(1, i, `value-${i}-`.padEnd(40, '.'))], hs(1, i));
    if (i === 30) {
      writeSnapshotFile(dir, 1, 30, enc.encode('state@30'));
      w.saveSnapshotMarker(30 as Index, 1 as Term);
    }
  }
  t.true(w.cutAtSnapshot(60, 0));
  writeSnapshotFile(dir, 1, 60, enc.encode('state@60'));
  w.saveSnapshotMarker(60 as Index, 1 as Term);
  t.is(w.markerBefore(60), 30);
  w.releaseTo(w.markerBefore(60)); // as the WAL writer does after a cut
  w.save([entry(1, 61, 'after')], hs(1, 61));
  const segments = w.segmentNames().length;
  t.true(segments >= 3, `${segments} segments kept`);
  w.close();
  const walReads = { n: 0 };
  const counting: FsOps = { ...nodeFsOps, readFileSync: (f: string) => {
    if (f.endsWith('.wal')) walReads.n++;
    return nodeFsOps.readFileSync(f);
  } };
  const w2 = WalStore.open(dir, { logger: newLogger(), segmentSizeBytes: 4096, fsOps: counting });
  t.is(walReads.n, 1, 'the newest segment alone');
  t.is(dec.decode(w2.recovered.snapshot!.body), 'state@60');
  t.deepEqual(show(w2.recovered.entries), [[1, 61, 'after']]);
  t.is(w2.segmentNames().length, segments, 'the segments not read are still the store\'s');
  w2.close();
  const p60 = listSnapshots(dir).find((s) => s.index === 60)!.path;
  const bytes = fs.readFileSync(p60);
  bytes[bytes.length - 1]! ^= 0x40;
  fs.writeFileSync(p60, bytes);
  walReads.n = 0;
  const w3 = WalStore.open(dir, { logger: newLogger(), segmentSizeBytes: 4096, fsOps: counting });
  t.is(walReads.n, segments, 'then every segment, the newest not read again');
  t.is(dec.decode(w3.recovered.snapshot!.body), 'state@30');
  t.deepEqual(w3.recovered.entries.map((e) => e.index), range(31, 61));
  w3.close();
});

test('wal files: snapshot files below the oldest kept segment are purged, the newest never',
  (t) => {
    const dir = tmpDir(t);
    const w = WalStore.open(dir, { logger: newLogger(), segmentSizeBytes: 1024 });
    w.append([meta]);
    for (let i = 1; i <= 100; i++) {
      w.save([entry(1, i, `value-${i}-`.padEnd(40, '.'))], hs(1, i));
      if (i % 20 === 0) {
        writeSnapshotFile(dir, 1, i, enc.encode(`state@${i}`));
        w.saveSnapshotMarker(i as Index, 1 as Term);
      }
    }
    t.deepEqual(purgeSnapshots(dir, 5, { below: w.firstSegmentIndex }), [], 'nothing released');
    t.deepEqual(purgeSnapshots(dir, 0), [], 'keep 0: no limit (--max-snapshots 0)');
    t.true(w.releaseTo(60).length > 0);
    const first = w.firstSegmentIndex;
    t.true(first > 20 && first <= 60, `the oldest kept segment starts at ${first}`);
    const purged = purgeSnapshots(dir, 5, { below: first }).map((p) => path.basename(p));
    const stale = [20, 40].filter((i) => i < first);
    t.deepEqual(purged, stale.reverse().map((i) => listSnapshotsName(1, i)));
    t.deepEqual(listSnapshots(dir).map((s) => s.index),
      [100, 80, 60, 40, 20].filter((i) => i >= first));
    // The newest file stays whatever `below` says (keep counts from it).
    t.deepEqual(purgeSnapshots(dir, 5, { below: 1_000 }).map((p) => path.basename(p)),
      [80, 60, 40].filter((i) => i >= first).map((i) => listSnapshotsName(1, i)));
    t.deepEqual(listSnapshots(dir).map((s) => s.index), [100]);
    w.close();
    // Recovery starts from what is left, with the entries after it.
    const w2 = WalStore.open(dir, { logger: newLogger(), segmentSizeBytes: 1024 });
    t.is(Number(w2.recovered.snapshot?.index), 100);
    t.deepEqual(show(w2.recovered.entries), []);
    w2.close();
  });

function range(a: number, b: number): number[] {
  return Array.from({ length: b - a + 1 }, (_, i) => a + i);
}

test('wal files: a corrupted newest snapshot falls back to the previous one', (t) => {
  const dir = tmpDir(t);
  const w = WalStore.open(dir, { logger: newLogger() });
  w.append([meta]);
  for (let i = 1; i <= 30; i++) w.save([entry(1, i, `v${i}`)], hs(1, i));
  writeSnapshotFile(dir, 1, 10, enc.encode('state@10'));
  w.saveSnapshotMarker(10 as Index, 1 as Term);
  writeSnapshotFile(dir, 1, 20, enc.encode('state@20'));
  w.saveSnapshotMarker(20 as Index, 1 as Term);
  // A snapshot file without a WAL marker (crash before the marker) is never used.
  writeSnapshotFile(dir, 1, 25, enc.encode('state@25'));
  w.close();

  const ok = WalStore.open(dir, { logger: newLogger() });
  t.is(Number(ok.recovered.snapshot?.index), 20);
  t.deepEqual(show(ok.recovered.entries).map((e) => e[1]), range(21, 30));
  ok.close();

  const p20 = listSnapshots(dir).find((s) => s.index === 20)!.path;
  const bytes = fs.readFileSync(p20);
  bytes[bytes.length - 1]! ^= 0x40;
  fs.writeFileSync(p20, bytes);
  const logger = newLogger();
  const w2 = WalStore.open(dir, { logger });
  t.is(Number(w2.recovered.snapshot?.index), 10);
  t.is(dec.decode(w2.recovered.snapshot!.body), 'state@10');
  t.deepEqual(show(w2.recovered.entries).map((e) => e[1]), range(11, 30));
  t.is(logger.warns.length, 1);
  w2.close();

  const l2 = newLogger();
  t.is(Number(loadNewestSnapshot(dir, { logger: l2 })?.index), 25);
  t.deepEqual(
    listSnapshots(dir).map((s) => s.index),
    [25, 20, 10],
  );
  const purged = purgeSnapshots(dir, 2);
  t.deepEqual(purged.map((p) => path.basename(p)), [path.basename(listSnapshotsName(1, 10))]);
  t.deepEqual(listSnapshots(dir).map((s) => s.index), [25, 20]);
});

function listSnapshotsName(term: number, index: number): string {
  return `${term.toString(16).padStart(16, '0')}-${index.toString(16).padStart(16, '0')}.snap`;
}

test('wal files: append does one write and one fdatasync per batch, and the data survives', (t) => {
  const dir = tmpDir(t);
  let writes = 0;
  let datasyncs = 0;
  const spy: FsOps = {
    ...nodeFsOps,
    writeSync: (fd, b, o, l, p) => {
      writes++;
      return nodeFsOps.writeSync(fd, b, o, l, p);
    },
    fdatasyncSync: (fd) => {
      datasyncs++;
      nodeFsOps.fdatasyncSync(fd);
    },
  };
  const w = WalStore.open(dir, { logger: newLogger(), fsOps: spy });
  const batch = range(1, 500).map((i) => entry(1, i, `payload-${i}`));
  writes = 0;
  datasyncs = 0;
  w.save(batch, hs(1, 250));
  t.is(writes, 1);
  t.is(datasyncs, 1);
  w.append(range(501, 600).map((i) => ({ type: 'entry', entry: entry(1, i, 'x') }) as const));
  t.is(writes, 2);
  t.is(datasyncs, 2);
  w.save([]);
  t.is(datasyncs, 2, 'an empty save does no I/O');
  w.close();
  const w2 = WalStore.open(dir, { logger: newLogger() });
  t.is(w2.recovered.entries.length, 600);
  t.deepEqual(w2.recovered.hardState, hs(1, 250));
  w2.close();
});

test('wal files: after a failed fdatasync the WAL refuses further appends', (t) => {
  const dir = tmpDir(t);
  let fail = false;
  const flaky: FsOps = {
    ...nodeFsOps,
    fdatasyncSync: (fd) => {
      if (fail) throw Object.assign(new Error('EIO: i/o error'), { code: 'EIO' });
      nodeFsOps.fdatasyncSync(fd);
    },
  };
  const w = WalStore.open(dir, { logger: newLogger(), fsOps: flaky });
  w.save([entry(1, 1, 'a')]);
  fail = true;
  t.throws(() => w.save([entry(1, 2, 'b')]), { message: /EIO/, code: 'DISK_FAILED' });
  fail = false;
  // Never retried: the failed fsync may have dropped the page cache's dirty pages.
  t.throws(() => w.save([entry(1, 2, 'b')]), { message: /disk write failed/, code: 'DISK_FAILED' });
  w.close();
});

test('wal files: a write that runs out of space is cut back, and the store goes on', (t) => {
  const dir = tmpDir(t);
  let full = false;
  const disk: FsOps = {
    ...nodeFsOps,
    // A full disk takes part of the batch, then refuses the rest (as write(2) does).
    writeSync: (fd, b, o, l, p) => {
      if (!full) return nodeFsOps.writeSync(fd, b, o, l, p);
      if (l > 8) return nodeFsOps.writeSync(fd, b, o, Math.floor(l / 2), p);
      throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
    },
  };
  const w = WalStore.open(dir, { logger: newLogger(), fsOps: disk });
  w.save([entry(1, 1, 'a')], hs(1, 1));
  const tail = segmentsOf(dir).at(-1)!;
  full = true;
  const big = range(2, 40).map((i) => entry(1, i, `payload-${i}`));
  t.throws(() => w.save(big, hs(1, 2)), { code: 'NO_SPACE', message: /ENOSPC on write/ });
  t.is(segmentsOf(dir).at(-1)!.bytes.length, tail.bytes.length, 'nothing of the batch is kept');
  // Space again: the same batch goes in, after the first one.
  full = false;
  w.save(big, hs(1, 2));
  w.close();
  const w2 = WalStore.open(dir, { logger: newLogger() });
  t.deepEqual(w2.recovered.entries.map((e) => e.index), range(1, 40));
  t.deepEqual(w2.recovered.hardState, hs(1, 2));
  w2.close();
});

test('wal files: a read-only disk refuses the batch; nothing to cut back, the store goes on',
  (t) => {
    const dir = tmpDir(t);
    let readOnly = false;
    let truncates = 0;
    const disk: FsOps = {
      ...nodeFsOps,
      writeSync: (fd, b, o, l, p) => {
        if (!readOnly) return nodeFsOps.writeSync(fd, b, o, l, p);
        throw Object.assign(new Error('EROFS: read-only file system'), { code: 'EROFS' });
      },
      ftruncateSync: (fd, len) => {
        // Counted once the disk is read-only (before, the tail is extended ahead of a batch).
        if (readOnly) {
          truncates++;
          throw Object.assign(new Error('EROFS'), { code: 'EROFS' });
        }
        nodeFsOps.ftruncateSync(fd, len);
      },
    };
    const w = WalStore.open(dir, { logger: newLogger(), fsOps: disk });
    w.save([entry(1, 1, 'a')], hs(1, 1));
    readOnly = true;
    t.throws(() => w.save([entry(1, 2, 'b')]), { code: 'DISK_READ_ONLY', message: /EROFS/ });
    t.is(truncates, 0, 'nothing was written, nothing is cut');
    readOnly = false;
    w.save([entry(1, 2, 'b')], hs(1, 2));
    w.close();
    const w2 = WalStore.open(dir, { logger: newLogger() });
    t.deepEqual(w2.recovered.entries.map((e) => e.index), [1, 2]);
    w2.close();
  });

test('wal files: a cut the disk refuses is put off; the batch before it stays durable', (t) => {
  const dir = tmpDir(t);
  let refuseTmp = false;
  const tmpFds = new Set<number>();
  const disk: FsOps = {
    ...nodeFsOps,
    openSync: (f, flags) => {
      const fd = nodeFsOps.openSync(f, flags);
      if (f.endsWith('.tmp')) tmpFds.add(fd);
      return fd;
    },
    closeSync: (fd) => {
      tmpFds.delete(fd); // numbers are reused
      nodeFsOps.closeSync(fd);
    },
    writeSync: (fd, b, o, l, p) => {
      if (refuseTmp && tmpFds.has(fd)) {
        throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
      }
      return nodeFsOps.writeSync(fd, b, o, l, p);
    },
  };
  const logger = newLogger();
  const w = WalStore.open(dir, { logger, fsOps: disk, segmentSizeBytes: 300 });
  refuseTmp = true;
  w.save(range(1, 20).map((i) => entry(1, i, `payload-${i}`)), hs(1, 20));
  t.is(w.segmentCount, 1, 'the cut was put off');
  t.true(logger.warns.some((m) => /could not cut/.test(m)));
  t.false(fs.readdirSync(walDirOf(dir)).some((n) => n.endsWith('.tmp')), 'no .tmp is left');
  refuseTmp = false;
  w.save([entry(1, 21, 'after')], hs(1, 21));
  t.is(w.segmentCount, 2, 'the next batch cut');
  w.close();
  const w2 = WalStore.open(dir, { logger: newLogger() });
  t.deepEqual(w2.recovered.entries.map((e) => e.index), range(1, 21));
  w2.close();
});

test('wal files: open removes unfinished .tmp files', (t) => {
  const dir = tmpDir(t);
  WalStore.open(dir, { logger: newLogger() }).close();
  const stale = path.join(walDirOf(dir), walSegmentName(1, 5) + '.tmp');
  fs.writeFileSync(stale, 'junk');
  const staleSnap = path.join(snapDirOf(dir), listSnapshotsName(1, 5) + '.tmp');
  fs.writeFileSync(staleSnap, 'junk');
  const w = WalStore.open(dir, { logger: newLogger() });
  t.false(fs.existsSync(stale));
  t.false(fs.existsSync(staleSnap));
  t.is(w.segmentCount, 1);
  w.close();
});

test('wal files: a snapshot taken at an index the written commit trails is used by the next ' +
  'start once its commit is written beside the marker (commitThrough)', (t) => {
  const dir = tmpDir(t);
  const w = WalStore.open(dir, { logger: newLogger() });
  w.append([meta]);
  // Commit-only changes ride with the next append: the commit written trails by one.
  for (let i = 1; i <= 30; i++) w.save([entry(2, i, `v${i}`)], hs(2, i - 1, 7));
  t.is(w.commitThrough(29 as Index), undefined, 'the written commit already reaches 29');
  writeSnapshotFile(dir, 2, 20, enc.encode('state@20'));
  w.saveSnapshotMarker(20 as Index, 2 as Term);
  writeSnapshotFile(dir, 2, 30, enc.encode('state@30'));
  // A bare marker, as saveSnapshotMarker wrote before it wrote the commit beside it.
  w.append([{ type: 'snapshot', index: 30 as Index, term: 2 as Term }]);
  t.deepEqual(w.commitThrough(30 as Index), hs(2, 30, 7), 'term and vote as written');
  w.close();

  // The marker at 30 lies past the written commit (29): the start falls back to the snapshot
  // at 20 and replays ten entries.
  const before = WalStore.open(dir, { logger: newLogger() });
  t.is(Number(before.recovered.snapshot?.index), 20);
  t.deepEqual(show(before.recovered.entries).map((e) => e[1]), range(21, 30));
  // saveSnapshotMarker writes the commit beside the marker of the member's own snapshot.
  before.saveSnapshotMarker(30 as Index, 2 as Term);
  before.close();

  const after = WalStore.open(dir, { logger: newLogger() });
  t.is(Number(after.recovered.snapshot?.index), 30);
  t.is(dec.decode(after.recovered.snapshot!.body), 'state@30');
  t.deepEqual(after.recovered.entries, []);
  t.is(Number(after.recovered.hardState?.commit), 30);
  t.is(after.commitThrough(30 as Index), undefined);
  after.close();
});

test('wal files: a split snapshot body loads as two buffers of shared memory; a flipped byte ' +
  'in its tail falls back to the previous snapshot', (t) => {
  const dir = tmpDir(t);
  const w = WalStore.open(dir, { logger: newLogger() });
  w.append([meta]);
  for (let i = 1; i <= 30; i++) w.save([entry(1, i, `v${i}`)], hs(1, i));
  const split = (head: string, tail: string) =>
    [encodeSplitBodyPrefix(head.length), enc.encode(head), enc.encode(tail)];
  writeSnapshotFile(dir, 1, 10, split('head@10', 'values@10'));
  w.saveSnapshotMarker(10 as Index, 1 as Term);
  writeSnapshotFile(dir, 1, 20, split('head@20', 'the values@20'));
  w.saveSnapshotMarker(20 as Index, 1 as Term);
  w.close();

  const got = loadNewestSnapshot(dir, { logger: newLogger() })!;
  t.is(Number(got.index), 20);
  const r = bodyRegions(got.body, got.tail);
  t.deepEqual([dec.decode(r.head), dec.decode(r.tail)], ['head@20', 'the values@20']);
  t.true(got.body.buffer instanceof SharedArrayBuffer && got.tail!.buffer instanceof
    SharedArrayBuffer);
  t.not(got.body.buffer, got.tail!.buffer, 'the tail in memory of its own');
  t.is(got.tail!.buffer.byteLength, 'the values@20'.length);

  const p20 = listSnapshots(dir).find((s) => s.index === 20)!.path;
  const bytes = fs.readFileSync(p20);
  bytes[bytes.length - 2]! ^= 0x40;
  fs.writeFileSync(p20, bytes);
  const logger = newLogger();
  const older = loadNewestSnapshot(dir, { logger })!;
  t.is(Number(older.index), 10);
  t.is(dec.decode(bodyRegions(older.body, older.tail).tail), 'values@10');
  t.is(logger.warns.length, 1);
});

test('wal files: a file read whole into shared memory is the file', (t) => {
  const dir = tmpDir(t, 'myetcd-shared-read-');
  const same = (got: Uint8Array, want: Buffer): boolean =>
    Buffer.from(got.buffer, got.byteOffset, got.length).equals(want);
  for (const size of [0, 1, 65_537, 3 * 1024 * 1024 + 5]) {
    const want = Buffer.alloc(size);
    for (let i = 0; i < size; i++) want[i] = (i * 131 + 7) & 0xff;
    const file = path.join(dir, `f${size}`);
    fs.writeFileSync(file, want);
    const [got, ...rest] = readFileSharedSync(file);
    t.is(rest.length, 0, `${size}: one region`);
    t.true(got!.buffer instanceof SharedArrayBuffer, `${size}: shared memory`);
    t.is(got!.length, size);
    t.true(same(got!, want), `${size} bytes`);
    // Split where the probe says: two buffers of their own, the file's bytes in order.
    const at = Math.floor(size / 3);
    let probed: Uint8Array | undefined;
    const parts = readFileSharedSync(file, (first, n) => {
      probed = first.slice();
      t.is(n, size);
      return at;
    });
    t.true(same(probed!, want.subarray(0, Math.min(size, splitProbeBytes))), `${size}: probe`);
    if (at === 0) {
      t.is(parts.length, 1, `${size}: no split at 0`);
      continue;
    }
    t.is(parts.length, 2, `${size}: two regions`);
    t.not(parts[0]!.buffer, parts[1]!.buffer);
    t.true(parts.every((p) => p.buffer instanceof SharedArrayBuffer && p.byteOffset === 0));
    t.true(same(parts[0]!, want.subarray(0, at)) && same(parts[1]!, want.subarray(at)));
    // An offset outside the file reads it whole.
    t.is(readFileSharedSync(file, () => size).length, 1);
  }
  t.throws(() => readFileSharedSync(path.join(dir, 'missing')), { code: 'ENOENT' });
});
