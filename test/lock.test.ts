import test, { type ExecutionContext } from 'ava';
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LockHeldError, lockDataDir, lockFileName, probeLock } from '../src/server/lock.js';

// The data-directory lock (src/server/lock.ts): a Unix socket whose liveness the kernel ties
// to its holder. Holders in other processes are real child processes, killed with SIGKILL
// where the test needs a dead holder.

const lockJs = new URL('../src/server/lock.js', import.meta.url).href;

function tmpDir(t: ExecutionContext): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'myetcd-lock-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** child runs `code` (an ES module body with `lockDataDir`, `net`, `dir` in scope) in a new
 * process and resolves with it and its first output line. */
async function child(t: ExecutionContext, dir: string, code: string):
  Promise<{ proc: ChildProcess; first: string; exited: Promise<number | null> }> {
  const src = `import { lockDataDir, LockHeldError } from ${JSON.stringify(lockJs)};
    import * as net from 'node:net';
    const dir = ${JSON.stringify(dir)};
    ${code}`;
  const proc = spawn(process.execPath, ['--input-type=module', '-e', src],
    { stdio: ['pipe', 'pipe', 'inherit'] });
  let done = false;
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (c) => {
    done = true;
    resolve(c);
  }));
  t.teardown(async () => {
    if (!done) proc.kill('SIGKILL');
    await exited;
  });
  const first = await new Promise<string>((resolve, reject) => {
    let buf = '';
    proc.stdout!.setEncoding('utf8');
    proc.stdout!.on('data', (d: string) => {
      buf += d;
      const i = buf.indexOf('\n');
      if (i >= 0) resolve(buf.slice(0, i));
    });
    void exited.then((c) => reject(new Error(`child exited with ${c} before a line`)));
  });
  return { proc, first, exited };
}

/** staleLock leaves `names` as socket files whose holder was killed with SIGKILL. */
async function staleLock(t: ExecutionContext, dir: string, names: string[]): Promise<void> {
  for (const n of names) fs.rmSync(path.join(dir, n), { force: true });
  const c = await child(t, dir, `
    for (const name of ${JSON.stringify(names)}) {
      await new Promise((r) => net.createServer().listen({ path: dir + '/' + name }, r));
    }
    console.log('bound');`);
  t.is(c.first, 'bound');
  c.proc.kill('SIGKILL');
  await c.exited;
  for (const n of names) t.is((await probeLock(path.join(dir, n))).state, 'dead', n);
}

test('lock: a second lock on a directory fails naming the holder; a release frees it',
  async (t) => {
    const dir = tmpDir(t);
    const first = await lockDataDir(dir, { pid: process.pid, name: 'n1' });
    const e = await t.throwsAsync(lockDataDir(dir));
    t.true(e instanceof LockHeldError);
    t.deepEqual((e as LockHeldError).holder, { pid: process.pid, name: 'n1' });
    t.is(e!.message, `--data-dir ${dir}: locked by another member (pid ${process.pid}, ` +
      '--name n1); a data directory serves one member at a time');
    await first.release();
    t.false(fs.existsSync(path.join(dir, lockFileName)));
    const again = await lockDataDir(dir);
    await again.release();
  });

test('lock: a holder in another process is named by its pid', async (t) => {
  const dir = tmpDir(t);
  const c = await child(t, dir, `
    await lockDataDir(dir, { pid: process.pid });
    console.log('locked');
    process.stdin.resume();
    process.stdin.on('end', () => process.exit(0));`);
  t.is(c.first, 'locked');
  const e = await t.throwsAsync(lockDataDir(dir));
  t.is((e as LockHeldError).holder.pid, c.proc.pid);
  c.proc.stdin!.end();
  t.is(await c.exited, 0);
});

test('lock: a lock whose holder was killed with SIGKILL is taken over', async (t) => {
  const dir = tmpDir(t);
  await staleLock(t, dir, [lockFileName]);
  const l = await lockDataDir(dir);
  t.is((await probeLock(path.join(dir, lockFileName))).state, 'alive');
  await l.release();
});

test('lock: a break lock left by a takeover killed midway is taken over as well', async (t) => {
  const dir = tmpDir(t);
  await staleLock(t, dir, [lockFileName, `${lockFileName}.break`]);
  const l = await lockDataDir(dir);
  t.deepEqual(fs.readdirSync(dir), [lockFileName], 'the break locks are gone');
  await l.release();
});

test('lock: processes racing to take over a stale lock: exactly one wins', async (t) => {
  const dir = tmpDir(t);
  for (let round = 0; round < 3; round++) {
    await staleLock(t, dir, [lockFileName]);
    const racers = await Promise.all(Array.from({ length: 4 }, () => child(t, dir, `
      try {
        await lockDataDir(dir, { pid: process.pid });
        console.log('won');
      } catch (e) {
        console.log(e instanceof LockHeldError ? 'held by ' + e.holder.pid : 'error ' + e);
      }
      process.stdin.resume();
      process.stdin.on('end', () => process.exit(0));`)));
    const winners = racers.filter((r) => r.first === 'won');
    t.is(winners.length, 1, racers.map((r) => r.first).join(', '));
    for (const r of racers.filter((x) => x !== winners[0])) {
      t.is(r.first, `held by ${winners[0]!.proc.pid}`);
    }
    for (const r of racers) r.proc.stdin!.end();
    await Promise.all(racers.map((r) => r.exited));
    // The winner released on exit without unlinking (process.exit): a dead lock again.
  }
});

test('lock: a data directory whose path is too long for a socket address is locked too',
  async (t) => {
    let dir = tmpDir(t);
    while (dir.length < 150) {
      dir = path.join(dir, 'a-rather-long-directory-name');
      fs.mkdirSync(dir);
    }
    const l = await lockDataDir(dir, { pid: process.pid });
    t.true(fs.existsSync(path.join(dir, lockFileName)));
    const e = await t.throwsAsync(lockDataDir(dir));
    t.is((e as LockHeldError).holder.pid, process.pid);
    await l.release();
    t.false(fs.existsSync(path.join(dir, lockFileName)));
  });
