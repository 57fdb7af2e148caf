import { createLogger, type LoggerConfig } from '../../src/log/index.js';
import { setPlainLoads } from '../../src/mvcc/kv-columns.js';
import { mallocHugePages } from '../../src/server/huge-pages.js';
import { startActor } from '../../src/runtime/worker.js';
import { collectGarbageSoon, collectIdleGarbageSoon } from '../../src/runtime/gc.js';
import { type RaftMsg, type RaftNodeConfig, readPointFields, readPointRegion } from './messages.js';
import { RaftNode } from './node.js';
import { SharedCell } from '../../src/runtime/shared-cell.js';

/**
 * The Raft node actor's shell: it gives a RaftNode (node.ts) its endpoint, logger, clocks and
 * timers, and reports ready to the supervisor once the node has recovered. The node's units —
 * the loop, apply (state-machine.ts), read index (read-index.ts), snapshots (snapshots.ts) —
 * take all of these as dependencies, so a test can run several members in one process.
 */
const ctx = startActor<RaftMsg, RaftNodeConfig>();
// A restore builds its columns and arenas where the allocator gives huge pages, if it does
// (src/mvcc/kv-columns.ts plainLoads).
setPlainLoads(mallocHugePages() === 'on');
const log = createLogger(ctx.logConfig as LoggerConfig).child({ component: 'raft' });
const readPointBuffer = ctx.shared[readPointRegion];
const node = new RaftNode({
  config: ctx.config,
  ep: ctx.ep,
  log,
  nowMs: () => performance.now(),
  collectGarbage: (delayMs) => collectGarbageSoon(delayMs),
  collectIdleGarbage: () => collectIdleGarbageSoon(),
  wallMs: () => Date.now(),
  every: (ms, fn) => {
    const t = setInterval(fn, ms);
    return () => clearInterval(t);
  },
  defer: (fn) => setImmediate(fn),
  bootNonce: (Math.random() * 0x7fffffff) | 0,
  ...(readPointBuffer === undefined ? {}
    : { readPoint: new SharedCell(readPointBuffer, readPointFields) }),
  removed: () => {
    // etcd stops a removed member (exit status 0). A signal to this process runs the
    // gateway's graceful stop: requests in flight end, the WAL is closed cleanly.
    setTimeout(() => process.kill(process.pid, 'SIGTERM'), 100);
  },
});
ctx.ep.onMessage((msg, token) => node.handle(msg, token));
ctx.ep.memoryReporter = () => node.memory();
ctx.onStop(() => node.stop());

node.boot().then(() => ctx.ready(), (e: unknown) => {
  throw e instanceof Error ? e : new Error(String(e));
});
