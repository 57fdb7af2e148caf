import type { Operation } from './checker.js';
import type { KvInput, KvOutput, KvSub } from './kv-model.js';

/**
 * patch: what the final event history says about operations with an unknown outcome, as
 * etcd's robustness suite does before it checks. The history's puts write values unique in
 * the run, and a watch from revision 1 (nothing compacted) lists every change with its
 * revision, so an unknown put or txn whose value is in that list took effect at that
 * revision (it gets that revision; its return time stays unknown), and one whose values are
 * nowhere did not write anything (a txn may still have run its read-only else branch, which
 * changes nothing, so it is dropped too). Unknown deletes are left as they are.
 */

/** PutEvent is a PUT of the final history: key, value, revision. */
export interface PutEvent { key: string; value: string; mod: number }

/** patchUnknown returns the operations with what the events tell about unknown ones. */
export function patchUnknown(ops: Operation<KvInput, KvOutput>[], puts: PutEvent[]):
  Operation<KvInput, KvOutput>[] {
  const at = new Map<string, number>();
  for (const e of puts) at.set(`${e.key}\u0000${e.value}`, e.mod);
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
    out.push(o);
  }
  return out;
}
