import { encodeStreamError, errorResponse } from '../api/errors.js';
import { v1ErrorResponse } from '../api/v1.js';

/**
 * errors: the gateway's one path from any thrown value to an HTTP answer. The vocabulary
 * (codes, statuses, etcd's texts, the runtime's failures) is src/errors.ts; src/api writes it
 * as /v3 and /v1 bodies and as a stream's last message.
 */

/** errorBody maps an error to status and etcd's gateway error JSON (/v3). */
export function errorBody(e: unknown): { status: number; body: string } {
  const r = errorResponse(e);
  return { status: r.status, body: r.body };
}

/** v1ErrorBody maps an error to the /v1 failure envelope. */
export function v1ErrorBody(e: unknown): { status: number; body: string } {
  const r = v1ErrorResponse(e);
  return { status: r.status, body: r.body };
}

/** streamErrorLine is the last message of a stream that fails after it has started (see
 * encodeStreamError; `grpcCode` overrides the error's code). */
export function streamErrorLine(e: unknown, grpcCode?: number): string {
  return encodeStreamError(e, grpcCode);
}
