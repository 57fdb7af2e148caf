import test from 'ava';
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startServer, type TestServer } from './helpers/server.js';

/**
 * Every program in examples/ runs against one real server, as a learner would run it
 * (`node dist/examples/x.js <endpoint>`), and must exit 0 and print what it is about. So the
 * examples are checked by CI and cannot rot.
 */

const dir = fileURLToPath(new URL('../examples/', import.meta.url));
let server: TestServer;

test.before(async () => {
  server = await startServer();
});

test.after.always(async () => {
  await server?.shutdown();
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(name: string, args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [dir + name + '.js', ...args], {
      timeout: name === 'cluster' || name === 'secure' ? 120_000 : 60_000,
      env: { ...process.env, ...env },
    }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : null;
      resolve({ code, stdout, stderr });
    });
  });
}

/** check runs an example and asserts exit 0 and that each pattern is in its output. */
async function check(t: import('ava').ExecutionContext, name: string, args: string[],
  patterns: RegExp[], env: Record<string, string> = {}): Promise<string> {
  const r = await run(name, args, env);
  t.is(r.code, 0, `${name} failed:\n${r.stdout}\n${r.stderr}`);
  for (const p of patterns) t.regex(r.stdout, p, `${name}: no ${p} in:\n${r.stdout}`);
  return r.stdout;
}

test('every example in examples/ has a test here', (t) => {
  const names = readdirSync(dir).filter((f) => f.endsWith('.js')).map((f) => f.slice(0, -3));
  t.deepEqual(names.sort(), ['batch', 'client', 'cluster', 'config', 'lease', 'logger',
    'metrics', 'secure', 'txn', 'watch']);
});

test('secure.ts: its own member with client certificates; auth limits a user', async (t) => {
  await check(t, 'secure', [], [
    /^member serves https:\/\/127\.0\.0\.1:\d+ and wants a client certificate/m,
    /^without a client certificate: refused/m,
    /^svc put app\/config = v1$/m,
    /^svc put other\/key: etcdserver: permission denied$/m,
    /^certificate CN app, no token: etcdserver: permission denied$/m,
  ]);
});

test('cluster.ts: three members of its own; a write survives the leader\'s kill -9', async (t) => {
  await check(t, 'cluster', [], [
    /^started ex1, ex2, ex3 on /m,
    /^get through ex3: hello$/m,
    /^killed the leader ex\d \(SIGKILL\)$/m,
    /^a write succeeded again after \d+ ms, at revision \d+$/m,
    /^get through survivor 2: hello again$/m,
  ]);
});

test('client.ts: put, get, history, range and delete (endpoint from argv)', async (t) => {
  await check(t, 'client', [server.url], [
    /^put examples\/client\/\d+\/greeting=hello at revision \d+$/m,
    /= hello again \(version 2, created at \d+, modified at \d+\)/,
    /^get at revision \d+ = hello$/m,
    /-> 3 keys:/,
    /deleted 1 \(was circle\)/,
    /-> 0 keys left/,
  ]);
});

test('client.ts: the endpoint from ENDPOINT', async (t) => {
  await check(t, 'client', [], [/-> 0 keys left/], { ENDPOINT: server.url });
});

test('txn.ts: compare-and-swap takes the lock once', async (t) => {
  await check(t, 'txn', [server.url], [
    /worker-a: compare held, lock taken/,
    /worker-b: compare failed, lock is held by worker-a/,
    /swap counter 2 -> 3: swapped/,
    /stale swap \(expects 0\): refused; counter is 3/,
  ]);
});

test('batch.ts: one revision for every write; a duplicate is refused', async (t) => {
  const out = await check(t, 'batch', [server.url], [
    /batch applied 3 operations at revision (\d+)/,
    /refused batch: DUPLICATE_KEY \(HTTP 400\)/,
    /db\/host is still 10\.0\.0\.1/,
  ]);
  const rev = /at revision (\d+)/.exec(out)![1];
  t.regex(out, new RegExp(`db/port = 5432 \\(modRevision ${rev}\\)`));
});

test('watch.ts: prints the prefix events in order, not the other key', async (t) => {
  const out = await check(t, 'watch', [server.url], [
    /^watching examples\/watch\/\d+\/\* from revision \d+$/m,
    /^watch closed$/m,
  ]);
  const events = out.split('\n').filter((l) => l.startsWith('event '))
    .map((l) => l.replace(/examples\/watch\/\d+\//, '').replace(/ at revision \d+/, ''));
  t.deepEqual(events, [
    'event PUT a = 1', 'event PUT a = 2 (was 1)', 'event PUT b = 3',
    'event DELETE a (was 2)', 'event DELETE b (was 3)',
  ]);
});

test('lease.ts: kept alive past its TTL, gone after revoke and after expiry', async (t) => {
  await check(t, 'lease', [server.url], [
    /keep-alive: lease \d+ renewed, TTL 2s/,
    /after 3s: .*service = up \(kept alive\)/,
    /^revoked: .*service = \(gone\)$/m,
    /^expired: .*service = \(gone\)$/m,
  ]);
});

test('metrics.ts: scrapes etcd metric names and sees the writes', async (t) => {
  await check(t, 'metrics', [server.url], [
    /^ {2}etcd_server_has_leader 1$/m,
    /^ {2}etcd_server_proposals_committed_total \d+$/m,
    /^ {2}etcd_disk_wal_fsync_duration_seconds_count \d+$/m,
    /etcd_mvcc_put_total \+([5-9]|\d\d+) /,
    /mean WAL fsync: [\d.]+ ms/,
  ]);
});

test('config.ts: flags beat environment beat file beat defaults', async (t) => {
  await check(t, 'config', ['--snapshot-count', '42'], [
    /name += from-flag/,
    /logLevel += debug/,
    /heartbeatInterval += 50/,
    /snapshotCount += 42/,
    /rejected --no-such-flag 1: unknown flag/,
  ]);
});

test('logger.ts: JSON lines with the component of each child logger', async (t) => {
  const out = await check(t, 'logger', [], [/root logger ready/]);
  const lines = out.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  // Sorted: closeLogger's synchronous flush can overtake a line still being written
  // asynchronously (sonic-boom's flushSync), so the order on a pipe is not guaranteed.
  const seen = lines.map((l) => [l['level'], l['component'], l['msg']]);
  const order = (x: unknown[]) => JSON.stringify(x);
  t.deepEqual(seen.sort((a, b) => order(a).localeCompare(order(b))), [
    ['error', 'gateway', 'request failed'],
    ['info', 'wal', 'segment opened'],
    ['info', undefined, 'root logger ready'],
    ['warn', 'gateway', 'slow request'],
  ]);
  const slow = lines.find((l) => l['msg'] === 'slow request')!;
  t.is(slow['requestId'], 'r-42');
  t.true(lines.every((l) => l['member'] === 'example' && typeof l['time'] === 'string'));
  const debug = await check(t, 'logger', ['debug'], [/fsync done/]);
  t.true(debug.includes('"component":"wal","records":12'));
});
