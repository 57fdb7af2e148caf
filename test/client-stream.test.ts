import test from 'ava';
import { resumable } from '../src/client/stream.js';

/**
 * client stream: the one reconnect loop under both watches (/v3 Client.watch and /v1
 * V1Client.watch), driven by scripted streams: each `open` returns the next scripted outcome
 * (messages then an end or a break, or a failure to connect).
 */

type Step = { messages: readonly string[]; then: 'end' | 'break' } | { refuse: Error };

/** scripted plays the steps in order, recording what each open saw as the resume point. */
function scripted(steps: Step[], resumePoint: () => number) {
  const opened: number[] = [];
  return {
    opened,
    async open(): Promise<AsyncIterable<string>> {
      opened.push(resumePoint());
      const step = steps.shift();
      if (step === undefined) throw new Error('script exhausted');
      if ('refuse' in step) throw step.refuse;
      return (async function* () {
        for (const m of step.messages) yield m;
        if (step.then === 'break') throw new Error('connection reset');
      })();
    },
  };
}

class Refusal extends Error {}

const base = {
  final: (e: unknown) => e instanceof Refusal,
  healthy: (m: string) => m === 'created',
};

test('stream: a broken stream is reopened from the resume point the caller keeps', async (t) => {
  let next = 1;
  const s = scripted(
    [
      { messages: ['created', 'e1', 'e2'], then: 'break' },
      { refuse: new Error('ECONNREFUSED') },
      { messages: ['created', 'e3'], then: 'end' },
      { messages: ['created', 'e4'], then: 'break' },
    ],
    () => next,
  );
  const ctl = new AbortController();
  const seen: string[] = [];
  for await (const m of resumable({
    ...base,
    signal: ctl.signal,
    reconnectsMax: 2,
    open: s.open,
  })) {
    seen.push(m);
    if (m.startsWith('e')) next = Number(m.slice(1)) + 1;
    if (m === 'e4') ctl.abort();
  }
  t.deepEqual(seen, ['created', 'e1', 'e2', 'created', 'e3', 'created', 'e4']);
  t.deepEqual(s.opened, [1, 3, 3, 4]);
});

test('stream: a refusal is thrown at once, without reopening', async (t) => {
  const s = scripted([{ refuse: new Refusal('bad request') }], () => 0);
  const it = resumable({ ...base, signal: new AbortController().signal, reconnectsMax: 5, ...s });
  await t.throwsAsync(
    async () => {
      for await (const _ of it) t.fail();
    },
    { instanceOf: Refusal },
  );
  t.is(s.opened.length, 1);
});

test('stream: it gives up after reconnectsMax failures in a row, unless healthy', async (t) => {
  const broken = { messages: ['e'], then: 'break' } as const;
  const healthy = { messages: ['created'], then: 'break' } as const;
  const s = scripted([broken, broken, healthy, broken, broken, broken], () => 0);
  const it = resumable({
    ...base,
    signal: new AbortController().signal,
    reconnectsMax: 2,
    open: s.open,
    lost: (e) => new Error(`lost: ${(e as Error).message}`),
  });
  await t.throwsAsync(
    async () => {
      for await (const _ of it) void _;
    },
    { message: 'lost: connection reset' },
  );
  // Two failures; a healthy stream resets the count, then breaks (1); two more make 3 > 2.
  t.is(s.opened.length, 5);
});

test('stream: with reconnectsMax 0 a stream that ends is not reopened', async (t) => {
  const s = scripted([{ messages: ['created', 'e1'], then: 'end' }], () => 0);
  const seen: string[] = [];
  const it = resumable({
    ...base,
    signal: new AbortController().signal,
    reconnectsMax: 0,
    open: s.open,
    lost: (e) => e,
  });
  await t.throwsAsync(
    async () => {
      for await (const m of it) seen.push(m);
    },
    { message: 'stream ended' },
  );
  t.deepEqual(seen, ['created', 'e1']);
  t.is(s.opened.length, 1);
});
