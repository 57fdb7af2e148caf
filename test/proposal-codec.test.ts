/**
 * A request inside a Raft entry (src/cluster/proposal.ts): packed as plain msgpack maps since
 * session 17, with records before. Entries are a file format (the WAL, snapshots' catch-up
 * entries), so both must decode to the same request, as objects (not Maps).
 */
import test from 'ava';
import { decodeProposal, encodeProposal, encodeRequest } from '../src/cluster/proposal.js';
import { entryViewBufferMax } from '../src/constants.js';
import { pack, packTransient } from '../src/runtime/codec.js';
import type { ProposalRequest } from '../actors/raft/messages.js';

const requests: ProposalRequest[] = [
  { type: 'put', key: 'foo', value: 'bar', lease: 7, prevKv: true },
  {
    type: 'txn',
    compare: [{ key: 'foo', result: 'EQUAL', target: 'VALUE', value: 'bar' }],
    success: [{ type: 'put', key: 'foo', value: 'baz' }, { type: 'range', key: 'foo' }],
    failure: [{ type: 'deleteRange', key: 'a', rangeEnd: 'z', prevKv: true }],
  },
  { type: 'leaseGrant', id: 5, ttlSeconds: 60 },
  {
    type: 'txn', compare: [],
    success: Array.from({ length: 20 }, (_, i) => ({ type: 'put', key: `k${i}`, value: 'v' })),
    failure: [],
  },
];

test('proposal codec: a request reads back as it was written, with the proposer', (t) => {
  for (const req of requests) {
    const data = encodeProposal({ m: 0x1234567890, b: -3, n: 42 }, encodeRequest(req));
    const p = decodeProposal(data);
    t.deepEqual({ m: p.m, b: p.b, n: p.n }, { m: 0x1234567890, b: -3, n: 42 });
    t.deepEqual(p.req, req);
    t.false(p.req instanceof Map, 'an object, not a Map');
  }
});

test('proposal codec: long keys (copied out of the message) read back byte for byte', (t) => {
  // Keys of 13 bytes or more are copied into strings of their own (ownKeys), through a scratch
  // buffer up to 1 KiB and a buffer of their own past it; bytes above 0x7f are latin1.
  const long = (c: string, n: number) => `/registry/${c}/`.padEnd(n, c) + '\xff\x80';
  const req: ProposalRequest = {
    type: 'authed', by: { user: 'u', rev: 1 }, req: {
      type: 'txn',
      compare: [{ key: long('a', 40), rangeEnd: long('b', 40), result: 'EQUAL', target: 'VERSION',
        version: 1 }],
      success: [
        { type: 'put', key: long('c', 2000), value: 'v'.repeat(300) },
        { type: 'txn', compare: [], success: [{ type: 'range', key: long('d', 13) }], failure: [] },
      ],
      failure: [{ type: 'deleteRange', key: long('e', 1022), rangeEnd: long('f', 1025) }],
    },
  };
  const p = decodeProposal(encodeProposal({ m: 1, b: 2, n: 3 }, encodeRequest(req)));
  t.deepEqual(p.req, req);
});

test('proposal codec: a txn of many puts is packed with records, smaller than plain maps',
  (t) => {
    const big = requests[3]!;
    t.true(encodeRequest(big).length < packTransient(big).length);
    t.is(encodeRequest(requests[0]!).length, packTransient(requests[0]!).length,
      'a put: plain maps');
  });

test('proposal codec: an entry an older build wrote (records) reads back the same', (t) => {
  for (const req of requests) {
    const old = encodeProposal({ m: 1, b: 2, n: 3 }, pack(req));
    t.deepEqual(decodeProposal(old).req, req);
  }
});

test('proposal codec: entries share slabs of entryViewBufferMax bytes, one after another, ' +
  'and a large one gets a buffer of its own', (t) => {
  const small = encodeRequest(requests[0]!);
  const entries = Array.from({ length: 2_000 }, (_, n) => encodeProposal({ m: 1, b: 1, n },
    small));
  for (const [n, e] of entries.entries()) {
    t.true(e.buffer.byteLength === entryViewBufferMax);
    t.is(decodeProposal(e).n, n);
  }
  let slabs = 0;
  for (let i = 1; i < entries.length; i++) {
    const [p, e] = [entries[i - 1]!, entries[i]!];
    if (p.buffer === e.buffer) {
      t.is(e.byteOffset, p.byteOffset + p.length, 'one after another');
    } else {
      slabs++;
      t.is(e.byteOffset, 0, 'a new slab starts at its beginning');
      t.true(p.byteOffset + p.length + e.length > entryViewBufferMax, 'only when it is full');
    }
  }
  t.true(slabs >= Math.floor(entries.length * entries[0]!.length / entryViewBufferMax));
  const big = encodeProposal({ m: 1, b: 1, n: 1 }, new Uint8Array(entryViewBufferMax / 8));
  t.is(big.buffer.byteLength, big.length, 'its own buffer');
});

test('proposal codec: entries from the shared slab do not overlap', (t) => {
  const a = encodeProposal({ m: 1, b: 1, n: 1 }, encodeRequest(requests[0]!));
  const b = encodeProposal({ m: 2, b: 2, n: 2 }, encodeRequest(requests[1]!));
  t.deepEqual(decodeProposal(a).req, requests[0]);
  t.is(decodeProposal(a).n, 1, 'the second entry did not overwrite the first');
  t.deepEqual(decodeProposal(b).req, requests[1]);
});
