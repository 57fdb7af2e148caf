import { ApiError, errorResponse } from '../api/errors.js';
import { v1ErrorResponse } from '../api/v1.js';

/**
 * errors: the gateway's one path from any thrown value to an HTTP answer. src/api/errors owns
 * etcd's table; this adds the runtime's own failures (an actor restarting).
 */

/** normalizeError turns runtime failures into the API's errors. */
export function normalizeError(e: unknown): unknown {
  const code = (e as { code?: unknown } | null)?.code;
  if (code === 'ACTOR_GONE' || code === 'UNAVAILABLE') {
    return new ApiError('STOPPED', 'etcdserver: server is restarting');
  }
  return e;
}

/** errorBody maps an error to status and etcd's gateway error JSON (/v3). */
export function errorBody(e: unknown): { status: number; body: string } {
  const r = errorResponse(normalizeError(e));
  return { status: r.status, body: r.body };
}

/** v1ErrorBody maps an error to the /v1 failure envelope. */
export function v1ErrorBody(e: unknown): { status: number; body: string } {
  const r = v1ErrorResponse(normalizeError(e));
  return { status: r.status, body: r.body };
}
