import { createRequire } from 'node:module';
import * as path from 'node:path';
import * as tty from 'node:tty';
import {
  BroadcastChannel, isMainThread, type MessagePort, receiveMessageOnPort,
} from 'node:worker_threads';
import pino from 'pino';
import type { Config } from '../config/config.js';
import { rotationIntervalMs } from '../config/values.js';
import { drainBoom, flushBoomSync, RotatingFile, type RotationTimers } from './rotating-file.js';
import { onThreadFlush } from './thread-flush.js';

export { LogOutputError, RotatingFile, type RotationTimers } from './rotating-file.js';

/**
 * log: structured JSON logs with pino, one logger per thread.
 *
 * Every thread (the gateway and each actor) calls createLogger(config) once and makes one
 * child per component: `logger.child({ component: 'raft' })`. Lines are JSON with etcd-like
 * fields: `level` as a word, `time` as ISO-8601, `member` (the member's --name), `msg`.
 *
 * Nothing blocks the caller: stderr/stdout and files are written by sonic-boom in
 * asynchronous mode (pino.destination({ sync: false })). A file output is a RotatingFile
 * (rotating-file.ts): the configured name is the active file, rotated by size and by time
 * into timestamped backups, and only when it has lines. Files are opened synchronously by
 * createLogger, which throws LogOutputError naming the file when one cannot be opened.
 *
 * Worker threads and files. A file must have exactly one writer, or rotation breaks: two
 * rotators would each rename and number files on their own. So only the main thread opens
 * files. An actor thread's file lines are posted, in batches, on a BroadcastChannel named
 * after the file, and the main thread's logger (which listens on the same channel) writes them
 * into its own transport. stderr and stdout need no forwarding: every thread writes whole
 * lines to the same descriptor. Lines posted while no main-thread logger listens are lost,
 * which only happens to an actor run alone (in a test) with a file output.
 *
 * On a terminal (stderr is a TTY) stderr output is pretty-printed by pino-pretty instead.
 */

/** LoggerConfig is the part of Config the logger reads; only logLevel is required, so an
 * actor that was handed just a level can still log (to stderr). */
export type LoggerConfig = { logLevel: Config['logLevel'] | string } &
  Partial<Pick<Config, 'name' | 'logOutputs' | 'logRotationMaxSizeMb' | 'logRotationInterval'>>;

/** LoggerOptions are for tests and tools, not for users (users have Config). */
export interface LoggerOptions {
  /** pretty forces pino-pretty on (true) or off (false) for stderr; default: stderr is a TTY. */
  pretty?: boolean;
  /** rotationBytes overrides logRotationMaxSizeMb, in bytes. */
  rotationBytes?: number;
  /** timers replace the real clock of file rotation (tests). */
  timers?: RotationTimers;
  /** forward sends file lines to the main thread (default: when not the main thread). */
  forward?: boolean;
}

/** logRotationFilesMax bounds the rotated files kept per output, besides the active one. */
export const logRotationFilesMax = 10;
/** forwardBatchLinesMax bounds the lines an actor thread posts to the main thread at once. */
export const forwardBatchLinesMax = 1_024;

const channelPrefix = 'myetcd-log:';
const handlesKey = Symbol('myetcd.logHandles');

interface Handles {
  flushSync(): void;
  close(): Promise<void>;
}

/**
 * prettyStream writes pino-pretty's output to fd, loading pino-pretty when a logger first
 * needs it (a terminal). Imported at the top, its 42 files loaded in every one of a member's
 * threads at every start — ≈ 29 ms of CPU each here — for output that goes to a terminal only
 * (docs/performance.md, session 22).
 */
function prettyStream(fd: number): pino.DestinationStream {
  const pretty = createRequire(import.meta.url)('pino-pretty') as typeof import('pino-pretty');
  return pretty({ destination: fd, sync: false, colorize: true });
}

/** createLogger builds this thread's root logger from the configuration (see file comment). */
export function createLogger(config: LoggerConfig, opts: LoggerOptions = {}): pino.Logger {
  const outputs = config.logOutputs ?? ['stderr'];
  const forward = opts.forward ?? !isMainThread;
  const streams: pino.StreamEntry[] = [];
  const closers: Array<() => Promise<void>> = [];
  const flushers: Array<() => void> = [];
  const seen = new Set<string>();

  for (const out of outputs) {
    const target = out === 'default' ? 'stderr' : out;
    if (seen.has(target)) continue;
    seen.add(target);
    if (target === 'stderr' || target === 'stdout') {
      const fd = target === 'stderr' ? 2 : 1;
      const pretty = opts.pretty ?? (fd === 2 && tty.isatty(2));
      if (pretty) {
        streams.push({ stream: prettyStream(fd) });
      } else {
        const s = pino.destination({ dest: fd, sync: false, minLength: 0 });
        streams.push({ stream: s });
        flushers.push(() => flushBoomSync(s));
        closers.push(() => drainBoom(s));
      }
      continue;
    }
    const file = path.resolve(target);
    if (forward) {
      const f = new ForwardStream(file);
      streams.push({ stream: f });
      flushers.push(() => f.flush());
      closers.push(async () => f.close());
    } else {
      let f: RotatingFile;
      try {
        f = fileOutput(file, config, opts);
      } catch (e) {
        // Close the outputs opened so far; the caller reports the file that failed.
        void Promise.all(closers.map((c) => c()));
        throw e;
      }
      streams.push({ stream: f });
      const listener = listen(file, f);
      flushers.push(() => {
        listener.drain();
        f.flushSync();
      });
      closers.push(async () => {
        listener.close();
        await f.end();
      });
    }
  }

  const options: pino.LoggerOptions = {
    level: config.logLevel,
    base: config.name === undefined
      ? { pid: process.pid }
      : { pid: process.pid, member: config.name },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  };
  const logger = streams.length === 1
    ? pino(options, streams[0]!.stream)
    : pino(options, pino.multistream(streams.map((s) => ({ ...s, level: config.logLevel }))));
  const handles = handlesFor(flushers, closers);
  // Children are created with Object.create(parent), so they inherit this property: a
  // component's child logger can be flushed or closed too.
  Object.defineProperty(logger, handlesKey, { value: handles, enumerable: false });
  return logger;
}

/** handlesFor makes a logger's flush and close from its outputs'. A worker's logger is also
 * written out when the actor stops (thread-flush.ts), until it is closed. */
function handlesFor(flushers: Array<() => void>, closers: Array<() => Promise<void>>): Handles {
  const flushSync = (): void => { for (const f of flushers) f(); };
  const unregister = isMainThread ? undefined : onThreadFlush(flushSync);
  return {
    flushSync,
    close: async () => {
      unregister?.();
      await Promise.all(closers.map((c) => c()));
    },
  };
}

/** flushLogger writes out, synchronously and as far as it can, what this thread's logger
 * holds, before a process.exit(). File transports run in their own thread and are flushed by
 * pino at process exit as well; to be sure a file has everything, await closeLogger. */
export function flushLogger(logger: pino.Logger): void {
  handlesOf(logger)?.flushSync();
}

/** closeLogger flushes and closes every output of the logger (file transports included)
 * and resolves once files are written; the logger must not be used afterwards. */
export async function closeLogger(logger: pino.Logger): Promise<void> {
  await handlesOf(logger)?.close();
}

function handlesOf(logger: pino.Logger): Handles | undefined {
  return (logger as unknown as Record<symbol, Handles | undefined>)[handlesKey];
}

/** fileOutput opens one file output (see rotating-file.ts for the naming). */
function fileOutput(file: string, config: LoggerConfig, opts: LoggerOptions): RotatingFile {
  const sizeMb = config.logRotationMaxSizeMb ?? 0;
  return new RotatingFile(file, {
    maxBytes: opts.rotationBytes ?? sizeMb * 1024 * 1024,
    intervalMs: rotationIntervalMs(config.logRotationInterval ?? 'none') ?? 0,
    keep: logRotationFilesMax,
    ...(opts.timers === undefined ? {} : { timers: opts.timers }),
  });
}

/** Listener is the main thread's side of a file's forwarding channel. */
interface Listener {
  /** drain writes the forwarded lines already queued, without waiting for the event loop to
   * deliver them. An actor thread posts its last lines before it reports stopped on another
   * channel, and channels have no order between them: the supervisor may hear "stopped" and
   * close the logger while those lines still wait. A line is queued once the worker's
   * postMessage has returned, so a flush or a close that drains first loses none. */
  drain(): void;
  /** close drains, then stops listening. */
  close(): void;
}

/** listen feeds lines forwarded by actor threads for `file` into the main thread's stream. */
function listen(file: string, stream: { write(s: string): unknown }): Listener {
  const ch = new BroadcastChannel(channelPrefix + file);
  ch.onmessage = (ev) => {
    const data = (ev as MessageEvent).data;
    if (typeof data === 'string') stream.write(data);
  };
  (ch as unknown as { unref(): void }).unref();
  // Node takes a BroadcastChannel here too; its types name only MessagePort.
  const port = ch as unknown as MessagePort;
  const drain = (): void => {
    for (let m = receiveMessageOnPort(port); m !== undefined; m = receiveMessageOnPort(port)) {
      if (typeof m.message === 'string') stream.write(m.message);
    }
  };
  return {
    drain,
    close() {
      drain();
      ch.close();
    },
  };
}

/** ForwardStream batches an actor thread's lines for one file and posts them to the main
 * thread (see the file comment). A batch goes out on the next turn of the event loop. */
class ForwardStream {
  private readonly ch: BroadcastChannel;
  private lines: string[] = [];
  private scheduled = false;

  constructor(file: string) {
    this.ch = new BroadcastChannel(channelPrefix + file);
    (this.ch as unknown as { unref(): void }).unref();
  }

  write(line: string): void {
    this.lines.push(line);
    if (this.lines.length >= forwardBatchLinesMax) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  flush(): void {
    this.scheduled = false;
    if (this.lines.length === 0) return;
    const batch = this.lines.join('');
    this.lines = [];
    this.ch.postMessage(batch);
  }

  close(): void {
    this.flush();
    this.ch.close();
  }
}
