/**
 * idle-hop: what one message between two idle threads costs here, the floor under every hop
 * of MyEtcd's write path. The main thread posts to a worker every 5 ms (both idle between),
 * the worker answers at once; it prints the medians of the round trip and of each one-way
 * delay (a shared clock: performance.timeOrigin + now()), then of a back-to-back round trip
 * (neither thread idle).
 *
 *   node dist/bench/idle-hop.js [rounds=400]
 */
import { Worker } from 'node:worker_threads';

const rounds = Number(process.argv[2] ?? 400);
const wallMs = (): number => performance.timeOrigin + performance.now();
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

const w = new Worker(`
  const { parentPort } = require('node:worker_threads');
  parentPort.on('message', (m) => {
    parentPort.postMessage({ sent: m.sent, at: performance.timeOrigin + performance.now() });
  });`, { eval: true });

/** ping posts one message and resolves with the worker's answer. */
function ping(): Promise<{ sent: number; at: number }> {
  return new Promise((resolve) => {
    w.once('message', resolve);
    w.postMessage({ sent: wallMs() });
  });
}

const roundTrip: number[] = [];
const there: number[] = [];
const back: number[] = [];
await new Promise((r) => setTimeout(r, 500));
for (let i = 0; i < rounds; i++) {
  const t0 = performance.now();
  const r = await ping();
  roundTrip.push(performance.now() - t0);
  there.push(r.at - r.sent);
  back.push(wallMs() - r.at);
  await new Promise((r) => setTimeout(r, 5));
}
const busy: number[] = [];
for (let i = 0; i < rounds * 5; i++) {
  const t0 = performance.now();
  await ping();
  busy.push(performance.now() - t0);
}
console.log(`idle threads (ms): round trip ${median(roundTrip).toFixed(3)}, main → worker ` +
  `${median(there).toFixed(3)}, worker → main ${median(back).toFixed(3)}; back to back: ` +
  `round trip ${median(busy).toFixed(3)}`);
await w.terminate();
