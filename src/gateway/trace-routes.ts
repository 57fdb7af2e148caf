import { debugTracesLimitMax } from '../constants.js';
import type { ActorSystem } from '../runtime/system.js';
import type { SpanRecord } from '../runtime/trace.js';
import type { Routes } from './routes.js';

/**
 * trace-routes: `GET /debug/traces`, the recorded traces of every thread merged, newest first
 * (src/runtime/trace.ts explains how a trace crosses the actor threads, request-trace.ts
 * where one begins; docs/observability.md shows one).
 */

/** TraceSpanJson is a span as /debug/traces shows it: OpenTelemetry's fields (ids in hex,
 * times in Unix nanoseconds as strings, as OTLP/JSON writes them) plus milliseconds for eyes. */
export interface TraceSpanJson {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  /** startMs: milliseconds since the trace's first span started; durationMs: its length. */
  startMs: number;
  durationMs: number;
  attributes: Record<string, string | number | boolean>;
}

/** TraceJson is one trace: its root's name, its start (epoch ms), its spans by start time. */
export interface TraceJson {
  traceId: string;
  name: string;
  startUnixMs: number;
  durationMs: number;
  spans: TraceSpanJson[];
}

/** unixNanos writes epoch milliseconds as Unix nanoseconds (a decimal string: past 2^53). */
export function unixNanos(ms: number): string {
  const whole = Math.floor(ms);
  const frac = Math.round((ms - whole) * 1e6);
  return (BigInt(whole) * 1_000_000n + BigInt(frac)).toString();
}

/** groupTraces merges the threads' spans into traces, newest first (by first span). */
export function groupTraces(spans: Iterable<SpanRecord>): TraceJson[] {
  const by = new Map<string, SpanRecord[]>();
  for (const s of spans) {
    const list = by.get(s.traceId);
    if (list === undefined) by.set(s.traceId, [s]);
    else list.push(s);
  }
  const out: TraceJson[] = [];
  for (const [traceId, list] of by) {
    list.sort((a, b) => a.startMs - b.startMs);
    const t0 = list[0]!.startMs;
    const end = Math.max(...list.map((s) => s.endMs));
    const root = list.find((s) => s.parentSpanId === undefined) ?? list[0]!;
    out.push({
      traceId, name: root.name, startUnixMs: t0, durationMs: round3(end - t0),
      spans: list.map((s) => ({
        traceId, spanId: s.spanId,
        ...(s.parentSpanId === undefined ? {} : { parentSpanId: s.parentSpanId }),
        name: s.name, startTimeUnixNano: unixNanos(s.startMs), endTimeUnixNano: unixNanos(s.endMs),
        startMs: round3(s.startMs - t0), durationMs: round3(s.endMs - s.startMs),
        attributes: s.attributes,
      })),
    });
  }
  return out.sort((a, b) => b.startUnixMs - a.startUnixMs);
}

/** collectTraces asks every thread for its ring and returns the merged traces. */
export async function collectTraces(system: Pick<ActorSystem, 'actorTraces'>):
  Promise<TraceJson[]> {
  const all: SpanRecord[] = [];
  for (const r of (await system.actorTraces()).values()) all.push(...r.spans);
  return groupTraces(all);
}

/** registerTraceRoutes serves GET /debug/traces[?limit=n][&trace=<id>]. */
export function registerTraceRoutes(r: Routes): void {
  r.server.get('/debug/traces', async (req, res) => {
    const limitText = req.query_parameters['limit'];
    const limit = limitText === undefined ? 20 : Number(limitText);
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > debugTracesLimitMax) {
      const error = `limit must be an integer from 1 to ${debugTracesLimitMax}`;
      res.status(400).header('content-type', 'application/json')
        .send(JSON.stringify({ error, message: error, code: 3 }));
      return;
    }
    const only = req.query_parameters['trace'];
    let traces = await collectTraces(r.deps.system);
    if (only !== undefined) traces = traces.filter((t) => t.traceId === only);
    res.header('content-type', 'application/json')
      .send(JSON.stringify({ traces: traces.slice(0, limit) }));
  });
}

function round3(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
