/**
 * checker: a linearizability checker in the style of Wing & Gong as porcupine implements it
 * (Lowe's memoisation of (linearized set, state), bitsets, P-compositionality by partition).
 * Pure: no I/O, no clock — the work bound is a number of search steps.
 *
 * A history is a set of operations, each with a call time, a return time (Infinity when the
 * outcome is unknown: the operation may or may not have taken effect, at any time after its
 * call — etcd's robustness suite and porcupine treat a timed-out request this way), an input
 * and an output. The model says, for a state and an operation, which states may follow
 * (none: the operation cannot have happened there). A model may be non-deterministic: the
 * search then carries a set of states, as porcupine's NondeterministicModel does.
 *
 * The search: events are sorted by time (a call before a return at the same instant, so
 * operations touching at an instant count as concurrent). Walking the list, a call whose
 * operation the model accepts from the current states is linearized (its call and return are
 * lifted out of the list) unless the pair (linearized set, states) was seen before — then
 * that branch is known to fail. Reaching a return whose operation is not yet linearized
 * means the current prefix cannot be extended: backtrack. An empty list means linearizable.
 */

/** Operation is one request of a history: call ≤ ret, ret = Infinity when unknown. */
export interface Operation<I, O> {
  /** client issued the operation (for reports only: the check does not need it). */
  client: number;
  call: number;
  ret: number;
  input: I;
  /** output is undefined when the outcome is unknown. */
  output: O | undefined;
}

/** Model describes the object the history ran against. */
export interface Model<S, I, O> {
  /** init lists the possible initial states (usually one). */
  init(): S[];
  /** step lists the states that may follow `s` when `input` gives `output` (undefined output:
   * the outcome is unknown, any outcome the model allows); empty means impossible. */
  step(s: S, input: I, output: O | undefined): S[];
  /** key is a canonical string of a state (equal states, equal keys). */
  key(s: S): string;
  /** partition splits a history into independent sub-histories (P-compositionality), each
   * checked alone; absent means one partition. */
  partition?(ops: Operation<I, O>[]): Operation<I, O>[][];
  /** describe renders an operation for reports. */
  describe?(op: Operation<I, O>): string;
}

/** Verdict: 'ok' linearizable, 'illegal' not, 'unknown' the work bound ran out first. */
export type Verdict = 'ok' | 'illegal' | 'unknown';

/** CheckOptions bounds the work: a step is one attempt to linearize one operation. */
export interface CheckOptions {
  /** stepsMax bounds the total search steps over all partitions (default 50 million). */
  stepsMax?: number;
}

/** PartitionResult is the verdict on one partition; on 'illegal', `prefix` is the longest
 * linearizable prefix found (operation indexes within `ops`, in linearization order). */
export interface PartitionResult<I, O> {
  verdict: Verdict;
  ops: Operation<I, O>[];
  steps: number;
  prefix: number[];
}

/** CheckResult: the overall verdict ('illegal' if any partition is, else 'unknown' if any
 * ran out of budget, else 'ok') and each partition's result. */
export interface CheckResult<I, O> {
  verdict: Verdict;
  steps: number;
  partitions: PartitionResult<I, O>[];
}

/** defaultStepsMax: enough for every reference history here, bounded for a CI machine. */
export const defaultStepsMax = 50_000_000;

/** check decides whether `ops` is linearizable under `model`. */
export function check<S, I, O>(model: Model<S, I, O>, ops: Operation<I, O>[],
  opts: CheckOptions = {}): CheckResult<I, O> {
  const parts = model.partition ? model.partition(ops) : [ops];
  let budget = opts.stepsMax ?? defaultStepsMax;
  // Partitions are searched in rounds with a growing step allowance (×4 a round), as
  // porcupine searches them in parallel: one illegal partition ends the check, so a cheap
  // counterexample is not stuck behind an expensive legal partition.
  const results: (PartitionResult<I, O> | undefined)[] = parts.map(() => undefined);
  let steps = 0;
  for (let allowance = parts.length === 1 ? budget : 10_000; ; allowance *= 4) {
    let open = false;
    for (let i = 0; i < parts.length; i++) {
      if (results[i] !== undefined && results[i]!.verdict !== 'unknown') continue;
      const r = checkPartition(model, parts[i]!, Math.min(allowance, budget));
      budget -= r.steps;
      steps += r.steps;
      results[i] = r;
      if (r.verdict === 'illegal') {
        return { verdict: 'illegal', steps, partitions: results.filter((x) => x !== undefined) };
      }
      if (r.verdict === 'unknown') open = true;
    }
    if (!open || budget <= 0) break;
  }
  const partitions = results as PartitionResult<I, O>[];
  const verdict: Verdict = partitions.some((p) => p.verdict === 'unknown') ? 'unknown' : 'ok';
  return { verdict, steps, partitions };
}

/** Entry is a node of the doubly linked event list. */
interface Entry {
  isCall: boolean;
  op: number;
  /** match is the return entry of a call entry. */
  match: Entry | undefined;
  prev: Entry | undefined;
  next: Entry | undefined;
}

/** makeEntries builds the event list behind a sentinel head. */
function makeEntries<I, O>(ops: Operation<I, O>[]): Entry {
  const events: { time: number; isCall: boolean; op: number }[] = [];
  ops.forEach((o, i) => {
    events.push({ time: o.call, isCall: true, op: i });
    events.push({ time: o.ret, isCall: false, op: i });
  });
  events.sort((a, b) => a.time - b.time || (a.isCall === b.isCall ? a.op - b.op
    : a.isCall ? -1 : 1));
  const head: Entry = { isCall: false, op: -1, match: undefined, prev: undefined,
    next: undefined };
  const calls = new Map<number, Entry>();
  let last = head;
  for (const ev of events) {
    const e: Entry = { isCall: ev.isCall, op: ev.op, match: undefined, prev: last,
      next: undefined };
    last.next = e;
    last = e;
    if (ev.isCall) calls.set(ev.op, e);
    else calls.get(ev.op)!.match = e;
  }
  return head;
}

/** lift removes a call and its return from the list. */
function lift(e: Entry): void {
  e.prev!.next = e.next;
  if (e.next) e.next.prev = e.prev;
  const m = e.match!;
  m.prev!.next = m.next;
  if (m.next) m.next.prev = m.prev;
}

/** unlift puts them back (the reverse order of lift). */
function unlift(e: Entry): void {
  const m = e.match!;
  m.prev!.next = m;
  if (m.next) m.next.prev = m;
  e.prev!.next = e;
  if (e.next) e.next.prev = e;
}

/** checkPartition runs the search on one partition with at most `budget` steps. */
function checkPartition<S, I, O>(model: Model<S, I, O>, ops: Operation<I, O>[],
  budget: number): PartitionResult<I, O> {
  for (const o of ops) {
    if (!(o.ret >= o.call)) throw new Error(`operation returns before its call: ${o.call}`);
  }
  const head = makeEntries(ops);
  const words = Math.ceil(ops.length / 32) || 1;
  const linearized = new Uint32Array(words);
  // The memo: (linearized set, states) pairs already tried. The set's hash is kept up to date
  // by XOR of a fixed 32-bit mix per operation; a set of states is interned to a number.
  const seen = new Map<number, { bits: Uint32Array; sid: number }[]>();
  const stateIds = new Map<string, number>();
  const sidOf = (ss: S[]): number => {
    const k = ss.length === 1 ? model.key(ss[0]!) : ss.map((s) => model.key(s)).join('\u0000');
    let id = stateIds.get(k);
    if (id === undefined) stateIds.set(k, (id = stateIds.size));
    return id;
  };
  let bitsHash = 0;
  let states = dedupe(model, model.init());
  let sid = sidOf(states);
  const stack: { e: Entry; states: S[]; sid: number }[] = [];
  let longest: number[] = [];
  let steps = 0;
  let e = head.next;
  while (head.next !== undefined) {
    if (steps >= budget) return { verdict: 'unknown', ops, steps, prefix: longest };
    steps++;
    if (e === undefined) throw new Error('checker: walked past the end of the list');
    if (e.isCall) {
      const op = ops[e.op]!;
      const next: S[] = [];
      for (const s of states) next.push(...model.step(s, op.input, op.output));
      let accepted = false;
      if (next.length > 0) {
        const ns = dedupe(model, next);
        const nsid = sidOf(ns);
        linearized[e.op >>> 5]! |= 1 << (e.op & 31);
        const h = (bitsHash ^ mix(e.op)) >>> 0;
        const key = (h * 31 + nsid) % 4294967291;
        let bucket = seen.get(key);
        const hit = bucket?.some((c) => c.sid === nsid && sameBits(c.bits, linearized));
        if (!hit) {
          if (bucket === undefined) seen.set(key, (bucket = []));
          bucket.push({ bits: linearized.slice(), sid: nsid });
          stack.push({ e, states, sid });
          states = ns;
          sid = nsid;
          bitsHash = h;
          lift(e);
          accepted = true;
          if (stack.length > longest.length) longest = stack.map((x) => x.e.op);
          e = head.next;
        } else {
          linearized[e.op >>> 5]! &= ~(1 << (e.op & 31));
        }
      }
      if (!accepted) e = e.next;
    } else {
      // A return whose call is still in the list: nothing left can be linearized before it.
      const top = stack.pop();
      if (top === undefined) return { verdict: 'illegal', ops, steps, prefix: longest };
      states = top.states;
      sid = top.sid;
      linearized[top.e.op >>> 5]! &= ~(1 << (top.e.op & 31));
      bitsHash = (bitsHash ^ mix(top.e.op)) >>> 0;
      unlift(top.e);
      e = top.e.next;
    }
  }
  return { verdict: 'ok', ops, steps, prefix: stack.map((x) => x.e.op) };
}

/** mix is a fixed 32-bit hash of an operation index (a murmur3 finaliser). */
function mix(i: number): number {
  let h = (i + 0x9e3779b9) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** sameBits compares two bitsets of one length. */
function sameBits(a: Uint32Array, b: Uint32Array): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** dedupe keeps one state per key, in key order (a canonical set). */
function dedupe<S, I, O>(model: Model<S, I, O>, ss: S[]): S[] {
  if (ss.length <= 1) return ss;
  const m = new Map<string, S>();
  for (const s of ss) m.set(model.key(s), s);
  return [...m.keys()].sort().map((k) => m.get(k)!);
}

/** unionFind partitions items by the groups of keys they touch (connected components):
 * items sharing a key, directly or through others, land in one group. */
export function unionFind<T>(items: T[], keysOf: (t: T) => string[]): T[][] {
  const parent = new Map<string, string>();
  const find = (k: string): string => {
    let r = k;
    while (parent.get(r) !== r) r = parent.get(r)!;
    let c = k;
    while (c !== r) {
      const n = parent.get(c)!;
      parent.set(c, r);
      c = n;
    }
    return r;
  };
  for (const it of items) {
    const ks = keysOf(it);
    for (const k of ks) if (!parent.has(k)) parent.set(k, k);
    for (let i = 1; i < ks.length; i++) {
      const a = find(ks[0]!);
      const b = find(ks[i]!);
      if (a !== b) parent.set(a, b);
    }
  }
  const groups = new Map<string, T[]>();
  const loose: T[] = [];
  for (const it of items) {
    const ks = keysOf(it);
    if (ks.length === 0) {
      loose.push(it);
      continue;
    }
    const r = find(ks[0]!);
    let g = groups.get(r);
    if (g === undefined) groups.set(r, (g = []));
    g.push(it);
  }
  const out = [...groups.values()];
  if (loose.length > 0) out.push(loose);
  return out;
}
