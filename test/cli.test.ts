import test from 'ava';
import { execFile } from 'node:child_process';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { run } from '../src/cli/main.js';
import { startServer, type TestServer } from './helpers/server.js';

/** myetcdctl against our server (or CLIENT_TEST_ENDPOINT, e.g. a real etcd). */

let server: TestServer | undefined;
let endpoint = process.env.CLIENT_TEST_ENDPOINT ?? '';

test.before(async () => {
  if (endpoint === '') {
    server = await startServer();
    endpoint = server.url;
  }
});

test.after.always(async () => {
  await server?.shutdown();
});

async function ctl(args: string[], stdin = ''):
  Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await run(['--endpoints', endpoint, ...args], {}, {
    out: (s) => { out += s; }, err: (s) => { err += s; }, stdin: Readable.from([stdin]),
  });
  return { code, out, err };
}

let n = 0;
const k = (s: string) => `cli-test/${process.pid}/${++n}/${s}`;

test('cli: put, get and del print as etcdctl does', async (t) => {
  const key = k('a');
  t.deepEqual(await ctl(['put', key, 'v1']), { code: 0, out: 'OK\n', err: '' });
  t.is((await ctl(['put', key, 'v2', '--prev-kv'])).out, `OK\n${key}\nv1\n`);
  await ctl(['put', key + 'b', 'w']);
  t.is((await ctl(['get', key, '--prefix'])).out, `${key}\nv2\n${key}b\nw\n`);
  t.is((await ctl(['get', key, '--prefix', '--keys-only'])).out, `${key}\n\n${key}b\n\n`);
  t.is((await ctl(['get', key, '--print-value-only'])).out, 'v2\n');
  t.is((await ctl(['get', key, '--prefix', '--limit=1'])).out, `${key}\nv2\n`);
  t.is((await ctl(['del', key + 'b', '--prev-kv'])).out, `1\n${key}b\nw\n`);
  t.is((await ctl(['del', key + 'zz'])).out, '0\n');
});

test('cli: -w json writes Go-style JSON with numeric int64s and base64 bytes', async (t) => {
  const key = k('j');
  await ctl(['put', key, 'x']);
  const { out } = await ctl(['get', key, '-w', 'json']);
  t.regex(out,
    /^\{"header":\{"cluster_id":\d+,"member_id":\d+,"revision":\d+,"raft_term":\d+\},"kvs":\[/);
  t.true(out.includes(`"key":"${Buffer.from(key).toString('base64')}"`));
  t.true(out.includes('"value":"eA=="'));
  t.true(out.endsWith('"count":1}\n'));
});

test('cli: txn reads compares, success and failure requests from stdin', async (t) => {
  const key = k('t');
  await ctl(['put', key, '5']);
  const input = `value("${key}") = "5"\n\nput ${key} 6\nget ${key}\n\nput ${key} 7\n\n`;
  t.deepEqual(await ctl(['txn'], input), { code: 0, out: `SUCCESS\n\nOK\n\n${key}\n6\n`, err: '' });
  const again = await ctl(['txn'], input);
  t.is(again.out, 'FAILURE\n\nOK\n');
  const bad = await ctl(['txn'], 'bogus\n\n\n\n');
  t.is(bad.code, 3);
  t.is(bad.err, 'Error: malformed comparison: bogus\n');
});

test('cli: errors go to stderr with etcdctl\'s exit codes', async (t) => {
  const future = await ctl(['get', 'x', '--rev', '999999999']);
  t.is(future.code, 1);
  t.is(future.err, 'Error: etcdserver: mvcc: required revision is a future revision\n');
  const usage = await ctl(['get']);
  t.is(usage.code, 128);
  t.regex(usage.err, /get command needs one argument/);
  t.is((await ctl(['nope'])).code, 1);
});

test('cli: endpoint health and status', async (t) => {
  const h = await ctl(['endpoint', 'health']);
  t.is(h.code, 0);
  // etcdctl writes the health lines to stderr.
  t.is(h.out, '');
  t.regex(h.err, /is healthy: successfully committed proposal: took = [\d.]+(ms|µs|s)\n$/);
  const s = await ctl(['endpoint', 'status']);
  t.is(s.code, 0);
  // endpoint, id, version, db size, is leader, is learner, raft term, index, applied index, errors
  t.regex(s.out, new RegExp('^http://127\\.0\\.0\\.1:\\d+, [0-9a-f]{1,16}, 3\\.4\\.\\d+, ' +
    '\\d+(\\.\\d)? [kMG]?B, (true|false), false, \\d+, \\d+, \\d+, \\n$'));
});

test('cli: bin/myetcdctl.js runs as a process', async (t) => {
  const bin = new URL('../../bin/myetcdctl.js', import.meta.url).pathname;
  const { stdout } = await promisify(execFile)(process.execPath,
    [bin, '--endpoints', endpoint, 'put', k('bin'), 'v']);
  t.is(stdout, 'OK\n');
  const e = await t.throwsAsync(promisify(execFile)(process.execPath, [bin, 'get']));
  t.is((e as unknown as { code: number }).code, 128);
});
