/**
 * lease.ts — keys that live only as long as their lease.
 *
 * A lease has a TTL; keys attached to it are deleted when it is revoked or expires. A client
 * keeps a lease alive by renewing it (here: automatically, every third of the TTL). This is
 * how etcd does service registration and liveness: a process that dies stops renewing, and
 * its keys vanish.
 *
 *   node dist/examples/lease.js [endpoint]      # or ENDPOINT=http://host:port (takes ~6 s)
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from '../src/client/index.js';

const endpoint = process.argv[2] ?? process.env.ENDPOINT ?? 'http://127.0.0.1:2379';
const client = new Client({ endpoints: [endpoint] });
const key = `examples/lease/${process.pid}/service`;

// 1. A lease with automatic keep-alive outlives its TTL.
const lease = await client.leaseWithKeepAlive(2, {
  onResponse: (r) => console.log(`  keep-alive: lease ${r.id} renewed, TTL ${r.ttl}s`),
});
console.log(`granted lease ${lease.id} with TTL ${lease.ttl}s, keep-alive running`);
await client.put(key, 'up', { lease: lease.id });
await sleep(3_000); // longer than the TTL
console.log(`after 3s: ${key} = ${await client.getString(key)} (kept alive)`);

// Revoking the lease deletes its keys at once.
await lease.close(); // stops the keep-alive and revokes
console.log(`revoked: ${key} = ${await client.getString(key) ?? '(gone)'}`);

// 2. Without keep-alive, the lease expires after its TTL and takes the key with it.
const short = await client.leaseGrant(2);
await client.put(key, 'up again', { lease: short.id });
const ttl = await client.leaseTimeToLive(short.id, { keys: true });
console.log(`granted lease ${short.id}, no keep-alive: ` +
  `${ttl.keys.length} key, ${ttl.ttl}s left`);
for (let waited = 0; waited < 10_000; waited += 500) {
  if ((await client.getString(key)) === undefined) break;
  await sleep(500);
}
console.log(`expired: ${key} = ${await client.getString(key) ?? '(gone)'}`);
