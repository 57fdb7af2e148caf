import test from 'ava';
import { mailboxDepthMax } from '../src/constants.js';
import {
  AskTimeoutError, MailboxFullError, ActorGoneError, RemoteError,
} from '../src/runtime/endpoint.js';
import { ActorSystem } from '../src/runtime/system.js';
import { osThreadId } from '../src/runtime/thread-id.js';
import { until } from './helpers/wait.js';

type EchoMsg =
  | { type: 'Echo'; v: number }
  | { type: 'Fail' }
  | { type: 'Ignore' }
  | { type: 'Crash' }
  | { type: 'Forward'; v: number; to: string }
  | { type: 'Tid' };
interface EchoReplies {
  Echo: { v: number; by: string; gen: number };
  Tid: { tid: number; gen: number };
  Forward: { v: number; by: string; gen: number };
  Fail: never;
  Ignore: never;
}

const echoUrl = new URL('./actors/echo.js', import.meta.url);
const quiet = { info() {}, warn() {}, error() {} };

function system(onFatal?: (r: string) => void): ActorSystem {
  return new ActorSystem([
    { name: 'a', url: echoUrl, config: {}, connects: ['b'] },
    { name: 'b', url: echoUrl, config: {}, connects: ['a'] },
  ], { logger: quiet, onFatal: onFatal ?? (() => undefined) });
}

test('runtime: ask across threads is answered, and a burst travels in few batches', async (t) => {
  const sys = system();
  await sys.start();
  try {
    const a = sys.gateway.ref<EchoMsg, EchoReplies>('a');
    const replies = await Promise.all(
      Array.from({ length: 1000 }, (_, v) => a.ask({ type: 'Echo', v })));
    t.deepEqual(replies.map((r) => r.v), Array.from({ length: 1000 }, (_, v) => v));
    t.true(replies.every((r) => r.by === 'a'));
    const st = sys.gateway.snapshotStats();
    t.true(st.batchesOut < 10, `1,000 asks left in ${st.batchesOut} batches`);
    t.is(a.depth, 0);
  } finally {
    await sys.stop();
  }
});

test('runtime: a reply error arrives as RemoteError with its code', async (t) => {
  const sys = system();
  await sys.start();
  try {
    const a = sys.gateway.ref<EchoMsg, EchoReplies>('a');
    const e = await t.throwsAsync(a.ask({ type: 'Fail' }));
    t.true(e instanceof RemoteError);
    t.is((e as RemoteError).code, 'E_TEST');
  } finally {
    await sys.stop();
  }
});

test('runtime: a forwarded ask is answered by the actor it was forwarded to', async (t) => {
  const sys = system();
  await sys.start();
  try {
    const a = sys.gateway.ref<EchoMsg, EchoReplies>('a');
    const r = await a.ask({ type: 'Forward', v: 41, to: 'b' });
    t.deepEqual([r.v, r.by], [42, 'b']);
  } finally {
    await sys.stop();
  }
});

test('runtime: an unanswered ask times out', async (t) => {
  const sys = system();
  await sys.start();
  try {
    const a = sys.gateway.ref<EchoMsg, EchoReplies>('a');
    const e = await t.throwsAsync(a.ask({ type: 'Ignore' }, 50));
    t.true(e instanceof AskTimeoutError);
    t.is(a.depth, 0, 'a timed-out ask no longer counts against the mailbox');
  } finally {
    await sys.stop();
  }
});

test('runtime: a full mailbox refuses instead of growing', async (t) => {
  const sys = system();
  await sys.start();
  try {
    const a = sys.gateway.ref<EchoMsg, EchoReplies>('a');
    const stuck: Promise<unknown>[] = [];
    for (let i = 0; i < mailboxDepthMax; i++) stuck.push(a.ask({ type: 'Ignore' }).catch(() => 0));
    t.is(a.depth, mailboxDepthMax);
    t.throws(() => a.ask({ type: 'Echo', v: 1 }), { instanceOf: MailboxFullError });
  } finally {
    await sys.stop();
  }
});

test('runtime: a crashed actor is restarted, asks in flight fail, and restarts are counted',
  async (t) => {
    const sys = system();
    await sys.start();
    try {
      const a = sys.gateway.ref<EchoMsg, EchoReplies>('a');
      const gen0 = (await a.ask({ type: 'Echo', v: 1 })).gen;
      // A deadline longer than any restart: the ask must fail because the thread died.
      const inflight = a.ask({ type: 'Ignore' }, 120_000);
      a.send({ type: 'Crash' });
      const e = await t.throwsAsync(inflight);
      t.true(e instanceof ActorGoneError);
      // Wait for the new generation to serve.
      let r: EchoReplies['Echo'] | undefined;
      await until(async () => {
        if (sys.serving) r = await a.ask({ type: 'Echo', v: 2 }).catch(() => undefined);
        return r !== undefined;
      }, 'the new generation to serve', { intervalMs: 25 });
      t.true(r!.gen > gen0, `generation ${r!.gen} after ${gen0}`);
      t.is(sys.restarts.get('a'), 1);
    } finally {
      await sys.stop();
    }
  });

test('runtime: an actor that keeps crashing escalates to the fatal handler', async (t) => {
  let fatal = '';
  const sys = new ActorSystem([
    { name: 'a', url: echoUrl, config: {}, connects: [] },
  ], { logger: quiet, onFatal: (r) => { fatal = r; } });
  await sys.start();
  const a = sys.gateway.ref<EchoMsg, EchoReplies>('a');
  t.teardown(() => sys.stop());
  // Crash each generation once it serves, until the supervisor gives up (the restarts back
  // off: 50 ms, doubling).
  await until(() => {
    if (fatal === '' && sys.serving) {
      try {
        a.send({ type: 'Crash' });
      } catch {
        // peer gone while restarting
      }
    }
    return fatal !== '';
  }, 'the fatal handler', { intervalMs: 100 });
  t.regex(fatal, /crashed \d+ times/);
  await sys.stop();
});

test('runtime: threads() names each actor thread with the OS thread id it runs on, and a ' +
  'restart replaces the ids', async (t) => {
  const sys = system();
  await sys.start();
  try {
    const a = sys.gateway.ref<EchoMsg, EchoReplies>('a');
    const b = sys.gateway.ref<EchoMsg, EchoReplies>('b');
    const [ra, rb] = await Promise.all([a.ask({ type: 'Tid' }), b.ask({ type: 'Tid' })]);
    const here = osThreadId();
    t.not(here, undefined, 'this test runs on Linux with /proc/thread-self');
    t.deepEqual(sys.threads(), [{ name: 'gateway', tid: here! }, { name: 'a', tid: ra.tid },
      { name: 'b', tid: rb.tid }]);
    t.is(new Set([here, ra.tid, rb.tid]).size, 3, 'three threads, three ids');
    a.send({ type: 'Crash' });
    let r: EchoReplies['Tid'] | undefined;
    await until(async () => {
      if (sys.serving) r = await a.ask({ type: 'Tid' }).catch(() => undefined);
      return r !== undefined && r.gen > ra.gen;
    }, 'the new generation to serve', { intervalMs: 25 });
    const rb2 = await b.ask({ type: 'Tid' });
    t.deepEqual(sys.threads(), [{ name: 'gateway', tid: here! }, { name: 'a', tid: r!.tid },
      { name: 'b', tid: rb2.tid }]);
    t.not(r!.tid, ra.tid, 'the restarted actor runs on a new thread');
  } finally {
    await sys.stop();
  }
});
