/**
 * Protobuf sizes of requests, for etcd's two size limits (recorded: put-largest,
 * err-put-too-large, err-put-grpc-max):
 * 1. grpc-go refuses any request message over requestBytesMax + 512 KiB (2 MiB by default)
 *    with ResourceExhausted "grpc: received message larger than max (N vs. 2097152)" → 429.
 * 2. A write's raft proposal (InternalRaftRequest: a 14-byte header with the request id, then
 *    the request as field 4..7) over requestBytesMax is "etcdserver: request is too large"
 *    → 400. Reads never go through raft and only meet limit 1.
 * Our sizes are computed from the decoded request; they equal etcd's for every normal
 * request (fields set to their zero value in JSON are not counted, as protobuf omits them).
 */
import { grpcOverheadBytes, requestBytesMax } from '../constants.js';
import { requestLimits } from './limits.js';
import type {
  Compare,
  CompactionRequest,
  DeleteRangeRequest,
  PutRequest,
  RangeRequest,
  RequestOp,
  TxnRequest,
} from '../mvcc/types.js';
import { EtcdError } from '../errors.js';

/** grpcMaxRecvBytes is the largest request message grpc-go lets through to etcd by default
 * (--max-request-bytes unset; the limit in force is requestLimits().grpcRecvBytesMax). */
export const grpcMaxRecvBytes = requestBytesMax + grpcOverheadBytes;
/** raftHeaderBytes: InternalRaftRequest's header field (tag 2 + len 1 + id tag 1 + id 10:
 * etcd's request ids have the top bit set). Measured: put-largest vs err-put-too-large. */
export const raftHeaderBytes = 14;

/** varintBytes is the length of n as a protobuf varint (negative int64s take 10 bytes). */
export function varintBytes(n: number): number {
  if (n < 0) return 10;
  let len = 1;
  while (n >= 128) {
    n = Math.floor(n / 128);
    len++;
  }
  return len;
}

function bytesField(len: number): number {
  return len === 0 ? 0 : 1 + varintBytes(len) + len;
}
function intField(n: number | undefined): number {
  return n ? 1 + varintBytes(n) : 0;
}
function boolField(b: boolean | undefined): number {
  return b ? 2 : 0;
}
function messageField(size: number): number {
  return 1 + varintBytes(size) + size;
}

const sortOrders = { NONE: 0, ASCEND: 1, DESCEND: 2 } as const;
const sortTargets = { KEY: 0, VERSION: 1, CREATE: 2, MOD: 3, VALUE: 4 } as const;
const compareResults = { EQUAL: 0, GREATER: 1, LESS: 2, NOT_EQUAL: 3 } as const;
const compareTargets = { VERSION: 0, CREATE: 1, MOD: 2, VALUE: 3, LEASE: 4 } as const;

export function rangeRequestBytes(r: RangeRequest): number {
  return (
    bytesField(r.key.length) + bytesField(r.rangeEnd?.length ?? 0) + intField(r.limit) +
    intField(r.revision) + intField(sortOrders[r.sortOrder ?? 'NONE']) +
    intField(sortTargets[r.sortTarget ?? 'KEY']) + boolField(r.serializable) +
    boolField(r.keysOnly) + boolField(r.countOnly) + intField(r.minModRevision) +
    intField(r.maxModRevision) + intField(r.minCreateRevision) + intField(r.maxCreateRevision)
  );
}

export function putRequestBytes(r: PutRequest): number {
  return (
    bytesField(r.key.length) + bytesField(r.value.length) + intField(r.lease) +
    boolField(r.prevKv) + boolField(r.ignoreValue) + boolField(r.ignoreLease)
  );
}

export function deleteRangeRequestBytes(r: DeleteRangeRequest): number {
  return bytesField(r.key.length) + bytesField(r.rangeEnd?.length ?? 0) + boolField(r.prevKv);
}

function compareBytes(c: Compare): number {
  let union: number;
  switch (c.target) {
    case 'VERSION': union = 1 + varintBytes(c.version ?? 0); break;
    case 'CREATE': union = 1 + varintBytes(c.createRevision ?? 0); break;
    case 'MOD': union = 1 + varintBytes(c.modRevision ?? 0); break;
    case 'LEASE': union = 1 + varintBytes(c.lease ?? 0); break;
    case 'VALUE': union = 1 + varintBytes(c.value?.length ?? 0) + (c.value?.length ?? 0); break;
  }
  const end = c.rangeEnd?.length ?? 0;
  return (
    intField(compareResults[c.result]) + intField(compareTargets[c.target]) +
    bytesField(c.key.length) + union + (end === 0 ? 0 : 2 + varintBytes(end) + end)
  );
}

function opBytes(op: RequestOp): number {
  switch (op.type) {
    case 'range': return messageField(rangeRequestBytes(op));
    case 'put': return messageField(putRequestBytes(op));
    case 'deleteRange': return messageField(deleteRangeRequestBytes(op));
    case 'txn': return messageField(txnRequestBytes(op));
  }
}

export function txnRequestBytes(r: TxnRequest): number {
  let n = 0;
  for (const c of r.compare) n += messageField(compareBytes(c));
  for (const op of r.success) n += messageField(opBytes(op));
  for (const op of r.failure) n += messageField(opBytes(op));
  return n;
}

export function compactionRequestBytes(r: CompactionRequest): number {
  return intField(r.revision) + boolField(r.physical);
}

/** checkGrpcSize throws etcd's 429 when a request message exceeds what grpc lets through
 * (--max-request-bytes + 512 KiB). */
export function checkGrpcSize(sizeBytes: number): void {
  const max = requestLimits().grpcRecvBytesMax;
  if (sizeBytes > max) {
    throw new EtcdError(
      'GRPC_MESSAGE_TOO_LARGE',
      `grpc: received message larger than max (${sizeBytes} vs. ${max})`,
    );
  }
}

/** checkRaftSize throws "etcdserver: request is too large" for a write whose raft proposal
 * would exceed --max-request-bytes. */
export function checkRaftSize(sizeBytes: number): void {
  const proposal = raftHeaderBytes + 1 + varintBytes(sizeBytes) + sizeBytes;
  if (proposal > requestLimits().requestBytesMax) throw new EtcdError('REQUEST_TOO_LARGE');
}
