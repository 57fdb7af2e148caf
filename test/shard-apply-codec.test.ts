import test from 'ava';
import {
  AppliedWriter, type AppliedRevision, decodeApplied, encodeApplied,
} from '../actors/shard/messages.js';
import type { Change, KeyValue } from '../src/mvcc/types.js';
import { binaryString as bytes, seeded as rng } from './helpers/rng.js';
import type { LeaseId, Revision } from '../src/types.js';

function change(r: () => number, rev: number): Change {
  const put = r() < 0.7;
  const kv: KeyValue = {
    key: bytes(r, 1 + Math.floor(r() * 40)),
    createRevision: (put ? 1 + Math.floor(r() * rev) : 0) as Revision,
    modRevision: rev as Revision,
    version: put ? 1 + Math.floor(r() * 1e6) : 0,
    // Values of every size class: empty, small, and past the writer's first buffer.
    value: put ? bytes(r, r() < 0.1 ? 0 : r() < 0.9 ? Math.floor(r() * 200) : 5000) : '',
    lease: (put && r() < 0.3 ? Math.floor(r() * 2 ** 53) : 0) as LeaseId,
  };
  return { kind: put ? 'put' : 'delete', kv };
}

function revisions(r: () => number, count: number): AppliedRevision[] {
  const out: AppliedRevision[] = [];
  let rev = 1 + Math.floor(r() * 1e9);
  for (let i = 0; i < count; i++) {
    rev += 1;
    const n = r() < 0.2 ? 0 : 1 + Math.floor(r() * 6);
    const rv: AppliedRevision = { revision: rev, changes: [] };
    for (let j = 0; j < n; j++) rv.changes.push(change(r, rev));
    if (n > 0 && r() < 0.3) rv.subs = rv.changes.map(() => Math.floor(r() * 1000));
    if (r() < 0.1) rv.compact = Math.floor(r() * rev);
    out.push(rv);
  }
  return out;
}

test('applied revisions come back as they were written, any bytes and sizes', (t) => {
  for (let seed = 1; seed <= 200; seed++) {
    const r = rng(seed);
    const revs = revisions(r, Math.floor(r() * 40));
    const back = decodeApplied(encodeApplied(revs));
    t.deepEqual(back, revs, `seed ${seed}`);
  }
});

test('a change\'s previous version is not carried to the shard', (t) => {
  const kv: KeyValue = {
    key: 'k', createRevision: 2 as Revision, modRevision: 3 as Revision, version: 2,
    value: 'new', lease: 0 as LeaseId,
  };
  const prevKv = { ...kv, modRevision: 2 as Revision, version: 1, value: 'old' };
  const sent: AppliedRevision = { revision: 3, changes: [{ kind: 'put', kv, prevKv }] };
  const back = decodeApplied(encodeApplied([sent]));
  t.deepEqual(back, [{ revision: 3, changes: [{ kind: 'put', kv }] }]);
});

test('the writer gives each revision its own changes and the last revision it wrote', (t) => {
  const w = new AppliedWriter();
  t.is(w.lastRevision, 0);
  const a = change(rng(7), 5);
  w.revision(5, undefined, false);
  w.change(a, 0);
  w.revision(6, 4, false); // a compaction alone: no changes
  w.revision(7, undefined, true);
  const b = change(rng(8), 7);
  w.change(b, 3);
  t.is(w.lastRevision, 7);
  t.deepEqual(decodeApplied(w.finish()), [
    { revision: 5, changes: [{ kind: a.kind, kv: a.kv }] },
    { revision: 6, changes: [], compact: 4 },
    { revision: 7, changes: [{ kind: b.kind, kv: b.kv }], subs: [3] },
  ]);
});

test('bytes cut short or with a tail are refused, not read past', (t) => {
  const bytes = encodeApplied(revisions(rng(3), 5));
  const extra = new Uint8Array(bytes.length + 1);
  extra.set(bytes);
  t.throws(() => decodeApplied(extra), { message: /end where their bytes do/ });
  t.throws(() => decodeApplied(bytes.subarray(0, bytes.length - 1)));
});

test('a put whose value lies in the applier\'s arena carries its offset, one arena a batch',
  (t) => {
    const arenaBytes = new Uint8Array(new SharedArrayBuffer(64 * 1024));
    Buffer.from(arenaBytes.buffer).write('hello', 100, 'latin1');
    const arena = { id: 7, bytes: arenaBytes };
    const other = { id: 8, bytes: new Uint8Array(new SharedArrayBuffer(64 * 1024)) };
    const kv = (key: string, value: string, rev: number): KeyValue => ({
      key, createRevision: rev as Revision, modRevision: rev as Revision, version: 1, value,
      lease: 0 as LeaseId,
    });
    const w = new AppliedWriter();
    w.revision(5, undefined, false);
    t.true(w.takesArena(arena));
    w.change({ kind: 'put', kv: kv('a', 'hello', 5) }, 0, 100);
    t.false(w.takesArena(other), 'the batch already points into another arena');
    w.change({ kind: 'put', kv: kv('b', 'inline', 5) }, 1, -1);
    const fields = w.arenaFields();
    t.is(fields.arenaId, 7);
    t.is(fields.arena!.buffer, arenaBytes.buffer, 'the arena crosses as shared memory');
    t.deepEqual(w.arenaFields(7), { arenaId: 7 }, 'an arena the shard was sent is named only');
    const bytes = w.finish();
    const [rev] = decodeApplied(bytes);
    t.deepEqual(rev!.shared, { at: [100, -1], len: [5, 0] });
    t.is(rev!.changes[0]!.kv.value, '', 'left where it lies');
    t.is(rev!.changes[1]!.kv.value, 'inline');
    const [read] = decodeApplied(bytes, fields.arena);
    t.deepEqual(read!.changes.map((c) => c.kv.value), ['hello', 'inline']);
    t.is(read!.shared, undefined);
    // An arena too small to cross as shared memory (moveBytes) is not taken.
    const tiny = { id: 9, bytes: new Uint8Array(new SharedArrayBuffer(16)) };
    t.false(new AppliedWriter().takesArena(tiny));
  });
