/**
 * The snap store (etcd's `snap` package): snapshot files in `<data-dir>/member/snap`, named
 * `%016x-%016x.snap` by term and index, each a checked header and an opaque body
 * (docs/wal-format.md, "Snapshot files"). It stands apart from the WAL store so that whoever
 * produces a snapshot (the WAL writer's pool thread today, a snapshot received from the
 * leader tomorrow) can write and load one without the log. The log's part of the protocol is
 * the marker: write the file first, then the WAL's snapshot marker; recovery only starts from
 * a file whose marker is in the log.
 */
import './native-crc.js'; // checksums with the CPU's CRC32C instructions
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import {
  SnapshotCorruptError,
  decodeSnapshotFile,
  encodeSnapshotHeader,
  snapshotFileSplitAt,
  parseSnapshotFileName,
  snapshotFileName,
} from '../../src/wal/index.js';
import type { SnapshotMarker } from '../../src/wal/index.js';
import type { Index, Term } from '../../src/types.js';
import { snapDirOf } from '../../src/server/data-dir.js';
import {
  type FsOps,
  type StoreLogger,
  ensureDir,
  fsyncDir,
  isFsError,
  nodeFsOps,
  removeTmpFiles,
  writeFileDurably,
} from './fs-ops.js';

/** LoadedSnapshot is a snapshot file that passed its checks. */
export interface LoadedSnapshot {
  readonly index: Index;
  readonly term: Term;
  /**
   * body is the snapshot's opaque bytes (ConfState + application state): a view at offset 48
   * of the file's buffer, in shared memory; for a split body (snapshot-format.ts), the body up
   * to its split.
   */
  readonly body: Uint8Array;
  /** tail: a split body's bytes after the split, in shared memory of their own. */
  readonly tail?: Uint8Array;
  readonly path: string;
}

/** SnapshotListing is a snapshot file found by name (not yet checked). */
export interface SnapshotListing {
  readonly term: number;
  readonly index: number;
  readonly name: string;
  readonly path: string;
}

/**
 * openSnapDir prepares a data dir's snapshot directory at start: creates it (syncing the
 * parents) and deletes the `.tmp` files an interrupted write left behind.
 */
export function openSnapDir(dataDir: string, opts: SnapStoreOptions): void {
  const fsx = opts.fsOps ?? nodeFsOps;
  const dir = snapDirOf(dataDir);
  ensureDir(fsx, dir);
  removeTmpFiles(fsx, dir, opts.logger);
}

/** SnapStoreOptions are what the loaders need besides the data dir. */
export interface SnapStoreOptions {
  readonly logger: StoreLogger;
  /** fsOps replaces node:fs (tests). */
  readonly fsOps?: FsOps;
}

/** listSnapshots lists the snapshot files in a data dir, newest (term, index) first. */
export function listSnapshots(dataDir: string, fsOps: FsOps = nodeFsOps): SnapshotListing[] {
  const dir = snapDirOf(dataDir);
  if (!fsOps.existsSync(dir)) return [];
  const out: SnapshotListing[] = [];
  for (const name of fsOps.readdirSync(dir)) {
    const p = parseSnapshotFileName(name);
    if (p !== undefined) out.push({ ...p, path: path.join(dir, name) });
  }
  return out.sort((a, b) => b.term - a.term || b.index - a.index);
}

/**
 * loadNewestSnapshot returns the newest snapshot file that passes its CRC checks, skipping
 * (with a warning) each one that fails and falling back to the previous. With `usable`, only
 * files whose (index, term) is among those markers are considered: recovery must not start
 * from a snapshot whose marker never reached the WAL. Undefined when none qualifies.
 */
export function loadNewestSnapshot(
  dataDir: string,
  opts: SnapStoreOptions & { readonly usable?: readonly SnapshotMarker[] },
): LoadedSnapshot | undefined {
  const fsx = opts.fsOps ?? nodeFsOps;
  for (const s of listSnapshots(dataDir, fsx)) {
    const usable = opts.usable;
    if (usable !== undefined && !usable.some((m) => m.index === s.index && m.term === s.term)) {
      continue;
    }
    try {
      // In shared memory: the shards read their dumps where the Raft node got them. A split
      // body's tail (the values) in a buffer apart, which outlives the rest.
      const [bytes, tail] = fsx.readFileShared(s.path, snapshotFileSplitAt);
      const f = decodeSnapshotFile(bytes!, s.name, s, tail);
      return {
        index: f.index as Index, term: f.term as Term, body: f.body, path: s.path,
        ...(f.tail === undefined ? {} : { tail: f.tail }),
      };
    } catch (err) {
      if (!(err instanceof SnapshotCorruptError) && !isFsError(err)) throw err;
      opts.logger.warn(
        { file: s.name, err: err instanceof Error ? err.message : String(err) },
        'snap: skipping unreadable snapshot file, falling back to an older one',
      );
    }
  }
  return undefined;
}

/**
 * readSnapshot reads and checks the snapshot file of (index, term) and returns its body;
 * it throws when the file is missing or fails its checks.
 */
export async function readSnapshot(dataDir: string, index: number, term: number):
  Promise<Uint8Array> {
  const s = listSnapshots(dataDir).find((f) => f.index === index && f.term === term);
  if (s === undefined) throw new Error(`snap: no snapshot file at index ${index} term ${term}`);
  const bytes = await readFile(s.path);
  return decodeSnapshotFile(bytes, s.name, s).body;
}

/**
 * writeSnapshotFile makes a snapshot file durable: header + body into `<name>.snap.tmp`,
 * fsync, rename to `<name>.snap`, fsync the directory. Returns the final path. Only after it
 * returns may the caller write the WAL's snapshot marker.
 */
export function writeSnapshotFile(
  dataDir: string,
  term: number,
  index: number,
  body: Uint8Array | readonly Uint8Array[],
  fsOps: FsOps = nodeFsOps,
): string {
  const dir = snapDirOf(dataDir);
  ensureDir(fsOps, dir);
  const parts = body instanceof Uint8Array ? [body] : body;
  const header = encodeSnapshotHeader(term, index, parts);
  // Header and body (or its parts) are written one after the other: a large body is never
  // copied.
  return writeFileDurably(fsOps, dir, snapshotFileName(term, index), [header, ...parts],
    'fsync');
}

/**
 * purgeSnapshots deletes every snapshot file but the newest `keep` (by name, so a damaged new
 * file counts too; keep more than one; 0: no limit, as --max-snapshots 0), and, with `below`,
 * every file at an index below it but the newest: the WAL's oldest segment starts at `below`,
 * so recovery can no longer start from them (foldWal) and they would only hold disk (a whole
 * store each). Returns the deleted paths.
 */
export function purgeSnapshots(
  dataDir: string,
  keep: number,
  opts: { readonly logger?: StoreLogger; readonly fsOps?: FsOps; readonly below?: number } = {},
): string[] {
  if (!(Number.isSafeInteger(keep) && keep >= 0)) throw new RangeError(`snap: keep ${keep} < 0`);
  const fsx = opts.fsOps ?? nodeFsOps;
  const below = opts.below ?? 0;
  const gone = listSnapshots(dataDir, fsx)
    .filter((s, i) => (keep > 0 && i >= keep) || (i > 0 && s.index < below)).map((s) => s.path);
  for (const p of gone) fsx.unlinkSync(p);
  if (gone.length > 0) {
    fsyncDir(fsx, snapDirOf(dataDir));
    opts.logger?.info({ purged: gone }, 'snap: purged old snapshot files');
  }
  return gone;
}
