import test from 'ava';
import http from 'node:http';
import { b64, post, startServer, type TestServer, unb64 } from './helpers/server.js';

// End to end: the watch hub behind /v3/watch (etcd 3.4's grpc-gateway stream) and /v1/watch
// (Server-Sent Events), against the real server process over real HTTP.

/** LineStream is one streaming HTTP request: JSON objects written as the test goes, one
 * JSON answer per line read as they arrive. */
class LineStream {
  status = 0;
  ended = false;
  private readonly req: http.ClientRequest;
  private readonly queue: any[] = [];
  private wake: (() => void) | undefined;
  private buf = '';
  private res: http.IncomingMessage | undefined;

  constructor(url: string, path: string) {
    this.req = http.request(new URL(path, url), {
      method: 'POST', agent: false,
      headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
    });
    this.req.on('response', (res) => {
      this.res = res;
      this.status = res.statusCode ?? 0;
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        this.buf += d;
        let i;
        while ((i = this.buf.indexOf('\n')) >= 0) {
          const line = this.buf.slice(0, i).trim();
          this.buf = this.buf.slice(i + 1);
          if (line !== '') this.queue.push(JSON.parse(line));
        }
        this.wake?.();
      });
      const done = () => {
        if (this.buf.trim() !== '') this.queue.push(JSON.parse(this.buf));
        this.buf = '';
        this.ended = true;
        this.wake?.();
      };
      res.on('end', done);
      res.on('close', done);
      res.on('error', done);
    });
    this.req.on('error', () => {
      this.ended = true;
      this.wake?.();
    });
    this.req.flushHeaders();
  }

  send(o: unknown): void {
    this.req.write(JSON.stringify(o));
  }

  /** end finishes the request body: no more requests on this stream. The response stays
   * open. (A body left open is cut by uWS ~10 s after it opened: see docs/watch.md.) */
  end(): void {
    this.req.end();
  }

  /** pause stops reading the socket (a slow client); resume reads again. */
  pause(): void {
    this.res?.pause();
  }
  resume(): void {
    this.res?.resume();
  }

  /** next is the next answer line (the whole object, `{"result":…}` or `{"error":…}`). */
  async next(timeoutMs = 15_000): Promise<any> {
    const deadline = Date.now() + timeoutMs;
    while (this.queue.length === 0) {
      if (this.ended) throw new Error('stream ended');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('timed out waiting for a watch response');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.wake = undefined;
    }
    return this.queue.shift();
  }

  /** result is the next WatchResponse. */
  async result(timeoutMs?: number): Promise<any> {
    const o = await this.next(timeoutMs);
    if (o.result === undefined) throw new Error(`not a result: ${JSON.stringify(o)}`);
    return o.result;
  }

  /** create sends a create_request and returns its `created` answer. */
  async create(req: Record<string, unknown>): Promise<any> {
    this.send({ create_request: req });
    const r = await this.result();
    if (r.created !== true) throw new Error(`expected created: ${JSON.stringify(r)}`);
    return r;
  }

  /** waitEnd resolves once the server ended the response. */
  async waitEnd(timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.ended) {
      if (Date.now() > deadline) throw new Error('stream did not end');
      try {
        await this.next(Math.max(1, deadline - Date.now()));
      } catch {
        // ended or timed out: the loop decides
      }
    }
  }

  close(): void {
    this.req.destroy();
  }
}

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

async function put(url: string, key: string, value: string, extra: object = {}): Promise<number> {
  const r = await post(`${url}/v3/kv/put`, { key: b64(key), value: b64(value), ...extra });
  if (r.status !== 200) throw new Error(`put ${key}: ${r.status} ${JSON.stringify(r.json)}`);
  return Number(r.json.header.revision);
}

async function del(url: string, key: string): Promise<number> {
  const r = await post(`${url}/v3/kv/deleterange`, { key: b64(key) });
  if (r.status !== 200) throw new Error(`delete ${key}: ${r.status}`);
  return Number(r.json.header.revision);
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
  await server?.stop();
  await server?.cleanup();
});

test('a watch on one key sees its puts and deletes, with prev_kv, and nothing else', async (t) => {
  const s = new LineStream(server.url, '/v3/watch');
  try {
    const created = await s.create({ key: b64('one/k'), prev_kv: true });
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
    const a = await s.create({ key: b64('multi/a') });
    const b = await s.create({ key: b64('multi/'), range_end: b64('multi0') });
    const c = await s.create({ key: b64('multi/c'), watch_id: 42 });
    t.is(a.watch_id, undefined);
    t.is(b.watch_id, '1');
    t.is(c.watch_id, '42');
    await put(server.url, 'multi/a', 'x');
    await put(server.url, 'multi/c', 'y');
    const got: string[] = [];
    while (got.length < 4) {
      const r = await s.result();
      for (const e of events(r)) got.push(`${r.watch_id ?? '0'}:${e.key}`);
    }
    t.deepEqual(got.sort(), ['0:multi/a', '1:multi/a', '1:multi/c', '42:multi/c']);
    // A taken id is refused as etcd refuses it.
    s.send({ create_request: { key: b64('multi/z'), watch_id: 42 } });
    const dup = await s.result();
    t.true(dup.created);
    t.true(dup.canceled);
    t.is(dup.watch_id, '-1');
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
    await s.create({ key: b64('cancel/k'), watch_id: 7 });
    await s.create({ key: b64('cancel/k'), watch_id: 8 });
    s.send({ cancel_request: { watch_id: 7 } });
    const c = await s.result();
    t.is(c.watch_id, '7');
    t.true(c.canceled);
    await put(server.url, 'cancel/k', 'after');
    const r = await s.result();
    t.is(r.watch_id, '8');
    t.deepEqual(events(r).map((e) => e.value), ['after']);
    // A cancel of an unknown id is ignored; the stream answers the next request.
    s.send({ cancel_request: { watch_id: 99 } });
    s.send({ progress_request: {} });
    const p = await s.result();
    t.is(p.watch_id, '-1');
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

test('a client that stops reading loses nothing and does not hold back a fast one', async (t) => {
  const slow = new LineStream(server.url, '/v3/watch');
  const fast = new LineStream(server.url, '/v3/watch');
  try {
    await slow.create({ key: b64('slow/'), range_end: b64('slow0') });
    await fast.create({ key: b64('slow/'), range_end: b64('slow0') });
    slow.end();
    fast.end();
    slow.pause();
    // 2,400 puts of 4 KiB: ~10 MB, far beyond the socket buffers and the stream's budget.
    const value = 'x'.repeat(4096);
    const revs: number[] = [];
    await Promise.all(Array.from({ length: 8 }, async (_, w) => {
      for (let i = 0; i < 300; i++) revs.push(await put(server.url, `slow/${w}`, value));
    }));
    revs.sort((a, b) => a - b);
    const last = revs[revs.length - 1]!;
    const f = await collect(fast, (e) => e.length > 0 && e[e.length - 1]!.rev >= last);
    t.deepEqual(f.evs.map((e) => e.rev), revs,
      'the fast watcher saw every put while the slow one slept');
    slow.resume();
    const s = await collect(slow, (e) => e.length > 0 && e[e.length - 1]!.rev >= last);
    t.deepEqual(s.evs.map((e) => e.rev), revs, 'the slow watcher caught up without a gap');
  } finally {
    slow.close();
    fast.close();
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
      await new Promise((r) => setTimeout(r, 12_000));
      const rev = await put(server.url, 'quiet/k', 'late');
      t.deepEqual(events(await s.result()).map((e) => e.rev), [rev]);
      t.deepEqual((await sse.next()).data.events.map((e: any) => e.modRevision), [rev]);
    } finally {
      s.close();
      sse.close();
    }
  });

// KNOWN BUG (uWebSockets.js): while a request body is still streaming, uWS resets its 10 s
// timeout only after 160 KB more arrive (its slowloris guard, HTTP_RECEIVE_THROUGHPUT_BYTES),
// so a stream kept open for more requests is cut ~10 s after it opened, whatever flows.
// Fixing it needs the streaming routes off uWS (see docs/watch.md); this then passes.
test.failing('a stream whose request body stays open survives 12 s (uWS cuts it)', async (t) => {
  const s = new LineStream(server.url, '/v3/watch');
  try {
    await s.create({ key: b64('open/k') });
    for (let i = 0; i < 4; i++) {
      await new Promise((r) => setTimeout(r, 3_000));
      s.send({ progress_request: {} });
      t.is((await s.result()).watch_id, '-1');
    }
  } finally {
    s.close();
  }
});

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
  const srv = await startServer();
  const s = new LineStream(srv.url, '/v3/watch');
  try {
    const r1 = await put(srv.url, 'c/k', '1');
    await put(srv.url, 'c/k', '2');
    const r3 = await put(srv.url, 'c/k', '3');
    const c = await post(`${srv.url}/v3/kv/compaction`, { revision: r3 });
    t.is(c.status, 200);
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
    t.is(ok.canceled, undefined);
    const r = await s.result();
    t.deepEqual(events(r).map((e) => [e.rev, e.value]), [[r3, '3']]);
  } finally {
    s.close();
    await srv.stop();
    await srv.cleanup();
  }
});

test('1,000 concurrent watch streams each receive a put', async (t) => {
  const srv = await startServer();
  const n = 1000;
  const streams: LineStream[] = [];
  try {
    for (let i = 0; i < n; i++) streams.push(new LineStream(srv.url, '/v3/watch'));
    for (const [i, s] of streams.entries()) {
      s.send({ create_request: { key: b64(`fan/${i % 10}`) } });
      s.end();
    }
    for (const s of streams) t.true((await s.result(30_000)).created);
    const revs: number[] = [];
    for (let k = 0; k < 10; k++) revs.push(await put(srv.url, `fan/${k}`, `v${k}`));
    let ok = 0;
    for (const [i, s] of streams.entries()) {
      const evs = events(await s.result(30_000));
      if (evs.length === 1 && evs[0]!.key === `fan/${i % 10}` && evs[0]!.rev === revs[i % 10]) ok++;
    }
    t.is(ok, n);
  } finally {
    for (const s of streams) s.close();
    await srv.stop();
    await srv.cleanup();
  }
});

test('SIGTERM with watch streams open ends them and exits 0', async (t) => {
  const srv = await startServer();
  const s = new LineStream(srv.url, '/v3/watch');
  const sse = new SseStream(srv.url, { key: 'bye' });
  try {
    await s.create({ key: b64('bye') });
    t.true((await sse.next()).data.created);
    const t0 = Date.now();
    t.is(await srv.stop(), 0);
    t.true(Date.now() - t0 < 10_000, 'the shutdown waited for the open streams');
    await s.waitEnd();
    t.true(s.ended);
  } finally {
    s.close();
    sse.close();
    await srv.cleanup();
  }
});

/** SseStream reads a /v1/watch response event by event. */
class SseStream {
  contentType = '';
  private readonly req: http.ClientRequest;
  private readonly queue: { id?: string; data: any }[] = [];
  private wake: (() => void) | undefined;
  private buf = '';
  private ended = false;

  constructor(url: string, body: unknown, lastEventId?: string) {
    this.req = http.request(new URL('/v1/watch', url), {
      method: 'POST', agent: false,
      headers: {
        'content-type': 'application/json',
        ...(lastEventId !== undefined ? { 'last-event-id': lastEventId } : {}),
      },
    });
    this.req.on('response', (res) => {
      this.contentType = String(res.headers['content-type'] ?? '');
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        this.buf += d;
        let i;
        while ((i = this.buf.indexOf('\n\n')) >= 0) {
          const block = this.buf.slice(0, i);
          this.buf = this.buf.slice(i + 2);
          const ev: { id?: string; data?: any } = {};
          for (const line of block.split('\n')) {
            if (line.startsWith('id: ')) ev.id = line.slice(4);
            else if (line.startsWith('data: ')) ev.data = JSON.parse(line.slice(6));
          }
          if (ev.data !== undefined) this.queue.push(ev as { id?: string; data: any });
        }
        this.wake?.();
      });
      res.on('close', () => {
        this.ended = true;
        this.wake?.();
      });
    });
    this.req.on('error', () => {
      this.ended = true;
      this.wake?.();
    });
    this.req.end(JSON.stringify(body));
  }

  async next(timeoutMs = 15_000): Promise<{ id?: string; data: any }> {
    const deadline = Date.now() + timeoutMs;
    while (this.queue.length === 0) {
      if (this.ended) throw new Error('stream ended');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('timed out waiting for an event');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.wake = undefined;
    }
    return this.queue.shift()!;
  }

  close(): void {
    this.req.destroy();
  }
}

// Serial: it needs the hub with no watchers at all (serial tests run before the others).
test.serial('with no watchers the hub stops following the log; the next watcher misses nothing',
  async (t) => {
    const first = new LineStream(server.url, '/v3/watch');
    await first.create({ key: b64('idle/a') });
    first.end();
    const r1 = await put(server.url, 'idle/a', '1');
    t.deepEqual(events(await first.result()).map((e) => e.rev), [r1]);
    first.close();
    // The hub now has no watcher and unsubscribes; these revisions never reach it live.
    await new Promise((r) => setTimeout(r, 200));
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
