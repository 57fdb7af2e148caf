import test from 'ava';
import { b64, post } from './helpers/server.js';
import { LineStream } from './helpers/streams.js';
import {
  fastRaft, snapshotCatchUpArgs, startBehindFollower, startCluster, status, waitFor,
  waitForLeader, waitInstalled,
} from './helpers/cluster.js';

/** watchFrom opens a watch on `prefix` from `start` (0: from now) and returns the stream with
 * its created answer's header revision. */
async function watchFrom(url: string, prefix: string, start: number):
  Promise<{ s: LineStream; created: number }> {
  const end = prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
  const s = new LineStream(url, '/v3/watch');
  const r = await s.create({ key: b64(prefix), range_end: b64(end),
    start_revision: String(start) });
  s.end(); // no more requests: the response stays open
  return { s, created: Number(r.header.revision) };
}

/** readRevs adds the mod revisions of a watch stream's events to `revs` until `enough`. */
async function readRevs(s: LineStream, revs: number[], enough: () => boolean): Promise<void> {
  while (!enough()) {
    for (const e of (await s.result()).events ?? []) revs.push(Number(e.kv.mod_revision));
  }
}

test('a watch opened on a follower after it installed a snapshot while nobody watched gets ' +
  'every later event', async (t) => {
  const { c, follower: f, url: leaderUrl } = await startBehindFollower('wsi');
  t.teardown(() => c.stopAll());
  // Nobody watches the follower: its hub has unsubscribed from the Raft node when the
  // snapshot arrives (the install used to mark the hub recovered while unsubscribed, so the
  // next watch never subscribed again and heard of no revision after the snapshot's).
  const back = await c.start(f);
  await waitInstalled(back);
  const all = await watchFrom(back.url, 'wsi/', 2);
  const future = await watchFrom(back.url, 'wsi/', 0);
  t.teardown(() => { all.s.close(); future.s.close(); });
  for (let i = 60; i < 70; i++) {
    const key = `wsi/${String(i).padStart(3, '0')}`;
    t.is((await post(`${leaderUrl}/v3/kv/put`, { key: b64(key), value: b64('x') })).status, 200);
  }
  const allRevs: number[] = [];
  const futureRevs: number[] = [];
  try {
    await Promise.all([readRevs(all.s, allRevs, () => allRevs.length >= 70),
      readRevs(future.s, futureRevs, () => futureRevs.includes(71))]);
  } catch (e) {
    t.log(await fetch(`${back.url}/debug/watch`).then((r) => r.text()));
    throw e;
  }
  // The first 60 puts are revisions 2..61, the next ten 62..71: each event exactly once. A
  // watch from "now" starts after the revision the follower had applied when it was created.
  t.deepEqual(allRevs, Array.from({ length: 70 }, (_, i) => i + 2));
  const from = future.created + 1;
  t.true(from <= 62, `created at ${future.created}`);
  t.deepEqual(futureRevs, Array.from({ length: 72 - from }, (_, i) => i + from));
});

test('a serving follower that installs a snapshot serves serializable reads at the ' +
  'snapshot\'s revision without waiting for another write', async (t) => {
  const c = await startCluster({ size: 3, args: [...fastRaft, ...snapshotCatchUpArgs],
    env: { GOFAIL_FAILPOINTS: 'peer-fault' } });
  t.teardown(() => c.stopAll());
  const leader = await waitForLeader(c);
  const ids = await Promise.all(c.nodes.map(async (n) => (await status(n.server!.url))!.memberId));
  const fi = (leader + 1) % 3;
  const f = c.nodes[fi]!.server!;
  const url = c.nodes[leader]!.server!.url;
  const range = { key: b64('srs/'), range_end: b64('srs0'), serializable: true };
  t.is((await post(`${url}/v3/kv/put`, { key: b64('srs/first'), value: b64('1') })).status, 200);
  await waitFor('the follower has the first key', async () =>
    (await post(`${f.url}/v3/kv/range`, range)).json.count === '1' ? true : undefined);
  // Cut off while its gateway serves, the follower falls behind the leader's compacted log;
  // healed, it catches up by a snapshot install, and no write follows it.
  const cut = async (cutOff: boolean): Promise<void> => {
    for (let i = 0; i < 3; i++) {
      const drop = !cutOff ? [] : i === fi ? ids.filter((_, j) => j !== fi) : [ids[fi]!];
      t.is((await post(`${c.nodes[i]!.server!.url}/debug/peer-fault`, { drop })).status, 200);
    }
  };
  await cut(true);
  for (let i = 0; i < 60; i++) {
    const key = `srs/${String(i).padStart(3, '0')}`;
    t.is((await post(`${url}/v3/kv/put`, { key: b64(key), value: b64(`v${i}`) })).status, 200);
  }
  // Entries that write no key, so that the leader's newest snapshot holds every put and
  // nothing after it tells the follower of a newer revision (snapshots every 20 entries).
  for (let i = 0; i < 45; i++) {
    t.is((await post(`${url}/v3/lease/grant`, { TTL: 600 })).status, 200);
  }
  await cut(false);
  await waitInstalled(f);
  const want = await waitFor('a leader that serves the 61 keys', async () => {
    const r = await post(`${url}/v3/kv/range`, { ...range, serializable: false });
    return r.status === 200 ? r.json : undefined;
  });
  t.is(want.count, '61');
  // Its gateway used to serve the revision it knew before (at which none of the 60 keys
  // exist) until the next write.
  const got = await waitFor('the follower serves the snapshot\'s revision', async () => {
    const r = (await post(`${f.url}/v3/kv/range`, range)).json;
    return r.header.revision === want.header.revision ? r : undefined;
  });
  t.is(got.count, want.count);
  t.deepEqual(got.kvs, want.kvs);
});
