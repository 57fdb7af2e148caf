import test from 'ava';
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { Client } from '../src/client/index.js';
import { chunk, httpRequest, StrictChunkReader } from './helpers/chunked-reader.js';
import { b64, post, startServer, type TestServer, unb64 } from './helpers/server.js';

// Every message of every streamed response must be on the wire complete — data and the CRLF
// that ends its chunk — as soon as it is written (issue 10, docs/streams.md). The reader here
// is strict (a chunk counts only once its CRLF has arrived, as in Python's urllib3) and each
// test makes NO other write between the change it makes and the message it waits for: a
// server that sent a chunk's CRLF only with the next chunk would never deliver it, and the
// test fails at its (generous) timeout. Latencies are logged, never asserted.

/** waitMs bounds every wait: far above any real delivery, so that only a message that never
 * comes fails a test. */
const waitMs = 20_000;

let srv: TestServer;
const readers: StrictChunkReader[] = [];

test.before(async () => {
  srv = await startServer();
});

test.after.always(async () => {
  for (const r of readers) r.close();
  await srv?.stop();
  await srv?.cleanup();
});

async function open(request: string): Promise<StrictChunkReader> {
  const r = await StrictChunkReader.open(srv.url, request);
  readers.push(r);
  return r;
}

const watchBody = (key: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ create_request: { key: b64(key), ...extra } });

async function put(key: string, value: string): Promise<number> {
  const r = await post(`${srv.url}/v3/kv/put`, { key: b64(key), value: b64(value) });
  if (r.status !== 200) throw new Error(`put: ${r.status} ${JSON.stringify(r.json)}`);
  return Number(r.json.header.revision);
}

interface Result {
  result?: { created?: boolean; events?: { type?: string; kv: { key: string; value?: string;
    mod_revision: string } }[]; header: { revision: string } };
  error?: { grpc_code: number; http_code: number; message: string };
}

test('/v3/watch: each event of a quiet key is a complete chunk at once', async (t) => {
  const r = await open(httpRequest('POST', '/v3/watch', watchBody('quiet/a')));
  const created = JSON.parse((await r.nextMessage(waitMs))!) as Result;
  t.is(r.status, 200);
  t.is(r.headers['content-type'], 'application/json');
  t.true(created.result?.created);
  for (const value of ['one', 'two', 'three']) {
    const t0 = performance.now();
    const rev = await put('quiet/a', value);
    const m = JSON.parse((await r.nextMessage(waitMs))!) as Result;
    t.log(`${value}: the event arrived ${(performance.now() - t0).toFixed(1)} ms after the put`);
    t.is(m.result?.events?.length, 1);
    t.is(unb64(m.result!.events![0]!.kv.value), value);
    t.is(Number(m.result!.events![0]!.kv.mod_revision), rev);
  }
  const del = await post(`${srv.url}/v3/kv/deleterange`, { key: b64('quiet/a') });
  t.is(del.status, 200);
  const m = JSON.parse((await r.nextMessage(waitMs))!) as Result;
  t.is(m.result?.events?.[0]?.type, 'DELETE');
});

test('/v3/watch: history replay ends with its last event complete, then live events follow',
  async (t) => {
    const first = await put('replay/k', 'v1');
    const second = await put('replay/k', 'v2');
    const last = await put('replay/k', 'v3');
    const r = await open(httpRequest('POST', '/v3/watch',
      watchBody('replay/k', { start_revision: String(first) })));
    const seen: number[] = [];
    while (seen.at(-1) !== last) {
      const m = JSON.parse((await r.nextMessage(waitMs))!) as Result;
      for (const e of m.result?.events ?? []) seen.push(Number(e.kv.mod_revision));
    }
    t.deepEqual(seen, [first, second, last]);
    const live = await put('replay/k', 'v4');
    const m = JSON.parse((await r.nextMessage(waitMs))!) as Result;
    t.is(Number(m.result?.events?.[0]?.kv.mod_revision), live);
  });

test('/v3/lease/keepalive: each answer is a complete chunk while the request body stays open',
  async (t) => {
    const g = await post(`${srv.url}/v3/lease/grant`, { TTL: 60 });
    const id = g.json.ID as string;
    const r = await open(httpRequest('POST', '/v3/lease/keepalive', '', {
      'Transfer-Encoding': 'chunked',
    }).replace('Content-Length: 0\r\n', ''));
    for (let i = 0; i < 2; i++) {
      r.socket.write(chunk(JSON.stringify({ ID: id })));
      const m = JSON.parse((await r.nextMessage(waitMs))!) as { result: { ID: string;
        TTL: string } };
      t.is(m.result.ID, id);
      t.is(m.result.TTL, '60');
    }
    r.socket.write(chunk(''));
    t.is(await r.nextMessage(waitMs), undefined, 'the response ends with the request body');
    t.true(r.ended);
  });

test('/v1/watch (POST body and GET query): each Server-Sent Event is a complete chunk at once',
  async (t) => {
    const streams = [
      await open(httpRequest('POST', '/v1/watch', JSON.stringify({ key: 'sse/a' }))),
      await open(httpRequest('GET', '/v1/watch?key=sse%2Fa')),
    ];
    for (const r of streams) {
      t.is(await r.nextMessage(waitMs), ': watching\n\n');
      t.is(r.headers['content-type'], 'text/event-stream');
      t.regex((await r.nextMessage(waitMs))!,
        /^data: \{"revision":\d+,("watchId":\d+,)?"created":true/);
    }
    for (const value of ['x', 'y']) {
      const rev = await put('sse/a', value);
      for (const r of streams) {
        const m = (await r.nextMessage(waitMs))!;
        t.is(m.split('\n')[0], `id: ${rev}`);
        const data = JSON.parse(m.split('\n')[1]!.slice('data: '.length)) as {
          events: { key: string; value: string }[] };
        t.deepEqual(data.events.map((e) => [e.key, e.value]), [['sse/a', value]]);
      }
    }
  });

test('Node\'s strict HTTP parser (llhttp) and the SDK read every stream, event by event',
  async (t) => {
    // A Node request that collects lines; llhttp refuses invalid framing (e.g. Content-Length
    // beside Transfer-Encoding) with an error, which fails the test.
    const lines = (method: string, path: string, body?: string) => {
      const got: string[] = [];
      let failure: Error | undefined;
      let wake: (() => void) | undefined;
      const req = http.request(`${srv.url}${path}`, { method }, (res) => {
        if (res.statusCode !== 200 || res.headers['transfer-encoding'] !== 'chunked') {
          failure = new Error(`${path}: ${res.statusCode} ${JSON.stringify(res.headers)}`);
        }
        res.setEncoding('utf8');
        let buf = '';
        res.on('data', (d: string) => {
          buf += d;
          let i;
          while ((i = buf.indexOf('\n')) >= 0) {
            if (buf.slice(0, i).trim() !== '') got.push(buf.slice(0, i));
            buf = buf.slice(i + 1);
          }
          wake?.();
        });
      });
      req.on('error', (e) => {
        failure ??= e;
      });
      req.end(body);
      const until = async (pred: (l: string) => boolean) => {
        const deadline = Date.now() + waitMs;
        while (!got.some(pred)) {
          if (failure !== undefined) throw failure;
          if (Date.now() > deadline) throw new Error(`no matching line in ${got.join('\n')}`);
          await new Promise<void>((r) => {
            wake = r;
            setTimeout(r, 200);
          });
        }
      };
      return { req, until };
    };
    const v3 = lines('POST', '/v3/watch', watchBody('llhttp/a'));
    const v1 = lines('GET', '/v1/watch?key=llhttp%2Fa');
    await v3.until((l) => l.includes('"created":true'));
    await v1.until((l) => l.includes('"created":true'));
    const client = new Client({ endpoints: [srv.url] });
    const watcher = client.watch('llhttp/a');
    const it = watcher[Symbol.asyncIterator]();
    const first = it.next();
    await watcher.created;
    await put('llhttp/a', 'v');
    await v3.until((l) => l.includes(`"value":"${b64('v')}"`));
    await v1.until((l) => l.includes('"value":"v"'));
    const r = await first;
    t.is(r.value?.events[0]?.kv.value.toString(), 'v');
    watcher.cancel();
    v3.req.destroy();
    v1.req.destroy();
  });

test('a client that stops reading gets every event once it reads again, with no later write',
  async (t) => {
    // More than the kernel can hold for a client that reads nothing (the server's send buffer
    // at its maximum plus the client's receive buffer, which does not grow while unread), so
    // part of it waits in uWS's own buffer and must be flushed when the socket drains.
    const sysctl = (name: string) => readFileSync(`/proc/sys/net/ipv4/${name}`, 'utf8')
      .trim().split(/\s+/).map(Number);
    const bytesNeeded = sysctl('tcp_wmem')[2]! + 4 * sysctl('tcp_rmem')[1]! + (4 << 20);
    const valueBytes = 1 << 20;
    const puts = Math.ceil(bytesNeeded / valueBytes);
    const r = await open(httpRequest('POST', '/v3/watch', watchBody('slow/a')));
    t.true((JSON.parse((await r.nextMessage(waitMs))!) as Result).result?.created);
    r.socket.pause();
    let last = 0;
    for (let i = 0; i < puts; i++) last = await put('slow/a', String(i % 10).repeat(valueBytes));
    r.socket.resume();
    let seen = 0;
    let rev = 0;
    while (rev !== last) {
      const m = JSON.parse((await r.nextMessage(waitMs))!) as Result;
      for (const e of m.result?.events ?? []) {
        seen++;
        rev = Number(e.kv.mod_revision);
      }
    }
    t.is(seen, puts);
    t.log(`${puts} events of ${valueBytes} bytes while the client was paused`);
  });

test('a request body left open gets a last error message and a complete end of response',
  async (t) => {
    // uWS closes a connection whose request body is still streaming 8–12 s after the request
    // (its slowloris guard); the server ends such a stream first, with an explicit error.
    const chunkedRequest = (path: string) => httpRequest('POST', path, '', {
      'Transfer-Encoding': 'chunked',
    }).replace('Content-Length: 0\r\n', '');
    const watch = await open(chunkedRequest('/v3/watch'));
    watch.socket.write(chunk(watchBody('open/a')));
    const g = await post(`${srv.url}/v3/lease/grant`, { TTL: 60 });
    const keepalive = await open(chunkedRequest('/v3/lease/keepalive'));
    keepalive.socket.write(chunk(JSON.stringify({ ID: g.json.ID })));
    t.true((JSON.parse((await watch.nextMessage(waitMs))!) as Result).result?.created);
    t.is((JSON.parse((await keepalive.nextMessage(waitMs))!) as Result & { result: { ID: string }
    }).result.ID, g.json.ID);
    for (const r of [watch, keepalive]) {
      const m = JSON.parse((await r.nextMessage(waitMs))!) as Result;
      t.is(m.error?.grpc_code, 14);
      t.is(m.error?.http_code, 503);
      t.regex(m.error?.message ?? '', /request body still open after \d+ s/);
      t.is(await r.nextMessage(waitMs), undefined);
      t.true(r.ended, 'the response ends with its last chunk, not a cut connection');
    }
  });
