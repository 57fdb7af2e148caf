import test from 'ava';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Piscina } from 'piscina';
import { decodeSnapshotFile, snapshotFileName } from '../src/wal/index.js';
import { loadNewestSnapshot } from '../actors/wal/snap-store.js';
import { snapDirOf } from '../src/server/data-dir.js';
import { until } from './helpers/wait.js';
import writeSnapshot, { snapshotPoolOptions, type SnapshotTaskInput, type SnapshotTaskTimed }
  from '../actors/wal/snapshot-task.js';

test('snapshot task: a piscina worker writes a snapshot file that loads back', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'myetcd-snap-'));
  // Compiled tests live in dist/test and compiled actors in dist/actors.
  const pool = new Piscina({
    filename: new URL('../actors/wal/snapshot-task.js', import.meta.url).href,
    maxThreads: 1,
  });
  t.teardown(async () => {
    await pool.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const body = Uint8Array.from({ length: 200_000 }, (_, i) => (i * 31) & 0xff);
  const expected = body.slice();
  // Written in parts: the file holds their concatenation, checksummed as one body.
  const parts = [body.subarray(0, 1000), body.subarray(1000, 150_000), body.subarray(150_000)];
  const input: SnapshotTaskInput = { dir, term: 4, index: 1234, parts };
  const { path: p1, fsyncSeconds }: SnapshotTaskTimed = await pool.run(input);
  t.true(fsyncSeconds > 0, 'the snapshot file was fsynced, and timed');
  t.is(p1, path.join(snapDirOf(dir), snapshotFileName(4, 1234)));
  const f = decodeSnapshotFile(fs.readFileSync(p1), path.basename(p1), { term: 4, index: 1234 });
  t.deepEqual(Buffer.from(f.body), Buffer.from(expected));

  // A transferred body crosses without a copy; the caller's view is detached afterwards.
  const body2 = new Uint8Array(1000).fill(7);
  const { path: p2 }: SnapshotTaskTimed = await pool.run(
    { dir, term: 4, index: 2000, parts: [body2] } satisfies SnapshotTaskInput,
    { transferList: [body2.buffer] },
  );
  t.true(fs.existsSync(p2));
  t.is(body2.length, 0, 'the body was transferred, not copied');
  const logger = { warn: () => {}, info: () => {} };
  const newest = loadNewestSnapshot(dir, { logger });
  t.is(Number(newest?.index), 2000);
  t.is(newest?.body.length, 1000);
  t.deepEqual(
    fs.readdirSync(snapDirOf(dir)).filter((n) => n.endsWith('.tmp')),
    [],
    'no temporary file is left behind',
  );
});

test('snapshot task: parts moved to it are freed once written, not left to its collector',
  async (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'myetcd-snap-'));
    t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
    // Run in this thread, as the pool's thread runs it: a part that owns its buffer (as a
    // moved one does) is released after the write; a view of a larger buffer is left alone.
    const owned = Uint8Array.from({ length: 100_000 }, (_, i) => i & 0xff);
    const shared = new Uint8Array(200_000).subarray(0, 100_000);
    const { path: p, error } = await writeSnapshot({ dir, term: 1, index: 9,
      parts: [owned, shared] });
    t.is(error, undefined);
    t.is(decodeSnapshotFile(fs.readFileSync(p), path.basename(p), { term: 1, index: 9 })
      .body.length, 200_000);
    t.is(owned.byteLength, 0, 'the owned part is detached: its memory is freed');
    t.is(shared.byteLength, 100_000, 'a view of a larger buffer is not given away');
  });

test('snapshot task: through the WAL writer\'s pool, a moved part\'s memory is returned',
  async (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'myetcd-snap-'));
    const pool = new Piscina({
      filename: new URL('../actors/wal/snapshot-task.js', import.meta.url).href,
      maxThreads: 1, ...snapshotPoolOptions,
    });
    t.teardown(async () => {
      await pool.destroy();
      fs.rmSync(dir, { recursive: true, force: true });
    });
    const size = 64 * 1024 * 1024;
    const arrayBuffers = () => process.memoryUsage().arrayBuffers;
    const part = new Uint8Array(size).fill(7);
    const before = arrayBuffers();
    const input: SnapshotTaskInput = { dir, term: 2, index: 5, parts: [part] };
    const out: SnapshotTaskTimed = await pool.run(input, { transferList: [part.buffer] });
    t.is(out.error, undefined);
    // The bytes were allocated here, so this thread's count drops when the pool's thread
    // frees them, whenever that is: wait for it (an idle pool thread blocked in Atomics.wait
    // never did, and the test times out).
    await until(() => arrayBuffers() <= before - size / 2, 'the moved part\'s memory back');
  });
