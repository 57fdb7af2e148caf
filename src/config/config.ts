/**
 * Config is a MyEtcd server's whole configuration, resolved and validated. It is a plain
 * object (strings, numbers, arrays) so it can be posted to worker threads as is: every actor
 * thread receives the same Config and builds its own logger and limits from it.
 *
 * Field names are the camelCase of etcd's flag names; see docs/configuration.md for each
 * setting's flag, environment variable, config-file key and default.
 */
export interface Config {
  /** name is this member's human-readable name (etcd: --name). */
  name: string;
  /** dataDir holds the WAL and snapshots (etcd: --data-dir, default `${name}.etcd`). */
  dataDir: string;
  /** listenClientUrls are the URLs the client gateway listens on. */
  listenClientUrls: string[];
  /** advertiseClientUrls are the client URLs announced to the cluster and to clients. */
  advertiseClientUrls: string[];
  /** listenClientGrpcUrls are the URLs etcd's gRPC API listens on (ours: etcd serves gRPC
   * on its client URLs; hyper-express cannot share a port with an HTTP/2 server). */
  listenClientGrpcUrls: string[];
  /** listenMetricsUrls: etcd's --listen-metrics-urls, more listeners that answer /metrics and
   * /health alone (none by default). */
  listenMetricsUrls: string[];
  /** advertiseClientGrpcUrls are the gRPC URLs announced to gRPC clients (member list). */
  advertiseClientGrpcUrls: string[];
  /** listenPeerUrls are the URLs the peer (Raft) transport listens on. */
  listenPeerUrls: string[];
  /** initialAdvertisePeerUrls are this member's peer URLs announced to the cluster. */
  initialAdvertisePeerUrls: string[];
  /** initialCluster is etcd's bootstrap list: `name1=url1,name2=url2` (see parseInitialCluster). */
  initialCluster: string;
  /** initialClusterState is 'new' to bootstrap a cluster, 'existing' to join one. */
  initialClusterState: 'new' | 'existing';
  /** initialClusterToken keeps two clusters bootstrapped from the same URLs apart. */
  initialClusterToken: string;
  /** heartbeatInterval is the Raft tick in milliseconds. Invariant: ≥ 1. */
  heartbeatInterval: number;
  /** electionTimeout in milliseconds. Invariant: ≥ 5 × heartbeatInterval, ≤ 50,000. */
  electionTimeout: number;
  /** strictReconfigCheck: refuse membership changes that could lose quorum (etcd's flag;
   * 'true' or 'false' as given, default 'true'). */
  strictReconfigCheck: 'true' | 'false';
  /** snapshotCount is the number of applied entries between snapshots. */
  snapshotCount: number;
  /** snapshotCatchupEntries: entries kept in the log behind a snapshot (etcd 3.6's
   * --experimental-snapshot-catchup-entries). Invariant: ≥ 1. */
  snapshotCatchupEntries: number;
  /** grpcKeepaliveInterval / grpcKeepaliveTimeout: etcd's --grpc-keepalive-interval (how
   * often the gRPC server pings a connection; '0' disables) and --grpc-keepalive-timeout (how
   * long it waits for the answer before closing it), Go durations. */
  grpcKeepaliveInterval: string;
  grpcKeepaliveTimeout: string;
  /** maxConcurrentStreams: etcd's --max-concurrent-streams, the HTTP/2 streams one gRPC
   * connection may have open (SETTINGS_MAX_CONCURRENT_STREAMS). */
  maxConcurrentStreams: number;
  /** watchProgressNotifyInterval: etcd's --experimental-watch-progress-notify-interval, a
   * Go duration ('0' keeps the default; watchProgressNotifyMs). */
  watchProgressNotifyInterval: string;
  /** leaseCheckpointInterval: how often the leader checkpoints remaining lease TTLs, a Go
   * duration ('5m', '500ms'); '0' disables (etcd 3.5/3.6's experimental flag). */
  leaseCheckpointInterval: string;
  /** quotaBackendBytes bounds the store's size; past it writes fail with
   * "mvcc: database space exceeded". */
  quotaBackendBytes: number;
  /** maxRequestBytes bounds one client request's body. */
  maxRequestBytes: number;
  /** maxTxnOps bounds the operations in one txn branch. */
  maxTxnOps: number;
  /** watchBufferedBytesMax bounds the unsent bytes of all watch streams together (ours). */
  watchBufferedBytesMax: number;
  /** gatewayThreads: HTTP gateway threads (--experimental-gateway-threads; 0: per core). */
  gatewayThreads: number;
  /** preVote, logger, enableV2, enablePprof, metrics: etcd flags accepted with the one value
   * this member has (settings.ts says why the others are refused). */
  preVote: string;
  logger: string;
  enableV2: string;
  enablePprof: string;
  metrics: string;
  /** maxSnapshots: snapshot files kept (--max-snapshots; 0: all the WAL reaches back to). */
  maxSnapshots: number;
  /** maxWals: etcd's --max-wals, checked (≥ 1) and otherwise moot: the WAL writer keeps only
   * the segments recovery needs. */
  maxWals: number;
  /** walZeroAheadBytes: zeros written ahead of the WAL's tail
   * (--experimental-wal-zero-ahead-bytes; 0: none; src/wal/zero-ahead.ts). */
  walZeroAheadBytes: number;
  /** actorSpinUs: how long an actor thread awaiting a reply polls before it sleeps
   * (--experimental-actor-spin-us; 0: never; src/runtime/endpoint.ts setSpin). */
  actorSpinUs: number;
  /** autoCompactionMode says how autoCompactionRetention is read. */
  autoCompactionMode: 'periodic' | 'revision';
  /** autoCompactionRetention: '0' disables; periodic: hours ('1') or a duration ('30m');
   * revision: the number of revisions to keep. See compactionRetention(). */
  autoCompactionRetention: string;
  /** logLevel is the least severe level written. */
  logLevel: 'debug' | 'info' | 'warn' | 'error';
  /** logOutputs: 'stderr', 'stdout', 'default' (= stderr), or file paths (etcd: --log-outputs). */
  logOutputs: string[];
  /** logRotationMaxSizeMb rotates a log file past this size in MiB; 0 disables (ours). */
  logRotationMaxSizeMb: number;
  /** logRotationInterval: 'none', 'hourly', 'daily' or a duration like '30m' (ours). */
  logRotationInterval: string;
  /** storageShards is the number of MVCC shard actors (ours).
   * Invariant: 1 ≤ n ≤ storageShardsMax. */
  storageShards: number;
  /** configFile is the JSON config file that was read, or '' when none. */
  configFile: string;
  /** traceSampleRate: the fraction of requests traced, as given ('0' to '1'; see
   * traceSampleRateOf). Ours (docs/observability.md). */
  traceSampleRate: string;
  /** otlpEndpoint: the OTLP/HTTP URL traces are exported to; '' exports nothing. Ours. */
  otlpEndpoint: string;
  /** certFile, keyFile: the client server's TLS certificate and key (PEM; etcd's flags). */
  certFile: string;
  keyFile: string;
  /** trustedCaFile: the CA bundle client certificates must chain to (--client-cert-auth). */
  trustedCaFile: string;
  /** clientCertAuth: refuse clients without a certificate from trustedCaFile at the
   * handshake; with auth enabled, a certificate's common name is the user. */
  clientCertAuth: 'true' | 'false';
  /** autoTls: a self-signed certificate for https client URLs without certFile/keyFile. */
  autoTls: 'true' | 'false';
  /** peerCertFile … peerAutoTls: the same for the peer transport (etcd's --peer-* flags). */
  peerCertFile: string;
  peerKeyFile: string;
  peerTrustedCaFile: string;
  peerClientCertAuth: 'true' | 'false';
  peerAutoTls: 'true' | 'false';
  /** authToken: 'simple' or 'jwt,pub-key=<path>,priv-key=<path>,sign-method=<alg>[,ttl=<dur>]'
   * (etcd: --auth-token). */
  authToken: string;
  /** authTokenTtl: seconds a simple token lives unused (etcd: --auth-token-ttl, 300). */
  authTokenTtl: number;
  /** bcryptCost: the cost of password hashes (etcd: --bcrypt-cost, 10). Invariant: 4..31. */
  bcryptCost: number;
  /** cors: the origins whose browser pages may call the HTTP API (etcd: --cors): '*' (the
   * default, any) or scheme://host:port values matched as written. */
  cors: string[];
}

/** LogLevels are the accepted --log-level values, least severe first. */
export const logLevels = ['debug', 'info', 'warn', 'error'] as const;
/** ClusterStates are the accepted --initial-cluster-state values. */
export const clusterStates = ['new', 'existing'] as const;
/** CompactionModes are the accepted --auto-compaction-mode values. */
export const compactionModes = ['periodic', 'revision'] as const;
