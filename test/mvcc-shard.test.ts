import test from 'ava';
import { AssertionFailed } from '../src/assert.js';
import {
  ErrCompacted,
  ErrFutureRev,
  ErrSnapshotCorrupt,
  KeyIndex,
  latestOfSnapshot,
  mergeRanges,
  ShardStore,
  shardOf,
  tombstoneOf,
  decodeShardSnapshot,
  shardSnapshotFormatV1,
  type Change,
  type KeyValue,
  type RangeRequest,
  type ShardSnapshotV1,
} from '../src/mvcc/index.js';
import { pack, packBinFieldsApart, unpack } from '../src/runtime/codec.js';
import type { LeaseId, Revision } from '../src/types.js';
import { seeded } from './helpers/rng.js';
import { addHashes, keyValueHash, keyValueSpanHash } from '../src/grpc/digest.js';
import { keyValueProto } from '../src/grpc/snapshot.js';
import {
  keyValueSpanBytes, putKeyValueSpan, putRangeEntry, rangeEntriesResponse, rangeResponseBytes,
} from '../src/grpc/wire.js';
import { mergeEntries } from '../src/grpc/range-entries.js';
import { entriesRangeable } from '../src/mvcc/shard-store.js';

const spanEncoder = { bytes: keyValueSpanBytes, put: putKeyValueSpan };
const entryEncoder = { bytes: keyValueSpanBytes, put: putRangeEntry };

const R = (n: number) => n as Revision;

/** Writer hands out etcd-consistent changes for one shard, like the Applier would. */
class Writer {
  rev = 1;
  live = new Map<string, KeyValue>();
  constructor(readonly store: ShardStore) {}
  commit(...ops: ([string, string] | [string])[]): number {
    const rev = ++this.rev;
    const changes: Change[] = [];
    for (const op of ops) {
      const prev = this.live.get(op[0]);
      if (op.length === 2) {
        const kv: KeyValue = {
          key: op[0], value: op[1], modRevision: R(rev), lease: 0 as LeaseId,
          createRevision: prev ? prev.createRevision : R(rev), version: prev ? prev.version + 1 : 1,
        };
        this.live.set(op[0], kv);
        changes.push(prev ? { kind: 'put', kv, prevKv: prev } : { kind: 'put', kv });
      } else {
        this.live.delete(op[0]);
        changes.push({ kind: 'delete', kv: tombstoneOf(op[0], R(rev)), prevKv: prev! });
      }
    }
    this.store.apply(R(rev), changes);
    return rev;
  }
}

const get = (key: string, extra: Partial<RangeRequest> = {}): RangeRequest =>
  ({ type: 'range', key, ...extra });

test('mvcc: key index generations follow etcd\'s worked example', (t) => {
  // put(1) put(2) tombstone(3) put(4) tombstone(5), as in etcd's key_index.go comment.
  const ki = new KeyIndex('foo');
  const put = (rev: number, version: number, create: number) => ki.append({
    key: 'foo', value: '', modRevision: R(rev), createRevision: R(create), version,
    lease: 0 as LeaseId,
  });
  put(1, 1, 1);
  put(2, 2, 1);
  ki.append(tombstoneOf('foo', R(3)));
  put(4, 1, 4);
  ki.append(tombstoneOf('foo', R(5)));
  t.deepEqual(ki.generations(), [[1, 2, 3], [4, 5], []]);
  t.is(ki.get(2)?.version, 2);
  t.is(ki.get(3), undefined);
  t.is(ki.get(4)?.createRevision as number, 4);
  ki.compact(R(2));
  t.deepEqual(ki.generations(), [[2, 3], [4, 5], []]);
  ki.compact(R(4));
  t.deepEqual(ki.generations(), [[4, 5], []]);
  ki.compact(R(5));
  t.deepEqual(ki.entries, []);
});

test('mvcc: compaction removes a key whose only generation is a tombstone', (t) => {
  const s = new ShardStore();
  const w = new Writer(s);
  w.commit(['a', '1']);
  w.commit(['a']);
  w.commit(['b', '1']);
  t.is(s.stats().keys, 2);
  s.compact(R(3));
  t.deepEqual(s.stats(), { keys: 1, revisions: 1, bytes: s.stats().bytes });
  t.deepEqual(s.range(get('a', { rangeEnd: '\0' }), R(0)).kvs.map((kv) => kv.key), ['b']);
});

test('mvcc: compaction keeps what reads at the compact revision and later need', (t) => {
  const s = new ShardStore();
  const w = new Writer(s);
  w.commit(['k', 'v1']); // 2
  w.commit(['k', 'v2']); // 3
  w.commit(['x', 'x']); // 4
  w.commit(['k', 'v3']); // 5
  s.compact(R(4));
  t.like(s.range(get('k'), R(4)).kvs[0], { value: 'v2' });
  t.like(s.range(get('k'), R(5)).kvs[0], { value: 'v3' });
  t.is(s.stats().revisions, 3);
});

test('mvcc: range at a compacted revision errors', (t) => {
  const s = new ShardStore();
  const w = new Writer(s);
  w.commit(['k', 'v1']);
  w.commit(['k', 'v2']);
  s.compact(R(3));
  t.throws(() => s.range(get('k'), R(2)), {
    instanceOf: ErrCompacted, message: 'mvcc: required revision has been compacted',
  });
  t.notThrows(() => s.range(get('k'), R(3)));
});

test('mvcc: range at a future revision errors', (t) => {
  const s = new ShardStore();
  new Writer(s).commit(['k', 'v']);
  t.throws(() => s.range(get('k'), R(3)), {
    instanceOf: ErrFutureRev, message: 'mvcc: required revision is a future revision',
  });
});

test('mvcc: an empty apply still advances the shard revision', (t) => {
  const s = new ShardStore();
  s.apply(R(5), []);
  t.is(s.currentRevision as number, 5);
  t.throws(() => s.apply(R(5), []), { instanceOf: AssertionFailed });
});

test('mvcc: a shard refuses a put that does not continue the key', (t) => {
  const s = new ShardStore();
  const kv = { key: 'k', value: '', modRevision: R(2), createRevision: R(2), version: 2,
    lease: 0 as LeaseId };
  t.throws(() => s.apply(R(2), [{ kind: 'put', kv }]), { instanceOf: AssertionFailed });
});

test('mvcc: history returns changes with prevKv in revision order', (t) => {
  const s = new ShardStore();
  const w = new Writer(s);
  w.commit(['a', '1']); // 2
  w.commit(['a', '2'], ['b', '1']); // 3
  w.commit(['a']); // 4
  const h = s.history(R(2), R(10), 'a', '\0');
  t.deepEqual(h.map((c) => [c.kind, c.kv.key, c.kv.modRevision, c.prevKv?.value]), [
    ['put', 'a', 2, undefined],
    ['put', 'a', 3, '1'],
    ['put', 'b', 3, undefined],
    ['delete', 'a', 4, '2'],
  ]);
  // A limit never splits a revision.
  t.is(s.history(R(2), R(10), 'a', '\0', 2).length, 3);
  t.deepEqual(s.history(R(3), R(3), 'b').map((c) => c.kv.key), ['b']);
});

test('mvcc: history may start at the compact revision but not before it', (t) => {
  const s = new ShardStore();
  const w = new Writer(s);
  w.commit(['a', '1']); // 2
  w.commit(['a', '2']); // 3
  w.commit(['b', '1']); // 4
  s.compact(R(3));
  t.throws(() => s.history(R(2), R(4), 'a', '\0'), { instanceOf: ErrCompacted });
  const h = s.history(R(3), R(4), 'a', '\0');
  t.deepEqual(h.map((c) => [c.kv.key, c.kv.modRevision]), [['a', 3], ['b', 4]]);
});

test('mvcc: a shard snapshot survives a msgpack round trip', (t) => {
  const s = new ShardStore();
  const w = new Writer(s);
  w.commit(['a', '\xff\x00binary']);
  w.commit(['a', 'two'], ['b', 'x']);
  w.commit(['b']);
  w.commit(['c', 'y']);
  s.compact(R(3));
  w.commit(['a', 'three']);
  const back = ShardStore.fromSnapshot(unpack(pack(s.toSnapshot())));
  t.deepEqual(back.stats(), s.stats());
  t.is(back.currentRevision, s.currentRevision);
  t.is(back.compactRevision, s.compactRevision);
  for (const rev of [3, 4, 5, 6]) {
    const q = get('a', { rangeEnd: '\0' });
    t.deepEqual(back.range(q, R(rev)), s.range(q, R(rev)), `at ${rev}`);
  }
  t.deepEqual(back.history(R(3), R(6), 'a', '\0'), s.history(R(3), R(6), 'a', '\0'));
  t.deepEqual([...back.latest()], [...s.latest()]);
});

test('mvcc: a dump numbers its keys in key order whatever order they were written in, and ' +
  'every row keeps its key', (t) => {
  const rnd = seeded(4242);
  const s = new ShardStore();
  const w = new Writer(s);
  const names = Array.from({ length: 200 }, (_, i) => `k/${String(i).padStart(3, '0')}`);
  for (let i = 0; i < 600; i++) {
    const k = names[Math.floor(rnd() * names.length)]!;
    w.commit(rnd() < 0.15 && s.range(get(k), R(s.currentRevision)).kvs.length > 0 ? [k]
      : [k, `v${i}`]);
    if (i === 300) s.compact(R(s.currentRevision - 50));
  }
  const c = decodeShardSnapshot(unpack(pack(s.toSnapshot())));
  const keys = c.keys.toArray();
  t.deepEqual(keys, [...keys].sort(), 'keys ascending: a load sorts nothing');
  const back = ShardStore.fromSnapshot(unpack(pack(s.toSnapshot())));
  t.deepEqual(back.history(R(s.compactRevision), R(s.currentRevision), 'k/', 'k0'),
    s.history(R(s.compactRevision), R(s.currentRevision), 'k/', 'k0'));
  t.deepEqual([...back.latest()], [...s.latest()]);
});

test('mvcc: a restored shard store keeps its keys packed; its dump, history and compaction ' +
  'read them right, before and after the chunks are touched', (t) => {
  const rnd = seeded(777);
  const s = new ShardStore();
  const w = new Writer(s);
  const names = Array.from({ length: 3_000 }, (_, i) => `key/${String(i).padStart(5, '0')}`);
  for (const k of names) w.commit([k, `first ${k}`]);
  for (let i = 0; i < 2_000; i++) {
    const k = names[Math.floor(rnd() * names.length)]!;
    w.commit(w.live.has(k) && rnd() < 0.2 ? [k] : [k, `v${i}`]);
  }
  const dump = unpack(pack(s.toSnapshot()));
  const restored = ShardStore.fromSnapshot(dump);
  t.true(restored.memory().packedKeyBytes > 0, 'the restore kept its keys packed');
  // A dump of an untouched restore copies the packed keys: it is the dump it loaded.
  t.deepEqual(unpack(pack(restored.toSnapshot())), dump);
  // History and compaction name restored rows' keys from the packed table.
  const from = R(s.currentRevision - 1_500);
  t.deepEqual(restored.history(from, R(s.currentRevision), 'key/', 'key0'),
    s.history(from, R(s.currentRevision), 'key/', 'key0'));
  // Writes to a few keys touch a few chunks; the next dump mixes strings and packed keys.
  const w2 = Object.assign(new Writer(restored), { rev: w.rev, live: new Map(w.live) });
  for (const k of ['key/00007', 'key/02999', 'key/new']) {
    w.commit([k, 'again']);
    w2.commit([k, 'again']);
  }
  t.deepEqual(unpack(pack(restored.toSnapshot())), unpack(pack(s.toSnapshot())));
  s.compact(R(s.currentRevision - 100));
  restored.compact(R(restored.currentRevision - 100));
  t.deepEqual(unpack(pack(restored.toSnapshot())), unpack(pack(s.toSnapshot())));
  t.deepEqual([...restored.latest()], [...s.latest()]);
});

test('mvcc: a dump with its values in pieces is the same dump, written as it stood, while ' +
  'the store writes on and compacts', (t) => {
  const rnd = seeded(4242);
  const s = new ShardStore();
  const w = new Writer(s);
  const names = Array.from({ length: 2_000 }, (_, i) => `key/${String(i).padStart(5, '0')}`);
  // The dump each way, decoded (a small values field is packed in place, not last).
  type Pieces = { parts: Uint8Array[]; values: Uint8Array[] };
  const bytesOf = (dump: object) =>
    JSON.stringify(Object.entries(dump).sort().map(([k, v]) =>
      [k, v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v]));
  const dumpOf = ({ parts, values }: Pieces) =>
    ({ ...unpack<object>(Buffer.concat(parts)), valueBytes: Buffer.concat(values) });
  // As a shard sends it for a snapshot file: its values apart from the rest.
  const asPieces = (shareMin: number): Pieces => {
    const { valueBytes, ...d } = s.toSnapshotPieces(shareMin);
    return { parts: packBinFieldsApart(d), values: valueBytes };
  };
  for (const k of names) w.commit([k, `first ${k} `.repeat(1 + Math.floor(rnd() * 4))]);
  for (let round = 0; round < 4; round++) {
    for (let i = 0; i < 1_500; i++) {
      const k = names[Math.floor(rnd() * names.length)]!;
      w.commit(w.live.has(k) && rnd() < 0.2 ? [k] : [k, `v${round}.${i}`.repeat(3)]);
    }
    if (round === 2) s.compact(R(s.currentRevision - 700));
    const want = bytesOf(unpack<object>(Buffer.concat(packBinFieldsApart(s.toSnapshot()))));
    const pieces = asPieces(256);
    t.is(bytesOf(dumpOf(pieces)), want, `round ${round}`);
    t.true(pieces.values.some((p) => p.buffer instanceof SharedArrayBuffer),
      `round ${round}: some values are views of the arena`);
    t.is(bytesOf(dumpOf(asPieces(Infinity))), want);
    // The store goes on: more writes, a compaction, a rebuilt arena. The dump as it stood is
    // still what its parts say, and it restores the store as it was.
    const before = [...s.latest()];
    for (let i = 0; i < 3_000; i++) w.commit([names[i % names.length]!, `later ${i}`]);
    s.compact(R(s.currentRevision - 10));
    t.is(bytesOf(dumpOf(pieces)), want, `round ${round}: after later writes`);
    // Restored from the dump and its values apart, as from a snapshot file.
    const restored = ShardStore.fromSnapshot(unpack(Buffer.concat(pieces.parts)), false,
      Buffer.concat(pieces.values));
    t.deepEqual([...restored.latest()], before);
  }
});

test('mvcc: a corrupt snapshot is refused with a typed error', (t) => {
  const s = new ShardStore();
  new Writer(s).commit(['a', '1']);
  const good = s.toSnapshot();
  const bad = (x: unknown) => t.throws(() => ShardStore.fromSnapshot(x), {
    instanceOf: ErrSnapshotCorrupt,
  });
  const f64 = (...xs: number[]) => new Uint8Array(new Float64Array(xs).buffer);
  const u32 = (...xs: number[]) => new Uint8Array(new Uint32Array(xs).buffer);
  bad(null);
  bad({ ...good, format: 'other' });
  bad({ ...good, mod: new Uint8Array(0) });
  bad({ ...good, mod: [2] }); // not binary
  bad({ ...good, key: u32(7) });
  bad({ ...good, mod: f64(1.5) });
  bad({ ...good, valueLens: u32(2) }); // lengths that do not add up to the bytes
  bad({ ...good, keyLens: u32(9) });
  bad({ ...good, version: f64(0) }); // history starting with a tombstone
  bad({ ...good, currentRevision: 1 });
  const v1 = v1Of(s);
  t.notThrows(() => ShardStore.fromSnapshot(v1));
  bad({ ...v1, mod: [] });
  bad({ ...v1, key: [7] });
  bad({ ...v1, value: ['\u0100'] });
  bad({ ...v1, version: [0] });
  bad({ ...v1, currentRevision: 1 });
});

test('mvcc: shardOf is FNV-1a and never changes', (t) => {
  // Reference hashes computed independently (FNV-1a 32-bit of one byte).
  t.is(shardOf('foo', 3), 0);
  t.is(shardOf('', 3), 1);
  t.deepEqual(['a', 'b', 'c', 'd', '\xff'].map((k) => shardOf(k, 7)), [
    0xe40c292c % 7, 0xe70c2de5 % 7, 0xe60c2c52 % 7, 0xe10c2473 % 7, 0x7a0b824e % 7,
  ].map((h) => h >>> 0));
});

test('mvcc: mergeRanges picks the global best limit and sums counts', (t) => {
  const kv = (key: string, mod: number): KeyValue => ({
    key, value: '', modRevision: R(mod), createRevision: R(1), version: 1, lease: 0 as LeaseId,
  });
  const req = get('a', { rangeEnd: 'z', limit: 2, sortOrder: 'DESCEND', sortTarget: 'MOD' });
  const r = mergeRanges(req, [
    { type: 'range', kvs: [kv('a', 9), kv('c', 4)], more: true, count: 3 },
    { type: 'range', kvs: [kv('b', 7)], more: false, count: 1 },
  ]);
  t.deepEqual(r.kvs.map((x) => x.key), ['a', 'b']);
  t.true(r.more);
  t.is(r.count, 4);
});

/** threeShards writes `commits` random puts and deletes of keys k/000… (one of `keys`) to
 * three shards, with the same revisions on every shard (as the Applier keeps them): each
 * commit writes one shard's key and advances the others empty. */
function threeShards(rnd: () => number, commits: number, keys: number,
  value: (i: number) => string): { shards: ShardStore[]; writers: Writer[] } {
  const shards = [new ShardStore(), new ShardStore(), new ShardStore()];
  const writers = shards.map((s) => new Writer(s));
  for (let i = 0; i < commits; i++) {
    const key = `k/${String(Math.floor(rnd() * keys)).padStart(3, '0')}`;
    const w = shardOf(key, shards.length);
    const live = writers[w]!.live.has(key);
    writers.forEach((x, j) => (j === w
      ? x.commit(live && rnd() < 0.3 ? [key] : [key, value(i)]) : x.commit()));
  }
  return { shards, writers };
}

test('mvcc: an uncounted range pages through shards to the same keys as a counted one, each ' +
  'shard stopping once it has its page', (t) => {
  const rnd = seeded(11);
  const { shards, writers } = threeShards(rnd, 600, 400, (i) => `v${i}`);
  const at = R(writers[0]!.rev - 100);
  for (const limit of [1, 7, 50]) {
    const pages = (uncounted: boolean): KeyValue[] => {
      const out: KeyValue[] = [];
      let key = '\0';
      for (;;) {
        const req = get(key, { rangeEnd: '\0', limit, ...(uncounted ? { uncounted } : {}) });
        const parts = shards.map((s) => s.range(req, at));
        if (uncounted) for (const p of parts) t.true(p.count <= limit + 1, `${p.count}`);
        const r = mergeRanges(req, parts);
        out.push(...r.kvs);
        if (!r.more) return out;
        key = r.kvs[r.kvs.length - 1]!.key + '\0';
      }
    };
    const counted = pages(false);
    t.true(counted.length > 100);
    t.deepEqual(pages(true), counted);
  }
});

test('mvcc: digest pages of every shard add up to the hash of every live key-value at the ' +
  'revision, and export pages hold their encodings, for any page size; a compacted revision ' +
  'is refused', (t) => {
  const rnd = seeded(12);
  const { shards, writers } = threeShards(rnd, 600, 400, (i) => `v${i}\u00ff`);
  for (const at of [R(writers[0]!.rev - 150), R(writers[0]!.rev)]) {
    // The model: every live key-value at `at`, read by a plain range, hashed one by one.
    const all = get('\0', { rangeEnd: '\0' });
    const kvs = mergeRanges(all, shards.map((s) => s.range(all, at))).kvs;
    t.true(kvs.length > 100);
    const want = kvs.reduce((h, kv) => addHashes(h, keyValueHash(kv)), 0);
    for (const limit of [1, 7, 50, 10_000]) {
      let hash = 0;
      let keys = 0;
      for (const s of shards) {
        for (let from = '\0'; ;) {
          const page = s.digest(from, limit, at, keyValueSpanHash);
          t.true(page.keys <= limit);
          hash = addHashes(hash, page.sum);
          keys += page.keys;
          if (page.last === undefined) break;
          from = page.last + '\0';
        }
      }
      t.is(keys, kvs.length, `limit ${limit}`);
      t.is(hash, want, `limit ${limit}`);
      // Export pages: each shard's key-values in its key order, encoded as the loader would.
      for (const [i, s] of shards.entries()) {
        const mine = kvs.filter((kv) => shardOf(kv.key, shards.length) === i);
        const got: Buffer[] = [];
        const mods: number[] = [];
        for (let from = '\0'; ;) {
          const page = s.exportPage(from, limit, at, spanEncoder)!;
          let start = 0;
          for (const end of page.ends) {
            got.push(Buffer.from(page.bytes.subarray(start, end)));
            start = end;
          }
          t.is(start, page.bytes.length);
          mods.push(...page.mods);
          if (page.last === undefined) break;
          from = page.last + '\0';
        }
        t.deepEqual(got.map((b) => b.toString('hex')),
          mine.map((kv) => Buffer.from(keyValueProto(kv)).toString('hex')), `limit ${limit}`);
        t.deepEqual(mods, mine.map((kv) => kv.modRevision));
      }
    }
  }
  shards[0]!.compact(R(writers[0]!.rev - 100));
  t.throws(() => shards[0]!.digest('\0', 10, R(writers[0]!.rev - 150), keyValueSpanHash),
    { instanceOf: ErrCompacted });
});

test('mvcc: a range the shards write as bytes (rangeEntries, merged by key) is byte for byte ' +
  'the general path\'s answer, for any keys, limit, revision and keys_only', (t) => {
  const rnd = seeded(13);
  const { shards, writers } = threeShards(rnd, 500, 300,
    () => 'v'.repeat(Math.floor(rnd() * 150)));
  const header = { clusterId: 1, memberId: 2, revision: R(writers[0]!.rev), raftTerm: 3 };
  const k = () => `k/${String(Math.floor(rnd() * 320)).padStart(3, '0')}`;
  let nonEmpty = 0;
  for (let i = 0; i < 400; i++) {
    const shape = Math.floor(rnd() * 4);
    const [a, b] = [k(), k()].sort();
    const req = get(shape === 0 ? k() : a!, {
      ...(shape === 1 ? { rangeEnd: b! } : shape === 2 ? { rangeEnd: '\0' } : shape === 3
        ? { key: 'k/1', rangeEnd: 'k/2' } : {}),
      limit: [0, 0, 1, 7, 50, 1000][Math.floor(rnd() * 6)]!,
      ...(rnd() < 0.4 ? { keysOnly: true } : {}),
      ...(rnd() < 0.3 ? { sortOrder: 'ASCEND' as const, sortTarget: 'KEY' as const } : {}),
    });
    t.true(entriesRangeable(req));
    const at = R(writers[0]!.rev - Math.floor(rnd() * 200));
    const asked = req.rangeEnd === undefined ? [shards[shardOf(req.key, 3)]!] : shards;
    const want = rangeResponseBytes(header, mergeRanges(req, asked.map((s) => s.range(req, at))));
    const got = mergeEntries(req, asked.map((s) => {
      const r = s.rangeEntries(req, at, entryEncoder)!;
      // The ends as a message delivers them: little-endian bytes at any offset.
      const ends = Buffer.alloc(1 + r.ends.length * 4);
      r.ends.forEach((e, i) => ends.writeUInt32LE(e, 1 + i * 4));
      return { ...r, ends: ends.subarray(1) };
    }));
    nonEmpty += got.entries.length > 0 ? 1 : 0;
    t.deepEqual(rangeEntriesResponse(header, got.entries, got.more, got.count), want,
      JSON.stringify(req));
  }
  t.true(nonEmpty > 200);
  for (const other of [{ countOnly: true }, { sortOrder: 'DESCEND' as const },
    { sortTarget: 'MOD' as const }, { minModRevision: R(3) }]) {
    t.false(entriesRangeable(get('a', other)), JSON.stringify(other));
  }
});

test('mvcc: latestOfSnapshot equals a restored store\'s latest versions', (t) => {
  const rnd = seeded(7);
  const shard = new ShardStore();
  const live = new Map<string, number>();
  for (let rev = 2; rev < 400; rev++) {
    const key = `k${Math.floor(rnd() * 40)}`;
    const prev = live.get(key);
    if (prev !== undefined && rnd() < 0.3) {
      shard.apply(rev as Revision, [{ kind: 'delete', kv: tombstoneOf(key, rev as Revision) }]);
      live.delete(key);
      continue;
    }
    const created = prev ?? rev;
    const version = prev === undefined ? 1
      : shard.range({ type: 'range', key }, (rev - 1) as Revision).kvs[0]!.version + 1;
    shard.apply(rev as Revision, [{ kind: 'put', kv: {
      key, value: `v${rev}`, createRevision: created as Revision, modRevision: rev as Revision,
      version, lease: 0 as LeaseId,
    } }]);
    live.set(key, created);
    if (rev % 97 === 0) shard.compact((rev - 50) as Revision);
  }
  const snap = unpack(pack(shard.toSnapshot()));
  const byKey = (a: { key: string }, b: { key: string }) => (a.key < b.key ? -1 : 1);
  const want = [...ShardStore.fromSnapshot(snap).latest()].sort(byKey);
  t.true(want.length > 5);
  t.deepEqual(latestOfSnapshot(snap).sort(byKey), want);
});

/** v1Of writes a store's dump in the previous format (myetcd.mvcc.shard.v1), row for row as
 * the builds before the compact store wrote it. */
function v1Of(s: ShardStore): ShardSnapshotV1 {
  const c = decodeShardSnapshot(unpack(pack(s.toSnapshot())));
  const values: string[] = [];
  let o = 0;
  for (let i = 0; i < c.rows; i++) {
    values.push(Buffer.from(c.valueBytes.subarray(o, o + c.valueLens[i]!)).toString('latin1'));
    o += c.valueLens[i]!;
  }
  return {
    format: shardSnapshotFormatV1, currentRevision: c.currentRevision,
    compactRevision: c.compactRevision, keys: c.keys.toArray(), key: [...c.key], mod: [...c.mod],
    create: [...c.create], version: [...c.version], lease: [...c.lease], value: values,
  };
}

test('mvcc: a v1 shard snapshot (the previous format) still loads and reads the same', (t) => {
  // Written by hand as a build before the compact store wrote it: foo put@2, put@3,
  // delete@4, put@5; bar put@3 with a lease; compacted at 3.
  const v1: ShardSnapshotV1 = {
    format: shardSnapshotFormatV1, currentRevision: 5, compactRevision: 3,
    keys: ['foo', 'bar'],
    key: [0, 1, 0, 0],
    mod: [3, 3, 4, 5],
    create: [2, 3, 0, 5],
    version: [2, 1, 0, 1],
    lease: [0, 7, 0, 0],
    value: ['b\xff', 'x', '', 'c'],
  };
  const back = ShardStore.fromSnapshot(unpack(pack(v1)));
  const all = get('\0', { rangeEnd: '\0' });
  t.deepEqual(back.range(all, R(3)).kvs.map((kv) => [kv.key, kv.value, kv.version]),
    [['bar', 'x', 1], ['foo', 'b\xff', 2]]);
  t.deepEqual(back.range(all, R(4)).kvs.map((kv) => kv.key), ['bar']);
  t.deepEqual(back.range(all, R(5)).kvs.map((kv) => [kv.key, kv.createRevision, kv.lease]),
    [['bar', 3, 7], ['foo', 5, 0]]);
  t.throws(() => back.range(all, R(2)), { instanceOf: ErrCompacted });
  t.deepEqual(back.history(R(4), R(5), '\0', '\0').map((c) => [c.kind, c.kv.key]),
    [['delete', 'foo'], ['put', 'foo']]);
  // Random histories: the v1 dump and the v2 dump of one store load into equal stores.
  const rnd = seeded(11);
  const s = new ShardStore();
  const w = new Writer(s);
  for (let i = 0; i < 300; i++) {
    const k = `k${Math.floor(rnd() * 30)}`;
    w.commit(rnd() < 0.25 && w.live.has(k) ? [k] : [k, `v${i}\x80`]);
    if (i % 70 === 69) s.compact(R(s.currentRevision - 20));
  }
  const fromV1 = ShardStore.fromSnapshot(unpack(pack(v1Of(s))));
  const fromV2 = ShardStore.fromSnapshot(unpack(pack(s.toSnapshot())));
  for (let rev: number = s.compactRevision; rev <= s.currentRevision; rev += 7) {
    t.deepEqual(fromV1.range(all, R(rev)), s.range(all, R(rev)), `v1 at ${rev}`);
    t.deepEqual(fromV2.range(all, R(rev)), s.range(all, R(rev)), `v2 at ${rev}`);
  }
  const h = s.history(R(s.compactRevision), R(s.currentRevision), '\0', '\0');
  t.deepEqual(fromV1.history(R(s.compactRevision), R(s.currentRevision), '\0', '\0'), h);
  t.deepEqual(fromV2.history(R(s.compactRevision), R(s.currentRevision), '\0', '\0'), h);
  t.deepEqual(fromV1.stats(), s.stats());
  t.deepEqual(fromV2.stats(), s.stats());
});

test('shard: keys repacked after many writes read back the same history, ranges, dump and ' +
  'compaction, and take writes again', (t) => {
  const s = new ShardStore();
  const w = new Writer(s);
  const keys = Array.from({ length: 3_000 },
    (_, i) => `k/${String(i * 7 % 3_000).padStart(4, '0')}`);
  for (let i = 0; i < keys.length; i += 10) {
    w.commit(...keys.slice(i, i + 10).map((k): [string, string] => [k, `v1-${k}`]));
  }
  const mid = w.rev;
  for (let i = 0; i < keys.length; i += 3) w.commit([keys[i]!, `v2-${keys[i]}`]);
  w.commit([keys[5]!]); // a delete
  const look = (from = 2) => ({
    history: s.history(R(from), R(w.rev), '\0', '\xff'),
    now: s.range({ type: 'range', key: '\0', rangeEnd: '\xff' }, R(0)),
    then: s.range({ type: 'range', key: 'k/1', rangeEnd: 'k/2' }, R(Math.max(from, mid))),
    dump: unpack(pack(s.toSnapshot())),
  });
  const before = look();
  t.is(s.repackKeys(1_000), 0, 'the first pass marks every chunk, all written to');
  const packed = s.repackKeys(1_000);
  t.is(packed, keys.length, 'the second packs every key with history');
  t.deepEqual(look(), before);
  // Writes to packed keys (their chunks become strings again), a new key, a compaction.
  w.commit([keys[1]!, 'v3'], ['k/zz', 'new']);
  w.commit([keys[2]!]);
  s.compact(R(mid + 5));
  w.commit([keys[1]!, 'v4']);
  const after = look(mid + 5);
  t.deepEqual(after.now.kvs.find((kv) => kv.key === keys[1])?.value, 'v4');
  t.is(s.repackKeys(1_000) + s.repackKeys(1_000) > 0, true);
  t.deepEqual(look(mid + 5), after);
  const back = ShardStore.fromSnapshot(unpack(pack(s.toSnapshot())));
  t.deepEqual(back.history(R(mid + 5), R(w.rev), '\0', '\xff'),
    s.history(R(mid + 5), R(w.rev), '\0', '\xff'));
});
