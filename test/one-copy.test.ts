import test from 'ava';
import { b64, post, put, unb64, useServer, type TestServer } from './helpers/server.js';
import { metricValue } from './helpers/metrics.js';
import { until } from './helpers/wait.js';
import { seeded } from './helpers/rng.js';

/*
 * One copy of the values, on a running server with two shards: the shards' rows point into
 * the Raft thread's value arena instead of holding copies (docs/mvcc.md, "One copy of the
 * values"). Overwrites of 0.5–3.5 KB values over 60 keys with compactions at the first 400,
 * 800 and 1,200 writes make the applier hold, release and rebuild its arena, and the shards
 * copy their rows out of the retired ones; the later writes keep all their history, so that
 * every version read at its revision includes rows copied out. Checked against what was
 * written, before and after a kill -9 (a snapshot every 300 entries: the restart loads one).
 * Fails when a copy out shifts a value by one byte (checked in dist/).
 */

const keys = 60;
const writes = 2400;

async function metrics(url: string): Promise<string> {
  return (await fetch(`${url}/metrics`)).text();
}

/** check reads the whole key space at every 10th revision above the compaction (and at the
 * last), each against the state the log gives at that revision. */
async function check(srv: TestServer, log: [number, string, string][], compacted: number):
  Promise<string[]> {
  const bad: string[] = [];
  const state = new Map<string, string>();
  let i = 0;
  const last = log[log.length - 1]![0];
  for (let rev = compacted + 1; rev <= last; rev++) {
    while (i < log.length && log[i]![0] <= rev) state.set(log[i]![1], log[i++]![2]);
    if ((rev - compacted) % 10 !== 0 && rev !== last) continue;
    const r = await post(`${srv.url}/v3/kv/range`, {
      key: b64('one-copy/'), range_end: b64('one-copy0'), revision: String(rev),
    });
    const got = new Map<string, string>((r.json.kvs ?? []).map(
      (kv: { key: string; value: string }) => [unb64(kv.key), unb64(kv.value)]));
    for (const [k, v] of state) if (got.get(k) !== v) bad.push(`${k} at ${rev}`);
    if (got.size !== state.size) bad.push(`${got.size} keys at ${rev}, not ${state.size}`);
  }
  return bad;
}

test('one copy: shards read the applier\'s arena through overwrites, compactions and a ' +
  'kill -9, and every value and past version reads back', async (t) => {
  const args = ['--storage-shards', '2', '--snapshot-count', '300'];
  const first = await useServer(t, { args });
  const rng = seeded(28);
  const log: [number, string, string][] = [];
  let compacted = 0;
  for (let i = 1; i <= writes; i++) {
    const k = `one-copy/${Math.floor(rng() * keys)}`;
    const v = `${i}:`.padEnd(500 + Math.floor(rng() * 3000), String.fromCharCode(97 + i % 26));
    log.push([await put(first.url, k, v), k, v]);
    if (i % 400 === 0 && i <= 1200) {
      compacted = log[log.length - 1]![0] - 200;
      const r = await post(`${first.url}/v3/kv/compaction`, { revision: String(compacted) });
      t.is(r.status, 200);
    }
  }
  // The shards hold values in the applier's arena (reported by each shard thread).
  for (const shard of ['shard-0', 'shard-1']) {
    const series = `myetcd_actor_memory_bytes{actor="${shard}",part="storeApplierValues"}`;
    await until(async () => (metricValue(await metrics(first.url), series) ?? 0) > 0,
      `${shard} reporting values left in the applier's arena`);
  }
  t.deepEqual(await check(first, log, compacted), [], 'before the kill');
  await first.kill();
  const second = await useServer(t, { args, dataDir: first.dataDir });
  t.deepEqual(await check(second, log, compacted), [], 'after kill -9 and a restart');
  // Writes after the restart go to the applier's new arena, and read back too.
  const k = 'one-copy/after';
  log.push([await put(second.url, k, 'written after the restart'), k,
    'written after the restart']);
  t.deepEqual(await check(second, log, compacted), [], 'after a write on the restarted member');
});
