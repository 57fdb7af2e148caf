import type { EndpointStats } from '../runtime/endpoint.js';
import * as prom from 'prom-client';

/**
 * metrics: the gateway's Prometheus registry, with etcd's metric names wherever etcd has one
 * (so etcd dashboards and alerts work unchanged) and `myetcd_*` names for the actor runtime.
 *
 * How numbers from worker threads get here: a prom-client registry lives in one thread and
 * cannot be shared. Each actor keeps plain cumulative counters (EndpointStats, RaftStatusResp,
 * WalStatsResp, …) and the gateway pulls them at scrape time (`render` asks the actor system
 * and the Raft node; `onScrape` hooks ask anyone else) and feeds them through the `ingest*`
 * functions. Cumulative totals become Prometheus counters by adding the difference from the
 * previous snapshot of the same source; a total that went down means the actor restarted and
 * started counting from zero, so the whole new total is added. The exported counters therefore
 * never decrease, across actor restarts included, which is what `rate()` needs.
 */

/** ActorStats are one actor thread's runtime counters, cumulative since the thread started
 * (the runtime's EndpointStats), plus batch sizes sampled since the previous report, if the
 * actor samples them (at most batchSizeSamplesMax are used). */
export interface ActorStats extends EndpointStats {
  batchSizes?: number[];
}

/** RaftStats is what the Raft node reports (a subset of actors/raft RaftStatusResp).
 * The *Total/committed/applied figures are cumulative. */
export interface RaftStats {
  /** memberId is this member's id (etcd_server_id shows it in hex). */
  memberId?: number;
  leader: number;
  isLeader: boolean;
  leaderChanges: number;
  proposalsCommitted: number;
  proposalsApplied: number;
  proposalsPending: number;
  proposalsFailed: number;
  dbSizeBytes?: number;
  keys?: number;
  /** slowApplies counts entries whose apply took longer than etcd's 100 ms warning threshold;
   * etcd_server_slow_apply_total exists once the Raft node reports it. */
  slowApplies?: number;
  /** alarms: the active alarms (myetcd_server_alarms{alarm}). */
  alarms?: readonly { alarm: string }[];
  /** diskFault: why writes are refused after a failed disk write (myetcd_disk_fault{kind}). */
  diskFault?: { kind: string };
}

/** WalStats is what the WAL writer reports (actors/wal WalStatsResp): samples since the
 * previous report, and its cumulative bytes written since the thread started. */
export interface WalStats {
  fsyncSeconds: readonly number[];
  bytesWritten: number;
  snapshotSaveSeconds?: readonly number[];
  snapshotFsyncSeconds?: readonly number[];
}

/** MetricsOptions set the constant series of a registry. */
export interface MetricsOptions {
  /** version labels etcd_server_version{server_version}: the etcd API version served
   * (3.4.23), which is what etcd's dashboards and alerts read (src/server/version.ts). */
  version?: string;
  /** buildVersion labels myetcd_build_info{version}: MyEtcd's own release. */
  buildVersion?: string;
  /** apiVersion labels myetcd_build_info{api_version} (default: version). */
  apiVersion?: string;
  /** clusterVersion labels etcd_cluster_version{cluster_version} (etcd: major.minor). */
  clusterVersion?: string;
  /** quotaBackendBytes sets etcd_server_quota_backend_bytes. */
  quotaBackendBytes?: number;
  /** defaultMetrics adds prom-client's process_* and nodejs_* metrics (default on). */
  defaultMetrics?: boolean;
}

/** MvccStats are one storage source's cumulative operation counts and current sizes. Sizes of
 * several sources (shards) are summed. */
export interface MvccStats {
  putTotal?: number;
  deleteTotal?: number;
  rangeTotal?: number;
  txnTotal?: number;
  keys?: number;
  dbSizeBytes?: number;
}

/** ActorStatsSource is what render pulls actor counters from (the ActorSystem). */
export interface ActorStatsSource {
  actorStats(): Promise<Map<string, ActorStats>>;
  readonly restarts: ReadonlyMap<string, number>;
}

/** RaftStatusSource is what render pulls Raft status from (the KvService). */
export interface RaftStatusSource {
  status(): Promise<RaftStats>;
}

/** grpcLabels are go-grpc-prometheus's labels of every gRPC server metric. */
const grpcLabels = ['grpc_type', 'grpc_service', 'grpc_method'];
/** grpcMethodsMax bounds the gRPC methods counted: etcd's services have about 40. */
const grpcMethodsMax = 1_024;

/** GrpcCounts counts one gRPC method's calls and messages since the last render; `handled` by
 * status code name ('OK', 'NotFound', …). */
export interface GrpcCounts {
  readonly type: string;
  readonly service: string;
  readonly method: string;
  started: number;
  received: number;
  sent: number;
  readonly handled: Map<string, number>;
}

/** countGrpc adds one event to a method's counts. */
export function countGrpc(c: GrpcCounts, event: 'started' | 'received' | 'sent' | 'handled',
  code?: string): void {
  switch (event) {
    case 'started': c.started++; break;
    case 'received': c.received++; break;
    case 'sent': c.sent++; break;
    case 'handled': {
      const k = code ?? 'Unknown';
      c.handled.set(k, (c.handled.get(k) ?? 0) + 1);
      break;
    }
  }
}

/** batchSizeSamplesMax bounds the batch-size samples taken from one report. */
export const batchSizeSamplesMax = 10_000;
/** fsyncSamplesMax bounds the fsync/commit duration samples taken from one report. */
export const fsyncSamplesMax = 10_000;
/** scrapeTimeoutMs bounds how long one scrape waits for the actors. */
export const scrapeTimeoutMs = 2_000;

/** etcdDiskBuckets are etcd's buckets for WAL fsync and backend commit durations:
 * prometheus.ExponentialBuckets(0.001, 2, 14), 1 ms to 8.192 s. */
export const etcdDiskBuckets = prom.exponentialBuckets(0.001, 2, 14);
/** httpBuckets cover 100 µs to ~6.5 s: a gateway answer is usually well under a millisecond. */
export const httpBuckets = prom.exponentialBuckets(0.0001, 2, 17);
/** batchSizeBuckets: 1 to 4096 messages (batchMessagesMax), powers of two. */
export const batchSizeBuckets = prom.exponentialBuckets(1, 2, 13);

/** GatewayLoad is what client listeners hold at a moment, summed: requests in flight and
 * watch streams with their buffered bytes (what /metrics reports of the gateways). */
export interface GatewayLoad {
  inflight: number;
  watchStreams: number;
  watchBufferedBytes: number;
  watchBufferedBytesPeak: number;
  watchStreamsDropped: number;
}

/** Metrics is the registry and every named metric; see createMetrics. */
export class Metrics {
  readonly registry = new prom.Registry();

  // ---- etcd's server metrics ----
  readonly hasLeader = this.gauge('etcd_server_has_leader',
    'Whether or not a leader exists. 1 is existence, 0 is not.');
  readonly isLeader = this.gauge('etcd_server_is_leader',
    'Whether or not this member is a leader. 1 if is, 0 otherwise.');
  readonly leaderChanges = this.counter('etcd_server_leader_changes_seen_total',
    'The number of leader changes seen.');
  readonly proposalsCommitted = this.gauge('etcd_server_proposals_committed_total',
    'The total number of consensus proposals committed.');
  readonly proposalsApplied = this.gauge('etcd_server_proposals_applied_total',
    'The total number of consensus proposals applied.');
  readonly proposalsPending = this.gauge('etcd_server_proposals_pending',
    'The current number of pending proposals to commit.');
  readonly proposalsFailed = this.counter('etcd_server_proposals_failed_total',
    'The total number of failed proposals seen.');
  readonly serverVersion = this.gauge('etcd_server_version',
    'Which version is running. 1 for \'server_version\' label with current version.',
    ['server_version']);
  readonly serverId = this.gauge('etcd_server_id',
    'Server or member ID in hexadecimal format. 1 for \'server_id\' label with current ID.',
    ['server_id']);
  readonly clusterVersion = this.gauge('etcd_cluster_version',
    'Which version is running. 1 for \'cluster_version\' label with current cluster version',
    ['cluster_version']);
  readonly quotaBackendBytes = this.gauge('etcd_server_quota_backend_bytes',
    'Current backend storage quota size in bytes.');
  readonly alarmsActive = this.gauge('myetcd_server_alarms',
    'Active alarms of this member by type (NOSPACE: writes that grow the store are refused).',
    ['alarm']);
  readonly diskFault = this.gauge('myetcd_disk_fault',
    '1 while this member refuses writes because a disk write failed, by kind: space ' +
    '(disk full), readOnly, io (a failed fsync: until a restart).', ['kind']);
  readonly heartbeatSendFailures = this.counter('etcd_server_heartbeat_send_failures_total',
    'The total number of leader heartbeat send failures (likely overloaded from slow disk).');
  /** slowApply is registered on the first report that carries slowApplies (see RaftStats). */
  readonly slowApply = new prom.Counter({
    name: 'etcd_server_slow_apply_total', registers: [],
    help: 'The total number of slow apply requests (likely overloaded from slow disk).',
  });
  readonly buildInfo = this.gauge('myetcd_build_info',
    'MyEtcd\'s release, the etcd API version it serves and the Node.js version. Always 1.',
    ['version', 'api_version', 'node_version']);

  // ---- etcd's disk and mvcc metrics ----
  readonly walFsync = this.histogram('etcd_disk_wal_fsync_duration_seconds',
    'The latency distributions of fsync called by WAL.');
  readonly backendCommit = this.histogram('etcd_disk_backend_commit_duration_seconds',
    'The latency distributions of commit called by backend.');
  readonly dbTotalSize = this.gauge('etcd_mvcc_db_total_size_in_bytes',
    'Total size of the underlying database physically allocated in bytes.');
  /** dbTotalSizeDebugging is the older name etcd 3.4 still exports and its sample Grafana
   * dashboard's "DB Size" panel reads. */
  readonly dbTotalSizeDebugging = this.gauge('etcd_debugging_mvcc_db_total_size_in_bytes',
    'Total size of the underlying database physically allocated in bytes.');
  readonly dbTotalSizeInUse = this.gauge('etcd_mvcc_db_total_size_in_use_in_bytes',
    'Total size of the underlying database logically in use in bytes.');
  readonly walWriteBytes = this.gauge('etcd_disk_wal_write_bytes_total',
    'Total number of bytes written in WAL.');
  readonly snapSave = this.histogram('etcd_debugging_snap_save_total_duration_seconds',
    'The total latency distributions of save called by snapshot.');
  readonly snapFsync = this.histogram('etcd_snap_fsync_duration_seconds',
    'The latency distributions of fsync called by snap.');
  // A member receives a database snapshot only from a leader that it lags far behind; a
  // single member never does, so these two stay empty until the peer transport exists.
  readonly snapDbSave = this.histogram('etcd_snap_db_save_total_duration_seconds',
    'The total latency distributions of v3 snapshot save', prom.exponentialBuckets(0.1, 2, 10));
  readonly snapDbFsync = this.histogram('etcd_snap_db_fsync_duration_seconds',
    'The latency distributions of fsyncing .snap.db file');
  readonly keysTotal = this.gauge('etcd_debugging_mvcc_keys_total',
    'Total number of keys.');
  readonly putTotal = this.counter('etcd_mvcc_put_total',
    'Total number of puts seen by this member.');
  readonly deleteTotal = this.counter('etcd_mvcc_delete_total',
    'Total number of deletes seen by this member.');
  readonly rangeTotal = this.counter('etcd_mvcc_range_total',
    'Total number of ranges seen by this member.');
  readonly txnTotal = this.counter('etcd_mvcc_txn_total',
    'Total number of txns seen by this member.');
  readonly linearizableReads = this.counter('myetcd_linearizable_reads_total',
    'Linearizable ranges by how the gateway found their read point: "shared" is the one the ' +
    'Raft node publishes while this member is the only voter, "read_index" a read-index ask.',
    ['read_point']);

  // ---- etcd's network metrics (our JSON gateway stands where etcd's gRPC server does) ----
  readonly clientReceivedBytes = this.counter('etcd_network_client_grpc_received_bytes_total',
    'The total number of bytes received from grpc clients.');
  readonly clientSentBytes = this.counter('etcd_network_client_grpc_sent_bytes_total',
    'The total number of bytes sent to grpc clients.');

  // ---- actor runtime ----
  readonly heapUsed = this.gauge('myetcd_actor_heap_used_bytes',
    'V8 heap in use by an actor thread (each thread has its own heap).', ['actor']);
  readonly memoryParts = this.gauge('myetcd_actor_memory_bytes',
    'Memory of an actor thread by part: heapUsed, heapTotal, newSpace (the young ' +
    'generation, part of heapTotal), external, arrayBuffers (this ' +
    'thread\'s own; V8 leaves resizable buffers out) and what the actor reports of its ' +
    'state (raft log, applier and store columns, which are resizable buffers).',
    ['actor', 'part']);
  readonly mailboxDepth = this.gauge('myetcd_actor_mailbox_depth',
    'Messages an actor has queued or outstanding towards a peer.', ['actor', 'peer']);
  readonly messagesIn = this.counter('myetcd_actor_messages_in_total',
    'Messages received by an actor.', ['actor']);
  readonly messagesOut = this.counter('myetcd_actor_messages_out_total',
    'Messages sent by an actor.', ['actor']);
  readonly batchesIn = this.counter('myetcd_actor_batches_in_total',
    'Cross-thread batches received by an actor.', ['actor']);
  readonly batchesOut = this.counter('myetcd_actor_batches_out_total',
    'Cross-thread batches sent by an actor.', ['actor']);
  readonly batchSize = this.histogram('myetcd_actor_batch_size',
    'Messages per cross-thread batch received.', batchSizeBuckets, ['actor']);
  readonly handleSeconds = this.counter('myetcd_actor_handle_seconds_total',
    'Seconds an actor spent in its message handler.', ['actor']);
  readonly spins = this.counter('myetcd_actor_spins_total',
    'Times an actor thread awaiting a reply polled for it before sleeping, by whether a ' +
    'message came (hit) or not (miss).', ['actor', 'result']);
  readonly spinSeconds = this.counter('myetcd_actor_spin_seconds_total',
    'Seconds an actor thread spent polling for a reply instead of sleeping.', ['actor']);
  readonly gcSeconds = this.counter('myetcd_actor_gc_seconds_total',
    'Seconds an actor thread spent in garbage-collection pauses.', ['actor']);
  readonly restarts = this.counter('myetcd_actor_restarts_total',
    'Restarts of the actor system caused by this actor crashing.', ['actor']);

  // ---- HTTP gateway ----
  readonly httpRequests = this.counter('myetcd_http_requests_total',
    'HTTP requests answered, by route, method and status code.', ['route', 'method', 'code']);
  readonly httpDuration = this.histogram('myetcd_http_request_duration_seconds',
    'HTTP request latency by route.', httpBuckets, ['route']);
  readonly httpInflight = this.gauge('myetcd_http_inflight_requests',
    'Requests accepted by the gateway and not yet answered (bounded by gatewayInflightMax).');
  readonly httpBodyRefused = this.counter('myetcd_http_body_refused_total',
    'Request bodies refused with 413 for their size, before they were read.');
  readonly watchStreams = this.gauge('myetcd_watch_streams', 'Open HTTP watch streams.');
  readonly watchBufferedBytes = this.gauge('myetcd_watch_buffered_bytes',
    'Bytes written by all watch streams that their sockets have not taken yet.');
  readonly watchBufferedBytesPeak = this.gauge('myetcd_watch_buffered_bytes_peak',
    'The most myetcd_watch_buffered_bytes has been since the start.');
  readonly watchStreamsDropped = this.counter('myetcd_watch_streams_dropped_total',
    'Watch streams dropped because their client read too slowly.');

  // ---- gRPC gateway: go-grpc-prometheus's server metrics, as etcd exports them ----
  readonly grpcStarted = this.counter('grpc_server_started_total',
    'Total number of RPCs started on the server.', grpcLabels);
  readonly grpcHandled = this.counter('grpc_server_handled_total',
    'Total number of RPCs completed on the server, regardless of success or failure.',
    [...grpcLabels, 'grpc_code']);
  readonly grpcReceived = this.counter('grpc_server_msg_received_total',
    'Total number of RPC stream messages received on the server.', grpcLabels);
  readonly grpcSent = this.counter('grpc_server_msg_sent_total',
    'Total number of gRPC stream messages sent by the server.', grpcLabels);
  readonly grpcConnections = this.counter('myetcd_grpc_connections_total',
    'Client connections to the gRPC port by how they were handed over: to the HTTP/2 ' +
    'server as "bare" (the socket itself) or "rewritten" (through the :authority rewriter, ' +
    'e.g. etcdctl 3.4 given http:// endpoints); "http1" to the HTTP client listener (an ' +
    'HTTP/1.x client).', ['handover']);

  private shownServerId: string | undefined;
  private slowApplyRegistered = false;
  /** last holds the previous cumulative value per (metric, source) for delta counting. */
  private readonly last = new Map<string, number>();
  private readonly mvccSizes = new Map<string, { keys: number; bytes: number }>();
  private readonly hooks: Array<() => Promise<void> | void> = [];
  /** grpcMethods: each gRPC method's counts not yet added to the counters (grpcCounts). */
  private readonly grpcMethods = new Map<string, GrpcCounts>();

  constructor(opts: MetricsOptions = {}) {
    if (opts.version !== undefined) this.serverVersion.set({ server_version: opts.version }, 1);
    if (opts.clusterVersion !== undefined) {
      this.clusterVersion.set({ cluster_version: opts.clusterVersion }, 1);
    }
    if (opts.buildVersion !== undefined) {
      this.buildInfo.set({
        version: opts.buildVersion, api_version: opts.apiVersion ?? opts.version ?? '',
        node_version: process.version,
      }, 1);
    }
    if (opts.quotaBackendBytes !== undefined) this.quotaBackendBytes.set(opts.quotaBackendBytes);
    // A single member sends no heartbeats (it has no followers): the count is 0 until the
    // peer transport exists, and then it counts what etcd counts.
    this.heartbeatSendFailures.inc(0);
    if (opts.defaultMetrics !== false) prom.collectDefaultMetrics({ register: this.registry });
  }

  /** ingestActorStats takes one actor's cumulative counters (see the file comment). */
  ingestActorStats(actor: string, stats: ActorStats): void {
    const l = { actor };
    this.addTotal(this.messagesIn, l, stats.messagesIn);
    this.addTotal(this.messagesOut, l, stats.messagesOut);
    this.addTotal(this.batchesIn, l, stats.batchesIn);
    this.addTotal(this.batchesOut, l, stats.batchesOut);
    this.addTotal(this.handleSeconds, l, stats.handleSecondsTotal);
    if (stats.spinSecondsTotal !== undefined) {
      this.addTotal(this.spins, { actor, result: 'hit' }, stats.spinHits ?? 0);
      this.addTotal(this.spins, { actor, result: 'miss' }, stats.spinMisses ?? 0);
      this.addTotal(this.spinSeconds, l, stats.spinSecondsTotal);
    }
    for (const [peer, depth] of Object.entries(stats.depth)) {
      this.mailboxDepth.set({ actor, peer }, depth);
    }
    if (stats.heapUsedBytes !== undefined) this.heapUsed.set(l, stats.heapUsedBytes);
    if (stats.gcSecondsTotal !== undefined) this.addTotal(this.gcSeconds, l, stats.gcSecondsTotal);
    for (const [part, bytes] of Object.entries(stats.memoryBytes ?? {})) {
      this.memoryParts.set({ actor, part }, bytes);
    }
    const sizes = stats.batchSizes ?? [];
    for (let i = 0; i < sizes.length && i < batchSizeSamplesMax; i++) {
      this.batchSize.observe(l, sizes[i]!);
    }
  }

  /** ingestRestarts takes the supervisor's cumulative restart counts per culprit actor. */
  ingestRestarts(restarts: ReadonlyMap<string, number>): void {
    for (const [actor, n] of restarts) this.addTotal(this.restarts, { actor }, n);
  }

  /** ingestRaftStats takes the Raft node's status (cumulative counters, current gauges). */
  ingestRaftStats(s: RaftStats): void {
    if (s.memberId !== undefined && s.memberId !== 0) {
      const id = s.memberId.toString(16);
      if (this.shownServerId !== id) {
        this.serverId.reset();
        this.serverId.set({ server_id: id }, 1);
        this.shownServerId = id;
      }
    }
    if (s.slowApplies !== undefined) {
      if (!this.slowApplyRegistered) {
        this.registry.registerMetric(this.slowApply);
        this.slowApplyRegistered = true;
      }
      this.addTotal(this.slowApply, {}, s.slowApplies);
    }
    this.hasLeader.set(s.leader !== 0 ? 1 : 0);
    this.isLeader.set(s.isLeader ? 1 : 0);
    if (s.alarms !== undefined) {
      for (const alarm of ['NOSPACE', 'CORRUPT']) {
        this.alarmsActive.set({ alarm }, s.alarms.filter((a) => a.alarm === alarm).length);
      }
    }
    for (const kind of ['space', 'readOnly', 'io']) {
      this.diskFault.set({ kind }, s.diskFault?.kind === kind ? 1 : 0);
    }
    this.addTotal(this.leaderChanges, {}, s.leaderChanges);
    this.proposalsCommitted.set(s.proposalsCommitted);
    this.proposalsApplied.set(s.proposalsApplied);
    this.proposalsPending.set(s.proposalsPending);
    this.addTotal(this.proposalsFailed, {}, s.proposalsFailed);
    if (s.dbSizeBytes !== undefined || s.keys !== undefined) {
      this.ingestMvccStats('raft', { dbSizeBytes: s.dbSizeBytes, keys: s.keys });
    }
  }

  /** ingestReadPoints takes one gateway thread's cumulative counts of how its linearizable
   * reads found their read point (KvService.readPoints). */
  ingestReadPoints(source: string, c: { shared: number; asked: number }): void {
    this.addTotal(this.linearizableReads, { read_point: 'shared' }, c.shared, { source });
    this.addTotal(this.linearizableReads, { read_point: 'read_index' }, c.asked, { source });
  }

  /** ingestMvccStats takes one storage source's (e.g. 'shard-0') cumulative operation counts
   * and current sizes; the size gauges show the sum over sources. */
  ingestMvccStats(source: string, s: MvccStats): void {
    const key = { source };
    if (s.putTotal !== undefined) this.addTotal(this.putTotal, {}, s.putTotal, key);
    if (s.deleteTotal !== undefined) this.addTotal(this.deleteTotal, {}, s.deleteTotal, key);
    if (s.rangeTotal !== undefined) this.addTotal(this.rangeTotal, {}, s.rangeTotal, key);
    if (s.txnTotal !== undefined) this.addTotal(this.txnTotal, {}, s.txnTotal, key);
    if (s.keys !== undefined || s.dbSizeBytes !== undefined) {
      const prev = this.mvccSizes.get(source) ?? { keys: 0, bytes: 0 };
      this.mvccSizes.set(source, { keys: s.keys ?? prev.keys, bytes: s.dbSizeBytes ?? prev.bytes });
      let keys = 0;
      let bytes = 0;
      for (const v of this.mvccSizes.values()) {
        keys += v.keys;
        bytes += v.bytes;
      }
      this.keysTotal.set(keys);
      this.dbTotalSize.set(bytes);
      this.dbTotalSizeDebugging.set(bytes);
      // The store has no free pages: compaction gives memory back at once, so all of it is
      // in use (etcd's ratio in_use / total, its fragmentation signal, stays 1).
      this.dbTotalSizeInUse.set(bytes);
    }
  }

  /** ingestWalFsync observes WAL fsync durations (seconds) measured since the last report. */
  ingestWalFsync(seconds: readonly number[]): void {
    observeAll(this.walFsync, seconds);
  }

  /** ingestWalStats takes one WalStats report: fsync and snapshot samples since the previous
   * report, and the cumulative bytes written (kept increasing across WAL thread restarts). */
  ingestWalStats(s: WalStats): void {
    this.ingestWalFsync(s.fsyncSeconds);
    // etcd declares this total a gauge; it grows by the same rule as the counters.
    this.walWriteBytes.inc(this.delta('etcd_disk_wal_write_bytes_total', s.bytesWritten));
    observeAll(this.snapSave, s.snapshotSaveSeconds ?? []);
    observeAll(this.snapFsync, s.snapshotFsyncSeconds ?? []);
  }

  /** ingestBackendCommit observes backend (snapshot/shard) commit durations in seconds. */
  ingestBackendCommit(seconds: readonly number[]): void {
    observeAll(this.backendCommit, seconds);
  }

  /** addClientBytes counts bytes received from and sent to clients by the gateway. */
  addClientBytes(received: number, sent: number): void {
    if (received > 0) this.clientReceivedBytes.inc(received);
    if (sent > 0) this.clientSentBytes.inc(sent);
  }

  /** observeHttp records one answered HTTP request. */
  observeHttp(route: string, method: string, code: number, seconds: number): void {
    this.httpRequests.inc({ route, method, code: String(code) });
    this.httpDuration.observe({ route }, seconds);
  }

  /** ingestGateway sets the gateway's own numbers (summed over its listeners). */
  ingestGateway(g: GatewayLoad): void {
    this.httpInflight.set(g.inflight);
    this.watchStreams.set(g.watchStreams);
    this.watchBufferedBytes.set(g.watchBufferedBytes);
    this.watchBufferedBytesPeak.set(g.watchBufferedBytesPeak);
    this.addTotal(this.watchStreamsDropped, {}, g.watchStreamsDropped);
  }

  /** grpcCounts is the counting record of one gRPC method (go-grpc-prometheus's series by
   * grpc_type, grpc_service and grpc_method): the gateway adds to its fields as calls go, and
   * each render adds them to the counters and zeroes them. A handler takes its record once
   * (four counter increments a call, each hashing and checking its labels, were ≈ 3 % of the
   * gateway's CPU under gRPC load). */
  grpcCounts(type: string, service: string, method: string): GrpcCounts {
    const key = `${type} ${service} ${method}`;
    let c = this.grpcMethods.get(key);
    if (c === undefined) {
      c = { type, service, method, started: 0, received: 0, sent: 0, handled: new Map() };
      if (this.grpcMethods.size < grpcMethodsMax) this.grpcMethods.set(key, c);
    }
    return c;
  }

  /** grpcEvent counts one RPC event: 'started', 'received', 'sent' or (with the status
   * code's name, e.g. 'OK', 'NotFound') 'handled'. `type` is go-grpc-prometheus's grpc_type:
   * unary, client_stream, server_stream or bidi_stream. */
  grpcEvent(event: 'started' | 'received' | 'sent' | 'handled', type: string, service: string,
    method: string, code?: string): void {
    countGrpc(this.grpcCounts(type, service, method), event, code);
  }

  /** flushGrpcCounts adds what was counted since the last render to the counters. */
  private flushGrpcCounts(): void {
    for (const c of this.grpcMethods.values()) {
      const labels = { grpc_type: c.type, grpc_service: c.service, grpc_method: c.method };
      if (c.started > 0) this.grpcStarted.inc(labels, c.started);
      if (c.received > 0) this.grpcReceived.inc(labels, c.received);
      if (c.sent > 0) this.grpcSent.inc(labels, c.sent);
      for (const [code, n] of c.handled) {
        if (n > 0) this.grpcHandled.inc({ ...labels, grpc_code: code }, n);
        c.handled.set(code, 0);
      }
      c.started = c.received = c.sent = 0;
    }
  }

  /** onScrape registers a hook run before each render (e.g. ask the WAL actor for its
   * fsync samples and pass them to ingestWalFsync). A failing hook is skipped. */
  onScrape(hook: () => Promise<void> | void): void {
    this.hooks.push(hook);
  }

  /** render pulls the actors' numbers (when given their sources), runs the scrape hooks and
   * returns the text exposition. A source that does not answer in time (e.g. actors
   * restarting) leaves its metrics at their last values. */
  async render(system?: ActorStatsSource, raft?: RaftStatusSource):
    Promise<{ contentType: string; body: string }> {
    const pulls: Promise<unknown>[] = this.hooks.map((h) => settle(async () => h()));
    if (system !== undefined) {
      this.ingestRestarts(system.restarts);
      pulls.push(settle(async () => {
        for (const [actor, stats] of await system.actorStats()) this.ingestActorStats(actor, stats);
      }));
    }
    if (raft !== undefined) {
      pulls.push(settle(async () => this.ingestRaftStats(await raft.status())));
    }
    await Promise.all(pulls);
    this.flushGrpcCounts();
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  /** addTotal turns a source's cumulative total into counter increments (see file comment).
   * `source` distinguishes several sources feeding one unlabelled counter. */
  private addTotal(c: prom.Counter<string>, labels: prom.LabelValues<string>, total: number,
    source: Record<string, string> = {}): void {
    if (!Number.isFinite(total) || total < 0) return;
    const name = (c as unknown as { name: string }).name;
    const key = name + JSON.stringify(labels) + JSON.stringify(source);
    const delta = this.delta(key, total);
    if (delta > 0) c.inc(labels, delta);
    else if (!this.last.has(key + '#seen')) {
      c.inc(labels, 0); // make the series visible at 0
      this.last.set(key + '#seen', 1);
    }
  }

  /** delta is how much the cumulative `total` under `key` grew since its previous value: all
   * of it when it went down (the source restarted and counts from zero). */
  private delta(key: string, total: number): number {
    const prev = this.last.get(key) ?? 0;
    this.last.set(key, total);
    return total >= prev ? total - prev : total;
  }

  private histogram(name: string, help: string, buckets: number[] = etcdDiskBuckets,
    labelNames: string[] = []): prom.Histogram<string> {
    return new prom.Histogram({ name, help, labelNames, buckets, registers: [this.registry] });
  }

  private gauge(name: string, help: string, labelNames: string[] = []): prom.Gauge<string> {
    return new prom.Gauge({ name, help, labelNames, registers: [this.registry] });
  }

  private counter(name: string, help: string, labelNames: string[] = []): prom.Counter<string> {
    return new prom.Counter({ name, help, labelNames, registers: [this.registry] });
  }
}

function observeAll(h: prom.Histogram<string>, samples: readonly number[]): void {
  for (let i = 0; i < samples.length && i < fsyncSamplesMax; i++) h.observe(samples[i]!);
}

async function settle(fn: () => Promise<unknown>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      fn(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error('timeout')), scrapeTimeoutMs);
      }),
    ]);
  } catch {
    // A source that fails or is late keeps its last values; the scrape still answers.
  } finally {
    clearTimeout(timer);
  }
}

/** createMetrics builds a fresh registry with every metric registered (see MetricsOptions for
 * the constant series; defaultMetrics may be turned off by tests). */
export function createMetrics(opts: MetricsOptions = {}): Metrics {
  return new Metrics(opts);
}
