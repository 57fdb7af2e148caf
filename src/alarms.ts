/**
 * alarms: the member's alarms (etcd's alarm store and capped applier) and how a failed disk
 * write is classified. Pure.
 *
 * etcd raises NOSPACE when its backend passes --quota-backend-bytes; while any NOSPACE alarm
 * is active its applier refuses what makes the store grow — puts, txns holding a put, lease
 * grants — with "etcdserver: mvcc: database space exceeded", and serves everything else
 * (reads, deletes, compaction, revocations) until an operator disarms it. MyEtcd raises the
 * same alarm on the same quota, and also when a write to the WAL fails for lack of space.
 * As in etcd, an alarm is a log entry (ACTIVATE / DEACTIVATE with the member id and type)
 * applied on every member and kept in snapshots, so every member sees and enforces every
 * member's alarms, and they survive restarts. A member whose own disk is full cannot append
 * that entry itself: it asks another member to propose it (docs/reliability.md).
 */

/** AlarmType is etcd's etcdserverpb.AlarmType. */
export type AlarmType = 'NONE' | 'NOSPACE' | 'CORRUPT';

/** alarmTypes: etcd's enum values, in number order. */
export const alarmTypes: readonly AlarmType[] = ['NONE', 'NOSPACE', 'CORRUPT'];

/** AlarmAction is etcd's AlarmRequest.AlarmAction. */
export type AlarmAction = 'GET' | 'ACTIVATE' | 'DEACTIVATE';

/** alarmActions: etcd's enum values, in number order. */
export const alarmActions: readonly AlarmAction[] = ['GET', 'ACTIVATE', 'DEACTIVATE'];

/** AlarmMember is etcd's AlarmMember: which member raised which alarm. */
export interface AlarmMember {
  memberId: number;
  alarm: AlarmType;
}

/**
 * AlarmStore holds the active alarms, at most one per (member, type), in activation order.
 * activate/deactivate return the alarm they changed, or undefined when nothing changed
 * (etcd's alarm store does the same, and its response lists only what changed).
 */
export class AlarmStore {
  private readonly active: AlarmMember[] = [];

  /** get lists the active alarms of `type` ('NONE': all of them). */
  get(type: AlarmType = 'NONE'): AlarmMember[] {
    return this.active.filter((a) => type === 'NONE' || a.alarm === type).map((a) => ({ ...a }));
  }

  /** activate raises `alarm` for `memberId`. */
  activate(memberId: number, alarm: AlarmType): AlarmMember | undefined {
    if (alarm === 'NONE' || this.find(memberId, alarm) >= 0) return undefined;
    const a = { memberId, alarm };
    this.active.push(a);
    return { ...a };
  }

  /** deactivate clears `alarm` for `memberId`. */
  deactivate(memberId: number, alarm: AlarmType): AlarmMember | undefined {
    const i = this.find(memberId, alarm);
    if (i < 0) return undefined;
    return this.active.splice(i, 1)[0]!;
  }

  /** fromJson rebuilds a store from get()'s list (a snapshot's; undefined: none). */
  static fromJson(list: readonly AlarmMember[] | undefined): AlarmStore {
    const s = new AlarmStore();
    for (const a of list ?? []) s.activate(a.memberId, a.alarm);
    return s;
  }

  /** has: whether any member's `alarm` is active. */
  has(alarm: AlarmType): boolean {
    return this.active.some((a) => a.alarm === alarm);
  }

  private find(memberId: number, alarm: AlarmType): number {
    return this.active.findIndex((a) => a.memberId === memberId && a.alarm === alarm);
  }
}

/** CappableRequest is the shape isCappedRequest looks at (a write or lease request). */
export type CappableRequest =
  | { type: 'put' }
  | { type: 'txn'; success: readonly CappableOp[]; failure: readonly CappableOp[] }
  | { type: string };

/** CappableOp is one operation of a txn branch. */
export type CappableOp = CappableRequest;

/**
 * isCappedRequest: whether a NOSPACE alarm refuses `req` — etcd's applierV3Capped refuses a
 * put, a txn with a put in either branch (nested txns included) and a lease grant.
 */
export function isCappedRequest(req: CappableRequest): boolean {
  switch (req.type) {
    case 'put':
    case 'leaseGrant':
      return true;
    case 'txn': {
      const t = req as { success: readonly CappableOp[]; failure: readonly CappableOp[] };
      return t.success.some(isCappedRequest) || t.failure.some(isCappedRequest);
    }
    default:
      return false;
  }
}

/**
 * DiskFaultKind classifies a failed write:
 * - 'space': the disk or the file-size limit is full (ENOSPC, EDQUOT, EFBIG). Nothing reached
 *   the disk that is kept; the write can be tried again once there is room (NOSPACE alarm).
 * - 'readOnly': the file system refuses writes (EROFS, EACCES, EPERM); tried again later.
 * - 'io': anything else, and every failed fsync: what the page cache held may be lost, so no
 *   retry is safe; only a restart (recovery from what the disk really holds) is.
 */
export type DiskFaultKind = 'space' | 'readOnly' | 'io';

/** diskFaultKind classifies a failed write's errno code (a failed fsync is always 'io'). */
export function diskFaultKind(code: string | undefined, syscall: 'write' | 'fsync'):
  DiskFaultKind {
  if (syscall === 'fsync') return 'io';
  switch (code) {
    case 'ENOSPC':
    case 'EDQUOT':
    case 'EFBIG':
      return 'space';
    case 'EROFS':
    case 'EACCES':
    case 'EPERM':
      return 'readOnly';
    default:
      return 'io';
  }
}

/** diskFaultCode is the error (src/errors.ts) a write refused for a disk fault answers. */
export function diskFaultCode(kind: DiskFaultKind): 'NO_SPACE' | 'DISK_READ_ONLY' | 'DISK_FAILED' {
  switch (kind) {
    case 'space': return 'NO_SPACE';
    case 'readOnly': return 'DISK_READ_ONLY';
    case 'io': return 'DISK_FAILED';
  }
}

/** diskFaultOfCode is the inverse of diskFaultCode (undefined: not a disk fault). */
export function diskFaultOfCode(code: string | undefined): DiskFaultKind | undefined {
  switch (code) {
    case 'NO_SPACE': return 'space';
    case 'DISK_READ_ONLY': return 'readOnly';
    case 'DISK_FAILED': return 'io';
    default: return undefined;
  }
}

/**
 * diskFaultText is the text a refused write answers with (NO_SPACE answers etcd's own text to
 * clients; this one goes to the log): what failed, with its errno, and what the member does.
 */
export function diskFaultText(kind: DiskFaultKind, errno: string | undefined, syscall: string):
  string {
  const what = `${errno ?? 'an error'} on ${syscall} of the WAL`;
  switch (kind) {
    case 'space':
      return `etcdserver: disk full (${what}); writes are refused (alarm NOSPACE), reads are ` +
        'served; free space, then disarm the alarm';
    case 'readOnly':
      return `etcdserver: disk is read-only (${what}); writes are refused, reads are served; ` +
        'writes resume once the disk takes them again';
    case 'io':
      return `etcdserver: disk write failed (${what}); the outcome of the writes in flight ` +
        'is unknown; writes are refused until the member restarts and recovers from its WAL, ' +
        'reads are served';
  }
}
