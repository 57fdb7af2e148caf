import { createServer, type Server, type Socket } from 'node:net';
import {
  peerBatchBytesMax, peerDialBackoffMsMax, peerHandshakeTimeoutMs, peerIdleTimeoutMs,
  peerProbeIntervalMs,
  peerQueueMessagesMax, peerRemotesMax, peerSnapshotBytesMax, peerSnapshotChunkBytes,
} from '../../src/constants.js';
import type { Member } from '../../src/cluster/membership.js';
import {
  BoundedQueue, checkHandshake, type Handshake, type HandshakeReply, nextBackoffMs,
  type RelayRequest, type RelayResponse, refusalText, type SnapAck, type SnapHeader,
  type StreamFrame, wireVersion,
} from '../../src/cluster/wire.js';
import { createLogger, type LoggerConfig } from '../../src/log/index.js';
// The types module, not the index: this thread runs no Raft core.
import { type Message as RaftMessage, MsgApp, MsgSnap } from '../../src/raft/types.js';
import { unpack } from '../../src/runtime/codec.js';
import type { ReplyToken } from '../../src/runtime/endpoint.js';
import { assertNever } from '../../src/assert.js';
import { EtcdError } from '../../src/errors.js';
import { startActor } from '../../src/runtime/worker.js';
import type { RaftMsg } from '../raft/messages.js';
import { Conn, dial as dialUrl, hostPortOf, tlsPeerServer } from './conn.js';
import type { PeerConfig, PeerMemberStats, PeerMsg } from './messages.js';

/**
 * The peer actor: this member's connections to the other members (etcd's rafthttp in
 * spirit). See src/cluster/wire.ts for the protocol.
 *
 * - One long-lived `stream` connection per member pair carries Raft messages both ways: the
 *   messages of one turn for one member leave as few frames (batched, at most
 *   peerBatchBytesMax each). The member with the lower id dials and keeps the connection up
 *   (reconnecting with backoff); the other dials only when it has something to send and no
 *   connection, and of two connections the one dialed by the lower id wins.
 * - Messages wait in a bounded queue per member while there is no connection; past
 *   peerQueueMessagesMax, or when the socket is backed up, they are dropped and counted, and
 *   the Raft node is told the member is unreachable (it then probes instead of pipelining).
 * - A snapshot (MsgSnap) travels on a `snap` connection of its own, in chunks written only as
 *   the socket drains, so heartbeats and votes never wait behind it; the Raft node learns
 *   whether it arrived (reportSnapshot).
 * - Handshakes check the cluster id and the sender: a member of another cluster or a removed
 *   member is refused with etcd's wording and a log line; a member told it was removed stops.
 *   A sender not in the member list but never removed is accepted when its handshake gives
 *   its peer URLs, and kept as a remote (etcd's AddRemote): messages to it go out on its
 *   connection or to those URLs until the membership names it (or removes it).
 * - A follower's requests for the leader (lease keep-alive, learner promotion) are relayed
 *   on the stream connection (PeerForward) and answered on it.
 */
const ctx = startActor<PeerMsg, PeerConfig>();
const cfg = ctx.config;
const log = createLogger(ctx.logConfig as LoggerConfig).child({ component: 'peer' });
const raft = ctx.ep.ref<RaftMsg, unknown>('raft');
const now = (): number => performance.now();

let selfId = 0;
let clusterId = 0;
/** members: the other members; selfMember: this one (a join is told both). */
let members = new Map<number, Member>();
let selfMember: Member | undefined;
let removed = new Set<number>();
/** remotes: senders outside the member list accepted by handshake, with their peer URLs. */
const remotes = new Map<number, Member>();

/** peerOf is where a member or a remote can be reached (undefined: neither). */
function peerOf(id: number): Member | undefined {
  return members.get(id) ?? remotes.get(id);
}

/** selfUrls are the peer URLs this member gives in its handshakes: the cluster's record of
 * it, or its --initial-advertise-peer-urls before it has learned the membership. */
function selfUrls(): string[] {
  const urls = selfMember?.peerURLs ?? [];
  return urls.length > 0 ? urls : cfg.advertisePeerUrls ?? [];
}
/** dropping: members the test-only fault hook cuts off (PeerFault). */
let dropping = new Set<number>();
/** droppingOut: members this one's messages to are dropped (PeerFault.dropOut, one way). */
let droppingOut = new Set<number>();
let listening = '';

/** Link is everything about one remote member. */
interface Link {
  id: number;
  queue: BoundedQueue<RaftMessage>;
  /** out: the stream connection this member dialed; in: the one it accepted. */
  out: Conn | undefined;
  in: Conn | undefined;
  dialing: boolean;
  dialTimer: NodeJS.Timeout | undefined;
  backoffMs: number;
  urlIndex: number;
  /** connectedAtMs: since when a stream connection has been up (undefined: none). */
  connectedAtMs: number | undefined;
  stats: { sentBytes: number; receivedBytes: number; sentFailures: number; rtt: number[] };
  /** snapshotting: a snapshot is on its way (one at a time per member). */
  snapshotting: boolean;
}

const links = new Map<number, Link>();

function linkOf(id: number): Link {
  let l = links.get(id);
  if (l === undefined) {
    l = {
      id, queue: new BoundedQueue(peerQueueMessagesMax), out: undefined, in: undefined,
      dialing: false, dialTimer: undefined, backoffMs: 0, urlIndex: 0, connectedAtMs: undefined,
      stats: { sentBytes: 0, receivedBytes: 0, sentFailures: 0, rtt: [] }, snapshotting: false,
    };
    links.set(id, l);
  }
  return l;
}

/** active is the connection to send on: the one dialed by the lower id when both exist. */
function active(l: Link): Conn | undefined {
  const preferOut = selfId < l.id;
  const first = preferOut ? l.out : l.in;
  const second = preferOut ? l.in : l.out;
  if (first !== undefined && !first.closed) return first;
  if (second !== undefined && !second.closed) return second;
  return undefined;
}

// ---- Reports to the Raft node, gathered per turn ----

let unreachable = new Set<number>();
let snapReports: { id: number; failed: boolean }[] = [];
let reportScheduled = false;

function report(): void {
  if (reportScheduled) return;
  reportScheduled = true;
  setImmediate(() => {
    reportScheduled = false;
    if (unreachable.size === 0 && snapReports.length === 0) return;
    raft.sendUnbounded({
      type: 'RaftReport', unreachable: [...unreachable], snapshots: snapReports,
    });
    unreachable = new Set();
    snapReports = [];
  });
}

function markUnreachable(id: number): void {
  unreachable.add(id);
  report();
}

// ---- Sending ----

let flushScheduled = false;

function scheduleFlush(): void {
  if (flushScheduled) return;
  flushScheduled = true;
  setImmediate(flushAll);
}

function flushAll(): void {
  flushScheduled = false;
  for (const l of links.values()) flushLink(l);
}

function flushLink(l: Link): void {
  if (l.queue.length === 0) return;
  if (dropping.has(l.id) || droppingOut.has(l.id)) {
    l.queue.clear();
    return;
  }
  const c = active(l);
  if (c === undefined) {
    dial(l);
    return;
  }
  if (c.backlog > peerBatchBytesMax * 4) {
    // The member does not read as fast as we write: drop rather than buffer without bound.
    l.queue.clear();
    l.stats.sentFailures++;
    markUnreachable(l.id);
    return;
  }
  // Heartbeats, votes and answers go first, so they never wait behind this turn's appends;
  // when the socket is already backed up, appends are dropped (Raft probes and resends them)
  // and the small messages still go (etcd keeps appends on a stream of their own).
  const all = l.queue.takeAll();
  const msgs = all.filter((m) => m.type !== MsgApp);
  const appends = all.filter((m) => m.type === MsgApp);
  if (appends.length > 0 && c.backlog > peerBatchBytesMax) {
    l.queue.dropped += appends.length;
    markUnreachable(l.id);
  } else {
    msgs.push(...appends);
  }
  let batch: RaftMessage[] = [];
  let bytes = 0;
  const flush = () => {
    if (batch.length === 0) return;
    const before = c.sentBytes;
    c.sendValue({ m: batch } satisfies StreamFrame);
    l.stats.sentBytes += c.sentBytes - before;
    batch = [];
    bytes = 0;
  };
  for (const m of msgs) {
    batch.push(m);
    for (const e of m.entries) bytes += e.data.length + 32;
    bytes += 64;
    if (bytes >= peerBatchBytesMax) flush();
  }
  flush();
}

function send(m: RaftMessage): void {
  if (m.to === selfId || peerOf(m.to) === undefined) return;
  const l = linkOf(m.to);
  if (m.type === MsgSnap) {
    if (droppingOut.has(m.to)) return;
    void sendSnapshot(l, m);
    return;
  }
  if (!l.queue.push(m)) markUnreachable(l.id);
}

// ---- Dialing ----

function dialable(l: Link): boolean {
  return peerOf(l.id) !== undefined && !dropping.has(l.id) && selfId !== 0 &&
    !removed.has(selfId);
}

/** dial opens the stream connection to a member, with backoff between failures. */
function dial(l: Link): void {
  if (l.dialing || l.dialTimer !== undefined || !dialable(l)) return;
  if (active(l) !== undefined) return;
  l.dialing = true;
  const m = peerOf(l.id)!;
  const url = m.peerURLs[l.urlIndex % m.peerURLs.length]!;
  openConn(url, {
    v: wireVersion, kind: 'stream', cluster: clusterId, from: selfId, to: l.id, urls: selfUrls(),
  })
    .then((c) => {
      l.dialing = false;
      l.backoffMs = 0;
      attachStream(l, c, 'out');
    }, (e: unknown) => {
      l.dialing = false;
      l.urlIndex++;
      l.stats.sentFailures++;
      // What waited for this member is lost; Raft will send again.
      l.queue.clear();
      markUnreachable(l.id);
      l.backoffMs = nextBackoffMs(l.backoffMs, cfg.heartbeatIntervalMs, peerDialBackoffMsMax);
      log.debug({ remote: hex(l.id), url, err: String(e), retryMs: l.backoffMs },
        'cannot reach member');
      l.dialTimer = setTimeout(() => {
        l.dialTimer = undefined;
        if (keepsUp(l) || l.queue.length > 0) dial(l);
      }, l.backoffMs);
    });
}

/** keepsUp: this member keeps the stream to l up on its own (it has the lower id). */
function keepsUp(l: Link): boolean {
  return selfId !== 0 && selfId < l.id;
}

/** openConn connects to a URL and completes a handshake; rejects on refusal. */
async function openConn(url: string, hs: Handshake): Promise<Conn> {
  const { socket, ready } = dialUrl(url, cfg.tls);
  const c = new Conn(socket);
  await new Promise<void>((resolve, reject) => {
    socket.once(ready, () => resolve());
    c.onClose((why) => reject(new Error(why)));
  });
  c.sendValue(hs);
  const reply = await c.nextValue<HandshakeReply>(peerHandshakeTimeoutMs);
  if (!reply.ok) {
    c.close('refused');
    onRefused(hs.to, reply);
    throw new Error(`refused: ${reply.error ?? 'unknown'}`);
  }
  return c;
}

function onRefused(to: number, reply: HandshakeReply): void {
  if (reply.code === 'REMOVED') {
    if (!removed.has(selfId)) {
      log.error({ remote: hex(to) }, refusalText.REMOVED);
      raft.sendUnbounded({ type: 'RaftReport', unreachable: [], snapshots: [], removed: true });
    }
    removed.add(selfId);
  } else if (reply.code === 'CLUSTER_MISMATCH') {
    log.error({ remote: hex(to), local: hex(clusterId) },
      'request sent was ignored due to cluster ID mismatch');
  } else {
    log.warn({ remote: hex(to), code: reply.code, err: reply.error }, 'connection refused');
  }
}

// ---- Stream connections ----

function attachStream(l: Link, c: Conn, dir: 'in' | 'out'): void {
  const old = l[dir];
  l[dir] = c;
  // Closed after the replacement is in place, so its close hook sees a live connection and
  // does not dial again.
  if (old !== undefined && old !== c) old.close('replaced');
  // Of two connections of one pair, both sides keep the one the lower id dialed.
  const other = dir === 'out' ? l.in : l.out;
  if (other !== undefined && !other.closed) {
    const keep = active(l);
    if (keep === c) other.close('duplicate connection');
    else {
      l[dir] = undefined;
      c.close('duplicate connection');
      return;
    }
  }
  if (l.connectedAtMs === undefined) {
    l.connectedAtMs = now();
    log.info({ remote: hex(l.id), dir }, 'peer connection established');
  }
  c.frames((body) => onStreamFrame(l, c, body));
  c.onClose((why) => {
    if (l[dir] === c) l[dir] = undefined;
    l.stats.receivedBytes += c.receivedBytes;
    failRelays(c);
    if (active(l) === undefined) {
      if (l.connectedAtMs !== undefined) {
        log.info({ remote: hex(l.id), why }, 'peer connection lost');
      }
      l.connectedAtMs = undefined;
      markUnreachable(l.id);
      if (keepsUp(l) && dialable(l)) dial(l);
    }
  });
  scheduleFlush();
}

function onStreamFrame(l: Link, c: Conn, body: Uint8Array): void {
  if (dropping.has(l.id)) return;
  let f: StreamFrame;
  try {
    f = unpack<StreamFrame>(body);
  } catch {
    c.close('undecodable frame');
    return;
  }
  if (typeof f !== 'object' || f === null) return;
  if (Array.isArray(f.m) && f.m.length > 0) {
    const msgs = (f.m as RaftMessage[]).filter((m) =>
      typeof m === 'object' && m !== null && m.to === selfId && m.from === l.id);
    if (msgs.length > 0) raft.sendUnbounded({ type: 'RaftStep', msgs });
  }
  if (Array.isArray(f.q)) for (const q of f.q) serveRelay(c, q);
  if (Array.isArray(f.r)) for (const r of f.r) finishRelay(r);
  if (typeof f.p === 'number') c.sendValue({ P: f.p } satisfies StreamFrame);
  if (typeof f.P === 'number') {
    const rtt = (now() - f.P) / 1000;
    if (rtt >= 0 && l.stats.rtt.length < 10_000) l.stats.rtt.push(rtt);
  }
}

// ---- Relayed requests (PeerForward) ----

/** relayable lists what another member may ask of this one's actors. */
const relayable: Record<string, readonly string[]> = {
  raft: ['RaftMemberPromote', 'RaftAlarm'],
  lease: ['LeaseKeepAlive', 'LeaseTimeToLive'],
};

let nextRelayId = 1;
const relays = new Map<number, { token: ReplyToken; conn: Conn; deadlineMs: number }>();

function forward(to: number, target: string, msg: RelayRequest['msg'], token: ReplyToken): void {
  const l = peerOf(to) !== undefined && !dropping.has(to) ? linkOf(to) : undefined;
  const c = l === undefined ? undefined : active(l);
  if (c === undefined) {
    if (l !== undefined) dial(l);
    ctx.ep.replyError(token, new EtcdError('TIMEOUT_CONNECTION_LOST'));
    return;
  }
  const id = nextRelayId++;
  relays.set(id, { token, conn: c, deadlineMs: now() + 10_000 });
  c.sendValue({ q: [{ id, target, msg }] } satisfies StreamFrame);
}

function serveRelay(c: Conn, q: RelayRequest): void {
  if (typeof q !== 'object' || q === null || typeof q.id !== 'number') return;
  const allowed = relayable[q.target];
  if (allowed === undefined || typeof q.msg?.type !== 'string' || !allowed.includes(q.msg.type)) {
    c.sendValue({ r: [{ id: q.id, err: { code: 'INTERNAL', message: 'not relayable' } }] });
    return;
  }
  ctx.ep.ref<{ type: string }, unknown>(q.target).ask(q.msg).then((ok) => {
    c.sendValue({ r: [{ id: q.id, ok }] } satisfies StreamFrame);
  }, (e: unknown) => {
    const err = e as { code?: string; message?: string };
    c.sendValue({
      r: [{ id: q.id, err: { code: err.code ?? 'INTERNAL', message: err.message ?? String(e) } }],
    } satisfies StreamFrame);
  });
}

function finishRelay(r: RelayResponse): void {
  if (typeof r !== 'object' || r === null) return;
  const w = relays.get(r.id);
  if (w === undefined) return;
  relays.delete(r.id);
  if (r.err !== undefined) ctx.ep.replyError(w.token, r.err);
  else ctx.ep.reply(w.token, r.ok);
}

function failRelays(c: Conn): void {
  for (const [id, w] of relays) {
    if (w.conn !== c) continue;
    relays.delete(id);
    ctx.ep.replyError(w.token, new EtcdError('TIMEOUT_CONNECTION_LOST'));
  }
}

// ---- Snapshots ----

/** sendSnapshot carries one MsgSnap on a connection of its own, chunk by chunk as the socket
 * drains, and reports to the Raft node whether the member took it. */
async function sendSnapshot(l: Link, m: RaftMessage): Promise<void> {
  if (l.snapshotting || dropping.has(l.id)) {
    snapReports.push({ id: l.id, failed: true });
    report();
    return;
  }
  l.snapshotting = true;
  const data = m.snapshot!.data;
  const member = peerOf(l.id);
  if (member === undefined) {
    snapReports.push({ id: l.id, failed: true });
    report();
    return;
  }
  const url = member.peerURLs[l.urlIndex % member.peerURLs.length]!;
  let failed = true;
  let c: Conn | undefined;
  const t0 = now();
  try {
    c = await openConn(url, {
      v: wireVersion, kind: 'snap', cluster: clusterId, from: selfId, to: l.id, urls: selfUrls(),
    });
    const header: SnapHeader = {
      msg: { ...m, snapshot: { ...m.snapshot!, data: new Uint8Array(0) } }, bytes: data.length,
    };
    c.sendValue(header);
    for (let off = 0; off < data.length; off += peerSnapshotChunkBytes) {
      if (!c.sendRaw(data.subarray(off, off + peerSnapshotChunkBytes))) await c.drained();
      if (c.closed) throw new Error('connection closed while sending');
    }
    const ack = await c.nextValue<SnapAck>(60_000);
    failed = !ack.ok;
    l.stats.sentBytes += c.sentBytes;
    log.info({
      remote: hex(l.id), index: m.snapshot!.metadata.index, bytes: data.length,
      ms: Math.round(now() - t0), ok: ack.ok,
    }, 'sent database snapshot');
  } catch (e) {
    l.stats.sentFailures++;
    log.warn({ remote: hex(l.id), err: String(e) }, 'failed to send database snapshot');
  } finally {
    c?.close('done');
    l.snapshotting = false;
    snapReports.push({ id: l.id, failed });
    report();
  }
}

/** receiveSnapshot reads one snapshot from a snap connection and hands it to the Raft node. */
function receiveSnapshot(c: Conn, from: number): void {
  let header: SnapHeader | undefined;
  let data: Uint8Array | undefined;
  let got = 0;
  c.frames((body) => {
    if (header === undefined) {
      try {
        header = unpack<SnapHeader>(body);
      } catch {
        c.close('undecodable snapshot header');
        return;
      }
      if (typeof header?.bytes !== 'number' || !Number.isSafeInteger(header.bytes) ||
        header.bytes < 0 || header.bytes > peerSnapshotBytesMax) {
        c.close('bad snapshot header');
        return;
      }
      data = new Uint8Array(header.bytes);
    } else {
      if (got + body.length > data!.length) {
        c.close('snapshot longer than announced');
        return;
      }
      data!.set(body, got);
      got += body.length;
    }
    if (got < data!.length) return;
    const msg = header.msg as RaftMessage;
    if (typeof msg !== 'object' || msg === null || msg.type !== MsgSnap || msg.to !== selfId ||
      msg.from !== from || typeof msg.snapshot !== 'object' || msg.snapshot === null) {
      c.sendValue({ ok: false, error: 'bad snapshot message' } satisfies SnapAck);
      c.close('bad snapshot message');
      return;
    }
    msg.snapshot.data = data!;
    log.info({ from: hex(from), index: msg.snapshot.metadata?.index, bytes: data!.length },
      'received database snapshot');
    raft.sendUnbounded({ type: 'RaftStep', msgs: [msg] });
    c.sendValue({ ok: true } satisfies SnapAck);
  });
}

// ---- Accepting ----

function accept(socket: Socket): void {
  const c = new Conn(socket);
  c.nextValue<unknown>(peerHandshakeTimeoutMs).then((h) => {
    // Until the Raft node has said who this member is (PeerMembers, right after boot), there
    // is nothing to check against: a refusal now would wrongly say "cluster ID mismatch" (or
    // answer a join with no members). Close; the dialer tries again.
    if (selfId === 0) {
      c.close('not ready: membership not known yet');
      return;
    }
    const refusal = checkHandshake(h, {
      selfId, clusterId,
      isMember: (id) => members.has(id),
      isRemoved: (id) => removed.has(id),
      canAddRemote: (id) => remotes.has(id) || remotes.size < peerRemotesMax,
    });
    const hs = h as Handshake;
    if (refusal === undefined && hs.kind !== 'join' && dropping.has(hs.from)) {
      c.close('dropped by the fault hook');
      return;
    }
    if (refusal !== undefined) {
      logRefusal(refusal, hs, socket.remoteAddress);
      const reply: HandshakeReply = { ok: false, code: refusal, error: refusalText[refusal] };
      c.sendValue(reply);
      socket.end();
      return;
    }
    if (hs.kind === 'join') {
      const all = [...members.values(), ...(selfMember === undefined ? [] : [selfMember])];
      c.sendValue({ ok: true, cluster: clusterId, members: all } satisfies HandshakeReply);
      socket.end();
      return;
    }
    if (!members.has(hs.from)) addRemote(hs.from, hs.urls!);
    c.sendValue({ ok: true } satisfies HandshakeReply);
    if (hs.kind === 'snap') receiveSnapshot(c, hs.from);
    else attachStream(linkOf(hs.from), c, 'in');
  }, () => {
    c.close('no handshake');
  });
}

function logRefusal(code: string, hs: Handshake, addr: string | undefined): void {
  const fields = { remote: addr, from: hex(hs?.from ?? 0), cluster: hex(hs?.cluster ?? 0) };
  if (code === 'CLUSTER_MISMATCH') {
    log.warn({ ...fields, local: hex(clusterId) }, 'request cluster ID mismatch');
  } else if (code === 'REMOVED') {
    log.warn(fields, 'rejected stream from remote peer because it was removed');
  } else {
    log.warn({ ...fields, code }, 'rejected peer connection');
  }
}

let server: Server | undefined;

async function listen(): Promise<void> {
  for (const u of cfg.listenPeerUrls) {
    const { host, port } = hostPortOf(u);
    const s = u.startsWith('https:') && cfg.tls !== undefined ? tlsPeerServer(cfg.tls, accept)
      : createServer({ noDelay: true }, accept);
    try {
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        // exclusive: a second process must not share this port (no cluster-module sharing).
        s.listen({ host, port, exclusive: true }, () => resolve());
      });
    } catch (e) {
      const why = `cannot listen for peers on ${u}: ${(e as Error).message}`;
      if (cfg.required) throw new Error(why);
      log.warn({ url: u }, `${why}; a single member needs no peer port, going on without it`);
      continue;
    }
    const addr = s.address();
    const actual = typeof addr === 'object' && addr !== null ? addr.port : port;
    listening = `${new URL(u).protocol}//${host.includes(':') ? `[${host}]` : host}:${actual}`;
    log.info({ url: listening }, 'listening for peers');
    server = s;
    return;
  }
}

// ---- Membership ----

/** addRemote keeps (or updates) an accepted sender outside the member list. */
function addRemote(id: number, urls: string[]): void {
  const known = remotes.get(id);
  if (known !== undefined && known.peerURLs.join(',') === urls.join(',')) return;
  remotes.set(id, { id, name: '', peerURLs: [...urls], clientURLs: [], isLearner: false });
  log.info({ remote: hex(id), urls }, 'added remote peer (not in the member list yet)');
}

function setMembers(next: Member[], nextRemoved: number[], self: number, cluster: number): void {
  selfId = self;
  clusterId = cluster;
  selfMember = next.find((m) => m.id === self);
  members = new Map(next.filter((m) => m.id !== self).map((m) => [m.id, m]));
  removed = new Set(nextRemoved);
  for (const id of remotes.keys()) {
    if (members.has(id) || removed.has(id)) remotes.delete(id);
  }
  for (const [id, l] of links) {
    if (members.has(id) || remotes.has(id)) continue;
    l.out?.close('member removed');
    l.in?.close('member removed');
    if (l.dialTimer !== undefined) clearTimeout(l.dialTimer);
    links.delete(id);
  }
  for (const id of members.keys()) {
    const l = linkOf(id);
    if (keepsUp(l)) dial(l);
  }
}

// ---- Probes ----

const probeTimer = setInterval(() => {
  const t = now();
  for (const l of links.values()) {
    // Both sides probe every interval: a stream that has heard nothing for a while is dead
    // even if TCP has not noticed (a peer frozen or cut off without a reset). Close it; the
    // member with the lower id dials again.
    for (const c of [l.out, l.in]) {
      if (c !== undefined && !c.closed && t - c.lastReceivedMs > peerIdleTimeoutMs) {
        c.close('no traffic');
      }
    }
    active(l)?.sendValue({ p: t } satisfies StreamFrame);
  }
  for (const [id, w] of relays) {
    if (w.deadlineMs > t) continue;
    relays.delete(id);
    ctx.ep.replyError(w.token, new EtcdError('TIMEOUT'));
  }
}, peerProbeIntervalMs);
probeTimer.unref();

function stats(): Record<string, PeerMemberStats> {
  const out: Record<string, PeerMemberStats> = {};
  for (const l of links.values()) {
    const c = active(l);
    out[String(l.id)] = {
      sentBytes: l.stats.sentBytes, receivedBytes: l.stats.receivedBytes +
        (l.in?.receivedBytes ?? 0) + (l.out?.receivedBytes ?? 0),
      sentFailures: l.stats.sentFailures, rttSeconds: l.stats.rtt, queued: l.queue.length,
      dropped: l.queue.dropped, connected: c !== undefined,
    };
    l.stats.rtt = [];
  }
  return out;
}

ctx.ep.onMessage((msg, token) => {
  switch (msg.type) {
    case 'PeerSend':
      for (const m of msg.msgs) send(m);
      scheduleFlush();
      return;
    case 'PeerMembers':
      setMembers(msg.members, msg.removed, msg.selfId, msg.clusterId);
      return;
    case 'PeerForward':
      if (token !== undefined) forward(msg.to, msg.target, msg.msg, token);
      return;
    case 'PeerConnectivity': {
      if (token === undefined) return;
      const t = now();
      const connectedMs: Record<string, number> = {};
      for (const l of links.values()) {
        if (l.connectedAtMs !== undefined && active(l) !== undefined) {
          connectedMs[String(l.id)] = t - l.connectedAtMs;
        }
      }
      ctx.ep.reply(token, { connectedMs });
      return;
    }
    case 'PeerStats':
      if (token !== undefined) ctx.ep.reply(token, { members: stats(), listening });
      return;
    case 'PeerFault':
      if (token === undefined) return;
      if (!cfg.faults) {
        ctx.ep.replyError(token, { code: 'INTERNAL', message: 'fault hook not enabled' });
        return;
      }
      dropping = new Set(msg.drop);
      droppingOut = new Set(msg.dropOut ?? []);
      for (const id of dropping) {
        const l = links.get(id);
        l?.out?.close('fault hook');
        l?.in?.close('fault hook');
        l?.queue.clear();
      }
      for (const l of links.values()) if (!dropping.has(l.id) && keepsUp(l)) dial(l);
      log.warn({ drop: [...dropping].map(hex), dropOut: [...droppingOut].map(hex) },
        'fault hook: dropping traffic');
      ctx.ep.reply(token, { drop: [...dropping], dropOut: [...droppingOut] });
      return;
    default:
      assertNever(msg);
  }
});

function hex(id: number): string {
  return id.toString(16);
}

ctx.onStop(() => {
  clearInterval(probeTimer);
  server?.close();
  for (const l of links.values()) {
    if (l.dialTimer !== undefined) clearTimeout(l.dialTimer);
    l.out?.close('stopping');
    l.in?.close('stopping');
  }
});

listen().then(() => ctx.ready(), (e: unknown) => {
  throw e instanceof Error ? e : new Error(String(e));
});
