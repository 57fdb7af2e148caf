import test from 'ava';
import { ErrCompacted, EtcdError } from '../src/errors.js';
import { retryCompacted } from '../src/gateway/grpc-server.js';
import { keyValueProto, revisionKey, SnapshotKeys } from '../src/grpc/snapshot.js';
import { RemoteError } from '../src/runtime/endpoint.js';
import type { KeyValue } from '../src/mvcc/types.js';
import type { LeaseId, Revision } from '../src/types.js';

/**
 * SnapshotKeys, the "key" bucket of Maintenance.Snapshot's file, against a plain model: every
 * kv sorted by (revision, key), sub revisions counted within a revision, each entry's bytes
 * the revision key and then the kv's protobuf. (etcdctl and a real etcd read the whole file
 * in grpc-etcdctl.test.ts.)
 */

function kvs(n: number, seed: number, revisionBase: number): KeyValue[] {
  let s = seed;
  const rand = (k: number): number => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s % k;
  };
  return Array.from({ length: n }, (_, i) => ({
    key: `k/${String(i).padStart(5, '0')}`, value: 'v'.repeat(rand(40)),
    createRevision: (1 + rand(5)) as Revision,
    modRevision: (revisionBase + rand(Math.ceil(n / 4))) as Revision,
    version: 1 + rand(3), lease: (rand(3) === 0 ? 1 + rand(1000) : 0) as LeaseId,
  }));
}

function model(all: KeyValue[]): Uint8Array[] {
  const sorted = [...all].sort((a, b) => a.modRevision - b.modRevision ||
    (a.key < b.key ? -1 : 1));
  let sub = 0;
  return sorted.map((kv, j) => {
    sub = j > 0 && sorted[j - 1]!.modRevision === kv.modRevision ? sub + 1 : 0;
    return Buffer.concat([revisionKey(kv.modRevision, sub), keyValueProto(kv)]);
  });
}

function entries(k: SnapshotKeys): Uint8Array[] {
  return Array.from({ length: k.length }, (_, j) => {
    const out = new Uint8Array(k.keyBytes() + k.valueBytes(j));
    k.write(j, out, 0);
    if (!Buffer.from(k.key(j)).equals(out.subarray(0, 17))) {
      throw new Error(`key(${j}) is not the first 17 bytes of entry ${j}`);
    }
    return out;
  });
}

for (const [what, base] of [['revisions below 2^32', 2], ['revisions past 2^32', 2 ** 33]] as
  const) {
  test(`snapshot keys: ${what} — revision order, sub revisions in key order, bytes`, (t) => {
    for (const seed of [1, 2, 3]) {
      const all = kvs(3_000, seed, base);
      const keys = new SnapshotKeys();
      for (let i = 0; i < all.length; i += 700) keys.add(all.slice(i, i + 700));
      keys.seal();
      t.is(keys.length, all.length);
      t.deepEqual(entries(keys).map((e) => Buffer.from(e).toString('hex')),
        model(all).map((e) => Buffer.from(e).toString('hex')));
    }
  });
}

/** EncodedPage is a page as a shard's ShardExportResp carries it. */
interface EncodedPage { shard: number; bytes: Uint8Array; index: Uint8Array; keys: number }

/** indexOf lays out a page's index as ShardExportResp's: the mods (float64) then the ends
 * (uint32), little-endian, at an odd byte offset (as a message may deliver it). */
function indexOf(mods: readonly number[], ends: readonly number[]): Uint8Array {
  const n = mods.length;
  const raw = Buffer.alloc(1 + n * 12);
  mods.forEach((m, i) => raw.writeDoubleLE(m, 1 + i * 8));
  ends.forEach((e, i) => raw.writeUInt32LE(e, 1 + n * 8 + i * 4));
  return raw.subarray(1);
}

/** encodedPages splits kvs over `shards` by a hash of their keys and encodes each shard's in
 * pages of `pageKeys` as a shard's ShardExport does (encodings back to back, an index). */
function encodedPages(all: KeyValue[], shards: number, pageKeys: number): EncodedPage[] {
  const out: EncodedPage[] = [];
  for (let shard = 0; shard < shards; shard++) {
    const mine = all.filter((kv) => kv.key.charCodeAt(kv.key.length - 1) % shards === shard);
    for (let i = 0; i < mine.length; i += pageKeys) {
      const page = mine.slice(i, i + pageKeys);
      const parts = page.map((kv) => keyValueProto(kv));
      let end = 0;
      const ends = parts.map((b) => (end += b.length));
      out.push({ shard, bytes: Buffer.concat(parts), keys: page.length,
        index: indexOf(page.map((kv) => kv.modRevision), ends) });
    }
  }
  return out;
}

for (const shards of [1, 3]) {
  test(`snapshot keys: pages the shards encoded (${shards} shard${shards > 1 ? 's' : ''}, ` +
    'their pages interleaved) give the bytes of the model', (t) => {
    for (const seed of [5, 6]) {
      const all = kvs(2_500, seed, 2);
      const pages = encodedPages(all, shards, 300);
      // Interleaved: each shard's pages stay in its order, the shards take turns in a
      // rotation that depends on the seed.
      const byShard = Array.from({ length: shards }, (_, i) => pages.filter((p) => p.shard === i));
      const keys = new SnapshotKeys();
      for (let turn = 0; byShard.some((q) => q.length > 0); turn++) {
        let i = (seed * 31 + turn * turn * 17) % shards;
        while (byShard[i]!.length === 0) i = (i + 1) % shards;
        const p = byShard[i]!.shift()!;
        keys.addEncoded(p.shard, p.bytes, p.index, p.keys);
      }
      keys.seal();
      t.is(keys.length, all.length);
      t.deepEqual(entries(keys).map((e) => Buffer.from(e).toString('hex')),
        model(all).map((e) => Buffer.from(e).toString('hex')));
    }
  });
}

test('snapshot keys: a shard\'s encoded pages out of its key order are refused; add and ' +
  'addEncoded are not mixed', (t) => {
  const pages = encodedPages(kvs(20, 8, 2), 1, 10);
  const keys = new SnapshotKeys();
  keys.addEncoded(0, pages[1]!.bytes, pages[1]!.index, pages[1]!.keys);
  t.throws(() => keys.addEncoded(0, pages[0]!.bytes, pages[0]!.index, pages[0]!.keys),
    { message: /out of order/ });
  t.throws(() => keys.add(kvs(1, 9, 2)), { message: /after addEncoded/ });
  const bad = pages[0]!;
  const mods = Array.from({ length: bad.keys }, (_, i) => i + 2);
  const ends = Array.from({ length: bad.keys }, (_, i) => (i + 1) * 3);
  t.throws(() => new SnapshotKeys().addEncoded(0, bad.bytes, indexOf(mods, ends), bad.keys),
    { message: /do not add up/ });
  t.throws(() => new SnapshotKeys().addEncoded(0, bad.bytes, bad.index.subarray(4), bad.keys),
    { message: /index is cut/ });
});

test('snapshot keys: pages out of key order are refused; nothing is read before the seal',
  (t) => {
    const all = kvs(10, 4, 2);
    const keys = new SnapshotKeys();
    keys.add(all.slice(5));
    t.throws(() => keys.add(all.slice(0, 5)), { message: /out of order/ });
    t.throws(() => keys.valueBytes(0), { message: /before seal/ });
    keys.seal();
    t.throws(() => keys.add(all.slice(0, 1)), { message: /after seal/ });
  });

test('a read of every key starts again when a compaction passed its revision, a bounded ' +
  'number of times; other errors end it at once', async (t) => {
  const failing = (errors: Error[]) => {
    let calls = 0;
    const read = async (): Promise<string> => {
      const e = errors[calls++];
      if (e !== undefined) throw e;
      return `read ${calls}`;
    };
    return { read, calls: () => calls };
  };
  // From a shard's thread the error is a RemoteError with the code; here, an EtcdError.
  const compacted = () =>
    new RemoteError('COMPACTED', 'mvcc: required revision has been compacted');
  const a = failing([compacted(), new ErrCompacted()]);
  t.is(await retryCompacted(a.read, 3), 'read 3');
  const b = failing([compacted(), compacted(), compacted()]);
  await t.throwsAsync(retryCompacted(b.read, 3), { message: /compacted/ });
  t.is(b.calls(), 3);
  const c = failing([compacted()]);
  await t.throwsAsync(retryCompacted(c.read, 1), { message: /compacted/ });
  t.is(c.calls(), 1);
  const d = failing([new EtcdError('NO_LEADER')]);
  await t.throwsAsync(retryCompacted(d.read, 3), { instanceOf: EtcdError });
  t.is(d.calls(), 1);
});
