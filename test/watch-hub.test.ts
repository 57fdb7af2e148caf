import test from 'ava';
import type { Change, KeyValue } from '../src/mvcc/types.js';
import type { LeaseId, Revision } from '../src/types.js';
import { mergeHistory, WatchHub, WatcherGroup, type HistoryChange } from '../src/watch/index.js';
import type { WatchResponse } from '../src/watch/types.js';

/** FakeStore: an in-memory MVCC history (what the shards hold), for driving the hub. */
class FakeStore {
  revision = 0;
  compactRevision = 0;
  log: HistoryChange[] = [];
  private latest = new Map<string, KeyValue>();

  /** txn writes several keys in one revision and returns its changes. */
  txn(ops: ({ put: string; value?: string } | { del: string })[]): [number, Change[]] {
    const rev = ++this.revision;
    const changes: Change[] = [];
    for (const op of ops) {
      if ('put' in op) {
        const prev = this.latest.get(op.put);
        const kv: KeyValue = {
          key: op.put, value: op.value ?? `v${rev}`, modRevision: rev as Revision,
          createRevision: (prev?.createRevision ?? rev) as Revision,
          version: (prev?.version ?? 0) + 1, lease: 0 as LeaseId,
        };
        this.latest.set(op.put, kv);
        changes.push(prev === undefined ? { kind: 'put', kv } : { kind: 'put', kv, prevKv: prev });
      } else {
        const prev = this.latest.get(op.del);
        if (prev === undefined) continue;
        this.latest.delete(op.del);
        const kv: KeyValue = {
          key: op.del, value: '', modRevision: rev as Revision, createRevision: 0 as Revision,
          version: 0, lease: 0 as LeaseId,
        };
        changes.push({ kind: 'delete', kv, prevKv: prev });
      }
    }
    for (const change of changes) this.log.push({ revision: rev, change });
    return [rev, changes];
  }

  put(key: string, value?: string): [number, Change[]] {
    return this.txn([{ put: key, ...(value === undefined ? {} : { value }) }]);
  }

  history(from: number, to: number, key: string, rangeEnd: string, limit: number):
    { changes: HistoryChange[]; throughRevision: number } {
    if (from < this.compactRevision) throw new Error('mvcc: required revision has been compacted');
    const out: HistoryChange[] = [];
    const inRange = (k: string) => k >= key && (rangeEnd === '\0' || k < rangeEnd);
    for (const c of this.log) {
      if (c.revision < from || c.revision > to) continue;
      if (out.length >= limit && out[out.length - 1]!.revision !== c.revision) {
        return { changes: out, throughRevision: out[out.length - 1]!.revision };
      }
      if (inRange(c.change.kv.key)) out.push(c);
    }
    return { changes: out, throughRevision: Math.min(to, this.revision) };
  }
}

/** Harness: a hub fed by a FakeStore; `live` writes and routes; `sync` runs passes. */
class Harness {
  readonly store = new FakeStore();
  readonly got = new Map<number, WatchResponse[]>();
  constructor(readonly hub = new WatchHub()) {}
  write(...ops: Parameters<FakeStore['txn']>[0]): number {
    const [rev, changes] = this.store.txn(ops);
    this.hub.onChanges(rev, changes);
    return rev;
  }
  put(key: string, value?: string): number {
    return this.write({ put: key, ...(value === undefined ? {} : { value }) });
  }
  /** sync runs passes until none is planned (or `max` passes). */
  sync(max = 1_000): number {
    let n = 0;
    for (; n < max; n++) {
      const req = this.hub.nextSync();
      if (req === undefined) break;
      const h = this.store.history(
        req.fromRevision, req.toRevision, req.key, req.rangeEnd, req.limit,
      );
      this.hub.applyHistory(req.pass, h.changes, h.throughRevision);
    }
    return n;
  }
  /** drain collects responses; ack them unless the stream is in `slow`. */
  drain(slow: Set<number> = new Set()): void {
    for (const { streamId, responses } of this.hub.drain()) {
      let list = this.got.get(streamId);
      if (list === undefined) this.got.set(streamId, (list = []));
      list.push(...responses);
      if (!slow.has(streamId)) {
        this.hub.ack(streamId, responses.reduce((n, r) => n + r.events.length, 0));
      }
    }
  }
  /** events: (revision, key) pairs delivered to a watcher of a stream, in order. */
  events(streamId: number, watchId: number): [number, string, string][] {
    return (this.got.get(streamId) ?? []).filter((r) => r.watchId === watchId)
      .flatMap((r) => r.events.map((e): [number, string, string] =>
        [e.kv.modRevision, e.kv.key, e.kind]));
  }
}

function revs(evs: [number, string, string][]): number[] {
  return evs.map((e) => e[0]);
}
function range(a: number, b: number): number[] {
  return Array.from({ length: b - a + 1 }, (_, i) => a + i);
}

test('watch: created comes first with the current revision; live events follow', (t) => {
  const h = new Harness();
  h.put('a');
  h.hub.create(1, { key: 'a' });
  h.put('a');
  h.put('b');
  h.drain();
  const rs = h.got.get(1)!;
  t.like(rs[0], { watchId: 0, revision: 1, created: true });
  t.deepEqual(h.events(1, 0), [[2, 'a', 'put']]);
  t.is(rs[1]!.revision, 2);
});

test('watch: history then live, with no gap and no duplicate at the sync boundary', (t) => {
  const h = new Harness(new WatchHub({ historyEventsPerPass: 7 }));
  for (let i = 0; i < 100; i++) h.put(`k${i % 10}`);
  const id = h.hub.create(1, { key: 'k', rangeEnd: 'l', startRevision: 50 });
  // A pass is planned at revision 100; more revisions arrive while it is out.
  const req = h.hub.nextSync()!;
  t.is(req.toRevision, 100);
  for (let i = 0; i < 10; i++) h.put(`k${i}`);
  const hist = h.store.history(req.fromRevision, req.toRevision, req.key, req.rangeEnd, req.limit);
  h.hub.applyHistory(req.pass, hist.changes, hist.throughRevision);
  t.true(h.hub.stats().unsynced === 1, 'still behind after one bounded pass');
  h.sync();
  t.is(h.hub.stats().synced, 1);
  for (let i = 0; i < 10; i++) h.put(`k${i}`);
  h.drain();
  t.deepEqual(revs(h.events(1, id)), range(50, 120));
});

test('watch: a pass answered short by a lagging shard resumes where it stopped', (t) => {
  const h = new Harness();
  for (let i = 0; i < 20; i++) h.put('x');
  h.hub.create(1, { key: 'x', startRevision: 5 });
  const req = h.hub.nextSync()!;
  const hist = h.store.history(req.fromRevision, 12, req.key, req.rangeEnd, req.limit);
  h.hub.applyHistory(req.pass, hist.changes, hist.throughRevision);
  h.sync();
  h.put('x');
  h.drain();
  t.deepEqual(revs(h.events(1, 0)), range(5, 21));
});

test('watch: a start revision below the compaction is cancelled with the compact revision', (t) => {
  const h = new Harness();
  for (let i = 0; i < 10; i++) h.put('a');
  h.store.compactRevision = 6;
  h.hub.onCompacted(6);
  h.hub.create(1, { key: 'a', startRevision: 3 });
  h.hub.create(1, { key: 'a', startRevision: 6 });
  h.sync();
  h.drain();
  const rs = h.got.get(1)!;
  t.like(rs[0], { watchId: 0, created: true });
  t.like(rs[1], {
    watchId: 0, canceled: true, compactRevision: 6,
    cancelReason: 'mvcc: required revision has been compacted',
  });
  t.deepEqual(revs(h.events(1, 1)), range(6, 10), 'start = compact revision is still served');
});

test('watch: a compaction during catch-up cancels; re-watching from it misses nothing', (t) => {
  const h = new Harness(new WatchHub({ historyEventsPerPass: 3 }));
  for (let i = 0; i < 30; i++) h.put('a');
  h.hub.create(1, { key: 'a', startRevision: 1 });
  h.sync(2); // delivers 1..6, cursor at 7
  h.store.compactRevision = 20;
  h.hub.onCompacted(20);
  h.sync();
  h.drain();
  const cancel = h.got.get(1)!.find((r) => r.canceled === true)!;
  t.is(cancel.compactRevision, 20);
  const before = revs(h.events(1, 0));
  t.deepEqual(before, range(1, 6));
  // The client re-watches from the compact revision: 20.. arrive, 7..19 are gone for good.
  const id = h.hub.create(2, { key: 'a', startRevision: cancel.compactRevision! });
  h.sync();
  h.put('a');
  h.drain();
  t.deepEqual(revs(h.events(2, id)), range(20, 31));
});

test('watch: prefix, range and from-key watchers see exactly their keys', (t) => {
  const h = new Harness();
  const pre = h.hub.create(1, { key: 'foo', rangeEnd: 'fop' });
  const rng = h.hub.create(1, { key: 'b', rangeEnd: 'd' });
  const from = h.hub.create(1, { key: 'm', rangeEnd: '\0' });
  const one = h.hub.create(1, { key: 'foo' });
  for (const k of ['foo', 'foo/bar', 'fop', 'fo', 'b', 'c9', 'd', 'm', 'zz', 'a']) h.put(k);
  h.drain();
  const keys = (id: number) => h.events(1, id).map((e) => e[1]);
  t.deepEqual(keys(pre), ['foo', 'foo/bar']);
  t.deepEqual(keys(rng), ['b', 'c9']);
  t.deepEqual(keys(from), ['m', 'zz']);
  t.deepEqual(keys(one), ['foo']);
});

test('watch: an empty range is refused with etcd\'s reason', (t) => {
  const h = new Harness();
  t.is(h.hub.create(1, { key: 'b', rangeEnd: 'a' }), -1);
  h.drain();
  t.like(h.got.get(1)![0], {
    watchId: -1, created: true, canceled: true, cancelReason: 'mvcc: watcher range is empty',
  });
});

test('watch: prev_kv is delivered only to watchers that asked, live and from history', (t) => {
  const h = new Harness();
  h.put('a', 'one');
  h.put('a', 'two');
  const withPrev = h.hub.create(1, { key: 'a', prevKv: true, startRevision: 2 });
  const without = h.hub.create(1, { key: 'a', startRevision: 2 });
  h.sync();
  h.write({ del: 'a' });
  h.drain();
  const evs = (id: number) =>
    h.got.get(1)!.filter((r) => r.watchId === id).flatMap((r) => r.events);
  t.deepEqual(evs(withPrev).map((e) => e.prevKv?.value), ['one', 'two']);
  t.deepEqual(evs(without).map((e) => e.prevKv), [undefined, undefined]);
  t.deepEqual(evs(without).map((e) => e.kind), ['put', 'delete']);
});

test('watch: NOPUT and NODELETE filters drop their kind of event', (t) => {
  const h = new Harness();
  const noPut = h.hub.create(1, { key: 'a', filters: ['NOPUT'] });
  const noDel = h.hub.create(1, { key: 'a', filters: ['NODELETE'] });
  h.put('a');
  h.write({ del: 'a' });
  h.put('a');
  h.drain();
  t.deepEqual(h.events(1, noPut).map((e) => e[2]), ['delete']);
  t.deepEqual(h.events(1, noDel).map((e) => e[2]), ['put', 'put']);
});

test('watch: all events of one transaction arrive in one response', (t) => {
  const h = new Harness();
  h.hub.create(1, { key: 'a', rangeEnd: 'z' });
  h.write({ put: 'a' }, { put: 'b' }, { put: 'c' });
  h.drain();
  const rs = h.got.get(1)!.filter((r) => r.events.length > 0);
  t.is(rs.length, 1);
  t.deepEqual(rs[0]!.events.map((e) => e.kv.key), ['a', 'b', 'c']);
});

test('watch: cancel answers canceled and stops events; an unknown id gets the reason', (t) => {
  const h = new Harness();
  const id = h.hub.create(1, { key: 'a' });
  h.put('a');
  t.true(h.hub.cancel(1, id));
  t.false(h.hub.cancel(1, 99));
  h.put('a');
  h.drain();
  t.deepEqual(revs(h.events(1, id)), [1]);
  t.like(h.got.get(1)!.at(-2), { watchId: id, canceled: true });
  t.like(h.got.get(1)!.at(-1), {
    watchId: 99, canceled: true, cancelReason: 'mvcc: watcher does not exist',
  });
  t.is(h.hub.stats().watchers, 0);
});

test('watch: client-chosen ids are kept, duplicates refused, auto ids skip them', (t) => {
  const h = new Harness();
  t.is(h.hub.create(1, { key: 'a', watchId: 1 }), 1);
  t.is(h.hub.create(1, { key: 'a', watchId: 1 }), -1);
  t.is(h.hub.create(1, { key: 'a' }), 0);
  t.is(h.hub.create(1, { key: 'a' }), 2);
  h.drain();
  t.like(h.got.get(1)![1], {
    canceled: true, cancelReason: 'mvcc: duplicate watch ID provided on the WatchStream',
  });
});

test('watch: a slow consumer does not block others and later catches up without loss', (t) => {
  const h = new Harness(new WatchHub({ bufferEvents: 10, historyEventsPerPass: 8 }));
  const slow = h.hub.create(1, { key: 'k', rangeEnd: 'l' });
  const fast = h.hub.create(2, { key: 'k', rangeEnd: 'l' });
  const slowSet = new Set([1]);
  for (let i = 0; i < 200; i++) {
    h.write({ put: `k${i % 7}` }, ...(i % 3 === 0 ? [{ put: `k${(i + 1) % 7}` }] : []));
    if (i % 5 === 0) h.drain(slowSet);
    h.sync();
  }
  h.drain(slowSet);
  t.deepEqual(revs(h.events(2, fast)).filter((r, i, a) => a.indexOf(r) === i), range(1, 200));
  t.true(h.hub.bufferedEvents(1) <= 10, 'the slow stream holds at most its buffer');
  t.is(h.hub.stats().unsynced, 1, 'the slow watcher fell back to unsynced');
  // The slow client reads everything it was sent, then acks: catch-up resumes from history.
  for (let round = 0; round < 100 && h.hub.stats().unsynced > 0; round++) {
    h.hub.ack(1, h.hub.bufferedEvents(1));
    h.sync(1);
    h.drain(slowSet);
  }
  h.hub.ack(1, h.hub.bufferedEvents(1));
  h.put('k1');
  h.drain();
  const got = h.events(1, slow);
  const expected = h.store.log.filter((c) => c.change.kv.key.startsWith('k'))
    .map((c): [number, string, string] => [c.revision, c.change.kv.key, c.change.kind]);
  t.deepEqual(got, expected, 'every event exactly once, in order');
  t.deepEqual(h.events(2, fast), expected);
});

test('watch: 5,000 watchers on keys and prefixes each get exactly their events', (t) => {
  const h = new Harness();
  const ids: { stream: number; id: number; prefix: string | undefined; key: string }[] = [];
  for (let i = 0; i < 5_000; i++) {
    const stream = i % 500;
    if (i % 4 === 0) {
      const p = `p${i % 50}/`;
      ids.push({ stream, id: h.hub.create(stream, { key: p, rangeEnd: p.slice(0, -1) + '0' }),
        prefix: p, key: p });
    } else {
      const key = `p${i % 50}/k${i % 200}`;
      ids.push({ stream, id: h.hub.create(stream, { key }), prefix: undefined, key });
    }
  }
  const written: string[] = [];
  for (let r = 0; r < 400; r++) {
    const key = `p${(r * 7) % 50}/k${(r * 13) % 200}`;
    written.push(key);
    h.put(key);
  }
  h.drain();
  let total = 0;
  for (const w of ids) {
    const want = written.map((k, i): [number, string] => [i + 1, k])
      .filter(([, k]) => (w.prefix === undefined ? k === w.key : k.startsWith(w.prefix)));
    const got = h.events(w.stream, w.id).map((e) => [e[0], e[1]]);
    if (JSON.stringify(got) !== JSON.stringify(want)) {
      t.fail(`watcher ${w.id} on stream ${w.stream} (${w.key})`);
      return;
    }
    total += got.length;
  }
  t.true(total > 400);
  t.is(h.hub.stats().watchers, 5_000);
});

test('watch: reconnecting from the last header revision + 1 misses nothing', (t) => {
  const h = new Harness(new WatchHub({ historyEventsPerPass: 5 }));
  for (let i = 0; i < 40; i++) h.put(`k${i % 3}`);
  h.hub.create(1, { key: 'k', rangeEnd: 'l', startRevision: 1 });
  h.sync(3);
  h.drain();
  const seen = h.events(1, 0);
  // A client resumes from the last response that carried events (clientv3's lastRev); the
  // `created` header names the current revision, not what was delivered.
  const last = Math.max(...h.got.get(1)!.filter((r) => r.events.length > 0).map((r) => r.revision));
  h.hub.closeStream(1); // the client goes away mid catch-up
  for (let i = 0; i < 5; i++) h.put('k9');
  h.hub.create(2, { key: 'k', rangeEnd: 'l', startRevision: last + 1 });
  h.sync();
  h.put('k0');
  h.drain();
  const all = [...seen, ...h.events(2, 0)];
  t.deepEqual(revs(all), range(1, 46));
});

test('watch: a progress request is answered once the stream is synced', (t) => {
  const h = new Harness();
  for (let i = 0; i < 5; i++) h.put('a');
  h.hub.create(1, { key: 'a', startRevision: 2 });
  h.hub.requestProgress(1);
  h.drain();
  t.false(h.got.get(1)!.some((r) => r.watchId === -1), 'not while a watcher is behind');
  h.sync();
  h.drain();
  const rs = h.got.get(1)!;
  t.like(rs.at(-1), { watchId: -1, revision: 5, events: [] });
  t.true(rs.findIndex((r) => r.events.length > 0) < rs.length - 1, 'after the catch-up events');
});

test('watch: a progress request waits for the revision the gateway had seen applied', (t) => {
  const h = new Harness();
  h.hub.create(1, { key: 'a' });
  h.put('a'); // revision 1 reached the hub
  // The gateway saw revision 3 applied before the client asked; the hub has not yet.
  h.hub.requestProgress(1, 3);
  h.drain();
  t.false(h.got.get(1)!.some((r) => r.watchId === -1), 'not at revision 1');
  h.put('b');
  h.drain();
  t.false(h.got.get(1)!.some((r) => r.watchId === -1), 'not at revision 2');
  h.put('c');
  h.drain();
  t.like(h.got.get(1)!.at(-1), { watchId: -1, revision: 3, events: [] });
  t.false(h.hub.hasPendingProgress);
  // A request at a revision the hub has reached is answered at once; a closed stream's
  // pending request is dropped.
  h.hub.requestProgress(1, 3);
  h.drain();
  t.is(h.got.get(1)!.filter((r) => r.watchId === -1).length, 2);
  h.hub.requestProgress(2, 9);
  t.true(h.hub.hasPendingProgress);
  h.hub.closeStream(2);
  t.false(h.hub.hasPendingProgress);
});

test('watch: progress_notify ticks reach idle synced watchers only', (t) => {
  const h = new Harness();
  const idle = h.hub.create(1, { key: 'a', progressNotify: true });
  const busy = h.hub.create(1, { key: 'b', progressNotify: true });
  h.hub.create(1, { key: 'c' });
  h.put('b');
  h.hub.progressTick();
  h.drain();
  const empties = h.got.get(1)!.filter((r) => r.events.length === 0 && r.created !== true);
  t.deepEqual(empties.map((r) => [r.watchId, r.revision]), [[idle, 1]]);
  void busy;
});

test('watch: closing a stream drops its watchers', (t) => {
  const h = new Harness();
  h.hub.create(1, { key: 'a' });
  h.hub.create(1, { key: 'b', rangeEnd: 'c' });
  h.hub.closeStream(1);
  h.put('a');
  t.deepEqual(h.hub.stats(), { streams: 0, watchers: 0, synced: 0, unsynced: 0 });
  t.deepEqual(h.hub.drain(), []);
});

test('watch: the stream limit refuses new streams', (t) => {
  const hub = new WatchHub({ streamsMax: 2 });
  t.true(hub.openStream(1));
  t.true(hub.openStream(2));
  t.false(hub.openStream(3));
  t.is(hub.create(3, { key: 'a' }), -1);
});

test('watch: WatcherGroup agrees with a naive scan on random ranges', (t) => {
  let seed = 7;
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const key = () => String.fromCharCode(97 + rnd(6)) + String.fromCharCode(97 + rnd(6));
  interface M { start: string; end: string | undefined; single: boolean; n: number }
  const g = new WatcherGroup<M>();
  const all: M[] = [];
  for (let i = 0; i < 3_000; i++) {
    const op = rnd(10);
    if (op < 5) {
      const a = key();
      const kind = rnd(3);
      const m: M = kind === 0 ? { start: a, end: undefined, single: true, n: i }
        : kind === 1 ? { start: a, end: undefined, single: false, n: i }
          : { start: a, end: a + String.fromCharCode(97 + rnd(26)), single: false, n: i };
      g.add(m);
      all.push(m);
    } else if (op < 7 && all.length > 0) {
      const [m] = all.splice(rnd(all.length), 1);
      t.true(g.delete(m!));
    } else {
      const k = key();
      const got: number[] = [];
      g.forEachMatch(k, (m) => got.push(m.n));
      const want = all.filter((m) => (m.single ? m.start === k
        : k >= m.start && (m.end === undefined || k < m.end))).map((m) => m.n);
      const byN = (a: number, b: number) => a - b;
      if (JSON.stringify(got.sort(byN)) !== JSON.stringify(want.sort(byN))) {
        t.fail(`lookup ${k} at step ${i}`);
        return;
      }
    }
  }
  t.is(g.size, all.length);
});

test('watch: mergeHistory is complete only through the slowest shard', (t) => {
  const c = (revision: number) => ({ revision, change: {} as Change });
  const m = mergeHistory([
    { changes: [c(3), c(5)], throughRevision: 5 },
    { changes: [c(4), c(9)], throughRevision: 9 },
  ]);
  t.deepEqual(m.changes.map((x) => x.revision), [3, 4, 5]);
  t.is(m.throughRevision, 5);
});
