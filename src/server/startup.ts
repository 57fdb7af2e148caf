import * as fs from 'node:fs';
import * as path from 'node:path';
import type pino from 'pino';
import type { Config } from '../config/index.js';
import { closeLogger, createLogger, LogOutputError, type LoggerConfig } from '../log/index.js';
import { errnoText, StartupError } from './errors.js';
import { type DirLock, lockDataDir } from './lock.js';
import { type Reservation, reserveUrls } from './listen.js';

/**
 * startup: everything a member must own before it starts its actors, taken in an order that
 * leaves nothing behind when a step fails:
 *
 * 1. check, creating nothing: the data directory is a directory or can be created; each log
 *    file's directory exists; (errors name the setting and the path);
 * 2. reserve the client URLs, exclusively (listen.ts) — a busy port stops us here, before the
 *    data directory exists;
 * 3. create the data directory (mode 0700, as etcd) and lock it (lock.ts) — a second member on
 *    the same directory stops here, having touched nothing inside it;
 * 4. open the log files.
 *
 * If a step fails, the steps before it are undone: reservations released, the lock released,
 * directories and log files this call created removed. The caller prints the StartupError as
 * one line and exits non-zero.
 */

/** Owned is what a member holds once prepareStart succeeded. */
export interface Owned {
  /** clientUrls are the reserved client URLs, in --listen-client-urls order. */
  clientUrls: Reservation[];
  /** grpcUrls are the reserved gRPC client URLs, in --listen-client-grpc-urls order. */
  grpcUrls: Reservation[];
  /** metricsUrls are the reserved --listen-metrics-urls. */
  metricsUrls: Reservation[];
  /** lock is the data directory's lock; release it last when stopping. */
  lock: DirLock;
  /** logger is the main thread's root logger. */
  logger: pino.Logger;
}

/** prepareStart takes the data directory, the client URLs and the log files (see above).
 * Throws StartupError. */
export async function prepareStart(config: Config): Promise<Owned> {
  const undo: Array<() => Promise<void> | void> = [];
  try {
    checkDataDir(config.dataDir);
    const logFiles = fileOutputs(config);
    for (const f of logFiles) checkLogFile(f);

    const clientUrls = await reserveUrls('listen-client-urls', config.listenClientUrls);
    undo.push(() => { for (const r of clientUrls) r.release(); });
    const grpcUrls = await reserveUrls('listen-client-grpc-urls', config.listenClientGrpcUrls);
    undo.push(() => { for (const r of grpcUrls) r.release(); });
    for (const u of config.listenMetricsUrls) {
      if (new URL(u).protocol !== 'http:') {
        throw new StartupError('listen-metrics-urls', u, 'only http is served there');
      }
    }
    const metricsUrls = await reserveUrls('listen-metrics-urls', config.listenMetricsUrls);
    undo.push(() => { for (const r of metricsUrls) r.release(); });

    const created = createDataDir(config.dataDir);
    undo.push(() => removeCreated(created));
    const lock = await lockDataDir(config.dataDir, { pid: process.pid, name: config.name });
    undo.push(() => lock.release());

    const fresh = logFiles.filter((f) => !fs.existsSync(f));
    undo.push(() => { for (const f of fresh) removeIfEmpty(f); });
    let logger: pino.Logger;
    try {
      logger = createLogger(loggerConfig(config));
    } catch (e) {
      if (e instanceof LogOutputError) {
        throw new StartupError('log-outputs', e.file, `cannot open: ${errnoText(e.cause)}`);
      }
      throw e;
    }
    undo.push(() => closeLogger(logger));
    return { clientUrls, grpcUrls, metricsUrls, lock, logger };
  } catch (e) {
    for (const u of undo.reverse()) {
      try {
        await u();
      } catch {
        // Undo is best effort; the error being reported is the one that matters.
      }
    }
    throw e;
  }
}

/** loggerConfig is the logger's part of the configuration (also posted to actor threads). */
export function loggerConfig(config: Config): LoggerConfig {
  return {
    logLevel: config.logLevel, name: config.name, logOutputs: config.logOutputs,
    logRotationMaxSizeMb: config.logRotationMaxSizeMb,
    logRotationInterval: config.logRotationInterval,
  };
}

/** fileOutputs lists the --log-outputs that are files, as absolute paths. */
function fileOutputs(config: Config): string[] {
  return [...new Set(config.logOutputs
    .filter((o) => o !== 'stderr' && o !== 'stdout' && o !== 'default')
    .map((o) => path.resolve(o)))];
}

/** checkDataDir: the data directory is a writable directory, or its nearest existing
 * ancestor is one (so it can be created). */
function checkDataDir(dir: string): void {
  const bad = (why: string) => new StartupError('data-dir', dir, why);
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') throw bad(errnoText(e));
    const ancestor = nearestExisting(path.dirname(path.resolve(dir)));
    if (!ancestor.stat.isDirectory()) {
      throw bad(`cannot be created: ${ancestor.path} is not a directory`);
    }
    if (!writable(ancestor.path)) {
      throw bad(`cannot be created: ${ancestor.path} is not writable`);
    }
    return;
  }
  if (!st.isDirectory()) throw bad('exists and is not a directory');
  if (!writable(dir)) throw bad('is not writable');
}

/** checkLogFile: a log file's directory exists, and the file, if it exists, is a file. */
function checkLogFile(file: string): void {
  const bad = (why: string) => new StartupError('log-outputs', file, why);
  const dir = path.dirname(file);
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch (e) {
    throw bad(`its directory ${dir}: ${errnoText(e)}`);
  }
  if (!st.isDirectory()) throw bad(`${dir} is not a directory`);
  try {
    if (!fs.statSync(file).isFile()) throw bad('exists and is not a regular file');
  } catch (e) {
    if (e instanceof StartupError) throw e;
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw bad(errnoText(e));
  }
}

function nearestExisting(p: string): { path: string; stat: fs.Stats } {
  for (let cur = p; ; cur = path.dirname(cur)) {
    try {
      return { path: cur, stat: fs.statSync(cur) };
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' || path.dirname(cur) === cur) throw e;
    }
  }
}

function writable(dir: string): boolean {
  try {
    fs.accessSync(dir, fs.constants.W_OK | fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** createDataDir creates the data directory and missing parents (0700); returns the
 * directories it created, deepest last. */
function createDataDir(dir: string): string[] {
  const abs = path.resolve(dir);
  const missing: string[] = [];
  for (let cur = abs; !fs.existsSync(cur); cur = path.dirname(cur)) missing.unshift(cur);
  // One level at a time: Node's recursive mkdir spins forever where mkdir fails with ENOENT
  // under an existing directory (/proc/x).
  const made: string[] = [];
  for (const d of missing) {
    try {
      fs.mkdirSync(d, { mode: 0o700 });
      made.push(d);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST' && fs.statSync(d).isDirectory()) continue;
      removeCreated(made);
      throw new StartupError('data-dir', dir, `cannot be created: ${errnoText(e)}`);
    }
  }
  return made;
}

/** removeCreated removes directories this process created (deepest first) if still empty. */
function removeCreated(dirs: string[]): void {
  for (const d of [...dirs].reverse()) {
    try {
      fs.rmdirSync(d);
    } catch {
      return; // not empty (someone else's files) or gone: leave it and its parents
    }
  }
}

function removeIfEmpty(file: string): void {
  try {
    if (fs.statSync(file).size === 0) fs.unlinkSync(file);
  } catch {
    // already gone
  }
}
