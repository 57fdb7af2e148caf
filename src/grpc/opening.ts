import { AuthorityRewriter } from './authority.js';

/**
 * opening: watches the first bytes of a gRPC client connection to decide whether grpc-js may
 * take the bare socket. Pure: bytes in, a decision and bytes out.
 *
 * Why: etcdctl 3.4 sends an `:authority` nghttp2 refuses (src/grpc/authority.ts), so a
 * connection whose authority needs fixing must pass through an AuthorityRewriter, a JS stream
 * in front of the socket. Node's HTTP/2 serves such a stream through its JS socket wrapper —
 * one JS write per frame, each its own syscall — which costs the gateway 20–50 µs of CPU a
 * call more than a bare socket, whose bytes nghttp2 reads and writes natively
 * (docs/performance.md, session 33). A connection whose first request has an authority Node
 * accepts needs no rewriting (a client keeps one authority per connection; the rewriter
 * itself stops looking then), so it can have the bare socket — once the first request has
 * been seen.
 *
 * The catch: grpc-go (etcdctl and Go clients) sends no request until the server's SETTINGS
 * frame has arrived, and grpc-js only sends its SETTINGS once it has the connection. So the
 * opening answers the client's preface with a SETTINGS frame of its own (empty: every setting
 * at its default, which is what the client assumes until a SETTINGS frame says otherwise),
 * reads until it has seen both the client's acknowledgement of it and the first complete
 * HEADERS frame, and removes that acknowledgement from the bytes it hands on: the HTTP/2
 * server then sends its own SETTINGS and gets its own acknowledgement, and never learns of
 * the first pair. The client sees two SETTINGS frames from the server, which RFC 9113 §6.5
 * allows (only the first must come first).
 *
 * Decisions:
 * - `bare`: the first HEADERS needs no rewriting; the bytes go to the HTTP/2 server as they
 *   came (less the acknowledgement), and the rest of the connection is native.
 * - `http1`: the connection does not open with HTTP/2's preface (no SETTINGS was sent): an
 *   HTTP/1.x client, as etcd's client port serves them beside gRPC (`/metrics`, `/health`,
 *   the `/v3` JSON gateway, asked by `etcdctl check datascale`, Prometheus, curl). The gateway
 *   passes it to the member's HTTP listener; the bytes read so far go first.
 * - `rewrite`: the first HEADERS had its authority fixed, or the opening could not tell (a
 *   header block in CONTINUATION frames, more than grpcOpeningBytesMax before a decision);
 *   the bytes so far went through `rewriter`, which goes on with the rest. A client that has
 *   not acknowledged the opening's SETTINGS by then (which RFC 9113 §6.5.3 says it must do at
 *   once) will have the HTTP/2 server close the connection when the late acknowledgement
 *   arrives.
 */

/** clientPreface is HTTP/2's client connection preface (RFC 9113 §3.4). */
const clientPreface = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const frameHeaderBytes = 9;
const SETTINGS = 0x4;
const HEADERS = 0x1;
const ACK = 0x1;
const END_HEADERS = 0x4;

/** serverSettings is the empty SETTINGS frame the opening sends: length 0, type SETTINGS,
 * no flags, stream 0. */
export const serverSettings: Uint8Array = Uint8Array.of(0, 0, 0, SETTINGS, 0, 0, 0, 0, 0);

/** Opened is the opening's decision: how to hand the connection to the HTTP/2 server, and
 * the bytes it has read so far, to be handed on first. */
export type Opened =
  | { kind: 'bare' | 'http1'; first: Uint8Array[] }
  | { kind: 'rewrite'; first: Uint8Array[]; rewriter: AuthorityRewriter };

/** Step is what one push gives: bytes to send the client now (the SETTINGS frame, once), and
 * the decision once there is one. */
export interface Step {
  send?: Uint8Array;
  opened?: Opened;
}

/** ConnectionOpening follows one client connection's first bytes (see the file comment). */
export class ConnectionOpening {
  /** kept: the bytes read so far, less the acknowledgement of our SETTINGS. */
  private readonly kept: Uint8Array[] = [];
  private keptBytes = 0;
  /** pending: the start of a frame not yet complete. */
  private pending = new Uint8Array(0);
  private prefaceSeen = false;
  private settingsSent = false;
  private acked = false;
  private headers: 'none' | 'complete' | 'continued' = 'none';
  private opened: Opened | undefined;

  /** bytesMax bounds what the opening holds before it decides (openingBytesMax). */
  constructor(private readonly bytesMax: number) {}

  /** push takes the next bytes the client sent. After a decision it must not be called. */
  push(chunk: Uint8Array): Step {
    if (this.opened !== undefined) throw new Error('ConnectionOpening: already decided');
    let b = this.pending.length > 0 ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = new Uint8Array(0);
    const step: Step = {};
    if (!this.prefaceSeen) {
      if (b.length < clientPreface.length) {
        if (!clientPreface.subarray(0, b.length).equals(b)) return this.notHttp2(step, b);
        this.pending = b.slice();
        return step;
      }
      if (!clientPreface.equals(b.subarray(0, clientPreface.length))) {
        return this.notHttp2(step, b);
      }
      this.prefaceSeen = true;
      this.settingsSent = true;
      step.send = serverSettings;
      this.keep(b.subarray(0, clientPreface.length));
      b = b.subarray(clientPreface.length);
    }
    while (b.length >= frameHeaderBytes) {
      const length = (b[0]! << 16) | (b[1]! << 8) | b[2]!;
      if (b.length < frameHeaderBytes + length) break;
      const type = b[3]!;
      const flags = b[4]!;
      const frame = b.subarray(0, frameHeaderBytes + length);
      b = b.subarray(frameHeaderBytes + length);
      if (type === SETTINGS && (flags & ACK) !== 0 && !this.acked) {
        this.acked = true; // ours: the only SETTINGS the client has been sent so far
        continue;
      }
      if (type === HEADERS && this.headers === 'none') {
        this.headers = (flags & END_HEADERS) !== 0 ? 'complete' : 'continued';
      }
      this.keep(frame);
    }
    if (b.length > 0) this.pending = b.slice();
    if (this.acked && this.headers !== 'none') return this.decide(step, this.rest());
    if (this.keptBytes + this.pending.length > this.bytesMax) return this.decide(step, this.rest());
    return step;
  }

  /** rest is every byte kept, the incomplete frame last. */
  private rest(): Uint8Array[] {
    const out = [...this.kept];
    if (this.pending.length > 0) out.push(this.pending);
    return out;
  }

  private keep(b: Uint8Array): void {
    this.kept.push(b.slice());
    this.keptBytes += b.length;
  }

  /** notHttp2: the client did not open with HTTP/2's preface: an HTTP/1.x client (or none
   * the HTTP server will understand, which answers it as it answers any such bytes). */
  private notHttp2(step: Step, b: Uint8Array): Step {
    this.opened = { kind: 'http1', first: [b] };
    step.opened = this.opened;
    return step;
  }

  /** decide runs the bytes through a fresh rewriter: if the first request's headers went by
   * complete and unchanged, the connection may be bare. */
  private decide(step: Step, bytes: Uint8Array[]): Step {
    const rewriter = new AuthorityRewriter();
    const first: Uint8Array[] = [];
    for (const b of bytes) first.push(...rewriter.push(b));
    const bare = this.settingsSent && this.acked && this.headers === 'complete' &&
      rewriter.sawHeaders && !rewriter.fixed;
    this.opened = bare ? { kind: 'bare', first: bytes } : { kind: 'rewrite', first, rewriter };
    step.opened = this.opened;
    return step;
  }
}
