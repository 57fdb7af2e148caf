import { isMainThread } from 'node:worker_threads';

/**
 * orphan-guard is preloaded into every server a test starts (`node --import`, see
 * startServer): the test process holds the write end of the server's stdin pipe, so the pipe
 * reaches end-of-file exactly when that process is gone — ended, crashed, or killed by the
 * runner's timeout, even with SIGKILL, which no handler of its own could catch. The server
 * then kills itself at once: no test server outlives its test process. Only the main thread
 * watches (a worker thread's process.stdin is not the pipe), and the pipe is unref'd so it
 * never keeps a server alive that is exiting by itself.
 */
if (isMainThread) {
  const die = (): void => {
    process.kill(process.pid, 'SIGKILL');
  };
  process.stdin.on('end', die);
  process.stdin.on('error', die);
  process.stdin.resume();
  process.stdin.unref();
}
