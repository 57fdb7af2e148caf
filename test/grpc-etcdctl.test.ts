import test, { type ExecutionContext } from 'ava';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type CtlResult, ctlStderr, type EtcdCluster, etcdBin, etcdctlBin, haveEtcd, needsEtcd, normIds,
  runCtl, startEtcd,
} from './helpers/etcd-ref.js';
import { freePorts } from './helpers/cluster.js';
import { metricValue } from './helpers/metrics.js';
import { b64, grpcUrl, post, startServer, type TestServer } from './helpers/server.js';
import { until } from './helpers/wait.js';

/**
 * etcd's own etcdctl 3.4 over gRPC, against MyEtcd's gRPC gateway and against a real etcd 3.4:
 * the same command lines, run in the same order on both (so revisions match), must print the
 * same after replacing only what must differ — cluster and member ids, lease ids, raft terms
 * and indexes, db sizes, timings, member names and URLs, the hash of `endpoint hashkv`, and a
 * lease's remaining TTL (checked against the time the test let pass). Needs Debian's
 * etcd-server and etcd-client; skipped, visibly, when they are missing.
 */

const serial = haveEtcd ? test.serial : test.serial.skip;
if (!haveEtcd) test.skip(`grpc-etcdctl: ${needsEtcd}`, () => {});

/** Side is one of the two stores, with etcdctl pointed at it. */
interface Side {
  name: 'etcd' | 'myetcd';
  endpoint: string;
  subst: Map<string, string>;
  tokens: Array<[string, string]>;
  run(args: string[], stdin?: string): Promise<CtlResult>;
}

let etcd: EtcdCluster | undefined;
let server: TestServer | undefined;
let ref: Side;
let mine: Side;

function side(name: Side['name'], endpoint: string): Side {
  const s: Side = {
    name, endpoint, subst: new Map(), tokens: [],
    run: (args, stdin) => runCtl(etcdctlBin, ['--endpoints', endpoint,
      ...args.map((a) => a.replace(/\{(\w+)\}/g, (m, k: string) => s.subst.get(k) ?? m))],
    { stdin }),
  };
  return s;
}

test.before(async () => {
  if (!haveEtcd) return;
  etcd = await startEtcd(1);
  server = await startServer();
  // Endpoints as users write them, http://host:port (src/grpc/authority.ts says why that
  // needs care); host:port is checked at the end.
  ref = side('etcd', etcd.endpoints[0]!);
  mine = side('myetcd', await grpcUrl(server));
  for (const s of [ref, mine]) {
    // The ids, from etcdctl's own JSON (uint64 as JSON numbers: read them as text).
    const r = await s.run(['endpoint', 'status', '-w', 'json']);
    const text = r.out.toString();
    if (!/"cluster_id"/.test(text)) throw new Error(`${s.name}: ${text} ${r.err}`);
    const cluster = /"cluster_id":(\d+)/.exec(text)![1]!;
    const member = /"member_id":(\d+)/.exec(text)![1]!;
    for (const [id, token] of [[cluster, '<cluster>'], [member, '<member>']] as const) {
      const hex = BigInt(id).toString(16);
      s.tokens.push([id, token], [hex.padStart(16, '0'), token], [hex, token]);
    }
  }
});

test.after.always(async () => {
  await server?.stop();
  await server?.cleanup();
  await etcd?.stop();
});

interface Norm {
  code: number;
  out: string;
  err: string;
}

function normText(s: Side, text: string): string {
  return normIds(text.split(s.endpoint.replace(/^http:\/\//, '')).join('<ep>'), s.tokens);
}

function norm(s: Side, r: CtlResult): Norm {
  const err = ctlStderr(r.err);
  return { code: r.code, out: normText(s, r.out.toString('utf8')), err: normText(s, err) };
}

async function both(args: string[], stdin?: string): Promise<[CtlResult, CtlResult]> {
  const a = await ref.run(args, stdin);
  const b = await mine.run(args, stdin);
  return [a, b];
}

/** same asserts that a command line prints the same on both sides (`fix` normalises more). */
async function same(t: ExecutionContext, args: string[], stdin?: string,
  fix: (s: string) => string = (s) => s): Promise<Norm> {
  const [a, b] = await both(args, stdin);
  const f = (n: Norm) => ({ code: n.code, out: fix(n.out), err: fix(n.err) });
  const na = f(norm(ref, a));
  t.deepEqual(f(norm(mine, b)), na, `etcdctl ${args.join(' ')}`);
  return na;
}

serial('grpc etcdctl: put and get', async (t) => {
  await same(t, ['put', 'foo', 'bar']);
  await same(t, ['put', 'foo', 'bar2', '--prev-kv']);
  await same(t, ['put', 'foo', 'bar3', '--prev-kv', '-w', 'json']);
  await same(t, ['put', 'a', '1', '-w', 'fields']);
  await same(t, ['put', 'b', '2']);
  await same(t, ['put', 'c', '3', '--prev-kv', '-w', 'fields']);
  await same(t, ['put', '--ignore-value', 'foo']);
  await same(t, ['put', '--ignore-value', 'nokey']);
  await same(t, ['put', 'k', 'v', '--lease=1234']);
  await same(t, ['get', 'foo']);
  await same(t, ['get', 'foo', '-w', 'json']);
  await same(t, ['get', 'foo', '-w', 'fields']);
  await same(t, ['get', 'a', 'c']);
  await same(t, ['get', 'a', '--from-key', '--keys-only']);
  await same(t, ['get', '', '--prefix', '--limit', '2', '-w', 'json']);
  await same(t, ['get', '', '--prefix', '--order', 'DESCEND', '--sort-by', 'MODIFY']);
  await same(t, ['get', '', '--prefix', '--sort-by', 'VALUE', '--keys-only']);
  await same(t, ['get', '', '--from-key', '--order=ascend', '--sort-by=create', '-w', 'fields']);
  await same(t, ['get', 'foo', '--print-value-only']);
  await same(t, ['get', 'foo', '--rev', '2']);
  await same(t, ['get', 'foo', '--consistency', 's']);
  await same(t, ['get', 'nokey', '-w', 'json']);
  await same(t, ['get', 'foo', '--rev', '999999']);
});

serial('grpc etcdctl: del', async (t) => {
  await same(t, ['put', 'd/1', 'x']);
  await same(t, ['put', 'd/2', 'y']);
  await same(t, ['put', 'd/3', 'z']);
  await same(t, ['del', 'nokey']);
  await same(t, ['del', 'd/1', '--prev-kv']);
  await same(t, ['del', 'd/2', 'd/3', '-w', 'json']);
  await same(t, ['put', 'd/4', 'w']);
  await same(t, ['del', 'd/', '--prefix', '--prev-kv', '-w', 'fields']);
});

serial('grpc etcdctl: txn from stdin', async (t) => {
  const ok =
    'value("foo") = "bar3"\n\nput foo bar4 --prev-kv\nget foo\ndel nokey\nput t1 v\n\nput t2 v\n\n';
  await same(t, ['txn'], ok);
  await same(t, ['txn', '-w', 'json'], ok);
  await same(t, ['txn', '-w', 'fields'], ok);
  const two =
    'mod("foo") > "0"\nver("a") = "1"\ncreate("nokey") = "0"\n\n' +
    'get a --prefix\nput "spaced key" "spaced value"\n\ndel foo\n\n';
  await same(t, ['txn', '-w', 'json'], two);
  await same(t, ['txn', '--interactive'], two);
  await same(t, ['txn'], '\n\n\n');
  // Two puts of one key in a branch: etcd's duplicate-key error, from the server.
  await same(t, ['txn'], '\n\nput x 1\nput x 2\n\n\n');
});

/** grantBoth grants a lease on both sides and records its ids under `name`. */
async function grantBoth(t: ExecutionContext, name: string, ttl: number): Promise<number> {
  const granted = Date.now();
  const [a, b] = await both(['lease', 'grant', String(ttl)]);
  for (const [s, r] of [[ref, a], [mine, b]] as const) {
    const m = /^lease ([0-9a-f]{16}) granted with TTL\((\d+)s\)\n$/.exec(r.out.toString());
    t.truthy(m, `${s.name}: ${r.out.toString()} ${r.err}`);
    const hex = m![1]!;
    s.subst.set(name, hex);
    s.tokens.push([hex, `<${name}>`], [BigInt('0x' + hex).toString(), `<${name}>`],
      [BigInt('0x' + hex).toString(16), `<${name}>`]);
  }
  t.is(normText(mine, b.out.toString()), normText(ref, a.out.toString()));
  return granted;
}

/** remaining checks a lease's remaining TTL against the time that passed since its grant,
 * then replaces it with a placeholder. */
function remaining(t: ExecutionContext, granted: number, ttl: number) {
  return (text: string): string => {
    const elapsedS = Math.ceil((Date.now() - granted) / 1000);
    return text.replace(/(remaining\(|"ttl":|"TTL" : )(-?\d+)/g, (_m, pre: string, v: string) => {
      t.true(Number(v) <= ttl && Number(v) >= ttl - elapsedS - 1, `remaining ${v} of ${ttl}`);
      return `${pre}<remaining>`;
    });
  };
}

serial('grpc etcdctl: lease', async (t) => {
  const granted = await grantBoth(t, 'L1', 1000);
  await same(t, ['put', '--lease={L1}', 'leased', 'v']);
  await same(t, ['get', 'leased', '-w', 'json']);
  for (const w of ['simple', 'json']) {
    for (const keys of [[], ['--keys']]) {
      await same(t, ['lease', 'timetolive', '{L1}', '-w', w, ...keys], undefined,
        remaining(t, granted, 1000));
    }
  }
  await same(t, ['lease', 'timetolive', '1234']);
  await same(t, ['lease', 'keep-alive', '--once', '{L1}']);
  await same(t, ['lease', 'keep-alive', '--once', '{L1}', '-w', 'json']);
  await same(t, ['lease', 'list']);
  await same(t, ['lease', 'list', '-w', 'json']);
  await same(t, ['lease', 'revoke', '{L1}']);
  await same(t, ['get', 'leased']);
  await same(t, ['lease', 'list']);
  await same(t, ['lease', 'revoke', '{L1}']);
  await same(t, ['lease', 'keep-alive', '--once', '1234']);
  await same(t, ['lease', 'timetolive', '{L1}']);
});

/** watchUntil runs `etcdctl watch` on one side until its stdout holds `marker`, then stops.
 * `poke`, when given, is called until the marker shows (a put a live watch must see: the
 * watch is established at some moment after the process starts, which only its output
 * tells, so the put is repeated until one is seen). */
async function watchUntil(s: Side, args: string[], marker: string,
  poke?: () => Promise<unknown>): Promise<string> {
  const child = spawn(etcdctlBin, ['--endpoints', s.endpoint, 'watch', ...args],
    { env: { ETCDCTL_API: '3', PATH: process.env.PATH ?? '' } });
  let out = '';
  let err = '';
  let gone = false;
  const seen = (): boolean => {
    const at = out.indexOf(marker);
    return at >= 0 && out.indexOf('\n', at + marker.length - 1) >= 0;
  };
  const exited = new Promise<void>((resolve) => child.once('exit', () => {
    gone = true;
    resolve();
  }));
  try {
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (seen()) resolve();
      });
      child.stderr.on('data', (d: Buffer) => {
        err += d.toString();
      });
      void exited.then(() => reject(new Error(`${s.name} watch exited: ${out} ${err}`)));
      if (poke !== undefined) {
        void until(async () => {
          if (seen() || gone) return true;
          await poke();
          return seen();
        }, `${s.name}: a live watch seeing a put`, { intervalMs: 100 }).catch(reject);
      }
    });
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
  return normText(s, out);
}

serial('grpc etcdctl: watch', async (t) => {
  const [a] = await both(['put', 'w/start', 's', '-w', 'json']);
  const rev = /"revision":(\d+)/.exec(a.out.toString())![1]!;
  await same(t, ['put', 'w/a', '1']);
  await same(t, ['put', 'w/a', '2']);
  await same(t, ['del', 'w/a']);
  await same(t, ['put', 'w/end', 'e']);
  for (const extra of [[], ['-w', 'json'], ['--prev-kv']]) {
    const marker = extra.includes('json') ? Buffer.from('w/end').toString('base64') : 'w/end\ne\n';
    const args = ['w/', '--prefix', '--rev', rev, ...extra];
    t.is(await watchUntil(mine, args, marker), await watchUntil(ref, args, marker),
      `watch ${args.join(' ')}`);
  }
  // A live watch sees a put made while it runs.
  for (const s of [mine, ref]) {
    const out = await watchUntil(s, ['live/', '--prefix'], 'live/k\nv\n',
      () => s.run(['put', 'live/k', 'v']));
    t.true(out.startsWith('PUT\nlive/k\nv\n'), `${s.name}: ${out}`);
  }
});

serial('grpc etcdctl: compaction', async (t) => {
  // Align the two stores' revisions (the live watch above may have put more on one side).
  const revs = await Promise.all([ref, mine].map(async (s) => {
    const r = await s.run(['put', 'align', 'x', '-w', 'json']);
    return Number(/"revision":(\d+)/.exec(r.out.toString())![1]!);
  }));
  const behind = revs[0]! < revs[1]! ? ref : mine;
  for (let i = Math.min(...revs); i < Math.max(...revs); i++) {
    await behind.run(['put', 'align', 'x']);
  }
  const [a] = await both(['put', 'compact-me', 'x', '-w', 'json']);
  const rev = /"revision":(\d+)/.exec(a.out.toString())![1]!;
  await same(t, ['compaction', rev]);
  await same(t, ['get', 'foo', '--rev', '2']);
  await same(t, ['watch', 'foo', '--rev', '2']);
  await same(t, ['compaction', '--physical', rev]);
  await same(t, ['compaction', '1']);
});

/** statusNorm replaces what must differ in endpoint status (version, db size, raft term and
 * indexes). */
function statusNorm(text: string): string {
  return text
    .replace(/(, <member>, )3\.4\.\d+, [\d.]+ [kMG]?B, (true|false), (true|false), \d+, \d+, \d+,/g,
      '$1<version>, <size>, $2, $3, <term>, <index>, <index>,')
    .replace(/"(version|dbSize|raftIndex|raftTerm|raftAppliedIndex|dbSizeInUse)":("[^"]*"|\d+)/g,
      '"$1":<$1>')
    .replace(/"revision":\d+/g, '"revision":<rev>');
}

serial('grpc etcdctl: endpoint status, health, hashkv', async (t) => {
  const took = (s: string) => s.replace(/took = [\d.]+(ns|µs|ms|s)/g, 'took = <t>')
    .replace(/"took":"[^"]+"/g, '"took":"<t>"');
  for (const w of ['simple', 'json']) {
    await same(t, ['endpoint', 'health', '-w', w], undefined, took);
    await same(t, ['endpoint', 'status', '-w', w], undefined, statusNorm);
  }
  const hash = (s: string) => s.replace(/, \d+\n/g, ', <hash>\n')
    .replace(/"hash":\d+/g, '"hash":<hash>').replace(/"revision":\d+/g, '"revision":<rev>');
  await same(t, ['endpoint', 'hashkv'], undefined, hash);
  await same(t, ['endpoint', 'hashkv', '-w', 'json'], undefined, hash);
});

serial('grpc etcdctl: member list names where gRPC clients connect', async (t) => {
  const [a, b] = await both(['member', 'list']);
  const line = (s: Side, text: string) => normText(s, text).split(', ');
  const ra = line(ref, a.out.toString());
  const rb = line(mine, b.out.toString());
  t.is(b.code, 0, b.err);
  t.is(rb.length, ra.length);
  // Id, status and learner flag as etcd's; the client URL is the gRPC endpoint etcdctl was
  // given, as etcd's is its client URL (names and peer URLs differ by setup).
  t.deepEqual([rb[0], rb[1], rb[4], rb[5]], [ra[0], ra[1], ra[4], ra[5]]);
  t.is(rb[4], 'http://<ep>');
  const json = await mine.run(['member', 'list', '-w', 'json']);
  t.regex(json.out.toString(), new RegExp(`"clientURLs":\\["${mine.endpoint}"\\]`));
});

serial('grpc etcdctl: alarm, defrag and move-leader answer as etcd', async (t) => {
  await same(t, ['alarm', 'list']);
  await same(t, ['alarm', 'disarm']);
  // A NOSPACE raised through the JSON gateway on both (etcdctl has no command for it): the
  // JSON answers, etcdctl's list, the refused put (gRPC and JSON) and the disarm must match.
  const http = (sd: Side) => (sd.name === 'etcd' ? etcd!.endpoints[0]! : server!.url);
  const memberOf = (sd: Side) => sd.tokens.find(([id, tok]) => tok === '<member>' &&
    /^\d+$/.test(id))![0];
  const json = async (sd: Side, path: string, body: object) => {
    const r = await post(`${http(sd)}${path}`, body);
    const { header: _h, ...rest } = r.json;
    return { status: r.status, json: JSON.parse(normText(sd, JSON.stringify(rest))) };
  };
  const sameJson = async (path: string, body: (sd: Side) => object) => {
    const [a, b] = [await json(ref, path, body(ref)), await json(mine, path, body(mine))];
    t.deepEqual(b, a, `${path} ${JSON.stringify(body(mine))}`);
    return a;
  };
  const raised = await sameJson('/v3/maintenance/alarm',
    (sd) => ({ action: 'ACTIVATE', memberID: memberOf(sd), alarm: 'NOSPACE' }));
  t.deepEqual(raised.json.alarms, [{ memberID: '<member>', alarm: 'NOSPACE' }]);
  await sameJson('/v3/maintenance/alarm', () => ({}));
  const listed = await same(t, ['alarm', 'list']);
  t.regex(listed.out, /^memberID:<member> alarm:NOSPACE *\n$/);
  const refused = await same(t, ['put', 'capped', 'v']);
  t.regex(refused.err, /database space exceeded/);
  const put = await sameJson('/v3/kv/put', () => ({ key: b64('capped'), value: b64('v') }));
  t.is(put.status, 429);
  await same(t, ['alarm', 'disarm']);
  await same(t, ['alarm', 'list']);
  await same(t, ['put', 'capped', 'v']);
  await same(t, ['defrag']);
  // A single member: there is no other member to hand leadership to.
  await same(t, ['move-leader', '1234']);
});

serial('grpc etcdctl: an endpoint given as host:port works the same', async (t) => {
  const bare = (s: Side) => side(s.name, s.endpoint.replace(/^http:\/\//, ''));
  const [a, b] = [bare(ref), bare(mine)];
  a.tokens.push(...ref.tokens);
  b.tokens.push(...mine.tokens);
  const ra = norm(a, await a.run(['get', 'foo', '-w', 'json']));
  const rb = norm(b, await b.run(['get', 'foo', '-w', 'json']));
  t.deepEqual(rb, ra);
  t.is(rb.code, 0);
});

serial('grpc etcdctl: a connection goes to grpc-js as the bare socket unless its authority ' +
  'needs rewriting (myetcd_grpc_connections_total)', async (t) => {
  const count = async (handover: string) => metricValue(
    await (await fetch(`${server!.url}/metrics`)).text(),
    `myetcd_grpc_connections_total{handover="${handover}"}`) ?? 0;
  const [bare0, rewritten0] = [await count('bare'), await count('rewritten')];
  // host:port: grpc-go sends it as the authority, which Node accepts.
  const hostPort = side('myetcd', mine.endpoint.replace(/^http:\/\//, ''));
  t.is((await hostPort.run(['get', 'foo'])).code, 0);
  const bare1 = await count('bare');
  t.true(bare1 > bare0, `bare ${bare0} → ${bare1}`);
  t.is(await count('rewritten'), rewritten0);
  // `endpoint status` dials its endpoint as given: the authority is http://…, rewritten.
  const r = await mine.run(['endpoint', 'status']);
  t.is(r.code, 0, r.err);
  t.true(await count('rewritten') > rewritten0);
});

/** servedByEtcd restores a snapshot file with etcdctl into `dir`/restored and serves it with
 * a real etcd, once that answers a read. */
async function servedByEtcd(file: string, dir: string):
  Promise<{ proc: ChildProcess; side: Side }> {
  const restored = join(dir, 'restored');
  const r = await runCtl(etcdctlBin, ['snapshot', 'restore', file, '--data-dir', restored]);
  if (r.code !== 0) throw new Error(`snapshot restore: ${r.err}`);
  const [client, peer] = await freePorts(2);
  const proc = spawn(etcdBin, ['--data-dir', restored,
    '--listen-client-urls', `http://127.0.0.1:${client}`,
    '--advertise-client-urls', `http://127.0.0.1:${client}`,
    '--listen-peer-urls', `http://127.0.0.1:${peer}`], { stdio: 'ignore' });
  const s = side('etcd', `http://127.0.0.1:${client}`);
  await until(async () => (await s.run(['endpoint', 'health'])).code === 0,
    'etcd restored from the snapshot');
  return { proc, side: s };
}

async function killed(proc: ChildProcess | undefined): Promise<void> {
  if (proc === undefined || proc.exitCode !== null) return;
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  proc.kill('SIGKILL');
  await exited;
}

serial('grpc etcdctl: snapshot save and status read MyEtcd\'s snapshot, and a real etcd ' +
  'restored from it serves its keys and leases', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'myetcd-grpc-snap-'));
  let etcdProc: ChildProcess | undefined;
  try {
    const [a] = await both(['put', 'snap/last', 'v', '-w', 'json']);
    const rev = Number(/"revision":(\d+)/.exec(a.out.toString())![1]!);
    const file = (s: Side) => join(dir, `${s.name}.db`);
    const saved = await Promise.all([ref, mine].map((s) => s.run(['snapshot', 'save', file(s)])));
    for (const [i, s] of [ref, mine].entries()) {
      t.is(saved[i]!.code, 0, saved[i]!.err);
      t.is(saved[i]!.out.toString(), `Snapshot saved at ${file(s)}\n`);
    }
    const st = await runCtl(etcdctlBin, ['snapshot', 'status', file(mine), '-w', 'json']);
    t.is(st.code, 0, st.err);
    const status = JSON.parse(st.out.toString()) as { revision: number; totalKey: number };
    // The newest live key's revision (snap/last); every live key, lease, member and meta row.
    t.is(status.revision, rev);
    const live = await mine.run(['get', '', '--prefix', '--keys-only', '-w', 'json']);
    const count = Number(/"count":(\d+)/.exec(live.out.toString())![1]!);
    t.true(status.totalKey >= count + 3, `${status.totalKey} keys for ${count} live keys`);
    // etcd restores it and serves it.
    const restored = await servedByEtcd(file(mine), dir);
    etcdProc = restored.proc;
    const [fromMine, fromRestored] = await Promise.all([mine, restored.side].map((s) =>
      s.run(['get', '', '--prefix'])));
    t.is(fromRestored!.out.toString(), fromMine!.out.toString());
  } finally {
    await killed(etcdProc);
    await rm(dir, { recursive: true, force: true });
  }
});

serial('grpc etcdctl: a snapshot of more keys than one read page and one bbolt leaf, written ' +
  'against key order and by multi-put txns, restores in etcd with every key\'s revisions',
async (t) => {
  // 12,000 keys (allKvsPageKeys is 10,000; a bbolt leaf holds 1,024), written from the last
  // key down, 100 to a txn (so each txn's keys share a main revision, told apart by sub
  // revisions), then some rewritten and deleted; keys here only, on MyEtcd's side.
  const name = (i: number) => `bulk/${String(i).padStart(5, '0')}`;
  const keys = 12_000;
  for (let hi = keys; hi > 0; hi -= 100) {
    const success = [];
    for (let i = hi - 1; i >= hi - 100; i--) {
      success.push({ request_put: { key: b64(name(i)), value: b64(`v${i}`.repeat(20)) } });
    }
    t.is((await post(`${server!.url}/v3/kv/txn`, { success })).status, 200);
  }
  for (const i of [0, 5_000, 11_999]) t.is((await mine.run(['put', name(i), 'again'])).code, 0);
  t.is((await mine.run(['del', name(7)])).code, 0);
  const dir = await mkdtemp(join(tmpdir(), 'myetcd-grpc-snap-bulk-'));
  let etcdProc: ChildProcess | undefined;
  try {
    const file = join(dir, 'bulk.db');
    const saved = await mine.run(['snapshot', 'save', file]);
    t.is(saved.code, 0, saved.err);
    const restored = await servedByEtcd(file, dir);
    etcdProc = restored.proc;
    const kvsOf = async (s: Side): Promise<unknown[]> => {
      const r = await s.run(['get', 'bulk/', '--prefix', '-w', 'json']);
      t.is(r.code, 0, r.err);
      return (JSON.parse(r.out.toString()) as { kvs: unknown[] }).kvs;
    };
    const [fromMine, fromRestored] = await Promise.all([mine, restored.side].map(kvsOf));
    t.is(fromMine!.length, keys - 1);
    t.deepEqual(fromRestored, fromMine);
  } finally {
    await killed(etcdProc);
    await rm(dir, { recursive: true, force: true });
  }
});
