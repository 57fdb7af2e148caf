import { assert } from '../src/assert.js';

/**
 * assert-cost: what an assert that holds costs per call, with `what` a constant and the
 * values in `detail`, against `what` built as a template string on every call (the reason
 * src/assert.ts asks for the first).
 *
 *   node dist/bench/assert-cost.js [--calls 5000000]
 *
 * Prints nanoseconds per call for each form. Not a test: nothing is asserted about speed.
 */

function perCallNs(calls: number, f: (i: number) => void): number {
  for (let i = 0; i < 100_000; i++) f(i); // warm-up: let the JIT optimise f
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < calls; i++) f(i);
  return Number(process.hrtime.bigint() - t0) / calls;
}

const args = process.argv.slice(2);
const at = args.indexOf('--calls');
const calls = at >= 0 ? Number(args[at + 1]) : 5_000_000;
let last = -1;
const constant = perCallNs(calls, (i) => {
  assert(i > last || i === 0, 'bench: i grows', [i, last]);
  last = i;
});
last = -1;
const template = perCallNs(calls, (i) => {
  assert(i > last || i === 0, `bench: i ${i} grows past ${last}`);
  last = i;
});
console.log(`constant what + detail: ${constant.toFixed(1)} ns/call`);
console.log(`template-string what:   ${template.toFixed(1)} ns/call`);
