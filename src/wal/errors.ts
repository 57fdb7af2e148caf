/**
 * Typed errors of the WAL and snapshot files: expected failures of the outside world (a damaged
 * disk), each with a stable `code` so the shell can map them without parsing messages.
 */

/**
 * WalCorruptError reports a WAL that cannot be trusted: a bad record before the tail, a bad
 * record in a segment that is not the last, a broken CRC chain, a gap in entry indexes or
 * segment sequence numbers, or conflicting metadata. Recovery refuses rather than drop data.
 */
export class WalCorruptError extends Error {
  /** code is stable for callers that branch on it. */
  readonly code = 'WAL_CORRUPT';
  /** file is the segment's file name (no directory). */
  readonly file: string;
  /** offset is the byte offset of the record that failed (0 for file-level problems). */
  readonly offset: number;
  /** reason says what check failed, e.g. "crc mismatch". */
  readonly reason: string;

  constructor(file: string, offset: number, reason: string) {
    super(`wal: corrupt WAL file ${file} at offset ${offset}: ${reason}`);
    this.name = 'WalCorruptError';
    this.file = file;
    this.offset = offset;
    this.reason = reason;
  }
}

/**
 * SnapshotCorruptError reports a snapshot file whose header or body fails its checks (etcd's
 * "snap: crc mismatch"). Loaders skip such a file and fall back to an older one.
 */
export class SnapshotCorruptError extends Error {
  /** code is stable for callers that branch on it. */
  readonly code = 'SNAP_CORRUPT';
  /** file is the snapshot's file name (no directory). */
  readonly file: string;
  /** reason says what check failed. */
  readonly reason: string;

  constructor(file: string, reason: string) {
    super(`snap: corrupt snapshot file ${file}: ${reason}`);
    this.name = 'SnapshotCorruptError';
    this.file = file;
    this.reason = reason;
  }
}
