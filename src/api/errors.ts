/**
 * Errors of the HTTP API, as one table: each entry has a stable `code` (used by /v1 and by
 * logs/metrics), the gRPC status etcd answers with, the HTTP status etcd 3.4's JSON gateway
 * (grpc-gateway v1) derives from it, and etcd's exact message. `errorResponse` maps ANY thrown
 * value — our ApiError, src/mvcc's MvccError (by its `code`), a bare object with a known
 * `code`/`message`, or an unknown error — to the gateway's error body, so the server needs no
 * other error handling. Unknown errors become 500 with a fixed message: no stack or internal
 * text ever reaches a client.
 *
 * etcd's gateway body is `{"error":msg,"message":msg,"code":grpcCode}` in that order (recorded
 * in test/fixtures/etcd/err-*.json); Go's encoder escapes <, > and & as \u003c, \u003e, \u0026.
 */

/** GrpcStatus names the gRPC status codes (google.golang.org/grpc/codes). */
export const GrpcStatus = {
  Canceled: 1,
  Unknown: 2,
  InvalidArgument: 3,
  DeadlineExceeded: 4,
  NotFound: 5,
  AlreadyExists: 6,
  PermissionDenied: 7,
  ResourceExhausted: 8,
  FailedPrecondition: 9,
  Aborted: 10,
  OutOfRange: 11,
  Unimplemented: 12,
  Internal: 13,
  Unavailable: 14,
  DataLoss: 15,
  Unauthenticated: 16,
} as const;

/** httpStatusFromGrpc is grpc-gateway v1's HTTPStatusFromCode (the table etcd 3.4 uses). */
export function httpStatusFromGrpc(code: number): number {
  switch (code) {
    case 0: return 200;
    case 1: return 408;
    case 2: return 500;
    case 3: return 400;
    case 4: return 504;
    case 5: return 404;
    case 6: return 409;
    case 7: return 403;
    case 8: return 429;
    case 9: return 412; // recorded: "lease already exists" answers 412
    case 10: return 409;
    case 11: return 400;
    case 12: return 501;
    case 13: return 500;
    case 14: return 503;
    case 15: return 500;
    case 16: return 401;
    default: return 500;
  }
}

/** ErrorSpec is one row of the table. */
export interface ErrorSpec {
  /** grpc is the gRPC status code etcd returns (the body's `code`). */
  readonly grpc: number;
  /** message is etcd's exact text; undefined for errors whose text is built per instance. */
  readonly message?: string;
}

const G = GrpcStatus;

/**
 * errorTable maps each stable code to its gRPC status and etcd's message. The first group is
 * etcd's rpctypes (etcdserver/api/v3rpc/rpctypes/error.go, v3.4); the second are decode errors
 * whose message is Go's own text, built per request; the last are MyEtcd's own.
 */
export const errorTable = {
  EMPTY_KEY: { grpc: G.InvalidArgument, message: 'etcdserver: key is not provided' },
  KEY_NOT_FOUND: { grpc: G.InvalidArgument, message: 'etcdserver: key not found' },
  VALUE_PROVIDED: { grpc: G.InvalidArgument, message: 'etcdserver: value is provided' },
  LEASE_PROVIDED: { grpc: G.InvalidArgument, message: 'etcdserver: lease is provided' },
  TOO_MANY_OPS: {
    grpc: G.InvalidArgument, message: 'etcdserver: too many operations in txn request',
  },
  DUPLICATE_KEY: {
    grpc: G.InvalidArgument, message: 'etcdserver: duplicate key given in txn request',
  },
  COMPACTED: {
    grpc: G.OutOfRange, message: 'etcdserver: mvcc: required revision has been compacted',
  },
  FUTURE_REV: {
    grpc: G.OutOfRange, message: 'etcdserver: mvcc: required revision is a future revision',
  },
  NO_SPACE: { grpc: G.ResourceExhausted, message: 'etcdserver: mvcc: database space exceeded' },
  LEASE_NOT_FOUND: { grpc: G.NotFound, message: 'etcdserver: requested lease not found' },
  LEASE_EXISTS: { grpc: G.FailedPrecondition, message: 'etcdserver: lease already exists' },
  LEASE_TTL_TOO_LARGE: { grpc: G.OutOfRange, message: 'etcdserver: too large lease TTL' },
  REQUEST_TOO_LARGE: { grpc: G.InvalidArgument, message: 'etcdserver: request is too large' },
  TOO_MANY_REQUESTS: { grpc: G.ResourceExhausted, message: 'etcdserver: too many requests' },
  NO_LEADER: { grpc: G.Unavailable, message: 'etcdserver: no leader' },
  NOT_LEADER: { grpc: G.FailedPrecondition, message: 'etcdserver: not leader' },
  LEADER_CHANGED: { grpc: G.Unavailable, message: 'etcdserver: leader changed' },
  STOPPED: { grpc: G.Unavailable, message: 'etcdserver: server stopped' },
  TIMEOUT: { grpc: G.Unavailable, message: 'etcdserver: request timed out' },
  UNHEALTHY: { grpc: G.Unavailable, message: 'etcdserver: unhealthy cluster' },
  CORRUPT: { grpc: G.DataLoss, message: 'etcdserver: corrupt cluster' },
  TIMEOUT_LEADER_FAIL: {
    grpc: G.Unavailable,
    message: 'etcdserver: request timed out, possibly due to previous leader failure',
  },
  TIMEOUT_CONNECTION_LOST: {
    grpc: G.Unavailable,
    message: 'etcdserver: request timed out, possibly due to connection lost',
  },
  TIMEOUT_LEADER_TRANSFER: {
    grpc: G.DeadlineExceeded,
    message: 'etcdserver: request timed out, leader transfer took too long',
  },
  NOT_SUPPORTED_FOR_LEARNER: {
    grpc: G.Unavailable, message: 'etcdserver: rpc not supported for learner',
  },
  MEMBER_NOT_FOUND: { grpc: G.NotFound, message: 'etcdserver: member not found' },
  MEMBER_EXIST: { grpc: G.FailedPrecondition, message: 'etcdserver: member ID already exist' },
  PEER_URL_EXIST: { grpc: G.FailedPrecondition, message: 'etcdserver: Peer URLs already exists' },
  MEMBER_BAD_URLS: {
    grpc: G.InvalidArgument, message: 'etcdserver: given member URLs are invalid',
  },
  MEMBER_NOT_LEARNER: {
    grpc: G.FailedPrecondition, message: 'etcdserver: can only promote a learner member',
  },
  LEARNER_NOT_READY: {
    grpc: G.FailedPrecondition,
    message: 'etcdserver: can only promote a learner member which is in sync with leader',
  },
  TOO_MANY_LEARNERS: {
    grpc: G.FailedPrecondition, message: 'etcdserver: too many learner members in cluster',
  },
  NOT_ENOUGH_STARTED: {
    grpc: G.FailedPrecondition,
    message: 'etcdserver: re-configuration failed due to not enough started members',
  },
  BAD_LEADER_TRANSFEREE: {
    grpc: G.FailedPrecondition, message: 'etcdserver: bad leader transferee',
  },
  /** raft dropped the proposal (a leader transfer, or a membership change already pending);
   * etcd passes raft's error through as gRPC Unknown. */
  PROPOSAL_DROPPED: { grpc: G.Unknown, message: 'raft proposal dropped' },
  // Decode errors: Go's encoding/json, encoding/base64 and jsonpb wording, per instance.
  MALFORMED_JSON: { grpc: G.InvalidArgument },
  INVALID_BASE64: { grpc: G.InvalidArgument },
  INVALID_FIELD: { grpc: G.InvalidArgument },
  /** grpc-go refuses a message over maxRequestBytes + 512 KiB before etcd sees it. */
  GRPC_MESSAGE_TOO_LARGE: { grpc: G.ResourceExhausted },
  // MyEtcd's own.
  /** An int64 that Go accepts but is outside ±2^53, which MyEtcd cannot hold exactly. */
  UNSAFE_INTEGER: { grpc: G.InvalidArgument },
  /** A /v1 request that is not well formed (bad query parameter, bad body shape). */
  BAD_REQUEST: { grpc: G.InvalidArgument },
  /** Unknown route (etcd answers text/plain "Not Found"). */
  NOT_FOUND: { grpc: G.NotFound, message: 'Not Found' },
  METHOD_NOT_ALLOWED: { grpc: G.Unimplemented, message: 'Method Not Allowed' },
  INTERNAL: { grpc: G.Unknown, message: 'etcdserver: internal error' },
} as const satisfies Record<string, ErrorSpec>;

/** ApiErrorCode is a stable error code (also the /v1 envelope's `error.code`). */
export type ApiErrorCode = keyof typeof errorTable;

/** ApiError is an expected failure of a request: stable code, etcd's message, statuses. */
export class ApiError extends Error {
  readonly grpcCode: number;
  readonly httpStatus: number;
  constructor(
    readonly code: ApiErrorCode,
    message?: string,
    httpStatus?: number,
  ) {
    const spec: ErrorSpec = errorTable[code];
    super(message ?? spec.message ?? code);
    this.name = 'ApiError';
    this.grpcCode = spec.grpc;
    this.httpStatus = httpStatus ?? httpStatusFromGrpc(spec.grpc);
  }
}

/** apiError builds an ApiError with the table's message (convenience for call sites). */
export function apiError(code: ApiErrorCode, message?: string): ApiError {
  return new ApiError(code, message);
}

/**
 * overloadError is what the server answers when an actor's mailbox is full: etcd's
 * "etcdserver: too many requests" (ResourceExhausted → 429).
 */
export function overloadError(): ApiError {
  return new ApiError('TOO_MANY_REQUESTS');
}

/** timeoutError is etcd's "etcdserver: request timed out" (Unavailable → 503). */
export function timeoutError(): ApiError {
  return new ApiError('TIMEOUT');
}

/** noLeaderError is etcd's "etcdserver: no leader" (Unavailable → 503). */
export function noLeaderError(): ApiError {
  return new ApiError('NO_LEADER');
}

// src/mvcc's MvccError codes (and other layers' spellings) → ours. Matching by `code` first,
// by etcd's message second, keeps the table the single place that knows etcd's wording.
const codeAliases: Record<string, ApiErrorCode> = {
  ErrCompacted: 'COMPACTED',
  ErrFutureRev: 'FUTURE_REV',
  ErrKeyNotFound: 'KEY_NOT_FOUND',
  ErrLeaseNotFound: 'LEASE_NOT_FOUND',
  ErrLeaseExists: 'LEASE_EXISTS',
  ErrEmptyKey: 'EMPTY_KEY',
  ErrTooManyOps: 'TOO_MANY_OPS',
  ErrDuplicateKey: 'DUPLICATE_KEY',
  ErrValueProvided: 'VALUE_PROVIDED',
  ErrLeaseProvided: 'LEASE_PROVIDED',
  ErrLeaseTTLTooLarge: 'LEASE_TTL_TOO_LARGE',
  ErrRequestTooLarge: 'REQUEST_TOO_LARGE',
  ErrNoSpace: 'NO_SPACE',
  ErrTooManyRequests: 'TOO_MANY_REQUESTS',
  ErrTimeout: 'TIMEOUT',
  ErrNoLeader: 'NO_LEADER',
  ErrNotLeader: 'NOT_LEADER',
  ErrLeaderChanged: 'LEADER_CHANGED',
  ErrStopped: 'STOPPED',
  ErrCorrupt: 'CORRUPT',
  ErrSnapshotCorrupt: 'CORRUPT',
  MAILBOX_FULL: 'TOO_MANY_REQUESTS',
  ERR_MAILBOX_FULL: 'TOO_MANY_REQUESTS',
  ASK_TIMEOUT: 'TIMEOUT',
  ERR_ASK_TIMEOUT: 'TIMEOUT',
};

const messageAliases = new Map<string, ApiErrorCode>();
for (const [code, spec] of Object.entries(errorTable) as [ApiErrorCode, ErrorSpec][]) {
  if (spec.message === undefined || code === 'NOT_FOUND' || code === 'INTERNAL') continue;
  messageAliases.set(spec.message, code);
  // mvcc's own errors lack the "etcdserver: " prefix the gateway adds (see COMPACTED).
  if (spec.message.startsWith('etcdserver: mvcc: ')) {
    messageAliases.set(spec.message.slice('etcdserver: '.length), code);
  }
}

/**
 * toApiError normalises any thrown value. ApiError passes through; an object whose `code` is
 * one of ours or a known alias (MvccError's `ErrCompacted`, …) maps to the table row; so does
 * an error whose message is one of etcd's; an MvccError with a code we do not know keeps its
 * own message and gRPC code (it is a deliberate, client-facing error). Anything else is a bug
 * somewhere and becomes INTERNAL, hiding its message.
 */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (typeof err === 'object' && err !== null) {
    const code = (err as { code?: unknown }).code;
    const message = (err as { message?: unknown }).message;
    if (typeof code === 'string') {
      if (Object.hasOwn(errorTable, code)) return new ApiError(code as ApiErrorCode);
      const alias = codeAliases[code];
      if (alias !== undefined) return new ApiError(alias);
    }
    if (typeof message === 'string') {
      const byMessage = messageAliases.get(message);
      if (byMessage !== undefined) return new ApiError(byMessage);
      const grpc = (err as { grpcCode?: unknown }).grpcCode;
      if (typeof grpc === 'number' && grpc === G.InvalidArgument && typeof code === 'string') {
        // e.g. mvcc's ErrInvalidArgument: its message is written for clients.
        return new ApiError('BAD_REQUEST', message);
      }
    }
  }
  return new ApiError('INTERNAL');
}

/** ErrorResponse is what the server writes: HTTP status, JSON body, and the stable code. */
export interface ErrorResponse {
  status: number;
  /** body is the complete response text (Content-Type: application/json). */
  body: string;
  code: ApiErrorCode;
  grpcCode: number;
  message: string;
}

/**
 * errorResponse maps any thrown value to etcd's gateway error: status and
 * `{"error":msg,"message":msg,"code":grpcCode}`. Use for every /v3 route (and /health,
 * /version). For /v1 use v1ErrorResponse (src/api/v1.ts), which shares the same codes.
 */
export function errorResponse(err: unknown): ErrorResponse {
  const e = toApiError(err);
  const m = goJsonString(e.message);
  return {
    status: e.httpStatus,
    body: `{"error":${m},"message":${m},"code":${e.grpcCode}}`,
    code: e.code,
    grpcCode: e.grpcCode,
    message: e.message,
  };
}

/**
 * streamErrorResponse is the error body of a streaming route (/v3/lease/keepalive) when the
 * stream fails before its first message: etcd reports gRPC Unknown (2) → HTTP 500 with the
 * same text (recorded: err-lease-keepalive-bad-json).
 */
export function streamErrorResponse(err: unknown): ErrorResponse {
  const e = toApiError(err);
  const m = goJsonString(e.message);
  return {
    status: 500,
    body: `{"error":${m},"message":${m},"code":${G.Unknown}}`,
    code: e.code,
    grpcCode: G.Unknown,
    message: e.message,
  };
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
