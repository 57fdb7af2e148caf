import type { Operation } from './checker.js';
import type { KvInput, KvOutput } from './kv-model.js';

/**
 * history: the JSON form of a history recorded by the robustness harness (kept in
 * history.json beside the logs of a failed run, and read back by `npm run lincheck --
 * --history`). Times are milliseconds since the run started; `ret` null means the outcome is
 * unknown (a timeout or a lost connection).
 */

/** RecordedOp is one operation as stored. */
export interface RecordedOp {
  client: number;
  call: number;
  ret: number | null;
  input: KvInput;
  output: KvOutput | null;
}

/** RecordedHistory is a run's KV history. */
export interface RecordedHistory { seed: number; ops: RecordedOp[] }

/** toOperations converts the stored form to the checker's. */
export function toOperations(h: RecordedHistory): Operation<KvInput, KvOutput>[] {
  return h.ops.map((o) => ({ client: o.client, call: o.call, ret: o.ret ?? Infinity,
    input: o.input, output: o.output ?? undefined }));
}

/** fromOperations converts the checker's form to the stored one. */
export function fromOperations(seed: number, ops: Operation<KvInput, KvOutput>[]):
  RecordedHistory {
  return { seed, ops: ops.map((o) => ({ client: o.client, call: o.call,
    ret: o.ret === Infinity ? null : o.ret, input: o.input, output: o.output ?? null })) };
}
