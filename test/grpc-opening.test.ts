import test from 'ava';
import { AuthorityRewriter } from '../src/grpc/authority.js';
import { ConnectionOpening, type Opened, serverSettings } from '../src/grpc/opening.js';

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

test('opening: bytes that are not HTTP/2 get no SETTINGS and are handed on bare at once',
  (t) => {
    const o = new ConnectionOpening(65_536);
    const http1 = Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n', 'latin1');
    const r = feed(o, [http1]);
    t.deepEqual(r.sent, []);
    t.is(r.opened?.kind, 'bare');
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
