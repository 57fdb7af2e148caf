import test from 'ava';
import { Client, ClientError, Compare, Op, prefixEnd } from '../src/client/index.js';
import { LeaseTimeline } from './helpers/lease-time.js';
import { startServer, type TestServer } from './helpers/server.js';
import { now, Signal } from './helpers/wait.js';

/**
 * The client against our server (started once for this file). Set CLIENT_TEST_ENDPOINT to
 * run the same tests against another server, e.g. a real etcd 3.4 — what passes there must
 * pass here.
 */

let server: TestServer | undefined;
let endpoint = process.env.CLIENT_TEST_ENDPOINT ?? '';

test.before(async () => {
  if (endpoint === '') {
    server = await startServer();
    endpoint = server.url;
  }
});

test.after.always(async () => {
  await server?.shutdown();
});

const client = () => new Client({ endpoints: [endpoint] });
let n = 0;
/** k makes a key unique to one test, so tests can share the server. */
const k = (s: string) => `client-test/${process.pid}/${++n}/${s}`;

test('client: put then get returns the value with revisions', async (t) => {
  const c = client();
  const key = k('a');
  const p = await c.put(key, 'hello');
  t.true(p.header.revision > 0);
  const r = await c.get(key);
  t.is(r.count, 1);
  t.is(r.kvs[0]!.value.toString(), 'hello');
  t.is(r.kvs[0]!.modRevision, p.header.revision);
  t.is(r.kvs[0]!.version, 1);
  t.is(await c.getString(key), 'hello');
  t.is(await c.getString(k('absent')), undefined);
});

test('client: prefix get, limit, keys-only, count-only and sort', async (t) => {
  const c = client();
  const base = k('p/');
  for (const s of ['a', 'b', 'c']) await c.put(base + s, s.toUpperCase());
  const all = await c.get(base, { prefix: true });
  t.deepEqual(all.kvs.map((kv) => kv.key.toString()), [base + 'a', base + 'b', base + 'c']);
  const lim = await c.get(base, { prefix: true, limit: 2 });
  t.is(lim.kvs.length, 2);
  t.true(lim.more);
  t.is(lim.count, 3);
  const keys = await c.get(base, { prefix: true, keysOnly: true });
  t.true(keys.kvs.every((kv) => kv.value.length === 0));
  const count = await c.get(base, { prefix: true, countOnly: true });
  t.is(count.kvs.length, 0);
  t.is(count.count, 3);
  const desc = await c.get(base, { prefix: true, sortOrder: 'DESCEND' });
  t.is(desc.kvs[0]!.key.toString(), base + 'c');
});

test('client: get at an old revision, and the errors for future and compacted ones', async (t) => {
  const c = client();
  const key = k('rev');
  const first = await c.put(key, 'v1');
  await c.put(key, 'v2');
  const old = await c.get(key, { revision: first.header.revision });
  t.is(old.kvs[0]!.value.toString(), 'v1');
  const future = await t.throwsAsync(c.get(key, { revision: first.header.revision + 1_000_000 }),
    { instanceOf: ClientError });
  t.is(future!.code, 11);
  t.is(future!.status, 400);
  t.is(future!.message, 'etcdserver: mvcc: required revision is a future revision');
});

test('client: put with prevKv, delete with prefix and prevKv', async (t) => {
  const c = client();
  const key = k('d/');
  await c.put(key + '1', 'one');
  const p = await c.put(key + '1', 'uno', { prevKv: true });
  t.is(p.prevKv?.value.toString(), 'one');
  await c.put(key + '2', 'two');
  const d = await c.delete(key, { prefix: true, prevKv: true });
  t.is(d.deleted, 2);
  t.deepEqual(d.prevKvs.map((kv) => kv.value.toString()).sort(), ['two', 'uno']);
  t.is((await c.get(key, { prefix: true })).count, 0);
});

test('client: txn runs the branch its comparisons choose', async (t) => {
  const c = client();
  const key = k('txn');
  const created = await c.txn().if(Compare.version(key, '=', 0))
    .then(Op.put(key, 'mine'), Op.get(key)).else(Op.get(key)).commit();
  t.true(created.succeeded);
  t.is(created.responses.length, 2);
  const got = created.responses[1]!;
  t.is(got.type, 'range');
  if (got.type === 'range') t.is(got.range.kvs[0]!.value.toString(), 'mine');
  const again = await c.txn().if(Compare.version(key, '=', 0))
    .then(Op.put(key, 'theirs')).else(Op.get(key)).commit();
  t.false(again.succeeded);
  t.is(await c.getString(key), 'mine');
  const byValue = await c.txn()
    .if(Compare.value(key, '=', 'mine'), Compare.modRevision(key, '>', 0))
    .then(Op.delete(key)).commit();
  t.true(byValue.succeeded);
  t.is(await c.getString(key), undefined);
});

test.serial('client: compaction, then reading a compacted revision fails with etcd\'s error',
  async (t) => {
  const c = client();
  const key = k('compact');
  const first = await c.put(key, '1');
  const second = await c.put(key, '2');
  await c.compact(second.header.revision);
  const e = await t.throwsAsync(c.get(key, { revision: first.header.revision }),
    { instanceOf: ClientError });
  t.is(e!.code, 11);
  t.is(e!.message, 'etcdserver: mvcc: required revision has been compacted');
});

test('client: status reports the member and revision', async (t) => {
  const s = await client().status();
  t.true(s.header.revision > 0);
  t.not(s.leader, '0');
  t.regex(s.version, /^3\.4\./);
  t.true(s.raftIndex > 0);
});

test('client: fails over to the next endpoint when one refuses connections', async (t) => {
  const c = new Client({ endpoints: ['http://127.0.0.1:3', endpoint] });
  const key = k('failover');
  await c.put(key, 'ok');
  t.is(await c.getString(key), 'ok');
  t.is(c.transport.endpoint, new URL(endpoint).origin);
});

test('client: no endpoint answering gives code 14 Unavailable', async (t) => {
  const c = new Client({ endpoints: ['http://127.0.0.1:3', 'http://127.0.0.1:5'] });
  const e = await t.throwsAsync(c.get('x'), { instanceOf: ClientError });
  t.is(e!.code, 14);
  t.is(e!.codeName, 'Unavailable');
  t.is(e!.status, 0);
});

test('client: prefixEnd follows etcd\'s GetPrefixRangeEnd', (t) => {
  t.deepEqual(prefixEnd('a'), Buffer.from('b'));
  t.deepEqual(prefixEnd(Buffer.from([0x61, 0xff])), Buffer.from('b'));
  t.deepEqual(prefixEnd(Buffer.from([0xff])), Buffer.from([0]));
});

test('client: leases grant, attach, time-to-live, list, keep alive and revoke', async (t) => {
  const c = client();
  const key = k('leased');
  // Each keep-alive is sent after the previous answer: that answer bounds when the server
  // renewed (helpers/lease-time.ts), so the test knows when the lease is certainly alive.
  const granted = now();
  const tl = new LeaseTimeline(2, granted);
  let previous = granted;
  let renewals = 0;
  const renewed = new Signal();
  const l = await c.leaseWithKeepAlive(2, {
    onResponse: () => {
      tl.renewed(previous);
      previous = now();
      renewals++;
      renewed.notify();
    },
  });
  t.teardown(() => l.keepAlive.close());
  t.is(l.ttl, 2);
  await c.put(key, 'v', { lease: l.id });
  t.is((await c.get(key)).kvs[0]!.lease, l.id);
  // Renewed past the TTL: only the keep-alive keeps the key.
  await renewed.until(() => previous - granted > tl.ttlMs, 'keep-alives past the TTL');
  t.true(renewals >= 1);
  const value = await c.getString(key);
  if (tl.aliveAt(now())) t.is(value, 'v');
  else t.log('the machine stalled for a whole TTL: not checking that the key is kept');
  const ttl = await c.leaseTimeToLive(l.id, { keys: true });
  const at = now();
  if (tl.aliveAt(at)) {
    const { lo, hi } = tl.ttlBounds(at);
    t.is(ttl.grantedTtl, 2);
    t.true(ttl.ttl >= lo && ttl.ttl <= hi, `TTL ${ttl.ttl}, between ${lo} and ${hi}`);
    t.deepEqual(ttl.keys.map((b) => b.toString()), [key]);
    t.true((await c.leases()).leases.includes(l.id));
  } else {
    t.log('the machine stalled for a whole TTL: the lease may have expired');
    t.true(ttl.ttl === -1 || ttl.grantedTtl === 2, `TTL ${ttl.ttl} of ${ttl.grantedTtl}`);
  }
  await l.close();
  t.is(await c.getString(key), undefined);
  const gone = await t.throwsAsync(c.leaseRevoke(l.id), { instanceOf: ClientError });
  t.is(gone!.code, 5);
  t.is(gone!.message, 'etcdserver: requested lease not found');
  t.is((await c.leaseTimeToLive(l.id)).ttl, -1);
});

test('client: watch sees puts and deletes with prevKv, and replays from a revision', async (t) => {
  const c = client();
  const base = k('w/');
  const before = await c.put(base + 'old', '0');
  const w = c.watch(base, { prefix: true, prevKv: true });
  const it = w[Symbol.asyncIterator]();
  let pending = it.next(); // connects
  await w.created;
  await c.put(base + 'x', '1');
  await c.put(base + 'x', '2');
  await c.delete(base + 'x');
  const events = [];
  while (events.length < 3) {
    events.push(...(await pending).value.events);
    if (events.length < 3) pending = it.next();
  }
  t.deepEqual(events.map((e) => [e.type, e.kv.key.toString(), e.kv.value.toString(),
    e.prevKv?.value.toString()]), [
    ['PUT', base + 'x', '1', undefined],
    ['PUT', base + 'x', '2', '1'],
    ['DELETE', base + 'x', '', '2'],
  ]);
  w.cancel();
  t.true((await it.next()).done);
  const replay = c.watch(base + 'old', { startRevision: before.header.revision });
  const first = await replay[Symbol.asyncIterator]().next();
  t.is(first.value.events[0].kv.value.toString(), '0');
  replay.cancel();
});
