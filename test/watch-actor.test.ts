import test from 'ava';
import { encodeApplied, type ShardMsg } from '../actors/shard/messages.js';
import {
  unpackWatchEvents, type WatchEvents, type WatchMsg, type WatchReplies,
} from '../actors/watch/messages.js';
import { shardOf } from '../src/mvcc/shard-of.js';
import type { Change, KeyValue } from '../src/mvcc/types.js';
import type { Message } from '../src/runtime/endpoint.js';
import { ActorSystem } from '../src/runtime/system.js';
import type { LeaseId, Revision } from '../src/types.js';
import type { WatchResponse } from '../src/watch/types.js';
import { until as waitUntil } from './helpers/wait.js';

/**
 * The watch hub in its own worker thread, reading history from two real shard actors. The
 * test plays the Raft node (ShardApply to the shards, WatchChanges to the hub) and the
 * gateway (watch streams, acks).
 */
const quiet = { info() {}, warn() {}, error() {} };
const shardCount = 2;

function system(bufferEvents?: number): ActorSystem {
  const shards = Array.from({ length: shardCount }, (_, i) => `shard-${i}`);
  return new ActorSystem([
    { name: 'watch', url: new URL('../actors/watch/actor.js', import.meta.url),
      config: { shardCount, logLevel: 'silent', historyEventsPerPass: 16,
        ...(bufferEvents === undefined ? {} : { bufferEvents }) },
      connects: shards },
    ...shards.map((name, index) => ({
      name, url: new URL('../actors/shard/actor.js', import.meta.url),
      config: { index, count: shardCount, logLevel: 'silent' }, connects: ['watch'],
    })),
  ], { logger: quiet, onFatal: () => undefined });
}

/** Writer plays the Raft node: consistent changes, one revision per put. */
class Writer {
  revision = 1;
  private latest = new Map<string, KeyValue>();
  constructor(private readonly sys: ActorSystem) {}
  put(key: string): void {
    const rev = ++this.revision;
    const prev = this.latest.get(key);
    const kv: KeyValue = {
      key, value: `v${rev}`, modRevision: rev as Revision,
      createRevision: (prev?.createRevision ?? rev) as Revision,
      version: (prev?.version ?? 0) + 1, lease: 0 as LeaseId,
    };
    this.latest.set(key, kv);
    const c: Change = prev === undefined ? { kind: 'put', kv } : { kind: 'put', kv, prevKv: prev };
    for (let i = 0; i < shardCount; i++) {
      const mine = shardOf(key, shardCount) === i;
      this.sys.gateway.ref<ShardMsg, unknown>(`shard-${i}`).sendUnbounded({
        type: 'ShardApply', index: rev,
        revisions: encodeApplied([{ revision: rev, changes: mine ? [c] : [] }]),
      });
    }
    this.sys.gateway.ref<WatchMsg, unknown>('watch').sendUnbounded({
      type: 'WatchChanges', revisions: [{ revision: rev, changes: [c] }],
    });
  }
}

/** Client collects a stream's responses and acks them (unless paused). */
function collector(sys: ActorSystem) {
  const got = new Map<number, WatchResponse[]>();
  const paused = new Set<number>();
  const hub = sys.gateway.ref<WatchMsg, WatchReplies>('watch');
  sys.gateway.onMessage((m: Message) => {
    for (const e of unpackWatchEvents(m as WatchEvents)) {
      let l = got.get(e.streamId);
      if (l === undefined) got.set(e.streamId, (l = []));
      l.push(...e.responses);
      const n = e.responses.reduce((a, r) => a + r.events.length, 0);
      if (!paused.has(e.streamId) && n > 0) {
        hub.send({ type: 'WatchAck', streamId: e.streamId, events: n });
      }
    }
  });
  const revisions = (s: number) =>
    (got.get(s) ?? []).flatMap((r) => r.events.map((e) => e.kv.modRevision));
  return { got, paused, hub, revisions };
}

/** until waits for what the collector gathered (the deadline is generous: only an event
 * that never comes reaches it). */
const until = (cond: () => boolean, what: string): Promise<void> =>
  waitUntil(cond, what, { intervalMs: 10 });

const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i);

test('watch actor: catch-up from the shards, then live, with no gap or duplicate', async (t) => {
  const sys = system();
  await sys.start();
  try {
    const c = collector(sys);
    const w = new Writer(sys);
    c.hub.send({ type: 'WatchRecovered', revision: 1, compactRevision: 0 });
    for (let i = 0; i < 100; i++) w.put(`k${i % 13}`);
    c.hub.send({
      type: 'WatchCreate', streamId: 1, req: { key: 'k', rangeEnd: 'l', startRevision: 2 },
    });
    for (let i = 0; i < 50; i++) w.put(`k${i % 5}`);
    await until(() => c.revisions(1).length >= 150, '150 events');
    t.like(c.got.get(1)![0], { watchId: 0, created: true });
    t.deepEqual(c.revisions(1), range(2, 151));
    const st = await c.hub.ask({ type: 'WatchStats' });
    t.like(st, { streams: 1, watchers: 1, synced: 1, unsynced: 0, currentRevision: 151 });
    t.true(st.syncPasses >= 2, 'bounded passes');
  } finally {
    await sys.stop();
  }
});

test('watch actor: a paused stream is bounded, others flow, it catches up on acks', async (t) => {
  const sys = system(8);
  await sys.start();
  try {
    const c = collector(sys);
    const w = new Writer(sys);
    c.hub.send({ type: 'WatchRecovered', revision: 1, compactRevision: 0 });
    c.paused.add(1);
    c.hub.send({ type: 'WatchCreate', streamId: 1, req: { key: 'a' } });
    c.hub.send({ type: 'WatchCreate', streamId: 2, req: { key: 'a' } });
    await until(() => (c.got.get(2)?.length ?? 0) >= 1, 'created');
    for (let i = 0; i < 60; i++) w.put('a');
    await until(() => c.revisions(2).length >= 60, 'fast stream');
    t.true(c.revisions(1).length <= 8, 'the paused stream got at most its buffer');
    c.paused.delete(1);
    c.hub.send({ type: 'WatchAck', streamId: 1, events: c.revisions(1).length });
    await until(() => c.revisions(1).length >= 60, 'slow stream catch-up');
    t.deepEqual(c.revisions(1), range(2, 61));
    t.deepEqual(c.revisions(2), range(2, 61));
  } finally {
    await sys.stop();
  }
});

test('watch actor: a compacted start revision is cancelled with its revision', async (t) => {
  const sys = system();
  await sys.start();
  try {
    const c = collector(sys);
    c.hub.send({ type: 'WatchRecovered', revision: 40, compactRevision: 30 });
    c.hub.send({ type: 'WatchCreate', streamId: 1, req: { key: 'a', startRevision: 10 } });
    await until(() => (c.got.get(1)?.length ?? 0) >= 2, 'cancel');
    t.like(c.got.get(1)![1], {
      canceled: true, compactRevision: 30,
      cancelReason: 'mvcc: required revision has been compacted',
    });
  } finally {
    await sys.stop();
  }
});
