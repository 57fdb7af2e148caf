import { osThreadId } from '../../src/runtime/thread-id.js';
import { startActor } from '../../src/runtime/worker.js';

/** A test actor: echoes, fails, ignores, crashes or forwards, as asked. */
type EchoMsg =
  | { type: 'Echo'; v: number }
  | { type: 'Fail' }
  | { type: 'Ignore' }
  | { type: 'Crash' }
  | { type: 'Forward'; v: number; to: string }
  | { type: 'Tid' }
  | { type: 'Relay'; v: number; to: string };

const ctx = startActor<EchoMsg, { crashOnStart?: boolean }>();
if (ctx.config.crashOnStart === true) throw new Error('crash on start');
ctx.ep.onMessage((msg, token) => {
  switch (msg.type) {
    case 'Echo':
      if (token !== undefined) ctx.ep.reply(token, { v: msg.v, by: ctx.name, gen: ctx.generation });
      break;
    case 'Fail':
      if (token !== undefined) {
        ctx.ep.replyError(token, { code: 'E_TEST', message: 'asked to fail' });
      }
      break;
    case 'Ignore':
      break;
    case 'Tid':
      if (token !== undefined) ctx.ep.reply(token, { tid: osThreadId(), gen: ctx.generation });
      break;
    case 'Crash':
      setImmediate(() => {
        throw new Error('asked to crash');
      });
      break;
    case 'Relay':
      // Asks another actor and answers with its answer: this thread awaits a reply.
      if (token !== undefined) {
        ctx.ep.ref<EchoMsg, { Echo: { v: number } }>(msg.to).ask({ type: 'Echo', v: msg.v })
          .then((r) => ctx.ep.reply(token, { v: r.v, by: ctx.name, gen: ctx.generation }),
            (e: Error) => ctx.ep.replyError(token, { message: e.message }));
      }
      break;
    case 'Forward':
      if (token !== undefined) {
        ctx.ep.ref<EchoMsg, unknown>(msg.to).forward({ type: 'Echo', v: msg.v + 1 }, token);
      }
      break;
  }
});
ctx.ready();
