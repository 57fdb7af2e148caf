import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { errnoText, StartupError } from './errors.js';

/**
 * lock: one member per data directory. Two processes writing one WAL destroy it, so the first
 * thing a member does with its data directory is lock it, and a second process exits at once
 * naming the directory and the holder's pid.
 *
 * etcd takes an flock(2). Node has none, and the npm packages that add it compile a native
 * add-on at install time (which `npm ci` may skip). A pid file needs a liveness check that
 * pids cannot give reliably: pids are reused, and a container sees another container's pid
 * as some unrelated process of its own. So the lock is a **Unix socket bound at
 * `<data-dir>/myetcd.lock`**, which the kernel ties to the holder's life as it does an flock:
 *
 * - taking it is `bind()`, which is atomic and fails (EADDRINUSE) while the socket file exists;
 * - the holder is alive exactly when `connect()` succeeds: the kernel closes the socket when
 *   the process dies, kill -9 included, and then connect fails with ECONNREFUSED. That holds
 *   across pid namespaces too (containers sharing a volume), since a socket file is found
 *   through the file system, not the network namespace;
 * - a live holder answers a connection with one JSON line naming its pid, which is how the
 *   second process can name it;
 * - a dead holder leaves its socket file behind (nothing unlinks it on kill -9). Taking over
 *   such a stale lock is a remove-then-bind, and two processes doing that at once could each
 *   remove the other's fresh socket. So a takeover runs under a second lock of the same kind,
 *   `myetcd.lock.break`: under it, the lock is checked dead again, removed, and bound; a
 *   newcomer that binds in between makes our bind fail and we lose cleanly. A break lock left
 *   by a process killed mid-takeover is taken over the same way (`.break.break`, a few levels).
 *
 * Releasing closes the socket; libuv unlinks the path before it closes the descriptor, so a
 * release can never remove a socket bound after ours. The socket is unref'd: holding the lock
 * does not keep the process alive.
 *
 * A Unix socket path is limited to about 107 bytes. For a longer data directory path the
 * socket is reached through `/proc/self/fd/<fd of the directory>/myetcd.lock` (Linux).
 */

/** lockFileName is the lock socket's name inside the data directory. */
export const lockFileName = 'myetcd.lock';
/** lockBreakDepthMax bounds the nested break locks a takeover may need (each level exists only
 * if a process was killed during the takeover of the level below). */
export const lockBreakDepthMax = 3;
/** lockAttemptsMax bounds the retries when the lock changes hands while we look at it. */
export const lockAttemptsMax = 20;
/** lockProbeTimeoutMs bounds the wait for a live holder to name itself. */
export const lockProbeTimeoutMs = 5_000;
/** lockRetryDelayMs is the pause before looking again at a lock that is being taken over. */
export const lockRetryDelayMs = 25;
/** lockConnectionsMax bounds the connections a holder serves at once. */
export const lockConnectionsMax = 8;
/** socketPathBytesMax is the longest socket path we bind directly (sun_path is 108 bytes). */
export const socketPathBytesMax = 100;

/** LockHolder is what a live holder says about itself. */
export interface LockHolder {
  pid?: number;
  name?: string;
}

/** DirLock is a held data-directory lock. */
export interface DirLock {
  /** path is the lock socket's path. */
  readonly path: string;
  /** release gives the lock up (idempotent); the directory may then be locked by another. */
  release(): Promise<void>;
}

/** LockHeldError: a live process holds the lock. */
export class LockHeldError extends StartupError {
  readonly holder: LockHolder;
  constructor(dir: string, holder: LockHolder) {
    const who = holder.pid !== undefined ? `pid ${holder.pid}` : 'a running process';
    super('data-dir', dir, `locked by another member (${who}${holder.name !== undefined
      ? `, --name ${holder.name}` : ''}); a data directory serves one member at a time`);
    this.holder = holder;
  }
}

type Probe =
  | { state: 'alive'; holder: LockHolder }
  | { state: 'dead' }
  | { state: 'gone' };

/**
 * lockDataDir takes the data directory's lock, which must exist as a directory. Throws
 * LockHeldError while another live process holds it, StartupError for anything else
 * (e.g. the directory is not writable). `me` is what we tell a process that finds it held.
 */
export async function lockDataDir(dir: string, me: LockHolder = { pid: process.pid }):
  Promise<DirLock> {
  const dirFd = fs.openSync(dir, 'r');
  const via = (name: string): string => {
    const direct = path.join(dir, name);
    if (Buffer.byteLength(direct) <= socketPathBytesMax) return direct;
    return `/proc/self/fd/${dirFd}/${name}`;
  };
  try {
    const server = await acquire(via, lockFileName, 0, me, dir);
    let released = false;
    return {
      path: path.join(dir, lockFileName),
      release: async () => {
        if (released) return;
        released = true;
        await closeServer(server);
        fs.closeSync(dirFd);
      },
    };
  } catch (e) {
    fs.closeSync(dirFd);
    throw e;
  }
}

/** acquire binds `name` (see the file comment), taking over a dead holder's socket under the
 * break lock `name.break`. */
async function acquire(via: (name: string) => string, name: string, depth: number,
  me: LockHolder, dir: string): Promise<net.Server> {
  const p = via(name);
  for (let attempt = 0; attempt < lockAttemptsMax; attempt++) {
    const bound = await bind(p, me, dir);
    if (bound !== undefined) return bound;
    const probe = await probeLock(p);
    if (probe.state === 'gone') continue;
    if (probe.state === 'alive') {
      if (depth === 0) throw new LockHeldError(dir, probe.holder);
      // A live break lock: someone is taking the lock over right now. Look again shortly.
      throw new BreakBusy();
    }
    if (depth >= lockBreakDepthMax) {
      throw new StartupError('data-dir', dir, `cannot take over the stale lock ${p}: too ` +
        'many stale break locks; remove the myetcd.lock* files if no member runs here');
    }
    let breaker: net.Server;
    try {
      breaker = await acquire(via, name + '.break', depth + 1, me, dir);
    } catch (e) {
      if (!(e instanceof BreakBusy)) throw e;
      await new Promise((r) => setTimeout(r, lockRetryDelayMs));
      continue;
    }
    try {
      // Under the break lock nobody else removes or replaces `p`: check again, then take it.
      const again = await probeLock(p);
      if (again.state === 'alive') {
        if (depth === 0) throw new LockHeldError(dir, again.holder);
        throw new BreakBusy();
      }
      if (again.state === 'dead') {
        try {
          fs.unlinkSync(p);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
            throw new StartupError('data-dir', dir,
              `cannot remove the stale lock ${p}: ${errnoText(e)}`);
          }
        }
      }
      const taken = await bind(p, me, dir);
      if (taken !== undefined) return taken;
      // A newcomer bound it between our unlink and bind: it holds the lock; look again.
    } finally {
      await closeServer(breaker);
    }
  }
  throw new StartupError('data-dir', dir,
    `the lock ${p} kept changing hands; try again`);
}

/** BreakBusy: a break lock is held by a live process (a takeover in progress elsewhere). */
class BreakBusy extends Error {}

/** bind listens on the socket path; undefined when the path exists (EADDRINUSE). */
function bind(p: string, me: LockHolder, dir: string): Promise<net.Server | undefined> {
  return new Promise((resolve, reject) => {
    const server = net.createServer((socket) => {
      socket.on('error', () => undefined);
      socket.end(JSON.stringify(me) + '\n');
    });
    server.maxConnections = lockConnectionsMax;
    server.once('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EADDRINUSE') resolve(undefined);
      else reject(new StartupError('data-dir', dir, `cannot lock: ${errnoText(e)}`));
    });
    server.listen({ path: p }, () => {
      server.unref();
      resolve(server);
    });
  });
}

/** probeLock connects to a lock socket: alive (with what the holder says), dead or gone. */
export function probeLock(p: string): Promise<Probe> {
  return new Promise((resolve) => {
    const socket = net.connect({ path: p });
    let text = '';
    let connected = false;
    const timer = setTimeout(() => finish({ state: 'alive', holder: {} }), lockProbeTimeoutMs);
    const finish = (r: Probe) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(r);
    };
    socket.setEncoding('utf8');
    socket.on('connect', () => { connected = true; });
    socket.on('data', (d: string) => {
      text += d;
      if (text.length > 4_096) finish({ state: 'alive', holder: {} });
    });
    socket.on('end', () => finish({ state: 'alive', holder: parseHolder(text) }));
    socket.on('error', (e: NodeJS.ErrnoException) => {
      if (connected) finish({ state: 'alive', holder: parseHolder(text) });
      else if (e.code === 'ENOENT') finish({ state: 'gone' });
      else if (e.code === 'ECONNREFUSED' || e.code === 'ENOTSOCK') finish({ state: 'dead' });
      // EAGAIN (a full backlog), EACCES (another user's socket): someone is there.
      else finish({ state: 'alive', holder: {} });
    });
  });
}

function parseHolder(text: string): LockHolder {
  try {
    const j = JSON.parse(text.trim()) as Record<string, unknown>;
    const holder: LockHolder = {};
    if (typeof j['pid'] === 'number') holder.pid = j['pid'];
    if (typeof j['name'] === 'string') holder.name = j['name'];
    return holder;
  } catch {
    return {};
  }
}

function closeServer(server: net.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}
