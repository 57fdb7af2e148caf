/**
 * Branded integer types. Terms, log indexes, revisions, lease ids and member ids are all
 * plain JS numbers (safe up to 2^53, far beyond any real cluster's lifetime) but must never
 * be mixed up; the brands make the compiler catch `revision = index` style mistakes.
 */
declare const brand: unique symbol;
export type Brand<T, B extends string> = T & { readonly [brand]: B };

/** Term is a Raft term (Raft §5.1). */
export type Term = Brand<number, 'Term'>;
/** Index is a Raft log index (Raft §5.3). */
export type Index = Brand<number, 'Index'>;
/** Revision is an MVCC store revision: one per write transaction, starting at 1. */
export type Revision = Brand<number, 'Revision'>;
/** LeaseId is a lease identifier (etcd: int64; we require a safe positive integer). */
export type LeaseId = Brand<number, 'LeaseId'>;
/** WatchId identifies one watcher within a watch stream. */
export type WatchId = Brand<number, 'WatchId'>;
/** MemberId identifies a cluster member (Raft node id). */
export type MemberId = Brand<number, 'MemberId'>;

/**
 * Bytes is how keys and values travel inside MyEtcd: a "binary string" with one char per
 * byte (latin1). V8 stores such strings in one byte per char, they compare in byte order with
 * `<`, they are valid Map keys, and they cost far less memory than a Uint8Array per value.
 * Convert at the edges with `bytesFromBuffer` / `bufferFromBytes`.
 */
export type Bytes = string;

/** isSafeCount reports whether n is a non-negative safe integer (used at every input edge). */
export function isSafeCount(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}
