import test from 'ava';
// Tests that compact run serially (before the others): a compaction is global and would cut
// the history other tests read.
import { b64, post, startServer, type TestServer, unb64 } from './helpers/server.js';

// One real server process (worker threads, files with fsync, HTTP on a real port) shared by
// the tests in this file; each test uses its own key prefix.
let srv: TestServer;
test.before(async () => {
  srv = await startServer();
});
test.after.always(async () => {
  await srv?.shutdown();
});

const put = (key: string, value: string, extra: object = {}) =>
  post(`${srv.url}/v3/kv/put`, { key: b64(key), value: b64(value), ...extra });
const range = (body: object) => post(`${srv.url}/v3/kv/range`, body);

test('v3: put then range returns the value with etcd revisions as strings', async (t) => {
  const p = await put('put/a', 'hello');
  t.is(p.status, 200);
  const rev = Number(p.json.header.revision);
  t.true(rev >= 2);
  t.is(typeof p.json.header.revision, 'string');
  const r = await range({ key: b64('put/a') });
  t.is(r.status, 200);
  t.is(r.json.count, '1');
  t.is(unb64(r.json.kvs[0].value), 'hello');
  t.is(r.json.kvs[0].create_revision, String(rev));
  t.is(r.json.kvs[0].mod_revision, String(rev));
  t.is(r.json.kvs[0].version, '1');
  const p2 = await put('put/a', 'again', { prev_kv: true });
  t.is(unb64(p2.json.prev_kv.value), 'hello');
  const r2 = await range({ key: b64('put/a') });
  t.is(r2.json.kvs[0].version, '2');
  t.is(r2.json.kvs[0].create_revision, String(rev));
});

test.serial('v3: a missing key gives an empty answer and delete of nothing keeps the revision',
  async (t) => {
    const r = await range({ key: b64('missing/x') });
    t.is(r.status, 200);
    t.is(r.json.kvs, undefined);
    const before = Number(r.json.header.revision);
    const d = await post(`${srv.url}/v3/kv/deleterange`, { key: b64('missing/x') });
    t.is(d.status, 200);
    t.is(d.json.deleted, undefined);
    t.is(Number(d.json.header.revision), before);
  });

test('v3: prefix range across shards is sorted, limited and counted', async (t) => {
  const keys = Array.from({ length: 20 }, (_, i) => `pfx/${String(i).padStart(2, '0')}`);
  await Promise.all(keys.map((k) => put(k, `v-${k}`)));
  const all = await range({ key: b64('pfx/'), range_end: b64('pfx0') });
  t.is(all.json.count, '20');
  t.deepEqual(all.json.kvs.map((kv: { key: string }) => unb64(kv.key)), keys);
  const lim = await range({ key: b64('pfx/'), range_end: b64('pfx0'), limit: 5 });
  t.deepEqual(lim.json.kvs.map((kv: { key: string }) => unb64(kv.key)), keys.slice(0, 5));
  t.true(lim.json.more);
  t.is(lim.json.count, '20');
  const desc = await range({
    key: b64('pfx/'), range_end: b64('pfx0'), limit: 3, sort_order: 'DESCEND', sort_target: 'KEY',
  });
  t.deepEqual(desc.json.kvs.map((kv: { key: string }) => unb64(kv.key)),
    keys.slice(-3).reverse());
  const keysOnly = await range({ key: b64('pfx/'), range_end: b64('pfx0'), keys_only: true });
  t.is(keysOnly.json.kvs[0].value, undefined);
  const countOnly = await range({ key: b64('pfx/'), range_end: b64('pfx0'), count_only: true });
  t.is(countOnly.json.kvs, undefined);
  t.is(countOnly.json.count, '20');
});

test('v3: txn takes the success or failure branch by its compare', async (t) => {
  await put('txn/k', 'one');
  const body = (value: string) => ({
    compare: [{ key: b64('txn/k'), target: 'VALUE', result: 'EQUAL', value: b64(value) }],
    success: [{ request_put: { key: b64('txn/k'), value: b64('two') } }],
    failure: [{ request_range: { key: b64('txn/k') } }],
  });
  const miss = await post(`${srv.url}/v3/kv/txn`, body('nope'));
  t.is(miss.status, 200);
  t.is(miss.json.succeeded, undefined);
  t.is(unb64(miss.json.responses[0].response_range.kvs[0].value), 'one');
  const hit = await post(`${srv.url}/v3/kv/txn`, body('one'));
  t.true(hit.json.succeeded);
  const r = await range({ key: b64('txn/k') });
  t.is(unb64(r.json.kvs[0].value), 'two');
});

test.serial('v3: reads at past, compacted and future revisions', async (t) => {
  const p1 = await put('hist/k', 'v1');
  const rev1 = Number(p1.json.header.revision);
  await put('hist/k', 'v2');
  const past = await range({ key: b64('hist/k'), revision: rev1 });
  t.is(unb64(past.json.kvs[0].value), 'v1');
  const future = await range({ key: b64('hist/k'), revision: rev1 + 1_000_000 });
  t.is(future.status, 400);
  t.is(future.json.message, 'etcdserver: mvcc: required revision is a future revision');
  const c = await post(`${srv.url}/v3/kv/compaction`, { revision: rev1 + 1 });
  t.is(c.status, 200);
  const compacted = await range({ key: b64('hist/k'), revision: rev1 });
  t.is(compacted.status, 400);
  t.is(compacted.json.message, 'etcdserver: mvcc: required revision has been compacted');
  t.is(compacted.json.code, 11);
});

test('v3: bad requests get a 4xx JSON error and the server keeps serving', async (t) => {
  const bad = await post(`${srv.url}/v3/kv/put`, '{"key": ');
  t.is(bad.status, 400);
  t.is(typeof bad.json.message, 'string');
  const b64bad = await post(`${srv.url}/v3/kv/put`, { key: '***', value: b64('x') });
  t.is(b64bad.status, 400);
  const empty = await post(`${srv.url}/v3/kv/put`, { value: b64('x') });
  t.is(empty.status, 400);
  t.is(empty.json.message, 'etcdserver: key is not provided');
  const tooMany = await post(`${srv.url}/v3/kv/txn`, {
    success: Array.from({ length: 129 }, (_, i) => ({
      request_put: { key: b64(`many/${i}`), value: b64('x') },
    })),
  });
  t.is(tooMany.status, 400);
  t.is(tooMany.json.message, 'etcdserver: too many operations in txn request');
  const none = await range({ key: b64('many/'), range_end: b64('many0') });
  t.is(none.json.kvs, undefined, 'nothing of a refused txn is applied');
  const big = await put('big/k', 'x'.repeat(2 * 1024 * 1024));
  t.true(big.status >= 400 && big.status < 500);
  const ok = await put('after/bad', 'fine');
  t.is(ok.status, 200);
});

test('health, version, status and metrics answer', async (t) => {
  const h = await fetch(`${srv.url}/health`);
  t.is(h.status, 200);
  t.deepEqual(JSON.parse(await h.text()), { health: 'true' });
  const v = await (await fetch(`${srv.url}/version`)).json() as { etcdserver: string };
  t.is(typeof v.etcdserver, 'string');
  const s = await post(`${srv.url}/v3/maintenance/status`, {});
  t.is(s.status, 200);
  t.truthy(s.json.leader);
  const m = await (await fetch(`${srv.url}/metrics`)).text();
  t.regex(m, /etcd_server_has_leader 1/);
  t.regex(m, /myetcd_actor_messages_in_total/);
});

test('v1: put, get, list with a cursor, batch and delete with one envelope', async (t) => {
  const u = srv.url;
  const put = await fetch(`${u}/v1/key/v1/dir/a`, { method: 'PUT', body: '{"value":"hello"}' });
  t.is(put.status, 200);
  const putJson = await put.json() as { ok: boolean; revision: number };
  t.true(putJson.ok);
  const get = await (await fetch(`${u}/v1/key/v1/dir/a`)).json() as
    { ok: boolean; data: { key: string; value: string; version: number } };
  t.deepEqual([get.ok, get.data.key, get.data.value, get.data.version],
    [true, 'v1/dir/a', 'hello', 1]);
  const missing = await fetch(`${u}/v1/key/v1/none`);
  t.is(missing.status, 404);
  t.is((await missing.json() as { error: { code: string } }).error.code, 'KEY_NOT_FOUND');
  const batch = await fetch(`${u}/v1/batch`, {
    method: 'POST',
    body: JSON.stringify({
      ops: ['b', 'c', 'd'].map((k) => ({ op: 'put', key: `v1/dir/${k}`, value: k })),
    }),
  });
  t.is(batch.status, 200);
  const page1 = await (await fetch(`${u}/v1/keys?prefix=v1/dir/&limit=2`)).json() as
    { data: { kvs: { key: string }[]; more: boolean; cursor?: string } };
  t.deepEqual(page1.data.kvs.map((kv) => kv.key), ['v1/dir/a', 'v1/dir/b']);
  t.true(page1.data.more);
  const page2Url = `${u}/v1/keys?prefix=v1/dir/&limit=2&cursor=${
    encodeURIComponent(page1.data.cursor!)}`;
  const page2 = await (await fetch(page2Url)).json() as
    { data: { kvs: { key: string }[]; more: boolean } };
  t.deepEqual(page2.data.kvs.map((kv) => kv.key), ['v1/dir/c', 'v1/dir/d']);
  const del = await (await fetch(`${u}/v1/key/v1/dir/?prefix=true`, { method: 'DELETE' })).json() as
    { data: { deleted: number } };
  t.is(del.data.deleted, 4);
  const bad = await fetch(`${u}/v1/batch`, { method: 'POST', body: '{"ops":[{"put":1}]}' });
  t.is(bad.status, 400);
  t.false((await bad.json() as { ok: boolean }).ok);
});

test('v3: a txn range at a past revision reads history from the shards', async (t) => {
  const p1 = await put('txnhist/k', 'old');
  await put('txnhist/k', 'new');
  const r = await post(`${srv.url}/v3/kv/txn`, {
    success: [{ request_range: { key: b64('txnhist/k'), revision: p1.json.header.revision } }],
  });
  t.is(r.status, 200);
  t.true(r.json.succeeded);
  t.is(unb64(r.json.responses[0].response_range.kvs[0].value), 'old');
});

test.serial('v3: a read right after an acknowledged compaction never sees the compacted revision',
  async (t) => {
    // Regression: a compaction makes no new revision, so a read used to reach a shard before
    // the compaction did and answer from history the client had been told was gone.
    for (let i = 0; i < 30; i++) {
      const a = await put(`race/${i}`, 'a');
      await put(`race/${i}`, 'b');
      const rev = Number(a.json.header.revision);
      const c = await post(`${srv.url}/v3/kv/compaction`, { revision: rev + 1 });
      t.is(c.status, 200);
      const r = await range({ key: b64(`race/${i}`), revision: rev });
      t.is(r.status, 400, `round ${i}: ${JSON.stringify(r.json)}`);
    }
  });

/** rawPost sends a POST whose body is written in the given pieces (each flushed to the
 * socket before the next is written) and resolves with the whole raw answer. */
async function rawPost(path: string, pieces: Buffer[]): Promise<string> {
  const { connect } = await import('node:net');
  const u = new URL(srv.url);
  const length = pieces.reduce((n, p) => n + p.length, 0);
  const sock = connect(Number(u.port), u.hostname);
  sock.setNoDelay(true);
  const chunks: Buffer[] = [];
  const ended = new Promise<string>((resolve, reject) => {
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('error', reject);
    sock.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
  const write = (b: Buffer | string) =>
    new Promise<void>((resolve, reject) => sock.write(b, (e) => (e ? reject(e) : resolve())));
  await write(`POST ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n` +
    `Content-Type: application/json\r\nContent-Length: ${length}\r\n\r\n`);
  for (const p of pieces) {
    await write(p);
    await new Promise((r) => setImmediate(r)); // lets the pieces leave as separate segments
  }
  return ended;
}

test('v3: a body in several pieces reads as in one, a UTF-8 character split between two',
  async (t) => {
    const ok = Buffer.from(JSON.stringify({ key: b64('pieces/a'), value: b64('v') }));
    const whole = await rawPost('/v3/kv/put', [ok]);
    t.regex(whole, /^HTTP\/1\.1 200/);
    const split = await rawPost('/v3/kv/put', [ok.subarray(0, 5), ok.subarray(5, 17),
      ok.subarray(17)]);
    t.regex(split, /^HTTP\/1\.1 200/);
    t.is(unb64((await range({ key: b64('pieces/a') })).json.kvs[0].value), 'v');
    // 'é' is two bytes (c3 a9): cut between them, it must still be read as one character.
    const bad = Buffer.from('  é');
    const one = await rawPost('/v3/kv/put', [bad]);
    const two = await rawPost('/v3/kv/put', [bad.subarray(0, 3), bad.subarray(3)]);
    const body = (raw: string) => raw.slice(raw.indexOf('\r\n\r\n') + 4);
    t.regex(one, /^HTTP\/1\.1 400/);
    // Go's scanner reads bytes and names the first one, c3, as the rune U+00C3.
    t.is(JSON.parse(body(one)).error, 'invalid character \'Ã\' looking for beginning of value');
    t.is(body(two), body(one));
  });
