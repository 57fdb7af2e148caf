/**
 * Every limit in MyEtcd, in one place (TigerStyle). Units come last in names.
 * Assertions at the bottom check how the limits relate; a violation fails at import time.
 */

// ---- Requests (etcd's limits and wording) ----
/** maxRequestBytes is etcd's --max-request-bytes default: 1.5 MiB. */
export const maxRequestBytes = 1.5 * 1024 * 1024;
/** maxTxnOps is etcd's --max-txn-ops default: 128 operations per txn branch. */
export const maxTxnOps = 128;
/** minLeaseTtlSeconds: etcd refuses nothing below 1 but raises TTLs to its minimum of
 * electionTicks*heartbeat*1.5/1000 seconds; we take etcd's effective default of 2 s. */
export const minLeaseTtlSeconds = 2;
/** maxLeaseTtlSeconds is etcd's MaxLeaseTTL: 9,000,000,000 s. */
export const maxLeaseTtlSeconds = 9_000_000_000;

// ---- Actor runtime ----
/** mailboxDepthMax bounds the messages waiting in one actor's mailbox. Past it, `send`
 * refuses and the gateway answers 429/503 instead of growing memory. */
export const mailboxDepthMax = 65_536;
/** batchMessagesMax bounds how many messages are packed into one cross-thread batch. */
export const batchMessagesMax = 4_096;
/** askTimeoutMs is the default deadline for a request/reply across threads. */
export const askTimeoutMs = 10_000;
/** restartBackoffMsMin / Max bound the supervisor's exponential backoff between restarts. */
export const restartBackoffMsMin = 50;
export const restartBackoffMsMax = 5_000;
/** restartsMax within restartWindowMs escalates to a clean process exit. */
export const restartsMax = 5;
export const restartWindowMs = 60_000;
/** shutdownDrainMsMax bounds how long a graceful stop waits for requests in flight. */
export const shutdownDrainMsMax = 5_000;
/** gatewayInflightMax bounds requests accepted by the gateway but not yet answered. */
export const gatewayInflightMax = 50_000;

// ---- Raft ----
/** heartbeatIntervalMs / electionTimeoutMs are etcd's defaults (--heartbeat-interval,
 * --election-timeout). One Raft tick is one heartbeat interval. */
export const heartbeatIntervalMs = 100;
export const electionTimeoutMs = 1_000;
/** maxInflightMsgs is etcd-raft's MaxInflightMsgs: appends in flight per follower. */
export const maxInflightMsgs = 256;
/** maxSizePerMsgBytes bounds the entries carried by one MsgApp (etcd: 1 MiB). */
export const maxSizePerMsgBytes = 1024 * 1024;
/** maxProposalBatch bounds the proposals the Raft node takes from its mailbox per Ready. */
export const maxProposalBatch = 8_192;
/** snapshotCount is etcd's --snapshot-count default: applied entries between snapshots. */
export const snapshotCount = 100_000;
/** snapshotBytesMax also triggers a snapshot: applied entry bytes since the last one. etcd
 * counts entries only, but its state lives in bbolt; ours is rebuilt from the log on restart,
 * so 100,000 entries of 128-put txns (or 1.5 MiB values) would make restarts unbounded. */
export const snapshotBytesMax = 32 * 1024 * 1024;
/** snapshotCatchUpEntries is etcd's: entries kept in the log behind a snapshot. */
export const snapshotCatchUpEntries = 5_000;

// ---- WAL ----
/** segmentSizeBytes is etcd's SegmentSizeBytes: 64 MiB per WAL segment. */
export const segmentSizeBytes = 64 * 1024 * 1024;
/** walRecordBytesMax bounds one WAL record; larger is corruption, not data. */
export const walRecordBytesMax = 32 * 1024 * 1024;
/** walBatchBytesMax bounds one group-commit write. */
export const walBatchBytesMax = 16 * 1024 * 1024;

// ---- MVCC ----
/** rangeResultKvsMax bounds the key-values one range returns when no limit is given. */
export const rangeResultKvsMax = 1_000_000;
/** quotaBackendBytes is etcd's --quota-backend-bytes default: 2 GiB. */
export const quotaBackendBytes = 2 * 1024 * 1024 * 1024;

// ---- Watch ----
/** watchersSyncedPerPass is etcd's maxWatchersPerSync: unsynced watchers caught up per pass. */
export const watchersSyncedPerPass = 512;
/** watchStreamBufferEvents bounds the events queued for one watch stream. */
export const watchStreamBufferEvents = 1_024;
/** watchStreamsMax bounds concurrent watch streams on one node. */
export const watchStreamsMax = 20_000;
/** streamWriteBytesMax bounds one socket write of a watch stream: with its chunk size line it
 * must fit in uWS's 16 KiB cork buffer. uWebSockets before v20.77.0 (ours is the 20.30 build)
 * drops a larger write made while the socket is backed up — AsyncSocket::uncork returns when
 * flushing the corked size line fails, without buffering the data (fixed upstream in 6b7f354)
 * — and the client then waits forever for the bytes its size line announced. */
export const streamWriteBytesMax = 8 * 1024;

function assert(cond: boolean, what: string): void {
  if (!cond) throw new Error(`constants: ${what}`);
}
assert(electionTimeoutMs >= 5 * heartbeatIntervalMs, 'election timeout must be ≥ 5 heartbeats');
assert(segmentSizeBytes > walRecordBytesMax, 'a segment must hold a largest record');
assert(walBatchBytesMax >= 8 * maxRequestBytes, 'a WAL batch must hold many largest requests');
assert(walRecordBytesMax > maxRequestBytes * 2, 'a record must hold a largest request');
assert(batchMessagesMax <= mailboxDepthMax, 'a batch must fit in a mailbox');
assert(snapshotCatchUpEntries < snapshotCount, 'catch-up entries must be fewer than a snapshot');
