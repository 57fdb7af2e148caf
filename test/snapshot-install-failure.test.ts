import test from 'ava';
import { b64, post, unb64 } from './helpers/server.js';
import {
  fastRaft, startCluster, waitFor, waitForLeader,
} from './helpers/cluster.js';

/** snapArgs: snapshots every 20 entries keeping 5 behind, so a follower that missed 60
 * entries can only catch up from a snapshot. */
const snapArgs = ['--snapshot-count', '20', '--experimental-snapshot-catchup-entries', '5'];

test('a follower whose snapshot install fails (raftBeforeApplySnap=1*return("EIO")) drops ' +
  'it, keeps running, and installs the leader\'s next one', async (t) => {
  const c = await startCluster({ size: 3, args: [...fastRaft, ...snapArgs] });
  t.teardown(() => c.stopAll());
  const leader = await waitForLeader(c);
  const f = (leader + 1) % 3;
  await c.kill(f);
  const url = c.nodes[leader]!.server!.url;
  const acked: string[] = [];
  for (let i = 0; i < 60; i++) {
    const key = `snapfail/${String(i).padStart(3, '0')}`;
    const r = await post(`${url}/v3/kv/put`, { key: b64(key), value: b64(`v${i}`) });
    t.is(r.status, 200, key);
    acked.push(key);
  }
  const back = await c.start(f, [], { GOFAIL_FAILPOINTS: 'raftBeforeApplySnap=1*return("EIO")' });
  const pid = back.proc.pid;
  await waitFor('the follower installs a snapshot after the failed one', async () =>
    back.logs.some((l) => l.includes('installed snapshot from the leader')) ? true : undefined,
  60_000);
  const failed = back.logs.filter((l) =>
    l.includes('failed to install the snapshot from the leader'));
  t.is(failed.length, 1, 'the first install failed, once');
  t.true(failed[0]!.includes('EIO'));
  // It survived: the same process, no actor crashed or restarted.
  t.true(back.running);
  t.is(back.proc.pid, pid);
  t.false(back.logs.some((l) => /crashed|restarting actor|server is restarting/.test(l)),
    back.logs.filter((l) => /crash|restart/.test(l)).join('\n'));
  // It serves every acknowledged key from its own store.
  const keys = await waitFor('the follower serves every key', async () => {
    const r = await post(`${back.url}/v3/kv/range`, {
      key: b64('snapfail/'), range_end: b64('snapfail0'), serializable: true, keys_only: true,
    });
    const got = (r.json.kvs ?? []).map((kv: { key: string }) => unb64(kv.key));
    return got.length === acked.length ? got : undefined;
  }, 60_000);
  t.deepEqual(keys, acked);
});
