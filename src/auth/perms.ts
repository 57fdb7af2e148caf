import { EtcdError } from '../errors.js';
import type { RequestOp, TxnRequest, WriteRequest } from '../mvcc/types.js';
import type { Bytes } from '../types.js';
import type { AuthInfo, AuthStore, Permission } from './store.js';

/**
 * perms: the one place that decides whether a request may run (etcd's isOpPermitted and
 * checkTxnReqsPermission), for every front end: the JSON gateway, /v1, and the Raft node's
 * apply-time check. A permission is an interval of keys: a single key k is [k, k+"\0"), a range
 * [key, rangeEnd), and rangeEnd "\0" reaches past every key. A request's interval is allowed
 * when the union of the user's intervals of the needed type covers it, so two adjacent grants
 * ([/a, /b) and [/b, /c)) together allow a range read of [/a, /c).
 *
 * Worked example: role r holds READ [/a/, /a0) and READWRITE /k.
 *   range /a/x             → covered by [/a/, /a0)                   allowed
 *   range [/a/, /b)        → [/a0, /b) is not covered                permission denied
 *   txn if /k then put /k  → compare READ /k, put WRITE /k          allowed
 *   txn if /k then put /a/x else …  → put needs WRITE /a/x          permission denied
 */

/** Need is what kind of access an interval needs. */
export type Need = 'read' | 'write';

/** Interval is [start, end); end null reaches past every key. */
interface Interval {
  start: Bytes;
  end: Bytes | null;
}

function intervalOf(key: Bytes, rangeEnd: Bytes | undefined): Interval {
  if (rangeEnd === undefined || rangeEnd === '') return { start: key, end: key + '\0' };
  if (rangeEnd === '\0') return { start: key, end: null };
  // An empty or inverted range reads nothing; it still needs its first key.
  if (rangeEnd <= key) return { start: key, end: key + '\0' };
  return { start: key, end: rangeEnd };
}

function grants(p: Permission, need: Need): boolean {
  if (p.permType === 'READWRITE') return true;
  return need === 'read' ? p.permType === 'READ' : p.permType === 'WRITE';
}

/** covered reports whether the union of `have` covers `want`. */
function covered(want: Interval, have: Interval[]): boolean {
  const sorted = [...have].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  let pos = want.start;
  for (const iv of sorted) {
    if (iv.start > pos) break;
    if (iv.end === null) return true;
    if (iv.end > pos) pos = iv.end;
    if (want.end !== null && pos >= want.end) return true;
  }
  return false;
}

/** rangePermitted: the permissions of the needed type cover [key, rangeEnd). */
export function rangePermitted(perms: Permission[], need: Need, key: Bytes,
  rangeEnd?: Bytes): boolean {
  const have = perms.filter((p) => grants(p, need)).map((p) => intervalOf(p.key, p.rangeEnd));
  return covered(intervalOf(key, rangeEnd), have);
}

/** Access is one interval a request touches and what it needs there. */
export interface Access {
  need: Need;
  key: Bytes;
  rangeEnd?: Bytes;
}

/** accessesOf lists what a KV request touches: a txn's compares and both branches (etcd
 * checks every op it may run, not only the branch taken). Compaction is an admin matter. */
export function accessesOf(req: RequestOp | WriteRequest, out: Access[] = []): Access[] {
  switch (req.type) {
    case 'range':
      out.push({ need: 'read', key: req.key, rangeEnd: req.rangeEnd });
      break;
    case 'put':
      out.push({ need: 'write', key: req.key });
      if (req.prevKv === true) out.push({ need: 'read', key: req.key });
      break;
    case 'deleteRange':
      out.push({ need: 'write', key: req.key, rangeEnd: req.rangeEnd });
      if (req.prevKv === true) out.push({ need: 'read', key: req.key, rangeEnd: req.rangeEnd });
      break;
    case 'txn':
      txnAccesses(req, out);
      break;
    case 'compaction':
      break;
  }
  return out;
}

function txnAccesses(t: TxnRequest, out: Access[]): void {
  for (const c of t.compare) out.push({ need: 'read', key: c.key, rangeEnd: c.rangeEnd });
  for (const op of t.success) accessesOf(op, out);
  for (const op of t.failure) accessesOf(op, out);
}

/**
 * checkUser is etcd's isOpPermitted prologue: nothing while auth is disabled; a request
 * without a user is refused ("user name is empty"); one checked at an older auth revision is
 * refused so that a permission change is never bypassed ("revision of auth store is old").
 * True when the user holds the root role (every access allowed).
 */
export function checkUser(store: AuthStore, by: AuthInfo): boolean {
  if (!store.enabled) return true;
  if (by.user === '' || by.rev === 0) throw new EtcdError('USER_EMPTY');
  if (by.rev < store.revision) throw new EtcdError('AUTH_OLD_REVISION');
  if (store.user(by.user) === undefined) throw new EtcdError('PERMISSION_DENIED');
  return store.hasRootRole(by.user);
}

/** checkAccesses throws "permission denied" unless every access is permitted. */
export function checkAccesses(store: AuthStore, by: AuthInfo, accesses: Access[]): void {
  if (checkUser(store, by)) return;
  const perms = store.permissions(by.user);
  for (const a of accesses) {
    if (!rangePermitted(perms, a.need, a.key, a.rangeEnd)) {
      throw new EtcdError('PERMISSION_DENIED');
    }
  }
}

/**
 * checkRequest checks a KV request. `leaseKeys` gives the keys attached to a lease: a put that
 * attaches a lease needs write access to the lease's keys too (etcd's checkLeasePuts), since
 * revoking the lease would delete them. Compaction needs the root role.
 */
export function checkRequest(store: AuthStore, by: AuthInfo, req: RequestOp | WriteRequest,
  leaseKeys?: (lease: number) => Bytes[]): void {
  if (!store.enabled) return;
  if (req.type === 'compaction') {
    store.checkAdmin(by);
    return;
  }
  const accesses = accessesOf(req);
  if (leaseKeys !== undefined) {
    for (const lease of leasesOf(req)) {
      for (const k of leaseKeys(lease)) accesses.push({ need: 'write', key: k });
    }
  }
  checkAccesses(store, by, accesses);
}

function leasesOf(req: RequestOp | WriteRequest, out: number[] = []): number[] {
  if (req.type === 'put' && req.lease !== undefined && req.lease !== 0) out.push(req.lease);
  if (req.type === 'txn') {
    for (const op of req.success) leasesOf(op, out);
    for (const op of req.failure) leasesOf(op, out);
  }
  return out;
}

/** checkLeaseRevoke: revoking a lease deletes its keys, so it needs write access to each. */
export function checkLeaseRevoke(store: AuthStore, by: AuthInfo, keys: Bytes[]): void {
  checkAccesses(store, by, keys.map((key) => ({ need: 'write' as const, key })));
}
