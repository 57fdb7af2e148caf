import test from 'ava';
import { repartitionSnapshots } from '../src/mvcc/repartition.js';
import { shardOf } from '../src/mvcc/shard-of.js';
import { ShardStore } from '../src/mvcc/shard-store.js';
import type { Change } from '../src/mvcc/types.js';
import type { LeaseId, Revision } from '../src/types.js';
import { mergeHistory } from '../src/watch/index.js';
import { b64, post, startServer, type TestServer, unb64 } from './helpers/server.js';
import { LineStream } from './helpers/streams.js';

// A transaction's events come in the transaction's order (etcd's sub revisions) to a live
// watch and to a watch that catches up from history — the latter read from several shards,
// each holding part of the transaction. Before the shards kept each change's sub revision,
// history gave them in shard order.

const shards = 3;

/** keyOn finds a key under `prefix` that lives on shard `s` (the n-th such). */
function keyOn(prefix: string, s: number, nth = 0): string {
  let seen = 0;
  for (let i = 0; ; i++) {
    const k = `${prefix}${i}`;
    if (shardOf(k, shards) === s && seen++ === nth) return k;
  }
}

interface Ev { type: string; key: string; rev: number }

/** collect reads a watch's events until it has `n`. */
async function collect(s: LineStream, n: number): Promise<Ev[]> {
  const evs: Ev[] = [];
  while (evs.length < n) {
    const r = await s.result();
    for (const e of r.events ?? []) {
      evs.push({ type: e.type ?? 'PUT', key: unb64(e.kv.key), rev: Number(e.kv.mod_revision) });
    }
  }
  return evs;
}

let server: TestServer;
test.before(async () => {
  server = await startServer({ args: ['--storage-shards', String(shards)] });
});
test.after.always(async () => {
  await server?.shutdown();
});

test('watch: a txn over several shards is delivered in txn order live and from history',
  async (t) => {
    // Txn order runs against shard order: shard 2, 0, 1, then 2 again, 0 again.
    const [a, b, c, d, e] = [keyOn('txo/', 2), keyOn('txo/', 0), keyOn('txo/', 1),
      keyOn('txo/', 2, 1), keyOn('txo/', 0, 1)];
    const live = new LineStream(server.url, '/v3/watch');
    let history: LineStream | undefined;
    try {
      await live.create({ key: b64('txo/'), range_end: b64('txo0') });
      live.end();
      const put = (k: string) => ({ request_put: { key: b64(k), value: b64('v') } });
      const del = (k: string) => ({ request_delete_range: { key: b64(k) } });
      const t1 = await post(`${server.url}/v3/kv/txn`, { success: [a, b, c, d, e].map(put) });
      t.is(t1.status, 200, JSON.stringify(t1.json));
      const t2 = await post(`${server.url}/v3/kv/txn`,
        { success: [del(c), put(e), del(a), put(b)] });
      t.is(t2.status, 200, JSON.stringify(t2.json));
      const rev1 = Number(t1.json.header.revision);
      const rev2 = Number(t2.json.header.revision);
      t.is(rev2, rev1 + 1);
      const want: Ev[] = [
        ...[a, b, c, d, e].map((key) => ({ type: 'PUT', key, rev: rev1 })),
        { type: 'DELETE', key: c, rev: rev2 }, { type: 'PUT', key: e, rev: rev2 },
        { type: 'DELETE', key: a, rev: rev2 }, { type: 'PUT', key: b, rev: rev2 },
      ];
      t.deepEqual(await collect(live, want.length), want, 'live');
      history = new LineStream(server.url, '/v3/watch');
      await history.create({ key: b64('txo/'), range_end: b64('txo0'), start_revision: rev1 });
      history.end();
      t.deepEqual(await collect(history, want.length), want, 'from history');
    } finally {
      live.close();
      history?.close();
    }
  });

/** putChange is a first put of key at rev. */
function putChange(key: string, rev: number): Change {
  return { kind: 'put', kv: {
    key, value: 'v', modRevision: rev as Revision, createRevision: rev as Revision, version: 1,
    lease: 0 as LeaseId,
  } };
}

/** applyTxn applies one txn's changes to shard stores as the Raft node partitions them: each
 * shard its share, with the share's sub revisions. */
function applyTxn(stores: ShardStore[], rev: number, keys: string[]): void {
  stores.forEach((st, i) => {
    const mine = keys.map((k, sub) => ({ k, sub }))
      .filter((x) => shardOf(x.k, stores.length) === i);
    st.apply(rev as Revision, mine.map((x) => putChange(x.k, rev)), mine.map((x) => x.sub));
  });
}

/** merged reads every store's history from revision 2 and merges it as the watch actor does. */
function merged(stores: ShardStore[]): string[] {
  return mergeHistory(stores.map((st) => {
    const subs: number[] = [];
    const changes = st.history(2 as Revision, st.currentRevision, 'k/', 'k0', 0, subs);
    return {
      changes: changes.map((change, i) => ({ revision: change.kv.modRevision, change,
        sub: subs[i]! })),
      throughRevision: st.currentRevision,
    };
  })).changes.map((c) => c.change.kv.key);
}

test('mvcc: shards keep sub revisions through compaction, snapshots and a repartition; ' +
  'merged history is in txn order', (t) => {
  const n = 3;
  const keys = (m: number) => Array.from({ length: m }, (_, i) => `k/${i}`);
  const order = [...keys(9)].sort((x, y) => shardOf(y, n) - shardOf(x, n) || (x < y ? 1 : -1));
  t.notDeepEqual(order, [...order].sort((x, y) => shardOf(x, n) - shardOf(y, n)),
    'the txn order is not the shard order');
  const stores = Array.from({ length: n }, () => new ShardStore());
  applyTxn(stores, 2, ['k/x']);
  applyTxn(stores, 3, order);
  t.deepEqual(merged(stores), ['k/x', ...order]);
  // Compaction at 2 moves the log; the subs move with it.
  for (const st of stores) st.compact(2 as Revision);
  t.deepEqual(merged(stores), ['k/x', ...order]);
  // Through a snapshot (the dump carries the sub column) ...
  const dumps = stores.map((st) => st.toSnapshot());
  t.deepEqual(merged(dumps.map((d) => ShardStore.fromSnapshot(d))), ['k/x', ...order]);
  // ... and re-split for another shard count (rows of one revision merge by sub).
  const two = repartitionSnapshots(dumps, 2).map((d) => ShardStore.fromSnapshot(d));
  t.deepEqual(merged(two), ['k/x', ...order]);
  // A dump without the column (written before it existed) still loads: shard order then.
  const old = dumps.map((d) => {
    const { sub, ...rest } = d;
    t.true(sub instanceof Uint8Array);
    return ShardStore.fromSnapshot(rest);
  });
  t.deepEqual(merged(old).sort(), ['k/x', ...order].sort());
  // mergeHistory itself: (revision, sub), ties and missing subs keep shard order.
  const c = (revision: number, sub?: number) => ({ revision, change: {} as Change,
    ...(sub === undefined ? {} : { sub }) });
  const m = mergeHistory([
    { changes: [c(3, 2), c(4), c(5, 1)], throughRevision: 9 },
    { changes: [c(3, 0), c(4), c(5, 0)], throughRevision: 9 },
  ]);
  t.deepEqual(m.changes.map((x) => [x.revision, x.sub]),
    [[3, 0], [3, 2], [4, undefined], [4, undefined], [5, 0], [5, 1]]);
});
