/**
 * ShardReads (src/mvcc/shard-reads.ts): a shard's reads wait for what they must see, and a
 * rewind (entries applied ahead of a failed append, taken back) fails exactly the reads that
 * took the point moved ahead, whether they were waiting or arrive after it.
 */
import test from 'ava';
import type { ShardRange } from '../actors/shard/messages.js';
import { ShardReads } from '../src/mvcc/index.js';

function read(waitRevision: number, waitIndex: number, rewinds?: number): ShardRange {
  return {
    type: 'ShardRange', req: { type: 'range', key: 'k' }, atRevision: waitRevision,
    waitRevision, waitIndex, ...(rewinds === undefined ? {} : { rewinds }),
  };
}

/** shard: a ShardReads over a store at `rev.value`. */
function shard(revision: number, index: number) {
  const rev = { value: revision };
  const reads = new ShardReads<string, ShardRange>(() => rev.value);
  reads.restored(index);
  return { rev, reads };
}

test('shard reads: a read runs when the shard has applied its revision and index, waits ' +
  'otherwise, and leaves in order once caught up', (t) => {
  const { rev, reads } = shard(5, 7);
  t.is(reads.admit(read(5, 7, 0), 'now'), 'run');
  t.is(reads.admit(read(6, 7, 0), 'a'), 'wait', 'revision not applied');
  t.is(reads.admit(read(5, 9, 0), 'b'), 'wait', 'index not applied');
  t.is(reads.admit(read(8, 10, 0), 'c'), 'wait');
  t.is(reads.size, 3);
  t.deepEqual(reads.drain(), [], 'nothing new applied');
  rev.value = 6;
  reads.applied(9);
  t.deepEqual(reads.drain().map((w) => w.token), ['a', 'b']);
  reads.applied(8);
  t.is(reads.appliedIndex, 9, 'an older index does not move it back');
  rev.value = 8;
  reads.applied(10);
  t.deepEqual(reads.drain().map((w) => w.token), ['c']);
  t.is(reads.size, 0);
});

test('shard reads: a rewind takes back the waiting reads that took the point moved ahead, ' +
  'and those that arrive after it; not the others', (t) => {
  const { rev, reads } = shard(5, 7);
  t.is(reads.admit(read(6, 9, 0), 'ahead'), 'wait', 'took the point moved ahead');
  t.is(reads.admit(read(5, 8, 0), 'index ahead'), 'wait');
  t.is(reads.admit(read(6, 9), 'no point'), 'wait', 'a read index answer: never taken back');
  // The entries applied ahead (index 8–9, revision 6) are taken back: position 7 / 5.
  t.deepEqual(reads.rewind({ index: 7, revision: 5, rewinds: 1 }), ['ahead', 'index ahead']);
  t.is(reads.size, 1);
  t.is(reads.admit(read(6, 9, 0), 'late'), 'takenBack',
    'a read that took the old point and arrives after the rewind');
  t.is(reads.admit(read(5, 7, 0), 'old but durable'), 'run',
    'the old point at or below the rewind: nothing of it was taken back');
  t.is(reads.admit(read(6, 9, 1), 'new'), 'wait', 'a point taken after the rewind waits');
  // New entries reuse index 8–9 and revision 6, with other writes.
  rev.value = 6;
  reads.applied(9);
  t.deepEqual(reads.drain().map((w) => w.token), ['no point', 'new']);
  t.is(reads.admit(read(6, 9, 0), 'later still'), 'run',
    'caught up: the numbers now name writes that were applied and are durable');
});
