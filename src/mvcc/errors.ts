/**
 * Expected failures of the MVCC layer, each a class with a stable `code`, etcd's exact
 * message and the gRPC status code etcd answers with (so the HTTP gateway maps errors with
 * one table). Messages come from etcd v3.4: mvcc/kvstore.go, etcdserver/errors.go and
 * etcdserver/api/v3rpc/rpctypes/error.go.
 */

/** GrpcCode lists the gRPC status codes these errors map to. */
export const GrpcCode = {
  InvalidArgument: 3,
  NotFound: 5,
  FailedPrecondition: 9,
  OutOfRange: 11,
  DataLoss: 15,
} as const;

/** MvccError is the base of every typed MVCC error. */
export class MvccError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly grpcCode: number,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** ErrCompacted: a read or compaction names a revision that compaction already removed. */
export class ErrCompacted extends MvccError {
  constructor() {
    super('ErrCompacted', 'mvcc: required revision has been compacted', GrpcCode.OutOfRange);
  }
}

/** ErrFutureRev: a read or compaction names a revision the store has not reached. */
export class ErrFutureRev extends MvccError {
  constructor() {
    super('ErrFutureRev', 'mvcc: required revision is a future revision', GrpcCode.OutOfRange);
  }
}

/** ErrKeyNotFound: a put with ignore_value or ignore_lease on a key that does not exist. */
export class ErrKeyNotFound extends MvccError {
  constructor() {
    super('ErrKeyNotFound', 'etcdserver: key not found', GrpcCode.InvalidArgument);
  }
}

/** ErrLeaseNotFound: a put attaches, or a revoke names, a lease that does not exist. */
export class ErrLeaseNotFound extends MvccError {
  constructor() {
    super('ErrLeaseNotFound', 'etcdserver: requested lease not found', GrpcCode.NotFound);
  }
}

/** ErrLeaseExists: a grant names a lease id that is already granted. */
export class ErrLeaseExists extends MvccError {
  constructor() {
    super('ErrLeaseExists', 'etcdserver: lease already exists', GrpcCode.FailedPrecondition);
  }
}

/** ErrEmptyKey: a request (or a txn compare) has an empty key. */
export class ErrEmptyKey extends MvccError {
  constructor() {
    super('ErrEmptyKey', 'etcdserver: key is not provided', GrpcCode.InvalidArgument);
  }
}

/** ErrTooManyOps: a txn branch (or its compares) exceeds txnOpsMax. */
export class ErrTooManyOps extends MvccError {
  constructor() {
    super(
      'ErrTooManyOps',
      'etcdserver: too many operations in txn request',
      GrpcCode.InvalidArgument,
    );
  }
}

/** ErrDuplicateKey: a txn writes a key twice, or puts a key it also deletes. */
export class ErrDuplicateKey extends MvccError {
  constructor() {
    super(
      'ErrDuplicateKey',
      'etcdserver: duplicate key given in txn request',
      GrpcCode.InvalidArgument,
    );
  }
}

/** ErrValueProvided: a put sets both ignore_value and a value. */
export class ErrValueProvided extends MvccError {
  constructor() {
    super('ErrValueProvided', 'etcdserver: value is provided', GrpcCode.InvalidArgument);
  }
}

/** ErrLeaseProvided: a put sets both ignore_lease and a lease. */
export class ErrLeaseProvided extends MvccError {
  constructor() {
    super('ErrLeaseProvided', 'etcdserver: lease is provided', GrpcCode.InvalidArgument);
  }
}

/** ErrInvalidArgument: a malformed field (unknown enum value, unsafe integer, wrong type).
 * etcd rejects these while decoding protobuf/JSON, so there is no etcd wording to copy. */
export class ErrInvalidArgument extends MvccError {
  constructor(what: string) {
    super('ErrInvalidArgument', `etcdserver: invalid argument: ${what}`, GrpcCode.InvalidArgument);
  }
}

/** ErrSnapshotCorrupt: ShardStore.fromSnapshot was given something it did not write. */
export class ErrSnapshotCorrupt extends MvccError {
  constructor(what: string) {
    super('ErrSnapshotCorrupt', `mvcc: corrupt shard snapshot: ${what}`, GrpcCode.DataLoss);
  }
}
