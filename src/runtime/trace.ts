import { traceRingTracesMax, traceSpansPerTraceMax } from '../constants.js';

/**
 * trace: request tracing across the actor threads, in OpenTelemetry's span model (a trace id
 * shared by every span of one request, a span id per span, the parent's span id, a name,
 * start and end, attributes).
 *
 * How a trace crosses threads: a traced message's envelope carries a fifth element, a
 * TraceField — when it was posted and the spans it continues. An untraced envelope has only
 * four elements, so tracing off costs no byte on the wire and one `undefined` check per
 * message (test/trace-runtime.test.ts asserts the encoded batch). The receiving endpoint opens
 * a span per traced message (queue wait, handling time, batch size), makes it the thread's
 * active context while the handler runs, so that whatever the handler posts continues the
 * trace, and ends it: after the handler for a send, at the reply for an ask.
 *
 * Worked example — a traced PUT on one member (each line a span, indented under its parent):
 *
 *   gateway  POST /v3/kv/put                       the HTTP request, root span
 *     raft     RaftPropose                         receipt → reply (propose, commit, apply)
 *       wal      WalAppend                         receipt → reply
 *         wal      wal write+fsync                 one group commit, shared by the batch
 *       raft     raft commit+apply                 after the fsync: advance, apply
 *         shard-1  ShardApply                      the change, in its shard
 *         watch    WatchChanges                    the change, to the watch hub
 *     gateway  RaftPropose reply                   the answer arriving at the gateway
 *
 * Batches: one WAL append may carry the proposals of three traced requests. Its envelope then
 * names three parents, and the receiver records one span per parent — same timings, each in
 * its own trace — with `batch.traced` = 3. A waterfall thus shows a PUT sharing its fsync.
 *
 * Bounds: each thread keeps the spans of its last traceRingTracesMax traces (a ring by first
 * sight), at most traceSpansPerTraceMax spans each; /debug/traces merges the threads' rings.
 */

/** TraceRef names a span that further work continues: [traceId, spanId] (hex). */
export type TraceRef = [string, string];

/** TraceField is an envelope's optional fifth element: [postedAtMs, parents]. postedAtMs is
 * epoch milliseconds (fractional), comparable across the threads of one process. */
export type TraceField = [number, TraceRef[]];

/** SpanAttributes are a span's attributes (OpenTelemetry's primitive values). */
export type SpanAttributes = Record<string, string | number | boolean>;

/** SpanRecord is one finished span. Times are epoch milliseconds (fractional). */
export interface SpanRecord {
  traceId: string;
  spanId: string;
  /** parentSpanId is absent on a trace's root span. */
  parentSpanId?: string;
  name: string;
  startMs: number;
  endMs: number;
  attributes: SpanAttributes;
  /** seq numbers the spans a thread recorded, from 1 (export cursors use it). */
  seq: number;
}

/** TracesReport is what a thread answers when asked for its spans. */
export interface TracesReport {
  /** boot tells a restarted thread (whose seq starts again) from the one before. */
  boot: string;
  spans: SpanRecord[];
}

/** timeOrigin is read once: the getter costs more than performance.now() itself. */
const timeOrigin = performance.timeOrigin;

/** nowMs is the epoch time in fractional milliseconds: performance.timeOrigin is per thread,
 * but both it and now() are on the same clock, so threads agree to well under a millisecond. */
export function nowMs(): number {
  return timeOrigin + performance.now();
}

/** randomPool amortises the random source: one getRandomValues call per 16 KiB of ids (a call
 * per id cost about as much as all the rest of a traced hop). */
const randomPool = new Uint32Array(4096);
let randomAt = randomPool.length;

/** randomHex returns 4·words random bytes as lower-case hex (trace ids: 4 words, span ids: 2). */
export function randomHex(words: number): string {
  if (randomAt + words > randomPool.length) {
    crypto.getRandomValues(randomPool);
    randomAt = 0;
  }
  let s = '';
  for (let i = 0; i < words; i++) s += randomPool[randomAt++]!.toString(16).padStart(8, '0');
  return s;
}

/** OpenSpan is a span started with Tracer.start: its refs continue it; end records it. */
export interface OpenSpan {
  /** refs name the new spans (one per parent): pass them to work that continues this one. */
  readonly refs: TraceRef[];
  /** end records the spans, adding attributes. */
  end(attrs?: SpanAttributes): void;
}

/** Tracer is one thread's span recorder and ring (see the file comment). */
export class Tracer {
  readonly boot = randomHex(2);
  private readonly ring = new Map<string, SpanRecord[]>();
  private seq = 0;

  /** thread names the recording thread ('main', 'myetcd-raft', ...). */
  constructor(readonly thread: string, readonly actor: string) {}

  /** start opens one span per parent (a root span when parents is empty: a new trace). */
  start(name: string, parents: readonly TraceRef[], attrs?: SpanAttributes,
    startMs = nowMs()): OpenSpan {
    const spans: Omit<SpanRecord, 'seq'>[] = [];
    const refs: TraceRef[] = [];
    const n = parents.length === 0 ? 1 : parents.length;
    for (let i = 0; i < n; i++) {
      const attributes: SpanAttributes = { thread: this.thread, actor: this.actor };
      if (attrs !== undefined) for (const k in attrs) attributes[k] = attrs[k]!;
      const span: Omit<SpanRecord, 'seq'> = {
        traceId: parents.length === 0 ? randomHex(4) : parents[i]![0], spanId: randomHex(2),
        name, startMs, endMs: startMs, attributes,
      };
      if (parents.length > 0) span.parentSpanId = parents[i]![1];
      spans.push(span);
      refs.push([span.traceId, span.spanId]);
    }
    return {
      refs,
      end: (more?: SpanAttributes) => {
        const endMs = nowMs();
        for (const s of spans) {
          s.endMs = endMs;
          if (more !== undefined) for (const k in more) s.attributes[k] = more[k]!;
          this.record(s);
        }
      },
    };
  }

  /** record keeps a finished span in the ring. */
  record(span: Omit<SpanRecord, 'seq'>): void {
    let spans = this.ring.get(span.traceId);
    if (spans === undefined) {
      spans = [];
      this.ring.set(span.traceId, spans);
      if (this.ring.size > traceRingTracesMax) {
        this.ring.delete(this.ring.keys().next().value!);
      }
    }
    if (spans.length >= traceSpansPerTraceMax) return;
    const rec = span as SpanRecord;
    rec.seq = ++this.seq;
    spans.push(rec);
  }

  /** report returns the spans recorded after seq `since` (0: all that the ring holds). */
  report(since = 0): TracesReport {
    const spans: SpanRecord[] = [];
    for (const list of this.ring.values()) {
      for (const s of list) if (s.seq > since) spans.push(s);
    }
    return { boot: this.boot, spans };
  }
}
