import test from 'ava';
import { b64, post, unb64 } from './helpers/server.js';
import {
  fastRaft, startCluster, type TestCluster, waitForConvergence, waitForLeader,
} from './helpers/cluster.js';
import { Signal } from './helpers/wait.js';

/** snapArgs: snapshots every 20 entries keeping 5 behind, so a follower that missed 60
 * entries can only catch up from a snapshot. */
const snapArgs = ['--snapshot-count', '20', '--experimental-snapshot-catchup-entries', '5'];

/** startToDeath starts member i with a failpoint that is to kill it, waits until it died
 * (before or after the member reported ready), and returns its log. */
async function startToDeath(c: TestCluster, i: number, spec: string): Promise<string> {
  let srv;
  try {
    srv = await c.start(i, [], { GOFAIL_FAILPOINTS: spec }, true);
  } catch (e) {
    if (/exited with null before ready/.test(String(e))) return String(e);
    throw e;
  }
  const died = new Signal();
  srv.proc.once('exit', () => died.notify());
  await died.until(() => !srv.running, `${spec} to kill member ${i}`, 60_000);
  return srv.logs.join('\n');
}

test('crash while a follower installs its leader\'s snapshot (raftBeforeApplySnap, then ' +
  'raftAfterApplySnap): it recovers, converges and holds every acknowledged write',
async (t) => {
  const c = await startCluster({ size: 3, args: [...fastRaft, ...snapArgs] });
  t.teardown(() => c.stopAll());
  const leader = await waitForLeader(c);
  const f = (leader + 1) % 3;
  await c.kill(f);
  const url = c.nodes[leader]!.server!.url;
  const acked: string[] = [];
  for (let i = 0; i < 60; i++) {
    const key = `snapinstall/${String(i).padStart(3, '0')}`;
    const r = await post(`${url}/v3/kv/put`, { key: b64(key), value: b64(`v${i}`) });
    t.is(r.status, 200, key);
    acked.push(key);
  }
  for (const point of ['raftBeforeApplySnap', 'raftAfterApplySnap']) {
    const log = await startToDeath(c, f, `${point}=panic`);
    t.true(log.includes(`failpoint ${point}: panic`), `${point} killed the member`);
  }
  const back = await c.start(f);
  await waitForConvergence(c);
  const r = await post(`${back.url}/v3/kv/range`, {
    key: b64('snapinstall/'), range_end: b64('snapinstall0'), serializable: true,
  });
  t.deepEqual((r.json.kvs ?? []).map((kv: { key: string }) => unb64(kv.key)), acked);
  t.true(back.logs.some((l) => l.includes('installed snapshot from the leader')) ||
    back.logs.some((l) => l.includes('recovered from snapshot and WAL')));
});
