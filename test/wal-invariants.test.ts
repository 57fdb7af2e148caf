import test from 'ava';
import type { ExecutionContext } from 'ava';
import { AssertionFailed } from '../src/assert.js';
import { walBatchBytesMax } from '../src/constants.js';
import type { MemberId } from '../src/types.js';
import { WalStore } from '../actors/wal/wal-store.js';
import { frameEntries } from '../src/wal/index.js';
import { entry, hs, tmpDir } from './helpers/wal.js';

const logger = { warn: (): void => {}, info: (): void => {} };
const indexes = (w: WalStore): number[] => w.recovered.entries.map((e) => e.index);

function openTmp(t: ExecutionContext): { dir: string; w: WalStore } {
  const dir = tmpDir(t, 'myetcd-walinv-');
  return { dir, w: reopen(t, dir) };
}

function reopen(t: ExecutionContext, dir: string): WalStore {
  const w = WalStore.open(dir, { logger });
  t.teardown(() => w.close());
  return w;
}

test('wal store: an entry that would leave a gap is refused and nothing is written', (t) => {
  const { dir, w } = openTmp(t);
  w.save([entry(1, 1), entry(1, 2)], hs(1, 1));
  t.throws(() => w.save([entry(1, 4)]), { instanceOf: AssertionFailed, message: /leaves no gap/ });
  t.throws(() => w.save([entry(1, 3), entry(1, 5)]), { instanceOf: AssertionFailed });
  t.throws(() => w.save([entry(0, 3)]), { instanceOf: AssertionFailed, message: /term/ });
  w.save([entry(1, 3)]);
  t.deepEqual(indexes(reopen(t, dir)), [1, 2, 3]);
});

test('wal store: framed entries (the Raft node\'s appends) are held to the same rules, and ' +
  'one that breaks them writes nothing of its batch', (t) => {
  const { dir, w } = openTmp(t);
  const framed = (...es: ReturnType<typeof entry>[]) =>
    ({ type: 'framed' as const, bytes: frameEntries(es) });
  t.is(w.append([framed(entry(1, 1), entry(1, 2, 'b')), { type: 'state', state: hs(1, 1) }]), 2);
  t.throws(() => w.append([framed(entry(1, 3), entry(1, 5))]),
    { instanceOf: AssertionFailed, message: /leaves no gap/ });
  t.throws(() => w.append([framed(entry(0, 3))]), { instanceOf: AssertionFailed, message: /term/ });
  t.is(w.append([framed(entry(1, 3, 'c'))]), 1);
  const back = reopen(t, dir).recovered.entries;
  t.deepEqual(back.map((e) => [e.index, new TextDecoder().decode(e.data)]),
    [[1, 'e1'], [2, 'b'], [3, 'c']]);
});

test('wal store: a new leader may replace uncommitted entries, never committed ones', (t) => {
  const { dir, w } = openTmp(t);
  w.save([entry(1, 1), entry(1, 2), entry(1, 3)], hs(1, 1));
  t.throws(() => w.save([entry(2, 1, 'other')]), {
    instanceOf: AssertionFailed,
    message: /no entry would replace a committed entry/,
  });
  w.save([entry(2, 2, 'new2')], hs(2, 1, 2));
  const w2 = reopen(t, dir);
  t.deepEqual(indexes(w2), [1, 2]);
  t.is(new TextDecoder().decode(w2.recovered.entries[1]!.data), 'new2');
});

test('wal store: the hard state never moves back, nor changes its vote within a term', (t) => {
  const { w } = openTmp(t);
  w.save([entry(1, 1), entry(1, 2)], hs(2, 2, 1));
  t.throws(() => w.save([], hs(1, 2, 1)), { instanceOf: AssertionFailed, message: /term/ });
  t.throws(() => w.save([], hs(2, 2, 3)), { instanceOf: AssertionFailed, message: /vote/ });
  t.throws(() => w.save([], hs(2, 1, 1)), { instanceOf: AssertionFailed, message: /commit/ });
  t.throws(() => w.append([{ type: 'state', state: hs(2, 2, 3) }]), {
    instanceOf: AssertionFailed,
  });
  w.save([], hs(3, 2, 3));
  t.pass();
});

test('wal store: the metadata of a WAL never changes', (t) => {
  const { w } = openTmp(t);
  w.append([{ type: 'metadata', nodeId: 1 as MemberId, clusterId: 7 }]);
  w.append([{ type: 'metadata', nodeId: 1 as MemberId, clusterId: 7 }]);
  t.throws(() => w.append([{ type: 'metadata', nodeId: 2 as MemberId, clusterId: 7 }]), {
    instanceOf: AssertionFailed,
  });
});

test('wal store: a batch refused after encoding leaves the CRC chain as it is on disk', (t) => {
  // The encoder has already chained the big record's CRC when commit() refuses the batch; the
  // next batch must chain from the disk's last record, or recovery would read it as torn.
  const { dir, w } = openTmp(t);
  w.save([entry(1, 1)], hs(1, 1));
  const big = { ...entry(1, 2), data: new Uint8Array(walBatchBytesMax + 8) };
  t.throws(() => w.save([big]), { instanceOf: RangeError });
  w.save([entry(1, 2)], hs(1, 2));
  w.close();
  const w2 = reopen(t, dir);
  t.deepEqual(indexes(w2), [1, 2]);
  t.deepEqual(w2.recovered.hardState, hs(1, 2));
});
