import { type Model, type Operation, unionFind } from './checker.js';

/**
 * kv-model: etcd's key-value store as a model for the checker — get, put, delete, and txn
 * (compares on value, version, mod or create revision; then/else branches of gets, puts and
 * deletes, on one or several keys) with revisions.
 *
 * Revisions are global in etcd, which would make every key depend on every other. The model
 * keeps them checkable per partition instead: a partition's state carries `hi`, the highest
 * revision its linearized operations have shown. An operation whose header revision is known
 * must not go back (a read: revision ≥ hi; a write that changed something: revision > hi), a
 * put's revision becomes its key's mod revision, and a read must return the mod revision the
 * state holds. What crosses partitions — revision order against real time, distinct revisions
 * for distinct writes — is checked by `checkRevisions` over the whole history. Revisions may
 * skip (a lease revoked, a member's own writes outside the history), so the model never
 * requires revision = hi + 1.
 *
 * Keys of a history are partitioned by the connected components of keys touched together (a
 * multi-key txn joins its keys), the P-compositionality that makes long histories cheap.
 *
 * Worked example (one key, two clients): A `put x=1` returns at revision 5; B's concurrent
 * `get x` returns x=1 with mod revision 5 at header revision 5 → A then B, legal. Had B
 * returned x absent at header revision 6, B must come before A (x absent) yet after revision 5
 * (6 > 5): no order works — illegal (a stale read).
 */

/** KvGet reads one key. */
export interface KvGet { t: 'get'; key: string }
/** KvPut writes one key; `value` should be unique per put so that a read names its write. */
export interface KvPut { t: 'put'; key: string; value: string }
/** KvDel deletes one key. */
export interface KvDel { t: 'del'; key: string }
/** KvCompare is one compare of a txn. */
export interface KvCompare {
  key: string;
  target: 'value' | 'version' | 'mod' | 'create';
  op: '=' | '!=' | '<' | '>';
  /** value: a string for target 'value', a number otherwise. */
  value: string | number;
}
/** KvTxn is etcd's transaction restricted to single-key requests. */
export interface KvTxn { t: 'txn'; cmp: KvCompare[]; then: KvSub[]; else: KvSub[] }
/** KvSub is a request inside a txn branch. */
export type KvSub = KvGet | KvPut | KvDel;
/** KvInput is any operation of the model. */
export type KvInput = KvSub | KvTxn;

/** KvRead is what a get returned for its key (undefined: absent). Fields left undefined
 * were not recorded and are not checked. */
export interface KvRead { value: string; mod?: number; create?: number; version?: number }
/** KvSubOut is a sub-request's result: a get's kv, a delete's count, nothing for a put. */
export type KvSubOut = { kv: KvRead | undefined } | { deleted: number } | Record<string, never>;
/** KvOutput is a known outcome: `rev` the header revision when recorded, `succeeded` for a
 * txn, `results` one per request of the branch taken (a plain get/put/del has one). */
export interface KvOutput { rev?: number; succeeded?: boolean; results: KvSubOut[] }

/** KvEntry is a key's latest version in a state (mod/create -1: written by an operation
 * whose revision is unknown). */
interface KvEntry { v: string; mod: number; create: number; ver: number }
/** KvState is the keys of one partition plus `hi`, the highest revision seen there. */
export interface KvState { keys: Map<string, KvEntry>; hi: number }

/** keysOf lists the keys an operation touches. */
export function keysOf(i: KvInput): string[] {
  if (i.t !== 'txn') return [i.key];
  return [...new Set([...i.cmp.map((c) => c.key), ...i.then.map((s) => s.key),
    ...i.else.map((s) => s.key)])];
}

/** isWrite says whether a request may change the store. */
function isWrite(s: KvSub): boolean {
  return s.t !== 'get';
}

/** compareHolds evaluates one compare; undefined when it depends on an unknown revision.
 * A missing key compares as etcd does: value "" never equal unless "", version/mod/create 0. */
function compareHolds(e: KvEntry | undefined, c: KvCompare): boolean | undefined {
  let have: string | number;
  switch (c.target) {
    case 'value': have = e?.v ?? ''; break;
    case 'version': have = e?.ver ?? 0; break;
    case 'mod': have = e?.mod ?? 0; break;
    case 'create': have = e?.create ?? 0; break;
  }
  if (have === -1) return undefined;
  if (c.target === 'value' && e === undefined) {
    // etcd: a compare on the value of a missing key is false (there is no value to compare).
    return false;
  }
  switch (c.op) {
    case '=': return have === c.value;
    case '!=': return have !== c.value;
    case '<': return have < c.value;
    case '>': return have > c.value;
  }
}

/** readMatches compares a recorded read with a state's entry, learning unknown revisions;
 * returns the (possibly refined) entry, or null when they disagree. */
function readMatches(e: KvEntry | undefined, r: KvRead | undefined):
  KvEntry | undefined | null {
  if (e === undefined || r === undefined) return e === r ? e : null;
  if (r.value !== e.v) return null;
  if (r.version !== undefined && r.version !== e.ver) return null;
  let out = e;
  if (r.mod !== undefined) {
    if (e.mod === -1) out = { ...out, mod: r.mod };
    else if (e.mod !== r.mod) return null;
  }
  if (r.create !== undefined) {
    if (e.create === -1) out = { ...out, create: r.create };
    else if (e.create !== r.create) return null;
  }
  return out;
}

/** applyBranch runs a branch's requests on a copy of `keys` at revision `rev` (-1 unknown);
 * returns the new keys and whether anything changed, or null when a recorded result
 * disagrees. */
function applyBranch(keys: Map<string, KvEntry>, subs: KvSub[], rev: number,
  results: KvSubOut[] | undefined): { keys: Map<string, KvEntry>; changed: boolean } | null {
  const out = new Map(keys);
  let changed = false;
  for (let j = 0; j < subs.length; j++) {
    const s = subs[j]!;
    const r = results?.[j];
    const cur = out.get(s.key);
    switch (s.t) {
      case 'get': {
        if (r === undefined || !('kv' in r)) break; // not recorded
        const m = readMatches(cur, r.kv);
        if (m === null) return null;
        if (m !== undefined) out.set(s.key, m);
        break;
      }
      case 'put':
        out.set(s.key, { v: s.value, mod: rev, create: cur === undefined ? rev : cur.create,
          ver: (cur?.ver ?? 0) + 1 });
        changed = true;
        break;
      case 'del': {
        const n = cur === undefined ? 0 : 1;
        if (r !== undefined && 'deleted' in r && r.deleted !== n) return null;
        if (n === 1) {
          out.delete(s.key);
          changed = true;
        }
        break;
      }
    }
  }
  return { keys: out, changed };
}

/** kvStep is the model's transition for one operation. */
function kvStep(s: KvState, i: KvInput, o: KvOutput | undefined): KvState[] {
  const rev = o?.rev;
  if (rev !== undefined && rev < s.hi) return [];
  const txn: KvTxn = i.t === 'txn' ? i : { t: 'txn', cmp: [], then: [i], else: [] };
  let branches: boolean[];
  const holds = txn.cmp.map((c) => compareHolds(s.keys.get(c.key), c));
  if (holds.includes(false)) branches = [false];
  else if (holds.includes(undefined)) branches = [true, false];
  else branches = [true];
  if (o?.succeeded !== undefined) branches = branches.filter((b) => b === o.succeeded);
  const next: KvState[] = [];
  for (const b of branches) {
    const subs = b ? txn.then : txn.else;
    const wrote = subs.some(isWrite);
    const r = applyBranch(s.keys, subs, wrote && rev !== undefined ? rev : -1, o?.results);
    if (r === null) continue;
    if (rev === undefined) {
      next.push({ keys: r.keys, hi: s.hi });
    } else if (r.changed) {
      if (rev > s.hi) next.push({ keys: r.keys, hi: rev });
    } else {
      next.push({ keys: r.keys, hi: rev });
    }
  }
  return next;
}

/** forgetVersions sets every version to 0. */
function forgetVersions(s: KvState): KvState {
  const keys = new Map<string, KvEntry>();
  for (const [k, e] of s.keys) keys.set(k, e.ver === 0 ? e : { ...e, ver: 0 });
  return { keys, hi: s.hi };
}

/** kvKey renders a state canonically. */
function kvKey(s: KvState): string {
  const ks = [...s.keys.keys()].sort();
  return s.hi + ';' + ks.map((k) => {
    const e = s.keys.get(k)!;
    return `${k}=${e.v}@${e.mod}/${e.create}/${e.ver}`;
  }).join(';');
}

/** describeKv renders an operation for a report. */
export function describeKv(op: Operation<KvInput, KvOutput>): string {
  const ret = op.ret === Infinity ? '∞' : String(op.ret);
  return `client ${op.client} [${op.call}, ${ret}] ${JSON.stringify(op.input)} → ` +
    `${op.output === undefined ? 'unknown' : JSON.stringify(op.output)}`;
}

/** KvModelOptions: `partition` false checks the history as one piece; `versions` false
 * forgets key versions (for histories that never read them, such as Jepsen's register: two
 * states that differ only in a version then count as one, which the memo needs). */
export interface KvModelOptions { partition?: boolean; versions?: boolean }

/** kvModel is etcd's KV as a model for the checker. */
export function kvModel(opts: KvModelOptions = {}): Model<KvState, KvInput, KvOutput> {
  const partition = opts.partition ?? true;
  const versions = opts.versions ?? true;
  return {
    init: () => [{ keys: new Map(), hi: 0 }],
    step: versions ? kvStep : (s, i, o) => kvStep(s, i, o).map(forgetVersions),
    key: kvKey,
    describe: describeKv,
    ...(partition ? { partition: (ops: Operation<KvInput, KvOutput>[]) =>
      unionFind(ops, (op) => keysOf(op.input)) } : {}),
  };
}

/** prepareKv drops what cannot matter before a check, as etcd's robustness suite does:
 * reads with an unknown outcome (a read that may not have happened changes nothing). */
export function prepareKv(ops: Operation<KvInput, KvOutput>[]): Operation<KvInput, KvOutput>[] {
  return ops.filter((o) => o.output !== undefined ||
    (o.input.t === 'txn' ? [...o.input.then, ...o.input.else].some(isWrite)
      : isWrite(o.input)));
}

/** changedSomething says whether a known outcome advanced the revision. */
function changedSomething(i: KvInput, o: KvOutput): boolean | undefined {
  const subs = i.t === 'txn' ? (o.succeeded === false ? i.else : i.then) : [i];
  let maybe = false;
  for (let j = 0; j < subs.length; j++) {
    const s = subs[j]!;
    if (s.t === 'put') return true;
    if (s.t === 'del') {
      const r = o.results[j];
      if (r !== undefined && 'deleted' in r) {
        if (r.deleted > 0) return true;
      } else {
        maybe = true;
      }
    }
  }
  return maybe ? undefined : false;
}

/** RevisionProblem is one cross-partition inconsistency found by checkRevisions. */
export interface RevisionProblem { what: string; a: Operation<KvInput, KvOutput>;
  b: Operation<KvInput, KvOutput> }

/**
 * checkRevisions checks what the partitions cannot see alone: (1) revisions follow real time
 * — an operation called after another returned shows a revision no lower, and strictly higher
 * if it changed something; (2) two operations that changed something never share a revision.
 */
export function checkRevisions(ops: Operation<KvInput, KvOutput>[]): RevisionProblem[] {
  const known = ops.filter((o) => o.output?.rev !== undefined);
  const problems: RevisionProblem[] = [];
  const byRet = [...known].sort((a, b) => a.ret - b.ret);
  const byCall = [...known].sort((a, b) => a.call - b.call);
  let j = 0;
  let best: Operation<KvInput, KvOutput> | undefined;
  for (const b of byCall) {
    while (j < byRet.length && byRet[j]!.ret < b.call) {
      const a = byRet[j++]!;
      if (best === undefined || a.output!.rev! > best.output!.rev!) best = a;
    }
    if (best === undefined) continue;
    const ra = best.output!.rev!;
    const rb = b.output!.rev!;
    const w = changedSomething(b.input, b.output!) === true;
    if (rb < ra || (w && rb === ra)) {
      problems.push({ what: `revision ${rb} after ${ra} in real time`, a: best, b });
      if (problems.length >= 10) return problems;
    }
  }
  const writers = new Map<number, Operation<KvInput, KvOutput>>();
  for (const o of known) {
    if (changedSomething(o.input, o.output!) !== true) continue;
    const prev = writers.get(o.output!.rev!);
    if (prev !== undefined) {
      problems.push({ what: `two writes at revision ${o.output!.rev}`, a: prev, b: o });
      if (problems.length >= 10) return problems;
    }
    writers.set(o.output!.rev!, o);
  }
  return problems;
}
