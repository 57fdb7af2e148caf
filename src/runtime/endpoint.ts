import { assert } from '../assert.js';
import type { ErrorCode } from '../errors.js';
import {
  askSweepIntervalMs, askTimeoutMs, batchMessagesMax, mailboxDepthMax,
} from '../constants.js';
import { type Envelope, EnvelopeKind, packBatch, unpackBatch } from './codec.js';

/**
 * Endpoint is one thread's side of the actor runtime: it owns the connections to every
 * other actor it talks to (its targets), batches outgoing messages per target, matches
 * replies to asks, and dispatches incoming messages to the thread's handler. The gateway
 * (main thread) and every actor worker each run exactly one Endpoint.
 *
 * Batching: `send`/`ask` only append to the target's outbox; the outbox is packed and posted
 * once per turn of the event loop (setImmediate), so a burst of 1,000 requests arriving in
 * one poll phase crosses the thread boundary as one message.
 */

/** Message is anything an actor accepts: a discriminated union on `type`. */
export interface Message {
  type: string;
}

/** Transport carries packed batches to one target actor; MessagePort is the real one, tests may
 * plug an in-process one. */
export interface Transport {
  post(batch: Uint8Array): void;
  onBatch(cb: (batch: Uint8Array) => void): void;
  close(): void;
}

/** ReplyToken identifies an ask so that any actor holding it can answer it: the asker's
 * name and its correlation id. Tokens travel inside messages (forwarding). */
export interface ReplyToken {
  from: string;
  id: number;
}

/** RemoteError is how a ReplyError arrives at the asker: a stable code and a message. */
export class RemoteError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
    this.name = 'RemoteError';
  }
}

/** MailboxFullError: the target already has mailboxDepthMax messages outstanding. Its code is
 * src/errors.ts's (answered 429 "etcdserver: too many requests"), also across threads. */
export class MailboxFullError extends Error {
  readonly code: ErrorCode = 'TOO_MANY_REQUESTS';
  constructor(target: string) {
    super(`etcdserver: too many requests (mailbox of ${target} is full)`);
  }
}

/** AskTimeoutError: no reply within the deadline (code TIMEOUT: 503 "request timed out"). */
export class AskTimeoutError extends Error {
  readonly code: ErrorCode = 'TIMEOUT';
  constructor(target: string, type: string) {
    super(`etcdserver: request timed out (${type} to ${target})`);
  }
}

/** ActorGoneError: the target actor's connection closed (its thread crashed or stopped);
 * code RESTARTING: 503 "server is restarting", or — once the server is stopping — STOPPED:
 * 503 "etcdserver: server stopped", etcd's answer during a stop. */
export class ActorGoneError extends Error {
  readonly code: ErrorCode;
  constructor(target: string, stopping = false) {
    super(stopping ? 'etcdserver: server stopped' : `etcdserver: actor ${target} is restarting`);
    this.code = stopping ? 'STOPPED' : 'RESTARTING';
  }
}

/** ReplyOf maps a message's type to its reply type through a protocol's Replies map. */
export type ReplyOf<R, T extends string> = T extends keyof R ? R[T] : never;

/** Handler receives each incoming message; `token` is set for asks. */
export type Handler<In extends Message> = (msg: In, token: ReplyToken | undefined) => void;

interface Pending {
  resolve(v: unknown): void;
  reject(e: Error): void;
  target: string;
  type: string;
  deadlineMs: number;
}

interface Target {
  name: string;
  transport: Transport;
  outbox: Envelope[];
  /** outstanding counts asks to this target not yet answered (queued or sent). */
  outstanding: number;
  /** sendsQueued counts fire-and-forget messages still in the outbox. */
  sendsQueued: number;
}

/** EndpointStats are this thread's runtime counters, reported to /metrics. */
export interface EndpointStats {
  messagesIn: number;
  messagesOut: number;
  batchesIn: number;
  batchesOut: number;
  handleSecondsTotal: number;
  /** depth is the messages this endpoint has queued or outstanding, per target actor. */
  depth: Record<string, number>;
  /** heapUsedBytes / heapTotalBytes: this thread's V8 heap (filled in when reported). */
  heapUsedBytes?: number;
  heapTotalBytes?: number;
}

/** Endpoint: see the file comment. */
export class Endpoint<In extends Message = Message> {
  readonly name: string;
  private readonly targets = new Map<string, Target>();
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private flushScheduled = false;
  private handler: Handler<In> | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  readonly stats: EndpointStats = {
    messagesIn: 0, messagesOut: 0, batchesIn: 0, batchesOut: 0, handleSecondsTotal: 0, depth: {},
  };

  constructor(name: string) {
    this.name = name;
  }

  /** connect adds a target actor reachable through transport. */
  connect(target: string, transport: Transport): void {
    const p: Target = { name: target, transport, outbox: [], outstanding: 0, sendsQueued: 0 };
    this.targets.set(target, p);
    transport.onBatch((buf) => this.receive(buf));
  }

  /** onMessage installs the handler for incoming sends and asks. */
  onMessage(handler: Handler<In>): void {
    this.handler = handler;
  }

  /** ref returns a typed handle to a target actor: In is what it accepts, R maps asks to
   * replies. */
  ref<TIn extends Message, R>(target: string): ActorRef<TIn, R> {
    return new ActorRef<TIn, R>(this as unknown as Endpoint<Message>, target);
  }

  /** hasActor reports whether a target actor is connected. */
  hasActor(target: string): boolean {
    return this.targets.has(target);
  }

  /** depth is what `target`'s mailbox holds from us: queued plus unanswered asks. */
  depth(target: string): number {
    const p = this.targets.get(target);
    return p === undefined ? 0 : p.sendsQueued + p.outstanding;
  }

  /** post queues an envelope for a target and schedules the flush. Internal to the runtime. */
  post(target: string, env: Envelope, bounded: boolean): void {
    const p = this.targets.get(target);
    if (p === undefined) throw new ActorGoneError(target);
    if (bounded && p.sendsQueued + p.outstanding >= mailboxDepthMax) {
      throw new MailboxFullError(target);
    }
    if (env[0] === EnvelopeKind.Send) p.sendsQueued++;
    else if (env[0] === EnvelopeKind.Ask && env[2] === this.name) p.outstanding++;
    p.outbox.push(env);
    if (p.outbox.length >= batchMessagesMax) this.flushTarget(p);
    else if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flush);
    }
  }

  /** ask sends an Ask and returns the reply. Rejects with RemoteError, AskTimeoutError,
   * MailboxFullError (synchronously thrown) or ActorGoneError. */
  ask(target: string, msg: Message, timeoutMs = askTimeoutMs): Promise<unknown> {
    const id = this.nextId++;
    this.post(target, [EnvelopeKind.Ask, id, this.name, msg], true);
    this.ensureSweep();
    return new Promise((resolve, reject) => {
      const deadlineMs = now() + timeoutMs;
      this.pending.set(id, { resolve, reject, target, type: msg.type, deadlineMs });
    });
  }

  /** reply answers an ask identified by token (possibly one forwarded by another actor). */
  reply(token: ReplyToken, body: unknown): void {
    this.post(token.from, [EnvelopeKind.Reply, token.id, this.name, body], false);
  }

  /** replyError fails an ask with a stable code and message. */
  replyError(token: ReplyToken, err: { code?: string; message: string }): void {
    const body = { code: err.code ?? 'INTERNAL', message: err.message };
    this.post(token.from, [EnvelopeKind.ReplyError, token.id, this.name, body], false);
  }

  /** forward sends msg to target as an Ask whose reply goes to the token's asker. */
  forward(target: string, msg: Message, token: ReplyToken): void {
    this.post(target, [EnvelopeKind.Ask, token.id, token.from, msg], false);
  }

  /** flushNow posts every outbox immediately (used before blocking work such as fsync). */
  flushNow(): void {
    this.flush();
  }

  /** stopping: the server is stopping; asks that fail now fail with STOPPED. */
  stopping = false;

  /** failActor rejects every ask outstanding to a target actor (its thread died). */
  failActor(target: string): void {
    for (const [id, p] of this.pending) {
      if (p.target === target) {
        this.pending.delete(id);
        p.reject(new ActorGoneError(target, this.stopping));
      }
    }
    const p = this.targets.get(target);
    if (p !== undefined) {
      p.outstanding = 0;
      p.sendsQueued = 0;
      p.outbox.length = 0;
    }
  }

  /** close drops every connection and rejects every outstanding ask. */
  close(): void {
    for (const name of this.targets.keys()) this.failActor(name);
    for (const p of this.targets.values()) p.transport.close();
    this.targets.clear();
    if (this.sweepTimer !== undefined) clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
  }

  /** snapshotStats fills in per-target depth and returns the counters. */
  snapshotStats(): EndpointStats {
    for (const p of this.targets.values()) this.stats.depth[p.name] = p.sendsQueued + p.outstanding;
    return this.stats;
  }

  private readonly flush = (): void => {
    this.flushScheduled = false;
    for (const p of this.targets.values()) if (p.outbox.length > 0) this.flushTarget(p);
  };

  private flushTarget(p: Target): void {
    const batch = p.outbox;
    p.outbox = [];
    p.sendsQueued = 0;
    this.stats.messagesOut += batch.length;
    this.stats.batchesOut++;
    p.transport.post(packBatch(batch));
  }

  private receive(buf: Uint8Array): void {
    const t0 = performance.now();
    const batch = unpackBatch(buf);
    this.stats.batchesIn++;
    this.stats.messagesIn += batch.length;
    for (let i = 0; i < batch.length; i++) {
      const [kind, id, from, body] = batch[i]!;
      switch (kind) {
        case EnvelopeKind.Send:
          this.dispatch(body as In, undefined);
          break;
        case EnvelopeKind.Ask:
          this.dispatch(body as In, { from, id });
          break;
        case EnvelopeKind.Reply:
        case EnvelopeKind.ReplyError: {
          // Correlation ids are this endpoint's own, issued in order: a reply names one.
          assert(id < this.nextId, 'runtime: a reply names an ask never sent', id);
          const p = this.pending.get(id);
          if (p === undefined) break; // timed out already; the late reply is dropped
          this.pending.delete(id);
          const target = this.targets.get(p.target);
          // Depth accounting: every pending ask to a target is counted in its `outstanding`.
          assert(target === undefined || target.outstanding > 0,
            'runtime: a pending ask was not counted in its target\'s depth', p.target);
          if (target !== undefined) target.outstanding--;
          if (kind === EnvelopeKind.Reply) p.resolve(body);
          else {
            const e = body as { code: string; message: string };
            p.reject(new RemoteError(e.code, e.message));
          }
          break;
        }
        default:
          throw new Error(`runtime: unknown envelope kind ${String(kind)} from ${from}`);
      }
    }
    this.stats.handleSecondsTotal += (performance.now() - t0) / 1000;
  }

  private dispatch(msg: In, token: ReplyToken | undefined): void {
    if (this.handler === undefined) throw new Error(`runtime: ${this.name} has no handler`);
    this.handler(msg, token);
  }

  private ensureSweep(): void {
    if (this.sweepTimer !== undefined) return;
    // One coarse timer for all deadlines instead of a timer per ask (askSweepIntervalMs).
    this.sweepTimer = setInterval(() => this.sweep(), askSweepIntervalMs);
    this.sweepTimer.unref();
  }

  private sweep(): void {
    const t = now();
    for (const [id, p] of this.pending) {
      if (p.deadlineMs > t) continue;
      this.pending.delete(id);
      const target = this.targets.get(p.target);
      assert(target === undefined || target.outstanding > 0,
        'runtime: a pending ask was not counted in its target\'s depth', p.target);
      if (target !== undefined) target.outstanding--;
      p.reject(new AskTimeoutError(p.target, p.type));
    }
  }
}

/** ActorRef is a typed handle on a target actor. In: accepted messages; R: reply per type. */
export class ActorRef<In extends Message, R> {
  constructor(
    private readonly ep: Endpoint<Message>,
    readonly target: string,
  ) {}

  /** send posts a fire-and-forget message; throws MailboxFullError when the mailbox is full. */
  send(msg: In): void {
    this.ep.post(this.target, [EnvelopeKind.Send, 0, '', msg], true);
  }

  /** sendUnbounded posts without the depth check: for internal pipeline traffic whose volume
   * is already bounded upstream (e.g. Raft → shard changes, bounded by admitted proposals). */
  sendUnbounded(msg: In): void {
    this.ep.post(this.target, [EnvelopeKind.Send, 0, '', msg], false);
  }

  /** ask sends a request and resolves with its typed reply. */
  ask<M extends In>(msg: M, timeoutMs?: number): Promise<ReplyOf<R, M['type']>> {
    return this.ep.ask(this.target, msg, timeoutMs) as Promise<ReplyOf<R, M['type']>>;
  }

  /** forward sends msg as an ask whose reply goes straight to the token's asker. */
  forward(msg: In, token: ReplyToken): void {
    this.ep.forward(this.target, msg, token);
  }

  /** depth: messages queued or outstanding to this target from this thread. */
  get depth(): number {
    return this.ep.depth(this.target);
  }
}

function now(): number {
  return performance.now();
}

/** portTransport adapts a worker_threads MessagePort (transferring each batch's buffer). */
export function portTransport(port: {
  postMessage(v: unknown, transfer?: ArrayBuffer[]): void;
  on(ev: 'message', cb: (v: unknown) => void): void;
  close(): void;
  unref?(): void;
}): Transport {
  return {
    post(batch) {
      port.postMessage(batch, [batch.buffer as ArrayBuffer]);
    },
    onBatch(cb) {
      port.on('message', (v) => cb(v as Uint8Array));
    },
    close() {
      port.close();
    },
  };
}
