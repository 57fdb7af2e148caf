/**
 * A lone leader applies its new entries while the WAL writer persists them, and the WAL
 * writer posts their answers once they are durable (StateMachine.applyAhead, RaftNode's
 * applyAhead, the WAL actor's WalAnswers). Here: what applyAhead takes and holds back until
 * release, that undo leaves the state as if nothing had been applied, that the committed
 * apply that follows skips what was applied ahead, and, on a real server, that every answer
 * is read back at once and that a traced write's answer left from the WAL writer after the
 * fsync, as did the shard's changes.
 * A failed append's undo, with the reads that took the point moved ahead, is exercised by
 * test/cluster-sim.test.ts (a full disk under bursts of writes); test/disk.test.ts writes one
 * at a time, so its failed appends (ENOSPC, EROFS, EIO, EFBIG) take the usual path.
 */
import test from 'ava';
import { type Ahead, type ApplyHooks, StateMachine } from '../actors/raft/state-machine.js';
import { encodeProposal, encodeRequest } from '../src/cluster/proposal.js';
import type { ProposalRequest } from '../actors/raft/messages.js';
import { type Entry, EntryNormal } from '../src/raft/index.js';
import type { ReplyToken } from '../src/runtime/endpoint.js';
import type { Index, Term } from '../src/types.js';
import type { TraceJson } from '../src/gateway/trace-routes.js';
import { b64, post, useServer, waitForSpans } from './helpers/server.js';
import { until } from './helpers/wait.js';

/** machine builds a state machine whose every send and answer is recorded in `events`. */
function machine(events: string[]): StateMachine {
  const ref = (to: string) => ({
    sendUnbounded: (m: { type: string }) => events.push(`${to}:${m.type}`),
    ask: async () => ({ kvs: [], more: false, count: 0 }),
  }) as never;
  return new StateMachine([ref('shard0')], ref('watch'), ref('lease'), {
    reply: (t: ReplyToken) => events.push(`answer:${t.from}`),
    replyError: (t: ReplyToken, e: { code?: string }) => events.push(`error:${t.from}:${e.code}`),
    flushNow: () => undefined,
  });
}

/** entriesOf frames requests as this member's proposals 1, 2, … at indexes from `first`. */
function entriesOf(reqs: ProposalRequest[], first: number): Entry[] {
  return reqs.map((req, i) => ({
    term: 1 as Term, index: (first + i) as Index, type: EntryNormal,
    data: encodeProposal({ m: 1, b: 1, n: first + i }, encodeRequest(req)),
  }));
}

/** hooks claims proposal n for tokens[n] and records each publish of the read point. */
function hooks(sm: StateMachine, events: string[], tokens: Map<number, ReplyToken>): ApplyHooks {
  return {
    claim: (p) => {
      const t = tokens.get(p.n);
      tokens.delete(p.n);
      return t;
    },
    applyConfChange: () => ({ voters: [1 as never], learners: [] }),
    membersChanged: () => undefined,
    nowMs: () => 0,
    beforeAnswers: () => events.push(`published ${sm.applier.revision}/${sm.shardIndex}`),
  };
}

const reqs: ProposalRequest[] = [
  { type: 'leaseGrant', id: 5, ttlSeconds: 60 },
  { type: 'put', key: 'a', value: '1' },
  { type: 'put', key: 'b', value: '2', lease: 5 },
  { type: 'put', key: 'c', value: '3', lease: 9 },
  { type: 'authed', by: { user: '', rev: 0 } as never,
    req: { type: 'txn', compare: [], success: [{ type: 'deleteRange', key: 'a' }], failure: [] } },
  { type: 'put', key: 'd', value: '4' },
  { type: 'compaction', revision: 2 },
  { type: 'put', key: 'e', value: '5' },
];

/** askers: proposal 6 is the lease actor's (answered from this thread), the rest gateways'. */
function askers(): Map<number, ReplyToken> {
  return new Map(reqs.map((_, i) => [i + 1,
    { from: i + 1 === 6 ? 'lease' : i % 2 === 0 ? 'gateway' : 'gateway-1', id: i + 1 }]));
}

/** setUp applies the lease grant (entry 1) as committed, then entries 2.. ahead. */
function setUp(): { sm: StateMachine; events: string[]; ahead: Ahead; h: ApplyHooks;
  all: Entry[] } {
  const events: string[] = [];
  const sm = machine(events);
  const h = hooks(sm, events, askers());
  const all = entriesOf(reqs, 1);
  sm.apply(all.slice(0, 1), 1, h);
  events.length = 0;
  const ahead = sm.applyAhead(all.slice(1), 1, h);
  if (ahead === undefined) throw new Error('nothing was applied ahead');
  return { sm, events, ahead, h, all };
}

test('applyAhead: KV writes up to the first other entry; nothing leaves but the read point ' +
  'until release', (t) => {
  const { sm, events, ahead } = setUp();
  // a, b, c (refused: lease 9 does not exist), the txn deleting a, d; then the compaction.
  t.is(ahead.lastIndex, 6);
  t.is(sm.appliedIndex, 6);
  t.is(sm.applier.revision as number, 5, 'revision 1, then a, b, the txn');
  t.deepEqual(events, ['published 5/6'], 'only the read point moved: ' + events.join(', '));
  t.deepEqual(ahead.answers.map(([tk, r]) => [tk.from, tk.id, r.revision]),
    [['gateway-1', 2, 2], ['gateway', 3, 3], ['gateway', 5, 4]],
    'the gateways\' answers, for the WAL writer');
  t.deepEqual(ahead.tokens.map((tk) => tk.id), [2, 3, 4, 5, 6], 'every client applied ahead');
  ahead.release();
  t.deepEqual(events.slice(1), [
    'lease:LeaseKeysChanged', 'error:gateway-1:LEASE_NOT_FOUND', 'shard0:ShardApply',
    'answer:lease',
  ]);
});

test('applyAhead: the committed apply that follows skips what was applied ahead', (t) => {
  const { sm, events, ahead, h, all } = setUp();
  ahead.release();
  events.length = 0;
  sm.apply(all.slice(1), 1, h);
  t.is(sm.appliedIndex, 8);
  t.is(sm.applier.revision as number, 6, 'only e wrote');
  t.is(sm.applier.compactRevision as number, 2);
  t.is(events.filter((e) => e.startsWith('answer') || e.startsWith('error')).length, 2,
    'the compaction\'s and e\'s answers, once each: ' + events.join(', '));
});

test('applyAhead: undo leaves the state as if nothing had been applied ahead', (t) => {
  const { sm, events, ahead, h, all } = setUp();
  ahead.undo();
  t.is(sm.appliedIndex, 1);
  t.is(sm.shardIndex, 0, 'the lease grant touched no shard');
  t.is(sm.applier.revision as number, 1);
  t.is(sm.applier.keyCount(), 0);
  t.deepEqual(sm.applier.keysOfLease(5 as never), []);
  // The shards hear of it (reads that took the point moved ahead are taken back there).
  t.deepEqual(events, ['published 5/6', 'shard0:ShardRewind']);
  t.is(sm.rewinds, 1);
  // The same entries applied again, as committed, give what a machine that never applied
  // ahead gives.
  const fresh = machine([]);
  const fh = hooks(fresh, [], askers());
  fresh.apply(all, 1, fh);
  sm.apply(all.slice(1), 1, { ...h, claim: () => undefined });
  t.deepEqual([...sm.applier.latest()], [...fresh.applier.latest()]);
  t.is(sm.applier.revision, fresh.applier.revision);
  t.deepEqual(sm.applier.keysOfLease(5 as never), fresh.applier.keysOfLease(5 as never));
});

test('applyAhead: nothing when the first entry is not the next to apply or not a KV write',
  (t) => {
    const events: string[] = [];
    const sm = machine(events);
    const h = hooks(sm, events, askers());
    const all = entriesOf(reqs, 1);
    t.is(sm.applyAhead(all.slice(1), 1, h), undefined, 'entry 1 is not applied yet');
    t.is(sm.applyAhead(all, 1, h), undefined, 'a lease grant first');
    t.is(sm.appliedIndex, 0);
    t.deepEqual(events, []);
  });

test('a lone member answers from the WAL writer; every answer is read back at once; a trace ' +
  'shows the answer and the shard\'s changes after the fsync', async (t) => {
  const srv = await useServer(t);
  // Writes in rounds of 8 at once, so that Readies hold several entries as well as lone
  // ones; each write is read back as soon as it is answered.
  const putAndRead = async (key: string, value: string, traced: boolean) => {
    const p = await fetch(`${srv.url}/v3/kv/put`, {
      method: 'POST', body: JSON.stringify({ key: b64(key), value: b64(value) }),
      headers: traced ? { 'x-myetcd-trace': '1' } : {},
    });
    t.is(p.status, 200);
    const rev = Number(((await p.json()) as { header: { revision: string } }).header.revision);
    for (const serializable of [false, true]) {
      const g = await post(`${srv.url}/v3/kv/range`, { key: b64(key), serializable });
      t.is(g.status, 200);
      t.is(g.json.kvs?.[0]?.value, b64(value), `${key} read back (serializable: ${serializable})`);
      t.true(Number(g.json.header.revision) >= rev);
    }
    return p.headers.get('x-myetcd-trace-id');
  };
  let round = 0;
  let trace: TraceJson | undefined;
  // Until a traced write was applied ahead (its Ready held other writes too).
  await until(async () => {
    round++;
    const ids = await Promise.all(Array.from({ length: 8 },
      (_, i) => putAndRead(`ahead/${i}`, `v${round}`, i === 0)));
    const r = await fetch(`${srv.url}/debug/traces?trace=${ids[0]}`);
    trace = ((await r.json()) as { traces: TraceJson[] }).traces[0];
    return trace?.spans.some((x) => x.name === 'raft apply ahead') === true;
  }, 'a traced write applied ahead');
  t.log(`${round} round(s) of 8 writes`);
  // The trace may still be filling: wait for the spans of the answer and the shard.
  const tr = await waitForSpans(srv.url, trace!.traceId, ['RaftPropose', 'wal write+fsync',
    'raft apply ahead', 'WalAnswers', 'ShardApply', 'RaftPropose reply']);
  const span = (name: string) => tr.spans.find((x) => x.name === name)!;
  const fsync = span('wal write+fsync');
  const fsyncEnd = fsync.startMs + fsync.durationMs;
  t.is(span('raft apply ahead').parentSpanId, span('RaftPropose').spanId);
  t.is(span('WalAnswers').parentSpanId, span('raft apply ahead').spanId);
  t.is(span('WalAnswers').attributes['thread'], 'myetcd-wal');
  t.true(span('RaftPropose reply').startMs >= fsyncEnd, 'the answer came after the fsync');
  t.true(span('ShardApply').startMs >= fsyncEnd, 'so did the shard\'s changes');
});
