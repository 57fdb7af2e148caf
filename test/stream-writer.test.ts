import test from 'ava';
import type HyperExpress from 'hyper-express';
import { ChunkedStream } from '../src/gateway/stream.js';

// Regression: uWS (this 20.30 build) drops a corked write that overflows its 16 KiB cork
// buffer when the socket takes only part of the buffer's flush (fixed upstream in uWebSockets
// v20.77.0, commit 6b7f354). A watch client reading slower than the server then stalled for
// good, or read a chunk size as data (test/e2e-watch.test.ts, the slow readers). Whatever way
// ChunkedStream writes, no cork may hold more than the cork buffer, and the bytes must leave
// in order: checked here on a fake response that records each raw write and its cork.

/** uwsCorkBufferBytes is uWS's LoopData::CORK_BUFFER_SIZE (compiled into the binary). */
const uwsCorkBufferBytes = 16 * 1024;
/** chunkFramingBytes bounds what uWS adds to each chunked write: CRLF, size in hex, CRLF. */
const chunkFramingBytes = 12;

interface Write {
  cork: number;
  bytes: Buffer | undefined;
}

/** fake returns a ChunkedStream over a recording response, and the record (cork 0: none). */
function fake(): { stream: ChunkedStream; writes: Write[] } {
  const writes: Write[] = [];
  let cork = 0;
  let corks = 0;
  const raw = {
    write(m: string | Uint8Array) {
      writes.push({ cork, bytes: Buffer.from(m as string) });
      return true;
    },
    end() {
      writes.push({ cork, bytes: undefined });
    },
  };
  const res = {
    raw, completed: false,
    status: () => res,
    header: () => res,
    write: () => true,
    drain() {},
    once() {},
    end() {
      raw.end();
    },
    atomic(fn: () => void) {
      cork = ++corks;
      try {
        fn();
      } finally {
        cork = 0;
      }
    },
  };
  const stream = new ChunkedStream({ received: true } as unknown as HyperExpress.Request,
    res as unknown as HyperExpress.Response, 'application/json');
  return { stream, writes };
}

/** largestCork is the most bytes, framing included, that one cork held. */
function largestCork(writes: Write[]): number {
  const per = new Map<number, number>();
  for (const w of writes) {
    if (w.cork === 0 || w.bytes === undefined) continue;
    per.set(w.cork, (per.get(w.cork) ?? 0) + w.bytes.length + chunkFramingBytes);
  }
  return Math.max(0, ...per.values());
}

/** sent is every byte written, in order, without the whitespace chunks between messages. */
function sent(writes: Write[]): string {
  return Buffer.concat(writes.flatMap((w) => (w.bytes === undefined ? [] : [w.bytes])))
    .toString('utf8').replace(/\n/g, '');
}

const cases: { name: string; messages: string[] }[] = [
  { name: 'small messages', messages: ['{"a":1}', '{"b":2}'] },
  { name: 'one message larger than the cork buffer', messages: ['x'.repeat(5 * 1024 * 1024)] },
  { name: 'messages that together overflow it', messages: Array(40).fill('y'.repeat(1000)) },
  { name: 'three-byte characters', messages: ['€'.repeat(10_000), '{"c":3}'] },
];

for (const c of cases) {
  test(`stream writer: ${c.name} leave in order, no cork above the cork buffer`, (t) => {
    const { stream, writes } = fake();
    stream.write(c.messages);
    t.true(largestCork(writes) <= uwsCorkBufferBytes, `a cork held ${largestCork(writes)} B`);
    t.is(sent(writes), c.messages.join(''));
  });
}

test('stream writer: the last messages of an end, then the end, likewise', (t) => {
  const { stream, writes } = fake();
  stream.write('{"first":true}');
  const last = '{"error":"' + 'z'.repeat(40_000) + '"}';
  stream.end(last);
  t.true(largestCork(writes) <= uwsCorkBufferBytes, `a cork held ${largestCork(writes)} B`);
  t.is(sent(writes), '{"first":true}' + last);
  t.is(writes[writes.length - 1]!.bytes, undefined, 'the end comes last');
});
