import test from 'ava';
import { rangeResponse, watchResponse } from '../src/grpc/codec.js';
import { loadEtcdServices } from '../src/grpc/proto.js';
import { rangeResponseBytes, watchResponseBytes } from '../src/grpc/wire.js';
import { keyValueHash, keyValueSpanHash } from '../src/grpc/digest.js';
import { crc32cTables } from '../src/wal/crc32c.js';
import type { Change, KeyValue, RangeResponse, ResponseHeader } from '../src/mvcc/types.js';
import type { WatchResponse } from '../src/watch/types.js';
import type { LeaseId, Revision } from '../src/types.js';

/**
 * The hand-written RangeResponse (src/grpc/wire.ts) against the loader's own serializer of
 * codec.ts's object for the same answer: the same bytes, on random answers that cover empty
 * and zero fields, binary keys and values, multi-byte varints and lengths, `more`, `count`.
 * Keys are never empty (no store holds one; the loader would send an empty key's field, which
 * the hand-written path, like etcd's Go code, leaves out).
 */

function rng(seed: number): (k: number) => number {
  let s = seed;
  return (k) => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s % k;
  };
}

/** big is a number of 1 to 8 varint bytes (or 0). */
function big(rand: (k: number) => number): number {
  const n = [0, 1, 127, 128, 16_383, 16_384, 2 ** 31, 2 ** 35 + 7, Number.MAX_SAFE_INTEGER];
  return rand(3) === 0 ? n[rand(n.length)]! : rand(1_000_000);
}

function binary(rand: (k: number) => number, max: number): string {
  return String.fromCharCode(...Array.from({ length: rand(max) }, () => rand(256)));
}

function keyValue(rand: (k: number) => number): KeyValue {
  return {
    key: `k${binary(rand, 40)}`, value: rand(5) === 0 ? 'v'.repeat(rand(300)) : binary(rand, 200),
    createRevision: big(rand) as Revision, modRevision: big(rand) as Revision,
    version: big(rand), lease: big(rand) as LeaseId,
  };
}

function header(rand: (k: number) => number): ResponseHeader {
  return { clusterId: big(rand), memberId: big(rand), revision: big(rand) as Revision,
    raftTerm: big(rand) };
}

function answer(seed: number): [ResponseHeader, RangeResponse] {
  const rand = rng(seed);
  const kvs = Array.from({ length: rand(4) === 0 ? 0 : rand(60) }, () => keyValue(rand));
  return [header(rand), { type: 'range', kvs, more: rand(2) === 0, count: big(rand) }];
}

function watchAnswer(seed: number): [ResponseHeader, WatchResponse, boolean] {
  const rand = rng(seed);
  const events = Array.from({ length: rand(4) === 0 ? 0 : rand(30) }, (): Change => {
    const kind = rand(3) === 0 ? 'delete' : 'put';
    return { kind, kv: keyValue(rand), ...(rand(2) === 0 ? { prevKv: keyValue(rand) } : {}) };
  });
  const r: WatchResponse = { watchId: big(rand), revision: big(rand), events };
  if (rand(3) === 0) r.created = true;
  if (rand(4) === 0) r.canceled = true;
  if (rand(4) === 0) r.compactRevision = big(rand);
  if (rand(4) === 0) r.cancelReason = rand(2) === 0 ? 'mvcc: required revision has been ' +
    'compacted' : `permission denied — ${binary(rand, 10)}`;
  return [header(rand), r, rand(3) === 0];
}

test('grpc wire: a RangeResponse written by hand is the loader\'s bytes for the same answer',
  (t) => {
    const serialize = loadEtcdServices().KV['Range']!.responseSerialize;
    for (let seed = 1; seed <= 300; seed++) {
      const [h, r] = answer(seed);
      const mine = rangeResponseBytes(h, r);
      t.truthy(mine, `seed ${seed}`);
      const theirs = serialize(rangeResponse(h, r));
      if (!Buffer.from(mine!).equals(theirs)) {
        t.fail(`seed ${seed}: ${mine!.toString('hex')} != ${theirs.toString('hex')}`);
        return;
      }
    }
    t.pass();
  });

test('grpc wire: a WatchResponse written by hand is the loader\'s bytes for the same answer, ' +
  'fragments and cancellations included', (t) => {
  const serialize = loadEtcdServices().Watch['Watch']!.responseSerialize;
  for (let seed = 1; seed <= 300; seed++) {
    const [h, r, fragment] = watchAnswer(seed);
    const mine = watchResponseBytes(h, r, fragment);
    t.truthy(mine, `seed ${seed}`);
    const theirs = serialize(fragment ? { ...watchResponse(h, r), fragment: true } :
      watchResponse(h, r));
    if (!Buffer.from(mine!).equals(theirs)) {
      t.fail(`seed ${seed}: ${mine!.toString('hex')} != ${theirs.toString('hex')}`);
      return;
    }
  }
  t.pass();
});

test('grpc wire: a number the hand-written path cannot write leaves the answer to the loader',
  (t) => {
    const [h, r] = answer(7);
    t.is(rangeResponseBytes({ ...h, clusterId: 2 ** 60 }, r), undefined);
    t.is(rangeResponseBytes(h, { ...r, count: -1 }), undefined);
    const kv = { key: 'k', value: 'v', createRevision: 1 as Revision, modRevision: 1 as Revision,
      version: 1, lease: 2 ** 64 as LeaseId };
    t.is(rangeResponseBytes(h, { ...r, kvs: [...r.kvs, kv] }), undefined);
    const progress: WatchResponse = { watchId: -1, revision: 5, events: [] };
    t.is(watchResponseBytes(h, progress), undefined);
    t.is(watchResponseBytes(h, { ...progress, watchId: 1, events: [{ kind: 'put', kv }] }),
      undefined);
  });

test('wire: HashKV\'s hash of a key-value is the CRC-32C of the loader\'s encoding, from an ' +
  'object or from a span of column bytes alike', (t) => {
  const serialize = loadEtcdServices().KV['Range']!.responseSerialize;
  const empty: ResponseHeader = { clusterId: 0, memberId: 0, revision: 0 as Revision,
    raftTerm: 0 };
  /** encoded: the loader's mvccpb.KeyValue bytes, cut out of a RangeResponse of one kv. */
  const encoded = (kv: KeyValue): Buffer => {
    const b = serialize(rangeResponse(empty, { type: 'range', kvs: [kv], more: false,
      count: 0 }));
    let at = 2 + b[1]!; // the header field: tag, length (< 128), body
    t.is(b[at], 0x12);
    let len = 0;
    for (let shift = 0; ; shift += 7) {
      const x = b[++at]!;
      len += (x & 0x7f) * 2 ** shift;
      if (x < 0x80) break;
    }
    return b.subarray(at + 1, at + 1 + len);
  };
  for (let seed = 1; seed <= 300; seed++) {
    const rand = rng(seed);
    const kv = keyValue(rand);
    if (rand(4) === 0) kv.key = `long/${'x'.repeat(60 + rand(200))}`;
    if (rand(4) === 0) kv.value = '';
    const loader = encoded(kv);
    const want = crc32cTables(0, loader);
    t.is(keyValueHash(kv), want, `seed ${seed}`);
    // The value somewhere inside a larger buffer, as in a store's arena.
    const pad = rand(50);
    const arena = Buffer.alloc(pad + kv.value.length + 7, 0xee);
    arena.write(kv.value, pad, 'latin1');
    t.is(keyValueSpanHash({ key: kv.key, createRevision: kv.createRevision,
      modRevision: kv.modRevision, version: kv.version, lease: kv.lease, value: arena,
      valueAt: pad, valueLen: kv.value.length }), want, `seed ${seed} (span)`);
  }
});
