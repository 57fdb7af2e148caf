import { startActor } from '../../src/runtime/worker.js';

/**
 * A fake peer actor for the lease actor's tests, which also stands for the Raft node (the
 * lease actor's `raftActor`): a keep-alive or time-to-live a follower relays (PeerForward) is
 * answered as the leader's lease actor would, with a TTL of 42 and the member it was sent to,
 * so that the test sees that it was relayed and where; a read barrier is answered at once.
 * It never says who leads: the test does.
 */
type Msg = { type: 'PeerForward'; to: number; target: string; msg: { type: string; id: number } }
  | { type: 'RaftBarrier' };

const ctx = startActor<Msg, Record<string, never>>();
ctx.ep.onMessage((msg, token) => {
  if (token === undefined) return;
  if (msg.type === 'RaftBarrier') return ctx.ep.reply(token, null);
  ctx.ep.reply(token, { id: msg.msg.id, ttlSeconds: 42, relayedTo: msg.to });
});
ctx.ready();
