import test from 'ava';
import {
  fastRaft, freePorts, startCluster, status, waitFor, waitForConvergence, waitForLeader,
} from './helpers/cluster.js';
import { b64, post, startServer, type TestServer } from './helpers/server.js';

// Membership with real processes, against etcd 3.4's JSON gateway answers (recorded from a
// 3-member etcd 3.4.23 cluster): add a learner to a cluster whose log was compacted (it
// catches up by snapshot, taken with another shard count), promote it, remove a member
// (it stops and says why), move the leadership.

const snapshotArgs = ['--snapshot-count', '40', '--experimental-snapshot-catchup-entries', '5'];

/** retryWhile repeats a request while it fails with one of `transient` (etcd refuses a
 * change until every member has been connected for 5 s, or a learner has caught up). */
async function retryWhile(what: string, req: () => Promise<{ status: number; json: any }>,
  transient: string[]): Promise<{ status: number; json: any }> {
  return waitFor(what, async () => {
    const r = await req();
    return r.status !== 200 && transient.includes(r.json?.message) ? undefined : r;
  }, 60_000);
}

test('membership: a learner joins by snapshot, is promoted and serves; a removed member stops; ' +
  'leadership moves', async (t) => {
  const c = await startCluster({ size: 3, args: [...fastRaft, ...snapshotArgs] });
  let joiner: TestServer | undefined;
  try {
    const leader = await waitForLeader(c);
    const lurl = c.nodes[leader]!.server!.url;
    for (let i = 0; i < 120; i++) {
      const r = await post(`${lurl}/v3/kv/put`, { key: b64(`m/${i}`), value: b64(`v${i}`) });
      t.is(r.status, 200);
    }
    // etcd's refusals, each as etcd 3.4 words and codes it.
    const follower = c.nodes[(leader + 1) % 3]!.server!.url;
    const fail = async (url: string, path: string, body: unknown, status: number,
      message: string) => {
      const r = await post(`${url}${path}`, body);
      t.is(r.status, status, `${path}: ${JSON.stringify(r.json)}`);
      t.is(r.json.message, message, path);
    };
    await fail(lurl, '/v3/cluster/member/add', { peerURLs: [c.nodes[0]!.peerUrl] }, 412,
      'etcdserver: Peer URLs already exists');
    await fail(lurl, '/v3/cluster/member/add', {}, 400,
      'etcdserver: given member URLs are invalid');
    await fail(lurl, '/v3/cluster/member/remove', { ID: '12345' }, 404,
      'etcdserver: member not found');
    const ids = await Promise.all(c.nodes.map(async (n) =>
      (await status(n.server!.url))!.memberId));
    await fail(lurl, '/v3/cluster/member/promote', { ID: ids[0] }, 412,
      'etcdserver: can only promote a learner member');
    await fail(follower, '/v3/maintenance/transfer-leadership', { targetID: ids[leader] }, 412,
      'etcdserver: not leader');
    await fail(lurl, '/v3/maintenance/transfer-leadership', { targetID: '12345' }, 412,
      'etcdserver: bad leader transferee');

    // Add a learner (through a follower: the change is forwarded like any proposal).
    const [port] = await freePorts(1);
    const peerUrl = `http://127.0.0.1:${port}`;
    const added = await retryWhile('the learner added', () =>
      post(`${follower}/v3/cluster/member/add`, { peerURLs: [peerUrl], isLearner: true }),
    ['etcdserver: unhealthy cluster']);
    t.is(added.status, 200, JSON.stringify(added.json));
    t.deepEqual(added.json.member.peerURLs, [peerUrl]);
    t.true(added.json.member.isLearner);
    t.is(added.json.member.name, undefined);
    const learnerId: string = added.json.member.ID;
    await fail(lurl, '/v3/cluster/member/add',
      { peerURLs: ['http://127.0.0.1:1'], isLearner: true },
      412, 'etcdserver: too many learner members in cluster');
    await fail(lurl, '/v3/maintenance/transfer-leadership', { targetID: learnerId }, 412,
      'etcdserver: bad leader transferee');

    // Start it: it asks the cluster who it is, then gets the compacted state as a snapshot
    // (taken with 2 shards, loaded into 3).
    const dataDir = `${c.nodes[0]!.dataDir}-learner`;
    joiner = await startServer({
      dataDir,
      args: ['--name', 'm4', '--listen-peer-urls', peerUrl, '--initial-advertise-peer-urls',
        peerUrl, '--initial-cluster', `${c.initialCluster},m4=${peerUrl}`,
        '--initial-cluster-state', 'existing', '--initial-cluster-token', 'test-cluster',
        '--storage-shards', '3', ...fastRaft],
    });
    const jurl = joiner.url;
    await waitFor('the learner installs a snapshot', async () =>
      joiner!.logs.some((l) => l.includes('installed snapshot from the leader')) ? true
        : undefined);
    const count = await waitFor('the learner has every key', async () => {
      const r = await post(`${jurl}/v3/kv/range`, {
        key: b64('m/'), range_end: b64('m0'), serializable: true, count_only: true,
      });
      return r.status === 200 && r.json.count === '120' ? r.json.count : undefined;
    });
    t.is(count, '120');
    await fail(jurl, '/v3/kv/put', { key: b64('m/x'), value: b64('x') }, 503,
      'etcdserver: rpc not supported for learner');
    await fail(jurl, '/v3/kv/range', { key: b64('m/1') }, 503,
      'etcdserver: rpc not supported for learner');

    // Promote it (asked of a follower, which forwards to the leader); then it serves all.
    const promoted = await retryWhile('the learner promoted', () =>
      post(`${follower}/v3/cluster/member/promote`, { ID: learnerId }),
    ['etcdserver: can only promote a learner member which is in sync with leader',
      'etcdserver: unhealthy cluster']);
    t.is(promoted.status, 200, JSON.stringify(promoted.json));
    t.false(promoted.json.members.find((m: any) => m.ID === learnerId).isLearner === true);
    // The answer comes once the change is applied where it was asked; the new voter applies
    // it when the entry reaches it.
    const w = await retryWhile('the promoted member takes writes', () =>
      post(`${jurl}/v3/kv/put`, { key: b64('m/by-m4'), value: b64('yes') }),
    ['etcdserver: rpc not supported for learner']);
    t.is(w.status, 200, JSON.stringify(w.json));
    const named = await waitFor('the new member published its name', async () => {
      const l = await post(`${lurl}/v3/cluster/member/list`, {});
      const m = l.json.members.find((x: any) => x.ID === learnerId);
      return m?.name === 'm4' ? m : undefined;
    });
    t.deepEqual(named.clientURLs, [jurl]);

    // Remove a follower: it learns it was removed and stops by itself, saying why.
    const victim = (leader + 2) % 3;
    const victimServer = c.nodes[victim]!.server!;
    const exited = new Promise<number | null>((resolve) =>
      victimServer.proc.once('exit', (code) => resolve(code)));
    const removed = await retryWhile('a member removed', () =>
      post(`${lurl}/v3/cluster/member/remove`, { ID: ids[victim] }),
    ['etcdserver: unhealthy cluster']);
    t.is(removed.status, 200, JSON.stringify(removed.json));
    t.false(removed.json.members.some((m: any) => m.ID === ids[victim]));
    t.is(await exited, 0);
    c.nodes[victim]!.server = undefined;
    t.true(victimServer.logs.some((l) =>
      l.includes('the member has been permanently removed from the cluster')));

    // Move the leadership to the promoted member.
    const moved = await post(`${lurl}/v3/maintenance/transfer-leadership`,
      { targetID: learnerId });
    t.is(moved.status, 200, JSON.stringify(moved.json));
    t.deepEqual(moved.json, {});
    t.is((await status(jurl))!.leader, learnerId);
    // Writes go on, through any remaining member.
    for (const n of c.live()) {
      t.is((await post(`${n.server!.url}/v3/kv/put`, { key: b64('m/end'), value: b64(n.name) }))
        .status, 200);
    }
    await waitForConvergence({ ...c, live: () => [...c.live(), { server: joiner } as never] });
  } finally {
    await joiner?.kill();
    await joiner?.cleanup();
    await c.stopAll();
  }
});
