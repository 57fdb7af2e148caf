import test from 'ava';
import { MessageChannel } from 'node:worker_threads';
import { gcFunction } from '../src/runtime/gc.js';
import {
  EnvelopeKind, isShared, moveBytes, moveCopy, movedBytesMin, MovedBytes, pack,
  packBatch, packBinFieldsApart, packWithBins,
  releaseBytes, unpack, unpackBatch,
} from '../src/runtime/codec.js';
import { portTransport } from '../src/runtime/endpoint.js';

/** patterned returns n bytes whose content depends on seed and position. */
function patterned(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

test('codec: moved bytes travel beside the batch, not in it, and come back in place', (t) => {
  const big = patterned(movedBytesMin * 4, 7);
  const moved: Uint8Array[] = [];
  const bytes = packBatch([[EnvelopeKind.Send, 0, '', { type: 'X', body: moveBytes(big) }]],
    moved);
  t.true(bytes.length < 64, `the batch holds a place, not ${bytes.length} bytes`);
  t.is(moved.length, 1);
  t.is(moved[0]!.buffer, big.buffer, 'the same memory, not a copy');
  const [env] = unpackBatch(bytes, moved);
  const body = (env![3] as { body: Uint8Array }).body;
  t.is(body, moved[0]!);
  // Without the list beside it, a batch naming moved bytes is refused, not misread.
  t.throws(() => unpackBatch(bytes), { message: /moved bytes #0 missing/ });
});

test('codec: moved bytes are ordinary bytes outside a batch, and small ones are not moved', (t) => {
  const big = patterned(movedBytesMin + 3, 9);
  const m = moveBytes(big);
  t.true(m instanceof MovedBytes);
  t.deepEqual(unpack<{ b: Uint8Array }>(pack({ b: m })).b, big);
  const small = patterned(movedBytesMin - 1, 1);
  t.is(moveBytes(small), small, 'below movedBytesMin the bytes are packed as before');
  const moved: Uint8Array[] = [];
  const bytes = packBatch([[EnvelopeKind.Send, 0, '', moveBytes(small)]], moved);
  t.is(moved.length, 0);
  t.deepEqual(unpackBatch(bytes)[0]![3], small);
});

test('runtime: a port moves the bytes to the other side (the sender keeps none) with their ' +
  'offsets, two views of one buffer included', async (t) => {
  const { port1, port2 } = new MessageChannel();
  const sender = portTransport(port1);
  const receiver = portTransport(port2);
  try {
    const whole = patterned(movedBytesMin * 8, 3);
    const first = whole.subarray(10, 10 + movedBytesMin);
    const second = whole.subarray(movedBytesMin * 2, movedBytesMin * 5);
    const expectFirst = first.slice();
    const expectSecond = second.slice();
    const moved: Uint8Array[] = [];
    const batch = packBatch([
      [EnvelopeKind.Send, 0, '', { type: 'A', body: moveBytes(first) }],
      [EnvelopeKind.Send, 0, '', { type: 'B', body: moveBytes(second) }],
    ], moved);
    const got = new Promise<{ batch: Uint8Array; moved?: readonly Uint8Array[] }>((resolve) => {
      receiver.onBatch((b, m) => resolve({ batch: b, moved: m }));
    });
    sender.post(batch, moved);
    t.is(whole.buffer.byteLength, 0, 'the sender\'s buffer is detached: moved, not copied');
    const r = await got;
    const [a, b] = unpackBatch(r.batch, r.moved);
    const bodyA = (a![3] as { body: Uint8Array }).body;
    const bodyB = (b![3] as { body: Uint8Array }).body;
    t.deepEqual(bodyA, expectFirst);
    t.deepEqual(bodyB, expectSecond);
    t.is(bodyA.byteOffset, 10);
    t.is(bodyA.buffer, bodyB.buffer, 'one buffer arrived once');
  } finally {
    sender.close();
    receiver.close();
  }
});

test('codec: releaseBytes frees bytes that own their buffer at once, and nothing else', (t) => {
  const owned = patterned(movedBytesMin * 2, 5);
  t.true(releaseBytes(owned));
  t.is(owned.buffer.byteLength, 0, 'the buffer is gone (detached) without a collection');
  // A view of part of a buffer, small bytes, or bytes already released are left alone.
  const whole = patterned(movedBytesMin * 3, 6);
  const part = whole.subarray(1);
  t.false(releaseBytes(part));
  t.is(whole.buffer.byteLength, movedBytesMin * 3);
  const small = patterned(100, 1);
  t.false(releaseBytes(small));
  t.is(small[5], (5 * 31 + 1) & 0xff);
  t.false(releaseBytes(owned));
});

test('codec: moveCopy moves a copy of large bytes and leaves small ones as they are', (t) => {
  const big = patterned(movedBytesMin, 8);
  const m = moveCopy(big);
  t.true(m instanceof MovedBytes);
  t.not(m.buffer, big.buffer, 'the sender keeps its own bytes');
  t.deepEqual([...m], [...big]);
  const small = patterned(movedBytesMin - 1, 8);
  t.is(moveCopy(small), small, 'no copy that the batch would copy again');
});

test('packWithBins: the parts concatenated unpack as the whole value, bins never copied', (t) => {
  const head = { revision: 7, leases: [{ id: 1, ttl: 5 }], confState: { voters: [1], learners: [] },
    members: { a: 'x' } };
  for (const sizes of [[], [0], [10, 70_000, 3], Array.from({ length: 20 }, (_, i) => i * 5)]) {
    const bins = sizes.map((n, j) => Uint8Array.from({ length: n }, (_, i) => (i + j) & 0xff));
    const parts = packWithBins(head, 'shards', bins);
    // Each bin is one of the parts itself, not a copy.
    for (const b of bins) t.true(parts.includes(b));
    const whole = unpack<typeof head & { shards: Uint8Array[] }>(Buffer.concat(parts));
    t.deepEqual({ ...whole, shards: whole.shards.map((b) => Buffer.from(b)) },
      { ...head, shards: bins.map((b) => Buffer.from(b)) }, `bins of ${sizes.join(',')} bytes`);
  }
  t.throws(() => packWithBins({ shards: 1 }, 'shards', []), { message: /already has shards/ });
});

test('packBinFieldsApart: the parts concatenated unpack as the object, large fields never copied',
  (t) => {
    const big = (n: number, seed: number) =>
      Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff);
    const cases: Record<string, unknown>[] = [
      { format: 'f', a: 1 },
      { format: 'f', a: big(movedBytesMin, 1), b: 2, c: big(10, 3), d: big(movedBytesMin + 5, 4) },
      { x: big(movedBytesMin * 2, 5), y: new Uint8Array(0), z: 'last' },
    ];
    for (const value of cases) {
      const parts = packBinFieldsApart(value);
      for (const v of Object.values(value)) {
        if (v instanceof Uint8Array && v.length >= movedBytesMin) t.true(parts.includes(v));
      }
      const whole = unpack<Record<string, unknown>>(Buffer.concat(parts));
      const plain = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).map(
        ([k, v]) => [k, v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v]));
      t.deepEqual(plain(whole), plain(value));
      // As a bin of a snapshot body, the parts are one bin.
      const body = unpack<{ shards: Uint8Array[] }>(
        Buffer.concat(packWithBins({ revision: 1 }, 'shards', [parts, big(3, 6)])));
      t.deepEqual(plain(unpack(body.shards[0]!)), plain(value));
      t.is(Buffer.from(body.shards[1]!).toString('hex'), Buffer.from(big(3, 6)).toString('hex'));
    }
  });

test('runtime: bytes in shared memory cross a port shared, neither copied nor detached',
  async (t) => {
    const { port1, port2 } = new MessageChannel();
    const sender = portTransport(port1);
    const receiver = portTransport(port2);
    try {
      const shared = new Uint8Array(new SharedArrayBuffer(movedBytesMin * 4));
      shared.set(patterned(shared.length, 4));
      const view = shared.subarray(100, 100 + movedBytesMin * 2);
      const own = patterned(movedBytesMin, 5); // moved beside it in the same batch
      t.true(isShared(view));
      t.false(isShared(own));
      const moved: Uint8Array[] = [];
      const batch = packBatch([
        [EnvelopeKind.Send, 0, '', { type: 'S', body: moveBytes(view), other: moveBytes(own) }],
      ], moved);
      t.true(batch.length < 64, 'the shared bytes are not packed into the batch');
      const got = new Promise<{ batch: Uint8Array; moved?: readonly Uint8Array[] }>((resolve) => {
        receiver.onBatch((b, m) => resolve({ batch: b, moved: m }));
      });
      sender.post(batch, moved);
      t.is(shared.buffer.byteLength, movedBytesMin * 4, 'shared memory is not detached');
      t.is(own.buffer.byteLength, 0, 'the owned buffer beside it is moved');
      const r = await got;
      const [env] = unpackBatch(r.batch, r.moved);
      const body = (env![3] as { body: Uint8Array; other: Uint8Array });
      t.true(isShared(body.body));
      t.is(body.body.byteOffset, 100);
      t.is(body.body.length, view.length);
      t.deepEqual([...body.other.subarray(0, 8)], [...patterned(8, 5)]);
      // The same memory, not a copy: a byte the sender writes now is what the receiver reads.
      view[0] = view[0]! ^ 0xff;
      t.is(body.body[0], view[0]);
    } finally {
      sender.close();
      receiver.close();
    }
  });

test.serial('codec: unpack of large bytes leaves msgpackr holding no view of them', async (t) => {
  // msgpackr keeps a DataView of the last buffer it read; a snapshot's body in shared memory
  // (190 MiB with a million keys) stayed alive behind it on a thread that went quiet.
  const gc = gcFunction()!;
  const packed = pack({ dump: patterned(movedBytesMin * 2, 3) });
  let refs: WeakRef<object>[] = [];
  (() => {
    const shared = new SharedArrayBuffer(packed.length + 16);
    const view = new Uint8Array(shared, 16, packed.length);
    view.set(packed);
    const got = unpack<{ dump: Uint8Array }>(view);
    t.is(got.dump.length, movedBytesMin * 2);
    refs = [new WeakRef(shared)];
  })();
  for (let i = 0; i < 3 && refs[0]!.deref() !== undefined; i++) {
    // A WeakRef's target stays alive until the turn that read it ends.
    await new Promise((resolve) => setImmediate(resolve));
    gc();
  }
  t.is(refs[0]!.deref(), undefined, 'the shared buffer was collected');
});
