import test from 'ava';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import { closeLogger, createLogger, flushLogger } from '../src/log/index.js';
import { until } from './helpers/wait.js';

function tmpDir(t: import('ava').ExecutionContext): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'myetcd-log-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** logLines reads every JSON line of every log file in dir: the timestamped backups oldest
 * first, then the active file. */
function logLines(dir: string): Array<Record<string, unknown>> {
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.log'))
    .sort((a, b) => (a === 'myetcd.log' ? 1 : 0) - (b === 'myetcd.log' ? 1 : 0) ||
      (a < b ? -1 : 1));
  return files.flatMap((f) => fs.readFileSync(path.join(dir, f), 'utf8').split('\n')
    .filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>));
}

test('log: a file output gets JSON lines with component, level and member', async (t) => {
  const dir = tmpDir(t);
  const logger = createLogger({ logLevel: 'info', name: 'n1',
    logOutputs: [path.join(dir, 'myetcd.log')], logRotationMaxSizeMb: 0,
    logRotationInterval: 'none' });
  logger.child({ component: 'raft' }).info({ term: 2 }, 'became leader');
  logger.child({ component: 'wal' }).debug('not written at info');
  logger.child({ component: 'wal' }).error({ err: 'boom' }, 'fsync failed');
  flushLogger(logger);
  await closeLogger(logger);
  const lines = logLines(dir);
  t.is(lines.length, 2);
  t.like(lines[0],
    { level: 'info', component: 'raft', member: 'n1', term: 2, msg: 'became leader' });
  t.like(lines[1], { level: 'error', component: 'wal', err: 'boom', msg: 'fsync failed' });
  t.regex(String(lines[0]!.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
});

// Rotation (size, time, naming, retention) is tested in log-rotation.test.ts.

test('log: an actor thread\'s file lines reach the main thread\'s file', async (t) => {
  const dir = tmpDir(t);
  const file = path.join(dir, 'myetcd.log');
  const cfg = {
    logLevel: 'info', logOutputs: [file], logRotationMaxSizeMb: 0, logRotationInterval: 'none',
  };
  const logger = createLogger(cfg);
  logger.child({ component: 'main' }).info('main line');
  const mod = new URL('../src/log/index.js', import.meta.url).href;
  const w = new Worker(`
    const { createLogger, closeLogger } = await import(${JSON.stringify(mod)});
    const { workerData } = await import('node:worker_threads');
    const l = createLogger(workerData).child({ component: 'raft' });
    l.info({ term: 5 }, 'worker line');
    await closeLogger(l);
  `, { eval: true, workerData: cfg });
  await new Promise((resolve, reject) => { w.once('exit', resolve); w.once('error', reject); });
  // The worker's batch reaches this thread's event loop on its own time: wait for its line in
  // the file (flushed each look), not for a fixed while.
  await until(() => {
    flushLogger(logger);
    return fs.existsSync(file) && fs.readFileSync(file, 'utf8').includes('worker line');
  }, 'the forwarded line in the file', { intervalMs: 10 });
  await closeLogger(logger);
  const lines = logLines(dir);
  t.deepEqual(lines.map((l) => [l.component, l.msg]).sort(),
    [['main', 'main line'], ['raft', 'worker line']]);
});

test('log: a close writes the forwarded lines still queued, before their event is delivered',
  async (t) => {
    const dir = tmpDir(t);
    const file = path.join(dir, 'myetcd.log');
    const logger = createLogger({
      logLevel: 'info', logOutputs: [file], logRotationMaxSizeMb: 0, logRotationInterval: 'none',
    });
    // An actor thread's forwarding side, posting on the logger's channel for the file (here
    // from this very thread: the message is queued at once, its event comes on a later turn).
    const worker = createLogger({
      logLevel: 'info', logOutputs: [file], logRotationMaxSizeMb: 0, logRotationInterval: 'none',
    }, { forward: true });
    worker.child({ component: 'raft' }).info('the stop\'s last line');
    flushLogger(worker);
    // Closed in the same turn, as the supervisor does on hearing "stopped".
    await closeLogger(logger);
    await closeLogger(worker);
    t.deepEqual(logLines(dir).map((l) => [l.component, l.msg]),
      [['raft', 'the stop\'s last line']]);
  });

test('log: stderr output is written asynchronously and flushLogger tolerates it', (t) => {
  const logger = createLogger({ logLevel: 'warn' }, { pretty: false });
  logger.child({ component: 'test' }).info('filtered out');
  t.notThrows(() => flushLogger(logger));
  t.is(logger.level, 'warn');
});

test('log: a terminal gets pino-pretty, loaded only then; plain stderr gets JSON', (t) => {
  // A child process, so that its stderr can be read; `pretty` stands in for the terminal.
  const logMod = new URL('../src/log/index.js', import.meta.url).href;
  const run = (pretty: boolean) => spawnSync(process.execPath, ['--input-type=module', '-e',
    `const { createLogger, closeLogger } = await import(${JSON.stringify(logMod)});
     const l = createLogger({ logLevel: 'info' }, { pretty: ${pretty} });
     l.child({ component: 'raft' }).info('hello pretty');
     const loaded = Object.keys((await import('node:module')).createRequire(import.meta.url)
       .cache).some((f) => f.includes('pino-pretty'));
     l.info({ loaded }, 'pino-pretty loaded');
     await closeLogger(l);`], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' }).stderr;
  const plain = run(false).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  t.deepEqual(plain.map((l) => [l.msg, l.loaded]),
    [['hello pretty', undefined], ['pino-pretty loaded', false]]);
  const pretty = run(true);
  t.regex(pretty, /INFO.*hello pretty/);
  t.regex(pretty, /loaded\S*: true/); // between colour codes
  t.throws(() => JSON.parse(pretty.split('\n')[0]!), undefined, 'not JSON');
});
