import test from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import { b64, post, type TestServer, unb64, useServer } from './helpers/server.js';
import { Signal, until } from './helpers/wait.js';
import { movedBytesMin } from '../src/runtime/codec.js';

/** Writers put keys from `concurrency` loops until told to stop, recording what the server
 * acknowledged; `acked` wakes waiters on each acknowledgement. */
function writers(srv: TestServer, prefix: string, concurrency: number) {
  const acked = new Map<string, string>();
  const signal = new Signal();
  let stop = false;
  const one = async (w: number) => {
    for (let i = 0; !stop; i++) {
      const key = `${prefix}/${w}/${i}`;
      const value = `v${w}-${i}`;
      try {
        const r = await post(`${srv.url}/v3/kv/put`, { key: b64(key), value: b64(value) });
        if (r.status === 200) acked.set(key, value);
        signal.notify();
      } catch {
        if (!srv.running) return; // the connection died with the server
        await sleep(20); // refused while it stops: try again, without spinning
      }
    }
  };
  const all = Array.from({ length: concurrency }, (_, w) => one(w));
  return {
    acked,
    /** until resolves once at least n writes are acknowledged (generous: a loaded machine
     * with a shared disk has been seen to take 30 s for 300). */
    until: (n: number) =>
      signal.until(() => acked.size >= n, `${n} acknowledged writes`, 120_000),
    /** stop ends the loops (each after its request in flight) and waits for them. */
    async stop() {
      stop = true;
      await Promise.all(all);
    },
  };
}

// The durability promise: an acknowledged write survives kill -9 at any moment.
test('crash: every write acknowledged before SIGKILL is there after restart', async (t) => {
  const first = await useServer(t);
  const w = writers(first, 'crash', 16);
  // Killed in the middle of a stream of writes: 16 in flight, a hundred acknowledged.
  await w.until(100);
  await first.kill();
  await w.stop();
  const acked = w.acked;
  const second = await useServer(t, { dataDir: first.dataDir });
  const r = await post(`${second.url}/v3/kv/range`, {
    key: b64('crash/'), range_end: b64('crash0'),
  });
  t.is(r.status, 200);
  const found = new Map<string, string>(
    (r.json.kvs ?? []).map((kv: { key: string; value: string }) =>
      [unb64(kv.key), unb64(kv.value)]));
  const lost = [...acked].filter(([k, v]) => found.get(k) !== v);
  t.deepEqual(lost, [], `${lost.length} of ${acked.size} acknowledged writes lost`);
});

test('restart: a clean stop exits 0 and the data is served again', async (t) => {
  const first = await useServer(t);
  await post(`${first.url}/v3/kv/put`, { key: b64('restart/k'), value: b64('kept') });
  t.is(await first.stop(), 0);
  const second = await useServer(t, { dataDir: first.dataDir });
  const r = await post(`${second.url}/v3/kv/range`, { key: b64('restart/k') });
  t.is(unb64(r.json.kvs[0].value), 'kept');
});

test('snapshot: after snapshots and log release, a restart recovers every key', async (t) => {
  const first = await useServer(t, { args: ['--snapshot-count', '100'] });
  const keys = Array.from({ length: 450 }, (_, i) => `snap/${String(i).padStart(4, '0')}`);
  for (let i = 0; i < keys.length; i += 50) {
    await Promise.all(keys.slice(i, i + 50).map((k) =>
      post(`${first.url}/v3/kv/put`, { key: b64(k), value: b64(`v-${k}`) })));
  }
  await post(`${first.url}/v3/kv/deleterange`, { key: b64(keys[0]!) });
  t.is(await first.stop(), 0);
  const second = await useServer(t, { dataDir: first.dataDir, args: ['--snapshot-count', '100'] });
  t.true(second.logs.some((l) => l.includes('snap') || l.includes('snapshot')) ||
    first.logs.some((l) => l.includes('saved snapshot')), 'a snapshot was taken');
  const r = await post(`${second.url}/v3/kv/range`, {
    key: b64('snap/'), range_end: b64('snap0'),
  });
  t.is(r.json.count, String(keys.length - 1));
  t.is(unb64(r.json.kvs[0].key), keys[1]!);
  t.is(unb64(r.json.kvs[0].value), `v-${keys[1]}`);
});

test('snapshot: one larger than movedBytesMin (moved between threads, not packed) is saved ' +
  'and a restart recovers it byte for byte', async (t) => {
  const args = ['--snapshot-count', '100'];
  const first = await useServer(t, { args });
  // Keys of 400-byte values, written until a snapshot past movedBytesMin is saved (≈ 170 keys;
  // one snapshot is taken at a time, and on a loaded machine one may outlast many writes): its
  // dump, the WAL writer's copy, its snapshot task's and the restart's load all move.
  const keyOf = (i: number) => `moved/${String(i).padStart(5, '0')}`;
  const valueOf = (k: string) => `${k}:`.padEnd(400, String.fromCharCode(97 + (k.length % 26)));
  const sizes = () => first.logs.filter((l) => l.includes('snapshot taken'))
    .map((l) => Number(/"bytes":(\d+)/.exec(l)?.[1] ?? 0));
  let n = 0;
  await until(async () => {
    if (sizes().some((b) => b > movedBytesMin)) return true;
    await Promise.all(Array.from({ length: 50 }, () => keyOf(n++)).map((k) =>
      post(`${first.url}/v3/kv/put`, { key: b64(k), value: b64(valueOf(k)) })));
    return false;
  }, `a snapshot past ${movedBytesMin} bytes`, { intervalMs: 10 });
  t.is(await first.stop(), 0);
  const second = await useServer(t, { dataDir: first.dataDir, args });
  t.true(second.logs.some((l) => l.includes('recovered from snapshot and WAL') &&
    !l.includes('"snapshotIndex":0')), 'the restart loaded a snapshot');
  const r = await post(`${second.url}/v3/kv/range`,
    { key: b64('moved/'), range_end: b64('moved0') });
  t.is(r.json.count, String(n));
  const keys = Array.from({ length: n }, (_, i) => keyOf(i));
  t.deepEqual(r.json.kvs.map((kv: { key: string; value: string }) => [unb64(kv.key),
    unb64(kv.value)]), keys.map((k) => [k, valueOf(k)]));
});

test('graceful stop under load: exit 0 and every acknowledged write is kept', async (t) => {
  const first = await useServer(t);
  const w = writers(first, 'term', 8);
  await w.until(100); // stopped in the middle of a stream of writes
  const code = await first.stop();
  await w.stop();
  t.is(code, 0);
  const second = await useServer(t, { dataDir: first.dataDir });
  const r = await post(`${second.url}/v3/kv/range`, { key: b64('term/'), range_end: b64('term0') });
  const found = new Set((r.json.kvs ?? []).map((kv: { key: string }) => unb64(kv.key)));
  t.deepEqual([...w.acked.keys()].filter((k) => !found.has(k)), []);
  t.true(w.acked.size >= 100);
});

test('supervision: a crashed actor thread is restarted and the store recovers from the WAL',
  async (t) => {
    const srv = await useServer(t, { env: { GOFAIL_FAILPOINTS: 'shard-crash-on-read' } });
    for (let i = 0; i < 20; i++) {
      await post(`${srv.url}/v3/kv/put`, { key: b64(`sup/${i}`), value: b64(`v${i}`) });
    }
    // The failpoint makes a shard thread throw while serving this read.
    const crashed = await post(`${srv.url}/v3/kv/range`, { key: b64('failpoint/crash') });
    t.true(crashed.status >= 500, `the read in flight fails (${crashed.status})`);
    // Served again once the actors are back (the gateway answers 503 meanwhile).
    let r: Awaited<ReturnType<typeof post>> | undefined;
    await until(async () => {
      r = await post(`${srv.url}/v3/kv/range`, { key: b64('sup/'), range_end: b64('sup0') })
        .catch(() => undefined);
      return r?.status === 200;
    }, 'the store to serve again');
    t.is(r?.json.count, '20');
    const metrics = await (await fetch(`${srv.url}/metrics`)).text();
    t.regex(metrics, /myetcd_actor_restarts_total\{actor="shard-\d"\} 1/);
    t.true(srv.logs.some((l) => l.includes('restarting all actors')));
  });

test('restart: a member keeps the identity in its WAL whatever the peer URL flags say',
  async (t) => {
    const first = await useServer(t, { args: [
      '--initial-advertise-peer-urls', 'http://127.0.0.1:3111',
      '--initial-cluster', 'default=http://127.0.0.1:3111'] });
    await post(`${first.url}/v3/kv/put`, { key: b64('ident/k'), value: b64('v') });
    const before = await post(`${first.url}/v3/maintenance/status`, {});
    t.is(await first.stop(), 0);
    // Regression: a new peer URL used to derive a new member id, which is not a voter in the
    // recovered membership, so the member never became leader again.
    const second = await useServer(t, { dataDir: first.dataDir, args: [
      '--initial-advertise-peer-urls', 'http://127.0.0.1:3222',
      '--initial-cluster', 'default=http://127.0.0.1:3222'] });
    const r = await post(`${second.url}/v3/kv/range`, { key: b64('ident/k') });
    t.is(unb64(r.json.kvs[0].value), 'v');
    t.is(r.json.header.member_id, before.json.header.member_id);
  });
