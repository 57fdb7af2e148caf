import { ApiError, errorResponse } from '../api/errors.js';

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
