/**
 * The Raft log's MemoryStorage (src/raft/storage.ts) against a naive model: an array of
 * entries after a compaction point. Random appends (some overwriting a suffix, as a follower's
 * conflicting append does), compactions and reads, enough to grow the log's columns past
 * their first capacity several times and to compact them back to the front while they are
 * in use. Seeded, so a failure repeats.
 */
import test from 'ava';
import { EntryConfChange, EntryNormal, MemoryStorage, type Entry } from '../src/raft/index.js';
import { seededRng } from '../src/raft/rand.js';
import type { Index, Term } from '../src/types.js';

const entry = (index: number, term: number, bytes: number, fill: number): Entry => ({
  index: index as Index, term: term as Term, type: fill % 7 === 0 ? EntryConfChange : EntryNormal,
  // Several entries share a buffer, as a slab of entries does.
  data: new Uint8Array(new ArrayBuffer(bytes + 8), 4, bytes).fill(fill & 0xff),
});

for (const seed of [1, 2, 3]) {
  test(`raft storage: appends, overwrites and compactions read back as a model's (seed ${seed})`,
    (t) => {
      const r = seededRng(seed);
      const s = new MemoryStorage();
      let offset = 0; // the model: entries offset+1 .. offset+model.length
      let offsetTerm = 0 as number;
      const model: Entry[] = [];
      let term = 1;
      let fill = 0;
      let longest = 0;
      for (let step = 0; step < 3000; step++) {
        const x = r();
        const last = offset + model.length;
        if (x < 0.6) {
          // Append n entries from a random point in the last few (a conflicting suffix).
          const from = Math.max(offset + 1, last + 1 - Math.floor(r() * 4));
          if (from <= last) term++;
          const n = 1 + Math.floor(r() * 40);
          const ents = Array.from({ length: n }, (_, k) =>
            entry(from + k, term, Math.floor(r() * 30), fill++));
          s.append(ents);
          model.length = from - offset - 1;
          model.push(...ents);
        } else if (x < 0.61 && model.length > 0) {
          const to = offset + 1 + Math.floor(r() * model.length);
          s.compact(to as Index);
          offsetTerm = model[to - offset - 1]!.term as number;
          model.splice(0, to - offset);
          offset = to;
        } else if (model.length > 0) {
          const lo = offset + 1 + Math.floor(r() * model.length);
          const hi = lo + 1 + Math.floor(r() * (offset + model.length - lo + 1));
          const got = s.entries(lo as Index, hi as Index, Infinity);
          const want = model.slice(lo - offset - 1, hi - offset - 1);
          t.is(got.length, want.length);
          for (let k = 0; k < got.length; k++) {
            const [g, w] = [got[k]!, want[k]!];
            if (g.index !== w.index || g.term !== w.term || g.type !== w.type ||
              Buffer.compare(g.data, w.data) !== 0) {
              t.fail(`step ${step}: entry ${w.index} read back as ${JSON.stringify(g)}`);
              return;
            }
          }
        }
        longest = Math.max(longest, model.length);
        t.is(s.lastIndex() as number, offset + model.length);
        t.is(s.firstIndex() as number, offset + 1);
        t.is(s.term(offset as Index) as number, offsetTerm);
        if (model.length > 0) {
          t.is(s.term(s.lastIndex()) as number, model[model.length - 1]!.term as number);
        }
      }
      // The columns start at 1,024 entries: the log outgrew that, twice.
      t.true(longest > 4096, `the longest log held ${longest} entries`);
    });
}
