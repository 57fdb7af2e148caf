import test from 'ava';
import { rm } from 'node:fs/promises';
import {
  fastRaft, startCluster, status, waitFor, waitForLeader,
} from './helpers/cluster.js';
import { b64, post } from './helpers/server.js';

// A member removed, wiped and added back (a new id), then killed with all the others before
// it learned the membership (robustness seed 6015: member-replace then kill-all). It restarts
// from a WAL that names no other member; the leader must still reach it (etcd accepts an
// unknown sender's messages and adds it as a remote from its peer URLs), so that it learns
// the log and serves the data. Before the fix it refused the leader (SENDER_NOT_FOUND) and
// never caught up.

const keysTotal = 20;

/** retryWhile repeats a membership change while the cluster refuses it as unhealthy (every
 * member must have been connected for 5 s first). */
async function retryUnhealthy(what: string, req: () => Promise<{ status: number; json: any }>):
  Promise<{ status: number; json: any }> {
  return waitFor(what, async () => {
    const r = await req();
    return r.status !== 200 && r.json?.message === 'etcdserver: unhealthy cluster' ? undefined
      : r;
  }, 60_000);
}

test('membership: a re-added member killed with all others before it learned the membership ' +
  'restarts, is reached by the leader and serves the data', async (t) => {
  const c = await startCluster({
    size: 3, args: [...fastRaft, '--strict-reconfig-check=false'],
    env: { GOFAIL_FAILPOINTS: 'peer-fault' },
  });
  try {
    const leader = await waitForLeader(c);
    const lurl = c.nodes[leader]!.server!.url;
    for (let i = 0; i < keysTotal; i++) {
      const r = await post(`${lurl}/v3/kv/put`, { key: b64(`r/${i}`), value: b64(`v${i}`) });
      t.is(r.status, 200);
    }
    const v = (leader + 1) % 3;
    const oldId = (await status(c.nodes[v]!.server!.url))!.memberId;
    const rm1 = await retryUnhealthy('the follower removed', () =>
      post(`${lurl}/v3/cluster/member/remove`, { ID: oldId }));
    t.is(rm1.status, 200, JSON.stringify(rm1.json));
    await c.kill(v);
    await rm(c.nodes[v]!.dataDir, { recursive: true, force: true });
    const add = await retryUnhealthy('the member added back', () =>
      post(`${lurl}/v3/cluster/member/add`, { peerURLs: [c.nodes[v]!.peerUrl] }));
    t.is(add.status, 200, JSON.stringify(add.json));
    const newId: string = add.json.member.ID;
    t.not(newId, oldId);

    // The others drop its traffic (the test hook), so it starts, writes its WAL and learns
    // nothing: the moment seed 6015's kill-all hit.
    for (const n of c.live()) {
      const r = await post(`${n.server!.url}/debug/peer-fault`, { drop: [newId] });
      t.is(r.status, 200, JSON.stringify(r.json));
    }
    const joined = await c.start(v, ['--initial-cluster-state', 'existing']);
    t.true(joined.logs.some((l) => l.includes('starting a new member')));
    t.is((await status(joined.url))?.leader ?? '', '', 'it learned of no leader');

    // kill -9 every member, then start them all again (the hook's drops are gone with them).
    await Promise.all([0, 1, 2].map((i) => c.kill(i)));
    await Promise.all([0, 1, 2].map((i) => c.start(i)));
    const back = c.nodes[v]!.server!;
    t.true(back.logs.some((l) => l.includes('recovered from snapshot and WAL')),
      'the re-added member restarted from its WAL');

    // Every member names one leader (the re-added one too: the leader reached it), and the
    // re-added member serves every key from its own store.
    await waitForLeader(c, 60_000);
    t.is((await status(back.url))!.memberId, newId);
    const count = await waitFor('the re-added member serves every key', async () => {
      const r = await post(`${back.url}/v3/kv/range`, {
        key: b64('r/'), range_end: b64('r0'), serializable: true, count_only: true,
      });
      return r.status === 200 && r.json.count === String(keysTotal) ? r.json.count : undefined;
    }, 60_000);
    t.is(count, String(keysTotal));
    const list = await post(`${back.url}/v3/cluster/member/list`, {});
    t.is(list.status, 200);
    t.deepEqual(list.json.members.map((m: any) => m.ID).sort(),
      [...new Set([newId, ...await Promise.all([0, 1, 2].filter((i) => i !== v).map(
        async (i) => (await status(c.nodes[i]!.server!.url))!.memberId))])].sort());
  } finally {
    await c.stopAll();
  }
});
