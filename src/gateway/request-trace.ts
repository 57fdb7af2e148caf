import type HyperExpress from 'hyper-express';
import type { Endpoint, Message } from '../runtime/endpoint.js';
import type { OpenSpan } from '../runtime/trace.js';

/**
 * request-trace: where a request's trace begins. A request is traced when it carries
 * `x-myetcd-trace: 1`, or by sampling (--trace-sample-rate, a fraction; 0 by default: none).
 * Its answer then names the trace in `x-myetcd-trace-id`, so a client can look it up:
 * `GET /debug/traces?trace=<id>` (trace-routes.ts).
 */

/** traceHeader is the request header that asks for a trace. */
export const traceHeader = 'x-myetcd-trace';
/** traceIdHeader is the answer's header naming the trace. */
export const traceIdHeader = 'x-myetcd-trace-id';

/** RequestTrace is a traced request's root span, on the gateway thread. */
export interface RequestTrace {
  traceId: string;
  /** run calls fn with the request's context active: what fn posts before its first await
   * continues the trace (KvService keeps it across its own awaits). */
  run<T>(fn: () => T): T;
  /** end records the root span with the answer's status. */
  end(status: number): void;
}

/** startRequestTrace decides whether a request is traced and, if so, opens its root span. */
export function startRequestTrace(
  ep: Endpoint<Message>, req: HyperExpress.Request, method: string, route: string,
  sampleRate: number,
): RequestTrace | undefined {
  const asked = req.headers[traceHeader];
  if (asked !== '1' && asked !== 'true' && !(sampleRate > 0 && Math.random() < sampleRate)) {
    return undefined;
  }
  const name = `${method.toUpperCase()} ${route}`;
  const span: OpenSpan = ep.startSpan(name, [], {
    'http.method': method.toUpperCase(), 'http.route': route, 'message.type': name,
    sampled: asked === undefined,
  })!;
  return {
    traceId: span.refs[0]![0],
    run: (fn) => ep.withTrace(span.refs, fn),
    end: (status) => span.end({ 'http.status_code': status }),
  };
}
