import test from 'ava';
import { b64, post, unb64 } from './helpers/server.js';
import { startBehindFollower, waitFor } from './helpers/cluster.js';

test('a follower whose snapshot install fails (raftBeforeApplySnap=1*return("EIO")) drops ' +
  'it, keeps running, and installs the leader\'s next one', async (t) => {
  const { c, follower: f, acked } = await startBehindFollower('snapfail');
  t.teardown(() => c.stopAll());
  t.is(acked.length, 60);
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
