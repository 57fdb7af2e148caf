/**
 * apply-cost: `node dist/bench/apply-cost.js [entries] [batch]` — the CPU the Raft thread's
 * apply unit (actors/raft/state-machine.ts) spends per committed PUT, in one thread, with the
 * real Endpoint packing what it sends (ShardApply to one shard, one answer per PUT to the
 * gateway) into batches that a fake transport drops. Entries are PUTs of 100-byte values to
 * keys drawn from 10,000, framed as the Raft node frames them (encodeProposal), applied in
 * batches of `batch` (one Raft pass each). Prints CPU µs per entry (process.cpuUsage; compare
 * builds alternated).
 */
import { StateMachine, type ApplyHooks } from '../actors/raft/state-machine.js';
import { encodeProposal, encodeRequest } from '../src/cluster/proposal.js';
import type { Entry } from '../src/raft/index.js';
import { Endpoint, type Message, type Transport } from '../src/runtime/endpoint.js';

const entries = Number(process.argv[2] ?? 200_000);
const batch = Number(process.argv[3] ?? 32);
let bytesOut = 0;
const drop: Transport = {
  post: (b) => { bytesOut += b.length; }, onBatch: () => {}, close: () => {},
};

function cpuUs(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

function run(n: number): { us: number; bytesPerEntry: number } {
  const ep = new Endpoint<Message>('raft');
  for (const peer of ['gateway', 'shard-0', 'watch', 'lease']) ep.connect(peer, drop);
  const sm = new StateMachine([ep.ref('shard-0')], ep.ref('watch'), ep.ref('lease'), ep);
  sm.setWatchInterest(false);
  const hooks: ApplyHooks = {
    claim: (p) => ({ from: 'gateway', id: p.n }),
    applyConfChange: () => ({ voters: [], learners: [] }),
    membersChanged: () => {},
    nowMs: () => performance.now(),
  };
  const value = 'v'.repeat(100);
  // Proposals are built before the clock starts: the gateway and the Raft core made them.
  const ents: Entry[] = [];
  for (let i = 0; i < n; i++) {
    const req = encodeRequest({ type: 'put', key: `bench/kv/${(i * 7919) % 10_000}`, value });
    ents.push({ term: 2, index: i + 1, type: 0, data: encodeProposal({ m: 1, b: 1, n: i + 1 },
      req) } as Entry);
  }
  bytesOut = 0;
  const t0 = cpuUs();
  for (let i = 0; i < n; i += batch) {
    sm.apply(ents.slice(i, i + batch), 2, hooks);
    ep.flushNow();
  }
  const us = (cpuUs() - t0) / n;
  ep.close();
  return { us, bytesPerEntry: bytesOut / n };
}

run(20_000); // warm up the JIT
for (let r = 0; r < 3; r++) {
  const { us, bytesPerEntry } = run(entries);
  process.stdout.write(`apply, batch ${batch}: ${us.toFixed(2)} µs/entry CPU, ` +
    `${bytesPerEntry.toFixed(0)} bytes sent per entry\n`);
}
