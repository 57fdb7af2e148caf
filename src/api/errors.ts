/**
 * The HTTP form of an error: etcd 3.4's JSON gateway body (grpc-gateway v1) for any thrown
 * value. The vocabulary itself (codes, statuses, etcd's texts) is src/errors.ts; this file
 * only writes it the way etcd's gateway does. Unknown errors become 500 with a fixed message:
 * no stack or internal text ever reaches a client.
 *
 * etcd's gateway body is `{"error":msg,"message":msg,"code":grpcCode}` in that order (recorded
 * in test/fixtures/etcd/err-*.json); Go's encoder escapes <, > and & as \u003c, \u003e, \u0026.
 */
import { GrpcCode, answerOf, httpStatusOfGrpc, type ErrorCode } from '../errors.js';

/** ErrorResponse is what the server writes: HTTP status, JSON body, and the stable code. */
export interface ErrorResponse {
  status: number;
  /** body is the complete response text (Content-Type: application/json). */
  body: string;
  code: ErrorCode;
  grpcCode: number;
  message: string;
}

/**
 * errorResponse maps any thrown value to etcd's gateway error: status and
 * `{"error":msg,"message":msg,"code":grpcCode}`. Use for every /v3 route (and /health,
 * /version). For /v1 use v1ErrorResponse (src/api/v1.ts), which shares the same codes.
 */
export function errorResponse(err: unknown): ErrorResponse {
  const a = answerOf(err);
  const m = goJsonString(a.text);
  return {
    status: a.httpStatus,
    body: `{"error":${m},"message":${m},"code":${a.grpcCode}}`,
    code: a.code,
    grpcCode: a.grpcCode,
    message: a.text,
  };
}

/**
 * streamErrorResponse is the error body of a streaming route (/v3/lease/keepalive) when the
 * stream fails before its first message: etcd reports gRPC Unknown (2) → HTTP 500 with the
 * same text (recorded: err-lease-keepalive-bad-json).
 */
export function streamErrorResponse(err: unknown): ErrorResponse {
  const a = answerOf(err);
  const m = goJsonString(a.text);
  return {
    status: 500,
    body: `{"error":${m},"message":${m},"code":${GrpcCode.Unknown}}`,
    code: a.code,
    grpcCode: GrpcCode.Unknown,
    message: a.text,
  };
}

const httpStatusTexts: Readonly<Record<number, string>> = {
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found',
  408: 'Request Timeout', 409: 'Conflict', 412: 'Precondition Failed',
  429: 'Too Many Requests', 500: 'Internal Server Error', 501: 'Not Implemented',
  503: 'Service Unavailable', 504: 'Gateway Timeout',
};

/**
 * encodeStreamError writes the last message of a stream that fails after it has started, as
 * grpc-gateway v1 writes it: {"error":{"grpc_code","http_code","message","http_status"}} and
 * a newline. `grpcCode` overrides the error's own code (etcd's lease keep-alive stream reports
 * every failure as Unknown).
 */
export function encodeStreamError(err: unknown, grpcCode?: number): string {
  const a = answerOf(err);
  const code = grpcCode ?? a.grpcCode;
  const http = grpcCode === undefined ? a.httpStatus : httpStatusOfGrpc(code);
  return `{"error":{"grpc_code":${code},"http_code":${http},"message":${goJsonString(a.text)}` +
    `,"http_status":"${httpStatusTexts[http] ?? 'Error'}"}}\n`;
}

const htmlEscapes = /[<>&\u2028\u2029]/g;
const htmlEscapeTest = /[<>&\u2028\u2029]/;
const htmlEscapeMap: Record<string, string> = {
  '<': '\\u003c', '>': '\\u003e', '&': '\\u0026', '\u2028': '\\u2028', '\u2029': '\\u2029',
};

/** goJsonString quotes s as Go's encoding/json does (HTML-safe: <, >, & escaped). */
export function goJsonString(s: string): string {
  const q = JSON.stringify(s);
  return htmlEscapeTest.test(q) ? q.replace(htmlEscapes, (c) => htmlEscapeMap[c]!) : q;
}
