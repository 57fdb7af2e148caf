import { AsyncLocalStorage } from 'node:async_hooks';
import { readFileSync } from 'node:fs';
import { type MessagePort, receiveMessageOnPort } from 'node:worker_threads';
import { assert } from '../assert.js';
import type { ErrorCode } from '../errors.js';
import {
  askSweepIntervalMs, askTimeoutMs, batchMessagesMax, mailboxDepthMax, spinIdleCoresMin,
  spinLoadWindowMs, spinSlotsMax, traceBatchParentsMax, traceOpenAsksMax,
} from '../constants.js';
import { type Envelope, EnvelopeKind, isShared, packBatch, unpackBatch } from './codec.js';
import {
  nowMs, type OpenSpan, type SpanAttributes, type TraceField, Tracer, type TraceRef,
} from './trace.js';

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
  /** post sends a batch and the bytes moved beside it (codec.ts MovedBytes), if any. */
  post(batch: Uint8Array, moved?: readonly Uint8Array[]): void;
  onBatch(cb: (batch: Uint8Array, moved?: readonly Uint8Array[]) => void): void;
  /** poll takes one waiting batch synchronously and hands it to the onBatch callback;
   * false when none is waiting (or the transport cannot poll). */
  poll?(): boolean;
  close(): void;
}

/** PackedReplies are replies to one asker's asks, packed by Endpoint.packReplies as the batch
 * the asker reads, for another actor to post (Endpoint.postPacked). */
export interface PackedReplies {
  target: string;
  bytes: Uint8Array;
  count: number;
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
  /** gcSecondsTotal: this thread's garbage-collection pauses since it started (gc-clock.ts). */
  gcSecondsTotal?: number;
  /** memoryBytes: this thread's memory by part (V8 heap, external, ArrayBuffers, and what the
   * actor's memoryReporter adds), filled in when reported. */
  memoryBytes?: Record<string, number>;
  /** spinHits / spinMisses: spins that took a batch / that ended without one (setSpin). */
  spinHits?: number;
  spinMisses?: number;
  /** spinSecondsTotal: time spent spinning. */
  spinSecondsTotal?: number;
}

/** acrossAwaits carries a traced request's context across the awaits of async code on this
 * thread. Node 20's AsyncLocalStorage turns on promise hooks the first time it runs, which
 * costs every promise something: it is first run by the first traced request, never while
 * tracing is off. acrossAwaitsLive counts the withTraceAcrossAwaits runs not settled yet:
 * while it is 0 (no traced request in flight) the lookup stays off the untraced path. */
const acrossAwaits = new AsyncLocalStorage<TraceRef[]>();
let acrossAwaitsLive = 0;
const acrossAwaitsSettled = (): void => {
  acrossAwaitsLive--;
};

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
  /** tracer records this thread's spans (src/runtime/trace.ts). */
  readonly tracer: Tracer;
  /** memoryReporter, when set, adds the actor's own memory parts (bytes) to its stats: it
   * runs at every stats report, so it must be cheap (no walk over every key). */
  memoryReporter: (() => Record<string, number>) | undefined;
  /** active: the spans the code running now continues; undefined when untraced (the rule). */
  private active: TraceRef[] | undefined;
  /** openAsks: traced asks received and not answered yet, by "from:id" (bounded). */
  private readonly openAsks = new Map<string, { span: OpenSpan; handleMs?: number }>();

  constructor(name: string, thread = name === 'gateway' ? 'main' : `myetcd-${name}`) {
    this.name = name;
    this.tracer = new Tracer(thread, name);
  }

  /** connect adds a target actor reachable through transport. */
  connect(target: string, transport: Transport): void {
    const p: Target = { name: target, transport, outbox: [], outstanding: 0, sendsQueued: 0 };
    this.targets.set(target, p);
    transport.onBatch((buf, moved) => this.receive(buf, moved));
    if (transport.poll !== undefined) this.spinPorts.push(transport);
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

  /** targetNames lists the connected target actors. */
  targetNames(): string[] {
    return [...this.targets.keys()];
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
    // Tracing off: no context is active and the envelope keeps its four elements.
    const active = this.traceContext;
    if (active !== undefined && env.length === 4 && env[0] <= EnvelopeKind.Ask) {
      env.push([nowMs(), active]);
    }
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
    const reply = new Promise((resolve, reject) => {
      const deadlineMs = now() + timeoutMs;
      this.pending.set(id, { resolve, reject, target, type: msg.type, deadlineMs });
    });
    // A thread that now awaits a reply may poll for it after this turn (setSpin).
    if (this.spinOpts !== undefined) this.scheduleSpin();
    return reply;
  }

  /** reply answers an ask identified by token (possibly one forwarded by another actor). */
  reply(token: ReplyToken, body: unknown): void {
    const env: Envelope = [EnvelopeKind.Reply, token.id, this.name, body];
    if (this.openAsks.size > 0) this.closeAsk(token, env);
    this.post(token.from, env, false);
  }

  /**
   * packReplies packs replies to asks as the batches their askers read, one per asker, for
   * another actor to post (postPacked) instead of this one: the Raft node hands a write's
   * answers to the WAL writer, which posts them the moment the write is durable. The bodies
   * must hold no MovedBytes (answers never do).
   */
  packReplies(replies: readonly [ReplyToken, unknown][]): PackedReplies[] {
    const by = new Map<string, Envelope[]>();
    for (const [token, body] of replies) {
      const env: Envelope = [EnvelopeKind.Reply, token.id, this.name, body];
      if (this.openAsks.size > 0) this.closeAsk(token, env);
      const batch = by.get(token.from);
      if (batch === undefined) by.set(token.from, [env]);
      else batch.push(env);
    }
    const out: PackedReplies[] = [];
    for (const [target, batch] of by) {
      const moved: Uint8Array[] = [];
      const bytes = packBatch(batch, moved);
      assert(moved.length === 0, 'runtime: packed replies hold moved bytes', target);
      out.push({ target, bytes, count: batch.length });
    }
    return out;
  }

  /** postPacked posts replies another actor packed (packReplies) to their asker: false when
   * this endpoint has no channel to it. The bytes are transferred: they must be their whole
   * ArrayBuffer (ownsBuffer), which the caller gives up. */
  postPacked(p: PackedReplies): boolean {
    const t = this.targets.get(p.target);
    if (t === undefined) return false;
    this.stats.messagesOut += p.count;
    this.stats.batchesOut++;
    t.transport.post(p.bytes);
    return true;
  }

  /** replyError fails an ask with a stable code and message. */
  replyError(token: ReplyToken, err: { code?: string; message: string }): void {
    const body = { code: err.code ?? 'INTERNAL', message: err.message };
    const env: Envelope = [EnvelopeKind.ReplyError, token.id, this.name, body];
    if (this.openAsks.size > 0) this.closeAsk(token, env, { error: body.code });
    this.post(token.from, env, false);
  }

  /** forward sends msg to target as an Ask whose reply goes to the token's asker. */
  forward(target: string, msg: Message, token: ReplyToken): void {
    const env: Envelope = [EnvelopeKind.Ask, token.id, token.from, msg];
    if (this.openAsks.size > 0) this.closeAsk(token, env, { forwarded: target });
    this.post(target, env, false);
  }

  /** traceContext is the spans the running code continues (undefined: untraced). Code that
   * continues a message's work later — after a timer, a batch, an fsync — keeps it and runs
   * that work under withTrace. */
  get traceContext(): TraceRef[] | undefined {
    return this.active ?? (acrossAwaitsLive > 0 ? acrossAwaits.getStore() : undefined);
  }

  /** withTraceAcrossAwaits runs async fn with refs active across its awaits too (a gateway
   * handler awaits auth checks and decoding before it asks an actor) until fn's promise
   * settles. */
  withTraceAcrossAwaits<T>(refs: readonly TraceRef[], fn: () => T): T {
    const ctx = refs.slice(0, traceBatchParentsMax);
    acrossAwaitsLive++;
    let out: T;
    try {
      out = acrossAwaits.run(ctx, () => this.withTrace(ctx, fn));
    } catch (e) {
      acrossAwaitsSettled();
      throw e;
    }
    if (out instanceof Promise) out.then(acrossAwaitsSettled, acrossAwaitsSettled);
    else acrossAwaitsSettled();
    return out;
  }

  /** withTrace runs fn with refs as the active trace context (undefined: untraced); what fn
   * posts synchronously continues those spans. */
  withTrace<T>(refs: readonly TraceRef[] | undefined, fn: () => T): T {
    const prev = this.active;
    this.active = refs === undefined || refs.length === 0 ? undefined
      : refs.slice(0, traceBatchParentsMax);
    try {
      return fn();
    } finally {
      this.active = prev;
    }
  }

  /** startSpan opens a span of this thread under refs (undefined: none, nothing is traced);
   * with an empty list, a new trace's root. */
  startSpan(name: string, refs: readonly TraceRef[] | undefined, attrs?: SpanAttributes):
    OpenSpan | undefined {
    if (refs === undefined) return undefined;
    return this.tracer.start(name, refs.slice(0, traceBatchParentsMax), attrs);
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
    this.spinPorts = [];
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

  /** spin, when set, lets this thread poll its ports for a while before it sleeps; see
   * setSpin. */
  private spinOpts: { budgetMs: number; slots: Int32Array; idle: () => boolean } | undefined;
  private spinScheduled = false;
  private spinIdleCoresMin = spinIdleCoresMin;
  /** spinPorts: the connected transports that can be polled (connect adds them). */
  private spinPorts: Transport[] = [];

  /**
   * setSpin lets this thread stay awake briefly while it awaits a reply. Waking a sleeping
   * thread costs tens to hundreds of microseconds on these machines (an idle virtual CPU
   * halts, and the hypervisor must run it again) — more than the work of a hop. After a turn,
   * a thread with an ask outstanding polls its ports for up to budgetUs; a reply that comes
   * meanwhile is taken without a sleep and a wake-up. The spinner holds one of the actor system's
   * spin slots (slots[0] counts the holders, at most spinSlotsMax): a spinning thread takes
   * a core from the others, so never more than one spins at once. Go's scheduler bounds its
   * spinning threads the same way, and spins only while a core is idle: so does this
   * (machineIdle: idleCoresMin of them; tests may give their own idle). budgetUs 0 turns
   * it off.
   */
  setSpin(budgetUs: number, slots: Int32Array,
    opts: { idleCoresMin?: number; idle?: () => boolean } = {}): void {
    this.spinIdleCoresMin = opts.idleCoresMin ?? spinIdleCoresMin;
    const idle = opts.idle ?? ((): boolean => this.machineIdle());
    this.spinOpts = budgetUs > 0 ? { budgetMs: budgetUs / 1000, slots, idle } : undefined;
  }

  private scheduleSpin(): void {
    if (this.spinScheduled) return;
    this.spinScheduled = true;
    setImmediate(this.spin);
  }

  /** spin runs in the check phase after a turn that asked, or received while a reply was
   * awaited: it flushes what the turn queued (posts made after this turn's flush ran would
   * otherwise wait out the spin), then, if a reply is still awaited and a slot is free,
   * polls (see setSpin). */
  private readonly spin = (): void => {
    this.spinScheduled = false;
    const o = this.spinOpts;
    if (o === undefined) return;
    if (this.flushScheduled) this.flush();
    if (this.pending.size === 0 || this.spinPorts.length === 0) return;
    if (!o.idle()) return;
    if (Atomics.add(o.slots, 0, 1) >= spinSlotsMax) {
      Atomics.sub(o.slots, 0, 1);
      return;
    }
    const t0 = performance.now();
    let hit = false;
    try {
      hit = this.spinPoll(t0 + o.budgetMs);
    } finally {
      Atomics.sub(o.slots, 0, 1);
    }
    const st = this.stats;
    st.spinSecondsTotal = (st.spinSecondsTotal ?? 0) + (performance.now() - t0) / 1000;
    if (hit) st.spinHits = (st.spinHits ?? 0) + 1;
    else st.spinMisses = (st.spinMisses ?? 0) + 1;
  };

  private loadWindow = {
    atMs: -Infinity, cpu: undefined as CpuTimes | undefined, spinS: 0, idle: true,
  };

  /** machineIdle: whether the machine had a core to spare over the last window — idle time
   * of all cores together, plus what this thread itself spent spinning, of at least
   * spinIdleCoresMin cores (/proc/stat, read at most once per spinLoadWindowMs). Go's
   * scheduler spins only while a processor is idle, for the same reason: on a busy machine
   * a spinner takes the core another thread needs (at 50 connections on 2 cores, spinning
   * regardless cost 10 % of the PUTs). Where /proc/stat cannot be read, it says yes. */
  private machineIdle(): boolean {
    const w = this.loadWindow;
    const t = performance.now();
    if (t - w.atMs < spinLoadWindowMs) return w.idle;
    const cpu = readCpuTimes();
    const spinS = this.stats.spinSecondsTotal ?? 0;
    const idleCores = cpu === undefined || w.cpu === undefined ? undefined
      : idleCoresBetween(w.cpu, cpu);
    const spinCores = (spinS - w.spinS) * 1000 / (t - w.atMs);
    w.idle = idleCores === undefined || idleCores + spinCores >= this.spinIdleCoresMin;
    w.atMs = t;
    w.cpu = cpu;
    w.spinS = spinS;
    return w.idle;
  }

  /** spinPoll polls every port until one yields a batch (handled at once: true) or until
   * endMs (false). */
  private spinPoll(endMs: number): boolean {
    const ports = this.spinPorts;
    for (let i = 1; ; i++) {
      for (let j = 0; j < ports.length; j++) if (ports[j]!.poll!()) return true;
      if ((i & 7) === 0 && performance.now() >= endMs) return false;
    }
  }

  private flushTarget(p: Target): void {
    const batch = p.outbox;
    p.outbox = [];
    p.sendsQueued = 0;
    this.stats.messagesOut += batch.length;
    this.stats.batchesOut++;
    const moved: Uint8Array[] = [];
    const bytes = packBatch(batch, moved);
    p.transport.post(bytes, moved.length > 0 ? moved : undefined);
  }

  private receive(buf: Uint8Array, moved?: readonly Uint8Array[]): void {
    const t0 = performance.now();
    const batch = unpackBatch(buf, moved);
    this.stats.batchesIn++;
    this.stats.messagesIn += batch.length;
    for (let i = 0; i < batch.length; i++) {
      const env = batch[i]!;
      if (env.length > 4) this.receiveTraced(env, batch.length);
      else this.deliver(env[0], env[1], env[2], env[3]);
    }
    this.stats.handleSecondsTotal += (performance.now() - t0) / 1000;
    // Still awaiting a reply after this batch: poll for it after the turn (setSpin). Threads
    // that await nothing (the WAL writer, the shards) schedule nothing here.
    if (this.spinOpts !== undefined && this.pending.size > 0) this.scheduleSpin();
  }

  /** receiveTraced delivers a traced message inside its span (see src/runtime/trace.ts). */
  private receiveTraced(env: Envelope, batchSize: number): void {
    const [kind, id, from, body, tr] = env as [EnvelopeKind, number, string, unknown, TraceField];
    const t = nowMs();
    const isReply = kind === EnvelopeKind.Reply || kind === EnvelopeKind.ReplyError;
    const type = isReply ? `${this.pending.get(id)?.type ?? 'ask'} reply` : (body as Message).type;
    const span = this.tracer.start(type, tr[1], {
      'message.type': type, 'queue.wait_ms': round3(t - tr[0]), 'batch.size': batchSize,
      'batch.traced': tr[1].length,
    }, t);
    let open: { span: OpenSpan; handleMs?: number } | undefined;
    const key = `${from}:${id}`;
    if (kind === EnvelopeKind.Ask) {
      // The span lasts until the reply (closeAsk), which may come in this very handler.
      open = { span };
      this.openAsks.set(key, open);
      if (this.openAsks.size > traceOpenAsksMax) {
        this.openAsks.delete(this.openAsks.keys().next().value!);
      }
    }
    const prev = this.active;
    this.active = span.refs;
    try {
      this.deliver(kind, id, from, body);
    } finally {
      this.active = prev;
    }
    const handleMs = round3(nowMs() - t);
    if (open === undefined) span.end({ 'handle_ms': handleMs });
    else if (this.openAsks.get(key) === open) open.handleMs = handleMs;
  }

  /** closeAsk ends the span of a traced ask being answered (or forwarded), and puts its refs
   * on the envelope that answers it. */
  private closeAsk(token: ReplyToken, env: Envelope, attrs: SpanAttributes = {}): void {
    const key = `${token.from}:${token.id}`;
    const open = this.openAsks.get(key);
    if (open === undefined) return;
    this.openAsks.delete(key);
    const t = nowMs();
    open.span.end({ ...attrs, 'handle_ms': open.handleMs ?? 0 });
    env.push([t, open.span.refs]);
  }

  private deliver(kind: EnvelopeKind, id: number, from: string, body: unknown): void {
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

/** round3 keeps three decimals of a millisecond figure (a microsecond is plenty). */
function round3(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

/** CpuTimes: the machine's CPU time so far, all cores together (clock ticks). */
export interface CpuTimes {
  total: number;
  idle: number;
  cores: number;
}

/** idleCoresBetween: how many cores were idle on average between two readings (undefined
 * if no time passed between them). */
export function idleCoresBetween(a: CpuTimes, b: CpuTimes): number | undefined {
  if (b.total <= a.total) return undefined;
  return (b.idle - a.idle) / (b.total - a.total) * b.cores;
}

/** readCpuTimes reads /proc/stat; undefined where there is none. */
function readCpuTimes(): CpuTimes | undefined {
  try {
    return parseCpuTimes(readFileSync('/proc/stat', 'latin1'));
  } catch {
    return undefined;
  }
}

/** parseCpuTimes reads /proc/stat's text: the first line's sum of all cores (idle counts
 * iowait too), and the number of per-core lines. Undefined if the text is not that. */
export function parseCpuTimes(text: string): CpuTimes | undefined {
  const nl = text.indexOf('\n');
  if (!text.startsWith('cpu ') || nl < 0) return undefined;
  const f = text.slice(0, nl).split(/\s+/).slice(1).map(Number);
  if (f.length < 5 || f.some((x) => !Number.isFinite(x))) return undefined;
  let total = 0;
  for (const x of f) total += x;
  let cores = 0;
  for (let i = text.indexOf('\ncpu'); i >= 0; i = text.indexOf('\ncpu', i + 1)) cores++;
  return { total, idle: f[3]! + f[4]!, cores: Math.max(1, cores) };
}

/** portTransport adapts a worker_threads MessagePort (transferring each batch's buffer). */
export function portTransport(port: {
  postMessage(v: unknown, transfer?: ArrayBuffer[]): void;
  on(ev: 'message', cb: (v: unknown) => void): void;
  close(): void;
  unref?(): void;
}): Transport {
  let deliver: (v: unknown) => void = () => {};
  return {
    post(batch, moved) {
      if (moved === undefined) {
        port.postMessage(batch, [batch.buffer as ArrayBuffer]);
        return;
      }
      // Views of one ArrayBuffer may be moved together; a transfer list names it once.
      // Views of shared memory are not transferred: the message shares that memory.
      const buffers = new Set<ArrayBuffer>([batch.buffer as ArrayBuffer]);
      for (const m of moved) if (!isShared(m)) buffers.add(m.buffer as ArrayBuffer);
      port.postMessage([batch, ...moved], [...buffers]);
    },
    onBatch(cb) {
      deliver = (v: unknown) => {
        if (!Array.isArray(v)) cb(v as Uint8Array);
        else cb(v[0] as Uint8Array, v.slice(1) as Uint8Array[]);
      };
      port.on('message', deliver);
    },
    poll() {
      const r = receiveMessageOnPort(port as unknown as MessagePort);
      if (r === undefined) return false;
      deliver(r.message);
      return true;
    },
    close() {
      port.close();
    },
  };
}
