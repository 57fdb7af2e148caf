import type { Change } from '../../src/mvcc/types.js';
import type { WatchCreateSpec, WatchResponse } from '../../src/watch/types.js';

/**
 * The watch hub's protocol. The Raft node feeds it every applied revision's changes, in log
 * order; the gateway opens watch streams on it and receives their responses as pushes. All
 * gateway → hub messages are sends: every answer (created, canceled, events, progress) comes
 * back in the stream's own ordered WatchEvents pushes, so a `created` can never overtake the
 * stream's first events the way an ask's reply (resolved a microtask later) could.
 */

/** RevisionChanges is one applied write transaction: its revision and changes, in order. */
export interface RevisionChanges {
  revision: number;
  changes: Change[];
}

/** WatchRecovered tells the hub where the store stands after recovery (Raft node → hub,
 * send, once at boot before any WatchChanges, and again after installing a snapshot).
 * Watch creates wait until it has arrived. */
export interface WatchRecovered {
  type: 'WatchRecovered';
  revision: number;
  compactRevision: number;
}

/** WatchChanges carries applied revisions in log order, each with all its changes (Raft node
 * → hub, send, one per Ready). Only revisions that advanced the store; never repeated. */
export interface WatchChanges {
  type: 'WatchChanges';
  revisions: RevisionChanges[];
}

/** WatchCompacted: history below `revision` is gone (Raft node → hub, send, when a
 * compaction is applied). */
export interface WatchCompacted {
  type: 'WatchCompacted';
  revision: number;
}

/** WatchCreate adds a watcher to a stream (gateway → hub, send); opens the stream. */
export interface WatchCreate {
  type: 'WatchCreate';
  streamId: number;
  req: WatchCreateSpec;
}

/** WatchCancel cancels one watcher of a stream (gateway → hub, send). */
export interface WatchCancel {
  type: 'WatchCancel';
  streamId: number;
  watchId: number;
}

/** WatchProgress asks for a progress answer on a stream (gateway → hub, send). */
export interface WatchProgress {
  type: 'WatchProgress';
  streamId: number;
  /** atLeast: the newest revision the gateway had seen applied when the client asked; the
   * answer waits until the hub is there too (etcd answers at its store's revision, which a
   * write acknowledged before the request has reached). */
  atLeast?: number;
}

/** WatchAck: the gateway has written `events` events of a stream to its client (flow
 * control: a stream holds at most watchStreamEventsMax unacknowledged events). */
export interface WatchAck {
  type: 'WatchAck';
  streamId: number;
  events: number;
}

/** WatchStreamClose: the client went away (gateway → hub, send). */
export interface WatchStreamClose {
  type: 'WatchStreamClose';
  streamId: number;
}

/** WatchStats asks for counts (ask; metrics and tests). */
export interface WatchStats {
  type: 'WatchStats';
  /** detail adds every watcher's cursor and the last sync pass (GET /debug/watch). */
  detail?: boolean;
}

export type WatchMsg = WatchRecovered | WatchChanges | WatchCompacted | WatchCreate |
  WatchCancel | WatchProgress | WatchAck | WatchStreamClose | WatchStats;

/**
 * WatchEvents pushes every stream's responses of one turn (hub → gateway, send): one message
 * per turn, not one per stream. Fan-out sends the same event to many watchers, so each
 * distinct event travels once, in `changes`, and responses name theirs by index: with 1,000
 * watchers on a prefix, one put costs one encoded event on the wire, not 1,000.
 */
export interface WatchEvents {
  type: 'WatchEvents';
  changes: Change[];
  streams: { streamId: number; responses: WatchResponseWire[] }[];
}

/** WatchResponseWire is a WatchResponse whose events are indexes into WatchEvents.changes. */
export interface WatchResponseWire extends Omit<WatchResponse, 'events'> {
  events: number[];
}

/** packWatchEvents builds one WatchEvents from the hub's drained streams, sharing events:
 * the hub hands the same Change to every watcher that wants it as is, and a copy without
 * prevKv to those that did not ask for it; both dedupe here by (kv, kind, prevKv). */
export function packWatchEvents(
  drained: readonly { streamId: number; responses: readonly WatchResponse[] }[],
): WatchEvents {
  const changes: Change[] = [];
  const slots = new Map<object, number[]>();
  const indexOf = (c: Change): number => {
    let slot = slots.get(c.kv);
    if (slot === undefined) slots.set(c.kv, (slot = [-1, -1, -1, -1]));
    const k = (c.kind === 'put' ? 0 : 2) + (c.prevKv === undefined ? 0 : 1);
    if (slot[k]! < 0) {
      slot[k] = changes.length;
      changes.push(c);
    }
    return slot[k]!;
  };
  const streams = drained.map(({ streamId, responses }) => ({
    streamId,
    responses: responses.map((r) => ({ ...r, events: r.events.map(indexOf) })),
  }));
  return { type: 'WatchEvents', changes, streams };
}

/** unpackWatchEvents turns a WatchEvents back into per-stream responses; events shared
 * between streams are the same objects, so their encodings can be cached by identity. */
export function unpackWatchEvents(m: WatchEvents):
  { streamId: number; responses: WatchResponse[] }[] {
  return m.streams.map(({ streamId, responses }) => ({
    streamId,
    responses: responses.map((r) => ({ ...r, events: r.events.map((i) => m.changes[i]!) })),
  }));
}

/** WatchOut is what the hub sends to the gateway. */
export type WatchOut = WatchEvents;

/** WatchStatsResp are the hub's counts. */
export interface WatchStatsResp {
  streams: number;
  watchers: number;
  synced: number;
  unsynced: number;
  currentRevision: number;
  compactRevision: number;
  syncPasses: number;
  /** detail: present when asked (WatchStats.detail). */
  detail?: WatchDebug;
}

/** WatchDebug is the hub's state for GET /debug/watch: why a watch is silent, if it is. */
export interface WatchDebug {
  /** syncing: a sync pass waits for the shards; retrying: one waits for its retry timer. */
  syncing: boolean;
  retrying: boolean;
  /** lastPass: the newest sync pass that answered (or failed: error). */
  lastPass?: { from: number; to: number; through: number; changes: number; watchers: number;
    error?: string; agoMs: number };
  /** watchers: the first watcherDebugMax watchers. */
  watchers: WatcherDebug[];
}

/** WatcherDebug is one watcher's place: its cursor and its stream's buffer. */
export interface WatcherDebug {
  streamId: number;
  watchId: number;
  synced: boolean;
  /** minRev: the next revision it must see. */
  minRev: number;
  /** bufferedEvents: queued plus unacknowledged events of its stream. */
  bufferedEvents: number;
}

/** WatchReplies maps each ask to its reply. */
export interface WatchReplies {
  WatchStats: WatchStatsResp;
}

/** WatchConfig is the hub thread's start-up configuration. */
export interface WatchConfig {
  /** shardCount: the hub reads history from peers shard-0 … shard-(shardCount-1). */
  shardCount: number;
  logLevel: string;
  /** progressNotifyIntervalMs overrides etcd's 10 minutes (tests). */
  progressNotifyIntervalMs?: number;
  /** bufferEvents overrides watchStreamEventsMax (tests). */
  bufferEvents?: number;
  /** historyEventsPerPass overrides the history read per pass (tests). */
  historyEventsPerPass?: number;
  /** gatewayActor names the actor that opened the streams (default 'gateway'). */
  gatewayActor?: string;
}
