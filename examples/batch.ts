/**
 * batch.ts — several writes applied atomically, at one revision, with /v1/batch.
 *
 * /v1 is MyEtcd's friendly REST API (docs/api.md): keys in the path, UTF-8 values, one
 * envelope `{"ok","revision","data"}`. V1Client (src/client/v1.ts) wraps it. A batch is a
 * transaction without compares: all of its operations happen, at one revision, or none.
 *
 *   node dist/examples/batch.js [endpoint]      # or ENDPOINT=http://host:port
 */
import { V1Client, V1Error } from '../src/client/index.js';

const endpoint = process.argv[2] ?? process.env.ENDPOINT ?? 'http://127.0.0.1:2379';
const v1 = new V1Client(endpoint);
const dir = `examples/batch/${process.pid}/`;

await v1.put(dir + 'old', 'to be removed');

// One request, three operations, one revision.
const r = await v1.batch([
  { op: 'put', key: dir + 'db/host', value: '10.0.0.1' },
  { op: 'put', key: dir + 'db/port', value: '5432' },
  { op: 'delete', key: dir + 'old', prevKV: true },
]);
console.log(`batch applied ${r.responses.length} operations at revision ${r.revision}`);
for (const op of r.responses) console.log(`  ${JSON.stringify(op)}`);

// Every key the batch wrote carries the same mod revision.
for await (const kv of v1.all({ prefix: dir })) {
  console.log(`  ${kv.key} = ${kv.value} (modRevision ${kv.modRevision})`);
}

// All or nothing: writing one key twice in a batch is refused, and nothing is applied.
try {
  await v1.batch([
    { op: 'put', key: dir + 'db/host', value: '10.0.0.2' },
    { op: 'put', key: dir + 'db/host', value: '10.0.0.3' },
  ]);
} catch (e) {
  if (!(e instanceof V1Error)) throw e;
  console.log(`refused batch: ${e.code} (HTTP ${e.status}): ${e.message}`);
}
console.log(`db/host is still ${await v1.getValue(dir + 'db/host')}`);

await v1.delete(dir, { prefix: true });
