import test from 'ava';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { closeLogger, createLogger, LogOutputError, RotatingFile, type RotationTimers }
  from '../src/log/index.js';

// File output rotation, on a virtual clock: the test decides when time passes, so nothing
// here waits for a real interval.

function tmpDir(t: import('ava').ExecutionContext): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'myetcd-logrot-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** VirtualTimers runs timeouts when advance() moves the clock past them. */
class VirtualTimers implements RotationTimers {
  private t: number;
  private pending: Array<{ at: number; fn: () => void; id: number }> = [];
  private ids = 0;
  constructor(start: number) { this.t = start; }
  now(): number { return this.t; }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.ids;
    this.pending.push({ at: this.t + ms, fn, id });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.pending = this.pending.filter((p) => p.id !== handle);
  }
  /** advance moves the clock to now + ms, firing due timeouts in order. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      this.pending.sort((a, b) => a.at - b.at);
      const next = this.pending[0];
      if (next === undefined || next.at > end) break;
      this.pending.shift();
      this.t = next.at;
      next.fn();
    }
    this.t = end;
  }
}

function lines(file: string): string[] {
  return fs.readFileSync(file, 'utf8').split('\n').filter((l) => l !== '');
}

function names(dir: string): string[] {
  return fs.readdirSync(dir).sort();
}

const start = Date.UTC(2026, 10, 29, 9, 59, 59, 500);

test('log rotation: the configured file is the active file and time rotation names the backup ' +
  'after the moment, in UTC', async (t) => {
  const dir = tmpDir(t);
  const file = path.join(dir, 'myetcd.log');
  const timers = new VirtualTimers(start);
  const f = new RotatingFile(file, { maxBytes: 0, intervalMs: 3_600_000, keep: 10, timers });
  f.write('{"msg":"one"}\n');
  t.deepEqual(names(dir), ['myetcd.log']);
  timers.advance(1_000); // past 10:00:00.000, the hourly boundary
  f.write('{"msg":"two"}\n');
  await f.end();
  t.deepEqual(names(dir), ['myetcd-2026-11-29T10-00-00.000.log', 'myetcd.log']);
  t.deepEqual(lines(path.join(dir, 'myetcd-2026-11-29T10-00-00.000.log')), ['{"msg":"one"}']);
  t.deepEqual(lines(file), ['{"msg":"two"}']);
});

test('log rotation: an interval without lines rotates nothing and creates no file', async (t) => {
  const dir = tmpDir(t);
  const file = path.join(dir, 'myetcd.log');
  const timers = new VirtualTimers(start);
  const f = new RotatingFile(file, { maxBytes: 0, intervalMs: 1_000, keep: 10, timers });
  f.write('{"msg":"a"}\n');
  timers.advance(1_000); // rotates the file with a line
  timers.advance(5_000); // five idle intervals
  f.write('{"msg":"b"}\n');
  timers.advance(1_000);
  timers.advance(1_000);
  await f.end();
  const all = names(dir);
  t.is(all.length, 3, all.join(', '));
  t.true(all.includes('myetcd.log'));
  t.is(fs.statSync(file).size, 0);
  const backups = all.filter((n) => n !== 'myetcd.log');
  t.deepEqual(backups.map((b) => lines(path.join(dir, b))), [['{"msg":"a"}'], ['{"msg":"b"}']]);
});

test('log rotation: size rotation keeps every line, in order, and keeps only the newest ' +
  'backups', async (t) => {
  const dir = tmpDir(t);
  const file = path.join(dir, 'myetcd.log');
  const timers = new VirtualTimers(start);
  const keep = 3;
  const f = new RotatingFile(file, { maxBytes: 100, intervalMs: 0, keep, timers });
  const written: string[] = [];
  for (let i = 0; i < 40; i++) {
    const line = JSON.stringify({ i, pad: 'x'.repeat(20) });
    written.push(line);
    f.write(line + '\n');
    timers.advance(1); // distinct backup names; two in one millisecond would get -1, -2
  }
  await f.end();
  const backups = f.backups();
  t.is(backups.length, keep);
  for (const b of [...backups, file]) t.true(fs.statSync(b).size <= 100, b);
  // The newest backups and the active file hold the newest lines, in order.
  const kept = [...backups.reverse().flatMap(lines), ...lines(file)];
  t.deepEqual(kept, written.slice(written.length - kept.length));
  t.true(kept.length >= 4);
});

test('log rotation: two rotations in one millisecond get distinct names', async (t) => {
  const dir = tmpDir(t);
  const file = path.join(dir, 'myetcd.log');
  const timers = new VirtualTimers(start);
  const f = new RotatingFile(file, { maxBytes: 0, intervalMs: 0, keep: 10, timers });
  f.write('1\n');
  const a = f.rotate();
  f.write('2\n');
  const b = f.rotate();
  t.is(f.rotate(), undefined, 'an empty active file is not rotated');
  await f.end();
  t.is(path.basename(a!), 'myetcd-2026-11-29T09-59-59.500.log');
  t.is(path.basename(b!), 'myetcd-2026-11-29T09-59-59.500-1.log');
  t.deepEqual(f.backups().map((p) => path.basename(p)), [path.basename(b!), path.basename(a!)]);
});

test('log rotation: an existing file is appended to, not replaced', async (t) => {
  const dir = tmpDir(t);
  const file = path.join(dir, 'myetcd.log');
  fs.writeFileSync(file, '{"msg":"earlier run"}\n');
  const f = new RotatingFile(file, { maxBytes: 0, intervalMs: 0, keep: 10 });
  f.write('{"msg":"this run"}\n');
  await f.end();
  t.deepEqual(lines(file), ['{"msg":"earlier run"}', '{"msg":"this run"}']);
});

test('log rotation: a file that cannot be opened is a LogOutputError naming it', (t) => {
  const dir = tmpDir(t);
  const e1 = t.throws(() => createLogger({ logLevel: 'info', logOutputs: [dir] }));
  t.true(e1 instanceof LogOutputError);
  t.is((e1 as LogOutputError).file, dir);
  const missing = path.join(dir, 'no-such-dir', 'x.log');
  const e2 = t.throws(() => createLogger({ logLevel: 'info', logOutputs: [missing] }));
  t.regex(e2!.message, /no-such-dir\/x\.log/);
  t.false(fs.existsSync(path.join(dir, 'no-such-dir')));
});

test('log rotation: closeLogger returns once the file has every line', async (t) => {
  const dir = tmpDir(t);
  const file = path.join(dir, 'myetcd.log');
  const logger = createLogger({ logLevel: 'info', logOutputs: [file],
    logRotationMaxSizeMb: 0, logRotationInterval: '1s' });
  for (let i = 0; i < 1_000; i++) logger.info({ i }, 'line');
  await closeLogger(logger);
  const got = lines(file).map((l) => (JSON.parse(l) as { i: number }).i);
  t.deepEqual(got, Array.from({ length: 1_000 }, (_, i) => i));
});
