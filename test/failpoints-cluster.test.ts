import test from 'ava';
import { b64, post, unb64 } from './helpers/server.js';
import {
  fastRaft, startBehindFollower, startCluster, status, type TestCluster, waitForConvergence,
  waitForLeader,
} from './helpers/cluster.js';
import { Signal, until } from './helpers/wait.js';

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
  const { c, follower: f, acked } = await startBehindFollower('snapinstall');
  t.teardown(() => c.stopAll());
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

test('a follower whose disk is full refuses writes and linearizable reads, serves ' +
  'serializable ones, and has another member record its NOSPACE, which every member then ' +
  'enforces; a disarm on the leader clears it and the follower writes and catches up again',
async (t) => {
  const c = await startCluster({ size: 3, args: fastRaft });
  t.teardown(() => c.stopAll());
  const leader = await waitForLeader(c);
  const f = (leader + 1) % 3;
  const url = c.nodes[leader]!.server!.url;
  const put = (u: string, k: string) =>
    post(`${u}/v3/kv/put`, { key: b64(`nospace/${k}`), value: b64(k) });
  t.is((await put(url, 'before')).status, 200);
  await waitForConvergence(c);
  await c.kill(f);
  // The follower's first write after its restart (its first append from the leader) fails
  // for space; the disk takes writes again after that one.
  const full = await c.start(f, [],
    { GOFAIL_FAILPOINTS: 'walBeforeWrite=1*return("ENOSPC")->off' });
  const fullId = (await status(full.url))!.memberId;
  const noSpace = { status: 429, json: { error: 'etcdserver: mvcc: database space exceeded' } };
  let refusal: { status: number; json: any } | undefined;
  for (let i = 0; refusal === undefined; i++) {
    const l = await put(url, `during-${i}`);
    // The leader goes on until the follower's alarm is recorded; then it refuses too.
    if (l.status !== 200) t.like(l, noSpace, 'the leader refuses only for the alarm');
    const r = await put(full.url, `via-full-${i}`);
    // Just restarted, it may not know the leader yet ("no leader"); a write in flight when
    // its disk failed has an unknown outcome (the others may commit it: "request timed
    // out"). Then every write is refused for space.
    const transient = ['etcdserver: no leader', 'etcdserver: request timed out'];
    if (r.status !== 200 && !transient.includes(r.json.error)) refusal = r;
    if (i > 200) break;
  }
  t.like(refusal, noSpace);
  const lin = await post(`${full.url}/v3/kv/range`, { key: b64('nospace/before') });
  t.is(lin.json.error, 'etcdserver: no leader', 'it cannot tell how far behind it is');
  const ser = await post(`${full.url}/v3/kv/range`,
    { key: b64('nospace/before'), serializable: true });
  t.is(ser.status, 200);
  t.is(unb64(ser.json.kvs[0].value), 'before');
  const expected = [{ memberID: fullId, alarm: 'NOSPACE' }];
  t.deepEqual((await post(`${full.url}/v3/maintenance/alarm`, {})).json.alarms, expected);
  // Another member proposes the full member's alarm: then every member lists and enforces it.
  await until(async () => (await post(`${url}/v3/maintenance/alarm`, {})).json.alarms?.length
    === 1, 'the leader to list the full member\'s alarm');
  for (const n of c.nodes) {
    t.deepEqual((await post(`${n.server!.url}/v3/maintenance/alarm`, {})).json.alarms,
      expected, `alarm list on ${n.name}`);
  }
  t.like(await put(url, 'refused'), noSpace, 'the leader refuses writes for the alarm');
  // The operator freed space and disarms on the leader: the full member sees it gone, tries
  // writing again, and catches up.
  const dis = await post(`${url}/v3/maintenance/alarm`,
    { action: 'DEACTIVATE', memberID: fullId, alarm: 'NOSPACE' });
  t.deepEqual(dis.json.alarms, expected);
  await until(async () => (await put(full.url, 'after')).status === 200,
    'the full member to take writes again');
  const rev = await waitForConvergence(c);
  for (const n of c.nodes) {
    const r = await post(`${n.server!.url}/v3/kv/range`, { key: b64('nospace/after') });
    t.is(r.status, 200);
    t.is(Number(r.json.header.revision), rev);
    t.is(unb64(r.json.kvs[0].value), 'after');
    t.deepEqual((await post(`${n.server!.url}/v3/maintenance/alarm`, {})).json.alarms,
      undefined, `no alarm left on ${n.name}`);
  }
});
