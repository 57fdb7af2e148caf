/**
 * Watch limits that src/constants.ts does not name yet (the lead may move them there; the
 * names follow its conventions). The others (watchersSyncedPerPass, watchStreamBufferEvents,
 * watchStreamsMax) come from src/constants.ts.
 */

/** historyEventsPerPass bounds the events one sync pass reads from history (per shard). A
 * revision is never split, so one pass can exceed it by the size of one transaction. */
export const historyEventsPerPass = 4_096;

/** syncRetryMs is how long the shell waits before a sync pass that made no progress is tried
 * again (a shard still behind, or no stream with room). etcd's syncWatchersLoop: 100 ms. */
export const syncRetryMs = 20;

/** progressNotifyIntervalMs is etcd's default progress-notify interval: 10 minutes. */
export const progressNotifyIntervalMs = 10 * 60 * 1000;
