/**
 * The read point a lone voter publishes (actors/raft/read-point.ts) and the seqlock cell it
 * travels in (src/runtime/shared-cell.ts): the cell's values survive the 32-bit split, a
 * reader on another thread never sees a record torn by the writer, the rule says when a read
 * may use the point, and an apply posts no answer before it has published.
 */
import { Worker } from 'node:worker_threads';
import test from 'ava';
import { publishReadPoint, readPointValid, type ReadPointState } from
  '../actors/raft/read-point.js';
import { StateMachine } from '../actors/raft/state-machine.js';
import { encodeProposal, encodeRequest } from '../src/cluster/proposal.js';
import { type Entry, EntryNormal } from '../src/raft/index.js';
import { SharedCell } from '../src/runtime/shared-cell.js';
import type { Index, Term } from '../src/types.js';

/** cellModuleUrl: the compiled shared-cell module, for the writer thread to import. */
const cellModuleUrl = new URL('../src/runtime/shared-cell.js', import.meta.url).href;
const delayTurn = () => new Promise<void>((r) => setImmediate(r));

test('shared cell: publish, read, withdraw and close; values up to 2^53 - 1', (t) => {
  const buf = new SharedArrayBuffer(SharedCell.bytes(3));
  const cell = new SharedCell(buf, 3);
  const out: number[] = [];
  t.false(cell.read(out), 'a new cell is invalid');
  const values = [Number.MAX_SAFE_INTEGER, 2 ** 32 + 5, 2 ** 31];
  cell.publish(values);
  t.true(cell.read(out));
  t.deepEqual(out, values);
  cell.publish([1, 0, 7]);
  t.true(new SharedCell(buf, 3).read(out), 'another view of the same memory reads it');
  t.deepEqual(out, [1, 0, 7]);
  cell.withdraw();
  t.false(cell.read(out));
  cell.publish([2, 2, 2]);
  t.true(cell.read(out));
  Atomics.store(new Int32Array(buf, 0, 1), 0, 1); // the supervisor closes the generation
  t.true(cell.closed);
  t.false(cell.read(out), 'a closed cell reads as invalid');
  t.throws(() => new SharedCell(new SharedArrayBuffer(8), 3), { instanceOf: RangeError });
});

test('shared cell: a reader on another thread never sees a torn record', async (t) => {
  const buf = new SharedArrayBuffer(SharedCell.bytes(3));
  const flags = new Int32Array(new SharedArrayBuffer(8)); // [writer started, writer done]
  const writes = 2_000_000;
  // The writer publishes (n, n + 2^32, n) for n = 1, 2, …; a torn read would mix two.
  // Whatever happens to it, the writer raises both flags at its end, so the reader's spin
  // below always ends (a writer that failed leaves the cell unwritten: the test fails).
  const writer = new Worker(`
    const { workerData } = require('node:worker_threads');
    const flags = workerData.flags;
    import(workerData.cellUrl).then(({ SharedCell }) => {
      const cell = new SharedCell(workerData.buf, 3);
      Atomics.store(flags, 0, 1);
      for (let n = 1; n <= workerData.writes; n++) cell.publish([n, n + 2 ** 32, n]);
    }).finally(() => {
      Atomics.store(flags, 0, 1);
      Atomics.store(flags, 1, 1);
    });
  `, { eval: true, workerData: { buf, flags, writes, cellUrl: cellModuleUrl } });
  const failed = new Promise<never>((_, reject) => writer.once('error', reject));
  const cell = new SharedCell(buf, 3);
  const out: number[] = [];
  // The reader spins on this thread while the writer writes on its own.
  while (Atomics.load(flags, 0) === 0) await Promise.race([failed, delayTurn()]);
  let reads = 0;
  let torn = 0;
  let last = 0;
  let backwards = 0;
  while (Atomics.load(flags, 1) === 0) {
    if (!cell.read(out)) continue;
    reads++;
    if (out[1] !== out[0]! + 2 ** 32 || out[2] !== out[0]) torn++;
    if (out[0]! < last) backwards++;
    last = out[0]!;
  }
  t.true(cell.read(out));
  t.deepEqual(out, [writes, writes + 2 ** 32, writes]);
  t.true(reads > 0, 'the reader read while the writer wrote');
  t.is(torn, 0, `${torn} torn of ${reads} reads`);
  t.is(backwards, 0, 'reads never go back');
  await writer.terminate();
});

const lone: ReadPointState = {
  selfId: 1, leader: 1, voters: [1], appliedTerm: 3, term: 3, learner: false, faulted: false,
  stopping: false,
};

test('read point: valid only for a lone voter that leads and has applied its term\'s entry',
  (t) => {
    t.true(readPointValid(lone));
    t.true(readPointValid({ ...lone, voters: [1] }), 'learners do not vote: not in voters');
    t.false(readPointValid({ ...lone, leader: 2 }), 'another member leads');
    t.false(readPointValid({ ...lone, leader: 0 }), 'no leader');
    t.false(readPointValid({ ...lone, voters: [1, 2] }), 'two voters: a read index it is');
    t.false(readPointValid({ ...lone, voters: [2] }), 'the lone voter is another member');
    t.false(readPointValid({ ...lone, voters: [] }), 'no config applied yet');
    t.false(readPointValid({ ...lone, appliedTerm: 2 }),
      'a new leader that has not applied its empty entry may not have applied what an ' +
      'earlier term acknowledged');
    t.false(readPointValid({ ...lone, appliedTerm: 0, term: 0 }), 'no term yet');
    t.false(readPointValid({ ...lone, learner: true }));
    t.false(readPointValid({ ...lone, faulted: true }));
    t.false(readPointValid({ ...lone, stopping: true }));
    const buf = new SharedArrayBuffer(SharedCell.bytes(4));
    const cell = new SharedCell(buf, 4);
    const out: number[] = [];
    publishReadPoint(cell, lone, { revision: 10, shardIndex: 12, rewinds: 1 });
    t.true(cell.read(out));
    t.deepEqual(out, [10, 12, 3, 1], 'revision, shard index, term, rewinds');
    publishReadPoint(cell, { ...lone, voters: [1, 2] },
      { revision: 11, shardIndex: 13, rewinds: 1 });
    t.false(cell.read(out), 'an invalid state withdraws the point');
  });

test('apply: no answer is posted before beforeAnswers, and every answer after it', (t) => {
  const events: string[] = [];
  const ref = (to: string) => ({
    sendUnbounded: (m: { type: string }) => events.push(`${to}:${m.type}`),
    ask: async () => ({}),
  }) as never;
  const sm = new StateMachine([ref('shard0')], ref('watch'), ref('lease'), {
    reply: () => events.push('answer'),
    replyError: () => events.push('error'),
    flushNow: () => undefined,
  });
  const tokens = [1, 2, 3].map((n) => ({ id: n, from: 'gateway' }));
  const entries: Entry[] = [1, 2, 3].map((n) => ({
    term: 1 as Term, index: n as Index, type: EntryNormal,
    data: encodeProposal({ m: 1, b: 1, n }, encodeRequest({ type: 'put', key: `k${n}`,
      value: 'v' })),
  }));
  sm.apply(entries, 1, {
    claim: (p) => tokens[p.n - 1],
    applyConfChange: () => ({ voters: [], learners: [] }),
    membersChanged: () => undefined,
    nowMs: () => 0,
    beforeAnswers: () => events.push(`published at ${sm.applier.revision}`),
  });
  const at = events.indexOf('published at 4');
  t.true(at >= 0, events.join(', '));
  t.deepEqual(events.slice(at), ['published at 4', 'answer', 'answer', 'answer']);
  t.true(events.indexOf('shard0:ShardApply') < at, 'the shards hear of the batch first');
  t.is(sm.appliedTerm, 1);
});
