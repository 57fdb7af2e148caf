import { txnOpsMax as defaultMaxTxnOps } from '../constants.js';
import type { Bytes } from '../types.js';
import {
  ErrDuplicateKey,
  ErrEmptyKey,
  ErrInvalidArgument,
  ErrKeyNotFound,
  ErrLeaseProvided,
  ErrTooManyOps,
  ErrValueProvided,
} from '../errors.js';
import type {
  Compare,
  DeleteRangeRequest,
  PutRequest,
  RangeRequest,
  RequestOp,
  TxnRequest,
  WriteRequest,
} from './types.js';

/**
 * Request checks etcd makes before proposing (etcdserver/api/v3rpc/key.go), so that a
 * request that could never apply never enters the Raft log. They throw typed errors with
 * etcd's wording. Beyond etcd, they also refuse what our decoded form could carry but
 * protobuf could not (unknown enum strings, unsafe integers): ErrInvalidArgument.
 */

const sortOrders = new Set(['NONE', 'ASCEND', 'DESCEND']);
const sortTargets = new Set(['KEY', 'VERSION', 'CREATE', 'MOD', 'VALUE']);
const compareTargets = new Set(['VERSION', 'CREATE', 'MOD', 'VALUE', 'LEASE']);
const compareResults = new Set(['EQUAL', 'GREATER', 'LESS', 'NOT_EQUAL']);

/** validateRangeRequest is etcd's checkRangeRequest plus field sanity. */
export function validateRangeRequest(r: RangeRequest): void {
  checkKey(r.key, r.rangeEnd);
  if (r.sortOrder !== undefined && !sortOrders.has(r.sortOrder)) {
    throw new ErrInvalidArgument(`sort order ${String(r.sortOrder)}`);
  }
  if (r.sortTarget !== undefined && !sortTargets.has(r.sortTarget)) {
    throw new ErrInvalidArgument(`sort target ${String(r.sortTarget)}`);
  }
  checkInt(r.limit, 'limit');
  checkInt(r.revision, 'revision');
  checkInt(r.minModRevision, 'min_mod_revision');
  checkInt(r.maxModRevision, 'max_mod_revision');
  checkInt(r.minCreateRevision, 'min_create_revision');
  checkInt(r.maxCreateRevision, 'max_create_revision');
}

/** validatePutRequest is etcd's checkPutRequest. */
export function validatePutRequest(r: PutRequest): void {
  checkKey(r.key);
  if (typeof r.value !== 'string') throw new ErrInvalidArgument('value');
  checkInt(r.lease, 'lease');
  if (r.ignoreValue && r.value.length !== 0) throw new ErrValueProvided();
  if (r.ignoreLease && (r.lease ?? 0) !== 0) throw new ErrLeaseProvided();
}

/** validateDeleteRangeRequest is etcd's checkDeleteRequest. */
export function validateDeleteRangeRequest(r: DeleteRangeRequest): void {
  checkKey(r.key, r.rangeEnd);
}

/**
 * validateTxnRequest is etcd's checkTxnRequest followed by checkIntervals on both branches.
 * A txn may have at most txnOpsMax compares and at most txnOpsMax ops per branch; a nested
 * txn gets what its parent left (txnOpsMax minus the parent's largest count).
 */
export function validateTxnRequest(r: TxnRequest, maxTxnOps = defaultMaxTxnOps): void {
  checkTxn(r, maxTxnOps);
  // Overlaps are checked after the sizes, so that the interval check is never quadratic in
  // an oversized request (etcd's order).
  checkIntervals(r.success);
  checkIntervals(r.failure);
}

/** validateWriteRequest checks any request bound for the Raft log. */
export function validateWriteRequest(r: WriteRequest, maxTxnOps = defaultMaxTxnOps): void {
  switch (r.type) {
    case 'put':
      return validatePutRequest(r);
    case 'deleteRange':
      return validateDeleteRangeRequest(r);
    case 'txn':
      return validateTxnRequest(r, maxTxnOps);
    case 'compaction':
      return checkInt(r.revision, 'revision', true);
    default:
      throw new ErrInvalidArgument(`request type ${String((r as { type?: unknown }).type)}`);
  }
}

function checkTxn(r: TxnRequest, budget: number): void {
  if (!Array.isArray(r.compare) || !Array.isArray(r.success) || !Array.isArray(r.failure)) {
    throw new ErrInvalidArgument('txn compare/success/failure');
  }
  const opc = Math.max(r.compare.length, r.success.length, r.failure.length);
  if (opc > budget) throw new ErrTooManyOps();
  for (const c of r.compare) checkCompare(c);
  for (const op of r.success) checkOp(op, budget - opc);
  for (const op of r.failure) checkOp(op, budget - opc);
}

function checkOp(op: RequestOp, budget: number): void {
  switch (op?.type) {
    case 'range':
      return validateRangeRequest(op);
    case 'put':
      return validatePutRequest(op);
    case 'deleteRange':
      return validateDeleteRangeRequest(op);
    case 'txn':
      return checkTxn(op, budget);
    default:
      // etcd: "empty op / nil entry" → ErrGRPCKeyNotFound.
      throw new ErrKeyNotFound();
  }
}

function checkCompare(c: Compare): void {
  if (typeof c.key !== 'string' || c.key.length === 0) throw new ErrEmptyKey();
  if (!compareTargets.has(c.target)) throw new ErrInvalidArgument(`compare target ${c.target}`);
  if (!compareResults.has(c.result)) throw new ErrInvalidArgument(`compare result ${c.result}`);
  if (c.rangeEnd !== undefined && typeof c.rangeEnd !== 'string') {
    throw new ErrInvalidArgument('compare range_end');
  }
  checkInt(c.version, 'compare version');
  checkInt(c.createRevision, 'compare create_revision');
  checkInt(c.modRevision, 'compare mod_revision');
  checkInt(c.lease, 'compare lease');
  if (c.value !== undefined && typeof c.value !== 'string') {
    throw new ErrInvalidArgument('compare value');
  }
}

/** Interval is a delete's key selection for checkIntervals: [start, end), where a point
 * delete is [key, key+"\0"). */
interface Interval {
  start: Bytes;
  end: Bytes;
}

/** hits reports whether a delete interval covers put key k. etcd builds the interval from
 * the raw range_end, so a from-key delete (range_end "\0") is [key, "\0"): it covers no key
 * at all and never conflicts with a put — an etcd quirk kept for compatibility. */
function hits(dels: readonly Interval[], k: Bytes): boolean {
  return dels.some((d) => d.start <= k && k < d.end);
}

/**
 * checkIntervals is etcd's: within one branch, no key may be put twice and no put may fall
 * in a delete range, counting what nested txns (either of their branches) put and delete;
 * a key put in both branches of one nested txn is fine (only one runs). Deletes may
 * overlap each other. It returns the puts and deletes for the level above.
 */
function checkIntervals(ops: readonly RequestOp[]): { puts: Set<Bytes>; dels: Interval[] } {
  const dels: Interval[] = [];
  for (const op of ops) {
    if (op.type !== 'deleteRange') continue;
    const hasEnd = op.rangeEnd !== undefined && op.rangeEnd !== '';
    dels.push({ start: op.key, end: hasEnd ? op.rangeEnd! : op.key + '\0' });
  }
  const puts = new Set<Bytes>();
  for (const op of ops) {
    if (op.type !== 'txn') continue;
    const then = checkIntervals(op.success);
    const els = checkIntervals(op.failure);
    for (const k of then.puts) {
      if (puts.has(k) || hits(dels, k)) throw new ErrDuplicateKey();
      puts.add(k);
    }
    for (const k of els.puts) {
      if ((puts.has(k) && !then.puts.has(k)) || hits(dels, k)) throw new ErrDuplicateKey();
      puts.add(k);
    }
    dels.push(...then.dels, ...els.dels);
  }
  for (const op of ops) {
    if (op.type !== 'put') continue;
    if (puts.has(op.key) || hits(dels, op.key)) throw new ErrDuplicateKey();
    puts.add(op.key);
  }
  return { puts, dels };
}

function checkKey(key: unknown, rangeEnd?: unknown): void {
  if (typeof key !== 'string' || key.length === 0) throw new ErrEmptyKey();
  if (rangeEnd !== undefined && typeof rangeEnd !== 'string') {
    throw new ErrInvalidArgument('range_end');
  }
}

function checkInt(n: unknown, name: string, required = false): void {
  if (n === undefined && !required) return;
  if (typeof n !== 'number' || !Number.isSafeInteger(n)) {
    throw new ErrInvalidArgument(`${name} is not a safe integer`);
  }
}
