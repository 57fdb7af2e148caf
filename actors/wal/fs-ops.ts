/**
 * The file-system slice the WAL store and the snap store share: synchronous node:fs calls
 * behind an interface (tests inject failures or count syncs) and the durable-write helpers
 * both stores build on (write all, sync a directory, create a file atomically). They run on
 * the WAL writer's thread or a snapshot pool thread, where nothing else waits on the event
 * loop, so sync calls skip the libuv thread-pool round trip an async write + fsync would pay.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * FsOps is the slice of node:fs the stores use, injectable so tests can count syncs or fail
 * a call. Every method has node:fs's synchronous semantics.
 */
export interface FsOps {
  openSync(file: string, flags: string): number;
  closeSync(fd: number): void;
  writeSync(fd: number, buf: Uint8Array, offset: number, length: number, position: number): number;
  fdatasyncSync(fd: number): void;
  fsyncSync(fd: number): void;
  ftruncateSync(fd: number, len: number): void;
  renameSync(from: string, to: string): void;
  unlinkSync(file: string): void;
  readdirSync(dir: string): string[];
  readFileSync(file: string): Uint8Array;
  /** readFileShared is readFileSync into shared memory, in one or two regions
   * (readFileSharedSync). */
  readFileShared(file: string, splitAt?: SplitAt): Uint8Array[];
  mkdirSync(dir: string): void;
  existsSync(file: string): boolean;
}

/** nodeFsOps is FsOps backed by node:fs. */
export const nodeFsOps: FsOps = {
  openSync: (f, flags) => fs.openSync(f, flags, 0o600),
  closeSync: (fd) => fs.closeSync(fd),
  writeSync: (fd, buf, offset, length, position) => fs.writeSync(fd, buf, offset, length, position),
  fdatasyncSync: (fd) => fs.fdatasyncSync(fd),
  fsyncSync: (fd) => fs.fsyncSync(fd),
  ftruncateSync: (fd, len) => fs.ftruncateSync(fd, len),
  renameSync: (from, to) => fs.renameSync(from, to),
  unlinkSync: (f) => fs.unlinkSync(f),
  readdirSync: (d) => fs.readdirSync(d),
  readFileSync: (f) => fs.readFileSync(f),
  readFileShared: (f, splitAt) => readFileSharedSync(f, splitAt),
  mkdirSync: (d) => fs.mkdirSync(d, { mode: 0o700 }),
  existsSync: (f) => fs.existsSync(f),
};

/** SplitAt names, from a file's first splitProbeBytes bytes (fewer if the file is shorter)
 * and its size, an offset where it is read into two buffers (undefined: one). */
export type SplitAt = (first: Uint8Array, size: number) => number | undefined;
/** splitProbeBytes: how much of a file SplitAt is shown (a snapshot's header and prefix). */
export const splitProbeBytes = 64;

/**
 * readFileSharedSync reads a whole file into a SharedArrayBuffer, so that views of it cross to
 * other threads without a copy: a snapshot's body, whose shard dumps the Raft node hands on to
 * the shards while it rebuilds its applier from the same bytes (a copy of each dump was
 * ≈ 0.3–0.5 s of a 1,000,000-key restart on the Raft thread, before any shard could start).
 * With `splitAt`, the bytes from the offset it names on go into a second SharedArrayBuffer:
 * each region's memory is freed when its own views are gone (a snapshot's values stay, its
 * keys and columns, once copied out, do not). Nobody writes the bytes once read. A file that
 * shrinks while it is read gives what was read: the snapshot's checksum then refuses it.
 */
export function readFileSharedSync(file: string, splitAt?: SplitAt): Uint8Array[] {
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    let at: number | undefined;
    if (splitAt !== undefined) {
      const first = new Uint8Array(Math.min(size, splitProbeBytes));
      at = splitAt(first.subarray(0, readInto(fd, first, 0)), size);
    }
    if (at === undefined || at <= 0 || at >= size) return [readShared(fd, 0, size)];
    const head = readShared(fd, 0, at);
    return head.length < at ? [head] : [head, readShared(fd, at, size - at)];
  } finally {
    fs.closeSync(fd);
  }
}

/** readShared reads `length` bytes of fd from `position` into a new SharedArrayBuffer (fewer
 * at the end of the file). */
function readShared(fd: number, position: number, length: number): Uint8Array {
  const out = new Uint8Array(new SharedArrayBuffer(length));
  return out.subarray(0, readInto(fd, out, position));
}

/** readInto fills `out` from fd at `position`; returns the bytes read (fewer at the end of the
 * file). */
function readInto(fd: number, out: Uint8Array, position: number): number {
  let o = 0;
  while (o < out.length) {
    const n = fs.readSync(fd, out, o, out.length - o, position + o);
    if (n === 0) break;
    o += n;
  }
  return o;
}

/** StoreLogger is the part of a pino logger the stores use. */
export interface StoreLogger {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

/** tmpSuffix marks files being written; they are never read and are deleted at open. */
export const tmpSuffix = '.tmp';

/** writeAll writes all of `bytes` at `position`, looping over short writes. An error it
 * throws carries `bytesWritten`: how much of `bytes` reached the file before it. */
export function writeAll(fsx: FsOps, fd: number, bytes: Uint8Array, position: number): void {
  let done = 0;
  try {
    while (done < bytes.length) {
      done += fsx.writeSync(fd, bytes, done, bytes.length - done, position + done);
    }
  } catch (err) {
    if (err instanceof Error) Object.assign(err, { bytesWritten: done });
    throw err;
  }
}

/** fsyncDir makes a directory's entries (a create, rename or unlink) durable. */
export function fsyncDir(fsx: FsOps, dir: string): void {
  const fd = fsx.openSync(dir, 'r');
  try {
    fsx.fsyncSync(fd);
  } finally {
    fsx.closeSync(fd);
  }
}

/** ensureDir creates `dir` and missing parents, syncing each parent whose entries changed. */
export function ensureDir(fsx: FsOps, dir: string): void {
  if (fsx.existsSync(dir)) return;
  const parent = path.dirname(dir);
  if (parent !== dir) ensureDir(fsx, parent);
  try {
    fsx.mkdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  fsyncDir(fsx, parent);
}

/**
 * writeFileDurably creates `dir/name` atomically: the parts go to `name.tmp`, which is synced
 * (fsync with `sync: 'fsync'`, else fdatasync), renamed, and the directory synced. A reader
 * sees the whole file or none of it. Returns the final path.
 */
export function writeFileDurably(
  fsx: FsOps,
  dir: string,
  name: string,
  parts: readonly Uint8Array[],
  sync: 'fsync' | 'fdatasync' = 'fdatasync',
): string {
  const final = path.join(dir, name);
  const tmp = final + tmpSuffix;
  const fd = fsx.openSync(tmp, 'w');
  try {
    let at = 0;
    for (const p of parts) {
      writeAll(fsx, fd, p, at);
      at += p.length;
    }
    if (sync === 'fsync') fsx.fsyncSync(fd);
    else fsx.fdatasyncSync(fd);
  } catch (err) {
    // A full disk: give the partial file's space back at once rather than at the next open.
    try {
      fsx.unlinkSync(tmp);
    } catch {
      // removeTmpFiles deletes it at the next open
    }
    throw err;
  } finally {
    fsx.closeSync(fd);
  }
  fsx.renameSync(tmp, final);
  fsyncDir(fsx, dir);
  return final;
}

/** removeTmpFiles deletes the unfinished `.tmp` files a crash left in `dir`. */
export function removeTmpFiles(fsx: FsOps, dir: string, logger: StoreLogger): void {
  for (const name of fsx.readdirSync(dir)) {
    if (!name.endsWith(tmpSuffix)) continue;
    fsx.unlinkSync(path.join(dir, name));
    logger.info({ file: name }, 'wal: removed an unfinished temporary file');
  }
}

/** isFsError reports whether `err` came from the file system (it carries an errno code). */
export function isFsError(err: unknown): boolean {
  return err instanceof Error && typeof (err as NodeJS.ErrnoException).code === 'string';
}
