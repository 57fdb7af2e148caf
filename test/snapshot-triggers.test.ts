import test from 'ava';
import { idleSnapshotWorth, stopSnapshotWorth } from '../actors/raft/snapshots.js';
import { idleSnapshotBytesMin, stopSnapshotBytesMin } from '../src/constants.js';
import {
  b64, logged, post, startServer, type TestServer, whenLogged,
} from './helpers/server.js';

/** lastLogged is the server's last log line with message `msg`, parsed, if any. */
function lastLogged(s: TestServer, msg: string): Record<string, any> | undefined {
  return logged(s, msg).at(-1);
}

/** putOneByOne puts k0..k(n-1), one entry each, and returns the last put's revision. */
async function putOneByOne(s: TestServer, n: number): Promise<number> {
  let revision = 0;
  for (let i = 0; i < n; i++) {
    const r = await post(`${s.url}/v3/kv/put`, { key: b64(`k${i}`), value: b64(`v${i}`) });
    if (r.status !== 200) throw new Error(`put k${i}: ${r.status} ${JSON.stringify(r.json)}`);
    revision = Number((r.json.header as { revision: string }).revision);
  }
  return revision;
}

test('stopSnapshotWorth: a tail of a hundredth of --snapshot-count entries, or of ' +
  'stopSnapshotBytesMin bytes, is worth a snapshot at stop; an empty tail never is', (t) => {
  t.false(stopSnapshotWorth(0, 100_000, 10 * stopSnapshotBytesMin));
  t.false(stopSnapshotWorth(999, 100_000, stopSnapshotBytesMin - 1));
  t.true(stopSnapshotWorth(1_000, 100_000, 0));
  t.true(stopSnapshotWorth(1, 100_000, stopSnapshotBytesMin));
  t.true(stopSnapshotWorth(1, 20, 0), 'with --snapshot-count under 100, any tail');
});

test('idleSnapshotWorth: an idle member snapshots a tail of idleSnapshotBytesMin bytes and a ' +
  'sixteenth of the store, never an empty one', (t) => {
  t.true(idleSnapshotWorth(1, idleSnapshotBytesMin, 0));
  t.false(idleSnapshotWorth(1, idleSnapshotBytesMin - 1, 0));
  t.false(idleSnapshotWorth(0, 10 * idleSnapshotBytesMin, 0));
  t.false(idleSnapshotWorth(50, idleSnapshotBytesMin, 17 * idleSnapshotBytesMin));
  t.true(idleSnapshotWorth(50, 2 * idleSnapshotBytesMin, 17 * idleSnapshotBytesMin));
});

test('a member that goes idle after a burst snapshots it; the start after kill -9 restores that ' +
  'snapshot with no WAL tail to apply', async (t) => {
  const s = await startServer({});
  t.teardown(() => s.close());
  // Five puts of 1 MiB: a tail of more than idleSnapshotBytesMin, far below the periodic
  // triggers (--snapshot-count 100,000 entries, 32 MiB).
  const value = b64('v'.repeat(2 ** 20));
  let revision = 0;
  for (let i = 0; i < 5; i++) {
    const r = await post(`${s.url}/v3/kv/put`, { key: b64(`big${i}`), value });
    t.is(r.status, 200);
    revision = Number((r.json.header as { revision: string }).revision);
  }
  const taken = await whenLogged(s, 'snapshot taken', (j) => j['revision'] === revision);
  t.is(taken.trigger, 'idle');
  await s.kill();
  const again = await startServer({ dataDir: s.dataDir });
  t.teardown(() => again.close());
  const recovered = lastLogged(again, 'recovered from snapshot and WAL')!;
  t.is(recovered.snapshotIndex, taken.index);
  t.is(recovered.revision, revision);
  const r = await post(`${again.url}/v3/kv/range`, { key: b64('big4') });
  t.is((r.json.kvs as { value: string }[])[0]!.value, value);
});

test('a clean stop snapshots the applied state, and the next start restores it with no WAL ' +
  'tail to apply', async (t) => {
  // --snapshot-count 1000: no periodic snapshot in 15 entries; a tail of 10 is worth one.
  const args = ['--snapshot-count', '1000'];
  const s = await startServer({ args });
  t.teardown(() => s.close());
  // The member publishes its URLs through Raft once its gRPC listener is up too; on a slow
  // machine that entry could land between the status read below and the stop.
  await whenLogged(s, 'published local member to cluster through raft');
  const revision = await putOneByOne(s, 15);
  const applied = Number((await post(`${s.url}/v3/maintenance/status`, {})).json.raftAppliedIndex);
  t.is(lastLogged(s, 'snapshot taken'), undefined, 'no snapshot before the stop');
  t.is(await s.stop(), 0);
  const taken = lastLogged(s, 'snapshot taken');
  t.truthy(taken, 'the stop took a snapshot');
  t.is(taken!.trigger, 'stop');
  t.is(taken!.index, applied);
  t.is(taken!.revision, revision);

  const again = await startServer({ dataDir: s.dataDir, args });
  t.teardown(() => again.close());
  const recovered = lastLogged(again, 'recovered from snapshot and WAL')!;
  t.is(recovered.snapshotIndex, applied);
  t.is(recovered.revision, revision, 'the snapshot already holds the last write');
  const r = await post(`${again.url}/v3/kv/range`, { key: b64('k'), range_end: b64('l') });
  t.is(r.json.count, '15');
  const v = await post(`${again.url}/v3/kv/range`, { key: b64('k14') });
  t.is((v.json.kvs as { value: string }[])[0]!.value, b64('v14'));
});

test('a clean stop with a short WAL tail takes no snapshot; the next start applies the tail',
  async (t) => {
    const args = ['--snapshot-count', '1000'];
    const s = await startServer({ args });
    t.teardown(() => s.close());
    const revision = await putOneByOne(s, 3);
    t.is(await s.stop(), 0);
    t.is(lastLogged(s, 'snapshot taken'), undefined);
    const again = await startServer({ dataDir: s.dataDir, args });
    t.teardown(() => again.close());
    const recovered = lastLogged(again, 'recovered from snapshot and WAL')!;
    t.is(recovered.snapshotIndex, 0);
    const r = await post(`${again.url}/v3/kv/range`, { key: b64('k'), range_end: b64('l') });
    t.is(r.json.count, '3');
    t.is(Number((r.json.header as { revision: string }).revision), revision);
  });
