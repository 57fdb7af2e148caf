import { type Model, type Operation, unionFind } from './checker.js';
import type { KvInput, KvOutput } from './kv-model.js';

/**
 * formats: parsers for the reference histories in ../shared/data/porcupine-histories (pure:
 * they take the file's text), and the small append model porcupine's kv histories need.
 *
 * - Jepsen's etcd register logs: `INFO  jepsen.util - PROCESS<TAB>:TYPE<TAB>:F<TAB>VALUE`
 *   (tabs or spaces), TYPE invoke/ok/fail/info, F read/write/cas, a cas value `[old new]`.
 *   Mapped onto the etcd KV model: read → get, write → put, cas → a txn comparing the value
 *   then putting; `fail` of a cas is a txn that did not succeed; `info` is an unknown outcome.
 *   Time is the line number.
 * - porcupine's kv histories: one EDN map a line, get/put/append on string keys, the initial
 *   value of every key is "".
 */

/** registerKey is the one key Jepsen's register histories use. */
export const registerKey = 'r';

/** parseJepsenLog turns a Jepsen register log into KV operations. */
export function parseJepsenLog(text: string): Operation<KvInput, KvOutput>[] {
  const open = new Map<number, Operation<KvInput, KvOutput>>();
  const ops: Operation<KvInput, KvOutput>[] = [];
  const lines = text.split('\n');
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n]!;
    const at = line.indexOf('jepsen.util - ');
    if (at < 0) continue;
    const f = line.slice(at + 'jepsen.util - '.length).trim().split(/\s+/);
    const proc = Number(f[0]);
    const type = f[1];
    const fn = f[2];
    const val = f.slice(3).join(' ');
    if (!Number.isSafeInteger(proc)) throw new Error(`line ${n + 1}: bad process`);
    if (type === ':invoke') {
      let input: KvInput;
      if (fn === ':read') input = { t: 'get', key: registerKey };
      else if (fn === ':write') input = { t: 'put', key: registerKey, value: val };
      else if (fn === ':cas') {
        const m = /^\[(\S+) (\S+)\]$/.exec(val);
        if (m === null) throw new Error(`line ${n + 1}: bad cas value ${val}`);
        input = { t: 'txn', cmp: [{ key: registerKey, target: 'value', op: '=', value: m[1]! }],
          then: [{ t: 'put', key: registerKey, value: m[2]! }], else: [] };
      } else throw new Error(`line ${n + 1}: unknown function ${fn}`);
      const op: Operation<KvInput, KvOutput> = { client: proc, call: n, ret: Infinity, input,
        output: undefined };
      open.set(proc, op);
      ops.push(op);
      continue;
    }
    const op = open.get(proc);
    if (op === undefined) throw new Error(`line ${n + 1}: ${type} without an invoke`);
    open.delete(proc);
    if (type === ':info') continue; // unknown outcome: ret stays Infinity
    op.ret = n;
    if (type === ':ok') {
      if (fn === ':read') {
        op.output = { results: [{ kv: val === 'nil' ? undefined : { value: val } }] };
      } else if (fn === ':write') op.output = { results: [{}] };
      else op.output = { succeeded: true, results: [{}] };
    } else if (type === ':fail') {
      // A failed cas is a txn whose compare failed; a failed read or write did not happen.
      if (fn === ':cas') op.output = { succeeded: false, results: [] };
      else ops.splice(ops.indexOf(op), 1);
    } else throw new Error(`line ${n + 1}: unknown type ${type}`);
  }
  return ops;
}

/** parseJepsenExpected reads jepsen_expected.txt: `N, true|false` a line. */
export function parseJepsenExpected(text: string): Map<number, boolean> {
  const m = new Map<number, boolean>();
  for (const line of text.split('\n')) {
    const r = /^\s*(\d+)\s*,\s*(true|false)\s*$/.exec(line);
    if (r !== null) m.set(Number(r[1]), r[2] === 'true');
  }
  return m;
}

/** AppendInput is an operation of porcupine's kv histories. */
export interface AppendInput { f: 'get' | 'put' | 'append'; key: string; value: string }

/** parseKvEdn turns a porcupine kv history (EDN lines) into operations; time is the line. */
export function parseKvEdn(text: string): Operation<AppendInput, string>[] {
  const open = new Map<number, Operation<AppendInput, string>>();
  const ops: Operation<AppendInput, string>[] = [];
  const lines = text.split('\n');
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n]!.trim();
    if (line === '') continue;
    const m = /^\{:process (\d+), :type :(\w+), :f :(\w+), :key "([^"]*)", :value (nil|"[^"]*")\}$/
      .exec(line);
    if (m === null) throw new Error(`line ${n + 1}: not understood: ${line}`);
    const proc = Number(m[1]);
    const type = m[2]!;
    const f = m[3] as AppendInput['f'];
    const value = m[5] === 'nil' ? '' : m[5]!.slice(1, -1);
    if (type === 'invoke') {
      const op: Operation<AppendInput, string> = { client: proc, call: n, ret: Infinity,
        input: { f, key: m[4]!, value }, output: undefined };
      open.set(proc, op);
      ops.push(op);
    } else if (type === 'ok') {
      const op = open.get(proc);
      if (op === undefined) throw new Error(`line ${n + 1}: ok without an invoke`);
      open.delete(proc);
      op.ret = n;
      op.output = value;
    } else if (type !== 'info') {
      throw new Error(`line ${n + 1}: unknown type ${type}`);
    }
  }
  return ops;
}

/** appendModel is porcupine's kv model: one string per key (initially ""), get returns it,
 * put sets it, append extends it; partitioned per key. */
export const appendModel: Model<string, AppendInput, string> = {
  init: () => [''],
  step(s, i, o) {
    switch (i.f) {
      case 'get': return o === undefined || o === s ? [s] : [];
      case 'put': return [i.value];
      case 'append': return [s + i.value];
    }
  },
  key: (s) => s,
  partition: (ops) => unionFind(ops, (o) => [o.input.key]),
  describe: (o) => `client ${o.client} ${o.input.f} ${o.input.key} ${o.input.value} → ${o.output}`,
};
