import test from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import { FailpointTerms, failpointNames, parseFailpoints } from '../src/failpoints.js';
import { b64, logged, post, type TestServer, unb64, useServer } from './helpers/server.js';
import { Signal, until } from './helpers/wait.js';

// ---- The grammar (src/failpoints.ts) ----

test('failpoints: gofail\'s name=terms pairs, counts and chains', (t) => {
  const m = parseFailpoints('walBeforeSync=sleep(1500); raftAfterSave=2*off->panic;' +
    'walBeforeWrite=1*return("ENOSPC")->off');
  t.deepEqual(m.get('walBeforeSync'), [{ count: undefined, action: { kind: 'sleep', ms: 1500 } }]);
  const after = new FailpointTerms(m.get('raftAfterSave')!);
  t.deepEqual([after.next(), after.next(), after.next(), after.next()].map((a) => a.kind),
    ['off', 'off', 'panic', 'panic']);
  const w = new FailpointTerms(m.get('walBeforeWrite')!);
  t.deepEqual(w.next(), { kind: 'return', value: 'ENOSPC' });
  t.deepEqual([w.next(), w.next()], [{ kind: 'off' }, { kind: 'off' }]);
  const counted = new FailpointTerms(parseFailpoints('walAfterSync=2*return(EIO)')
    .get('walAfterSync')!);
  t.deepEqual([counted.next().kind, counted.next().kind, counted.next().kind],
    ['return', 'return', 'off'], 'past its last counted term a point is off');
});

test('failpoints: the older comma-separated flags still read, alone or beside pairs', (t) => {
  t.deepEqual([...parseFailpoints('peer-fault,shard-crash-on-read').keys()],
    ['peer-fault', 'shard-crash-on-read']);
  const m = parseFailpoints('peer-fault;walAfterSync=panic');
  t.deepEqual(m.get('peer-fault'), [{ count: undefined, action: { kind: 'on' } }]);
  t.deepEqual(m.get('walAfterSync'), [{ count: undefined, action: { kind: 'panic' } }]);
  t.is(parseFailpoints('').size, 0);
});

test('failpoints: what cannot be read is refused, naming the part', (t) => {
  const cases: [string, RegExp][] = [
    ['walBeforeSynk=panic', /unknown failpoint "walBeforeSynk"/],
    ['walBeforeSync=explode', /unknown action "explode"/],
    ['walBeforeSync=sleep(soon)', /sleep takes milliseconds/],
    ['walBeforeSync=0*panic', /a count is a positive integer/],
    ['walBeforeSync=panic->', /term 2: empty/],
    ['walBeforeSync=return()', /return's value/],
    ['walBeforeSync=panic(1)', /panic takes no argument/],
  ];
  for (const [spec, re] of cases) {
    const e = t.throws(() => parseFailpoints(spec), undefined, spec);
    t.regex(e!.message, re, spec);
    t.is((e as unknown as { code: string }).code, 'CONFIG_INVALID', spec);
  }
});

test('failpoints: a bad GOFAIL_FAILPOINTS stops the server at start with the reason',
  async (t) => {
    const e = await t.throwsAsync(useServer(t, { env: { GOFAIL_FAILPOINTS: 'nope=panic' } }));
    t.regex(e!.message, /unknown failpoint "nope"/);
  });

// ---- Crash points: the process dies at the point (SIGKILL by itself), and a restart keeps
// every acknowledged write ----

/** writeUntilDeath puts keys from a few loops until the server dies, recording what it
 * acknowledged. */
async function writeUntilDeath(srv: TestServer, prefix: string): Promise<Map<string, string>> {
  const acked = new Map<string, string>();
  const died = new Signal();
  srv.proc.once('exit', () => died.notify());
  const one = async (w: number) => {
    for (let i = 0; srv.running; i++) {
      const key = `${prefix}/${w}/${i}`;
      try {
        const r = await post(`${srv.url}/v3/kv/put`, { key: b64(key), value: b64(`v${i}`) });
        if (r.status === 200) acked.set(key, `v${i}`);
      } catch {
        if (!srv.running) return;
        await sleep(20);
      }
    }
  };
  const loops = Array.from({ length: 4 }, (_, w) => one(w));
  await died.until(() => !srv.running, 'the failpoint to kill the server', 120_000);
  await Promise.all(loops);
  return acked;
}

const snapArgs = ['--snapshot-count', '20', '--experimental-snapshot-catchup-entries', '5'];

const crashPoints: { point: string; spec: string; args?: string[] }[] = [
  { point: 'raftBeforeSave', spec: '30*off->panic' },
  { point: 'walBeforeWrite', spec: '30*off->panic' },
  { point: 'walBeforeSync', spec: '30*off->panic' },
  { point: 'walAfterSync', spec: '30*off->panic' },
  { point: 'raftAfterSave', spec: '30*off->panic' },
  { point: 'beforeApply', spec: '30*off->panic' },
  { point: 'afterApply', spec: '30*off->panic' },
  { point: 'raftBeforeSaveSnap', spec: 'panic', args: snapArgs },
  { point: 'snapBeforeRename', spec: 'panic', args: snapArgs },
  { point: 'raftAfterSaveSnap', spec: 'panic', args: snapArgs },
];

for (const { point, spec, args } of crashPoints) {
  test(`crash at ${point}: every acknowledged write is there after a restart`, async (t) => {
    t.true(Object.hasOwn(failpointNames, point));
    const srv = await useServer(t,
      { env: { GOFAIL_FAILPOINTS: `${point}=${spec}` }, args, exitExpected: true });
    const acked = await writeUntilDeath(srv, point);
    t.is(srv.proc.signalCode, 'SIGKILL', 'the failpoint killed the process');
    await until(() => srv.logs.some((l) => l === `failpoint ${point}: panic (SIGKILL)`),
      `the panic line of ${point}`);
    const again = await useServer(t, { dataDir: srv.dataDir, args });
    const r = await post(`${again.url}/v3/kv/range`,
      { key: b64(`${point}/`), range_end: b64(`${point}0`) });
    t.is(r.status, 200);
    const found = new Map<string, string>((r.json.kvs ?? []).map(
      (kv: { key: string; value: string }) => [unb64(kv.key), unb64(kv.value)]));
    const lost = [...acked].filter(([k, v]) => found.get(k) !== v);
    t.deepEqual(lost, [], `${lost.length} of ${acked.size} acknowledged writes lost`);
    // Still a working member: it takes a write after the recovery.
    t.is((await post(`${again.url}/v3/kv/put`, { key: b64(`${point}/after`), value: b64('x') }))
      .status, 200);
  });
}

test('slow fsync (sleep longer than the election timeout): a lone member keeps leading and ' +
  'acknowledges the write once it is durable', async (t) => {
  const srv = await useServer(t, {
    env: { GOFAIL_FAILPOINTS: 'walBeforeSync=20*off->1*sleep(1500)->off' },
    args: ['--election-timeout', '1000'],
  });
  const acked: string[] = [];
  for (let i = 0; i < 30; i++) {
    const r = await post(`${srv.url}/v3/kv/put`, { key: b64(`slow/${i}`), value: b64('v') });
    t.is(r.status, 200, `put ${i}`);
    acked.push(`slow/${i}`);
  }
  const st = await post(`${srv.url}/v3/maintenance/status`, {});
  t.is(st.json.leader, st.json.header.member_id);
  // etcd's warning for an fsync over a second (a loaded machine may add others).
  const slept = () => logged(srv, 'slow fdatasync').filter((l) => l.tookMs >= 1500);
  await until(() => slept().length > 0, 'the slow fdatasync warning');
  t.is(slept()[0]!.expectedMs, 1000);
  await srv.kill();
  const again = await useServer(t, { dataDir: srv.dataDir });
  const r = await post(`${again.url}/v3/kv/range`, { key: b64('slow/'), range_end: b64('slow0') });
  t.is(r.json.count, String(acked.length));
});
