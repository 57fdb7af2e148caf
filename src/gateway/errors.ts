import { ApiError, errorResponse } from '../api/errors.js';
import { maxRequestBytes } from '../constants.js';

/**
 * errors: the gateway's one path from any thrown value to an HTTP answer. src/api/errors owns
 * etcd's table; this adds the runtime's own failures (an actor restarting, a full mailbox).
 */

/** errorBody maps an error to status and etcd's gateway error JSON. */
export function errorBody(e: unknown): { status: number; body: string } {
  const code = (e as { code?: unknown } | null)?.code;
  if (code === 'PEER_GONE' || code === 'UNAVAILABLE') {
    e = new ApiError('STOPPED', 'etcdserver: server is restarting');
  }
  const r = errorResponse(e);
  return { status: r.status, body: r.body };
}

/** checkRequestSize refuses bodies over etcd's --max-request-bytes, as etcd does. */
export function checkRequestSize(body: string): void {
  // body.length ≤ bytes ≤ 3 × length for UTF-8 text: measure only when it could matter.
  if (body.length * 3 > maxRequestBytes && Buffer.byteLength(body) > maxRequestBytes) {
    throw new ApiError('REQUEST_TOO_LARGE');
  }
}
