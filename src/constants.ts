/**
 * Every limit in MyEtcd, in one place (TigerStyle): a bound on every queue, batch, loop and
 * input, and the timings the actors run on. Names put the unit and then the qualifier last
 * (`segmentSizeBytes`, `txnOpsMax`, `restartBackoffMsMin`); a name etcd gives a setting is kept
 * where it has no unit (`snapshotCount`). Assertions at the bottom check how the limits
 * relate; a violation fails at import time, before any actor starts.
 *
 * Not here yet (in files other areas own): src/config/defaults.ts (flag bounds), literals in
 * src/gateway/watch-routes.ts, src/runtime/endpoint.ts and src/runtime/system.ts.
 */
import { assert } from './assert.js';

// ---- Requests (etcd's limits and wording) ----
/** requestBytesMax is etcd's --max-request-bytes default: 1.5 MiB. */
export const requestBytesMax = 1.5 * 1024 * 1024;
/** txnOpsMax is etcd's --max-txn-ops default: 128 operations per txn branch. */
export const txnOpsMax = 128;
/** leaseTtlSecondsMin: etcd refuses nothing below 1 but raises TTLs to its minimum of
 * electionTicks*heartbeat*1.5/1000 seconds; we take etcd's effective default of 2 s. */
export const leaseTtlSecondsMin = 2;
/** leaseTtlSecondsMax is etcd's MaxLeaseTTL: 9,000,000,000 s. */
export const leaseTtlSecondsMax = 9_000_000_000;

// ---- Actor runtime ----
/** mailboxDepthMax bounds the messages waiting in one actor's mailbox. Past it, `send`
 * refuses and the gateway answers 429/503 instead of growing memory. */
export const mailboxDepthMax = 65_536;
/** batchMessagesMax bounds how many messages are packed into one cross-thread batch. */
export const batchMessagesMax = 4_096;
/** askTimeoutMs is the default deadline for a request/reply across threads. */
export const askTimeoutMs = 10_000;
/** slowApplyWarnMs is etcd's warnApplyDuration: an apply slower than this is a slow apply. */
export const slowApplyWarnMs = 100;
/** askSweepIntervalMs: how often one endpoint checks its asks' deadlines (one coarse timer
 * for all of them: at 50,000 asks/s a timer each would cost more than the asks). */
export const askSweepIntervalMs = 100;
/** actorStatsTimeoutMs bounds the supervisor's wait for one actor's runtime statistics. */
export const actorStatsTimeoutMs = 2_000;
/** actorStopTimeoutMs bounds a graceful stop of one actor thread before it is terminated. */
export const actorStopTimeoutMs = 10_000;
/** actorStartTimeoutMs bounds an actor generation's start (recovery of a large WAL included). */
export const actorStartTimeoutMs = 120_000;
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
/** inflightMsgsMax is etcd-raft's MaxInflightMsgs: appends in flight per follower. */
export const inflightMsgsMax = 256;
/** sizePerMsgBytesMax bounds the entries carried by one MsgApp (etcd: 1 MiB). */
export const sizePerMsgBytesMax = 1024 * 1024;
/** snapshotCount is etcd's --snapshot-count default: applied entries between snapshots. */
export const snapshotCount = 100_000;
/** snapshotBytesMax also triggers a snapshot: applied entry bytes since the last one. etcd
 * counts entries only, but its state lives in bbolt; ours is rebuilt from the log on restart,
 * so 100,000 entries of 128-put txns (or 1.5 MiB values) would make restarts unbounded. */
export const snapshotBytesMax = 32 * 1024 * 1024;
/** snapshotCatchUpEntries is etcd's: entries kept in the log behind a snapshot. */
export const snapshotCatchUpEntries = 5_000;
/** raftEntryOverheadBytes approximates a Raft entry's encoding beyond its data (term, index,
 * type): what the core counts against sizePerMsgBytesMax for an empty entry. */
export const raftEntryOverheadBytes = 24;
/** readIndexPendingMax bounds read requests a leader holds before it has committed in its
 * term (etcd keeps them unbounded); beyond it the oldest is dropped and the client retries. */
export const readIndexPendingMax = 4_096;
/** electionTicksMin is the smallest sensible election timeout in ticks. */
export const electionTicksMin = 2;
/** requestTimeoutBaseMs: a proposal or read not answered within this plus two election
 * timeouts fails with "etcdserver: request timed out" (etcd's ReqTimeout: 5 s + 2 × election). */
export const requestTimeoutBaseMs = 5_000;

// ---- Cluster (peer transport, membership) ----
/** reconfigHealthIntervalMs is etcd's HealthInterval: a member must have been connected this
 * long to count as healthy for --strict-reconfig-check. */
export const reconfigHealthIntervalMs = 5_000;
/** peerQueueMessagesMax bounds the Raft messages queued for one member (etcd's stream buffer:
 * 4,096). Past it messages are dropped and counted: Raft tolerates loss, memory must not grow
 * with a dead member. */
export const peerQueueMessagesMax = 4_096;
/** peerFrameBytesMax bounds one frame on a peer connection; larger is a protocol error. */
export const peerFrameBytesMax = 64 * 1024 * 1024;
/** peerBatchBytesMax: a turn's messages to one member are split into frames of about this. */
export const peerBatchBytesMax = 4 * 1024 * 1024;
/** peerSnapshotChunkBytes: a snapshot travels in chunks of this size, each written only when
 * the socket drained the previous one (backpressure). */
export const peerSnapshotChunkBytes = 1024 * 1024;
/** peerSnapshotBytesMax bounds a snapshot received from a peer (a larger announcement is a
 * protocol error, not a reason to allocate). */
export const peerSnapshotBytesMax = 2 * 1024 * 1024 * 1024 - 1;
/** peerDialBackoffMsMax bounds the reconnect backoff (it starts at one heartbeat). */
export const peerDialBackoffMsMax = 2_000;
/** peerHandshakeTimeoutMs bounds a connection's handshake. */
export const peerHandshakeTimeoutMs = 5_000;
/** peerProbeIntervalMs paces the round-trip probes (etcd_network_peer_round_trip_time). */
export const peerProbeIntervalMs = 1_000;
/** peerIdleTimeoutMs: a stream connection that received nothing for this long (probes flow
 * every peerProbeIntervalMs both ways) is closed and dialed again (etcd's ConnReadTimeout). */
export const peerIdleTimeoutMs = 5_000;

// ---- WAL ----
/** segmentSizeBytes is etcd's SegmentSizeBytes: 64 MiB per WAL segment. */
export const segmentSizeBytes = 64 * 1024 * 1024;
/** walRecordBytesMax bounds one WAL record; larger is corruption, not data. */
export const walRecordBytesMax = 32 * 1024 * 1024;
/** walBatchBytesMax bounds one group-commit write. */
export const walBatchBytesMax = 16 * 1024 * 1024;
/** walFsyncSamplesMax bounds the fsync durations the WAL actor keeps between two WalStats
 * asks (the metrics histogram's input); past it, samples are dropped until the next ask. */
export const walFsyncSamplesMax = 10_000;
/** walSnapshotSamplesMax bounds the snapshot save and fsync durations the WAL actor keeps
 * between two WalStats asks, as walFsyncSamplesMax does for the log's fsyncs. */
export const walSnapshotSamplesMax = 1_000;
/** snapshotFilesKept is etcd's --max-snapshots default: snapshot files kept after a new one
 * is saved (more than one, so a damaged newest file can fall back to the previous). */
export const snapshotFilesKept = 5;
/** snapshotPoolIdleMs: the snapshot writer's pool thread exits after this long idle (snapshots
 * are minutes apart; a thread kept alive would hold its heap for nothing). */
export const snapshotPoolIdleMs = 5_000;

// ---- MVCC ----
/** rangeResultKvsMax bounds the key-values one range returns when no limit is given. */
export const rangeResultKvsMax = 1_000_000;
/** quotaBackendBytes is etcd's --quota-backend-bytes default: 2 GiB. */
export const quotaBackendBytes = 2 * 1024 * 1024 * 1024;

// ---- Watch ----
/** watchersSyncedPerPassMax is etcd's maxWatchersPerSync: unsynced watchers caught up per pass. */
export const watchersSyncedPerPassMax = 512;
/** watchStreamEventsMax bounds the events queued for one watch stream. */
export const watchStreamEventsMax = 1_024;
/** watchStreamsMax bounds concurrent watch streams on one node. */
export const watchStreamsMax = 20_000;
/** historyEventsPerPassMax bounds the events one sync pass reads from history (per shard). A
 * revision is never split, so one pass can exceed it by the size of one transaction. */
export const historyEventsPerPassMax = 4_096;
/** watchSyncRetryMs is how long the watch actor waits before a sync pass that made no progress is
 * tried again (a shard still behind, or no stream with room). etcd's syncWatchersLoop: 100 ms. */
export const watchSyncRetryMs = 20;
/** progressNotifyIntervalMs is etcd's default progress-notify interval: 10 minutes. */
export const progressNotifyIntervalMs = 10 * 60 * 1000;
/** streamWriteBytesMax bounds one socket write of a watch stream: with its chunk size line it
 * must fit in uWS's 16 KiB cork buffer. uWebSockets before v20.77.0 (ours is the 20.30 build)
 * drops a larger write made while the socket is backed up — AsyncSocket::uncork returns when
 * flushing the corked size line fails, without buffering the data (fixed upstream in 6b7f354)
 * — and the client then waits forever for the bytes its size line announced. */
export const streamWriteBytesMax = 8 * 1024;

// ---- Lease ----
/** leaseRevokesPerCheckMax bounds revocations proposed per check: etcd's leaseRevokeRate is
 * 1,000/s and it checks every 500 ms. */
export const leaseRevokesPerCheckMax = 500;
/** leaseRevokeRetryMs: an expired lease whose revocation has not been applied is proposed
 * again after this long (etcd's expiredLeaseRetryInterval: 3 s). */
export const leaseRevokeRetryMs = 3_000;
/** leaseCheckIntervalMs: how often the lease actor looks for expired leases (etcd: 500 ms). */
export const leaseCheckIntervalMs = 500;
/** leaseCheckpointIntervalMs: how often the leader checkpoints remaining TTLs through the log
 * (etcd 3.6's default lease checkpoint interval: 5 minutes). */
export const leaseCheckpointIntervalMs = 5 * 60_000;
/** leaseCheckpointBatchMax bounds the leases checkpointed by one proposal (etcd's
 * maxLeaseCheckpointBatchSize: 1,000). */
export const leaseCheckpointBatchMax = 1_000;

// ---- HTTP API ----
/** httpBodyBytesMax bounds a /v3 body the server reads before decoding: enough for any
 * request grpc would have let through (2 MiB of bytes, base64 ×4/3, JSON overhead), so the
 * decoder can still answer etcd's exact "larger than max (N vs. 2097152)". Past this the
 * server may answer that error with N = body length without decoding. */
export const httpBodyBytesMax = 4 * 1024 * 1024;
/** grpcOverheadBytes is etcd's grpcOverheadBytes: the gRPC receive limit's slack. */
export const grpcOverheadBytes = 512 * 1024;
/** v1ListLimitDefault is the page size of GET /v1/keys when no limit is given. */
export const v1ListLimitDefault = 100;
/** v1ListLimitMax bounds one page of GET /v1/keys. */
export const v1ListLimitMax = 10_000;

// ---- Gateway streams (src/gateway/stream.ts, docs/streams.md) ----
/** uwsIdleTimeoutMsMin is the earliest moment uWS (uWS.js 20.30) closes a connection whose
 * request body is still streaming: its 10 s timer ticks every 4 s, so it fires 8–12 s after
 * it was armed. Compiled into the binary; written here to check the limit below against. */
export const uwsIdleTimeoutMsMin = 8_000;
/** uwsReceiveBytesPerTimeout: uWS re-arms that timer only after 160 KiB more of body (16 KiB/s
 * over its 10 s: its slowloris guard). */
export const uwsReceiveBytesPerTimeout = 16 * 1024 * 10;
/** streamBodyOpenMsMax: a streamed request body (/v3/watch, /v3/lease/keepalive) still open
 * this long after the request (or after 160 KiB more) gets an explicit last message and the
 * end of the response, before uWS would cut the connection silently. */
export const streamBodyOpenMsMax = 7_000;
/** watchGenerationSweepMs: how often the gateway ends watch streams of an actor generation
 * the supervisor has replaced. */
export const watchGenerationSweepMs = 500;

// ---- How the limits relate ----
assert(electionTimeoutMs >= 5 * heartbeatIntervalMs, 'election timeout must be ≥ 5 heartbeats');
assert(segmentSizeBytes > walRecordBytesMax, 'a segment must hold a largest record');
assert(peerFrameBytesMax > peerBatchBytesMax + requestBytesMax * 2,
  'a peer frame must hold a batch and a largest entry');
assert(peerFrameBytesMax > sizePerMsgBytesMax * 2, 'a peer frame must hold a largest MsgApp');
assert(walBatchBytesMax >= 8 * requestBytesMax, 'a WAL batch must hold many largest requests');
assert(walRecordBytesMax > requestBytesMax * 2, 'a record must hold a largest request');
assert(peerIdleTimeoutMs >= 3 * peerProbeIntervalMs, 'a live stream hears probes before idling');
assert(batchMessagesMax <= mailboxDepthMax, 'a batch must fit in a mailbox');
assert(askSweepIntervalMs < askTimeoutMs, 'an ask deadline is checked before it is long past');
assert(snapshotFilesKept >= 2, 'a damaged newest snapshot needs an older one to fall back to');
assert(snapshotCatchUpEntries < snapshotCount, 'catch-up entries must be fewer than a snapshot');
assert(
  electionTimeoutMs / heartbeatIntervalMs >= electionTicksMin, 'default election ≥ min ticks',
);
assert(raftEntryOverheadBytes > 0, 'a Raft entry costs something even when empty');
assert(readIndexPendingMax >= 1, 'a leader must hold at least one pending read');
assert(historyEventsPerPassMax >= 1, 'a sync pass must make progress');
assert(watchersSyncedPerPassMax >= 1, 'a sync pass must catch up at least one watcher');
assert(leaseTtlSecondsMin <= leaseTtlSecondsMax, 'lease TTL bounds must be ordered');
assert(leaseRevokeRetryMs > leaseCheckIntervalMs, 'a revocation retry waits past one check');
assert(
  httpBodyBytesMax >= Math.ceil(((requestBytesMax + grpcOverheadBytes) * 4) / 3),
  'an HTTP body must hold the base64 of a largest message grpc lets through',
);
assert(v1ListLimitDefault <= v1ListLimitMax, 'the default /v1 page must be allowed');
assert(v1ListLimitMax <= rangeResultKvsMax, 'a /v1 page must fit in one range');
assert(streamBodyOpenMsMax <= uwsIdleTimeoutMsMin - 1_000,
  'an open request body must be answered at least 1 s before uWS may cut it');

/** snapshotAskTimeoutMs is the deadline of a shard's snapshot dump (ShardSnapshot), of its
 * load (ShardRestore) and of writing the snapshot file (WalSnapshotSave): with a million keys
 * under CPU contention a dump took longer than askTimeoutMs, and a timed-out step crashed
 * the Raft actor (every actor restarted, clients got 503s). */
export const snapshotAskTimeoutMs = 120_000;
assert(snapshotAskTimeoutMs >= askTimeoutMs, 'a snapshot step may outlast a small ask');

/** bootStatusAsksMax bounds how many times start-up asks the Raft node for its status (each
 * with askTimeoutMs) while it restores a large store: 30 × 10 s. */
export const bootStatusAsksMax = 30;
assert(bootStatusAsksMax >= 1, 'start-up asks the Raft node at least once');
