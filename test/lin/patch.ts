import type { Operation } from './checker.js';
import type { KvInput, KvOutput, KvSub } from './kv-model.js';

/**
 * patch: what the final event history says about operations with an unknown outcome, as
 * etcd's robustness suite does before it checks. The history's puts write values unique in
 * the run, and a watch from revision 1 (nothing compacted) lists every change with its
 * revision, so an unknown put or txn whose value is in that list took effect at that
 * revision (it gets that revision; its return time stays unknown), and one whose values are
 * nowhere did not write anything (a txn may still have run its read-only else branch, which
 * changes nothing, so it is dropped too).
 *
 * An unknown delete of key k called at time c is dropped when it cannot have deleted anything:
 * some operation returned before c showing revision R, so the delete took effect (if at all)
 * at a revision above R, and a delete that removed k leaves a DELETE event of k; if no DELETE
 * event of k above R is left once the known deletes have claimed theirs, it found nothing —
 * whenever it ran, it changed nothing, and it constrains nothing. Other unknown deletes stay
 * as they are. (Without this, a fault that refuses writes for seconds leaves hundreds of
 * unknown deletes, and the search outgrows its budget.)
 */

/** DeleteEvent is a DELETE of the final history: key and revision. */
export interface DeleteEvent { key: string; mod: number }

/** PutEvent is a PUT of the final history: key, value, revision. */
export interface PutEvent { key: string; value: string; mod: number }

/** patchUnknown returns the operations with what the events tell about unknown ones. */
export function patchUnknown(ops: Operation<KvInput, KvOutput>[], puts: PutEvent[],
  deletes?: DeleteEvent[]): Operation<KvInput, KvOutput>[] {
  const at = new Map<string, number>();
  for (const e of puts) at.set(`${e.key}\u0000${e.value}`, e.mod);
  const mayHaveDeleted = deletes === undefined ? () => true : deleteWitness(ops, deletes);
  const out: Operation<KvInput, KvOutput>[] = [];
  for (const o of ops) {
    if (o.output !== undefined) {
      out.push(o);
      continue;
    }
    const i = o.input;
    const revOf = (s: KvSub) => (s.t === 'put' ? at.get(`${s.key}\u0000${s.value}`) : undefined);
    if (i.t === 'put') {
      const r = revOf(i);
      if (r !== undefined) out.push({ ...o, output: { rev: r, results: [{}] } });
      continue; // never written: it did not happen
    }
    if (i.t === 'txn' && i.then.some((s) => s.t === 'put') && !i.then.some((s) => s.t === 'del')
      && !i.else.some((s) => s.t !== 'get')) {
      const revs = i.then.filter((s) => s.t === 'put').map(revOf);
      const r = revs[0];
      if (r !== undefined && revs.every((x) => x === r)) {
        // It took the then branch at revision r; its gets' results stay unknown.
        out.push({ ...o, output: { rev: r, succeeded: true, results: i.then.map(() => ({})) } });
        continue;
      }
      if (revs.every((x) => x === undefined)) continue; // else branch (reads) or nothing
    }
    if (i.t === 'del' && !mayHaveDeleted(i.key, o.call)) continue; // it found nothing
    out.push(o);
  }
  return out;
}

/** deleteWitness says whether an unknown delete of `key` called at `call` may have deleted
 * something: a DELETE event of `key` no known delete claims, above the highest revision an
 * operation returned before `call` showed. */
function deleteWitness(ops: Operation<KvInput, KvOutput>[], deletes: DeleteEvent[]):
  (key: string, call: number) => boolean {
  const claimed = new Set<string>();
  for (const o of ops) {
    const r = o.output?.results[0];
    if (o.input.t === 'del' && o.output?.rev !== undefined && r !== undefined &&
      'deleted' in r && r.deleted > 0) claimed.add(`${o.input.key}\u0000${o.output.rev}`);
  }
  const lastOf = new Map<string, number>(); // key → highest unclaimed DELETE revision
  for (const e of deletes) {
    if (claimed.has(`${e.key}\u0000${e.mod}`)) continue;
    lastOf.set(e.key, Math.max(e.mod, lastOf.get(e.key) ?? 0));
  }
  // Revisions shown, by return time, as a running maximum.
  const shown = ops.filter((o) => o.output?.rev !== undefined && o.ret !== Infinity)
    .map((o) => [o.ret, o.output!.rev!] as const).sort((a, b) => a[0] - b[0]);
  const rets = shown.map(([t]) => t);
  const maxRev: number[] = [];
  for (const [, r] of shown) maxRev.push(Math.max(r, maxRev.at(-1) ?? 0));
  return (key, call) => {
    const last = lastOf.get(key);
    if (last === undefined) return false;
    let lo = 0;
    let hi = rets.length; // first index whose return is at or after the call
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (rets[mid]! < call) lo = mid + 1;
      else hi = mid;
    }
    const before = lo === 0 ? 0 : maxRev[lo - 1]!;
    return last > before;
  };
}
