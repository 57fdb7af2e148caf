import test, { type ExecutionContext } from 'ava';
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePorts } from './helpers/cluster.js';
import { kernelThpMode } from '../src/server/huge-pages.js';

// The tests run one at a time: each starts whole members, and the machine has two cores.
// Safe to run (issue 9): one member per data directory and per port, clean signals from the
// documented start commands, every start-up failure one line with nothing created. Every
// test runs real processes on real ports (port 0 or a port the test holds) in temp dirs, and
// kills whatever it started on every path (t.teardown).

const root = path.resolve(import.meta.dirname, '..', '..');
const mainJs = path.join(root, 'dist', 'src', 'main.js');
const binJs = path.join(root, 'bin', 'myetcd.js');
const healthJs = path.join(root, 'dist', 'src', 'server', 'healthcheck.js');

function tmpDir(t: ExecutionContext): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'myetcd-safety-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Proc is a started process with its output lines and exit. */
interface Proc {
  proc: ChildProcess;
  lines: string[];
  exited: Promise<number | null>;
  /** line resolves with the first output line matching, or rejects when the process exits. */
  line(re: RegExp): Promise<string>;
}

function run(t: ExecutionContext, cmd: string, args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Proc {
  const proc = spawn(cmd, args, {
    cwd: opts.cwd ?? root, stdio: ['ignore', 'pipe', 'pipe'],
    env: opts.env ?? process.env,
  });
  const lines: string[] = [];
  const waiters: Array<{ re: RegExp; resolve: (l: string) => void }> = [];
  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((resolve) => {
    proc.once('exit', (code, signal) => {
      exitCode = code ?? (signal === null ? null : 128);
      resolve(exitCode);
    });
  });
  t.teardown(() => {
    if (exitCode === undefined) proc.kill('SIGKILL');
    return exited.then(() => undefined);
  });
  const feed = (stream: NodeJS.ReadableStream) => {
    let buf = '';
    stream.setEncoding('utf8');
    stream.on('data', (d: string) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const l = buf.slice(0, i);
        buf = buf.slice(i + 1);
        lines.push(l);
        for (const w of waiters.filter((x) => x.re.test(l))) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(l);
        }
      }
    });
  };
  feed(proc.stdout!);
  feed(proc.stderr!);
  const line = (re: RegExp) => new Promise<string>((resolve, reject) => {
    const seen = lines.find((l) => re.test(l));
    if (seen !== undefined) return resolve(seen);
    waiters.push({ re, resolve });
    void exited.then((code) => reject(new Error(
      `exited with ${code} before a line matching ${re}:\n${lines.join('\n')}`)));
  });
  return { proc, lines, exited, line };
}

function member(t: ExecutionContext, dataDir: string, args: string[] = []): Proc {
  return run(t, process.execPath, [mainJs, '--data-dir', dataDir,
    '--listen-client-urls', 'http://127.0.0.1:0', '--storage-shards', '1', ...args]);
}

/** ready waits for the "ready to serve" line and returns the URL and the server's pid. */
async function ready(p: Proc): Promise<{ url: string; pid: number }> {
  const j = JSON.parse(await p.line(/ready to serve client requests/)) as
    { url: string; pid: number };
  return { url: j.url, pid: j.pid };
}

/** errorLines are the lines a failed start printed (all of them; it must print one). */
async function failure(p: Proc): Promise<{ code: number | null; lines: string[] }> {
  const code = await p.exited;
  return { code, lines: p.lines.filter((l) => l.trim() !== '') };
}

async function put(url: string, key: string, value: string): Promise<number> {
  const r = await fetch(`${url}/v3/kv/put`, {
    method: 'POST',
    body: JSON.stringify({ key: Buffer.from(key).toString('base64'),
      value: Buffer.from(value).toString('base64') }),
  });
  return r.status;
}

async function get(url: string, key: string): Promise<string | undefined> {
  const r = await fetch(`${url}/v3/kv/range`, {
    method: 'POST', body: JSON.stringify({ key: Buffer.from(key).toString('base64') }),
  });
  const j = await r.json() as { kvs?: Array<{ value?: string }> };
  const v = j.kvs?.[0]?.value;
  return v === undefined ? undefined : Buffer.from(v, 'base64').toString('utf8');
}

/** holdPort listens on a free loopback port (as a foreign program would) until teardown; it
 * drops every connection. */
async function holdPort(t: ExecutionContext): Promise<number> {
  const server = net.createServer((socket) => socket.destroy());
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return (server.address() as net.AddressInfo).port;
}

/** freePort finds a port that is free now (for a member that must be told a fixed port). */
async function freePort(): Promise<number> {
  return (await freePorts(1))[0]!;
}

// ---- 1. One member per data directory ----

test.serial('safety: two members racing for one data directory never both serve', async (t) => {
  const dir = tmpDir(t);
  for (let round = 0; round < 3; round++) {
    const data = path.join(dir, `race-${round}`);
    const a = member(t, data);
    const b = member(t, data);
    // Each either becomes ready or exits; exactly one may become ready.
    const outcome = (p: Proc) => Promise.race([
      ready(p).then((r) => ({ ready: r } as const)),
      p.exited.then((code) => ({ exited: code } as const)),
    ]);
    const [oa, ob] = await Promise.all([outcome(a), outcome(b)]);
    const winners = [oa, ob].filter((o) => 'ready' in o);
    t.is(winners.length, 1, `round ${round}: ${JSON.stringify([oa, ob])}`);
    const [winner, loser] = 'ready' in oa ? [a, b] : [b, a];
    const lost = await failure(loser);
    t.is(lost.code, 1);
    t.is(lost.lines.length, 1, lost.lines.join('\n'));
    const pid = (JSON.parse(winner.lines.find((l) => l.includes('ready to serve'))!) as
      { pid: number }).pid;
    t.is(lost.lines[0], `myetcd: --data-dir ${data}: locked by another member (pid ${pid}, ` +
      '--name default); a data directory serves one member at a time');
    winner.proc.kill('SIGTERM');
    t.is(await winner.exited, 0);
  }
});

test.serial('safety: a member killed with SIGKILL leaves no false lock: the next start ' +
  'serves its data', async (t) => {
  const data = path.join(tmpDir(t), 'data');
  const a = member(t, data);
  const { url } = await ready(a);
  t.is(await put(url, 'k', 'before the kill'), 200);
  a.proc.kill('SIGKILL');
  await a.exited;
  t.true(fs.existsSync(path.join(data, 'myetcd.lock')), 'the dead holder\'s socket file remains');
  const b = member(t, data);
  const { url: url2 } = await ready(b);
  t.is(await get(url2, 'k'), 'before the kill');
  b.proc.kill('SIGTERM');
  t.is(await b.exited, 0);
  t.false(fs.existsSync(path.join(data, 'myetcd.lock')), 'a clean stop removes the lock');
});

// ---- 2. One member per port ----

test.serial('safety: a client URL held by another member is refused, naming the URL, ' +
  'before the data directory is created', async (t) => {
  const dir = tmpDir(t);
  const a = member(t, path.join(dir, 'a'));
  const { url } = await ready(a);
  const bData = path.join(dir, 'b');
  const b = run(t, process.execPath, [mainJs, '--data-dir', bData,
    '--listen-client-urls', url, '--storage-shards', '1']);
  const f = await failure(b);
  t.is(f.code, 1);
  t.deepEqual(f.lines, [`myetcd: --listen-client-urls ${url}: cannot listen: address already ` +
    'in use (EADDRINUSE); another member or program listens there']);
  t.false(fs.existsSync(bData));
  // The first member still answers alone.
  t.is(await put(url, 'k', 'v'), 200);
});

test.serial('safety: a client URL held by another program is refused the same way', async (t) => {
  const port = await holdPort(t);
  const data = path.join(tmpDir(t), 'data');
  const url = `http://127.0.0.1:${port}`;
  const p = run(t, process.execPath, [mainJs, '--data-dir', data, '--listen-client-urls', url]);
  const f = await failure(p);
  t.is(f.code, 1);
  t.deepEqual(f.lines, [`myetcd: --listen-client-urls ${url}: cannot listen: address already ` +
    'in use (EADDRINUSE); another member or program listens there']);
  t.false(fs.existsSync(data));
});

// ---- 3. Signals to the pid the documented commands start ----

async function stopsOn(t: ExecutionContext, p: Proc, data: string, signal: NodeJS.Signals):
  Promise<void> {
  const { url } = await ready(p);
  t.is(await put(url, 'k', 'v'), 200);
  p.proc.kill(signal);
  await p.line(/"msg":"stopped"/);
  const code = await p.exited;
  t.true(code === 0 || code === 128 + (signal === 'SIGINT' ? 2 : 15), `exit ${code}`);
  // Nothing serves any more: the port refuses connections and the directory is unlocked.
  await t.throwsAsync(fetch(`${url}/health`));
  t.false(fs.existsSync(path.join(data, 'myetcd.lock')));
}

test.serial('safety: SIGTERM to `npm start` stops the member (started with its malloc ' +
  'tunables, no huge pages)', async (t) => {
  const data = path.join(tmpDir(t), 'data');
  const env = { ...process.env };
  delete env['GLIBC_TUNABLES'];
  const p = run(t, 'npm', ['start', '--silent', '--', '--data-dir', data,
    '--listen-client-urls', 'http://127.0.0.1:0', '--storage-shards', '1'], { env });
  // `npm start` sets GLIBC_TUNABLES (src/server/huge-pages.ts), without huge pages; the
  // member says what it got.
  const started = JSON.parse(await p.line(/"msg":"starting myetcd"/)) as
    { mallocHugePages: string };
  const mode = kernelThpMode();
  if (mode === 'always' || mode === 'madvise') t.is(started.mallocHugePages, 'off');
  else t.regex(started.mallocHugePages, /^unavailable/);
  await stopsOn(t, p, data, 'SIGTERM');
});

test.serial('safety: SIGINT to `npm start` stops the member', async (t) => {
  const data = path.join(tmpDir(t), 'data');
  const p = run(t, 'npm', ['start', '--silent', '--', '--data-dir', data,
    '--listen-client-urls', 'http://127.0.0.1:0', '--storage-shards', '1']);
  await stopsOn(t, p, data, 'SIGINT');
});

test.serial('safety: SIGTERM to the myetcd bin stops the member', async (t) => {
  const data = path.join(tmpDir(t), 'data');
  const p = run(t, process.execPath, [binJs, '--data-dir', data,
    '--listen-client-urls', 'http://127.0.0.1:0', '--storage-shards', '1']);
  await stopsOn(t, p, data, 'SIGTERM');
});

// ---- 4. Start-up failures: one line, the setting and the path, nothing created ----

const startFailures: Array<{ name: string; args: (dir: string) => string[]; line: RegExp }> = [
  {
    name: '--data-dir pointing at a file',
    args: (dir) => {
      fs.writeFileSync(path.join(dir, 'file'), '');
      return ['--data-dir', path.join(dir, 'file')];
    },
    line: /^myetcd: --data-dir \S+\/file: exists and is not a directory$/,
  },
  {
    name: '--data-dir below a file',
    args: (dir) => {
      fs.writeFileSync(path.join(dir, 'file'), '');
      return ['--data-dir', path.join(dir, 'file', 'data')];
    },
    line: /^myetcd: --data-dir \S+\/file\/data: a path component is not a directory \(ENOTDIR\)$/,
  },
  {
    name: '--data-dir that cannot be created',
    args: () => ['--data-dir', '/proc/myetcd-data'],
    line: /^myetcd: --data-dir \/proc\/myetcd-data: cannot be created: /,
  },
  {
    name: '--log-outputs in /proc',
    args: (dir) => ['--data-dir', path.join(dir, 'data'), '--log-outputs', '/proc/x.log'],
    line: /^myetcd: --log-outputs \/proc\/x\.log: cannot open: /,
  },
  {
    name: '--log-outputs in a missing directory',
    args: (dir) => ['--data-dir', path.join(dir, 'data'),
      '--log-outputs', path.join(dir, 'missing', 'x.log')],
    line: /^myetcd: --log-outputs \S+\/missing\/x\.log: its directory \S+\/missing: no such file/,
  },
  {
    name: '--log-outputs naming a directory',
    args: (dir) => ['--data-dir', path.join(dir, 'data'), '--log-outputs', dir],
    line: /^myetcd: --log-outputs \S+: exists and is not a regular file$/,
  },
];

for (const c of startFailures) {
  test.serial(`safety: a start with ${c.name} prints one line and creates nothing`, async (t) => {
    const dir = tmpDir(t);
    const args = c.args(dir);
    const before = fs.readdirSync(dir).sort();
    const p = run(t, process.execPath, [mainJs, '--listen-client-urls', 'http://127.0.0.1:0',
      ...args]);
    const f = await failure(p);
    t.is(f.code, 1);
    t.is(f.lines.length, 1, f.lines.join('\n'));
    t.regex(f.lines[0]!, c.line);
    t.deepEqual(fs.readdirSync(dir).sort(), before, 'nothing was created');
    t.false(fs.existsSync('/proc/myetcd-data'));
  });
}

// ---- 6. Versions ----

test.serial('safety: --version prints the server and API versions as etcd --version does',
  async (t) => {
  const p = run(t, process.execPath, [mainJs, '--version']);
  t.is(await p.exited, 0);
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as
    { version: string };
  t.deepEqual(p.lines, [
    `myetcd Version: ${pkg.version}`,
    'etcd API Version: 3.4.23',
    'Git SHA: Not provided (an npm package records none)',
    `Node Version: ${process.version}`,
    `Node OS/Arch: ${process.platform}/${process.arch}`,
  ]);
});

test.serial('safety: /version, the version metrics and the start-up log agree', async (t) => {
  const data = path.join(tmpDir(t), 'data');
  const p = member(t, data);
  const { url } = await ready(p);
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as
    { version: string };
  t.deepEqual(await (await fetch(`${url}/version`)).json(),
    { etcdserver: '3.4.23', etcdcluster: '3.4.0' });
  const metrics = await (await fetch(`${url}/metrics`)).text();
  t.true(metrics.includes('\netcd_server_version{server_version="3.4.23"} 1\n'));
  t.true(metrics.includes('\netcd_cluster_version{cluster_version="3.4"} 1\n'));
  t.true(metrics.includes(`\nmyetcd_build_info{version="${pkg.version}",api_version="3.4.23",` +
    `node_version="${process.version}"} 1\n`));
  const start = JSON.parse(await p.line(/"msg":"starting myetcd"/)) as Record<string, unknown>;
  t.is(start['version'], pkg.version);
  t.is(start['apiVersion'], '3.4.23');
  // Raft's line names the member by --name (member) and by id (id), under two keys.
  const raft = JSON.parse(await p.line(/"msg":"starting a new member"/)) as
    Record<string, unknown>;
  t.is(raft['member'], 'default');
  const id = /etcd_server_id\{server_id="([0-9a-f]+)"\} 1/.exec(metrics)?.[1];
  t.is(raft['id'], id);
});

// ---- 8. Metrics a live member reports ----

test.serial('safety: a live member\'s WAL, client-traffic and snapshot metrics follow its ' +
  'writes', async (t) => {
  const p = member(t, path.join(tmpDir(t), 'data'), ['--snapshot-count', '5']);
  const { url } = await ready(p);
  const scrape = async (): Promise<Map<string, number>> => {
    const text = await (await fetch(`${url}/metrics`)).text();
    return new Map(text.split('\n').filter((l) => l.startsWith('etcd_'))
      .map((l) => [l.slice(0, l.lastIndexOf(' ')), Number(l.slice(l.lastIndexOf(' ') + 1))]));
  };
  const before = await scrape();
  for (let i = 0; i < 12; i++) t.is(await put(url, `k${i}`, 'v'), 200);
  await p.line(/"msg":"saved snapshot"/); // after 5 applied entries
  const after = await scrape();
  const grew = (name: string) => (after.get(name) ?? 0) > (before.get(name) ?? 0);
  t.true(grew('etcd_disk_wal_write_bytes_total'));
  t.true(grew('etcd_network_client_grpc_received_bytes_total'));
  t.true(grew('etcd_network_client_grpc_sent_bytes_total'));
  t.true(grew('etcd_debugging_snap_save_total_duration_seconds_count'));
  t.true(grew('etcd_snap_fsync_duration_seconds_count'));
  t.is(after.get('etcd_mvcc_db_total_size_in_use_in_bytes'),
    after.get('etcd_mvcc_db_total_size_in_bytes'));
  t.true((after.get('etcd_mvcc_db_total_size_in_bytes') ?? 0) > 0);
  p.proc.kill('SIGTERM');
  t.is(await p.exited, 0);
});

// ---- 7. Log files: prompt exit, every line written ----

test.serial('safety: a member with a file output writes the configured file and exits when stopped',
  async (t) => {
    const dir = tmpDir(t);
    const log = path.join(dir, 'myetcd.log');
    const p = member(t, path.join(dir, 'data'), ['--log-outputs', `${log},stderr`,
      '--log-rotation-interval', '1s']);
    await ready(p);
    p.proc.kill('SIGTERM');
    t.is(await p.exited, 0);
    // A start may take longer than the interval: read the backups (oldest first), then the
    // configured file, which is the active one.
    const files = fs.readdirSync(dir).filter((n) => /^myetcd-.*\.log$/.test(n)).sort()
      .map((n) => path.join(dir, n));
    const msgs = [...files, log].flatMap((f) => fs.readFileSync(f, 'utf8').split('\n'))
      .filter((l) => l !== '').map((l) => (JSON.parse(l) as { msg: string }).msg);
    t.true(msgs.includes('starting myetcd'));
    t.is(msgs[msgs.length - 1], 'stopped');
  });

// ---- 9. The container's health check ----

test.serial('safety: the health check dials the member\'s configured client URL', async (t) => {
  const dir = tmpDir(t);
  const port = await freePort();
  const env = { ...process.env, MYETCD_LISTEN_CLIENT_URLS: `http://127.0.0.1:${port}` };
  const p = run(t, process.execPath, [mainJs, '--data-dir', path.join(dir, 'data'),
    '--storage-shards', '1'], { env });
  await ready(p);
  const ok = run(t, process.execPath, [healthJs, String(p.proc.pid)]);
  t.is(await ok.exited, 0, ok.lines.join('\n'));
  // A process configured with a port where no member answers is reported unhealthy, and the
  // check names the URL it derived from that process's flags.
  const held = await holdPort(t);
  const other = run(t, process.execPath, ['-e', 'setInterval(() => {}, 1000)', mainJs,
    '--listen-client-urls', `http://0.0.0.0:${held}`]);
  const bad = run(t, process.execPath, [healthJs, String(other.proc.pid)]);
  t.is(await bad.exited, 1, bad.lines.join('\n'));
  t.regex(bad.lines.join('\n'), new RegExp(`http://127\\.0\\.0\\.1:${held}/health`));
  other.proc.kill('SIGKILL');
  p.proc.kill('SIGTERM');
  t.is(await p.exited, 0);
});
