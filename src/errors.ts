/**
 * The error vocabulary of MyEtcd, in one place: every expected failure has one stable code
 * (SCREAMING_SNAKE, also the /v1 envelope's `error.code`), and one row of `errorTable` gives
 * the gRPC status etcd answers with, the HTTP status etcd 3.4's JSON gateway derives from it,
 * and etcd's exact text. The server maps any thrown value to an answer through this table
 * alone (`toEtcdError`, then `answerOf`), by code, never by message text; the client reads
 * the same gRPC codes and statuses (src/client/errors.ts).
 *
 * Errors are `EtcdError`s. A core throws the named class of its error (`ErrCompacted`,
 * `WalCorruptError`, …), each bound to one code; request decoders throw `EtcdError(code,
 * text)` for the decode errors whose text is built per request (Go's own wording). Bugs are
 * not errors: they are assertions (src/assert.ts), answered as INTERNAL.
 *
 * Texts come from etcd v3.4 (etcdserver/api/v3rpc/rpctypes/error.go, mvcc/kvstore.go,
 * lease/lessor.go) and etcd-raft (raft/storage.go, raft/raft.go).
 */

/** GrpcCode names the gRPC status codes (google.golang.org/grpc/codes). */
export const GrpcCode = {
  OK: 0,
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

const grpcCodeNames: ReadonlyMap<number, string> = new Map(
  Object.entries(GrpcCode).map(([name, code]) => [code, name]),
);

/** grpcCodeName is a gRPC code's name ('OutOfRange'), or `Code(n)` for an unknown one. */
export function grpcCodeName(code: number): string {
  return grpcCodeNames.get(code) ?? `Code(${code})`;
}

/**
 * httpStatusOfGrpc is grpc-gateway v1's HTTPStatusFromCode, the table etcd 3.4's JSON gateway
 * answers with (recorded: FailedPrecondition "lease already exists" answers 412).
 */
export function httpStatusOfGrpc(code: number): number {
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
    case 9: return 412;
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

/** ErrorSpec is one row of errorTable. */
export interface ErrorSpec {
  /** grpc is the gRPC status etcd answers with (the /v3 error body's `code`); the HTTP status
   * is always httpStatusOfGrpc(grpc), as etcd's gateway derives it. */
  readonly grpc: number;
  /** text is etcd's exact message; absent when the text is built per error (decode errors). */
  readonly text?: string;
  /**
   * internal marks a failure no client may see the details of (a damaged disk, a Raft
   * core's refusal, a bug): it is answered as INTERNAL, and logged with its own text.
   */
  readonly internal?: true;
}

const G = GrpcCode;

/**
 * errorTable maps each stable code to its answer. Groups: etcd's client-facing errors
 * (rpctypes); request decode errors, whose text is Go's own, per request; MyEtcd's own
 * client-facing errors; then the internal ones (storage, Raft core, configuration, bugs).
 */
export const errorTable = {
  EMPTY_KEY: { grpc: G.InvalidArgument, text: 'etcdserver: key is not provided' },
  KEY_NOT_FOUND: { grpc: G.InvalidArgument, text: 'etcdserver: key not found' },
  VALUE_PROVIDED: { grpc: G.InvalidArgument, text: 'etcdserver: value is provided' },
  LEASE_PROVIDED: { grpc: G.InvalidArgument, text: 'etcdserver: lease is provided' },
  TOO_MANY_OPS: { grpc: G.InvalidArgument, text: 'etcdserver: too many operations in txn request' },
  DUPLICATE_KEY: {
    grpc: G.InvalidArgument, text: 'etcdserver: duplicate key given in txn request',
  },
  COMPACTED: { grpc: G.OutOfRange, text: 'etcdserver: mvcc: required revision has been compacted' },
  FUTURE_REV: {
    grpc: G.OutOfRange, text: 'etcdserver: mvcc: required revision is a future revision',
  },
  NO_SPACE: { grpc: G.ResourceExhausted, text: 'etcdserver: mvcc: database space exceeded' },
  LEASE_NOT_FOUND: { grpc: G.NotFound, text: 'etcdserver: requested lease not found' },
  LEASE_EXISTS: { grpc: G.FailedPrecondition, text: 'etcdserver: lease already exists' },
  LEASE_TTL_TOO_LARGE: { grpc: G.OutOfRange, text: 'etcdserver: too large lease TTL' },
  REQUEST_TOO_LARGE: { grpc: G.InvalidArgument, text: 'etcdserver: request is too large' },
  TOO_MANY_REQUESTS: { grpc: G.ResourceExhausted, text: 'etcdserver: too many requests' },
  NO_LEADER: { grpc: G.Unavailable, text: 'etcdserver: no leader' },
  NOT_LEADER: { grpc: G.FailedPrecondition, text: 'etcdserver: not leader' },
  LEADER_CHANGED: { grpc: G.Unavailable, text: 'etcdserver: leader changed' },
  STOPPED: { grpc: G.Unavailable, text: 'etcdserver: server stopped' },
  TIMEOUT: { grpc: G.Unavailable, text: 'etcdserver: request timed out' },
  UNHEALTHY: { grpc: G.Unavailable, text: 'etcdserver: unhealthy cluster' },
  CORRUPT: { grpc: G.DataLoss, text: 'etcdserver: corrupt cluster' },
  TIMEOUT_LEADER_FAIL: {
    grpc: G.Unavailable,
    text: 'etcdserver: request timed out, possibly due to previous leader failure',
  },
  TIMEOUT_CONNECTION_LOST: {
    grpc: G.Unavailable,
    text: 'etcdserver: request timed out, possibly due to connection lost',
  },
  TIMEOUT_LEADER_TRANSFER: {
    grpc: G.DeadlineExceeded,
    text: 'etcdserver: request timed out, leader transfer took too long',
  },
  NOT_SUPPORTED_FOR_LEARNER: {
    grpc: G.Unavailable, text: 'etcdserver: rpc not supported for learner',
  },
  MEMBER_NOT_FOUND: { grpc: G.NotFound, text: 'etcdserver: member not found' },
  MEMBER_EXIST: { grpc: G.FailedPrecondition, text: 'etcdserver: member ID already exist' },
  PEER_URL_EXIST: { grpc: G.FailedPrecondition, text: 'etcdserver: Peer URLs already exists' },
  MEMBER_BAD_URLS: { grpc: G.InvalidArgument, text: 'etcdserver: given member URLs are invalid' },
  MEMBER_NOT_LEARNER: {
    grpc: G.FailedPrecondition, text: 'etcdserver: can only promote a learner member',
  },
  LEARNER_NOT_READY: {
    grpc: G.FailedPrecondition,
    text: 'etcdserver: can only promote a learner member which is in sync with leader',
  },
  TOO_MANY_LEARNERS: {
    grpc: G.FailedPrecondition,
    text: 'etcdserver: too many learner members in cluster',
  },
  NOT_ENOUGH_STARTED: {
    grpc: G.FailedPrecondition,
    text: 'etcdserver: re-configuration failed due to not enough started members',
  },
  BAD_LEADER_TRANSFEREE: { grpc: G.FailedPrecondition, text: 'etcdserver: bad leader transferee' },
  /** raft dropped the proposal (a leader transfer, or a membership change already pending);
   * etcd passes raft's error through as gRPC Unknown. */
  PROPOSAL_DROPPED: { grpc: G.Unknown, text: 'raft proposal dropped' },
  // Auth (etcd 3.4 auth/store.go, rpctypes): users, roles, tokens, permissions.
  ROOT_USER_NOT_EXIST: { grpc: G.FailedPrecondition, text: 'etcdserver: root user does not exist' },
  ROOT_ROLE_NOT_EXIST: {
    grpc: G.FailedPrecondition, text: 'etcdserver: root user does not have root role',
  },
  USER_ALREADY_EXIST: { grpc: G.FailedPrecondition, text: 'etcdserver: user name already exists' },
  USER_EMPTY: { grpc: G.InvalidArgument, text: 'etcdserver: user name is empty' },
  USER_NOT_FOUND: { grpc: G.FailedPrecondition, text: 'etcdserver: user name not found' },
  ROLE_ALREADY_EXIST: { grpc: G.FailedPrecondition, text: 'etcdserver: role name already exists' },
  ROLE_NOT_FOUND: { grpc: G.FailedPrecondition, text: 'etcdserver: role name not found' },
  ROLE_EMPTY: { grpc: G.InvalidArgument, text: 'etcdserver: role name is empty' },
  AUTH_FAILED: {
    grpc: G.InvalidArgument,
    text: 'etcdserver: authentication failed, invalid user ID or password',
  },
  /** etcd 3.4 answers a password given for a user added with no_password as a bare error
   * (gRPC Unknown, HTTP 500), recorded. */
  NO_PASSWORD_USER: {
    grpc: G.Unknown, text: 'auth: authentication failed, password was given for no password user',
  },
  PERMISSION_DENIED: { grpc: G.PermissionDenied, text: 'etcdserver: permission denied' },
  /** etcd 3.4's maintenance server (defragment) answers its admin check unwrapped: gRPC
   * Unknown, HTTP 500, "auth: " texts (recorded). */
  AUTH_PERMISSION_DENIED_RAW: { grpc: G.Unknown, text: 'auth: permission denied' },
  AUTH_USER_EMPTY_RAW: { grpc: G.Unknown, text: 'auth: user name is empty' },
  ROLE_NOT_GRANTED: {
    grpc: G.FailedPrecondition, text: 'etcdserver: role is not granted to the user',
  },
  PERMISSION_NOT_GRANTED: {
    grpc: G.FailedPrecondition, text: 'etcdserver: permission is not granted to the role',
  },
  AUTH_NOT_ENABLED: {
    grpc: G.FailedPrecondition, text: 'etcdserver: authentication is not enabled',
  },
  INVALID_AUTH_TOKEN: { grpc: G.Unauthenticated, text: 'etcdserver: invalid auth token' },
  INVALID_AUTH_MGMT: { grpc: G.InvalidArgument, text: 'etcdserver: invalid auth management' },
  AUTH_OLD_REVISION: {
    grpc: G.InvalidArgument, text: 'etcdserver: revision of auth store is old',
  },
  // Decode errors: Go's encoding/json, encoding/base64 and jsonpb wording, per request.
  MALFORMED_JSON: { grpc: G.InvalidArgument },
  INVALID_BASE64: { grpc: G.InvalidArgument },
  INVALID_FIELD: { grpc: G.InvalidArgument },
  /** grpc-go refuses a message over requestBytesMax + 512 KiB before etcd sees it. */
  GRPC_MESSAGE_TOO_LARGE: { grpc: G.ResourceExhausted },
  // MyEtcd's own, client-facing.
  /** An int64 that Go accepts but is outside ±2^53, which MyEtcd cannot hold exactly. */
  UNSAFE_INTEGER: { grpc: G.InvalidArgument },
  /** A request that is not well formed in a way etcd has no wording for (a /v1 query
   * parameter, a field of the wrong type, an unknown enum value): the text says what. */
  BAD_REQUEST: { grpc: G.InvalidArgument },
  /** The actors are restarting after a crash (the supervisor's one-for-all restart). */
  RESTARTING: { grpc: G.Unavailable, text: 'etcdserver: server is restarting' },
  /** A streamed request body (/v3/watch, /v3/lease/keepalive) stayed open too long: the stream
   * ends with this last message (src/gateway/stream.ts); the text says why. */
  STREAM_BODY_OPEN: { grpc: G.Unavailable },
  /** The WAL's file system refuses writes (EROFS, EACCES): writes are refused, reads served;
   * the text names the errno (src/alarms.ts). */
  DISK_READ_ONLY: { grpc: G.Unavailable },
  /** A WAL write or fsync failed for another reason (EIO): writes are refused until a restart
   * recovers from what the disk holds; the text names the errno (src/alarms.ts). */
  DISK_FAILED: { grpc: G.Unavailable },
  /** Anything not in this table, and every internal row: no detail reaches the client. */
  INTERNAL: { grpc: G.Unknown, text: 'etcdserver: internal error' },
  // Internal: answered as INTERNAL.
  /** A WAL that cannot be trusted (src/wal/errors.ts): the member refuses to start. */
  WAL_CORRUPT: { grpc: G.DataLoss, internal: true },
  /** A snapshot file that fails its checks: loaders fall back to an older one. */
  SNAP_CORRUPT: { grpc: G.DataLoss, internal: true },
  /** A shard snapshot that ShardStore.fromSnapshot did not write. */
  SHARD_SNAPSHOT_CORRUPT: { grpc: G.DataLoss, internal: true },
  /** A read waited at a shard for entries applied ahead of an append that failed (the
   * shard's ShardRewind): the gateway reads again from a new read point. */
  READ_POINT_TAKEN_BACK: { grpc: G.Unavailable, internal: true },
  /** A setting loadConfig cannot accept (src/config/errors.ts): main exits with status 2. */
  CONFIG_INVALID: { grpc: G.Unknown, internal: true },
  /** `--help`: loadConfig's way to stop before starting a server. */
  HELP_REQUESTED: { grpc: G.Unknown, internal: true },
  /** A broken invariant (src/assert.ts). */
  ASSERTION_FAILED: { grpc: G.Unknown, internal: true },
  // The Raft core's (src/raft/errors.ts), etcd-raft's errors by their variable names.
  RAFT_PROPOSAL_DROPPED: { grpc: G.Unknown, text: 'raft proposal dropped', internal: true },
  RAFT_STEP_LOCAL_MSG: {
    grpc: G.Unknown, text: 'raft: cannot step raft local message', internal: true,
  },
  RAFT_STEP_PEER_NOT_FOUND: {
    grpc: G.Unknown, text: 'raft: cannot step as peer not found', internal: true,
  },
  RAFT_MALFORMED_MESSAGE: { grpc: G.Unknown, internal: true },
  RAFT_MALFORMED_CONF_CHANGE: {
    grpc: G.Unknown, text: 'raft: malformed conf change entry', internal: true,
  },
  RAFT_BOOTSTRAP_NON_EMPTY: {
    grpc: G.Unknown, text: 'raft: cannot bootstrap a nonempty storage', internal: true,
  },
  RAFT_COMPACTED: {
    grpc: G.Unknown, text: 'requested index is unavailable due to compaction',
    internal: true,
  },
  RAFT_SNAP_OUT_OF_DATE: {
    grpc: G.Unknown, text: 'requested index is older than the existing snapshot',
    internal: true,
  },
  RAFT_UNAVAILABLE: {
    grpc: G.Unknown, text: 'requested entry at index is unavailable', internal: true,
  },
  RAFT_SNAPSHOT_TEMPORARILY_UNAVAILABLE: {
    grpc: G.Unknown, text: 'snapshot is temporarily unavailable', internal: true,
  },
} as const satisfies Record<string, ErrorSpec>;

/** ErrorCode is a stable error code: a row of errorTable. */
export type ErrorCode = keyof typeof errorTable;

/** isErrorCode reports whether `s` is a code of errorTable. */
export function isErrorCode(s: string): s is ErrorCode {
  return Object.hasOwn(errorTable, s);
}

/**
 * EtcdError is every expected failure: a stable code, the statuses of its row, and a message
 * (the row's text unless the error builds its own: a decode error's Go wording, a corrupt
 * file's name and offset). What a client sees is `answerOf(e)`, not the message as such.
 */
export class EtcdError extends Error {
  readonly code: ErrorCode;
  readonly grpcCode: number;
  readonly httpStatus: number;
  constructor(code: ErrorCode, message?: string) {
    const spec: ErrorSpec = errorTable[code];
    super(message ?? spec.text ?? code);
    this.name = new.target.name;
    this.code = code;
    this.grpcCode = spec.grpc;
    this.httpStatus = httpStatusOfGrpc(spec.grpc);
  }
}

/**
 * toEtcdError normalises any thrown value by its `code` alone. An EtcdError passes through; an
 * error that crossed a thread (the runtime's RemoteError keeps `code` and `message`) becomes
 * the EtcdError of its code; anything without a known code is a bug somewhere and becomes
 * INTERNAL (its message stays out of the answer).
 */
export function toEtcdError(err: unknown): EtcdError {
  if (err instanceof EtcdError) return err;
  if (typeof err === 'object' && err !== null) {
    const code = (err as { code?: unknown }).code;
    const message = (err as { message?: unknown }).message;
    if (typeof code === 'string' && isErrorCode(code)) {
      return new EtcdError(code, typeof message === 'string' ? message : undefined);
    }
  }
  return new EtcdError('INTERNAL');
}

/** Answer is what a client is told about an error: code, statuses and text. */
export interface Answer {
  readonly code: ErrorCode;
  readonly grpcCode: number;
  readonly httpStatus: number;
  readonly text: string;
}

const internalAnswer: Answer = {
  code: 'INTERNAL', grpcCode: errorTable.INTERNAL.grpc,
  httpStatus: httpStatusOfGrpc(errorTable.INTERNAL.grpc), text: errorTable.INTERNAL.text,
};

/**
 * answerOf is the client's view of an error: its row's text when etcd has a fixed one, else the
 * error's own message (decode errors); an internal row answers as INTERNAL.
 */
export function answerOf(err: unknown): Answer {
  const e = toEtcdError(err);
  const spec: ErrorSpec = errorTable[e.code];
  if (spec.internal === true) return internalAnswer;
  const text = spec.text ?? e.message;
  return { code: e.code, grpcCode: spec.grpc, httpStatus: httpStatusOfGrpc(spec.grpc), text };
}

// ---- The named errors of the storage and lease cores (etcd's rpctypes names) ----

/** ErrCompacted: a read or compaction names a revision that compaction already removed.
 * Its message is etcd's mvcc.ErrCompacted; clients get rpctypes' "etcdserver: " form. */
export class ErrCompacted extends EtcdError {
  constructor() {
    super('COMPACTED', 'mvcc: required revision has been compacted');
  }
}

/** ErrFutureRev: a read or compaction names a revision the store has not reached (etcd's
 * mvcc.ErrFutureRev; clients get the "etcdserver: " form). */
export class ErrFutureRev extends EtcdError {
  constructor() {
    super('FUTURE_REV', 'mvcc: required revision is a future revision');
  }
}

/** ErrKeyNotFound: a put with ignore_value or ignore_lease on a key that does not exist. */
export class ErrKeyNotFound extends EtcdError {
  constructor() {
    super('KEY_NOT_FOUND');
  }
}

/** ErrLeaseNotFound: a put attaches, or a revoke names, a lease that does not exist. */
export class ErrLeaseNotFound extends EtcdError {
  constructor() {
    super('LEASE_NOT_FOUND');
  }
}

/** ErrLeaseExists: a grant names a lease id that is already granted. */
export class ErrLeaseExists extends EtcdError {
  constructor() {
    super('LEASE_EXISTS');
  }
}

/** ErrLeaseTTLTooLarge: a grant asks for more than leaseTtlSecondsMax. */
export class ErrLeaseTTLTooLarge extends EtcdError {
  constructor() {
    super('LEASE_TTL_TOO_LARGE');
  }
}

/** ErrNotLeader: the request needs the leader (a lessor that is not primary: etcd's
 * lease.ErrNotPrimary, answered as "not leader"). */
export class ErrNotLeader extends EtcdError {
  constructor() {
    super('NOT_LEADER');
  }
}

/** ErrEmptyKey: a request (or a txn compare) has an empty key. */
export class ErrEmptyKey extends EtcdError {
  constructor() {
    super('EMPTY_KEY');
  }
}

/** ErrTooManyOps: a txn branch (or its compares) exceeds txnOpsMax. */
export class ErrTooManyOps extends EtcdError {
  constructor() {
    super('TOO_MANY_OPS');
  }
}

/** ErrDuplicateKey: a txn writes a key twice, or puts a key it also deletes. */
export class ErrDuplicateKey extends EtcdError {
  constructor() {
    super('DUPLICATE_KEY');
  }
}

/** ErrValueProvided: a put sets both ignore_value and a value. */
export class ErrValueProvided extends EtcdError {
  constructor() {
    super('VALUE_PROVIDED');
  }
}

/** ErrLeaseProvided: a put sets both ignore_lease and a lease. */
export class ErrLeaseProvided extends EtcdError {
  constructor() {
    super('LEASE_PROVIDED');
  }
}

/** ErrInvalidArgument: a malformed field (unknown enum value, unsafe integer, wrong type).
 * etcd rejects these while decoding protobuf/JSON, so there is no etcd wording to copy. */
export class ErrInvalidArgument extends EtcdError {
  constructor(what: string) {
    super('BAD_REQUEST', `etcdserver: invalid argument: ${what}`);
  }
}

/** ErrSnapshotCorrupt: ShardStore.fromSnapshot was given something it did not write. */
export class ErrSnapshotCorrupt extends EtcdError {
  constructor(what: string) {
    super('SHARD_SNAPSHOT_CORRUPT', `mvcc: corrupt shard snapshot: ${what}`);
  }
}
