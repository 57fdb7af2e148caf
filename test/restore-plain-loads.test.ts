/**
 * A member started with huge pages for glibc's malloc (an operator's GLIBC_TUNABLES:
 * src/server/huge-pages.ts) restores its stores into plain buffers (src/mvcc/kv-columns.ts
 * plainLoads), which grow by copying. Real member processes: a snapshot at a clean stop, a
 * restore, writes that grow the restored columns and arenas past what the restore gave them, a
 * kill -9, and a restore plus a WAL replay; every key and value must be there after each
 * start. The restores read the values in place, in the snapshot file's shared memory
 * (KvColumns' base). And a restored member's own snapshot, taken while most of its keys are
 * still packed, restores them all.
 */
import test from 'ava';
import { mallocHugePageTunables } from '../src/server/huge-pages.js';
import { metricValue } from './helpers/metrics.js';
import { b64, logged, post, startServer, type TestServer } from './helpers/server.js';

const env = { GLIBC_TUNABLES: mallocHugePageTunables };
const value = (i: number, round: number) => `v${round}-${i}-${'x'.repeat(i % 200)}`;

/** putKeys writes keys [from, to) with round's values, 128 puts a txn. */
async function putKeys(s: TestServer, from: number, to: number, round: number): Promise<void> {
  for (let i = from; i < to; i += 128) {
    const ops = [];
    for (let k = i; k < Math.min(to, i + 128); k++) {
      ops.push({ request_put: { key: b64(`pl/${k}`), value: b64(value(k, round)) } });
    }
    const r = await post(`${s.url}/v3/kv/txn`, { success: ops });
    if (r.status !== 200) throw new Error(`txn at ${i}: ${r.status} ${JSON.stringify(r.json)}`);
  }
}

/** checkKeys reads every key back and returns the first mismatch, if any. */
async function checkKeys(s: TestServer, want: Map<number, string>): Promise<string | undefined> {
  const r = await post(`${s.url}/v3/kv/range`, {
    key: b64('pl/'), range_end: b64('pl0'), limit: 0,
  });
  const kvs = r.json.kvs as { key: string; value: string }[];
  if (kvs.length !== want.size) return `${kvs.length} keys, ${want.size} written`;
  for (const kv of kvs) {
    const k = Number(Buffer.from(kv.key, 'base64').toString().slice(3));
    if (Buffer.from(kv.value, 'base64').toString() !== want.get(k)) return `key pl/${k}`;
  }
  return undefined;
}

test('a restore into plain buffers, grown past its capacity by writes, restores and replays ' +
  'every key', async (t) => {
  // No periodic snapshot in this many entries; a stop's snapshot for a tail of 10 or more.
  const args = ['--snapshot-count', '1000'];
  const want = new Map<number, string>();
  const first = await startServer({ args, env });
  t.teardown(() => first.close());
  t.log(`huge pages: ${logged(first, 'starting myetcd')[0]?.['mallocHugePages']}`);
  await putKeys(first, 0, 1500, 1);
  for (let k = 0; k < 1500; k++) want.set(k, value(k, 1));
  t.is(await first.stop(), 0);
  t.is(logged(first, 'snapshot taken').at(-1)?.['trigger'], 'stop');

  // The restore loads 1,500 rows; 2,500 new keys and 500 rewrites take the shard's and the
  // applier's columns and arenas past a restore's capacity (twice the rows loaded, at least
  // 1,024), so they grow by a copy.
  const second = await startServer({ dataDir: first.dataDir, args, env });
  t.teardown(() => second.close());
  t.is(await checkKeys(second, want), undefined, 'after the restore');
  // The shards and the applier read the values where the WAL writer read the snapshot file
  // (src/mvcc/kv-columns.ts, a base): the two shards their halves, the applier all of them.
  const bytes = [...want.values()].reduce((n, v) => n + v.length, 0);
  const metrics = await (await fetch(`${second.url}/metrics`)).text();
  const shared = (actor: string, part: string) =>
    metricValue(metrics, `myetcd_actor_memory_bytes{actor="${actor}",part="${part}"}`) ?? 0;
  const halves = [shared('shard-0', 'storeSharedValues'), shared('shard-1', 'storeSharedValues')];
  t.true(halves.every((h) => h > 0), `each shard shares its values: ${halves.join(', ')}`);
  t.is(halves[0]! + halves[1]!, bytes);
  // The applier's base spans both dumps' values, which the snapshot file keeps together in a
  // region of their own (src/cluster/proposal.ts snapshotBodyParts): nothing between them.
  t.is(shared('raft', 'applierSharedValues'), bytes);
  await putKeys(second, 1500, 4000, 2);
  await putKeys(second, 0, 500, 3);
  for (let k = 1500; k < 4000; k++) want.set(k, value(k, 2));
  for (let k = 0; k < 500; k++) want.set(k, value(k, 3));
  t.is(await checkKeys(second, want), undefined, 'after the growth');
  await second.kill();

  const third = await startServer({ dataDir: first.dataDir, args, env });
  t.teardown(() => third.close());
  const recovered = logged(third, 'recovered from snapshot and WAL').at(-1)!;
  t.true(Number(recovered['entries']) > 0, 'the start replayed a WAL tail');
  t.is(await checkKeys(third, want), undefined, 'after the restore and the replay');
  // The history too: a key's first value, at the revision of the first round.
  const r = await post(`${third.url}/v3/kv/range`, { key: b64('pl/7'), revision: 2 });
  t.is(Buffer.from((r.json.kvs as { value: string }[])[0]!.value, 'base64').toString(),
    value(7, 1));
});

test('a restored member snapshots again with its keys still packed, and the next start ' +
  'restores every key and its history from that snapshot', async (t) => {
  // 3,000 keys are 12 chunks of the key maps; the second member writes to keys of the first
  // chunk only, so its stop's snapshot copies the other 11 chunks' keys still packed
  // (src/mvcc/packed-keys.ts). A wrong byte there would show as a wrong key or value below.
  const args = ['--snapshot-count', '1000'];
  const name = (i: number) => `pk/${String(i).padStart(5, '0')}`;
  const want = new Map<string, string>();
  const first = await startServer({ args, env });
  t.teardown(() => first.close());
  for (let i = 0; i < 3000; i += 100) {
    const ops = [];
    for (let k = i; k < i + 100; k++) {
      ops.push({ request_put: { key: b64(name(k)), value: b64(`first ${k}`) } });
      want.set(name(k), `first ${k}`);
    }
    t.is((await post(`${first.url}/v3/kv/txn`, { success: ops })).status, 200);
  }
  t.is(await first.stop(), 0);

  const second = await startServer({ dataDir: first.dataDir, args, env });
  t.teardown(() => second.close());
  for (let k = 0; k < 12; k++) { // 12 entries: a tail the stop snapshots
    t.is((await post(`${second.url}/v3/kv/put`, { key: b64(name(k)), value: b64('again') }))
      .status, 200);
    want.set(name(k), 'again');
  }
  t.is(await second.stop(), 0);
  t.is(logged(second, 'snapshot taken').at(-1)?.['trigger'], 'stop');

  const third = await startServer({ dataDir: first.dataDir, args, env });
  t.teardown(() => third.close());
  t.is(Number(logged(third, 'recovered from snapshot and WAL').at(-1)?.['entries']), 0,
    'the start restored the second member\'s snapshot, with no tail to replay');
  const all = await post(`${third.url}/v3/kv/range`, { key: b64('pk/'), range_end: b64('pk0') });
  const got = new Map((all.json.kvs as { key: string; value: string }[]).map((kv) =>
    [Buffer.from(kv.key, 'base64').toString(), Buffer.from(kv.value, 'base64').toString()]));
  t.deepEqual(got, want);
  // A rewritten key's first value and an untouched key's, at revision 31: the first
  // member's last (30 txns after revision 1).
  for (const k of [name(3), name(2999)]) {
    const r = await post(`${third.url}/v3/kv/range`, { key: b64(k), revision: 31 });
    t.is(Buffer.from((r.json.kvs as { value: string }[])[0]!.value, 'base64').toString(),
      `first ${Number(k.slice(3))}`, k);
  }
});
