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
/** actorSpinUsDefault: how long an actor thread awaiting a reply polls its ports before it
 * sleeps (--experimental-actor-spin-us; src/runtime/endpoint.ts setSpin). A WAL append's
 * hop, write and fsync take 0.4–0.7 ms here, and 400 µs missed half of them; performance
 * notes in docs/ give the measurements. */
export const actorSpinUsDefault = 1_000;
/** actorSpinUsMax bounds --experimental-actor-spin-us. */
export const actorSpinUsMax = 10_000;
/** spinSlotsMax: actor threads of one process that may spin at once (a spinner takes a core
 * from the others). */
export const spinSlotsMax = 1;
/** spinIdleCoresMin: an actor thread spins only if the machine's idle cores (plus its own
 * spinning) came to this many over the last spinLoadWindowMs (src/runtime/endpoint.ts
 * machineIdle). */
export const spinIdleCoresMin = 0.75;
/** spinLoadWindowMs: how often a spinning thread reads the machine's idle time. */
export const spinLoadWindowMs = 50;
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
/** actorSemiSpaceMiB bounds each actor thread's young generation (V8's semi-space; its
 * default grows to 16 MiB, a young generation of 48 MiB). An actor keeps few short-lived
 * objects alive across a scavenge, so a smaller one costs it little, and its pages stay
 * resident between scavenges: with a million keys written, the Raft and shard threads held
 * 47 MiB less (the performance notes, session 14). The gateway threads keep V8's default.
 * Session 36 measured 16 MiB again: ≈ 10 % less CPU a write on the Raft thread at 1,000
 * outstanding writes, but 38 MiB more resident 6 s after a million keys were written (V8 gives
 * a young generation back only once 5 s of low allocation have passed). Not kept. */
export const actorSemiSpaceMiB = 4;
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
/** gatewayInflightMax bounds requests accepted by the gateway but not yet answered; past it
 * the gateway answers 429 "etcdserver: too many requests" at once. 5,000 is etcd's
 * maxGapBetweenApplyAndCommitIndex (past which etcd answers the same): the queue it bounds is
 * also what an accepted request waits behind, so an accepted request's latency stays under
 * 5,000 / throughput (about 1–2 s here) however many clients push (docs/reliability.md). */
export const gatewayInflightMax = 5_000;

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
/** stopSnapshotBytesMin: a clean stop snapshots when the WAL tail since the last snapshot
 * holds this much entry data (or a hundredth of snapshotCount's entries), so the next start
 * restores the state instead of applying the tail again. */
export const stopSnapshotBytesMin = 1024 * 1024;
/** idleSnapshotAfterMs: a member that has applied nothing for this long snapshots the tail
 * since its last snapshot when it is worth it (idleSnapshotBytesMin, and a sixteenth of the
 * store): a crash after a burst of writes then applies no long tail at the next start. */
export const idleSnapshotAfterMs = 2_000;
/**
 * keysRepackIdleMs: a member that has applied nothing for this long packs the keys left
 * alone back into bytes (OrderedMap.repackCold: the applier's on the Raft thread, each
 * shard's on its own), about 65 bytes of V8 heap per key less: keysRepackChunksPerSlice
 * chunks of a key map at a time (a few ms with ~400 keys a chunk), the event loop running
 * between slices, and a tick's share of a pass (keysRepackTicksPerPass ticks a pass, so a
 * chunk is packed only when nothing touched it for that long), at most
 * keysRepackChunksPerTick.
 */
export const keysRepackIdleMs = 1_000;
export const keysRepackChunksPerSlice = 32;
export const keysRepackChunksPerTick = 512;
export const keysRepackTicksPerPass = 10;
/**
 * idleCompactGapMs: a key repack's pass ends with two full collections of its thread, this far
 * apart (collectIdleGarbageSoon). The first frees the strings the pass replaced but left most
 * of the pages they lay on committed: a shard that had repacked a million keys held 81 MiB of
 * heap with 20 MiB used 6 s after the writes; with the second, 30 MiB (the performance notes
 * in docs/, session 30).
 */
export const idleCompactGapMs = 300;
/** idleSnapshotBytesMin: the least entry data since the last snapshot for an idle one. */
export const idleSnapshotBytesMin = 4 * 1024 * 1024;
/** stopSnapshotWaitMs bounds how long a clean stop waits for that snapshot; the log keeps
 * every entry, so a stop that gives up loses nothing. Below actorStopTimeoutMs. */
export const stopSnapshotWaitMs = 8_000;
/** snapshotCatchUpEntries is etcd's: entries kept in the log behind a snapshot. */
export const snapshotCatchUpEntries = 5_000;
/** raftEntryOverheadBytes approximates a Raft entry's encoding beyond its data (term, index,
 * type): what the core counts against sizePerMsgBytesMax for an empty entry. */
export const raftEntryOverheadBytes = 24;
/**
 * entryViewBufferMax: the largest buffer an entry kept in the Raft log (src/raft/storage.ts)
 * may be a view of, and the size of the slabs of entries (src/raft/entry-slab.ts): this
 * member frames its proposals there (encodeProposal) and the log keeps them as they are,
 * while an entry that is a view into a larger buffer is copied into one: one decoded from a
 * peer's frame, or read back from the WAL at boot (a view into the WalLoad reply with the
 * snapshot body, over 100 MiB with a million keys).
 */
export const entryViewBufferMax = 64 * 1024;
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
/** peerRemotesMax bounds the senders outside the member list that the transport accepts and
 * answers (etcd's remotes: a member this one has not learned yet, e.g. one added while it was
 * down); past it such a sender is refused as unknown. */
export const peerRemotesMax = 64;
/** peerHandshakeUrlsMax, peerHandshakeUrlBytesMax bound the peer URLs a handshake carries. */
export const peerHandshakeUrlsMax = 16;
export const peerHandshakeUrlBytesMax = 512;

// ---- WAL ----
/** segmentSizeBytes is etcd's SegmentSizeBytes: 64 MiB per WAL segment. */
export const segmentSizeBytes = 64 * 1024 * 1024;
/** walSnapshotCutBytesMin: a snapshot of the whole log starts a new WAL segment (and so
 * releases the old ones) when the tail segment holds at least this much
 * (WalStore.cutAtSnapshot); below it the few records left are not worth a segment's files. */
export const walSnapshotCutBytesMin = 1024 * 1024;
/** walRecordBytesMax bounds one WAL record; larger is corruption, not data. */
export const walRecordBytesMax = 32 * 1024 * 1024;
/**
 * walPreallocateStepBytes is how far ahead of its records the WAL's tail file is extended
 * (sparse) at a time: etcd preallocates a whole 64 MiB segment; we read the tail's zeros at
 * every start, so we keep them to one step.
 */
export const walPreallocateStepBytes = 1024 * 1024;
/**
 * walZeroAheadBytes is how many bytes of zeros the WAL writer keeps written and synced ahead
 * of its tail (src/wal/zero-ahead.ts), in fills of walZeroFillStepBytes starting at least
 * walZeroFillGapBytes past the tail. 0 turns the fills off.
 */
export const walZeroAheadBytes = 1024 * 1024;
/** walZeroAheadBytesMax bounds --experimental-wal-zero-ahead-bytes. */
export const walZeroAheadBytesMax = 64 * 1024 * 1024;
export const walZeroFillStepBytes = 256 * 1024;
export const walZeroFillGapBytes = 128 * 1024;
/** walAppendSlackBytes bounds what a batch's records add to its entries' framed bytes (a
 * hard state, padding): the WAL writer's bound for an append before it encodes it. */
export const walAppendSlackBytes = 4096;
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
/** walFilesKept is etcd's --max-wals default (src/config: the WAL writer keeps fewer). */
export const walFilesKept = 5;
/** snapshotPoolIdleMs: the snapshot writer's pool thread exits after this long idle (snapshots
 * are minutes apart; a thread kept alive would hold its heap for nothing). */
export const snapshotPoolIdleMs = 5_000;

// ---- MVCC ----
/** rangeResultKvsMax bounds the key-values one range returns when no limit is given. */
export const rangeResultKvsMax = 1_000_000;
/** quotaBackendBytes is etcd's --quota-backend-bytes default: 2 GiB. */
export const quotaBackendBytes = 2 * 1024 * 1024 * 1024;
/** quotaCheckIntervalMs: how often the Raft node compares the backend size (the shards' MVCC
 * bytes) with --quota-backend-bytes; writes may pass the quota by what arrives meanwhile. */
export const quotaCheckIntervalMs = 500;
/** diskProbeIntervalMs: how often a member whose disk refused a write as read-only tries
 * writing again (a full disk waits for its NOSPACE alarm to be disarmed instead); also how
 * often a member with a full disk asks another to record its NOSPACE, then whether it was
 * disarmed. */
export const diskProbeIntervalMs = 1_000;

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
/** watcherDebugMax bounds the watchers GET /debug/watch lists. */
export const watcherDebugMax = 200;

/** watchSyncRetryMs is how long the watch actor waits before a sync pass that made no progress is
 * tried again (a shard still behind, or no stream with room). etcd's syncWatchersLoop: 100 ms. */
export const watchSyncRetryMs = 20;
/** progressNotifyIntervalMs is etcd's default progress-notify interval: 10 minutes. */
export const progressNotifyIntervalMs = 10 * 60 * 1000;
/** watchProgressNotifyMsMin: a shorter --experimental-watch-progress-notify-interval is
 * raised to this (etcd's minWatchProgressInterval). */
export const watchProgressNotifyMsMin = 100;
/** streamWriteBytesMax bounds one socket write of a watch stream: with its chunk size line it
 * must fit in uWS's 16 KiB cork buffer. uWebSockets before v20.77.0 (ours is the 20.30 build)
 * drops a larger write made while the socket is backed up — AsyncSocket::uncork returns when
 * flushing the corked size line fails, without buffering the data (fixed upstream in 6b7f354)
 * — and the client then waits forever for the bytes its size line announced. */
export const streamWriteBytesMax = 8 * 1024;

// ---- Lease ----
/** leaseRevokeBatchMax bounds the expired leases revoked by one Raft entry (a leaseExpire
 * proposal: ~9 bytes per id). etcd proposes one LeaseRevoke per lease, at most leaseRevokeRate
 * (1,000/s); batching lets 10,000 leases that expire together go within about a second. */
export const leaseRevokeBatchMax = 1_000;
/** leaseRevokesPerCheckMax bounds revocations proposed per check (leaseRevokeBatchMax per
 * entry): 10 entries per check, 20,000 leases/s at one check per 500 ms. */
export const leaseRevokesPerCheckMax = 10 * leaseRevokeBatchMax;
/** leaseExpiryLateMsMax is the stated tolerance of lease expiry: no key outlives its lease's
 * TTL by more, with up to 10,000 leases expiring together (one check interval, then the
 * leaseExpire batches through Raft). Not enforced here: the lease-expiry test and
 * `npm run bench:lease-expiry` check it (docs/reliability.md, ## Lease expiry). */
export const leaseExpiryLateMsMax = 2_000;
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

// ---- Overload and slow clients (src/gateway/watch-routes.ts, docs/reliability.md) ----
/** watchBufferedBytesMax bounds the bytes all watch streams together have written that their
 * sockets have not taken (uWS buffers them in memory). Past it the stream holding the most is
 * dropped: its watches are cancelled with a reason and its connection closes. Dropped streams
 * still holding bytes hold at most as much again (the oldest are closed past it): the gateway's
 * watch buffers stay under twice this. */
export const watchBufferedBytesMax = 64 * 1024 * 1024;
/** watchStreamStallMsMax: a watch stream whose socket took nothing for this long while we had
 * data for it is dropped the same way — before uWS would cut it without a word (its timer
 * fires 8–12 s after the socket backed up). */
export const watchStreamStallMsMax = 5_000;

/** bodyBytesReceivingMax bounds the request bodies being received, all connections together
 * (src/gateway/http-guard.ts): past it a request gets 429 and its connection closes. */
export const bodyBytesReceivingMax = 256 * 1024 * 1024;

// ---- Auth (src/auth, src/gateway/auth-gate.ts) ----
/** authTokensMax bounds the simple tokens a gateway keeps; past it the oldest goes. */
export const authTokensMax = 100_000;

// ---- gRPC gateway (src/gateway/grpc-server.ts) ----
/** grpcListenPortDefault: --listen-client-grpc-urls' port when --listen-client-urls is left at
 * etcd's default (2379, the JSON gateway's): 23790 is etcd's own gRPC proxy's default port. */
export const grpcListenPortDefault = 23790;
/** grpcConcurrentStreamsMax bounds the HTTP/2 streams (calls) open at once on one client
 * connection (etcd: --max-concurrent-streams, unbounded by default). */
export const grpcConcurrentStreamsMax = 1_000;
/** grpcOpeningBytesMax bounds what the gateway reads of a new gRPC connection before it
 * decides whether grpc-js may take the bare socket (src/grpc/opening.ts): a client's preface,
 * SETTINGS and first request's headers are a few hundred bytes. */
export const grpcOpeningBytesMax = 64 * 1024;
/** grpcHttp1PassedMax bounds the sockets of HTTP/1.x connections to the gRPC port that are
 * being passed to the HTTP listener (two a connection: the client's and ours to the
 * listener); past it a new one is closed at once. */
export const grpcHttp1PassedMax = 2 * 1024;
/** grpcStreamWritesPendingMax bounds the answers a keep-alive stream has handed to gRPC but
 * not yet flushed: past it the server stops reading that stream's requests until the client
 * reads (HTTP/2 flow control then stops the client), so a client that never reads costs
 * bounded memory. */
export const grpcStreamWritesPendingMax = 256;
/** allKvsPageKeys: Maintenance.Snapshot and HashKV read every key in ranges of at most this
 * many keys each. */
export const allKvsPageKeys = 10_000;

/** allKvsAttemptsMax: such a read starts again at the newest revision when a compaction
 * passed the one it read at, this many runs in all. */
export const allKvsAttemptsMax = 3;

/** snapshotStepMs: building Maintenance.Snapshot's file gives the gateway's event loop a
 * turn at least this often (between bbolt leaves). */
export const snapshotStepMs = 10;

/** snapshotChunkBytes: Maintenance.Snapshot streams the backend file in chunks of this size
 * (etcd: 32 KiB). */
export const snapshotChunkBytes = 32 * 1024;

// ---- How the limits relate ----
assert(electionTimeoutMs >= 5 * heartbeatIntervalMs, 'election timeout must be ≥ 5 heartbeats');
assert(segmentSizeBytes > walRecordBytesMax, 'a segment must hold a largest record');
assert(walZeroFillStepBytes % 4096 === 0 && walZeroAheadBytes <= segmentSizeBytes / 8,
  'zero fills are whole pages and a small part of a segment');
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
assert(keysRepackChunksPerSlice <= keysRepackChunksPerTick, 'a tick repacks at least a slice');
assert(raftEntryOverheadBytes > 0, 'a Raft entry costs something even when empty');
assert(entryViewBufferMax >= 8 * 1024, 'a slab of entries holds more than a few');
assert(readIndexPendingMax >= 1, 'a leader must hold at least one pending read');
assert(historyEventsPerPassMax >= 1, 'a sync pass must make progress');
assert(watchersSyncedPerPassMax >= 1, 'a sync pass must catch up at least one watcher');
assert(leaseTtlSecondsMin <= leaseTtlSecondsMax, 'lease TTL bounds must be ordered');
assert(leaseRevokeRetryMs > leaseCheckIntervalMs, 'a revocation retry waits past one check');
assert(leaseRevokeBatchMax * 9 + 64 < requestBytesMax, 'a leaseExpire entry is a small request');
assert(leaseRevokesPerCheckMax % leaseRevokeBatchMax === 0, 'a check proposes whole batches');
assert(
  httpBodyBytesMax >= Math.ceil(((requestBytesMax + grpcOverheadBytes) * 4) / 3),
  'an HTTP body must hold the base64 of a largest message grpc lets through',
);
assert(v1ListLimitDefault <= v1ListLimitMax, 'the default /v1 page must be allowed');
assert(v1ListLimitMax <= rangeResultKvsMax, 'a /v1 page must fit in one range');
assert(streamBodyOpenMsMax <= uwsIdleTimeoutMsMin - 1_000,
  'an open request body must be answered at least 1 s before uWS may cut it');
assert(grpcStreamWritesPendingMax >= 1, 'a keep-alive stream must be able to answer');

// ---- Tracing and the dashboard (issue 16, docs/observability.md) ----
/** traceRingTracesMax: each thread keeps the spans of its last this many traces. */
export const traceRingTracesMax = 200;
/** traceSpansPerTraceMax bounds the spans one thread keeps of one trace. */
export const traceSpansPerTraceMax = 64;
/** traceOpenAsksMax bounds the traced asks a thread holds open until their reply (an ask that
 * is never answered is forgotten, oldest first, past it). */
export const traceOpenAsksMax = 1_024;
/** traceBatchParentsMax bounds the traced requests one message names as parents. */
export const traceBatchParentsMax = 64;
/** traceExportIntervalMs: how often spans are pulled from the threads for --otlp-endpoint. */
export const traceExportIntervalMs = 1_000;
/** debugTracesLimitMax bounds the traces one GET /debug/traces answers. */
export const debugTracesLimitMax = 200;
/** dashboardLatencySamplesMax bounds the latencies kept per route between two dashboard polls. */
export const dashboardLatencySamplesMax = 2_048;
/** dashboardPeerTimeoutMs bounds the dashboard's ask to another member for its status. */
export const dashboardPeerTimeoutMs = 1_000;
assert(traceSpansPerTraceMax >= 16, 'a traced PUT records about ten spans per trace');
assert(traceBatchParentsMax <= traceOpenAsksMax, 'a batch of traced asks fits the open asks');
assert(watchStreamStallMsMax + watchGenerationSweepMs < uwsIdleTimeoutMsMin,
  'a stalled watch stream is dropped with a message before uWS cuts it');
assert(bodyBytesReceivingMax >= 16 * httpBodyBytesMax,
  'many largest bodies may be received at once');

/** snapshotAskTimeoutMs is the deadline of a shard's snapshot dump (ShardSnapshot), of its
 * load (ShardRestore) and of writing the snapshot file (WalSnapshotSave): with a million keys
 * under CPU contention a dump took longer than askTimeoutMs, and a timed-out step crashed
 * the Raft actor (every actor restarted, clients got 503s). */
export const snapshotAskTimeoutMs = 120_000;
/** walAppendAskTimeoutMs is the Raft node's deadline for a WAL append (write + fdatasync).
 * Past it the member crashes and restarts from its disk, so it is far above any fsync a
 * working disk takes: with the default ask deadline (10 s) a machine-wide stall at load 50
 * restarted every actor of a member whose disk was fine. etcd waits for its fsync, warning
 * once it takes over walSlowFsyncMs. */
export const walAppendAskTimeoutMs = 60_000;
/**
 * applyAheadEntriesMin: the fewest new entries in a Ready for a lone leader to apply them
 * while the WAL writer persists them (RaftNode.applyAhead). Applying ahead costs one more
 * message to the WAL writer and has it, not the Raft thread, wake the gateway; it earns the
 * apply of a batch done beside its fsync and answers that leave without waiting for the
 * Raft thread's turn. With 50 connections (batches of ≈ 25) it gave 3 % more PUTs and 7 %
 * more txns here. Session 16 measured no gain with one connection (one entry a Ready) and
 * kept a lone entry on the usual way; session 22, six alternated pairs, found a lone entry
 * applied ahead better there in all six (p50 0.89 → 0.67 ms on average, a shorter tail in
 * five): a write then crosses three threads, not four, and each hop on 2 cores may wait for
 * a core (session 22 of the performance notes).
 */
export const applyAheadEntriesMin = 1;
/** readPointAttemptsMax: how many times a linearizable read takes a read point when the one
 * it took was taken back (an append of entries applied ahead failed: ShardRewind). One
 * retry suffices (the member then refuses writes, so nothing is applied ahead); the bound
 * is for the worst case of a disk that fails every append. */
export const readPointAttemptsMax = 3;
assert(walAppendAskTimeoutMs >= askTimeoutMs, 'an append may outlast a small ask');
/** walSlowFsyncMs: a WAL write + fdatasync slower than this is logged as "slow fdatasync"
 * (etcd's warnSyncDuration, 1 s). */
export const walSlowFsyncMs = 1_000;
assert(snapshotAskTimeoutMs >= askTimeoutMs, 'a snapshot step may outlast a small ask');
/** snapshotRestoreAttemptsMax: a follower whose restore from a leader's snapshot it has saved
 * fails (a shard's load timed out) tries it again from the saved snapshot this many times in
 * all; past it the actors crash and restart from the disk, which holds the snapshot. */
export const snapshotRestoreAttemptsMax = 3;

/** bootStatusAsksMax bounds how many times start-up asks the Raft node for its status (each
 * with askTimeoutMs) while it restores a large store: 30 × 10 s. */
export const bootStatusAsksMax = 30;
assert(bootStatusAsksMax >= 1, 'start-up asks the Raft node at least once');

/** gatewayThreadsMax bounds --experimental-gateway-threads (HTTP gateway worker threads). */
export const gatewayThreadsMax = 16;
/** gatewayThreadsDefault: 0 means "sized to the cores" (src/gateway/pool.ts gatewayThreadsFor:
 * the main thread alone below gatewayThreadsCoresMin cores); 1 is the main thread alone. */
export const gatewayThreadsDefault = 0;
/** gatewayThreadsCoresMin: the cores from which "sized to the cores" starts gateway threads.
 * On 2 cores the Raft, WAL and shard threads need about one core under load and two gateway
 * threads measured no better than the main thread alone ("More than one gateway" in docs). */
export const gatewayThreadsCoresMin = 4;
/** gatewayThreadsAutoMax bounds the gateway threads "sized to the cores" starts: half the
 * cores, at most this many. */
export const gatewayThreadsAutoMax = 4;
/** watchStreamIdStride: a gateway numbers its watch streams owner, owner + stride, …, so the
 * watch hub knows which gateway thread a stream's events go to (owner 0 is the main thread). */
export const watchStreamIdStride = 32;
assert(watchStreamIdStride > gatewayThreadsMax, 'every gateway thread owns a stream id class');
/** gatewayObservationsMax bounds the request observations a gateway thread keeps for the main
 * thread's /metrics and dashboard between two flushes (past it, the oldest are dropped). */
export const gatewayObservationsMax = 20_000;
/** gatewayFlushIntervalMs: how often a gateway thread hands its observations to the main one. */
export const gatewayFlushIntervalMs = 250;
/** snapshotDataHoldMs: a snapshot's data read back from its file for a follower far behind
 * stays in memory this long (the sends to that follower retry meanwhile), then is dropped. */
export const snapshotDataHoldMs = 60_000;
/** packScratchBytesMax: after packing more than this, msgpackr's scratch buffer (which it
 * keeps, grown to its largest output) is replaced by a small one (src/runtime/codec.ts). */
export const packScratchBytesMax = 8 * 1024 * 1024;
/** snapshotCatchUpBytesMax also bounds the entries kept behind a snapshot (etcd counts only
 * snapshotCatchUpEntries): 5,000 entries of 128-put txns are 85 MiB held for a follower that
 * may never lag, and one that is further behind gets the snapshot instead. */
export const snapshotCatchUpBytesMax = 8 * 1024 * 1024;
assert(snapshotCatchUpBytesMax >= 4 * sizePerMsgBytesMax, 'catch-up holds a few MsgApps');
assert(snapshotCatchUpBytesMax < snapshotBytesMax, 'catch-up holds less than a snapshot span');

/** idleGcCheckMs: how often a thread's idle collector looks at its heap (src/runtime/gc.ts). */
export const idleGcCheckMs = 1_000;
/** idleGcGrowthBytes: heap growth since the last full collection that makes an idle thread
 * collect: after a burst (a million keys written, a WAL replayed) the gateway's heap held
 * 216 MiB of dead request objects and the watch hub's 77 MiB, kept resident because V8 runs no
 * collection on a thread that stops allocating. At 64 MiB, the gateway still kept 53 MiB used
 * (≈ 43 of them dead) after a million keys were written; at 24 MiB it collects them (the
 * performance notes in docs/, session 13). */
export const idleGcGrowthBytes = 24 * 1024 * 1024;
/** idleGcLiveBytesMax: a thread whose heap was larger than this after its last full collection
 * does not collect when idle; marking a large live heap pauses the thread for a long time (1.3
 * to 1.7 s for the Raft thread's 215 MiB on a loaded machine), and its growth is mostly live. */
export const idleGcLiveBytesMax = 64 * 1024 * 1024;
/** idleShrinkNewSpaceBytes: an idle thread whose young generation is larger than this runs
 * collections until V8 shrinks it (shouldShrinkIdle in src/runtime/gc.ts); V8's smallest is
 * 1 MiB (two semi-spaces of 512 KiB). */
export const idleShrinkNewSpaceBytes = 2 * 1024 * 1024;
/** idleShrinkAfterChecks: the idle checks in a row before the first such collection. */
export const idleShrinkAfterChecks = 2;
/** idleShrinkCollectionsMax: at most this many such collections each time the thread has been
 * busy (V8 shrank the gateway's young generation at the sixth or seventh, a second apart). */
export const idleShrinkCollectionsMax = 12;
/** idleGcBusyMax: the event-loop utilisation over the last check below which a thread is idle. */
export const idleGcBusyMax = 0.05;
assert(idleGcBusyMax > 0 && idleGcBusyMax < 1, 'idle means some fraction of the loop');
assert(stopSnapshotWaitMs < actorStopTimeoutMs, 'a stop snapshot waits less than a stop');
