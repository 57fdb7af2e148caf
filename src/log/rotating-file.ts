import * as fs from 'node:fs';
import * as path from 'node:path';
import pino from 'pino';

/**
 * RotatingFile: a log file output that is written in place and rotated the way etcd's
 * rotator (lumberjack) does it.
 *
 * The configured file is always the active one: `--log-outputs /var/log/myetcd/myetcd.log`
 * writes `myetcd.log`. Rotating renames it to a backup named after the moment of rotation,
 * in UTC, before the extension — `myetcd-2026-11-29T10-00-00.000.log` (lumberjack's format;
 * `-1`, `-2`, … are added if two rotations fall in one millisecond) — and opens a fresh
 * `myetcd.log`. The newest `keep` backups are kept, older ones deleted. Lines written before
 * a rotation land in the backup (the old descriptor drains into the renamed file), later ones
 * in the new file, so the order of lines across files is the order they were written.
 *
 * A rotation happens when a write would take the file past `maxBytes` (0: never by size), and
 * at every `intervalMs` boundary (0: never by time), aligned to the UTC epoch: an hourly
 * rotation happens at :00, a daily one at 00:00 UTC. Either way **only a file that has lines
 * is rotated**: an idle member creates no empty files.
 *
 * Writes never block the caller: each file is a sonic-boom stream writing asynchronously;
 * `flushSync` writes out what is buffered, and `end` resolves once every descriptor (the
 * active one and any still draining into a backup) is closed, which takes no longer than the
 * writes themselves.
 *
 * Opening happens in the constructor, synchronously, so a file that cannot be opened is an
 * error the caller can report at start-up (`LogOutputError`), not an event later.
 */

/** RotationTimers is the clock a RotatingFile reads; tests inject a virtual one. */
export interface RotationTimers {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** RotationOptions configure a RotatingFile. */
export interface RotationOptions {
  /** maxBytes rotates before a write that would pass it; 0 disables size rotation. */
  maxBytes: number;
  /** intervalMs rotates at each boundary of this period; 0 disables time rotation. */
  intervalMs: number;
  /** keep is how many backups are kept besides the active file. */
  keep: number;
  /** timers default to the real clock, with unref'd timers. */
  timers?: RotationTimers;
  /** onError reports a write or rotation failure (default: one line on stderr). */
  onError?: (e: Error) => void;
}

/** LogOutputError: a --log-outputs file cannot be opened. */
export class LogOutputError extends Error {
  readonly file: string;
  override readonly cause: unknown;
  constructor(file: string, cause: unknown) {
    super(`cannot open log file ${file}: ${(cause as Error).message}`);
    this.name = 'LogOutputError';
    this.file = file;
    this.cause = cause;
  }
}

const realTimers: RotationTimers = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

type Boom = ReturnType<typeof pino.destination>;

/**
 * flushBoomSync writes out what a sonic-boom stream buffers, unless an asynchronous write is in
 * flight: sonic-boom's flushSync would then write the later lines with writeSync before the
 * earlier ones land, and a file would hold its lines out of order. The stream drains by itself
 * in that case; close paths await it.
 */
export function flushBoomSync(boom: Boom): void {
  if ((boom as unknown as { _writing?: boolean })._writing === true) return;
  try {
    boom.flushSync();
  } catch {
    // EAGAIN/EBUSY or not yet open: the stream drains on its own.
  }
}

/** drainBoom resolves once a sonic-boom stream has written everything it was given, in order:
 * it waits out a write in flight, then flushes the rest (see flushBoomSync). */
export async function drainBoom(boom: Boom): Promise<void> {
  const state = boom as unknown as { _writing?: boolean; destroyed?: boolean };
  while (state._writing === true && state.destroyed !== true) {
    await new Promise<void>((resolve) => {
      const done = (): void => {
        boom.off('write', done);
        boom.off('error', done);
        boom.off('close', done);
        resolve();
      };
      boom.once('write', done);
      boom.once('error', done);
      boom.once('close', done);
    });
  }
  flushBoomSync(boom);
}

/** RotatingFile writes one log file (see the file comment). */
export class RotatingFile {
  readonly file: string;
  private readonly opts: RotationOptions;
  private readonly timers: RotationTimers;
  private boom: Boom;
  private bytes: number;
  private draining = new Set<Promise<void>>();
  private timer: unknown;
  private ended = false;
  private readonly reported = new Set<string>();

  constructor(file: string, opts: RotationOptions) {
    this.file = file;
    this.opts = opts;
    this.timers = opts.timers ?? realTimers;
    const { boom, bytes } = this.open();
    this.boom = boom;
    this.bytes = bytes;
    this.schedule();
  }

  /** write appends one or more whole lines. */
  write(chunk: string): boolean {
    const n = Buffer.byteLength(chunk);
    if (this.opts.maxBytes > 0 && this.bytes > 0 && this.bytes + n > this.opts.maxBytes) {
      this.rotate();
    }
    this.bytes += n;
    return this.boom.write(chunk);
  }

  /** rotate moves the active file to a backup and opens a fresh one, if the active file has
   * lines; returns the backup's path, or undefined when there was nothing to rotate. */
  rotate(): string | undefined {
    if (this.bytes === 0 || this.ended) return undefined;
    const backup = this.backupPath(this.timers.now());
    let next: { boom: Boom; bytes: number };
    try {
      fs.renameSync(this.file, backup);
      next = this.open();
    } catch (e) {
      this.report(e as Error);
      return undefined;
    }
    const old = this.boom;
    this.boom = next.boom;
    this.bytes = next.bytes;
    this.retire(old);
    this.prune();
    return backup;
  }

  /** flushSync writes out what the active stream buffers (best effort). */
  flushSync(): void {
    flushBoomSync(this.boom);
  }

  /** end stops the rotation timer and closes every descriptor once its lines are written. */
  async end(): Promise<void> {
    if (!this.ended) {
      this.ended = true;
      if (this.timer !== undefined) this.timers.clearTimeout(this.timer);
      this.retire(this.boom);
    }
    await Promise.all([...this.draining]);
  }

  /** backups lists this file's backups, newest first. */
  backups(): string[] {
    const dir = path.dirname(this.file);
    const { stem, ext } = split(this.file);
    const re = new RegExp(`^${escape(stem)}-\\d{4}-\\d\\d-\\d\\dT\\d\\d-\\d\\d-\\d\\d\\.\\d{3}` +
      `(-\\d+)?${escape(ext)}$`);
    return fs.readdirSync(dir).filter((n) => re.test(n))
      .sort((a, b) => backupOrder(b) < backupOrder(a) ? -1 : 1)
      .map((n) => path.join(dir, n));
  }

  private open(): { boom: Boom; bytes: number } {
    let fd: number;
    try {
      fd = fs.openSync(this.file, 'a');
      const st = fs.fstatSync(fd);
      if (!st.isFile()) {
        fs.closeSync(fd);
        throw Object.assign(new Error('not a regular file'), { code: 'ENOTFILE' });
      }
      const boom = pino.destination({ dest: fd, sync: false, minLength: 0 });
      boom.on('error', (e: Error) => this.report(e));
      return { boom, bytes: st.size };
    } catch (e) {
      throw new LogOutputError(this.file, e);
    }
  }

  private retire(boom: Boom): void {
    const done = new Promise<void>((resolve) => {
      boom.once('close', () => resolve());
      boom.once('error', () => resolve());
    });
    this.draining.add(done);
    void done.then(() => this.draining.delete(done));
    boom.end();
  }

  private schedule(): void {
    const period = this.opts.intervalMs;
    if (period <= 0 || this.ended) return;
    const now = this.timers.now();
    const next = (Math.floor(now / period) + 1) * period;
    this.timer = this.timers.setTimeout(() => {
      this.timer = undefined;
      this.rotate();
      this.schedule();
    }, next - now);
  }

  private backupPath(ms: number): string {
    const { stem, ext } = split(this.file);
    const stamp = new Date(ms).toISOString().replace(/:/g, '-').replace(/Z$/, '');
    const base = path.join(path.dirname(this.file), `${stem}-${stamp}`);
    let candidate = base + ext;
    for (let i = 1; fs.existsSync(candidate); i++) candidate = `${base}-${i}${ext}`;
    return candidate;
  }

  private prune(): void {
    try {
      for (const old of this.backups().slice(this.opts.keep)) fs.rmSync(old, { force: true });
    } catch (e) {
      this.report(e as Error);
    }
  }

  private report(e: Error): void {
    if (this.opts.onError !== undefined) return this.opts.onError(e);
    const key = (e as NodeJS.ErrnoException).code ?? e.message;
    if (this.reported.has(key)) return;
    this.reported.add(key);
    process.stderr.write(`myetcd: log file ${this.file}: ${e.message}\n`);
  }
}

/** split separates a file name's stem and extension: myetcd.log → myetcd, .log. */
function split(file: string): { stem: string; ext: string } {
  const ext = path.extname(file);
  return { stem: path.basename(file, ext), ext };
}

/** backupOrder makes `-N` suffixes sort after the plain name of the same millisecond. */
function backupOrder(name: string): string {
  const m = /(\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3})(?:-(\d+))?/.exec(name);
  return `${m?.[1] ?? ''}#${(m?.[2] ?? '0').padStart(6, '0')}`;
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
