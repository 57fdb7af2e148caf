/**
 * snapshot-task is a piscina task module: it writes one snapshot file off the actor threads
 * (encode header + CRC32C of the body, temp file, fsync, rename, directory fsync) and returns
 * the file's path and its fsync time. The caller writes the WAL's snapshot marker only after
 * this resolves.
 *
 * When the caller no longer needs the body's parts, list their buffers in `transferList` of
 * `pool.run`: a transferred buffer crosses threads without the copy that structured cloning a
 * large part costs (a transferred part must own its whole ArrayBuffer).
 */
import { isShared, releaseBytes } from '../../src/runtime/codec.js';
import { collectGarbageSoon } from '../../src/runtime/gc.js';
import { failpoint, failpointsEnabled } from '../../src/runtime/failpoint.js';
import { nodeFsOps } from './fs-ops.js';
import { writeSnapshotFile } from './snap-store.js';

/**
 * snapshotPoolOptions are the piscina options the WAL writer's pool needs. Atomics off: with
 * them on, an idle pool thread blocks in Atomics.wait between tasks, its event loop stops, and
 * the parts it freed (releaseBytes hands them to a closed channel, which the event loop
 * discards) stayed resident until the next snapshot: ≈ 130-250 MB with a million keys. A
 * snapshot is one task a minute at most, so the faster hand-off is worth nothing here.
 */
export const snapshotPoolOptions = { atomics: 'disabled' } as const;

/** SnapshotTaskInput is one snapshot to write; `dir` is the data dir (files go to member/snap). */
export interface SnapshotTaskInput {
  readonly dir: string;
  readonly term: number;
  readonly index: number;
  /** parts: the body, as parts written one after the other. */
  readonly parts: readonly Uint8Array[];
}

/** SnapshotTaskTimed is what the task returns: the file's path and its fsync time, or the
 * error that stopped it (an errno error's code and syscall do not survive the thread crossing
 * as an exception; the .tmp file is removed). */
export interface SnapshotTaskTimed {
  path: string;
  fsyncSeconds: number;
  error?: { code?: string; syscall?: string; message: string };
}

/** writeSnapshot writes the snapshot file and returns its final path, timing the file's fsync
 * (the first fsync; the directory's follows) for etcd_snap_fsync_duration_seconds. */
export default async function writeSnapshot(input: SnapshotTaskInput):
  Promise<SnapshotTaskTimed> {
  let fsyncSeconds: number | undefined;
  const fsOps = {
    ...nodeFsOps,
    fsyncSync: (fd: number) => {
      const t0 = performance.now();
      nodeFsOps.fsyncSync(fd);
      fsyncSeconds ??= (performance.now() - t0) / 1000;
    },
    renameSync: (from: string, to: string) => {
      if (failpointsEnabled) failpoint('snapBeforeRename');
      nodeFsOps.renameSync(from, to);
    },
  };
  try {
    const path = writeSnapshotFile(input.dir, input.term, input.index, input.parts, fsOps);
    return { path, fsyncSeconds: fsyncSeconds ?? 0 };
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const error = { message: String(e) } as NonNullable<SnapshotTaskTimed['error']>;
    if (typeof err.code === 'string') error.code = err.code;
    if (typeof err.syscall === 'string') error.syscall = err.syscall;
    return { path: '', fsyncSeconds: 0, error };
  } finally {
    // The parts were moved here and are written: free them now. This thread allocates almost
    // nothing, so its next collection, which would free them, could be minutes away; until
    // then a million keys' dump (≈ 130 MB, allocated by the shard) stayed resident.
    let shared = false;
    for (const part of input.parts) if (!releaseBytes(part) && isShared(part)) shared = true;
    // Views of a shard's value arena (shared memory) free nothing here, but they keep that
    // arena alive, should the shard replace it, until this thread collects them.
    if (shared) collectGarbageSoon();
  }
}
