import test from 'ava';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { snapshotFilesKept } from '../src/constants.js';
import { b64, post, startServer, type TestServer } from './helpers/server.js';

/** snapshotsTaken resolves once the server has logged `n` snapshots taken (the Raft node logs
 * it after the WAL has saved the file and purged old ones), or rejects if it exits first: it
 * waits on the log stream, not on time. */
function snapshotsTaken(s: TestServer, n: number): Promise<void> {
  const count = (): number => s.logs.filter((l) => l.includes('"snapshot taken"')).length;
  return new Promise((resolve, reject) => {
    const check = (): void => {
      if (count() < n) return;
      s.proc.stderr!.off('data', onData);
      resolve();
    };
    // Our listener runs after the helper's, which has already appended the new lines.
    const onData = (): void => check();
    s.proc.stderr!.on('data', onData);
    s.proc.once('exit', () => reject(new Error(`server exited after ${count()} snapshots`)));
    check();
  });
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
