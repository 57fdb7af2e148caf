import { readFileSync } from 'node:fs';
import { connect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect, createServer as tlsCreateServer, type Server } from 'node:tls';
import type { PeerTls } from './messages.js';
import { peerFrameBytesMax } from '../../src/constants.js';
import { FrameDecoder, frameHeader } from '../../src/cluster/wire.js';
import { pack, unpack } from '../../src/runtime/codec.js';

/**
 * conn: one framed connection to another member (a TCP socket with the wire's framing). It
 * counts bytes for the metrics and turns the byte stream into decoded frames.
 */
export class Conn {
  private readonly decoder = new FrameDecoder(peerFrameBytesMax);
  /** sentBytes / receivedBytes count every byte written and read (frames and headers). */
  sentBytes = 0;
  receivedBytes = 0;
  closed = false;
  private onFrame: ((body: Uint8Array) => void) | undefined;
  /** held: frames that arrived while no handler was installed (right after a handshake). */
  private held: Uint8Array[] = [];
  private readonly closeHooks: ((why: string) => void)[] = [];

  /** lastReceivedMs: when bytes last arrived (performance.now), for the idle check. */
  lastReceivedMs = performance.now();

  constructor(readonly socket: Socket) {
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 1_000);
    socket.on('data', (chunk: Buffer) => {
      this.receivedBytes += chunk.length;
      this.lastReceivedMs = performance.now();
      let bodies: Uint8Array[];
      try {
        bodies = this.decoder.push(chunk);
      } catch (e) {
        this.close(`bad frame: ${String(e)}`);
        return;
      }
      for (const b of bodies) {
        if (this.closed) return;
        if (this.onFrame === undefined) this.held.push(b);
        else this.onFrame(b);
      }
    });
    socket.on('error', (e) => this.close(e.message));
    socket.on('close', () => this.close('connection closed'));
  }

  /** frames installs the handler of decoded frame bodies (raw bytes). */
  frames(fn: (body: Uint8Array) => void): void {
    this.onFrame = fn;
    while (this.held.length > 0 && this.onFrame === fn && !this.closed) fn(this.held.shift()!);
  }

  /** onClose registers a hook run once when the connection closes. */
  onClose(fn: (why: string) => void): void {
    if (this.closed) fn('connection closed');
    else this.closeHooks.push(fn);
  }

  /** sendValue writes one msgpack frame; returns false when the socket is backed up. */
  sendValue(v: unknown): boolean {
    return this.sendRaw(pack(v));
  }

  /** sendRaw writes one frame of raw bytes. */
  sendRaw(body: Uint8Array): boolean {
    if (this.closed) return false;
    this.sentBytes += body.length + 4;
    // Header and body leave in one write (writev), not two syscalls.
    this.socket.cork();
    this.socket.write(frameHeader(body.length));
    const ok = this.socket.write(body);
    this.socket.uncork();
    return ok;
  }

  /** backlog is what the socket has not written yet (bytes). */
  get backlog(): number {
    return this.socket.writableLength;
  }

  /** close destroys the socket and runs the close hooks once. */
  close(why: string): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.destroy();
    for (const h of this.closeHooks.splice(0)) h(why);
  }

  /** drained resolves when the socket's buffer has drained (or it closed). */
  drained(): Promise<void> {
    if (this.closed || this.socket.writableLength === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.socket.off('drain', done);
        resolve();
      };
      this.socket.on('drain', done);
      this.onClose(() => done());
    });
  }

  /** nextFrame resolves with the next frame's decoded value (handshakes, snapshot acks), or
   * rejects when the connection closes first or timeoutMs passes. */
  nextValue<T>(timeoutMs: number): Promise<T> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.close('timed out waiting for the other member');
        reject(new Error('timed out waiting for the other member'));
      }, timeoutMs);
      this.onClose((why) => {
        clearTimeout(timer);
        reject(new Error(why));
      });
      this.frames((body) => {
        clearTimeout(timer);
        this.onFrame = undefined;
        try {
          resolve(unpack<T>(body));
        } catch (e) {
          this.close('undecodable frame');
          reject(e instanceof Error ? e : new Error(String(e)));
        }
      });
    });
  }
}

/** hostPortOf reads a peer URL's host and port (etcd's default port 2380 when absent). */
export function hostPortOf(url: string): { host: string; port: number } {
  const u = new URL(url);
  const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
  return { host, port: u.port === '' ? 2380 : Number(u.port) };
}

/** dial connects to a peer URL: TLS for https (with the PeerTls files, read now, so a rotated
 * certificate serves the next connection), plain TCP otherwise. `ready` is the event after
 * which the connection may carry frames. */
export function dial(url: string, t: PeerTls | undefined):
  { socket: Socket; ready: 'connect' | 'secureConnect' } {
  const { host, port } = hostPortOf(url);
  if (!url.startsWith('https:')) return { socket: connect({ host, port }), ready: 'connect' };
  const socket = tlsConnect({
    host, port, ...(isIP(host) === 0 ? { servername: host } : {}),
    ...(t === undefined ? {} : { cert: readFileSync(t.certFile), key: readFileSync(t.keyFile) }),
    ...(t?.caFile === undefined ? {} : { ca: readFileSync(t.caFile) }),
    rejectUnauthorized: t?.skipVerify !== true,
  });
  return { socket, ready: 'secureConnect' };
}

/** tlsPeerServer is the listener of an https peer URL: with clientCertAuth a peer without a
 * certificate from the CA is refused at the handshake. */
export function tlsPeerServer(t: PeerTls, accept: (s: Socket) => void): Server {
  const s = tlsCreateServer({
    key: readFileSync(t.keyFile), cert: readFileSync(t.certFile),
    ...(t.caFile === undefined ? {} : { ca: readFileSync(t.caFile) }),
    requestCert: t.clientCertAuth, rejectUnauthorized: t.clientCertAuth,
  }, (sock) => {
    sock.setNoDelay(true);
    accept(sock);
  });
  s.on('tlsClientError', () => undefined); // refused at the handshake
  return s;
}
