import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import http2 from 'node:http2';
import net from 'node:net';
import { AuthorityRewriter } from '../src/grpc/authority.js';
import { loadEtcdServices } from '../src/grpc/proto.js';
import { ConnectionOpening, type Opened, serverSettings } from '../src/grpc/opening.js';
import { grpcUrl, useServer } from './helpers/server.js';

/**
 * The opening of a gRPC connection (src/grpc/opening.ts): which connections grpc-js gets as
 * the bare socket, and that the bytes it hands on are the client's, less exactly the
 * acknowledgement of the SETTINGS frame the opening sent. The end-to-end side (etcdctl's
 * connections counted bare and rewritten by a real member) is in grpc-etcdctl.
 */

const preface = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

function frame(type: number, flags: number, stream: number, payload: Uint8Array): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream, 5);
  return Buffer.concat([h, payload]);
}

/** headersBlock is a request's header block: :method POST (static index 3), :scheme http (6),
 * :path as a literal, :authority as a literal without indexing on the static name (index 1). */
function headersBlock(authority: string): Buffer {
  const lit = (s: string) => Buffer.concat([Buffer.of(s.length), Buffer.from(s, 'latin1')]);
  return Buffer.concat([Buffer.of(0x83, 0x86), Buffer.of(0x04), lit('/etcdserverpb.KV/Range'),
    Buffer.of(0x01), lit(authority)]);
}

const clientSettings = frame(0x4, 0, 0, Buffer.of(0, 4, 0, 0x40, 0, 0));
const ack = frame(0x4, 0x1, 0, Buffer.alloc(0));
const windowUpdate = frame(0x8, 0, 0, Buffer.of(0, 0x0f, 0, 0));
const headers = (authority: string, flags = 0x4) =>
  frame(0x1, flags, 1, headersBlock(authority));
const data = frame(0x0, 0x1, 1, Buffer.of(0, 0, 0, 0, 2, 0x0a, 0));

/** feed pushes the chunks in order; returns what was sent, and the decision with the index of
 * the chunk that brought it. */
function feed(o: ConnectionOpening, chunks: Uint8Array[]):
  { sent: Uint8Array[]; opened?: Opened; at: number } {
  const sent: Uint8Array[] = [];
  for (let i = 0; i < chunks.length; i++) {
    const step = o.push(chunks[i]!);
    if (step.send !== undefined) sent.push(step.send);
    if (step.opened !== undefined) return { sent, opened: step.opened, at: i };
  }
  return { sent, at: -1 };
}

function bytesOf(b: Buffer): Uint8Array[] {
  return [...b].map((x) => Uint8Array.of(x));
}

test('opening: a request sent before our SETTINGS arrived goes bare once they are acknowledged',
  (t) => {
    const o = new ConnectionOpening(65_536);
    const first = Buffer.concat([preface, clientSettings, headers('127.0.0.1:2379'), data]);
    const r = feed(o, [first, Buffer.concat([windowUpdate, ack])]);
    t.deepEqual(r.sent, [serverSettings]);
    t.is(r.at, 1, 'no decision before the acknowledgement');
    t.is(r.opened?.kind, 'bare');
    t.deepEqual(Buffer.concat(r.opened!.first), Buffer.concat([first, windowUpdate]),
      'every byte but the acknowledgement, in order');
  });

test('opening: grpc-go\'s order, a byte at a time: SETTINGS once, after the preface; bare at ' +
  'the last byte of the first HEADERS', (t) => {
  const o = new ConnectionOpening(65_536);
  const before = Buffer.concat([preface, clientSettings, windowUpdate, ack]);
  const h = headers('localhost:23790');
  const sent: number[] = [];
  let opened: Opened | undefined;
  const all = bytesOf(Buffer.concat([before, h]));
  all.forEach((b, i) => {
    if (opened !== undefined) return;
    const step = o.push(b);
    if (step.send !== undefined) sent.push(i);
    opened = step.opened ?? opened;
    if (opened !== undefined) t.is(i, all.length - 1);
  });
  t.deepEqual(sent, [preface.length - 1]);
  t.is(opened?.kind, 'bare');
  t.deepEqual(Buffer.concat(opened!.first),
    Buffer.concat([preface, clientSettings, windowUpdate, h]));
});

test('opening: etcdctl\'s http:// authority is rewritten; the bytes handed on are the ' +
  'rewriter\'s, and the rewriter goes on with the connection', (t) => {
  const o = new ConnectionOpening(65_536);
  const h = headers('http://127.0.0.1:23790');
  const r = feed(o, [Buffer.concat([preface, clientSettings]), ack, h]);
  t.is(r.opened?.kind, 'rewrite');
  const expected = new AuthorityRewriter().push(Buffer.concat([preface, clientSettings, h]));
  t.deepEqual(Buffer.concat(r.opened!.first), Buffer.concat(expected));
  t.true(Buffer.concat(r.opened!.first).includes('http:--127.0.0.1:23790'));
  if (r.opened?.kind !== 'rewrite') return;
  const next = Buffer.concat(r.opened.rewriter.push(headers('http://127.0.0.1:23790')));
  t.true(next.includes('http:--127.0.0.1:23790'), 'later requests are still rewritten');
});

test('opening: bytes that are not HTTP/2 get no SETTINGS and are handed on at once, as HTTP/1',
  (t) => {
    const o = new ConnectionOpening(65_536);
    const http1 = Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n', 'latin1');
    const r = feed(o, [http1]);
    t.deepEqual(r.sent, []);
    t.is(r.opened?.kind, 'http1');
    t.deepEqual(Buffer.concat(r.opened!.first), http1);
    // A preface that goes wrong only after its first bytes is found as soon as it differs.
    const o2 = new ConnectionOpening(65_536);
    const r2 = feed(o2, [preface.subarray(0, 10), Buffer.from('XX', 'latin1')]);
    t.is(r2.at, 1);
    t.deepEqual(Buffer.concat(r2.opened!.first),
      Buffer.concat([preface.subarray(0, 10), Buffer.from('XX', 'latin1')]));
  });

test('opening: a header block continued in CONTINUATION frames is not judged (rewriter), ' +
  'still only after the acknowledgement', (t) => {
  const o = new ConnectionOpening(65_536);
  const h = headers('127.0.0.1:1', 0); // no END_HEADERS
  const r = feed(o, [Buffer.concat([preface, clientSettings, h]), ack]);
  t.is(r.at, 1);
  t.is(r.opened?.kind, 'rewrite');
  t.deepEqual(Buffer.concat(r.opened!.first), Buffer.concat([preface, clientSettings, h]));
});

test('opening: what it holds is bounded — past bytesMax without a decision it hands on', (t) => {
  const o = new ConnectionOpening(1_000);
  const pings = Array.from({ length: 80 }, () => frame(0x6, 0, 0, Buffer.alloc(8)));
  const r = feed(o, [Buffer.concat([preface, clientSettings]), ...pings]);
  t.true(r.at > 40 && r.at < 80, `decided at chunk ${r.at}`);
  t.is(r.opened?.kind, 'rewrite');
  t.true(Buffer.concat(r.opened!.first).length > 1_000);
  t.throws(() => o.push(Buffer.alloc(1)), { message: /already decided/ });
});

/** ackRemoved is `all` with its first SETTINGS-ACK frame after the preface taken out (the
 * frames parsed from the start; a partial frame at the end left as it is). */
function ackRemoved(all: Buffer): Buffer {
  let at = preface.length;
  while (at + 9 <= all.length) {
    const len = all.readUIntBE(at, 3);
    if (at + 9 + len > all.length) break;
    if (all[at + 3] === 0x4 && (all[at + 4]! & 0x1) !== 0) {
      return Buffer.concat([all.subarray(0, at), all.subarray(at + 9 + len)]);
    }
    at += 9 + len;
  }
  return all;
}

test('opening: on any bytes, cut anywhere — it decides at most once, sends SETTINGS only ' +
  'after a whole preface, and a bare connection gets the bytes less exactly the ' +
  'acknowledgement', (t) => {
  const frameArb = fc.oneof(
    fc.constant(clientSettings), fc.constant(ack), fc.constant(windowUpdate),
    fc.constant(data), fc.string({ maxLength: 30 }).map((a) => headers(a)),
    fc.string({ maxLength: 30 }).map((a) => headers(a, 0)),
    fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b)),
    fc.tuple(fc.integer({ min: 0, max: 9 }), fc.uint8Array({ maxLength: 30 }))
      .map(([type, b]) => frame(type, 0, 0, b)));
  fc.assert(fc.property(
    fc.boolean(), fc.array(frameArb, { maxLength: 12 }),
    fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 8 }),
    (withPreface, frames, cuts) => {
      const all = Buffer.concat([withPreface ? preface : Buffer.alloc(0), ...frames]);
      const o = new ConnectionOpening(2_048);
      let sent = 0;
      let opened: Opened | undefined;
      let fed = 0;
      for (let i = 0; fed < all.length && opened === undefined; i++) {
        const n = Math.min(cuts[i % cuts.length]!, all.length - fed);
        const step = o.push(all.subarray(fed, fed + n));
        fed += n;
        if (step.send !== undefined) {
          sent++;
          if (fed < preface.length || !all.subarray(0, preface.length).equals(preface)) {
            return false;
          }
        }
        opened = step.opened;
      }
      if (sent > 1) return false;
      if (opened?.kind === 'bare' && sent === 1) {
        return Buffer.concat(opened.first).equals(ackRemoved(all.subarray(0, fed)));
      }
      if (opened?.kind === 'bare') return Buffer.concat(opened.first).equals(all.subarray(0, fed));
      return true;
    }), { numRuns: 2_000, seed: 33 });
  t.pass();
});

test('opening: a member takes connections that send garbage, half a preface or no ' +
  'acknowledgement, closes them when their clients go, and goes on serving', async (t) => {
  // A header block nghttp2 cannot decode makes Node's HTTP/2 answer GOAWAY and stop reading
  // the socket, so it never sees its client leave: the keepalive ping (etcd's
  // --grpc-keepalive-interval, 2 h by default) finds it gone and closes it.
  const srv = await useServer(t, { args: ['--grpc-keepalive-interval', '300ms',
    '--grpc-keepalive-timeout', '300ms'] });
  const [host, port] = (await grpcUrl(srv)).replace(/^http:\/\//, '').split(':');
  const openings = [
    Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), preface.subarray(0, 11),
    Buffer.concat([preface, clientSettings, headers('127.0.0.1:1')]), // never acknowledges
    Buffer.concat([preface, clientSettings, ack, frame(0x1, 0x4, 1, Buffer.from([0xff, 0xff]))]),
    Buffer.concat([preface, frame(0x4, 0x1, 0, Buffer.alloc(4)),
      frame(0x7, 0, 0, Buffer.alloc(8))]),
    Buffer.alloc(70_000, 0x41),
  ];
  await Promise.all(openings.map((bytes) => new Promise<void>((resolve) => {
    const s = net.connect(Number(port), host, () => {
      s.write(bytes);
      setImmediate(() => s.end());
    });
    s.on('error', () => undefined);
    s.on('close', () => resolve());
    s.resume();
  })));
  const KV = loadEtcdServices().clients['KV']!;
  const client = new KV(`${host}:${port}`, grpc.credentials.createInsecure()) as unknown as
    Record<string, (r: unknown, cb: (e: Error | null, v: { header: unknown }) => void) => void>;
  const answer = await new Promise<{ header: unknown }>((resolve, reject) => {
    client['Range']!({ key: Buffer.from('a') }, (e, v) => (e ? reject(e) : resolve(v)));
  });
  t.truthy(answer.header);
  (client as unknown as grpc.Client).close();
  t.true(srv.running);
});

test('opening: once grpc-js has the connection, its SETTINGS carry --max-concurrent-streams',
  async (t) => {
    const srv = await useServer(t, { args: ['--max-concurrent-streams', '7'] });
    const session = http2.connect(await grpcUrl(srv));
    t.teardown(() => session.destroy());
    session.on('error', () => undefined);
    // The opening hands the connection over on the first request's headers: one call first.
    const req = session.request({ ':method': 'POST', ':path': '/etcdserverpb.Maintenance/Status',
      'content-type': 'application/grpc', 'te': 'trailers' });
    req.end(Buffer.alloc(5)); // an empty StatusRequest, uncompressed
    const status = await new Promise<string | undefined>((resolve, reject) => {
      req.on('trailers', (h) => resolve(h['grpc-status'] as string | undefined));
      req.on('error', reject);
      req.resume();
    });
    t.is(status, '0');
    t.is(session.remoteSettings.maxConcurrentStreams, 7);
  });
