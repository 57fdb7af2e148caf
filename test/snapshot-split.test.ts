/**
 * A snapshot file keeps the shards' values in a region of its own (src/cluster/proposal.ts
 * snapshotBodyParts, src/wal/snapshot-format.ts). A member upgraded in place finds a file
 * written before that, whose dumps hold their values: it must restore from it, and its next
 * snapshot is split. Real member processes on one data dir; the old file is made from the
 * member's own by moving each dump's values back into it.
 */
import test from 'ava';
import * as fs from 'node:fs';
import { listSnapshots, writeSnapshotFile } from '../actors/wal/snap-store.js';
import { decodeSnapshotBody } from '../src/cluster/proposal.js';
import { pack, unpack } from '../src/runtime/codec.js';
import { bodyRegions, decodeSnapshotFile } from '../src/wal/index.js';
import { b64, logged, post, startServer, type TestServer } from './helpers/server.js';

/** newestSnapshot reads a data dir's newest snapshot file: its name and body regions. */
function newestSnapshot(dataDir: string) {
  const s = listSnapshots(dataDir)[0]!;
  const file = decodeSnapshotFile(fs.readFileSync(s.path), s.name, s);
  return { listing: s, file, regions: bodyRegions(file.body) };
}

/** readAll returns every key under "sp/" with its value, and the store's revision. */
async function readAll(s: TestServer, revision = 0) {
  const r = await post(`${s.url}/v3/kv/range`, {
    key: b64('sp/'), range_end: b64('sp0'), ...(revision > 0 ? { revision } : {}),
  });
  const kvs = (r.json.kvs ?? []) as { key: string; value: string }[];
  return {
    revision: Number(r.json.header.revision),
    kvs: kvs.map((kv) => [unb(kv.key), unb(kv.value)].join('=')),
  };
}
const unb = (s: string) => Buffer.from(s, 'base64').toString();

test('a member restores from a snapshot file written before the values were kept apart, and ' +
  'its next snapshot keeps them apart', async (t) => {
  const args = ['--snapshot-count', '1000'];
  const first = await startServer({ args });
  t.teardown(() => first.close());
  for (let i = 0; i < 300; i++) {
    const r = await post(`${first.url}/v3/kv/put`, {
      key: b64(`sp/${i % 120}`), value: b64(`v${i}-${'x'.repeat(i % 40)}`),
    });
    t.is(r.status, 200);
  }
  t.is((await post(`${first.url}/v3/kv/deleterange`, { key: b64('sp/7') })).status, 200);
  const before = await readAll(first);
  const older = await readAll(first, 150);
  t.is(await first.stop(), 0);
  const split = newestSnapshot(first.dataDir);
  t.not(split.regions.tail, undefined, 'the stop\'s snapshot keeps its values apart');

  // The same state in the old layout: each dump holds its values; no value regions.
  const body = decodeSnapshotBody(split.file.body);
  const { shardValues, valueRegions, ...meta } = body;
  t.is(valueRegions!.length, body.shards.length);
  const shards = body.shards.map((d, i) =>
    pack({ ...unpack<object>(d), valueBytes: shardValues![i] }));
  const oldBody = pack({ ...meta, shards });
  writeSnapshotFile(first.dataDir, split.listing.term, split.listing.index, oldBody);
  t.is(newestSnapshot(first.dataDir).regions.tail, undefined, 'the file is in the old layout');

  const second = await startServer({ dataDir: first.dataDir, args });
  t.teardown(() => second.close());
  const recovered = logged(second, 'recovered from snapshot and WAL').at(-1)!;
  t.is(recovered['snapshotIndex'], split.listing.index);
  t.deepEqual(await readAll(second), before);
  t.deepEqual((await readAll(second, 150)).kvs, older.kvs, 'the history below it too');
  for (let i = 0; i < 40; i++) {
    t.is((await post(`${second.url}/v3/kv/put`, { key: b64(`sp/n${i}`), value: b64('new') }))
      .status, 200);
  }
  const after = await readAll(second);
  t.is(await second.stop(), 0);
  const next = newestSnapshot(first.dataDir);
  t.true(next.listing.index > split.listing.index);
  t.not(next.regions.tail, undefined, 'the next snapshot keeps its values apart');

  const third = await startServer({ dataDir: first.dataDir, args });
  t.teardown(() => third.close());
  t.deepEqual(await readAll(third), after);
  t.deepEqual((await readAll(third, 150)).kvs, older.kvs);
});
