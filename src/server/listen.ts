import * as net from 'node:net';
import { errnoText, StartupError } from './errors.js';

/**
 * listen: exclusive listening on client (and peer) URLs.
 *
 * uWebSockets binds with SO_REUSEPORT unless told otherwise, so a second member on the same
 * host:port would silently share the port with the first, the kernel handing each connection
 * to either. Every listener of ours is therefore exclusive (uWS's LIBUS_LISTEN_EXCLUSIVE_PORT):
 * a port held by anyone, MyEtcd or another program, is an error naming the URL.
 *
 * The check comes first, before the data directory is created or locked: `reserveUrls` binds
 * every URL with a plain exclusive Node listener (which also says why a bind failed: in use,
 * permission, no such address). The reservation is held while the member starts and handed
 * over to the real server with `listenExclusive`, which closes the reservation and binds the
 * server in the same synchronous step, so the port is never left free in between except for
 * that instant (and if another process took it then, the exclusive bind fails with the same
 * one-line error rather than sharing). Port 0 is resolved at reservation time: the server binds
 * the port the reservation was given.
 *
 * Usage, for the client URLs and likewise for the peer URLs:
 *
 *   const client = await reserveUrls('listen-client-urls', config.listenClientUrls);
 *   … create and lock the data directory, start the actors …
 *   const port = await listenExclusive(server, client[0]);
 */

/** libusListenExclusivePort is uWS's LIBUS_LISTEN_EXCLUSIVE_PORT listen option (uWebSockets.js
 * is hyper-express's dependency, not ours, so its value is named here rather than imported). */
export const libusListenExclusivePort = 1;

/** Reservation is one URL bound exclusively ahead of its server. */
export interface Reservation {
  /** setting is the flag the URL came from (for error messages). */
  readonly setting: string;
  /** url is the URL as configured. */
  readonly url: string;
  /** host is the address to bind (IPv6 without brackets). */
  readonly host: string;
  /** port is the bound port (the one picked by the kernel when the URL said 0). */
  readonly port: number;
  /** release frees the port (synchronously: the descriptor is closed before it returns). */
  release(): void;
}

/** ListenApp is the part of a uWS app listenExclusive needs (hyper-express's uws_instance). */
export interface ListenApp {
  listen(host: string, port: number, options: number,
    cb: (socket: unknown) => void): unknown;
}

/** HyperExpressLike is a hyper-express Server: listen(port, host) binds its uws_instance. */
export interface HyperExpressLike {
  readonly uws_instance: unknown;
  listen(port: number, host: string): Promise<unknown>;
}

/** hostOf gives the address to bind for a URL: `[::1]` → `::1`. */
export function hostOf(url: URL): string {
  return url.hostname.replace(/^\[(.*)\]$/, '$1');
}

/** reserveUrls binds each URL exclusively (see the file comment). On any failure it releases
 * what it bound and throws a StartupError naming the setting and the URL. */
export async function reserveUrls(setting: string, urls: readonly string[]):
  Promise<Reservation[]> {
  const out: Reservation[] = [];
  try {
    for (const raw of urls) out.push(await reserve(setting, raw));
  } catch (e) {
    for (const r of out) r.release();
    throw e;
  }
  return out;
}

async function reserve(setting: string, raw: string): Promise<Reservation> {
  const url = new URL(raw);
  const host = hostOf(url);
  const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
  // A client that connects while the member starts is accepted by the reservation, which
  // serves nothing: close its connection at once (it retries, as after a refused connect)
  // rather than leave it waiting forever, and hold no socket past the handover.
  const server = net.createServer((socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e) => reject(bindError(setting, raw, e)));
    server.listen({ host, port, exclusive: true }, () => resolve());
  });
  server.unref();
  const bound = (server.address() as net.AddressInfo).port;
  let released = false;
  return {
    setting, url: raw, host, port: bound,
    release: () => {
      if (released) return;
      released = true;
      server.close();
    },
  };
}

/** bindError words a failed bind: `--listen-client-urls http://127.0.0.1:2379: address
 * already in use (EADDRINUSE); another member or program listens there`. */
export function bindError(setting: string, url: string, e: unknown): StartupError {
  const code = (e as NodeJS.ErrnoException).code;
  const hint = code === 'EADDRINUSE' ? '; another member or program listens there'
    : code === 'EACCES' ? '; ports below 1024 need privileges' : '';
  return new StartupError(setting, url, `cannot listen: ${errnoText(e)}${hint}`);
}

/**
 * listenExclusive hands a reservation over to a hyper-express server: the reservation is
 * released and the server binds the same host and port exclusively in one synchronous step.
 * Resolves with the port; throws a StartupError naming the URL if the bind fails.
 *
 * hyper-express 6.18 refuses its own `exclusive_port` option with a host other than 0.0.0.0,
 * although uWS 20.30 takes listen(host, port, options, cb); so the server's uWS app gets a
 * listen that adds LIBUS_LISTEN_EXCLUSIVE_PORT, and hyper-express's listen does the rest
 * (compiling routes, the listen socket that close() closes).
 */
export async function listenExclusive(server: HyperExpressLike, r: Reservation):
  Promise<number> {
  exclusiveApp(server.uws_instance as ListenApp);
  r.release();
  try {
    await server.listen(r.port, r.host);
  } catch {
    throw bindError(r.setting, r.url, await whyNotBindable(r.host, r.port));
  }
  return r.port;
}

/** exclusiveApp makes every listen(host, port, cb) of a uWS app exclusive. */
export function exclusiveApp(app: ListenApp): void {
  const marked = app as ListenApp & { myetcdExclusive?: boolean };
  if (marked.myetcdExclusive === true) return;
  const original = app.listen.bind(app) as (...args: unknown[]) => unknown;
  const patched = (...args: unknown[]): unknown => {
    if (typeof args[0] === 'string' && typeof args[1] === 'number' &&
      typeof args[2] === 'function') {
      return original(args[0], args[1], libusListenExclusivePort, args[2]);
    }
    if (typeof args[0] === 'number' && typeof args[1] === 'function') {
      return original(args[0], libusListenExclusivePort, args[1]);
    }
    return original(...args);
  };
  Object.defineProperty(app, 'listen', { value: patched, configurable: true, writable: true });
  Object.defineProperty(app, 'myetcdExclusive', { value: true });
}

/** whyNotBindable finds the system error behind a failed uWS bind (uWS reports none) by
 * trying the same bind with Node. */
export async function whyNotBindable(host: string, port: number): Promise<unknown> {
  const probe = net.createServer();
  return new Promise((resolve) => {
    probe.once('error', (e) => resolve(e));
    probe.listen({ host, port, exclusive: true }, () => {
      probe.close();
      resolve(new Error('the port was taken by another process while this member started'));
    });
  });
}
