/**
 * assert crashes on a broken invariant: a bug, never bad input (bad input is a typed error
 * from src/errors.ts, answered with a 4xx). Inside an actor the crash reaches the supervisor,
 * which restarts the actors; they recover from the snapshot and the WAL, so a bug costs a
 * restart instead of silently corrupting state.
 *
 * `what` names the invariant in a constant string ("wal: entry indexes leave no gap"); the
 * values that broke it go in `detail`, which is only formatted when the assertion fails. A
 * template string as `what` would be built on every call: about 80 ns each against 4 ns for
 * the whole check on the 2-core development machine (`node dist/bench/assert-cost.js`), on
 * paths that run per record.
 */
export function assert(cond: unknown, what: string, detail?: unknown): asserts cond {
  if (!cond) throw new AssertionFailed(detail === undefined ? what : `${what} (${show(detail)})`);
}

function show(x: unknown): string {
  if (typeof x === 'string') return x;
  try {
    return JSON.stringify(x) ?? String(x);
  } catch {
    return String(x);
  }
}

/**
 * AssertionFailed is what assert throws. Its code (ASSERTION_FAILED) lets a caller that must
 * tell a bug from an expected failure do so without parsing messages: src/errors.ts maps it to
 * a 500 that hides the text, and a loader may turn it into its own "corrupt input" error.
 */
export class AssertionFailed extends Error {
  readonly code = 'ASSERTION_FAILED';
  constructor(what: string) {
    super(`invariant violated: ${what}`);
    this.name = 'AssertionFailed';
  }
}

/** assertNever marks a switch as exhaustive: the compiler proves it unreachable, and reaching
 * it at run time (a value from another version, a cast) is a bug. */
export function assertNever(x: never): never {
  throw new AssertionFailed(`unexpected value ${JSON.stringify(x)}`);
}
