import * as path from 'node:path';

/**
 * data-dir: where a member keeps its files inside --data-dir, as etcd lays them out (etcd's
 * `datadir` package), so an operator finds them where etcd's documentation says:
 *
 *   <data-dir>/member/wal/    WAL segments (actors/wal/wal-store.ts)
 *   <data-dir>/member/snap/   snapshot files (actors/wal/snap-store.ts)
 *
 * The main thread asks it too (is there a WAL already, i.e. is this a restart?), before any
 * actor runs, so it lives here rather than in the WAL writer's folder.
 */

/** memberDirOf is the folder of a data dir that holds the member's state. */
export function memberDirOf(dataDir: string): string {
  return path.join(dataDir, 'member');
}

/** walDirOf is where a data dir keeps its WAL segments. */
export function walDirOf(dataDir: string): string {
  return path.join(memberDirOf(dataDir), 'wal');
}

/** snapDirOf is where a data dir keeps its snapshot files. */
export function snapDirOf(dataDir: string): string {
  return path.join(memberDirOf(dataDir), 'snap');
}
