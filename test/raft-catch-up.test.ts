import test from 'ava';
import { EntryNormal, MemoryStorage, type Entry } from '../src/raft/index.js';
import { entryViewBufferMax } from '../src/constants.js';
import type { Index, MemberId, Term } from '../src/types.js';
import { randomInt, seeded } from './helpers/rng.js';

const cs = () => ({ voters: [1 as MemberId], learners: [] as MemberId[] });
const entry = (index: number, data: Uint8Array): Entry => ({
  term: 1 as Term, index: index as Index, type: EntryNormal, data,
});

/** naiveCatchUp is the rule spelled out: keep the longest run of entries ending at `index`
 * with at most entriesMax entries and bytesMax bytes; compact to the one before it. */
function naiveCatchUp(sizes: number[], first: number, index: number, entriesMax: number,
  bytesMax: number): number {
  let best = index;
  for (let c = index; c >= first - 1; c--) {
    let bytes = 0;
    for (let i = c + 1; i <= index; i++) bytes += sizes[i]!;
    if (index - c <= entriesMax && bytes <= bytesMax) best = c;
  }
  return best;
}

test('raft storage: the entries kept behind a snapshot are bounded by count and by bytes, as ' +
  'a naive scan says, on random logs', (t) => {
  const runs = 300;
  for (let run = 0; run < runs; run++) {
    const seed = 1000 + run;
    const rng = seeded(seed);
    const s = new MemoryStorage();
    const sizes: number[] = [0];
    const n = randomInt(rng, 1, 60);
    const ents: Entry[] = [];
    for (let i = 1; i <= n; i++) {
      sizes.push(randomInt(rng, 0, 200));
      ents.push(entry(i, new Uint8Array(sizes[i]!)));
    }
    s.append(ents);
    // Sometimes compact first, so the log does not start at 1.
    let first = 1;
    if (n > 2 && rng() < 0.5) {
      const c = randomInt(rng, 1, n);
      s.compact(c as Index);
      first = c + 1;
    }
    const index = randomInt(rng, first, n + 1);
    const entriesMax = randomInt(rng, 0, 40);
    const bytesMax = randomInt(rng, 0, 2000);
    const got = s.catchUpCompactIndex(index as Index, entriesMax, bytesMax);
    const want = naiveCatchUp(sizes, first, index, entriesMax, bytesMax);
    t.is(got, want as Index, `seed ${seed}: index ${index}, first ${first}, ` +
      `entriesMax ${entriesMax}, bytesMax ${bytesMax}`);
    if (got > s.firstIndex()) s.compact(got);
    // What is kept is readable and within both bounds.
    if (index > got) {
      const kept = s.entries((got + 1) as Index, (index + 1) as Index, Infinity);
      t.true(kept.length <= entriesMax, `seed ${seed}`);
      t.true(kept.reduce((a, e) => a + e.data.byteLength, 0) <= bytesMax, `seed ${seed}`);
    }
  }
});

test('raft storage: the worked example of catchUpCompactIndex', (t) => {
  const s = new MemoryStorage();
  s.append(Array.from({ length: 10 }, (_, i) => entry(i + 1, new Uint8Array(100))));
  s.createSnapshot(10 as Index, cs(), new Uint8Array(1));
  t.is(s.catchUpCompactIndex(10 as Index, 5, 250), 8 as Index);
  t.is(s.catchUpCompactIndex(10 as Index, 5, 1000), 5 as Index);
  s.compact(8 as Index);
  t.is(s.catchUpCompactIndex(5 as Index, 5, 1000), 8 as Index); // already compacted past 5
});

test('raft storage: an appended entry that is a view into a buffer over entryViewBufferMax ' +
  'is copied into a slab of entries, so a kept entry does not keep the whole decoded ' +
  'message alive', (t) => {
  const s = new MemoryStorage();
  const frame = new Uint8Array(1 << 20);
  frame.fill(7, 100, 150);
  const view = frame.subarray(100, 150);
  const whole = new Uint8Array(30);
  s.append([entry(1, view), entry(2, whole)]);
  const [a, b] = s.entries(1 as Index, 3 as Index, Infinity);
  t.is(a!.data.byteLength, 50);
  t.not(a!.data.buffer, frame.buffer, 'copied out of the frame');
  t.true(a!.data.buffer.byteLength <= entryViewBufferMax, 'into a slab of entries');
  t.deepEqual([...a!.data], new Array<number>(50).fill(7));
  t.is(b!.data, whole); // already its own buffer: kept as is
  frame.fill(0);
  t.is(a!.data[0], 7);
  // A Buffer view (whose slice() is another view) is copied too.
  const buf = Buffer.alloc(entryViewBufferMax + 1, 3).subarray(10, 20);
  s.append([entry(3, buf)]);
  const c = s.entries(3 as Index, 4 as Index, Infinity)[0]!.data;
  t.not(c.buffer, buf.buffer);
  t.deepEqual([...c], new Array<number>(10).fill(3));
  t.deepEqual(s.memory(), { entries: 3, entryBytes: 90, snapshotBytes: 0 });
});

test('raft storage: a view into a buffer of at most entryViewBufferMax is kept as it is ' +
  '(the slabs this member frames its proposals in)', (t) => {
  const s = new MemoryStorage();
  const slab = new Uint8Array(entryViewBufferMax);
  const a = slab.subarray(0, 40);
  const b = Buffer.from(slab.buffer, 40, 60);
  s.append([entry(1, a), entry(2, b)]);
  const [x, y] = s.entries(1 as Index, 3 as Index, Infinity);
  t.is(x!.data, a);
  t.is(y!.data, b);
  t.is(x!.data.buffer, y!.data.buffer, 'both still share the slab');
  t.deepEqual(s.memory(), { entries: 2, entryBytes: 100, snapshotBytes: 0 });
});
