/**
 * failpoint: the shell of the failpoints (the grammar and countdown are src/failpoints.ts).
 * Every thread reads GOFAIL_FAILPOINTS once, at import (worker threads share the process's
 * environment), and keeps its own countdown per point: each point sits in one thread.
 *
 * A point costs one boolean test when failpoints are off:
 *
 *   if (failpointsEnabled) failpoint('walBeforeSync');
 */
import { writeSync } from 'node:fs';
import { FailpointTerms, type FailpointName, parseFailpoints } from '../failpoints.js';

const spec = process.env['GOFAIL_FAILPOINTS'] ?? '';
const points = new Map<FailpointName, FailpointTerms>(
  [...parseFailpoints(spec)].map(([name, terms]) => [name, new FailpointTerms(terms)]),
);

/** failpointsEnabled is false unless GOFAIL_FAILPOINTS names at least one point. */
export const failpointsEnabled = points.size > 0;

/** sleeper: Atomics.wait on it blocks this thread without spinning (a slow fsync). */
const sleeper = new Int32Array(new SharedArrayBuffer(4));

/**
 * failpoint runs point `name` once: `panic` kills the whole process with SIGKILL at once (no
 * handler, no flush, no graceful stop: what kill -9 does), `sleep(ms)` blocks this thread,
 * `return(v)` returns v for the caller to act on; `on` returns 'on'; off returns undefined.
 * A hit of panic, sleep or return writes `failpoint NAME: ACTION` to fd 2 first.
 */
export function failpoint(name: FailpointName): string | undefined {
  const a = hit(name);
  if (a?.kind !== 'sleep') return a?.value;
  Atomics.wait(sleeper, 0, 0, a.ms);
  return undefined;
}

/** failpointAsync is failpoint for a point on a path the thread awaits (I/O off its loop):
 * `sleep(ms)` waits on a timer instead of blocking, so the thread serves on meanwhile. */
export async function failpointAsync(name: FailpointName): Promise<string | undefined> {
  const a = hit(name);
  if (a?.kind !== 'sleep') return a?.value;
  await new Promise((resolve) => setTimeout(resolve, a.ms));
  return undefined;
}

/** hit takes point `name`'s next action, tells it on fd 2 and carries out a panic; what is
 * left for the caller is a sleep or a value (undefined: off). */
function hit(name: FailpointName): { kind: 'sleep'; ms: number } | { kind: 'value'; value: string }
  | undefined {
  const p = points.get(name);
  if (p === undefined) return undefined;
  const a = p.next();
  switch (a.kind) {
    case 'off':
      return undefined;
    case 'on':
      return { kind: 'value', value: 'on' };
    case 'panic':
      // Written synchronously to fd 2: a worker's process.stderr goes through the main
      // thread, which the SIGKILL below would beat.
      writeSync(2, `failpoint ${name}: panic (SIGKILL)\n`);
      process.kill(process.pid, 'SIGKILL');
      // SIGKILL to oneself is delivered before kill returns; this thread goes no further.
      for (;;) Atomics.wait(sleeper, 0, 0);
    case 'sleep':
      // Each hit of a sleep or a return is told on fd 2, so that a harness knows it fired.
      writeSync(2, `failpoint ${name}: sleep(${a.ms})\n`);
      return a;
    case 'return':
      writeSync(2, `failpoint ${name}: return(${a.value})\n`);
      return { kind: 'value', value: a.value };
  }
}

/** failpointErrno is failpoint for an I/O point: return("ENOSPC") throws an errno error as
 * node:fs would (code, syscall, message), so the caller's error handling is the real one. */
export function failpointErrno(name: FailpointName, syscall: string): void {
  throwErrno(name, failpoint(name), syscall);
}

/** failpointErrnoAsync is failpointErrno on a path the thread awaits (failpointAsync). */
export async function failpointErrnoAsync(name: FailpointName, syscall: string): Promise<void> {
  throwErrno(name, await failpointAsync(name), syscall);
}

/** throwErrno throws the errno error a point's return(v) stands for, shaped as node:fs's. */
function throwErrno(name: FailpointName, v: string | undefined, syscall: string): void {
  if (v === undefined || v === 'on') return;
  throw Object.assign(new Error(`${v}: failpoint ${name}, ${syscall}`), { code: v, syscall });
}
