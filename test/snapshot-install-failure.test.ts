import test, { type ExecutionContext } from 'ava';
import { b64, post, type TestServer, unb64 } from './helpers/server.js';
import {
  startBehindFollower, type TestCluster, waitFor, waitInstalled,
} from './helpers/cluster.js';

/**
 * failOnceThenInstall restarts a follower that fell behind its leader's snapshot with
 * `point`=1*return("EIO"), waits until it installed a snapshot, and checks that the first
 * attempt failed once with EIO (the log line `failedLine`).
 */
async function failOnceThenInstall(t: ExecutionContext, prefix: string, point: string,
  failedLine: string): Promise<{ c: TestCluster; f: number; back: TestServer;
    pid: number | undefined; acked: string[] }> {
  const { c, follower: f, acked } = await startBehindFollower(prefix);
  t.teardown(() => c.stopAll());
  const back = await c.start(f, [], { GOFAIL_FAILPOINTS: `${point}=1*return("EIO")` });
  const pid = back.proc.pid;
  await waitInstalled(back, `the follower installs a snapshot after ${point} failed`);
  const failed = back.logs.filter((l) => l.includes(failedLine));
  t.is(failed.length, 1, `${point} failed once`);
  t.true(failed[0]!.includes('EIO'));
  return { c, f, back, pid, acked };
}

/** survived: the member is the same process, and no actor of it crashed or restarted. */
function survived(t: ExecutionContext, back: TestServer, pid: number | undefined): void {
  t.true(back.running);
  t.is(back.proc.pid, pid);
  t.false(back.logs.some((l) => /crashed|restarting actor|server is restarting/.test(l)),
    back.logs.filter((l) => /crash|restart/.test(l)).join('\n'));
}

/** servesAll waits until the member serves `count` keys under `prefix`/ from its own store
 * (serializable) and gives them. */
function servesAll(url: string, prefix: string, count: number): Promise<string[]> {
  return waitFor('the follower serves every key', async () => {
    const r = await post(`${url}/v3/kv/range`, { key: b64(`${prefix}/`),
      range_end: b64(`${prefix}0`), serializable: true, keys_only: true });
    const got = (r.json.kvs ?? []).map((kv: { key: string }) => unb64(kv.key));
    return got.length === count ? got : undefined;
  }, 60_000);
}

test('a follower whose snapshot install fails (raftBeforeApplySnap=1*return("EIO")) drops ' +
  'it, keeps running, and installs the leader\'s next one', async (t) => {
  const { back, pid, acked } = await failOnceThenInstall(t, 'snapfail',
    'raftBeforeApplySnap', 'failed to install the snapshot from the leader');
  t.is(acked.length, 60);
  // It survived: the same process, no actor crashed or restarted.
  survived(t, back, pid);
  // It serves every acknowledged key from its own store.
  t.deepEqual(await servesAll(back.url, 'snapfail', acked.length), acked);
});

test('a follower whose restore from a saved snapshot fails (raftBeforeRestoreSnap=' +
  '1*return("EIO")) restores it again from the saved snapshot, with no actor restart',
async (t) => {
  const { c, f, back, pid, acked } = await failOnceThenInstall(t, 'restorefail',
    'raftBeforeRestoreSnap', 'failed to restore the saved snapshot from the leader');
  t.true(back.logs.some((l) => l.includes('restored the saved snapshot from the leader')));
  // Before: the failure crashed the Raft actor and the supervisor restarted every actor.
  survived(t, back, pid);
  t.deepEqual(await servesAll(back.url, 'restorefail', acked.length), acked);
  // And it goes on: a write through the leader reaches it.
  const leaderUrl = c.nodes.find((n, i) => i !== f && n.server !== undefined)!.server!.url;
  t.is((await post(`${leaderUrl}/v3/kv/put`, { key: b64('restorefail/after'),
    value: b64('x') })).status, 200);
  await waitFor('the follower applies a new write', async () => {
    const r = await post(`${back.url}/v3/kv/range`, { key: b64('restorefail/after'),
      serializable: true });
    return r.json.count === '1' ? true : undefined;
  }, 30_000);
});
