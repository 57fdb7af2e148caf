import test from 'ava';
import { b64, post } from './helpers/server.js';
import {
  fastRaft, startCluster, status, waitForConvergence, waitForLeader,
} from './helpers/cluster.js';

/**
 * Replicated alarms on a real 3-member cluster (src/alarms.ts, docs/reliability.md): one
 * member passes its --quota-backend-bytes and raises NOSPACE through the log; every member
 * lists it and refuses what grows the store with etcd's text; it survives a restart of every
 * member (the store is back under the quota by then, so nothing raises it again); a disarm on
 * another member clears it everywhere.
 */

const noSpaceText = 'etcdserver: mvcc: database space exceeded';

/** alarmList is /v3/maintenance/alarm GET on one member: status and the alarms. */
async function alarmList(url: string): Promise<{ status: number; alarms: unknown[] }> {
  const r = await post(`${url}/v3/maintenance/alarm`, { action: 'GET' });
  return { status: r.status, alarms: r.json.alarms ?? [] };
}

test('alarms: NOSPACE raised by one member\'s quota is listed and enforced by every member, ' +
  'survives a restart of all, and a disarm on another member clears it everywhere',
async (t) => {
  // Member 3 alone has a quota; snapshots every 20 entries, so the restart loads one.
  const c = await startCluster({
    size: 3, args: [...fastRaft, '--snapshot-count', '20'],
    memberArgs: (i) => (i === 2 ? ['--quota-backend-bytes', '20000'] : []),
  });
  t.teardown(() => c.stopAll());
  await waitForLeader(c);
  const urls = () => c.nodes.map((n) => n.server!.url);
  const quotaId = (await status(urls()[2]!))!.memberId;
  // Writes through member 1 (no quota of its own) until the cluster refuses one.
  let refusal: { status: number; json: any } | undefined;
  for (let i = 0; i < 500 && refusal === undefined; i++) {
    const r = await post(`${urls()[0]}/v3/kv/put`,
      { key: b64(`big/${String(i).padStart(4, '0')}`), value: b64('x'.repeat(1024)) });
    if (r.status !== 200) refusal = r;
  }
  t.like(refusal, { status: 429, json: { error: noSpaceText } });
  const expected = [{ memberID: quotaId, alarm: 'NOSPACE' }];
  for (const u of urls()) {
    t.deepEqual(await alarmList(u), { status: 200, alarms: expected }, `alarm list on ${u}`);
    const put = await post(`${u}/v3/kv/put`, { key: b64('small'), value: b64('v') });
    t.like(put, { status: 429, json: { error: noSpaceText } }, `put on ${u}`);
    const grant = await post(`${u}/v3/lease/grant`, { TTL: 60 });
    t.like(grant, { status: 429, json: { error: noSpaceText } }, `lease grant on ${u}`);
  }
  // Deletes and compaction are not capped: the store goes back under the quota, so only
  // the log (or a snapshot) can bring the alarm back after the restart.
  const del = await post(`${urls()[1]}/v3/kv/deleterange`,
    { key: b64('big/'), range_end: b64('big0') });
  t.is(del.status, 200);
  for (let i = 0; i < 25; i++) {
    t.is((await post(`${urls()[1]}/v3/kv/deleterange`, { key: b64(`none/${i}`) })).status, 200);
  }
  const comp = await post(`${urls()[1]}/v3/kv/compaction`,
    { revision: del.json.header.revision, physical: true });
  t.is(comp.status, 200);
  await waitForConvergence(c);
  for (let i = 0; i < 3; i++) await c.kill(i);
  await Promise.all([0, 1, 2].map((i) => c.start(i)));
  await waitForLeader(c);
  for (const u of urls()) {
    t.deepEqual(await alarmList(u), { status: 200, alarms: expected },
      `alarm list on ${u} after the restart`);
    const put = await post(`${u}/v3/kv/put`, { key: b64('small'), value: b64('v') });
    t.like(put, { status: 429, json: { error: noSpaceText } }, `put on ${u} after the restart`);
  }
  // Disarmed on member 1, not the one that raised it: gone everywhere, writes go on.
  const dis = await post(`${urls()[0]}/v3/maintenance/alarm`,
    { action: 'DEACTIVATE', memberID: quotaId, alarm: 'NOSPACE' });
  t.is(dis.status, 200);
  t.deepEqual(dis.json.alarms, expected);
  for (const u of urls()) {
    t.deepEqual(await alarmList(u), { status: 200, alarms: [] }, `alarm list on ${u}`);
    const put = await post(`${u}/v3/kv/put`, { key: b64('small'), value: b64('v') });
    t.is(put.status, 200, `put on ${u} after the disarm`);
  }
});
