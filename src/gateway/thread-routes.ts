import type { Routes } from './routes.js';

/**
 * thread-routes: `GET /debug/threads`, the process id and each named thread's OS thread id
 * ({"pid":…,"threads":[{"name":"gateway","tid":…},{"name":"raft","tid":…},…]}). Every thread
 * of a Node process is called `node` in /proc; with this list, /proc/<pid>/task/<tid>/stat
 * tells which actor spends the CPU (bench/run.ts's per-thread table). It asks no actor: the
 * supervisor keeps the ids each thread reported when it started, so the answer is cheap and
 * comes even while the actors restart.
 */

/** registerThreadRoutes serves GET /debug/threads. */
export function registerThreadRoutes(r: Routes): void {
  r.server.get('/debug/threads', async (_req, res) => {
    const threads = await r.deps.system.threads();
    res.header('content-type', 'application/json')
      .send(JSON.stringify({ pid: process.pid, threads }));
  });
}
