/**
 * WAL segment and snapshot file names, etcd's: `%016x-%016x.wal` (sequence, first index) and
 * `%016x-%016x.snap` (term, index). Sixteen hex digits sort lexically in numeric order.
 */

/** WalSegmentName is a parsed segment file name. */
export interface WalSegmentName {
  readonly seq: number;
  /** index is the first Raft index the segment may hold (a lower bound; see the format doc). */
  readonly index: number;
  readonly name: string;
}

/** SnapshotName is a parsed snapshot file name. */
export interface SnapshotName {
  readonly term: number;
  readonly index: number;
  readonly name: string;
}

function hex16(n: number): string {
  if (!(Number.isSafeInteger(n) && n >= 0)) throw new RangeError(`wal: bad name number ${n}`);
  return n.toString(16).padStart(16, '0');
}

const walNamePattern = /^([0-9a-f]{16})-([0-9a-f]{16})\.wal$/;
const snapNamePattern = /^([0-9a-f]{16})-([0-9a-f]{16})\.snap$/;

function parseHex16(s: string): number | undefined {
  const n = Number.parseInt(s, 16);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** walSegmentName formats a segment's file name. */
export function walSegmentName(seq: number, index: number): string {
  return `${hex16(seq)}-${hex16(index)}.wal`;
}

/** parseWalSegmentName parses a segment's file name, or returns undefined for other files. */
export function parseWalSegmentName(name: string): WalSegmentName | undefined {
  const m = walNamePattern.exec(name);
  if (m === null) return undefined;
  const seq = parseHex16(m[1]!);
  const index = parseHex16(m[2]!);
  if (seq === undefined || index === undefined) return undefined;
  return { seq, index, name };
}

/** snapshotFileName formats a snapshot's file name. */
export function snapshotFileName(term: number, index: number): string {
  return `${hex16(term)}-${hex16(index)}.snap`;
}

/** parseSnapshotFileName parses a snapshot's file name, or returns undefined for other files. */
export function parseSnapshotFileName(name: string): SnapshotName | undefined {
  const m = snapNamePattern.exec(name);
  if (m === null) return undefined;
  const term = parseHex16(m[1]!);
  const index = parseHex16(m[2]!);
  if (term === undefined || index === undefined) return undefined;
  return { term, index, name };
}
