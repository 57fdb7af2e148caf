/**
 * client.ts — put, get, range and delete with the v3 client SDK (src/client).
 *
 * The SDK speaks etcd 3.4's JSON gateway (/v3/kv/*): keys and values travel as base64,
 * revisions as strings; the SDK hides that and hands back Buffers and numbers.
 *
 *   npm start                                   # a server on http://127.0.0.1:2379
 *   node dist/examples/client.js [endpoint]     # or ENDPOINT=http://host:port
 */
import { Client } from '../src/client/index.js';

const endpoint = process.argv[2] ?? process.env.ENDPOINT ?? 'http://127.0.0.1:2379';
const client = new Client({ endpoints: [endpoint] });
const dir = `examples/client/${process.pid}/`; // a fresh prefix, so reruns do not collide

// put: every write creates a new store revision.
const put = await client.put(dir + 'greeting', 'hello');
console.log(`put ${dir}greeting=hello at revision ${put.header.revision}`);
await client.put(dir + 'greeting', 'hello again');
await client.put(dir + 'colour', 'green');
await client.put(dir + 'shape', 'circle');

// get one key: its value, version (writes to it) and revisions.
const got = await client.get(dir + 'greeting');
const kv = got.kvs[0]!;
console.log(`get ${kv.key} = ${kv.value} (version ${kv.version}, ` +
  `created at ${kv.createRevision}, modified at ${kv.modRevision})`);

// History: read the key as it was at the first put's revision (MVCC keeps old versions).
const old = await client.getString(dir + 'greeting', { revision: put.header.revision });
console.log(`get at revision ${put.header.revision} = ${old}`);

// range: every key with the prefix, sorted by key.
const range = await client.get(dir, { prefix: true });
console.log(`range ${dir}* -> ${range.count} keys:`);
for (const e of range.kvs) console.log(`  ${e.key} = ${e.value}`);

// delete: one key, then the rest of the prefix.
const one = await client.delete(dir + 'shape', { prevKv: true });
console.log(`delete ${dir}shape -> deleted ${one.deleted} (was ${one.prevKvs[0]?.value})`);
const rest = await client.delete(dir, { prefix: true });
console.log(`delete ${dir}* -> deleted ${rest.deleted}`);
const after = await client.get(dir, { prefix: true });
console.log(`range ${dir}* -> ${after.count} keys left`);
