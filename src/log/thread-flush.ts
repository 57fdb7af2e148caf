/**
 * thread-flush: how a worker thread writes out its loggers before it reports stopped. The
 * loggers write asynchronously (see index.ts), and a line still queued in a worker when the
 * process exits is lost: a stop's own lines (the snapshot the Raft node took at the stop)
 * went missing this way once. createLogger registers each worker logger's synchronous flush
 * here, and the actor runtime (src/runtime/worker.ts) runs them once the actor's stop hook
 * is done. No imports: the runtime loads this without pino.
 */

const flushes = new Set<() => void>();

/** onThreadFlush registers fn to run at this thread's stop; the returned function unregisters
 * it (a closed logger). */
export function onThreadFlush(fn: () => void): () => void {
  flushes.add(fn);
  return () => flushes.delete(fn);
}

/** flushThreadLogs runs every registered flush (the actor runtime, at a stop). */
export function flushThreadLogs(): void {
  for (const f of flushes) f();
}
