/**
 * txn.ts — compare-and-swap with a transaction (etcd's Txn: if / then / else, atomically).
 *
 * Two "workers" try to take the same lock key: the first one's compare (the key does not
 * exist yet: version 0) holds, so its `then` branch writes the lock; the second one's fails
 * and its `else` branch reads who holds it. Then an optimistic update of a counter: read it,
 * and write the new value only if nobody changed it since (its mod revision is unchanged).
 *
 *   node dist/examples/txn.js [endpoint]        # or ENDPOINT=http://host:port
 */
import { Client, Compare, Op } from '../src/client/index.js';

const endpoint = process.argv[2] ?? process.env.ENDPOINT ?? 'http://127.0.0.1:2379';
const client = new Client({ endpoints: [endpoint] });
const lock = `examples/txn/${process.pid}/lock`;
const counter = `examples/txn/${process.pid}/counter`;

async function tryLock(worker: string): Promise<void> {
  const r = await client.txn()
    .if(Compare.version(lock, '=', 0)) //          the lock key does not exist yet…
    .then(Op.put(lock, worker)) //                 …so take it
    .else(Op.get(lock)) //                         …otherwise see who has it
    .commit();
  if (r.succeeded) {
    console.log(`${worker}: compare held, lock taken (revision ${r.header.revision})`);
  } else {
    const holder = r.responses[0]!;
    const by = holder.type === 'range' ? holder.range.kvs[0]?.value.toString() : '?';
    console.log(`${worker}: compare failed, lock is held by ${by}`);
  }
}

await tryLock('worker-a');
await tryLock('worker-b');

// Optimistic concurrency: increment a counter without a lock.
await client.put(counter, '0');
for (let i = 0; i < 3; i++) {
  const cur = (await client.get(counter)).kvs[0]!;
  const next = String(Number(cur.value.toString()) + 1);
  const r = await client.txn()
    .if(Compare.modRevision(counter, '=', cur.modRevision))
    .then(Op.put(counter, next))
    .commit();
  console.log(`swap counter ${cur.value} -> ${next}: ${r.succeeded ? 'swapped' : 'retry'}`);
}

// A stale swap: it expects the value it read long ago (0), so its compare fails.
const stale = await client.txn()
  .if(Compare.value(counter, '=', '0'))
  .then(Op.put(counter, '100'))
  .commit();
console.log(`stale swap (expects 0): ${stale.succeeded ? 'swapped' : 'refused'}; ` +
  `counter is ${await client.getString(counter)}`);

await client.delete(`examples/txn/${process.pid}/`, { prefix: true });
