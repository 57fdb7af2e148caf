import test from 'ava';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { WalStore } from '../actors/wal/wal-store.js';
import { decodeSegment, ZeroAhead, type ZeroFill } from '../src/wal/index.js';
import { walDirOf } from '../src/server/data-dir.js';
import { randomInt, seeded } from './helpers/rng.js';
import { put, useServer } from './helpers/server.js';
import { until } from './helpers/wait.js';
import { entry, hs, tmpDir } from './helpers/wal.js';

/**
 * The zeros written ahead of the WAL's tail (src/wal/zero-ahead.ts): where fills go, the rule
 * that no append writes where a fill in flight may still land, and that the store and the
 * running WAL writer leave written blocks (not holes) ahead of the records, which recovery
 * reads as their end.
 */

const limits = { leadBytes: 64 * 1024, stepBytes: 16 * 1024, gapBytes: 8 * 1024,
  segmentSizeBytes: 256 * 1024 };

test('zero ahead: fills start a gap past the tail on a page, one at a time, until the lead ' +
  'is reached; an append waits only if it would reach the fill in flight', (t) => {
  const z = new ZeroAhead(limits, 'seg-0', 1000);
  const f1 = z.next(1000)!;
  t.deepEqual(f1, { segment: 'seg-0', from: 12 * 1024, to: 28 * 1024 });
  t.is(z.next(1000), undefined, 'one fill at a time');
  t.false(z.blocks(1000, 11 * 1024), 'an append below the fill goes on');
  t.true(z.blocks(1000, f1.from - 1000 + 1), 'an append reaching the fill waits');
  z.done(f1, true);
  t.false(z.blocks(1000, 1 << 20), 'nothing waits once the fill is done');
  const seen = [f1];
  for (let f = z.next(1000); f !== undefined; f = z.next(1000)) {
    t.is(f.from, seen.at(-1)!.to, 'the next fill follows the last');
    seen.push(f);
    z.done(f, true);
  }
  t.true(seen.at(-1)!.to - 1000 >= limits.leadBytes, 'filled up to the lead');
  t.true(seen.at(-2)!.to - 1000 < limits.leadBytes, 'and no further');
  // The tail catches up: fills go on from where the zeros end, never past the segment's size.
  let tail = 1000;
  let last = seen.at(-1)!.to;
  for (;;) {
    tail += 10 * 1024;
    const f = z.next(tail);
    if (f === undefined && last >= limits.segmentSizeBytes) break;
    if (f === undefined) continue;
    t.is(f.from, last);
    t.true(f.to <= limits.segmentSizeBytes);
    last = f.to;
    z.done(f, true);
  }
  t.is(last, limits.segmentSizeBytes);
});

test('zero ahead: a failed fill stops the fills of its segment; a cut or a cut-back tail ' +
  'starts again from the tail', (t) => {
  const z = new ZeroAhead(limits, 'seg-0', 0);
  const f1 = z.next(0)!;
  z.done(f1, false);
  t.is(z.next(0), undefined, 'no fill after a failure in this segment');
  z.cut('seg-1', 100);
  const f2 = z.next(100)!;
  t.is(f2.segment, 'seg-1');
  t.is(f2.from, 12 * 1024, 'a gap past the new tail');
  z.done(f2, true);
  z.truncated(200);
  const f3 = z.next(200)!;
  t.is(f3.from, 12 * 1024, 'zeros cut off with the tail are not counted');
  // Every append before a cut waited for the fill in flight below the segment's size.
  t.throws(() => z.cut('seg-2', 100), { message: /no fill in flight/ });
  z.done(f3, true);
  z.cut('seg-2', 100);
  t.is(z.next(100)!.from, 12 * 1024);
});

test('zero ahead: over random appends and fill ends, no append that goes on ever overlaps ' +
  'the fill in flight (seeded)', (t) => {
  const seed = 2611;
  const rng = seeded(seed);
  let checked = 0;
  for (let round = 0; round < 50; round++) {
    let tail = randomInt(rng, 0, 4096);
    const z = new ZeroAhead(limits, 'seg', tail);
    let inflight: ZeroFill | undefined;
    for (let step = 0; step < 400 && tail < limits.segmentSizeBytes; step++) {
      const r = rng();
      if (r < 0.3) inflight ??= z.next(tail);
      else if (r < 0.5 && inflight !== undefined) {
        z.done(inflight, rng() < 0.95);
        inflight = undefined;
      } else {
        const n = 8 * randomInt(rng, 1, rng() < 0.1 ? 4096 : 256);
        if (z.blocks(tail, n)) continue;
        if (inflight !== undefined) {
          t.true(tail + n <= inflight.from,
            `seed ${seed}: append [${tail}, ${tail + n}) overlaps a fill ${inflight.from}`);
          checked++;
        }
        tail += n;
      }
    }
  }
  t.true(checked > 100, `${checked} appends beside a fill in flight`);
});

/** allocatedBytes is what the file system allocated to a file: holes count for nothing. */
const allocatedBytes = (file: string): number => fs.statSync(file).blocks * 512;

/** zeroSync writes a fill the way the WAL writer does, synchronously. */
function zeroSync(fill: ZeroFill): void {
  const fd = fs.openSync(fill.segment, 'r+');
  try {
    fs.writeSync(fd, Buffer.alloc(fill.to - fill.from), 0, fill.to - fill.from, fill.from);
    fs.fdatasyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

test('wal store: fills write blocks ahead of the records; an append that would reach a fill ' +
  'in flight is refused before it writes; recovery reads the zeros as the records\' end',
(t) => {
  const dir = tmpDir(t);
  const logger = { warn: () => {}, info: () => {} };
  const opts = { logger, segmentSizeBytes: 1 << 20, zeroAhead: limits };
  const w = WalStore.open(dir, opts);
  w.save([entry(1, 1, 'first')], hs(1, 1));
  const tail = path.join(walDirOf(dir), fs.readdirSync(walDirOf(dir)).sort().at(-1)!);
  const before = allocatedBytes(tail);
  const fill = w.nextZeroFill()!;
  t.is(fill.segment, tail);
  t.is(w.nextZeroFill(), undefined);
  t.true(w.appendWaitsForFill(fill.from), 'a large append would reach the fill');
  t.false(w.appendWaitsForFill(0), 'a small one would not');
  // The rule is the store's too: a batch reaching the fill in flight is never written.
  const big = entry(1, 2, 'x'.repeat(fill.from));
  t.throws(() => w.save([big]), { message: /zero fill may still land/ });
  zeroSync(fill);
  w.zeroFilled(fill, true);
  t.true(allocatedBytes(tail) >= before + (fill.to - fill.from),
    `${allocatedBytes(tail)} bytes allocated, ${before} before`);
  for (let f = w.nextZeroFill(); f !== undefined; f = w.nextZeroFill()) {
    zeroSync(f);
    w.zeroFilled(f, true);
  }
  for (let i = 2; i <= 200; i++) w.save([entry(1, i, `v${i}`.repeat(20))], hs(1, i));
  w.close();
  const bytes = fs.readFileSync(tail);
  const d = decodeSegment(bytes, { name: 'tail', isLast: true, prevCrc: undefined });
  t.is(d.torn, undefined);
  t.true(bytes.length > d.validBytes, 'zeros follow the records');
  const warns: string[] = [];
  const w2 = WalStore.open(dir, { ...opts, logger: { ...logger, warn: (_o, m) => warns.push(m) } });
  t.deepEqual(w2.recovered.entries.map((e) => e.index),
    Array.from({ length: 200 }, (_, i) => i + 1));
  t.deepEqual(warns, []);
  w2.close();
});

test('wal writer: the running server keeps written zeros ahead of its WAL tail, and a ' +
  'kill -9 then a restart finds every acknowledged write', async (t) => {
  const srv = await useServer(t);
  const walDir = walDirOf(srv.dataDir);
  const tail = (): string =>
    path.join(walDir, fs.readdirSync(walDir).filter((n) => n.endsWith('.wal')).sort().at(-1)!);
  const recordsEnd = (): number => decodeSegment(fs.readFileSync(tail()),
    { name: 'tail', isLast: true, prevCrc: undefined }).validBytes;
  let n = 0;
  // A hole ahead of the records (ftruncate's) allocates nothing; the fills' zeros do.
  await until(async () => {
    await put(srv.url, `z/${n}`, `value-${n}`);
    n++;
    return allocatedBytes(tail()) - recordsEnd() >= 256 * 1024;
  }, 'written zeros ahead of the records');
  await srv.kill();
  const again = await useServer(t, { dataDir: srv.dataDir });
  const r = await fetch(`${again.url}/v3/kv/range`, { method: 'POST', body: JSON.stringify({
    key: Buffer.from('z/').toString('base64'), range_end: Buffer.from('z0').toString('base64'),
    count_only: true }) });
  t.is(Number((await r.json() as { count: string }).count), n);
});

test('wal writer: --experimental-wal-zero-ahead-bytes 0 writes no zeros ahead of the tail',
  async (t) => {
  const srv = await useServer(t, { args: ['--experimental-wal-zero-ahead-bytes', '0'] });
  await putMany(srv.url, 'off', 400, 1024, 8);
  const walDir = walDirOf(srv.dataDir);
  const tail = path.join(walDir,
    fs.readdirSync(walDir).filter((n) => n.endsWith('.wal')).sort().at(-1)!);
  const records = decodeSegment(fs.readFileSync(tail),
    { name: 'tail', isLast: true, prevCrc: undefined }).validBytes;
  // Only the records' own blocks: the tail's growth past them is a hole (ftruncate).
  t.true(records > 400 * 1024, `${records} bytes of records`);
  t.true(allocatedBytes(tail) - records < 64 * 1024,
    `${allocatedBytes(tail)} bytes allocated for ${records} of records`);
});

/** putMany puts `count` keys of `valueBytes` over `conns` concurrent writers; all must be
 * acknowledged. */
async function putMany(url: string, prefix: string, count: number, valueBytes: number,
  conns: number): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: conns }, async () => {
    for (let i = next++; i < count; i = next++) {
      await put(url, `${prefix}/${String(i).padStart(5, '0')}`, `${i}=`.padEnd(valueBytes, 'v'));
    }
  }));
}

/** countKeys counts the keys under prefix/ on a server. */
async function countKeys(url: string, prefix: string): Promise<number> {
  const r = await fetch(`${url}/v3/kv/range`, { method: 'POST', body: JSON.stringify({
    key: Buffer.from(`${prefix}/`).toString('base64'),
    range_end: Buffer.from(`${prefix}0`).toString('base64'), count_only: true }) });
  return Number((await r.json() as { count?: string }).count ?? 0);
}

test('wal writer: appends that would reach a slow zero fill wait for it, and every one is ' +
  'there after a kill -9 (failpoint walZeroFill=sleep(ms))', async (t) => {
  const srv = await useServer(t, {
    env: { GOFAIL_FAILPOINTS: 'walZeroFill=sleep(1500)' },
    args: ['--snapshot-count', '100'],
  });
  // 400 values of 1 KiB: past the first fill's start (128 KiB after the tail) while the fill
  // is held for 1.5 s, so the WAL writer must hold their appends until it has landed.
  await putMany(srv.url, 'slow', 400, 1024, 8);
  t.true(srv.logs.some((l) => l.startsWith('failpoint walZeroFill: sleep(1500)')),
    'the fills were slowed');
  await srv.kill();
  const again = await useServer(t, { dataDir: srv.dataDir });
  t.is(await countKeys(again.url, 'slow'), 400);
});

test('wal writer: a failed zero fill is logged and costs nothing else: appends go on and are ' +
  'there after a kill -9 (failpoint walZeroFill=return("EIO"))', async (t) => {
  const srv = await useServer(t, { env: { GOFAIL_FAILPOINTS: 'walZeroFill=return("EIO")' } });
  await putMany(srv.url, 'eio', 300, 1024, 8);
  await until(() => srv.logs.some((l) => l.includes('could not write zeros ahead of the tail')),
    'the failed fill logged');
  await srv.kill();
  const again = await useServer(t, { dataDir: srv.dataDir });
  t.is(await countKeys(again.url, 'eio'), 300);
});
