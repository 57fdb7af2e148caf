import test from 'ava';
import { readFileSync } from 'node:fs';
import { check, type Operation } from './lin/checker.js';
import { type AppendInput, appendModel, parseJepsenLog, parseKvEdn } from './lin/formats.js';
import { checkRevisions, type KvInput, kvModel, type KvOutput, prepareKv } from './lin/kv-model.js';
import { agrees, referenceCases, runCase } from './lin/reference.js';

// The reference histories in CI: both verdicts, Jepsen's register (with unknown outcomes) and
// porcupine's kv at 1, 10 and 50 clients. `npm run lincheck -- --all` runs all 108.
const ciSubset = ['jepsen/etcd_000.log', 'jepsen/etcd_005.log', 'jepsen/etcd_018.log',
  'jepsen/etcd_040.log', 'jepsen/etcd_053.log', 'jepsen/etcd_070.log', 'jepsen/etcd_085.log',
  'kv/c01-ok.txt', 'kv/c01-bad.txt', 'kv/c10-ok.txt', 'kv/c10-bad.txt', 'kv/c50-ok.txt',
  'kv/c50-bad.txt'];

for (const c of referenceCases().filter((x) => ciSubset.includes(x.name))) {
  test(`lincheck: ${c.name} is ${c.expected ? 'linearizable' : 'not linearizable'}`, (t) => {
    const r = runCase(c);
    t.true(agrees(r), `got ${r.verdict} after ${r.steps} steps`);
  });
}

type KvOp = Operation<KvInput, KvOutput>;
type AppendOp = Operation<AppendInput, string>;

const kvText = (name: string) => readFileSync(referenceCases().find((c) => c.name === name)!
  .path, 'utf8');

test('lincheck: a lost write put into a real linearizable history is caught', (t) => {
  const ops = parseKvEdn(kvText('kv/c10-ok.txt'));
  t.is(check(appendModel, ops).verdict, 'ok');
  // A get whose value ends with the suffix of an append that returned before the get was
  // called: drop that suffix from what the get returned, as if the append had been lost.
  const victim = ops.find((g) => g.input.f === 'get' && g.output !== undefined &&
    ops.some((a) => a.input.f === 'append' && a.input.key === g.input.key &&
      a.ret < g.call && g.output!.endsWith(a.input.value) && a.input.value !== ''));
  t.truthy(victim);
  const app = ops.find((a) => a.input.f === 'append' && a.input.key === victim!.input.key &&
    a.ret < victim!.call && victim!.output!.endsWith(a.input.value))!;
  const bad: AppendOp[] = ops.map((o) => (o === victim ? { ...o,
    output: o.output!.slice(0, o.output!.length - app.input.value.length) } : o));
  t.is(check(appendModel, bad).verdict, 'illegal');
});

test('lincheck: a stale read put into a real linearizable history is caught', (t) => {
  const ops = parseJepsenLog(kvText('jepsen/etcd_005.log'));
  const model = kvModel({ versions: false });
  t.is(check(model, ops).verdict, 'ok');
  // Two reads of different values, the second called after the first returned: make the
  // second return what was read before the first — a value already overwritten.
  const reads = ops.filter((o) => o.input.t === 'get' && o.output !== undefined);
  const valueOf = (o: KvOp) => {
    const r = o.output!.results[0];
    return r !== undefined && 'kv' in r ? r.kv?.value : undefined;
  };
  let corrupted: KvOp[] | undefined;
  for (let i = 0; i < reads.length && corrupted === undefined; i++) {
    for (let j = i + 1; j < reads.length && corrupted === undefined; j++) {
      for (let k = j + 1; k < reads.length; k++) {
        const [a, b, c] = [reads[i]!, reads[j]!, reads[k]!];
        if (a.ret < b.call && b.ret < c.call && valueOf(a) !== valueOf(b) &&
          valueOf(c) === valueOf(b) && valueOf(a) !== undefined) {
          const stale = c;
          corrupted = ops.map((o) => (o === stale ? { ...o, output: a.output } : o));
          break;
        }
      }
    }
  }
  t.truthy(corrupted, 'the history has three ordered reads to corrupt');
  t.is(check(model, corrupted!).verdict, 'illegal');
});

// Small histories against the etcd KV model (revisions, txns, unknown outcomes).
const put = (client: number, call: number, ret: number, key: string, value: string,
  rev: number | undefined): KvOp => ({ client, call, ret, input: { t: 'put', key, value },
  output: rev === -1 ? undefined : { ...(rev === undefined ? {} : { rev }), results: [{}] } });
const get = (client: number, call: number, ret: number, key: string,
  kv: { value: string; mod?: number } | undefined, rev: number): KvOp => ({ client, call, ret,
  input: { t: 'get', key }, output: { rev, results: [{ kv }] } });

test('kv-model: a read after a write sees it; a read of the old value at a later revision ' +
  'is a stale read', (t) => {
  const ok = [put(0, 0, 10, 'x', 'a', 2), get(1, 5, 15, 'x', { value: 'a', mod: 2 }, 2)];
  t.is(check(kvModel(), ok).verdict, 'ok');
  const concurrentOld = [put(0, 0, 10, 'x', 'a', 2), get(1, 5, 15, 'x', undefined, 1)];
  t.is(check(kvModel(), concurrentOld).verdict, 'ok');
  // absent at revision 3, but x was put at revision 2: stale, whatever the timing
  const stale = [put(0, 0, 10, 'x', 'a', 2), get(1, 5, 15, 'x', undefined, 3)];
  t.is(check(kvModel(), stale).verdict, 'illegal');
  // absent, called after the put returned: stale by real time
  const late = [put(0, 0, 10, 'x', 'a', 2), get(1, 11, 15, 'x', undefined, undefined as never)];
  late[1]!.output = { results: [{ kv: undefined }] };
  t.is(check(kvModel(), late).verdict, 'illegal');
});

test('kv-model: an unknown put may have happened or not, at any time after its call', (t) => {
  const h = [put(0, 0, Infinity, 'x', 'a', -1), get(1, 5, 6, 'x', undefined, 1),
    get(1, 7, 8, 'x', { value: 'a' }, 2), get(2, 9, 10, 'x', { value: 'a' }, 2)];
  t.is(check(kvModel(), prepareKv(h)).verdict, 'ok');
  const back = [...h, get(1, 11, 12, 'x', undefined, 2)];
  t.is(check(kvModel(), prepareKv(back)).verdict, 'illegal');
});

test('kv-model: a multi-key txn joins its keys into one partition and is atomic', (t) => {
  const txn = (client: number, call: number, ret: number, v: string, rev: number): KvOp => ({
    client, call, ret, input: { t: 'txn', cmp: [], then: [{ t: 'put', key: 'a', value: v },
      { t: 'put', key: 'b', value: v }], else: [] },
    output: { rev, succeeded: true, results: [{}, {}] } });
  const both = (call: number, ret: number, va: string, vb: string, rev: number): KvOp => ({
    client: 9, call, ret, input: { t: 'txn', cmp: [], then: [{ t: 'get', key: 'a' },
      { t: 'get', key: 'b' }], else: [] },
    output: { rev, succeeded: true, results: [{ kv: { value: va } }, { kv: { value: vb } }] } });
  const m = kvModel();
  t.is(m.partition!([txn(0, 0, 1, '1', 2), put(1, 0, 1, 'c', 'z', 3)]).length, 2);
  t.is(check(m, [txn(0, 0, 10, '1', 2), txn(1, 0, 10, '2', 3), both(5, 20, '2', '2', 3)])
    .verdict, 'ok');
  t.is(check(m, [txn(0, 0, 10, '1', 2), txn(1, 0, 10, '2', 3), both(5, 20, '1', '2', 3)])
    .verdict, 'illegal');
});

test('kv-model: a compare-and-set that succeeded on a value nobody held is caught', (t) => {
  const cas = (ok: boolean, rev: number): KvOp => ({ client: 1, call: 20, ret: 30, input: {
    t: 'txn', cmp: [{ key: 'x', target: 'value', op: '=', value: 'b' }],
    then: [{ t: 'put', key: 'x', value: 'c' }], else: [{ t: 'get', key: 'x' }] },
  output: { rev, succeeded: ok, results: ok ? [{}] : [{ kv: { value: 'a', mod: 2 } }] } });
  t.is(check(kvModel(), [put(0, 0, 10, 'x', 'a', 2), cas(false, 2)]).verdict, 'ok');
  t.is(check(kvModel(), [put(0, 0, 10, 'x', 'a', 2), cas(true, 3)]).verdict, 'illegal');
});

test('kv-model: revisions that go back in real time are caught across partitions', (t) => {
  const h = [put(0, 0, 10, 'x', 'a', 5), put(1, 11, 20, 'y', 'b', 4)];
  t.is(check(kvModel(), h).verdict, 'ok'); // each key alone is fine
  t.is(checkRevisions(h).length, 1);
  t.is(checkRevisions([put(0, 0, 10, 'x', 'a', 5), put(1, 11, 20, 'y', 'b', 6)]).length, 0);
});

test('checker: a work bound gives "unknown", never a silent pass', (t) => {
  const ops = parseJepsenLog(kvText('jepsen/etcd_040.log'));
  t.is(check(kvModel({ versions: false }), ops, { stepsMax: 100 }).verdict, 'unknown');
});
