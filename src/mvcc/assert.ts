/**
 * assert crashes on a broken invariant: a bug, never a user error (those are typed errors in
 * errors.ts). The actor's supervisor restarts the shard or applier, which recovers from its
 * snapshot and the WAL.
 */
export function assert(cond: unknown, what: string): asserts cond {
  if (!cond) throw new AssertionFailed(what);
}

/** AssertionFailed is thrown by assert; its code lets a supervisor tell bugs from errors. */
export class AssertionFailed extends Error {
  readonly code = 'MVCC_ASSERTION';
  constructor(what: string) {
    super(`mvcc: invariant violated: ${what}`);
    this.name = 'AssertionFailed';
  }
}

/** assertNever marks a switch as exhaustive: reaching it is a bug. */
export function assertNever(x: never): never {
  throw new AssertionFailed(`unexpected value ${JSON.stringify(x)}`);
}
