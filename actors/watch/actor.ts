import type { ShardMsg, ShardReplies } from '../shard/messages.js';
import { assertNever } from '../../src/assert.js';
import { startActor } from '../../src/runtime/worker.js';
import {
  progressNotifyIntervalMs, traceBatchParentsMax, watcherDebugMax, watchStreamIdStride,
  watchSyncRetryMs,
} from '../../src/constants.js';
import type { ActorRef } from '../../src/runtime/endpoint.js';
import type { TraceRef } from '../../src/runtime/trace.js';
import { type HistoryRequest, mergeHistory, WatchHub } from '../../src/watch/index.js';
import type { RaftWatchInterest } from '../raft/messages.js';
import {
  packWatchEvents, type WatchConfig, type WatchDebug, type WatchMsg, type WatchOut,
  type WatchStatsResp,
} from './messages.js';

/**
 * The watch hub actor: a thin shell around WatchHub (src/watch). It feeds the hub the Raft
 * node's applied revisions, runs sync passes by reading history from every shard (ShardHistory
 * asks, merged in revision order), and at the end of each turn pushes every stream's queued
 * responses to the gateway as one WatchEvents per stream.
 *
 * Scheduling: at most one sync pass is out at a time. A pass that delivered something is
 * followed at once by the next (setImmediate, so live traffic interleaves); a pass that could
 * not run or made no progress (no stream with room, a shard still behind) is retried after
 * watchSyncRetryMs. Acks and new unsynced watchers wake the loop.
 *
 * Every turn's responses, for all streams, leave as ONE WatchEvents in which each distinct
 * event appears once (packWatchEvents): fan-out is paid in the gateway's socket writes, not
 * in messages.
 */
const ctx = startActor<WatchMsg, WatchConfig>();
const cfg = ctx.config;
const hub = new WatchHub({
  ...(cfg.bufferEvents === undefined ? {} : { bufferEvents: cfg.bufferEvents }),
  ...(cfg.historyEventsPerPass === undefined ? {}
    : { historyEventsPerPass: cfg.historyEventsPerPass }),
});
const gateway = ctx.ep.ref<WatchOut, unknown>(cfg.gatewayActor ?? 'gateway');
/** gateways: the gateway threads of --experimental-gateway-threads, by owner number. */
const gateways = new Map<number, ActorRef<WatchOut, unknown>>();

/** gatewayOf is the gateway thread that opened the streams of class `owner` (stream ids are
 * owner + k·watchStreamIdStride; owner 0 is the main thread's gateway). Without gateway
 * threads every stream is the main thread's, whatever its id (tests number their own). */
function gatewayOf(owner: number): ActorRef<WatchOut, unknown> {
  if (owner === 0) return gateway;
  let g = gateways.get(owner);
  if (g === undefined) {
    const name = `gateway-${owner}`;
    g = ctx.ep.hasActor(name) ? ctx.ep.ref<WatchOut, unknown>(name) : gateway;
    gateways.set(owner, g);
  }
  return g;
}

/** byOwner splits a turn's drained streams by the gateway thread that owns them (one owner,
 * the usual case, keeps the array as it is). */
function byOwner<T extends { streamId: number }>(drained: T[]): Map<number, T[]> {
  const first = drained[0]!.streamId % watchStreamIdStride;
  if (drained.every((d) => d.streamId % watchStreamIdStride === first)) {
    return new Map([[first, drained]]);
  }
  const out = new Map<number, T[]>();
  for (const d of drained) {
    const o = d.streamId % watchStreamIdStride;
    let part = out.get(o);
    if (part === undefined) out.set(o, part = []);
    part.push(d);
  }
  return out;
}
const shards = Array.from({ length: cfg.shardCount },
  (_, i) => ctx.ep.ref<ShardMsg, ShardReplies>(`shard-${i}`));

/** recovered: WatchRecovered has arrived; creates before it wait in `early`. */
let recovered = false;
/** subscribed: the Raft node sends us every revision's changes. With no watchers the hub
 * unsubscribes (RaftWatchInterest), so a store nobody watches pays nothing for the hub; the
 * next create subscribes again and waits for WatchRecovered. It starts unsubscribed, as the
 * Raft node's state machine does: a restart's replay of the WAL tail (a quarter of a million
 * puts with a million keys) is not packed for a hub that nobody watches yet. Without a Raft
 * node (tests feed the hub directly) it is always subscribed. */
let subscribed = !ctx.ep.hasActor('raft');
const raft = ctx.ep.ref<RaftWatchInterest, unknown>('raft');

function subscribe(): void {
  if (subscribed) return;
  subscribed = true;
  raft.sendUnbounded({ type: 'RaftWatchInterest', subscribed: true });
}

function unsubscribeIfIdle(): void {
  // Without a Raft node (tests feed the hub directly) there is no one to tell.
  if (!ctx.ep.hasActor('raft')) return;
  if (!subscribed || !recovered || early.length > 0 || hub.stats().watchers > 0 ||
    hub.hasPendingProgress) return;
  subscribed = false;
  recovered = false;
  raft.sendUnbounded({ type: 'RaftWatchInterest', subscribed: false });
}
let early: WatchMsg[] = [];
/** traced: contexts of the traced changes of this turn; the turn's WatchEvents continues them
 * (src/runtime/trace.ts). */
let traced: TraceRef[] = [];
let syncPasses = 0;
let flushScheduled = false;
let retryTimer: NodeJS.Timeout | undefined;
/** lastPass: the newest answered sync pass, for GET /debug/watch. */
let lastPass: (Omit<NonNullable<WatchDebug['lastPass']>, 'agoMs'> & { atMs: number }) |
  undefined;

/** debugState is the hub's state for GET /debug/watch. */
function debugState(): WatchDebug {
  const out: WatchDebug = {
    syncing: hub.syncing, retrying: retryTimer !== undefined,
    watchers: hub.watcherStates(watcherDebugMax),
  };
  if (lastPass !== undefined) {
    const { atMs, ...pass } = lastPass;
    out.lastPass = { ...pass, agoMs: Math.round(performance.now() - atMs) };
  }
  return out;
}

function handle(msg: WatchMsg, token: Parameters<Parameters<typeof ctx.ep.onMessage>[0]>[1]): void {
  switch (msg.type) {
    case 'WatchRecovered':
      if (!onRecovered(msg)) return;
      break;
    case 'WatchChanges':
      // Unsubscribed: changes sent before the Raft node saw it; WatchRecovered resumes.
      if (!recovered) return;
      for (const r of msg.revisions) hub.onChanges(r.revision, r.changes);
      if (ctx.ep.traceContext !== undefined && traced.length < traceBatchParentsMax) {
        traced.push(...ctx.ep.traceContext);
      }
      break;
    case 'WatchCompacted':
      if (!recovered) return;
      hub.onCompacted(msg.revision);
      break;
    case 'WatchCreate':
      if (!recovered) {
        early.push(msg);
        subscribe();
        return;
      }
      hub.create(msg.streamId, msg.req);
      break;
    case 'WatchCancel':
      if (!recovered) {
        early.push(msg);
        subscribe(); // a first request that cancels is answered too
        return;
      }
      hub.cancel(msg.streamId, msg.watchId);
      break;
    case 'WatchProgress':
      if (!recovered) {
        early.push(msg);
        subscribe();
        return;
      }
      hub.requestProgress(msg.streamId, msg.atLeast);
      break;
    case 'WatchAck':
      hub.ack(msg.streamId, msg.events);
      break;
    case 'WatchStreamClose':
      if (!recovered) {
        early = early.filter((m) => !('streamId' in m) || m.streamId !== msg.streamId);
      }
      hub.closeStream(msg.streamId);
      break;
    case 'WatchStats':
      if (token !== undefined) {
        ctx.ep.reply(token, {
          ...hub.stats(), currentRevision: hub.currentRevision,
          compactRevision: hub.compactRevision, syncPasses,
          ...(msg.detail === true ? { detail: debugState() } : {}),
        } satisfies WatchStatsResp);
      }
      return;
    default:
      assertNever(msg);
  }
  scheduleFlush();
}

/** onRecovered takes the store's position from the Raft node and runs the creates that
 * waited for it; false when ignored. Unsubscribed, the Raft node sends no changes: a
 * snapshot install's WatchRecovered must not mark the hub recovered then, or the next create
 * would not subscribe again and its watchers would never hear of a later revision.
 * Subscribing brings a fresh one. */
function onRecovered(msg: Extract<WatchMsg, { type: 'WatchRecovered' }>): boolean {
  if (!subscribed) return false;
  hub.recover(msg.revision, msg.compactRevision);
  if (!recovered) {
    recovered = true;
    const queued = early;
    early = [];
    for (const m of queued) handle(m, undefined);
  }
  return true;
}

ctx.ep.onMessage(handle);

/** scheduleFlush runs once per turn, after the whole incoming batch: start a sync pass if
 * there is work, then push every stream's responses (one WatchEvents per stream). */
function scheduleFlush(): void {
  if (flushScheduled) return;
  flushScheduled = true;
  setImmediate(flush);
}

function flush(): void {
  flushScheduled = false;
  startPass();
  const drained = hub.drain();
  const trace = traced.length > 0 ? traced : undefined;
  traced = [];
  if (drained.length > 0) {
    ctx.ep.withTrace(trace, () => {
      for (const [owner, part] of byOwner(drained)) {
        gatewayOf(owner).sendUnbounded(packWatchEvents(part));
      }
    });
  }
  unsubscribeIfIdle();
}

function startPass(): void {
  if (hub.syncing || retryTimer !== undefined || !hub.hasUnsynced) return;
  const req = hub.nextSync();
  if (req === undefined) {
    if (hub.hasUnsynced) retryLater();
    return;
  }
  syncPasses++;
  const before = hub.stats().unsynced;
  const noted = (through: number, changes: number, error?: string) => {
    lastPass = { from: req.fromRevision, to: req.toRevision, through, changes,
      watchers: before, ...(error === undefined ? {} : { error }), atMs: performance.now() };
  };
  readHistory(req).then((h) => {
    noted(h.throughRevision, h.changes.length);
    hub.applyHistory(req.pass, h.changes, h.throughRevision);
    // Progress: someone synced or got events. Either way another pass may be due.
    if (hub.stats().unsynced < before || h.changes.length > 0) scheduleFlush();
    else retryLater();
  }, (e: unknown) => {
    noted(0, 0, String(e));
    // A shard failed (restarting) or compacted under us: the hub learns the compaction
    // through WatchCompacted and cancels those watchers on a later pass.
    hub.historyFailed(req.pass);
    retryLater();
  });
}

function retryLater(): void {
  if (retryTimer !== undefined) return;
  retryTimer = setTimeout(() => {
    retryTimer = undefined;
    scheduleFlush();
  }, watchSyncRetryMs);
}

async function readHistory(req: HistoryRequest): Promise<ReturnType<typeof mergeHistory>> {
  const parts = await Promise.all(shards.map((s) => s.ask({
    type: 'ShardHistory', fromRevision: req.fromRevision, toRevision: req.toRevision,
    key: req.key, rangeEnd: req.rangeEnd, limit: req.limit,
  })));
  return mergeHistory(parts);
}

const progressTimer = setInterval(() => {
  hub.progressTick();
  scheduleFlush();
}, cfg.progressNotifyIntervalMs ?? progressNotifyIntervalMs);
progressTimer.unref();

ctx.onStop(() => {
  clearInterval(progressTimer);
  if (retryTimer !== undefined) clearTimeout(retryTimer);
  flush();
});

ctx.ready();
