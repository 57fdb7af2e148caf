import test from 'ava';
import { V1Client, V1Error, type V1WatchResponse } from '../src/client/index.js';
import { keyPath, sseEvents } from '../src/client/v1.js';
import { LeaseTimeline } from './helpers/lease-time.js';
import { startServer, type TestServer } from './helpers/server.js';
import { now, Signal } from './helpers/wait.js';

/** V1Client against the real server (one for this file), through every /v1 route. */

let server: TestServer;
let v1: V1Client;

test.before(async () => {
  server = await startServer();
  v1 = new V1Client(server.url);
});

test.after.always(async () => {
  await server?.shutdown();
});

let n = 0;
/** k makes a key prefix unique to one test, so tests can share the server. */
const k = (s: string) => `v1c/${++n}/${s}`;

test('keyPath keeps slashes and percent-encodes the rest', (t) => {
  t.is(keyPath('app/db host/%x?#'), '/v1/key/app/db%20host/%25x%3F%23');
  t.is(keyPath('/lead'), '/v1/key//lead');
  const e = t.throws(() => keyPath(''), { instanceOf: V1Error });
  t.is(e?.code, 'EMPTY_KEY');
});

test('put, get, getValue and delete keys with / and odd characters', async (t) => {
  const key = k('app/db/host name?#%');
  const p = await v1.put(key, 'héllo');
  t.true(p.revision > 0);
  const g = await v1.get(key);
  t.is(g.kv.key, key);
  t.is(g.kv.value, 'héllo');
  t.is(g.kv.version, 1);
  t.is(g.kv.modRevision, p.revision);
  t.true(g.revision >= p.revision); // the store's revision: other tests write too
  const p2 = await v1.put(key, 'again', { prevKV: true });
  t.is(p2.prevKv?.value, 'héllo');
  t.is((await v1.get(key, { revision: p.revision })).kv.value, 'héllo');
  t.is(await v1.getValue(key), 'again');
  const d = await v1.delete(key, { prevKV: true });
  t.is(d.deleted, 1);
  t.is(d.prevKvs?.[0]?.value, 'again');
  t.is(await v1.getValue(key), undefined);
});

test('errors carry the envelope code and the HTTP status', async (t) => {
  const missing = await t.throwsAsync(v1.get(k('missing')), { instanceOf: V1Error });
  t.is(missing?.code, 'KEY_NOT_FOUND');
  t.is(missing?.status, 404);
  t.is(missing?.message, 'etcdserver: key not found');
  const future = await t.throwsAsync(v1.get(k('x'), { revision: 1e9 }), { instanceOf: V1Error });
  t.is(future?.code, 'FUTURE_REV');
  const bad = await t.throwsAsync(v1.list({ limit: 100_000 }), { instanceOf: V1Error });
  t.is(bad?.code, 'BAD_REQUEST');
  t.is(bad?.status, 400);
  const lease = await t.throwsAsync(v1.leaseInfo(12345), { instanceOf: V1Error });
  t.is(lease?.code, 'LEASE_NOT_FOUND');
  const down = new V1Client({ endpoint: '127.0.0.1:1', timeoutMs: 1_000 });
  const net = await t.throwsAsync(down.get('a'), { instanceOf: V1Error });
  t.true(net?.code === 'NETWORK' || net?.code === 'TIMEOUT');
  t.is(net?.status, 0);
  const r = await fetch(server.url + '/v1/nothing');
  t.is(r.status, 404); // not an envelope: the client says so
  const notV1 = await t.throwsAsync(v1.call('GET', '/v1/nothing'), { instanceOf: V1Error });
  t.is(notV1?.code, 'BAD_RESPONSE');
});

test('delete with prefix removes every key under it', async (t) => {
  const dir = k('dir/');
  await v1.batch(['a', 'b', 'c'].map((s) => ({ op: 'put' as const, key: dir + s, value: s })));
  const d = await v1.delete(dir, { prefix: true });
  t.is(d.deleted, 3);
  t.is((await v1.list({ prefix: dir })).count, 0);
});

test('list pages with a cursor; pages() reads one snapshot across pages', async (t) => {
  const dir = k('list/');
  const keys = Array.from({ length: 25 }, (_, i) => `${dir}${String(i).padStart(2, '0')}`);
  await v1.batch(keys.map((key) => ({ op: 'put' as const, key, value: 'v' + key })));
  const first = await v1.list({ prefix: dir, limit: 10 });
  t.is(first.kvs.length, 10);
  t.is(first.count, 25);
  t.true(first.more);
  t.is(typeof first.cursor, 'string');
  const second = await v1.list({ prefix: dir, limit: 10, cursor: first.cursor! });
  t.is(second.kvs[0]!.key, keys[10]!);
  t.is(second.count, 15);

  const seen: string[] = [];
  let pages = 0;
  for await (const page of v1.pages({ prefix: dir, limit: 10 })) {
    pages++;
    seen.push(...page.kvs.map((kv) => kv.key));
    // A write between pages is not seen: every page is read at the first one's revision.
    if (pages === 1) await v1.put(`${dir}99-late`, 'x');
  }
  t.is(pages, 3);
  t.deepEqual(seen, keys);
  const all: string[] = [];
  for await (const kv of v1.all({ from: keys[20]!, to: `${dir}99`, limit: 2 })) all.push(kv.key);
  t.deepEqual(all, keys.slice(20));
  const keysOnly = await v1.list({ prefix: dir, limit: 1, keysOnly: true });
  t.false('value' in keysOnly.kvs[0]!);
});

test('txn: compare-and-swap succeeds once, then takes the failure branch', async (t) => {
  const lock = k('lock');
  const cfg = k('cfg/');
  await v1.put(cfg + 'a', '1');
  const take = () => v1.txn({
    compare: [{ key: lock, target: 'version', op: '==', value: 0 }],
    success: [{ op: 'put', key: lock, value: 'me' }, { op: 'get', key: cfg, prefix: true }],
    failure: [{ op: 'get', key: lock }],
  });
  const first = await take();
  t.true(first.succeeded);
  t.is(first.responses[0]!.op, 'put');
  const got = first.responses[1]!;
  t.true(got.op === 'get' && got.kvs[0]!.value === '1');
  const second = await take();
  t.false(second.succeeded);
  const held = second.responses[0]!;
  t.true(held.op === 'get' && held.kvs[0]!.value === 'me');
  const byValue = await v1.txn({
    compare: [{ key: lock, target: 'value', value: 'me' }],
    success: [{ op: 'delete', key: lock, prevKV: true }],
  });
  t.true(byValue.succeeded);
  const del = byValue.responses[0]!;
  t.true(del.op === 'delete' && del.deleted === 1 && del.prevKvs?.[0]?.value === 'me');
});

test('batch applies at one revision; a duplicate key is DUPLICATE_KEY', async (t) => {
  const a = k('a');
  const b = k('b');
  await v1.put(b, 'old');
  const r = await v1.batch([
    { op: 'put', key: a, value: '1' },
    { op: 'delete', key: b, prevKV: true },
  ]);
  t.is(r.responses.length, 2);
  t.deepEqual(r.responses[0], { op: 'put' });
  const d = r.responses[1]!;
  t.true(d.op === 'delete' && d.deleted === 1 && d.prevKvs?.[0]?.value === 'old');
  t.is((await v1.get(a)).kv.modRevision, r.revision);
  const dup = await t.throwsAsync(v1.batch([
    { op: 'put', key: a, value: '1' }, { op: 'put', key: a, value: '2' },
  ]), { instanceOf: V1Error });
  t.is(dup?.code, 'DUPLICATE_KEY');
});

test('watch a prefix: puts and deletes in order, with prevKV; close ends it', async (t) => {
  const dir = k('watch/');
  const w = v1.watch(dir, { prefix: true, prevKV: true });
  const got: V1WatchResponse[] = [];
  const reading = (async () => {
    for await (const r of w) {
      got.push(r);
      if (got.flatMap((x) => x.events).length >= 3) w.close();
    }
  })();
  const it = reading.catch((e: unknown) => e);
  // The watch connects when iteration starts; created resolves once it is registered.
  const createdAt = await w.created;
  t.true(createdAt > 0);
  await v1.put(dir + 'x', '1');
  await v1.put(dir + 'x', '2');
  await v1.put(k('elsewhere'), 'not seen');
  await v1.delete(dir + 'x');
  t.is(await it, undefined);
  const events = got.flatMap((r) => r.events);
  t.deepEqual(events.map((e) => [e.type, e.key]), [
    ['PUT', dir + 'x'], ['PUT', dir + 'x'], ['DELETE', dir + 'x'],
  ]);
  t.is(events[0]!.value, '1');
  t.is(events[1]!.prevKv?.value, '1');
  t.is(events[2]!.prevKv?.value, '2');
  t.true(got[0]!.revision > createdAt);
});

test('watch from a start revision replays history', async (t) => {
  const key = k('hist');
  const p1 = await v1.put(key, 'a');
  await v1.put(key, 'b');
  const ctl = new AbortController();
  const values: string[] = [];
  for await (const r of v1.watch(key, { startRevision: p1.revision, signal: ctl.signal })) {
    values.push(...r.events.map((e) => e.value));
    if (values.length >= 2) ctl.abort();
  }
  t.deepEqual(values, ['a', 'b']);
});

test('watch refused: an empty key is EMPTY_KEY from the server', async (t) => {
  const w = v1.watch('');
  const e = await t.throwsAsync(async () => {
    for await (const _ of w) t.fail();
  }, { instanceOf: V1Error });
  t.is(e?.code, 'EMPTY_KEY');
  t.is(e?.status, 400);
});

test('sseEvents parses ids, multi-line data and comments across chunks', async (t) => {
  const text = ': hi\n\nid: 7\ndata: {"a":\ndata: 1}\n\ndata: x\r\n\r\n';
  const enc = new TextEncoder();
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      for (let i = 0; i < text.length; i += 5) c.enqueue(enc.encode(text.slice(i, i + 5)));
      c.close();
    },
  });
  const out = [];
  for await (const e of sseEvents(body)) out.push(e);
  t.deepEqual(out, [{ id: '7', data: '{"a":\n1}' }, { data: 'x' }]);
});

test('leases: grant, info with keys, list, keep-alive, revoke deletes the keys', async (t) => {
  const g = await v1.leaseGrant(30);
  t.true(g.id > 0);
  t.is(g.ttl, 30);
  const key = k('leased');
  await v1.put(key, 'v', { lease: g.id });
  t.is((await v1.get(key)).kv.lease, g.id);
  const info = await v1.leaseInfo(g.id);
  t.is(info.grantedTtl, 30);
  t.true(info.ttl > 0 && info.ttl <= 30);
  t.deepEqual(info.keys, [key]);
  t.true((await v1.leases()).includes(g.id));
  const ka = await v1.leaseKeepAliveOnce(g.id);
  t.deepEqual([ka.id, ka.ttl], [g.id, 30]);
  await v1.leaseRevoke(g.id);
  t.is(await v1.getValue(key), undefined);
  t.false((await v1.leases()).includes(g.id));
  const again = await t.throwsAsync(v1.leaseRevoke(g.id), { instanceOf: V1Error });
  t.is(again?.code, 'LEASE_NOT_FOUND');
  const chosen = await v1.leaseGrant(1, 777_000 + n);
  t.is(chosen.id, 777_000 + n);
  t.is(chosen.ttl, 2); // raised to etcd's minimum
  const exists = await t.throwsAsync(v1.leaseGrant(5, chosen.id), { instanceOf: V1Error });
  t.is(exists?.code, 'LEASE_EXISTS');
  await v1.leaseRevoke(chosen.id);
});

test('keepAlive keeps a 2 s lease past its TTL; after close and revoke it is gone',
  async (t) => {
    // Each keep-alive is sent after the previous answer (or the start): that bounds when the
    // server renewed (helpers/lease-time.ts), so the test knows when the lease is certainly
    // alive. On a machine that stalls for a whole TTL between the grant and the put, the
    // lease may be gone before the put: then it starts over with a new lease.
    const key = k('kept');
    const attach = async (tries: number): Promise<{ g: { id: number; ttl: number };
      tl: LeaseTimeline;
      granted: number; }> => {
      const granted = now();
      const g = await v1.leaseGrant(2);
      const tl = new LeaseTimeline(g.ttl, granted);
      try {
        await v1.put(key, 'alive', { lease: g.id });
        return { g, tl, granted };
      } catch (e) {
        if (tries <= 1 || tl.aliveAt(now())) throw e;
        t.log('the lease expired before the put (a stalled machine): trying again');
        return attach(tries - 1);
      }
    };
    // Renewals past the TTL; a keep-alive that ended first is a failure only if the lease was
    // certainly alive when it started (else the machine stalled a whole TTL: start over).
    const keepPastTtl = async (tries: number) => {
      const { g, tl, granted } = await attach(5);
      const started = now();
      let previous = started;
      let renewals = 0;
      const renewed = new Signal();
      const ka = v1.keepAlive(g.id, {
        ttl: g.ttl,
        onRenew: () => {
          tl.renewed(previous);
          previous = now();
          renewals++;
          renewed.notify();
        },
      });
      t.teardown(() => ka.close());
      let ended = false;
      void ka.done.then(() => {
        ended = true;
        renewed.notify();
      });
      await renewed.until(() => ended || (renewals >= 1 && previous - granted > tl.ttlMs),
        'keep-alives past the TTL');
      if (!ended) return { g, tl, ka };
      if (tries <= 1 || tl.aliveAt(started)) t.fail(`the keep-alive ended: ${await ka.done}`);
      t.log('the lease expired before its first keep-alive (a stalled machine): again');
      return keepPastTtl(tries - 1);
    };
    const { g, tl, ka } = await keepPastTtl(5);
    const value = await v1.getValue(key);
    if (tl.aliveAt(now())) t.is(value, 'alive');
    else t.log('the machine stalled for a whole TTL: not checking that the key is kept');
    // Revoked behind its back: the keep-alive notices and ends with LEASE_NOT_FOUND.
    await v1.leaseRevoke(g.id).catch((e: unknown) => {
      if (tl.aliveAt(now())) throw e; // else it may have expired by itself
    });
    const end = await ka.done;
    const endAt = now();
    t.true(end instanceof V1Error, String(end));
    // It gives up on other errors only once renewals have failed for a whole TTL.
    if ((end as V1Error).code !== 'LEASE_NOT_FOUND') t.false(tl.aliveAt(endAt), String(end));
    t.is(await v1.getValue(key), undefined);
    const closed = v1.keepAlive((await v1.leaseGrant(5)).id);
    closed.close();
    t.is(await closed.done, undefined);
  });

