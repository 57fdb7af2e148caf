/**
 * failpoints: the grammar and the bookkeeping of MyEtcd's in-process failpoints, etcd gofail's
 * form. GOFAIL_FAILPOINTS names points and what each does when execution reaches it:
 *
 *   GOFAIL_FAILPOINTS='walBeforeSync=sleep(1500);raftAfterSave=20*off->panic'
 *
 * - `name=terms` pairs are separated by `;`. A bare name (the older form, comma-separated
 *   too: `peer-fault,shard-crash-on-read`) switches a flag-like point on.
 * - terms are tried left to right, joined by `->`; `N*action` does `action` on the next N hits
 *   and then gives way to the next term; a term without a count holds for good; past the
 *   last counted term the point is off. `20*off->panic`: the first 20 hits pass, the 21st
 *   crashes.
 * - actions: `off` (pass), `panic` (the process dies at once, as kill -9 would), `sleep(ms)`
 *   (block the thread), `return(v)` (the point's caller acts on v: an errno such as "ENOSPC"
 *   or "EIO" at an I/O point). gofail's percentages are left out: a test replays exactly.
 *
 * Pure: the parser and the per-point countdown (FailpointTerms). The shell that reads the
 * environment and acts is src/runtime/failpoint.ts. The points are listed, with where they
 * sit, in failpointNames and in docs/reliability.md (## Failpoints).
 */
import { EtcdError } from './errors.js';

/** failpointNames lists every point and where it sits; parse refuses any other name. */
export const failpointNames = {
  raftBeforeSave: 'Raft node: before a Ready\'s entries and hard state go to the WAL writer',
  raftAfterSave: 'Raft node: after the WAL writer made a Ready durable, before the core ' +
    'advances and the messages leave',
  walBeforeWrite: 'WAL writer: before the write of a group commit; return("ENOSPC"|"EROFS"|' +
    '"EIO") fails the write with that errno',
  walBeforeSync: 'WAL writer: after the write, before fdatasync; return("EIO") fails the ' +
    'fsync; sleep(ms) makes it slow',
  walAfterSync: 'WAL writer: after fdatasync, before the appends are answered',
  walZeroFill: 'WAL writer: before a fill of zeros ahead of the tail is written (off its ' +
    'thread); return("EIO"|"ENOSPC") fails the fill, sleep(ms) holds it (the thread serves on)',
  raftBeforeSaveSnap: 'Raft node: a snapshot\'s shard dumps are packed, before the WAL ' +
    'writer saves it',
  raftAfterSaveSnap: 'Raft node: the snapshot file and its WAL marker are durable, before ' +
    'the in-memory log is compacted',
  snapBeforeRename: 'snapshot pool thread: the snapshot file is written and synced under ' +
    'its .tmp name, before the rename',
  raftBeforeApplySnap: 'Raft node (follower): a leader\'s snapshot arrived, before it is ' +
    'saved; return(v) fails the install there (the snapshot is dropped, the leader resends)',
  raftAfterApplySnap: 'Raft node (follower): the leader\'s snapshot is saved and restored, ' +
    'before the follower answers',
  raftBeforeRestoreSnap: 'Raft node (follower): the leader\'s snapshot is saved, before the ' +
    'state machine and the shards restore from it; return(v) fails that restore (it is ' +
    'tried again from the saved snapshot)',
  beforeApply: 'Raft node: before a batch of committed entries is applied',
  afterApply: 'Raft node: after a batch of committed entries is applied, before the ' +
    'answers leave',
  'peer-fault': 'flag: enables /debug/peer-fault, which drops the traffic to chosen members',
  'shard-crash-on-read': 'flag: a shard thread throws on a read of the key "failpoint/crash"',
} as const;

/** FailpointName is a point's name. */
export type FailpointName = keyof typeof failpointNames;

/** FailpointAction is what a point does on one hit. `on` is a bare flag's action. */
export type FailpointAction =
  | { kind: 'off' }
  | { kind: 'on' }
  | { kind: 'panic' }
  | { kind: 'sleep'; ms: number }
  | { kind: 'return'; value: string };

/** FailpointTerm is one `N*action` of a chain; count undefined holds for good. */
export interface FailpointTerm {
  readonly count: number | undefined;
  readonly action: FailpointAction;
}

/** failpointSleepMsMax bounds sleep(ms): a point may outwait an election, not a test run. */
export const failpointSleepMsMax = 600_000;

function invalid(what: string): EtcdError {
  return new EtcdError('CONFIG_INVALID', `GOFAIL_FAILPOINTS: ${what}`);
}

function isFailpointName(s: string): s is FailpointName {
  return Object.hasOwn(failpointNames, s);
}

function parseAction(text: string, where: string): FailpointAction {
  const m = /^([a-z]+)(?:\((.*)\))?$/.exec(text);
  if (m === null) throw invalid(`${where}: cannot read the action "${text}"`);
  const [, verb, arg] = m;
  switch (verb) {
    case 'off':
    case 'panic':
      if (arg !== undefined) throw invalid(`${where}: ${verb} takes no argument`);
      return { kind: verb };
    case 'sleep': {
      const ms = Number(arg);
      if (arg === undefined || !/^\d+$/.test(arg) || ms > failpointSleepMsMax) {
        throw invalid(`${where}: sleep takes milliseconds, 0 to ${failpointSleepMsMax}`);
      }
      return { kind: 'sleep', ms };
    }
    case 'return': {
      if (arg === undefined) throw invalid(`${where}: return takes a value`);
      const value = /^".*"$/.test(arg) ? arg.slice(1, -1) : arg;
      if (!/^[A-Za-z0-9_]+$/.test(value)) {
        throw invalid(`${where}: return's value is a word such as "ENOSPC"`);
      }
      return { kind: 'return', value };
    }
    default:
      throw invalid(`${where}: unknown action "${verb}" (off, panic, sleep(ms), return(v))`);
  }
}

function parseTerms(text: string, name: string): FailpointTerm[] {
  return text.split('->').map((raw, i) => {
    const t = raw.trim();
    const where = `${name} term ${i + 1}`;
    const m = /^(?:(\d+)\*)?(.+)$/.exec(t);
    if (m === null || t === '') throw invalid(`${where}: empty`);
    const count = m[1] === undefined ? undefined : Number(m[1]);
    if (count !== undefined && (!Number.isSafeInteger(count) || count < 1)) {
      throw invalid(`${where}: a count is a positive integer`);
    }
    return { count, action: parseAction(m[2]!.trim(), where) };
  });
}

/**
 * parseFailpoints reads GOFAIL_FAILPOINTS (see the file comment) into each named point's
 * terms. Throws CONFIG_INVALID naming the part it cannot read, or an unknown point (a typo
 * would otherwise test nothing, silently).
 */
export function parseFailpoints(spec: string): Map<FailpointName, FailpointTerm[]> {
  const out = new Map<FailpointName, FailpointTerm[]>();
  for (const part of spec.split(';')) {
    const p = part.trim();
    if (p === '') continue;
    const eq = p.indexOf('=');
    const pairs: [string, FailpointTerm[]][] = eq < 0
      // The older form: flags, comma-separated.
      ? p.split(',').map((f) => f.trim()).filter((f) => f !== '')
        .map((f): [string, FailpointTerm[]] => [f, [{ count: undefined, action: { kind: 'on' } }]])
      : [[p.slice(0, eq).trim(), parseTerms(p.slice(eq + 1), p.slice(0, eq).trim())]];
    for (const [name, terms] of pairs) {
      if (!isFailpointName(name)) {
        throw invalid(`unknown failpoint "${name}" (known: ${Object.keys(failpointNames)
          .join(', ')})`);
      }
      out.set(name, terms);
    }
  }
  return out;
}

/**
 * FailpointTerms is one point's countdown through its terms: next() is the action of the
 * next hit. Example: `2*return("EIO")->off` gives return, return, off, off, …
 */
export class FailpointTerms {
  private at = 0;
  /** used: hits taken by the current term. */
  private used = 0;
  constructor(private readonly terms: readonly FailpointTerm[]) {}

  /** next is the action for one hit of the point. */
  next(): FailpointAction {
    for (;;) {
      const t = this.terms[this.at];
      if (t === undefined) return { kind: 'off' };
      if (t.count === undefined) return t.action;
      if (this.used < t.count) {
        this.used++;
        return t.action;
      }
      this.at++;
      this.used = 0;
    }
  }
}
