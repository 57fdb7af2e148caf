import { readlinkSync } from 'node:fs';

/**
 * thread-id: the OS thread id (Linux tid) of the calling thread. Every thread of a Node
 * process is called `node` in /proc, so the actor runtime reports each thread's tid with its
 * actor's name (worker.ts → system.ts), and `GET /debug/threads` lists them; with those ids
 * the benchmark reads each thread's CPU time from /proc/<pid>/task/<tid>/stat.
 */

/** parseThreadSelf reads the tid out of the target of /proc/thread-self ("PID/task/TID"). */
export function parseThreadSelf(link: string): number | undefined {
  const m = /^(\d+)\/task\/(\d+)$/.exec(link.trim());
  if (m === null) return undefined;
  const tid = Number(m[2]);
  return Number.isSafeInteger(tid) && tid > 0 ? tid : undefined;
}

/** osThreadId is the calling thread's tid, or undefined where /proc/thread-self does not
 * exist (not Linux, or a /proc without it). */
export function osThreadId(): number | undefined {
  try {
    return parseThreadSelf(readlinkSync('/proc/thread-self'));
  } catch {
    return undefined;
  }
}

/** ThreadInfo is one named thread of the process. */
export interface ThreadInfo {
  name: string;
  tid: number;
}
