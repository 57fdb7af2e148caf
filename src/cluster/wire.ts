/**
 * wire: the peer transport's protocol between members, as pure code (the peer actor does the
 * sockets). A connection starts with a handshake; then both sides exchange frames.
 *
 * Framing: every frame is a 4-byte big-endian length, then that many bytes of msgpack.
 *
 *   00 00 00 2a | 2a bytes of msgpack
 *
 * Handshake: the dialing member sends a Handshake frame; the accepting member answers one
 * HandshakeReply frame and, if it refused, closes. Three kinds of connection:
 *
 * - `stream`: the long-lived connection of a member pair. Frames are StreamFrames in both
 *   directions: the Raft messages of one turn, relayed requests and their responses, and
 *   round-trip probes. One per pair: when both members dialed at once, the connection dialed
 *   by the lower id wins and the other is closed by both sides.
 * - `snap`: one snapshot, leader to follower: a SnapHeader frame (the MsgSnap without its
 *   data, and the data's size), then chunk frames of raw bytes, then one SnapAck frame back.
 * - `join`: a member starting with --initial-cluster-state=existing asks for the cluster id
 *   and member list (etcd: GET /members); no cluster id is known yet, so none is checked.
 *
 * A stream or snap handshake carries the dialer's peer URLs (`urls`, etcd's X-PeerURLs): an
 * accepting member that does not know the dialer yet (and never removed it) answers it there.
 *
 * The refusals use etcd's rafthttp wording: "cluster ID mismatch", "the member has been
 * permanently removed from the cluster", "error sender not found", "to field mismatch".
 */
import { peerHandshakeUrlBytesMax, peerHandshakeUrlsMax } from '../constants.js';
import type { Member } from './membership.js';

/** wireVersion is this protocol's version; a handshake of another is refused. */
export const wireVersion = 1;

/** frameHeaderBytes: the length prefix of every frame. */
export const frameHeaderBytes = 4;

/** ConnectionKind names what a connection carries. */
export type ConnectionKind = 'stream' | 'snap' | 'join';

/** Handshake is the first frame of every connection. */
export interface Handshake {
  v: number;
  kind: ConnectionKind;
  /** cluster: the dialer's cluster id (0 for join). */
  cluster: number;
  /** from: the dialer's member id (0 for join); to: the member it means to reach. */
  from: number;
  to: number;
  /** urls: the dialer's peer URLs (etcd's X-PeerURLs header). Optional on the wire: a
   * handshake without them is still accepted from a known member. With them, a sender this
   * member does not know yet (and never removed) is accepted and answered at these URLs. */
  urls?: string[];
}

/** RefusalCode is a stable code for each refusal. */
export type RefusalCode =
  'VERSION' | 'CLUSTER_MISMATCH' | 'REMOVED' | 'SENDER_NOT_FOUND' | 'TO_MISMATCH' | 'BAD';

/** HandshakeReply answers a handshake. A join is answered with the cluster. */
export interface HandshakeReply {
  ok: boolean;
  code?: RefusalCode;
  error?: string;
  cluster?: number;
  members?: Member[];
}

/** RelayRequest asks an actor of the receiving member (PeerForward). */
export interface RelayRequest {
  id: number;
  target: string;
  msg: { type: string; [field: string]: unknown };
}

/** RelayResponse answers a RelayRequest with the actor's reply or its error. */
export interface RelayResponse {
  id: number;
  ok?: unknown;
  err?: { code: string; message: string };
}

/** StreamFrame is one frame of a stream connection; every field is optional. */
export interface StreamFrame {
  /** m: Raft messages (etcd-raft's Message, msgpack). */
  m?: unknown[];
  q?: RelayRequest[];
  r?: RelayResponse[];
  /** p: a probe's send time (sender's clock); P: the echo of a probe's time. */
  p?: number;
  P?: number;
}

/** SnapHeader opens a snap connection: the MsgSnap (snapshot data stripped) and its size. */
export interface SnapHeader {
  msg: unknown;
  bytes: number;
}

/** SnapAck closes a snap connection: the receiver handed the snapshot to its Raft node. */
export interface SnapAck {
  ok: boolean;
  error?: string;
}

/** refusalText is etcd's wording for each refusal. */
export const refusalText: Readonly<Record<RefusalCode, string>> = {
  VERSION: 'incompatible version',
  CLUSTER_MISMATCH: 'cluster ID mismatch',
  REMOVED: 'the member has been permanently removed from the cluster',
  SENDER_NOT_FOUND: 'error sender not found',
  TO_MISMATCH: 'to field mismatch',
  BAD: 'malformed handshake',
};

/** LocalView is what the accepting member checks a handshake against. */
export interface LocalView {
  selfId: number;
  clusterId: number;
  isMember(id: number): boolean;
  isRemoved(id: number): boolean;
  /** canAddRemote: a sender outside the member list may be accepted (a remote); absent:
   * always. */
  canAddRemote?(id: number): boolean;
}

/** isHandshake checks a decoded first frame's shape (it comes from the network). */
export function isHandshake(x: unknown): x is Handshake {
  if (typeof x !== 'object' || x === null) return false;
  const h = x as Record<string, unknown>;
  return typeof h['v'] === 'number' &&
    (h['kind'] === 'stream' || h['kind'] === 'snap' || h['kind'] === 'join') &&
    Number.isSafeInteger(h['cluster']) && Number.isSafeInteger(h['from']) &&
    Number.isSafeInteger(h['to']) && (h['urls'] === undefined || isPeerUrls(h['urls']));
}

/** isPeerUrls checks a handshake's peer URLs: a short list of http(s) URLs. */
function isPeerUrls(x: unknown): x is string[] {
  return Array.isArray(x) && x.length <= peerHandshakeUrlsMax && x.every((u) =>
    typeof u === 'string' && u.length <= peerHandshakeUrlBytesMax && isHttpUrl(u));
}

function isHttpUrl(u: string): boolean {
  try {
    const p = new URL(u).protocol;
    return p === 'http:' || p === 'https:';
  } catch {
    return false;
  }
}

/**
 * checkHandshake decides whether to accept a connection, in etcd's order: version, cluster
 * id, then the sender, then the receiver. A join is accepted from anyone. A removed sender
 * is refused for good. A sender this member does not know is accepted when it says where it
 * can be reached (its peer URLs) and the view has room for it (canAddRemote): this member
 * may simply not have applied its addition yet — or, restarted from a WAL written before it
 * learned the membership, know no one at all, and then only the leader reaching it can
 * teach it (etcd's pipeline handler takes such a sender's messages and adds it as a remote
 * from its X-PeerURLs). Without URLs, or with no room, it is refused as not found.
 */
export function checkHandshake(x: unknown, local: LocalView): RefusalCode | undefined {
  if (!isHandshake(x)) return 'BAD';
  if (x.v !== wireVersion) return 'VERSION';
  if (x.kind === 'join') return undefined;
  if (x.cluster !== local.clusterId) return 'CLUSTER_MISMATCH';
  if (local.isRemoved(x.from)) return 'REMOVED';
  if (!local.isMember(x.from) && (x.from === 0 || x.from === local.selfId ||
    x.urls === undefined || x.urls.length === 0 || local.canAddRemote?.(x.from) === false)) {
    return 'SENDER_NOT_FOUND';
  }
  if (x.to !== local.selfId) return 'TO_MISMATCH';
  return undefined;
}

/** FrameTooLargeError: a length prefix above the limit (a bug or not our protocol). */
export class FrameTooLargeError extends Error {
  readonly code = 'FRAME_TOO_LARGE';
  constructor(bytes: number, max: number) {
    super(`peer frame of ${bytes} bytes exceeds ${max}`);
  }
}

/** frameHeader returns the length prefix for a body of `bytes`. */
export function frameHeader(bytes: number): Uint8Array {
  const h = new Uint8Array(frameHeaderBytes);
  new DataView(h.buffer).setUint32(0, bytes);
  return h;
}

/**
 * FrameDecoder cuts a byte stream into frame bodies. Chunks are kept as they arrive and
 * joined only for a frame that spans several, so a large snapshot chunk is copied once.
 */
export class FrameDecoder {
  private chunks: Uint8Array[] = [];
  private buffered = 0;

  constructor(private readonly maxFrameBytes: number) {}

  /** push adds bytes and returns every frame body completed by them. Throws
   * FrameTooLargeError on a length above the limit. */
  push(chunk: Uint8Array): Uint8Array[] {
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    }
    const out: Uint8Array[] = [];
    for (;;) {
      if (this.buffered < frameHeaderBytes) return out;
      const len = this.peekLength();
      if (len > this.maxFrameBytes) throw new FrameTooLargeError(len, this.maxFrameBytes);
      if (this.buffered < frameHeaderBytes + len) return out;
      this.take(frameHeaderBytes);
      out.push(this.take(len));
    }
  }

  /** bufferedBytes is what waits for the rest of a frame. */
  get bufferedBytes(): number {
    return this.buffered;
  }

  private peekLength(): number {
    const head = this.chunks[0]!.length >= frameHeaderBytes ? this.chunks[0]!
      : this.join(frameHeaderBytes);
    return new DataView(head.buffer, head.byteOffset, frameHeaderBytes).getUint32(0);
  }

  /** join merges the first chunks until the first holds at least n bytes. */
  private join(n: number): Uint8Array {
    let size = 0;
    let k = 0;
    while (size < n) size += this.chunks[k++]!.length;
    const merged = new Uint8Array(size);
    let off = 0;
    for (let i = 0; i < k; i++) {
      merged.set(this.chunks[i]!, off);
      off += this.chunks[i]!.length;
    }
    this.chunks.splice(0, k, merged);
    return merged;
  }

  private take(n: number): Uint8Array {
    if (n === 0) return new Uint8Array(0);
    const first = this.chunks[0]!.length >= n ? this.chunks[0]! : this.join(n);
    const body = first.subarray(0, n);
    if (first.length === n) this.chunks.shift();
    else this.chunks[0] = first.subarray(n);
    this.buffered -= n;
    return body;
  }
}

/**
 * BoundedQueue is one member's outgoing Raft messages: at most `max`; past it a message is
 * dropped and counted (Raft retransmits what matters; a dead member must not grow memory).
 */
export class BoundedQueue<T> {
  private items: T[] = [];
  dropped = 0;

  constructor(private readonly max: number) {}

  /** push queues an item, or drops it when full (returns false). */
  push(x: T): boolean {
    if (this.items.length >= this.max) {
      this.dropped++;
      return false;
    }
    this.items.push(x);
    return true;
  }

  /** takeAll empties the queue. */
  takeAll(): T[] {
    const out = this.items;
    this.items = [];
    return out;
  }

  /** clear drops everything queued, counting it. */
  clear(): void {
    this.dropped += this.items.length;
    this.items = [];
  }

  get length(): number {
    return this.items.length;
  }
}

/** nextBackoffMs doubles a reconnect delay up to max (starting from min). */
export function nextBackoffMs(currentMs: number, minMs: number, maxMs: number): number {
  return Math.min(maxMs, Math.max(minMs, currentMs * 2));
}
