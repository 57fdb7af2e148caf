import test from 'ava';
import { PackedKeys, PackedKeysBuilder } from '../src/mvcc/packed-keys.js';
import { seeded } from './helpers/rng.js';

/** randomKey draws a byte string from a small alphabet with "\0" and "\xff", prefixes of
 * each other included; half of them long enough to be compared a word at a time, so that
 * keys differ inside words, at their edges and in the bytes after the last whole word. */
function randomKey(rnd: () => number): string {
  const n = Math.floor(rnd() * (rnd() < 0.5 ? 6 : 24));
  let s = rnd() < 0.3 ? 'registry/' : '';
  for (let i = 0; i < n; i++) s += String.fromCharCode([0, 0x61, 0x62, 0x80, 0xff][
    Math.floor(rnd() * 5)]!);
  return s;
}

test('packed keys: compare, ascending and sort follow the order of Bytes strings', (t) => {
  const rnd = seeded(Number(process.env.MVCC_SEED ?? 0x5eed));
  const keys = Array.from({ length: 3_000 }, () => randomKey(rnd));
  const table = PackedKeys.fromStrings(keys);
  t.is(table.count, keys.length);
  t.deepEqual(table.toArray(), keys);
  for (let i = 0; i < 5_000; i++) {
    const a = Math.floor(rnd() * keys.length);
    const b = Math.floor(rnd() * keys.length);
    const want = keys[a]! < keys[b]! ? -1 : keys[a]! > keys[b]! ? 1 : 0;
    if (Math.sign(table.compare(a, b)) !== want) {
      t.fail(`compare ${JSON.stringify(keys[a])} ${JSON.stringify(keys[b])}`);
    }
  }
  const distinct = [...new Set(keys)];
  const d = PackedKeys.fromStrings(distinct);
  const nos = d.sort(new Uint32Array(distinct.length).map((_, i) => i));
  t.deepEqual([...nos].map((k) => d.keyAt(k)), [...distinct].sort());
  t.true(d.ascending(nos));
  t.false(d.ascending(new Uint32Array([nos[1]!, nos[0]!])));
  t.false(d.ascending(new Uint32Array([nos[0]!, nos[0]!])), 'equal keys are not ascending');
});

test('packed keys: word compares stay inside both keys, the last of a table included', (t) => {
  for (let len = 8; len <= 17; len++) {
    const short = 'k'.repeat(len);
    // The short key ends the table's buffer: a word read past it would throw.
    const table = PackedKeys.fromStrings([`${short}kkkkk`, short]);
    t.true(table.compare(1, 0) < 0, `${len}`);
    t.true(table.compare(0, 1) > 0, `${len}`);
    t.is(table.compare(1, 1), 0);
    const other = PackedKeys.fromStrings([`${short.slice(0, -1)}j`, `${short}\0`]);
    t.true(table.compareWith(1, other, 0) > 0, 'differs in the last byte');
    t.true(table.compareWith(1, other, 1) < 0, 'a prefix of the other');
  }
});

test('packed keys: a builder copies strings and other tables\' keys byte for byte', (t) => {
  const a = PackedKeys.fromStrings(['', 'x\xff\0', 'long/key/with/a/prefix']);
  const b = new PackedKeysBuilder();
  for (let i = 0; i < 2_000; i++) { // past the builder's first buffer and offsets
    if (i % 2 === 0) b.addFrom(a, i % 3);
    else b.addString(`s${i}`);
  }
  const c = b.finish();
  t.is(c.count, 2_000);
  t.is(c.keyAt(0), '');
  t.is(c.keyAt(2), 'long/key/with/a/prefix');
  t.is(c.keyAt(4), 'x\xff\0');
  t.is(c.keyAt(1999), 's1999');
  t.is(c.lengthOf(4), 3);
  t.deepEqual([...c.lengths().subarray(0, 3)], [0, 2, 22]);
  t.is(c.compareWith(4, a, 1), 0);
  t.true(c.compareWith(0, a, 1) < 0, 'the empty key sorts first');
});

test('packed keys: lengths that do not add up to the bytes are refused', (t) => {
  t.is(PackedKeys.fromLengths(new Uint8Array(5), [2, 2]), undefined);
  t.is(PackedKeys.fromLengths(new Uint8Array(3), [2, 2]), undefined);
  const ok = PackedKeys.fromLengths(Buffer.from('abcd', 'latin1'), [1, 3])!;
  t.deepEqual(ok.toArray(), ['a', 'bcd']);
});

test('packed keys: a table owns its bytes, never a view of what it was loaded from', (t) => {
  const body = Buffer.from('xxabcdxx', 'latin1');
  const table = PackedKeys.fromLengths(body.subarray(2, 6), [2, 2])!;
  body.fill(0);
  t.deepEqual(table.toArray(), ['ab', 'cd']);
  t.not(table.bytes.buffer, body.buffer);
});

test('packed keys: a builder told the count and bytes fills one buffer; told too little, ' +
  'it grows', (t) => {
  const keys = ['a', 'bc', '', 'def'];
  const exact = new PackedKeysBuilder(keys.length, 6);
  for (const k of keys) exact.addString(k);
  const a = exact.finish();
  t.deepEqual(a.toArray(), keys);
  t.is(a.bytes.length, 6);
  const small = new PackedKeysBuilder(1, 1);
  for (const k of keys) small.addString(k);
  const b = small.finish();
  t.deepEqual(b.toArray(), keys);
  t.is(b.bytes.length, 6, 'trimmed to the bytes written');
  const none = new PackedKeysBuilder(0, 0).finish();
  t.is(none.count, 0);
});
