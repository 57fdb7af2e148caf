import test from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  b64, del, logged, post, put, startServer, type TestServer, unb64, useServer,
} from './helpers/server.js';
import { LineStream, SseStream } from './helpers/streams.js';
import { now } from './helpers/wait.js';

// End to end: the watch hub behind /v3/watch (etcd 3.4's grpc-gateway stream) and /v1/watch
// (Server-Sent Events), against the real server process over real HTTP.

interface Ev { type: 'PUT' | 'DELETE'; key: string; value: string; rev: number; prev?: string }

/** events flattens a response's events. */
function events(r: any): Ev[] {
  return (r.events ?? []).map((e: any) => {
    const ev: Ev = {
      type: e.type === 'DELETE' ? 'DELETE' : 'PUT', key: unb64(e.kv.key), value: unb64(e.kv.value),
      rev: Number(e.kv.mod_revision),
    };
    if (e.prev_kv !== undefined) ev.prev = unb64(e.prev_kv.value);
    return ev;
  });
}

/** collect reads results until `done` says enough, returning every event seen. */
async function collect(s: LineStream, done: (evs: Ev[]) => boolean):
  Promise<{ evs: Ev[]; last: number }> {
  const evs: Ev[] = [];
  let last = 0;
  while (!done(evs)) {
    const r = await s.result();
    const e = events(r);
    if (e.length > 0) last = Number(r.header.revision);
    evs.push(...e);
  }
  return { evs, last };
}

let server: TestServer;
test.before(async () => {
  server = await startServer();
});
test.after.always(async () => {
  await server?.shutdown();
});

test('a watch on one key sees its puts and deletes, with prev_kv, and nothing else', async (t) => {
  const s = new LineStream(server.url, '/v3/watch');
  try {
    const created = await s.create({ key: b64('one/k'), prev_kv: true });
    s.end(); // no more requests: the response stays open (see LineStream.end)
    t.is(s.status, 200);
    t.true(Number(created.header.revision) >= 1);
    t.is(created.watch_id, undefined, 'the first auto id is 0, omitted as jsonpb does');
    const r1 = await put(server.url, 'one/k', 'a');
    await put(server.url, 'one/k2', 'not watched');
    const r2 = await put(server.url, 'one/k', 'b');
    const r3 = await del(server.url, 'one/k');
    const { evs } = await collect(s, (e) => e.length >= 3);
    t.deepEqual(evs, [
      { type: 'PUT', key: 'one/k', value: 'a', rev: r1 },
      { type: 'PUT', key: 'one/k', value: 'b', rev: r2, prev: 'a' },
      // A delete's kv carries the key and the deletion's revision only.
      { type: 'DELETE', key: 'one/k', value: '', rev: r3, prev: 'b' },
    ]);
  } finally {
    s.close();
  }
});

test('a watch on a prefix (range_end) sees every key under it and none outside', async (t) => {
  const s = new LineStream(server.url, '/v3/watch');
  try {
    await s.create({ key: b64('pre/'), range_end: b64('pre0') });
    s.end();
    await put(server.url, 'pre', 'outside');
    await put(server.url, 'pre/a', '1');
    await put(server.url, 'pre0', 'outside');
    await put(server.url, 'pre/b/c', '2');
    await del(server.url, 'pre/a');
    const { evs } = await collect(s, (e) => e.length >= 3);
    t.deepEqual(evs.map((e) => `${e.type} ${e.key}`), ['PUT pre/a', 'PUT pre/b/c', 'DELETE pre/a']);
  } finally {
    s.close();
  }
});

test('several watchers on one stream get their own events under their own ids', async (t) => {
  const s = new LineStream(server.url, '/v3/watch');
  try {
    // Every request first, then the body ends: over HTTP/1.1 a stream is not full duplex for
    // long (docs/watch.md), so the tests read only once they have sent all they will send.
    s.send({ create_request: { key: b64('multi/a') } });
    s.send({ create_request: { key: b64('multi/'), range_end: b64('multi0') } });
    s.send({ create_request: { key: b64('multi/c'), watch_id: 42 } });
    // A taken id is refused as etcd refuses it.
    s.send({ create_request: { key: b64('multi/z'), watch_id: 42 } });
    s.end();
    const [a, b, c, dup] = [await s.result(), await s.result(), await s.result(),
      await s.result()];
    t.true(a.created && b.created && c.created);
    t.is(a.watch_id, undefined);
    t.is(b.watch_id, '1');
    t.is(c.watch_id, '42');
    t.true(dup.created);
    t.true(dup.canceled);
    t.is(dup.watch_id, '-1');
    await put(server.url, 'multi/a', 'x');
    await put(server.url, 'multi/c', 'y');
    const got: string[] = [];
    while (got.length < 4) {
      const r = await s.result();
      for (const e of events(r)) got.push(`${r.watch_id ?? '0'}:${e.key}`);
    }
    t.deepEqual(got.sort(), ['0:multi/a', '1:multi/a', '1:multi/c', '42:multi/c']);
  } finally {
    s.close();
  }
});

test('start_revision replays history, then live events follow with no gap and no duplicate',
  async (t) => {
    const revs: number[] = [];
    for (let i = 0; i < 60; i++) revs.push(await put(server.url, 'hist/k', `v${i}`));
    const s = new LineStream(server.url, '/v3/watch');
    try {
      // Writes keep arriving while the watcher catches up from history.
      const writer = (async () => {
        for (let i = 60; i < 160; i++) revs.push(await put(server.url, 'hist/k', `v${i}`));
      })();
      await s.create({ key: b64('hist/k'), start_revision: revs[10] });
      s.end();
      await writer;
      const want = revs.slice(10);
      const last = want[want.length - 1]!;
      const { evs } = await collect(s, (e) => e.length > 0 && e[e.length - 1]!.rev >= last);
      t.deepEqual(evs.map((e) => e.rev), want);
      t.deepEqual(evs.map((e) => e.value), want.map((_, i) => `v${i + 10}`));
    } finally {
      s.close();
    }
  });

test('filters drop puts (NOPUT) or deletes (NODELETE)', async (t) => {
  const s = new LineStream(server.url, '/v3/watch');
  try {
    await s.create({ key: b64('filt/k'), filters: ['NOPUT'], watch_id: 1 });
    await s.create({ key: b64('filt/k'), filters: ['NODELETE'], watch_id: 2 });
    s.end();
    await put(server.url, 'filt/k', 'a');
    await del(server.url, 'filt/k');
    await put(server.url, 'filt/k', 'b');
    const got: string[] = [];
    while (got.length < 3) {
      const r = await s.result();
      for (const e of events(r)) got.push(`${r.watch_id}:${e.type}:${e.value}`);
    }
    t.deepEqual(got, ['2:PUT:a', '1:DELETE:', '2:PUT:b']);
  } finally {
    s.close();
  }
});

test('cancel_request stops one watcher; the other keeps going', async (t) => {
  const s = new LineStream(server.url, '/v3/watch');
  try {
    s.send({ create_request: { key: b64('cancel/k'), watch_id: 7 } });
    s.send({ create_request: { key: b64('cancel/k'), watch_id: 8 } });
    s.send({ cancel_request: { watch_id: 7 } });
    // A cancel of an unknown id is answered with the reason (etcd 3.4 answers nothing); the
    // stream answers the next request.
    s.send({ cancel_request: { watch_id: 99 } });
    s.send({ progress_request: {} });
    s.end();
    t.true((await s.result()).created);
    t.true((await s.result()).created);
    const c = await s.result();
    t.is(c.watch_id, '7');
    t.true(c.canceled);
    const u = await s.result();
    t.is(u.watch_id, '99');
    t.true(u.canceled);
    t.is(u.cancel_reason, 'mvcc: watcher does not exist');
    const p = await s.result();
    t.is(p.watch_id, '-1');
    t.is(p.events, undefined);
    await put(server.url, 'cancel/k', 'after');
    const r = await s.result();
    t.is(r.watch_id, '8');
    t.deepEqual(events(r).map((e) => e.value), ['after']);
  } finally {
    s.close();
  }
});

test('progress_request is answered with watch_id -1 at the current revision', async (t) => {
  const s = new LineStream(server.url, '/v3/watch');
  try {
    await s.create({ key: b64('progress/k') });
    const rev = await put(server.url, 'progress/other', 'x');
    s.send({ progress_request: {} });
    s.end();
    const p = await s.result();
    t.is(p.watch_id, '-1');
    t.is(p.events, undefined);
    t.true(Number(p.header.revision) >= rev);
  } finally {
    s.close();
  }
});

test('a reconnect from the last header revision + 1 misses nothing and repeats nothing',
  async (t) => {
    let from = (await put(server.url, 'recon/start', 'x')) + 1;
    const revs: number[] = [];
    let stop = false;
    const writer = (async () => {
      for (let i = 0; !stop && i < 400; i++) {
        revs.push(await put(server.url, `recon/${i % 7}`, `v${i}`));
      }
    })();
    const seen: number[] = [];
    // Three connections in turn, each dropped mid-stream.
    for (let round = 0; round < 3; round++) {
      const s = new LineStream(server.url, '/v3/watch');
      try {
        await s.create({ key: b64('recon/'), range_end: b64('recon0'), start_revision: from });
        s.end();
        const { evs, last } = await collect(s, (e) => e.length >= 40);
        seen.push(...evs.map((e) => e.rev));
        from = last + 1;
      } finally {
        s.close();
      }
    }
    stop = true;
    await writer;
    const s = new LineStream(server.url, '/v3/watch');
    try {
      await s.create({ key: b64('recon/'), range_end: b64('recon0'), start_revision: from });
      s.end();
      const last = revs[revs.length - 1]!;
      if (from <= last) {
        const { evs } = await collect(s, (e) => e.length > 0 && e[e.length - 1]!.rev >= last);
        seen.push(...evs.map((e) => e.rev));
      }
    } finally {
      s.close();
    }
    t.deepEqual(seen, revs);
  });

/** followWaitMs bounds the wait for one response while following: a catch-up response holds
 * up to 1,024 events (~5 MB here), longer to read on a loaded machine than a live one. */
const followWaitMs = 120_000;

/**
 * follow reads a watch's events until revision `last`, as a client that reconnects does: if
 * the server cuts the stream, it watches again from the last revision seen + 1 (from `from`
 * if none was seen). Returns every revision seen and how many reconnects it took.
 */
async function follow(what: string, first: LineStream, req: Record<string, unknown>,
  from: number, last: number, opened: LineStream[]):
  Promise<{ revs: number[]; reconnects: number; why: string[] }> {
  const revs: number[] = [];
  const why: string[] = [];
  let s = first;
  let reconnects = 0;
  while (revs.length === 0 || revs[revs.length - 1]! < last) {
    let r: any;
    try {
      r = await s.result(followWaitMs);
    } catch (e) {
      if (!s.ended || reconnects === 20) {
        throw new Error(`${what}: ${(e as Error).message}, after ${revs.length} events up to ` +
          `${revs[revs.length - 1]} of ${from}..${last} and ${reconnects} reconnects`);
      }
      reconnects++;
      why.push(`${(e as Error).message} (${s.endedCleanly ? 'ended' : 'cut'} after ` +
        `${revs.length} events)`);
      s = new LineStream(server.url, '/v3/watch');
      opened.push(s);
      const next = revs.length > 0 ? revs[revs.length - 1]! + 1 : from;
      await s.create({ ...req, start_revision: next });
      s.end();
      continue;
    }
    revs.push(...events(r).map((e) => e.rev));
  }
  return { revs, reconnects, why };
}

/** uwsIdleCutMsMin: uWS cuts a connection after 10 s without progress, checked on uSockets'
 * 4 s timer tick, so never before 8 s (docs/watch.md, "Known limit"). */
const uwsIdleCutMsMin = 8_000;

// Serial, as the other heavy ones: 10 MB through one server beside the concurrent tests
// would slow every other answer for nothing.
test.serial('a client that stops reading loses nothing and does not hold back a fast one',
  async (t) => {
    const req = { key: b64('slow/'), range_end: b64('slow0') };
    const slow = new LineStream(server.url, '/v3/watch');
    const fast = new LineStream(server.url, '/v3/watch');
    const opened = [slow, fast];
    t.teardown(() => {
      for (const s of opened) s.close();
    });
    const from = Number((await slow.create(req)).header.revision) + 1;
    await fast.create(req);
    slow.end();
    fast.end();
    slow.pause();
    const pausedAt = now();
    // 2,400 puts of 4 KiB: ~10 MB, far beyond the socket buffers and the stream's budget.
    const value = 'x'.repeat(4096);
    const revs: number[] = [];
    await Promise.all(Array.from({ length: 8 }, async (_, w) => {
      for (let i = 0; i < 300; i++) revs.push(await put(server.url, `slow/${w}`, value));
    }));
    revs.sort((a, b) => a - b);
    const last = revs[revs.length - 1]!;
    // Regression: a reader slower than the server, catching up this history in responses of
    // ~5 MB, stalled for good: uWS lost writes larger than its cork buffer on a backed-up
    // socket (see streamWriteBytesMax in src/constants.ts).
    const lagging = new LineStream(server.url, '/v3/watch');
    opened.push(lagging);
    lagging.slowDown(5);
    await lagging.create({ ...req, start_revision: from });
    lagging.end();
    const f = await follow('fast', fast, req, from, last, opened);
    t.deepEqual(f.revs, revs, 'the fast watcher saw every put while the slow one slept');
    const l = await follow('slowed', lagging, req, from, last, opened);
    t.deepEqual(l.revs, revs, 'a slow reader caught up the whole history');
    slow.resume();
    const pausedMs = now() - pausedAt;
    const s = await follow('paused', slow, req, from, last, opened);
    t.deepEqual(s.revs, revs, 'the slow watcher caught up without a gap');
    // The server may cut a client that reads nothing, but only after uWS's idle timeout; a
    // reconnect from the last revision + 1 then misses nothing (checked just above).
    if (s.reconnects > 0) {
      t.true(pausedMs >= uwsIdleCutMsMin,
        `the slow stream was cut after a pause of ${Math.round(pausedMs)} ms: ${s.why}`);
    }
    if (s.reconnects + f.reconnects + l.reconnects > 0) {
      t.log(`reconnects: slow ${s.reconnects} (paused ${Math.round(pausedMs)} ms), ` +
        `fast ${f.reconnects}, slowed ${l.reconnects}: ${[...s.why, ...f.why, ...l.why]}`);
    }
  });

test('quiet streams stay open past uWS\'s 10 s idle timeout once the request body has ended',
  async (t) => {
    const s = new LineStream(server.url, '/v3/watch');
    const sse = new SseStream(server.url, { key: 'quiet/k' });
    try {
      await s.create({ key: b64('quiet/k') });
      s.end();
      t.true((await sse.next()).data.created);
      await sleep(12_000); // the subject: time passing on an idle stream
      const rev = await put(server.url, 'quiet/k', 'late');
      t.deepEqual(events(await s.result()).map((e) => e.rev), [rev]);
      t.deepEqual((await sse.next()).data.events.map((e: any) => e.modRevision), [rev]);
    } finally {
      s.close();
      sse.close();
    }
  });

// A request body kept open past streamBodyOpenMsMax ends the stream with an explicit last
// message (uWS would otherwise cut it silently 8-12 s in): test/streams.test.ts checks that.

test('/v1/watch streams Server-Sent Events with UTF-8 keys, prefix, prevKV and startRevision',
  async (t) => {
    const r0 = await put(server.url, 'sse/a', 'zero');
    const sse = new SseStream(server.url, { key: 'sse/', prefix: true, prevKV: true,
      startRevision: r0 });
    try {
      const created = await sse.next();
      t.true(created.data.created);
      t.is(sse.contentType, 'text/event-stream');
      await put(server.url, 'sse/a', 'één');
      await put(server.url, 'ssex', 'outside');
      await del(server.url, 'sse/a');
      const got: unknown[] = [];
      let lastId = '';
      while (got.length < 3) {
        const e = await sse.next();
        for (const ev of e.data.events) {
          got.push([ev.type, ev.key, ev.value, ev.prevKv?.value]);
        }
        if (e.id !== undefined) lastId = e.id;
      }
      t.deepEqual(got, [
        ['PUT', 'sse/a', 'zero', undefined],
        ['PUT', 'sse/a', 'één', 'zero'],
        ['DELETE', 'sse/a', '', 'één'],
      ]);
      sse.close();
      // EventSource's Last-Event-ID resumes after the last event seen.
      await put(server.url, 'sse/b', 'later');
      const again = new SseStream(server.url, { key: 'sse/', prefix: true }, lastId);
      try {
        t.true((await again.next()).data.created);
        const e = await again.next();
        t.deepEqual(e.data.events.map((x: any) => [x.type, x.key, x.value]),
          [['PUT', 'sse/b', 'later']]);
      } finally {
        again.close();
      }
    } finally {
      sse.close();
    }
  });

test('/v1/watch refuses a body without a key', async (t) => {
  const r = await post(`${server.url}/v1/watch`, { prefix: true });
  t.is(r.status, 400);
  t.deepEqual(r.json, { ok: false, error: {
    code: 'EMPTY_KEY', message: 'etcdserver: key is not provided' } });
});

test('a watch from a compacted revision is canceled with compact_revision', async (t) => {
  // Its own server: compaction would cut the history the other tests replay.
  const srv = await useServer(t);
  const r1 = await put(srv.url, 'c/k', '1');
  await put(srv.url, 'c/k', '2');
  const r3 = await put(srv.url, 'c/k', '3');
  const c = await post(`${srv.url}/v3/kv/compaction`, { revision: r3 });
  t.is(c.status, 200);
  const s = new LineStream(srv.url, '/v3/watch');
  t.teardown(() => s.close());
  s.send({ create_request: { key: b64('c/k'), start_revision: r1 } });
  // etcd 3.4 answers created first, then the cancellation.
  const rs = [await s.result()];
  if (rs[0].canceled !== true) rs.push(await s.result());
  const cancel = rs[rs.length - 1];
  t.true(cancel.canceled);
  t.is(cancel.compact_revision, String(r3));
  t.is(cancel.events, undefined);
  // At the compact revision itself the watch is served.
  const ok = await s.create({ key: b64('c/k'), start_revision: r3, watch_id: 5 });
  s.end();
  t.is(ok.canceled, undefined);
  const r = await s.result();
  t.deepEqual(events(r).map((e) => [e.rev, e.value]), [[r3, '3']]);
});

test.serial('1,000 concurrent watch streams each receive a put', async (t) => {
  const srv = await useServer(t);
  const n = 1000;
  const streams: LineStream[] = [];
  t.teardown(() => {
    for (const s of streams) s.close();
  });
  for (let i = 0; i < n; i++) streams.push(new LineStream(srv.url, '/v3/watch'));
  for (const [i, s] of streams.entries()) {
    s.send({ create_request: { key: b64(`fan/${i % 10}`) } });
    s.end();
  }
  for (const s of streams) t.true((await s.result()).created);
  const revs: number[] = [];
  for (let k = 0; k < 10; k++) revs.push(await put(srv.url, `fan/${k}`, `v${k}`));
  let ok = 0;
  for (const [i, s] of streams.entries()) {
    const evs = events(await s.result());
    if (evs.length === 1 && evs[0]!.key === `fan/${i % 10}` && evs[0]!.rev === revs[i % 10]) ok++;
  }
  t.is(ok, n);
});

test('SIGTERM with watch streams open ends them and exits 0', async (t) => {
  const srv = await useServer(t);
  const s = new LineStream(srv.url, '/v3/watch');
  const open = new LineStream(srv.url, '/v3/watch');
  const sse = new SseStream(srv.url, { key: 'bye' });
  t.teardown(() => {
    s.close();
    open.close();
    sse.close();
  });
  await s.create({ key: b64('bye') });
  s.end();
  await open.create({ key: b64('bye') }); // its request body stays open
  t.true((await sse.next()).data.created);
  // stop() fails the test if the shutdown hangs (e.g. waiting for the open streams).
  t.is(await srv.stop(), 0);
  await Promise.all([s.waitEnd(), open.waitEnd(), sse.waitEnd()]);
  // Ended by the server with the final chunk, not cut by the process exiting. (A stream whose
  // request body is still open is seen cut, without the final chunk.)
  t.true(s.endedCleanly, 'the watch stream was ended by the server');
  t.true(sse.endedCleanly, 'the event stream was ended by the server');
  t.true(open.ended);
});

// Serial: it needs the hub with no watchers at all (serial tests run before the others).
test.serial('with no watchers the hub stops following the log; the next watcher misses nothing',
  async (t) => {
    const first = new LineStream(server.url, '/v3/watch');
    await first.create({ key: b64('idle/a') });
    first.end();
    const r1 = await put(server.url, 'idle/a', '1');
    t.deepEqual(events(await first.result()).map((e) => e.rev), [r1]);
    first.close();
    // The hub now has no watcher and unsubscribes; these revisions never reach it live. (The
    // pause only makes that path likely: what is asserted holds either way.)
    await sleep(200);
    const r2 = await put(server.url, 'idle/a', '2');
    const r3 = await put(server.url, 'idle/a', '3');
    const second = new LineStream(server.url, '/v3/watch');
    await second.create({ key: b64('idle/a'), start_revision: String(r2) });
    second.end();
    const r4 = await put(server.url, 'idle/a', '4');
    const { evs } = await collect(second, (e) => e.length >= 3);
    t.deepEqual(evs.map((e) => [e.rev, e.value]), [[r2, '2'], [r3, '3'], [r4, '4']]);
    second.close();
  });

test('with several client URLs, the watches of every listener get their events', async (t) => {
  const srv = await startServer({ args: ['--listen-client-urls',
    'http://127.0.0.1:0,http://127.0.0.2:0'] });
  t.teardown(() => srv.shutdown());
  const urls = logged(srv, 'ready to serve client requests').map((l) => l['url'] as string);
  t.is(urls.length, 2);
  // Two streams on each listener: their stream ids must not collide either.
  const all = [...urls, ...urls].map((u) => new LineStream(u, '/v3/watch'));
  try {
    for (const s of all) {
      await s.create({ key: b64('multi/k') });
      s.end();
    }
    const rev = await put(urls[0]!, 'multi/k', 'v');
    for (const s of all) {
      const { evs } = await collect(s, (e) => e.length >= 1);
      t.deepEqual(evs, [{ type: 'PUT', key: 'multi/k', value: 'v', rev }]);
    }
  } finally {
    for (const s of all) s.close();
  }
});

test('--experimental-watch-progress-notify-interval: an idle progress_notify watcher is told ' +
  'the revision, a plain one is not', async (t) => {
  const srv = await useServer(t, {
    args: ['--experimental-watch-progress-notify-interval', '200ms'],
  });
  await put(srv.url, 'pn/a', 'x');
  const notified = new LineStream(srv.url, '/v3/watch');
  const plain = new LineStream(srv.url, '/v3/watch');
  t.teardown(() => {
    notified.close();
    plain.close();
  });
  await plain.create({ key: b64('pn/a') });
  plain.end();
  const created = await notified.create({ key: b64('pn/a'), progress_notify: true });
  notified.end();
  // The next results are progress notifications: no events, the member's revision.
  for (let i = 0; i < 2; i++) {
    const r = await notified.result();
    t.deepEqual(events(r), []);
    t.is(r.header.revision, created.header.revision);
  }
  // The plain watcher got nothing meanwhile: its first result is the next put's event.
  await put(srv.url, 'pn/a', 'y');
  t.deepEqual(events(await plain.result()).map((e) => e.value), ['y']);
});
