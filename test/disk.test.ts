import test, { type ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import {
  mkdtempSync, readdirSync, readFileSync, rmSync, statfsSync, unlinkSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import http from 'node:http';
import { join } from 'node:path';
import { b64, post, type TestServer, unb64, useServer } from './helpers/server.js';
import { metricValue } from './helpers/metrics.js';
import { until } from './helpers/wait.js';
import { decodeSegment } from '../src/wal/index.js';

/**
 * Full disks, read-only disks and failed fsyncs (docs/reliability.md): a write the disk
 * refuses is refused to its client with a clear error, reads go on, the member says why
 * (error text, alarm, /health), writes resume when the disk takes them again (space: once
 * the NOSPACE alarm is disarmed), and nothing acknowledged is lost across a kill -9.
 * The disk is made to fail by the failpoints on the real write path (GOFAIL_FAILPOINTS) and,
 * for a full disk, also by a real limit: RLIMIT_FSIZE on the running server (prlimit), which
 * makes the kernel refuse the WAL's growth with EFBIG.
 */

const noSpaceText = 'etcdserver: mvcc: database space exceeded';

/** health fetches /health: status and body. */
function health(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http.get(`${url}/health`, { agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        body += d;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject);
  });
}

/** metrics fetches /metrics as text. */
async function metrics(url: string): Promise<string> {
  const r = await fetch(`${url}/metrics`);
  return r.text();
}

/** Puts is a sequential writer that records what the server acknowledged. */
class Puts {
  readonly acked = new Map<string, string>();
  private n = 0;
  constructor(public srv: TestServer, private readonly prefix: string,
    private readonly valueBytes = 16) {}

  /** one puts the next key; returns the answer. */
  async one(): Promise<{ status: number; json: any; key: string }> {
    const key = `${this.prefix}/${String(this.n++).padStart(5, '0')}`;
    const value = `${key}=`.padEnd(this.valueBytes, 'x');
    const r = await post(`${this.srv.url}/v3/kv/put`, { key: b64(key), value: b64(value) });
    if (r.status === 200) this.acked.set(key, value);
    return { ...r, key };
  }

  /** untilRefused puts until one is refused (at most `max`) and returns the refusal. */
  async untilRefused(max: number): Promise<{ status: number; json: any; key: string }> {
    for (let i = 0; i < max; i++) {
      const r = await this.one();
      if (r.status !== 200) return r;
    }
    throw new Error(`${max} puts, none refused`);
  }
}

/** readAll reads every key under prefix/ (linearizable). */
async function readAll(url: string, prefix: string): Promise<Map<string, string>> {
  const r = await post(`${url}/v3/kv/range`,
    { key: b64(`${prefix}/`), range_end: b64(`${prefix}0`) });
  if (r.status !== 200) throw new Error(`range: ${r.status} ${JSON.stringify(r.json)}`);
  return new Map((r.json.kvs ?? []).map((kv: { key: string; value: string }) =>
    [unb64(kv.key), unb64(kv.value)]));
}

/** assertAllAcked: every acknowledged write is there, with its value. */
async function assertAllAcked(t: ExecutionContext, url: string, prefix: string,
  acked: Map<string, string>): Promise<void> {
  const found = await readAll(url, prefix);
  const lost = [...acked].filter(([k, v]) => found.get(k) !== v);
  t.deepEqual(lost, [], `${lost.length} of ${acked.size} acknowledged writes lost`);
}

async function alarms(url: string): Promise<any[]> {
  const r = await post(`${url}/v3/maintenance/alarm`, { action: 'GET' });
  if (r.status !== 200) throw new Error(`alarm list: ${r.status} ${JSON.stringify(r.json)}`);
  return r.json.alarms ?? [];
}

/** restartAndCheck kills the server with SIGKILL, restarts it on its data dir without
 * failpoints, and checks that every acknowledged write is there and `refused` is not. */
async function restartAndCheck(t: ExecutionContext, srv: TestServer, prefix: string,
  puts: Puts, refused: string[]): Promise<void> {
  await srv.kill();
  const again = await useServer(t, { dataDir: srv.dataDir });
  await assertAllAcked(t, again.url, prefix, puts.acked);
  const found = await readAll(again.url, prefix);
  for (const k of refused) t.false(found.has(k), `the refused write ${k} is not there`);
}

test('disk full (failpoint ENOSPC): writes refused with NOSPACE, reads served, alarm, ' +
  'disarm resumes, nothing acknowledged lost', async (t) => {
  const srv = await useServer(t, {
    env: { GOFAIL_FAILPOINTS: 'walBeforeWrite=20*off->1*return("ENOSPC")->off' },
  });
  const puts = new Puts(srv, 'full');
  const refusal = await puts.untilRefused(100);
  t.is(refusal.status, 429);
  t.like(refusal.json, { error: noSpaceText, message: noSpaceText, code: 8 });
  // The failpoint failed one write; what follows is refused by the alarm, before the disk.
  const again = await puts.one();
  t.is(again.status, 429);
  t.is(again.json.error, noSpaceText);
  const del = await post(`${srv.url}/v3/kv/deleterange`, { key: b64('full/00000') });
  t.is(del.status, 429, 'a full disk takes no delete either');
  await assertAllAcked(t, srv.url, 'full', puts.acked);
  t.true(puts.acked.size > 0);
  const st = await post(`${srv.url}/v3/maintenance/status`, {});
  t.is(st.status, 200);
  const listed = await alarms(srv.url);
  t.is(listed.length, 1);
  t.is(listed[0].alarm, 'NOSPACE');
  t.is(listed[0].memberID, st.json.header.member_id);
  t.is((await health(srv.url)).status, 503);
  await until(() => srv.logs.some((l) => l.includes('ENOSPC')), 'a log line naming ENOSPC');
  const m = await metrics(srv.url);
  t.is(metricValue(m, 'myetcd_disk_fault{kind="space"}'), 1);
  t.is(metricValue(m, 'myetcd_server_alarms{alarm="NOSPACE"}'), 1);
  // Disarm: the member tries the disk again, and writes resume.
  const dis = await post(`${srv.url}/v3/maintenance/alarm`,
    { action: 'DEACTIVATE', memberID: listed[0].memberID, alarm: 'NOSPACE' });
  t.is(dis.status, 200);
  t.deepEqual(dis.json.alarms, listed);
  await until(async () => (await puts.one()).status === 200, 'a put after the disarm');
  t.deepEqual(await alarms(srv.url), []);
  await until(async () => (await health(srv.url)).status === 200, 'healthy again');
  t.is(metricValue(await metrics(srv.url), 'myetcd_disk_fault{kind="space"}'), 0);
  await restartAndCheck(t, srv, 'full', puts, [refusal.key, again.key]);
});

test('disk full (a real limit: RLIMIT_FSIZE on the running server): EFBIG refuses the ' +
  'write, reads go on, raising the limit and disarming resumes', async (t) => {
  const srv = await useServer(t);
  const puts = new Puts(srv, 'fsize', 1024);
  for (let i = 0; i < 5; i++) t.is((await puts.one()).status, 200);
  const walDir = join(srv.dataDir, 'member', 'wal');
  const tail = readdirSync(walDir).filter((f) => f.endsWith('.wal')).sort().at(-1)!;
  // The limit sits 32 KiB past the records, inside the space the WAL preallocated ahead of
  // them: a write at or beyond it is refused whatever the file's size.
  const recordsEnd = (file: Buffer): number =>
    decodeSegment(file, { name: tail, isLast: true, prevCrc: undefined }).validBytes;
  const limit = recordsEnd(readFileSync(join(walDir, tail))) + 32 * 1024;
  const pid = String(srv.proc.pid);
  execFileSync('prlimit', ['--pid', pid, `--fsize=${limit}:unlimited`]);
  const refusal = await puts.untilRefused(200);
  t.is(refusal.status, 429);
  t.is(refusal.json.error, noSpaceText);
  await until(() => srv.logs.some((l) => l.includes('EFBIG')), 'a log line naming EFBIG');
  const held = readFileSync(join(walDir, tail));
  t.true(recordsEnd(held) <= limit && held.subarray(limit).every((b) => b === 0),
    'the kernel held the records to the limit');
  await assertAllAcked(t, srv.url, 'fsize', puts.acked);
  const [raised] = await alarms(srv.url);
  t.is(raised?.alarm, 'NOSPACE');
  const disarm = { action: 'DEACTIVATE', memberID: raised.memberID, alarm: 'NOSPACE' };
  // Disarmed while the file is still at its limit: writes fill what little room is left
  // (a new term's hard state may fit), then the disk refuses again and NOSPACE is back.
  t.is((await post(`${srv.url}/v3/maintenance/alarm`, disarm)).status, 200);
  await until(async () => (await alarms(srv.url)).length === 1 ||
    (await puts.one()).status !== 200, 'a refusal once the room is used up');
  t.is((await puts.untilRefused(200)).json.error, noSpaceText);
  t.is((await alarms(srv.url))[0]?.alarm, 'NOSPACE');
  execFileSync('prlimit', ['--pid', pid, '--fsize=unlimited:unlimited']);
  const dis = await post(`${srv.url}/v3/maintenance/alarm`, disarm);
  t.is(dis.status, 200);
  await until(async () => (await puts.one()).status === 200, 'a put after the disarm');
  await restartAndCheck(t, srv, 'fsize', puts, [refusal.key]);
});

/** canMount: this process may mount a tmpfs (root here; CI decides for itself). */
const canMount = ((): boolean => {
  const dir = mkdtempSync(join(tmpdir(), 'myetcd-mount-probe-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir], { stdio: 'ignore' });
    execFileSync('umount', [dir], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
})();

(canMount ? test : test.skip)('disk full (a real 4 MiB tmpfs filled up, then space freed): ' +
  'ENOSPC refuses the write, reads go on, freeing and disarming resumes', async (t) => {
  const mnt = mkdtempSync(join(tmpdir(), 'myetcd-tmpfs-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mnt]);
  t.teardown(() => {
    // Lazy: the server may still hold files there while the teardowns run.
    execFileSync('umount', ['-l', mnt]);
    rmSync(mnt, { recursive: true, force: true });
  });
  const srv = await useServer(t, { dataDir: join(mnt, 'data') });
  const puts = new Puts(srv, 'tmpfs', 1024);
  for (let i = 0; i < 5; i++) t.is((await puts.one()).status, 200);
  // Fill the file system but for 48 KiB: some dozens of 1 KiB puts.
  const st = statfsSync(mnt);
  const filler = join(mnt, 'filler');
  writeFileSync(filler, Buffer.alloc(Math.max(0, st.bavail * st.bsize - 48 * 1024)));
  const refusal = await puts.untilRefused(500);
  t.is(refusal.status, 429);
  t.is(refusal.json.error, noSpaceText);
  await until(() => srv.logs.some((l) => l.includes('ENOSPC')), 'a log line naming ENOSPC');
  await assertAllAcked(t, srv.url, 'tmpfs', puts.acked);
  const [raised] = await alarms(srv.url);
  t.is(raised?.alarm, 'NOSPACE');
  unlinkSync(filler);
  const dis = await post(`${srv.url}/v3/maintenance/alarm`,
    { action: 'DEACTIVATE', memberID: raised.memberID, alarm: 'NOSPACE' });
  t.is(dis.status, 200);
  await until(async () => (await puts.one()).status === 200, 'a put once space is freed');
  await restartAndCheck(t, srv, 'tmpfs', puts, [refusal.key]);
});

test('disk full at start: the member starts, serves reads, refuses writes with NOSPACE',
  async (t) => {
    const first = await useServer(t);
    const puts = new Puts(first, 'startfull');
    for (let i = 0; i < 5; i++) t.is((await puts.one()).status, 200);
    await first.kill();
    // Every write fails: even the new term's hard state that a lone member writes to lead.
    const srv = await useServer(t, { dataDir: first.dataDir,
      env: { GOFAIL_FAILPOINTS: 'walBeforeWrite=return("ENOSPC")' } });
    await assertAllAcked(t, srv.url, 'startfull', puts.acked);
    puts.srv = srv;
    const r = await puts.one();
    t.is(r.status, 429);
    t.is(r.json.error, noSpaceText);
    t.is((await alarms(srv.url))[0]?.alarm, 'NOSPACE');
    await restartAndCheck(t, srv, 'startfull', puts, [r.key]);
  });

test('read-only disk (failpoint EROFS): writes refused saying why, reads served, writes ' +
  'resume on their own once the disk takes them', async (t) => {
  const srv = await useServer(t, {
    env: { GOFAIL_FAILPOINTS: 'walBeforeWrite=20*off->3*return("EROFS")->off' },
  });
  const puts = new Puts(srv, 'ro');
  const refusal = await puts.untilRefused(100);
  t.is(refusal.status, 503);
  t.regex(refusal.json.error, /read-only \(EROFS on write of the WAL\)/);
  t.is(refusal.json.code, 14);
  await assertAllAcked(t, srv.url, 'ro', puts.acked);
  t.deepEqual(await alarms(srv.url), [], 'a read-only disk is no NOSPACE');
  // The member probes the disk (two more failures, then the failpoint is off): writes resume.
  let resumed = 0;
  await until(async () => {
    const r = await puts.one();
    if (r.status === 200) resumed++;
    else t.regex(r.json.error, /read-only/);
    return resumed > 0;
  }, 'a put once the disk is writable', { intervalMs: 200 });
  await restartAndCheck(t, srv, 'ro', puts, [refusal.key]);
});

test('fsync error (failpoint EIO): never retried, writes refused until a restart, reads ' +
  'served, the restart recovers from the WAL', async (t) => {
  const srv = await useServer(t, {
    env: { GOFAIL_FAILPOINTS: 'walBeforeSync=20*off->1*return("EIO")->off' },
  });
  const puts = new Puts(srv, 'eio');
  const refusal = await puts.untilRefused(100);
  t.is(refusal.status, 503);
  t.regex(refusal.json.error, /disk write failed \(EIO on fsync of the WAL\)/);
  t.is(metricValue(await metrics(srv.url), 'myetcd_disk_fault{kind="io"}'), 1);
  // Refused from now on, though the failpoint is off again: a failed fsync is not retried.
  for (let i = 0; i < 3; i++) {
    const r = await puts.one();
    t.is(r.status, 503);
    t.regex(r.json.error, /disk write failed/);
  }
  const dis = await post(`${srv.url}/v3/maintenance/alarm`, { action: 'DEACTIVATE' });
  t.is(dis.status, 200);
  t.is((await puts.one()).status, 503, 'disarming changes nothing after an fsync error');
  await assertAllAcked(t, srv.url, 'eio', puts.acked);
  // The refused write's outcome is unknown (written, not known durable): not checked.
  await restartAndCheck(t, srv, 'eio', puts, []);
});

test('--quota-backend-bytes: past the quota NOSPACE refuses puts, deletes and reads go on, ' +
  'compaction then disarm resumes', async (t) => {
  const srv = await useServer(t, { args: ['--quota-backend-bytes', '20000'] });
  const puts = new Puts(srv, 'quota', 1024);
  const refusal = await puts.untilRefused(500);
  t.is(refusal.status, 429);
  t.is(refusal.json.error, noSpaceText);
  const listed = await alarms(srv.url);
  t.is(listed[0]?.alarm, 'NOSPACE');
  await assertAllAcked(t, srv.url, 'quota', puts.acked);
  // etcd's capped applier: a txn with a put is refused, a delete and a compaction are not.
  const txn = await post(`${srv.url}/v3/kv/txn`,
    { success: [{ request_put: { key: b64('quota/t'), value: b64('v') } }] });
  t.is(txn.status, 429);
  const del = await post(`${srv.url}/v3/kv/deleterange`,
    { key: b64('quota/'), range_end: b64('quota0') });
  t.is(del.status, 200);
  const comp = await post(`${srv.url}/v3/kv/compaction`, { revision: del.json.header.revision });
  t.is(comp.status, 200);
  const dis = await post(`${srv.url}/v3/maintenance/alarm`,
    { action: 'DEACTIVATE', memberID: listed[0].memberID, alarm: 'NOSPACE' });
  t.deepEqual(dis.json.alarms, listed);
  t.is((await puts.one()).status, 200);
});

test('alarm API: etcd\'s request and answer shapes, bad input answered 400', async (t) => {
  const srv = await useServer(t);
  const empty = await post(`${srv.url}/v3/maintenance/alarm`, {});
  t.is(empty.status, 200);
  t.deepEqual(Object.keys(empty.json), ['header']);
  const on = await post(`${srv.url}/v3/maintenance/alarm`,
    { action: 'ACTIVATE', memberID: '12', alarm: 'NOSPACE' });
  t.deepEqual(on.json.alarms, [{ memberID: '12', alarm: 'NOSPACE' }]);
  const twice = await post(`${srv.url}/v3/maintenance/alarm`,
    { action: 1, memberID: 12, alarm: 1 });
  t.is(twice.json.alarms, undefined, 'an active alarm is not raised twice');
  const refused = await post(`${srv.url}/v3/kv/put`, { key: b64('a'), value: b64('b') });
  t.is(refused.json.error, noSpaceText, 'an activated NOSPACE caps writes');
  const bad = await post(`${srv.url}/v3/maintenance/alarm`, { action: 'NUKE' });
  t.is(bad.status, 400);
  t.regex(bad.json.error, /unknown value "NUKE"/);
  const off = await post(`${srv.url}/v3/maintenance/alarm`,
    { action: 'DEACTIVATE', memberID: '12', alarm: 'NOSPACE' });
  t.deepEqual(off.json.alarms, [{ memberID: '12', alarm: 'NOSPACE' }]);
  t.is((await post(`${srv.url}/v3/kv/put`, { key: b64('a'), value: b64('b') })).status, 200);
});
