import test from 'ava';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { snapshotFilesKept } from '../src/constants.js';
import {
  b64, logged, post, startServer, type TestServer, whenLogged,
} from './helpers/server.js';

/** snapshotsTaken resolves once the server has logged `n` snapshots taken (the Raft node logs
 * it after the WAL has saved the file and purged old ones), waiting on its log stream. */
async function snapshotsTaken(s: TestServer, n: number): Promise<void> {
  await whenLogged(s, 'snapshot taken', () => logged(s, 'snapshot taken').length >= n);
}

test('wal actor: old snapshot files are purged, keeping snapshotFilesKept', async (t) => {
  const s = await startServer({ args: ['--snapshot-count', '20'] });
  t.teardown(async () => {
    await s.kill();
    await s.cleanup();
  });
  // One round: more than --snapshot-count puts (one applied entry each) after the previous
  // snapshot is done, so each round cuts at least one snapshot.
  const rounds = snapshotFilesKept + 3;
  for (let round = 1; round <= rounds; round++) {
    await Promise.all(Array.from({ length: 21 }, (_, j) =>
      post(`${s.url}/v3/kv/put`, { key: b64(`k${round}-${j}`), value: b64('v') })));
    await snapshotsTaken(s, round);
  }
  const files = readdirSync(join(s.dataDir, 'member', 'snap')).filter((f) => f.endsWith('.snap'));
  t.true(files.length <= snapshotFilesKept, `${files.length} snapshot files`);
  t.true(files.length >= 2, 'an older snapshot is kept to fall back to');
});

test('wal actor: --max-snapshots sets how many snapshot files are kept', async (t) => {
  const s = await startServer({ args: ['--snapshot-count', '20', '--max-snapshots', '2'] });
  t.teardown(async () => {
    await s.kill();
    await s.cleanup();
  });
  // Five snapshots (the default would keep all five files), each logged once purged.
  for (let round = 1; round <= 5; round++) {
    await Promise.all(Array.from({ length: 21 }, (_, j) =>
      post(`${s.url}/v3/kv/put`, { key: b64(`k${round}-${j}`), value: b64('v') })));
    await snapshotsTaken(s, round);
  }
  const files = readdirSync(join(s.dataDir, 'member', 'snap')).filter((f) => f.endsWith('.snap'));
  t.is(files.length, 2, files.join(' '));
});

test('wal actor: a member\'s last snapshot, taken with no write after it, is what the next ' +
  'start recovers from, after kill -9', async (t) => {
  const args = ['--snapshot-count', '20', '--storage-shards', '1'];
  const s = await startServer({ args });
  t.teardown(async () => {
    await s.kill();
    await s.cleanup();
  });
  // Puts one at a time until the 20th entry is applied: the snapshot comes at that entry,
  // and nothing is written after it. A commit reaches the WAL only with the next append, so
  // before the WAL writer wrote the commit beside the marker, this snapshot lay past the
  // commit on disk and the next start fell back to replaying the whole log.
  let puts = 0;
  for (;;) {
    t.is((await post(`${s.url}/v3/kv/put`, { key: b64(`k${puts}`), value: b64('v') })).status,
      200);
    puts++;
    const st = await post(`${s.url}/v3/maintenance/status`, {});
    if (Number(st.json.raftAppliedIndex) >= 20) break;
  }
  const taken = await whenLogged(s, 'snapshot taken');
  await s.kill();
  const again = await startServer({ dataDir: s.dataDir, args });
  t.teardown(() => again.close());
  const recovered = logged(again, 'recovered from snapshot and WAL')[0]!;
  t.is(recovered.snapshotIndex, taken.index);
  t.true(recovered.commit >= taken.index, `commit ${recovered.commit}`);
  const r = await post(`${again.url}/v3/kv/range`, { key: b64('k'), range_end: b64('l') });
  t.is(r.json.count, String(puts));
});
