import { type HrTime, SpanKind, SpanStatusCode, TraceFlags } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { traceExportIntervalMs } from '../constants.js';
import type { ActorSystem } from '../runtime/system.js';
import type { SpanRecord } from '../runtime/trace.js';

/**
 * otlp: exports the recorded spans to an OpenTelemetry collector over OTLP/HTTP
 * (--otlp-endpoint), with the official exporter (@opentelemetry/exporter-trace-otlp-http,
 * which encodes and posts; nothing here writes OTLP by hand).
 *
 * The spans are recorded by the threads' own tracers (src/runtime/trace.ts: a span crosses
 * threads inside our msgpack messages, where the OpenTelemetry SDK's context cannot go), so
 * they are handed to the exporter as ReadableSpans, the SDK's finished-span interface. Every
 * traceExportIntervalMs the gateway pulls what each thread recorded since the last pull (a
 * cursor per thread: its boot id and span sequence) and exports it in one call.
 */

/** OtlpLogger is the part of pino the exporter logs to. */
export interface OtlpLogger {
  warn(obj: object, msg: string): void;
}

/** hrTime turns epoch milliseconds into OpenTelemetry's [seconds, nanoseconds]. */
export function hrTime(ms: number): HrTime {
  const s = Math.floor(ms / 1000);
  return [s, Math.round((ms - s * 1000) * 1e6)];
}

/** OtlpExport: see the file comment. */
export class OtlpExport {
  private readonly exporter: OTLPTraceExporter;
  private readonly resource;
  private readonly cursors = new Map<string, { boot: string; seq: number }>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  /** exported counts the spans handed to the exporter and accepted. */
  exported = 0;

  constructor(private readonly system: ActorSystem, url: string, memberId: string,
    private readonly log: OtlpLogger) {
    this.exporter = new OTLPTraceExporter({ url });
    this.resource = resourceFromAttributes({
      'service.name': 'myetcd', 'service.instance.id': memberId,
    });
  }

  /** start exports every traceExportIntervalMs until stop. */
  start(): void {
    this.timer = setInterval(() => void this.exportOnce(), traceExportIntervalMs);
    this.timer.unref();
  }

  /** stop exports what is left and shuts the exporter down. */
  async stop(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    await this.exportOnce();
    await this.exporter.shutdown();
  }

  /** exportOnce pulls the new spans and exports them (one at a time: never overlapping). */
  exportOnce(): Promise<void> {
    if (this.running !== undefined) return this.running;
    this.running = this.pullAndExport().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async pullAndExport(): Promise<void> {
    const since = new Map<string, number>();
    for (const [name, c] of this.cursors) since.set(name, c.seq);
    const spans: ReadableSpan[] = [];
    for (const [name, report] of await this.system.actorTraces(since)) {
      const c = this.cursors.get(name);
      // A restarted thread counts from 1 again: everything it reports is new.
      let fresh = report.spans;
      if (c !== undefined && c.boot !== report.boot) {
        fresh = (await this.system.actorTraces(new Map([[name, 0]]))).get(name)?.spans ?? [];
      }
      let seq = c !== undefined && c.boot === report.boot ? c.seq : 0;
      for (const s of fresh) {
        spans.push(this.readable(s));
        if (s.seq > seq) seq = s.seq;
      }
      this.cursors.set(name, { boot: report.boot, seq });
    }
    if (spans.length === 0) return;
    await new Promise<void>((resolve) => {
      this.exporter.export(spans, (r) => {
        if (r.code === 0) this.exported += spans.length;
        else this.log.warn({ err: String(r.error), spans: spans.length }, 'OTLP export failed');
        resolve();
      });
    });
  }

  /** readable presents a recorded span as the SDK's ReadableSpan. */
  private readable(s: SpanRecord): ReadableSpan {
    const ctx = { traceId: s.traceId, spanId: s.spanId, traceFlags: TraceFlags.SAMPLED };
    const isRoot = s.parentSpanId === undefined;
    return {
      name: s.name,
      kind: isRoot ? SpanKind.SERVER : SpanKind.INTERNAL,
      spanContext: () => ctx,
      ...(isRoot ? {} : {
        parentSpanContext: {
          traceId: s.traceId, spanId: s.parentSpanId!, traceFlags: TraceFlags.SAMPLED,
        },
      }),
      startTime: hrTime(s.startMs),
      endTime: hrTime(s.endMs),
      duration: hrTime(s.endMs - s.startMs),
      status: { code: SpanStatusCode.UNSET },
      attributes: s.attributes,
      links: [],
      events: [],
      ended: true,
      resource: this.resource,
      instrumentationScope: { name: 'myetcd' },
      droppedAttributesCount: 0,
      droppedEventsCount: 0,
      droppedLinksCount: 0,
    };
  }
}
