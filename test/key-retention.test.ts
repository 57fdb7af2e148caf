import test from 'ava';
import { Worker } from 'node:worker_threads';
import { ownedBytes } from '../src/mvcc/owned-bytes.js';
import { unpack, pack } from '../src/runtime/codec.js';

const keys = 10_000;
/** valueBytes: the values of the memory benchmark's keys. */
const valueBytes = 100;

test('bytes: ownedBytes gives an equal string, also for a key decoded by msgpack', (t) => {
  const decoded = unpack<string[]>(pack(['k'.repeat(40), 'v'.repeat(200), 'short', '']));
  for (const s of [...decoded, '\u00ff\u0000'.repeat(20)]) t.is(ownedBytes(s), s);
});

test('memory: the applier and a shard, fed decoded messages as on their threads, keep no ' +
  'more heap per key than when fed strings of their own: none of the messages', async (t) => {
  const url = (p: string): string => JSON.stringify(new URL(p, import.meta.url).href);
  // Both are built twice, from the same keys: from strings built here (the control), and from
  // the keys msgpack decodes (what their threads get). A decoded key that kept its
  // message's strings alive would keep at least its own value too (the run of strings the
  // decoder extracts alternates key, value, key, value).
  const code = `
    const { parentPort } = require('node:worker_threads');
    const { setFlagsFromString } = require('node:v8');
    const { runInNewContext } = require('node:vm');
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc');
    const heap = () => { gc(); gc(); return process.memoryUsage().heapUsed; };
    (async () => {
      const { Applier, ShardStore } = await import(${url('../src/mvcc/index.js')});
      const { pack, unpack } = await import(${url('../src/runtime/codec.js')});
      const value = Buffer.alloc(${valueBytes}, 'v').toString('latin1');
      const build = (n, decode) => {
        const h0 = heap();
        const applier = new Applier();
        const shard = new ShardStore();
        for (let i = 0; i < n; i += 100) {
          const success = [];
          for (let j = i; j < i + 100; j++) {
            // A flat string: a concatenation would be a cons string, heavier than either.
            const key = Buffer.from('test/retention/' + String(j).padStart(9, '0'), 'latin1')
              .toString('latin1');
            success.push({ type: 'put', key, value });
          }
          const req = { type: 'txn', compare: [], success, failure: [] };
          const r = applier.execute(decode ? unpack(pack(req)) : req);
          const apply = [r.revision, r.changes];
          shard.apply(...(decode ? unpack(pack(apply)) : apply));
        }
        return { perKey: (heap() - h0) / n, counts: [applier.keyCount(), shard.currentRevision] };
      };
      build(1000, true); // compiles the code first: its bytecode is heap too
      const control = build(${keys}, false);
      const decoded = build(${keys}, true);
      parentPort.postMessage({ control, decoded });
    })().catch((e) => parentPort.postMessage({ error: String(e.stack) }));`;
  const w = new Worker(code, { eval: true });
  type Built = { perKey: number; counts: number[] };
  try {
    const r = await new Promise<{ control: Built; decoded: Built; error?: string }>(
      (resolve, reject) => {
        w.once('message', resolve);
        w.once('error', reject);
      });
    t.is(r.error, undefined);
    t.deepEqual(r.decoded.counts, [keys, 1 + keys / 100]);
    t.deepEqual(r.control.counts, r.decoded.counts);
    t.log(`applier + shard heap per key: control ${r.control.perKey.toFixed(0)} B, decoded ` +
      `${r.decoded.perKey.toFixed(0)} B`);
    t.true(r.decoded.perKey < r.control.perKey + valueBytes / 2);
  } finally {
    await w.terminate();
  }
});
