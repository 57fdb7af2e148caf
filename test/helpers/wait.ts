import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Waiting without hoping. A test waits for a condition (an event, or state it can observe),
 * never for a fixed time, and any deadline here is generous: it is reached only when the
 * condition never comes (a bug), not because a shared 2-core machine was slow. Times are read
 * from one monotonic clock, `now()`.
 */

/** waitTimeoutMs is the default bound of `until`. */
export const waitTimeoutMs = 30_000;

/** now is the test's clock: monotonic milliseconds (the server's lease timers use the same
 * kind of clock, so intervals measured here bound intervals measured there). */
export const now = (): number => performance.now();

/** UntilOptions: how long `until` may wait, and how often it looks. */
export interface UntilOptions {
  timeoutMs?: number;
  intervalMs?: number;
}

/** until polls `check` until it returns true, and throws naming `what` if timeoutMs passes
 * first. For state in another process (an HTTP answer, a metric); an event of this process
 * is better awaited directly. */
export async function until(check: () => boolean | Promise<boolean>, what: string,
  opts: UntilOptions = {}): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? waitTimeoutMs;
  const deadline = now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(opts.intervalMs ?? 50);
  }
}

/**
 * Signal wakes waiters when something they watch may have changed: the producer calls
 * `notify()`, a waiter awaits `until(cond)`, which resolves as soon as cond holds after a
 * notification (or at once), with no polling.
 */
export class Signal {
  private waiters: (() => void)[] = [];

  notify(): void {
    const ws = this.waiters;
    this.waiters = [];
    for (const w of ws) w();
  }

  async until(cond: () => boolean, what: string, timeoutMs = waitTimeoutMs): Promise<void> {
    const deadline = now() + timeoutMs;
    while (!cond()) {
      const left = deadline - now();
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }
}
