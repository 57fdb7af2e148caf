/**
 * Typed errors of the WAL and snapshot files: expected failures of the outside world (a damaged
 * disk), each with its stable code in src/errors.ts (WAL_CORRUPT, SNAP_CORRUPT), so the shell
 * can branch on them without parsing messages.
 */
import { EtcdError } from '../errors.js';

/**
 * WalCorruptError reports a WAL that cannot be trusted: a bad record before the tail, a bad
 * record in a segment that is not the last, a broken CRC chain, a gap in entry indexes or
 * segment sequence numbers, or conflicting metadata. Recovery refuses rather than drop data.
 */
export class WalCorruptError extends EtcdError {
  /** file is the segment's file name (no directory). */
  readonly file: string;
  /** offset is the byte offset of the record that failed (0 for file-level problems). */
  readonly offset: number;
  /** reason says what check failed, e.g. "crc mismatch". */
  readonly reason: string;

  constructor(file: string, offset: number, reason: string) {
    super('WAL_CORRUPT', `wal: corrupt WAL file ${file} at offset ${offset}: ${reason}`);
    this.file = file;
    this.offset = offset;
    this.reason = reason;
  }
}

/**
 * SnapshotCorruptError reports a snapshot file whose header or body fails its checks (etcd's
 * "snap: crc mismatch"). Loaders skip such a file and fall back to an older one.
 */
export class SnapshotCorruptError extends EtcdError {
  /** file is the snapshot's file name (no directory). */
  readonly file: string;
  /** reason says what check failed. */
  readonly reason: string;

  constructor(file: string, reason: string) {
    super('SNAP_CORRUPT', `snap: corrupt snapshot file ${file}: ${reason}`);
    this.file = file;
    this.reason = reason;
  }
}
