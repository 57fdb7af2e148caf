import * as C from '../constants.js';
import { type Config, clusterStates, compactionModes, logLevels } from './config.js';
import * as D from './defaults.js';

/**
 * settings: the one table every configuration source is read through. Each row names a
 * setting once — its flag (etcd's kebab-case, also the config-file key), its Config field,
 * how its text is parsed and its default — so flags, environment, file, help text and
 * docs/configuration.md cannot drift apart.
 */

/** Kind says how a setting's raw value is parsed. An enum with `bool` is a flag a bare
 * `--flag` sets to true (etcd's true|false flags that take one value here); `why` says why
 * the other values of etcd's are refused. */
export type Kind =
  | { t: 'string'; nonEmpty?: boolean }
  | { t: 'int'; min: number; max?: number; unit?: string }
  | { t: 'enum'; choices: readonly string[]; bool?: boolean; why?: string }
  | { t: 'urls'; listen: boolean }
  | { t: 'list'; origins?: boolean };

/** Setting describes one configuration setting. */
export interface Setting {
  flag: string;
  key: keyof Config;
  kind: Kind;
  /** value is the placeholder shown in help (`--data-dir <dir>`). */
  value: string;
  /** defaultText is the default as shown in help and docs. */
  defaultText: string;
  help: string;
}

const u = 'http(s)://host:port';

/** duration is a setting written as a Go duration ('5m', '30s', '0'), checked by load.ts. */
function duration(flag: string, key: keyof Config, defaultText: string, help: string): Setting {
  return { flag, key, kind: { t: 'string', nonEmpty: true }, value: 'duration', defaultText, help };
}

/** settings lists every setting, in help order. */
export const settings: readonly Setting[] = [
  { flag: 'name', key: 'name', kind: { t: 'string', nonEmpty: true }, value: 'name',
    defaultText: D.defaultName, help: 'Human-readable name for this member.' },
  { flag: 'data-dir', key: 'dataDir', kind: { t: 'string', nonEmpty: true }, value: 'dir',
    defaultText: '${name}.etcd', help: 'Path to the data directory (WAL and snapshots).' },
  { flag: 'listen-client-urls', key: 'listenClientUrls', kind: { t: 'urls', listen: true },
    value: u, defaultText: D.defaultClientUrl,
    help: 'Comma-separated URLs to listen on for client traffic (port 0 picks a free port).' },
  { flag: 'advertise-client-urls', key: 'advertiseClientUrls', kind: { t: 'urls', listen: false },
    value: u, defaultText: '--listen-client-urls, or ' + D.defaultClientUrl,
    help: 'Comma-separated client URLs to advertise to the cluster and clients.' },
  { flag: 'listen-client-grpc-urls', key: 'listenClientGrpcUrls',
    kind: { t: 'urls', listen: true }, value: u,
    defaultText: `http://127.0.0.1:${C.grpcListenPortDefault}, or port 0 on each ` +
      '--listen-client-urls host when that is given',
    help: "Comma-separated URLs to listen on for etcd's gRPC API (etcdctl, clientv3)." },
  { flag: 'advertise-client-grpc-urls', key: 'advertiseClientGrpcUrls',
    kind: { t: 'urls', listen: false }, value: u, defaultText: '--listen-client-grpc-urls',
    help: 'Comma-separated gRPC client URLs to advertise (the member list shows them).' },
  { flag: 'listen-metrics-urls', key: 'listenMetricsUrls', kind: { t: 'urls', listen: true },
    value: u, defaultText: 'none',
    help: 'Comma-separated URLs to listen on for /metrics and /health alone (http only).' },
  { flag: 'listen-peer-urls', key: 'listenPeerUrls', kind: { t: 'urls', listen: true },
    value: u, defaultText: D.defaultPeerUrl,
    help: 'Comma-separated URLs to listen on for peer (Raft) traffic.' },
  { flag: 'initial-advertise-peer-urls', key: 'initialAdvertisePeerUrls',
    kind: { t: 'urls', listen: false }, value: u,
    defaultText: '--listen-peer-urls, or ' + D.defaultPeerUrl,
    help: "Comma-separated peer URLs of this member to advertise to the cluster." },
  { flag: 'initial-cluster', key: 'initialCluster', kind: { t: 'string', nonEmpty: true },
    value: 'name=url,...', defaultText: '${name}=${initial-advertise-peer-urls}',
    help: 'Initial cluster configuration for bootstrapping: name=peerURL pairs.' },
  { flag: 'initial-cluster-state', key: 'initialClusterState',
    kind: { t: 'enum', choices: clusterStates }, value: 'new|existing', defaultText: 'new',
    help: "'new' when bootstrapping a cluster, 'existing' when joining one." },
  { flag: 'initial-cluster-token', key: 'initialClusterToken',
    kind: { t: 'string', nonEmpty: true },
    value: 'token', defaultText: D.defaultClusterToken,
    help: 'Initial cluster token, unique per cluster, used while bootstrapping.' },
  { flag: 'heartbeat-interval', key: 'heartbeatInterval',
    kind: { t: 'int', min: 1, max: D.electionTimeoutMsMax, unit: 'milliseconds' },
    value: 'ms', defaultText: String(C.heartbeatIntervalMs),
    help: 'Time (in milliseconds) of a heartbeat interval: one Raft tick.' },
  { flag: 'election-timeout', key: 'electionTimeout',
    kind: { t: 'int', min: 1, max: D.electionTimeoutMsMax, unit: 'milliseconds' },
    value: 'ms', defaultText: String(C.electionTimeoutMs),
    help: 'Time (in milliseconds) for an election to time out; ≥ 5 heartbeat intervals.' },
  { flag: 'strict-reconfig-check', key: 'strictReconfigCheck',
    kind: { t: 'enum', choices: ['true', 'false'] }, value: 'true|false', defaultText: 'true',
    help: 'Reject reconfiguration requests that would cause quorum loss.' },
  { flag: 'snapshot-count', key: 'snapshotCount', kind: { t: 'int', min: 1 }, value: 'n',
    defaultText: String(C.snapshotCount),
    help: 'Number of committed transactions to trigger a snapshot to disk.' },
  { flag: 'pre-vote', key: 'preVote', value: 'true',
    kind: { t: 'enum', choices: ['true'], bool: true,
      why: 'the Raft node always runs the pre-vote phase' },
    defaultText: 'true', help: 'Enable the Raft pre-vote phase (always on here).' },
  { flag: 'max-snapshots', key: 'maxSnapshots', kind: { t: 'int', min: 0 }, value: 'n',
    defaultText: String(C.snapshotFilesKept),
    help: 'Maximum number of snapshot files to retain (0 is unlimited); a file the WAL ' +
      'no longer reaches back to is removed regardless, since no recovery could start from it.' },
  { flag: 'max-wals', key: 'maxWals', kind: { t: 'int', min: 1 }, value: 'n',
    defaultText: String(C.walFilesKept),
    help: 'Maximum number of WAL files to retain. The WAL writer keeps only the segments ' +
      'recovery needs, which no setting lowers; 0 (unlimited, in etcd) is refused.' },
  { flag: 'experimental-snapshot-catchup-entries', key: 'snapshotCatchupEntries',
    kind: { t: 'int', min: 1 }, value: 'n', defaultText: String(C.snapshotCatchUpEntries),
    help: 'Number of entries kept in the log after a snapshot, for slow followers to ' +
      'catch up without one (etcd 3.6).' },
  duration('grpc-keepalive-interval', 'grpcKeepaliveInterval', D.grpcKeepaliveIntervalDefault,
    'Frequency of server-to-client pings on gRPC connections, to check that a ' +
      "connection is alive ('0' disables)."),
  duration('grpc-keepalive-timeout', 'grpcKeepaliveTimeout', D.grpcKeepaliveTimeoutDefault,
    'How long the server waits for the answer to a ping before it closes the gRPC ' +
      'connection.'),
  { flag: 'max-concurrent-streams', key: 'maxConcurrentStreams',
    kind: { t: 'int', min: 1, max: 0xffffffff }, value: 'n',
    defaultText: String(C.grpcConcurrentStreamsMax),
    help: 'Maximum concurrent streams (calls) each client can open on one gRPC connection ' +
      '(etcd: unbounded by default; here bounded).' },
  duration('experimental-watch-progress-notify-interval', 'watchProgressNotifyInterval',
    D.watchProgressNotifyIntervalDefault,
    'How often a watcher created with progress_notify that got no events is told the ' +
      "revision it has seen up to (as etcd: '0' keeps the default, at least 100ms)."),
  duration('experimental-lease-checkpoint-interval', 'leaseCheckpointInterval',
    D.leaseCheckpointIntervalDefault,
    "How often the leader checkpoints leases' remaining TTLs, so that a new leader " +
      "does not start them over ('0' disables, as etcd 3.4)."),
  { flag: 'quota-backend-bytes', key: 'quotaBackendBytes', kind: { t: 'int', min: 0 },
    value: 'bytes', defaultText: `${C.quotaBackendBytes} (0 means the default)`,
    help: 'Raise an alarm and refuse writes when the store exceeds this size.' },
  { flag: 'max-request-bytes', key: 'maxRequestBytes', kind: { t: 'int', min: 1 },
    value: 'bytes', defaultText: String(C.requestBytesMax),
    help: 'Maximum client request size in bytes the server will accept.' },
  { flag: 'max-txn-ops', key: 'maxTxnOps', kind: { t: 'int', min: 1 }, value: 'n',
    defaultText: String(C.txnOpsMax),
    help: 'Maximum number of operations permitted in a transaction branch.' },
  { flag: 'experimental-watch-buffered-bytes-max', key: 'watchBufferedBytesMax',
    kind: { t: 'int', min: 1 }, value: 'bytes', defaultText: String(C.watchBufferedBytesMax),
    help: 'Bound on the unsent bytes of all watch streams together; past it the slowest ' +
      'stream is dropped with a cancel reason (ours).' },
  { flag: 'experimental-gateway-threads', key: 'gatewayThreads',
    kind: { t: 'int', min: 0, max: C.gatewayThreadsMax }, value: 'n',
    defaultText: String(C.gatewayThreadsDefault),
    help: 'HTTP gateway threads serving the client port together (1: the main thread ' +
      'alone; 0: sized to the cores: 1 below 4 cores, else half the cores up to 4) (ours).' },
  { flag: 'experimental-wal-zero-ahead-bytes', key: 'walZeroAheadBytes',
    kind: { t: 'int', min: 0, max: C.walZeroAheadBytesMax }, value: 'bytes',
    defaultText: String(C.walZeroAheadBytes),
    help: 'Zeros the WAL writer keeps written and synced ahead of its tail, so that an ' +
      'append\'s fdatasync need not commit the file system\'s journal for fresh blocks; 0 ' +
      'off (for a copy-on-write file system, where it cannot help) (ours).' },
  { flag: 'experimental-actor-spin-us', key: 'actorSpinUs',
    kind: { t: 'int', min: 0, max: C.actorSpinUsMax }, value: 'µs',
    defaultText: String(C.actorSpinUsDefault),
    help: 'How long an actor thread awaiting a reply polls for it before it sleeps; one ' +
      'thread at a time, 0 never (ours).' },
  { flag: 'auto-compaction-mode', key: 'autoCompactionMode',
    kind: { t: 'enum', choices: compactionModes }, value: 'periodic|revision',
    defaultText: 'periodic',
    help: "Read --auto-compaction-retention as hours or a duration ('periodic') " +
      "or as a revision count ('revision')." },
  { flag: 'auto-compaction-retention', key: 'autoCompactionRetention',
    kind: { t: 'string', nonEmpty: true }, value: 'retention', defaultText: '0',
    help: "Auto compaction retention; '0' disables auto compaction. " +
      "Periodic: '1' (hours) or '30m'." },
  { flag: 'logger', key: 'logger', value: 'zap',
    kind: { t: 'enum', choices: ['zap'], why: 'logs are JSON lines, as zap writes them; ' +
      "capnslog's text lines are not written" },
    defaultText: 'zap', help: 'The logger: zap (structured JSON lines; etcd 3.4 also has ' +
      'capnslog).' },
  { flag: 'log-level', key: 'logLevel', kind: { t: 'enum', choices: logLevels },
    value: 'debug|info|warn|error', defaultText: 'info', help: 'Least severe level to log.' },
  { flag: 'log-outputs', key: 'logOutputs', kind: { t: 'list' }, value: 'stderr|stdout|path,...',
    defaultText: 'stderr',
    help: "Where to write logs: 'stderr', 'stdout', 'default' (stderr) or file paths." },
  { flag: 'log-rotation-max-size-mb', key: 'logRotationMaxSizeMb', kind: { t: 'int', min: 0 },
    value: 'MiB', defaultText: String(D.logRotationMaxSizeMbDefault),
    help: 'Rotate a log file when it exceeds this size in MiB; 0 disables size rotation.' },
  { flag: 'log-rotation-interval', key: 'logRotationInterval',
    kind: { t: 'string', nonEmpty: true },
    value: 'none|hourly|daily|duration', defaultText: D.logRotationIntervalDefault,
    help: "Rotate log files on this schedule: 'none', 'hourly', 'daily' " +
      "or a duration ('30m', '6h')." },
  { flag: 'storage-shards', key: 'storageShards',
    kind: { t: 'int', min: 1, max: D.storageShardsMax }, value: 'n',
    defaultText: `max(1, cores - 1), at most ${D.storageShardsDefaultMax}`,
    help: 'Number of MVCC storage shard actors (worker threads).' },
  { flag: 'enable-v2', key: 'enableV2', value: 'false',
    kind: { t: 'enum', choices: ['false'], bool: true, why: 'the v2 API is not served' },
    defaultText: 'false', help: 'Accept etcd v2 API requests (not served here: false only).' },
  { flag: 'enable-pprof', key: 'enablePprof', value: 'false',
    kind: { t: 'enum', choices: ['false'], bool: true,
      why: "Go's pprof has no counterpart here (node --cpu-prof, GET /debug/threads)" },
    defaultText: 'false', help: "Go's runtime profiling data over HTTP (false only)." },
  { flag: 'metrics', key: 'metrics', value: 'basic',
    kind: { t: 'enum', choices: ['basic'],
      why: "'extensive' (gRPC handling-time histograms) is not exported" },
    defaultText: 'basic', help: "The metrics exported: basic ('extensive' is not)." },
  { flag: 'config-file', key: 'configFile', kind: { t: 'string' }, value: 'path',
    defaultText: '(none)',
    help: 'Path to a JSON config file whose keys are these flag names (etcd\'s YAML keys).' },
  { flag: 'trace-sample-rate', key: 'traceSampleRate', kind: { t: 'string', nonEmpty: true },
    value: 'fraction', defaultText: '0',
    help: 'Fraction of requests traced across the actors (0 to 1); a request with the header ' +
      "'x-myetcd-trace: 1' is always traced (ours)." },
  { flag: 'otlp-endpoint', key: 'otlpEndpoint', kind: { t: 'string' }, value: 'url',
    defaultText: '(none)',
    help: 'OTLP/HTTP traces URL (e.g. http://127.0.0.1:4318/v1/traces) to export the ' +
      'recorded traces to (ours).' },
  { flag: 'cert-file', key: 'certFile', kind: { t: 'string' }, value: 'path',
    defaultText: '(none)', help: 'Path to the client server TLS certificate file (PEM).' },
  { flag: 'key-file', key: 'keyFile', kind: { t: 'string' }, value: 'path',
    defaultText: '(none)', help: 'Path to the client server TLS key file (PEM).' },
  { flag: 'trusted-ca-file', key: 'trustedCaFile', kind: { t: 'string' }, value: 'path',
    defaultText: '(none)', help: 'Path to the client server TLS trusted CA file (PEM).' },
  { flag: 'client-cert-auth', key: 'clientCertAuth',
    kind: { t: 'enum', choices: ['true', 'false'] }, value: 'true|false', defaultText: 'false',
    help: 'Refuse clients without a certificate signed by --trusted-ca-file.' },
  { flag: 'auto-tls', key: 'autoTls', kind: { t: 'enum', choices: ['true', 'false'] },
    value: 'true|false', defaultText: 'false',
    help: 'Client TLS using a generated self-signed certificate.' },
  { flag: 'peer-cert-file', key: 'peerCertFile', kind: { t: 'string' }, value: 'path',
    defaultText: '(none)', help: 'Path to the peer server TLS certificate file (PEM).' },
  { flag: 'peer-key-file', key: 'peerKeyFile', kind: { t: 'string' }, value: 'path',
    defaultText: '(none)', help: 'Path to the peer server TLS key file (PEM).' },
  { flag: 'peer-trusted-ca-file', key: 'peerTrustedCaFile', kind: { t: 'string' },
    value: 'path', defaultText: '(none)', help: 'Path to the peer server TLS trusted CA file.' },
  { flag: 'peer-client-cert-auth', key: 'peerClientCertAuth',
    kind: { t: 'enum', choices: ['true', 'false'] }, value: 'true|false', defaultText: 'false',
    help: 'Refuse peers without a certificate signed by --peer-trusted-ca-file.' },
  { flag: 'peer-auto-tls', key: 'peerAutoTls', kind: { t: 'enum', choices: ['true', 'false'] },
    value: 'true|false', defaultText: 'false',
    help: 'Peer TLS using a generated self-signed certificate.' },
  { flag: 'cors', key: 'cors', kind: { t: 'list', origins: true }, value: 'origins',
    defaultText: '*',
    help: "Comma-separated origins (scheme://host:port) whose browser pages may call the " +
      "HTTP API (CORS), or '*' for any; empty means any." },
  { flag: 'auth-token', key: 'authToken', kind: { t: 'string', nonEmpty: true },
    value: 'simple|jwt,...', defaultText: 'simple',
    help: "Auth token type: 'simple', or 'jwt,pub-key=<path>,priv-key=<path>," +
      "sign-method=<RS256, ES256, ...>[,ttl=5m]'." },
  { flag: 'auth-token-ttl', key: 'authTokenTtl', kind: { t: 'int', min: 1, unit: 'seconds' },
    value: 'seconds', defaultText: '300',
    help: 'Time (in seconds) an unused simple auth token lives.' },
  { flag: 'bcrypt-cost', key: 'bcryptCost', kind: { t: 'int', min: 4, max: 31 }, value: 'n',
    defaultText: '10', help: 'Cost of the bcrypt hashes of passwords (4..31).' },
];

/** byFlag finds a setting by its flag name (without dashes). */
export const byFlag: ReadonlyMap<string, Setting> = new Map(settings.map((s) => [s.flag, s]));

/** envName is a setting's MyEtcd environment variable: MYETCD_DATA_DIR for data-dir. */
export function envName(flag: string, prefix = 'MYETCD_'): string {
  return prefix + flag.toUpperCase().replace(/-/g, '_');
}
