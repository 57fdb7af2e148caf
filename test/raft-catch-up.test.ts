import test from 'ava';
import { EntryConfChange, EntryNormal, MemoryStorage, type Entry } from '../src/raft/index.js';
import { entryViewBufferMax, raftEntryOverheadBytes } from '../src/constants.js';
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
  // Already its own buffer: kept as it is (the same bytes, not a copy).
  t.is(b!.data.buffer, whole.buffer);
  t.is(b!.data.byteLength, 30);
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
  t.is(x!.data.buffer, slab.buffer);
  t.deepEqual([x!.data.byteOffset, x!.data.byteLength], [0, 40]);
  t.is(y!.data.buffer, slab.buffer, 'both still share the slab');
  t.deepEqual([y!.data.byteOffset, y!.data.byteLength], [40, 60]);
  slab[45] = 9;
  t.is(y!.data[5], 9, 'a view of the slab, not a copy');
  t.deepEqual(s.memory(), { entries: 2, entryBytes: 100, snapshotBytes: 0 });
});

/** A naive log: the entries in an array, index i at position i - first. */
interface NaiveLog {
  first: number; // index of the first entry kept (snapshot index + 1)
  snapTerm: number;
  ents: { term: number; type: number; bytes: number[] }[];
}

test('raft storage: the log as columns answers term, entries (with their size limit), ' +
  'firstIndex and lastIndex as an array of entries does, through random appends (with ' +
  'conflicting suffixes), compactions and snapshots', (t) => {
  for (let run = 0; run < 200; run++) {
    const seed = 5000 + run;
    const rng = seeded(seed);
    const s = new MemoryStorage();
    const m: NaiveLog = { first: 1, snapTerm: 0, ents: [] };
    let term = 1;
    const last = () => m.first + m.ents.length - 1;
    const slab = new Uint8Array(entryViewBufferMax);
    let slabUsed = 0;
    for (let step = 0; step < 60; step++) {
      const r = rng();
      if (r < 0.55) {
        // Append at a random point from the first index to just past the last (a suffix
        // that conflicts is replaced), sometimes in a slab, sometimes a buffer of its own.
        const at = randomInt(rng, m.first, last() + 2);
        if (rng() < 0.3) term++;
        const n = randomInt(rng, 1, 8);
        const ents: Entry[] = [];
        const model: NaiveLog['ents'] = [];
        for (let k = 0; k < n; k++) {
          const len = randomInt(rng, 0, 40);
          const bytes = Array.from({ length: len }, () => randomInt(rng, 0, 256));
          let data: Uint8Array;
          if (rng() < 0.5 && slabUsed + len <= slab.length) {
            data = slab.subarray(slabUsed, slabUsed + len);
            slabUsed += len;
          } else data = new Uint8Array(len);
          data.set(bytes);
          const type = rng() < 0.1 ? EntryConfChange : EntryNormal;
          ents.push({ term: term as Term, index: (at + k) as Index, type, data });
          model.push({ term, type, bytes });
        }
        s.append(ents);
        m.ents.length = at - m.first;
        m.ents.push(...model);
      } else if (r < 0.7 && m.ents.length > 0) {
        const c = randomInt(rng, m.first, last() + 1);
        if (rng() < 0.5) {
          const snap = s.createSnapshot(c as Index, cs(), new Uint8Array(1));
          t.is(snap.metadata.term, m.ents[c - m.first]!.term as Term, `seed ${seed}`);
        }
        s.compact(c as Index);
        m.snapTerm = m.ents[c - m.first]!.term;
        m.ents = m.ents.slice(c - m.first + 1);
        m.first = c + 1;
      }
      t.is(s.firstIndex(), m.first as Index, `seed ${seed} step ${step}`);
      t.is(s.lastIndex(), last() as Index, `seed ${seed} step ${step}`);
      t.is(s.term((m.first - 1) as Index), m.snapTerm as Term, `seed ${seed}`);
      t.throws(() => s.term((m.first - 2) as Index), undefined, `seed ${seed}`);
      t.throws(() => s.term((last() + 1) as Index), undefined, `seed ${seed}`);
      if (m.ents.length === 0) continue;
      const lo = randomInt(rng, m.first, last() + 1);
      const hi = randomInt(rng, lo + 1, last() + 2);
      const maxBytes = rng() < 0.5 ? Infinity : randomInt(rng, 0, 200);
      const got = s.entries(lo as Index, hi as Index, maxBytes);
      // The naive limit: at least one entry, then while the sum of sizes fits.
      let size = 0;
      let want = 0;
      for (let i = lo; i < hi; i++) {
        size += m.ents[i - m.first]!.bytes.length + raftEntryOverheadBytes;
        if (want > 0 && size > maxBytes) break;
        want++;
      }
      t.is(got.length, want, `seed ${seed} step ${step}`);
      got.forEach((e, k) => {
        const w = m.ents[lo + k - m.first]!;
        t.is(e.index, (lo + k) as Index);
        t.deepEqual([e.term, e.type, [...e.data]], [w.term, w.type, w.bytes], `seed ${seed}`);
        t.is(s.term(e.index), w.term as Term);
      });
    }
  }
});
