import test from 'ava';
import { IdleRepack } from '../src/mvcc/index.js';
import {
  keysRepackChunksPerSlice, keysRepackChunksPerTick, keysRepackTicksPerPass,
} from '../src/constants.js';

/** rig runs an IdleRepack over a fake key map of `chunks` chunks whose repack packs `perChunk`
 * keys per chunk looked at while `cold` (a pass of the real clock is in repackCold's tests),
 * with its deferred slices queued and run by hand. */
function rig(chunks: number, perChunk = 0) {
  const looked: number[] = [];
  const queue: (() => void)[] = [];
  const s = { idle: true, cold: true, collections: 0 };
  const r = new IdleRepack({
    repack: (n) => {
      looked.push(n);
      return s.cold ? n * perChunk : 0;
    },
    chunks: () => chunks,
    idle: () => s.idle,
    defer: (fn) => queue.push(fn),
    collect: () => s.collections++,
  });
  const drain = () => {
    while (queue.length > 0) queue.shift()!();
  };
  return { r, looked, queue, s, drain };
}

test('idle repack: a tick looks at its share of a pass, in slices with the event loop between',
  (t) => {
    const chunks = 2_500;
    const { r, looked, queue, drain } = rig(chunks);
    r.tick();
    t.deepEqual(looked, [keysRepackChunksPerSlice], 'one slice now');
    t.is(queue.length, 1, 'the next slice after the pending messages');
    drain();
    const share = Math.min(keysRepackChunksPerTick, Math.ceil(chunks / keysRepackTicksPerPass));
    t.is(looked.reduce((a, b) => a + b, 0), share);
    t.true(looked.every((n) => n <= keysRepackChunksPerSlice));
    looked.length = 0;
    const big = rig(100_000);
    big.r.tick();
    big.drain();
    t.is(big.looked.reduce((a, b) => a + b, 0), keysRepackChunksPerTick, 'at most a tick\'s cap');
  });

test('idle repack: nothing while the actor is busy, and a busy turn stops the slices', (t) => {
  const { r, looked, s, drain } = rig(2_500);
  s.idle = false;
  r.tick();
  drain();
  t.deepEqual(looked, []);
  s.idle = true;
  r.tick();
  s.idle = false; // a change arrived before the next slice
  drain();
  t.is(looked.length, 1);
});

test('idle repack: one collection after a pass that packed keys, none after one that did not',
  (t) => {
    const { r, s, drain } = rig(50, 400);
    r.tick();
    drain();
    t.is(s.collections, 0, 'still packing');
    s.cold = false; // everything packed: the next look finds nothing to pack
    r.tick();
    drain();
    t.is(s.collections, 1);
    r.tick();
    drain();
    t.is(s.collections, 1, 'nothing packed since');
  });
