/**
 * watch.ts — watch a prefix and print every change as it happens.
 *
 * A watch is a long-lived stream (/v3/watch): the server pushes each put and delete under
 * the prefix, in revision order, with nothing lost. Here the same program writes, so the
 * example ends by itself; run `myetcdctl put examples/watch/x 1` from another terminal to see
 * the events of a running watch (pass `--forever` to keep it open).
 *
 *   node dist/examples/watch.js [endpoint] [--forever]     # or ENDPOINT=http://host:port
 */
import { Client } from '../src/client/index.js';

const args = process.argv.slice(2);
const forever = args.includes('--forever');
const endpoint = args.find((a) => !a.startsWith('--')) ?? process.env.ENDPOINT ??
  'http://127.0.0.1:2379';
const client = new Client({ endpoints: [endpoint] });
const prefix = forever ? 'examples/watch/' : `examples/watch/${process.pid}/`;

const watcher = client.watch(prefix, { prefix: true, prevKv: true });
const expected = 4; // the writes below

// Read the stream in the background: a watch is an async iterable of responses.
const reading = (async () => {
  let seen = 0;
  for await (const r of watcher) {
    for (const e of r.events) {
      const prev = e.prevKv ? ` (was ${e.prevKv.value})` : '';
      const value = e.type === 'PUT' ? ` = ${e.kv.value}` : '';
      console.log(`event ${e.type} ${e.kv.key}${value}${prev} at revision ${e.kv.modRevision}`);
      seen++;
    }
    if (!forever && seen >= expected) watcher.cancel();
  }
})();

// The watch connects when iteration starts; `created` resolves once the server has it.
const created = await watcher.created;
console.log(`watching ${prefix}* from revision ${created.revision + 1}`);
if (forever) {
  await reading;
} else {
  await client.put(prefix + 'a', '1');
  await client.put(prefix + 'a', '2');
  await client.put(prefix + 'b', '3');
  await client.put('examples/elsewhere', 'not under the prefix: not seen');
  await client.delete(prefix, { prefix: true }); // deletes a and b: 2 events, one revision
  await reading;
  console.log('watch closed');
}
