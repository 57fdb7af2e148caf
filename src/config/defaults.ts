import * as os from 'node:os';
import * as C from '../constants.js';

/**
 * Limits and defaults that belong to configuration only (the server-wide ones live in
 * src/constants.ts and are imported from there, never repeated).
 */

/** defaultName is etcd's --name default. */
export const defaultName = 'default';
/** defaultClientUrl / defaultPeerUrl are etcd's listen defaults, on loopback. */
export const defaultClientUrl = 'http://127.0.0.1:2379';
export const defaultPeerUrl = 'http://127.0.0.1:2380';
/** defaultClusterToken is etcd's --initial-cluster-token default. */
export const defaultClusterToken = 'etcd-cluster';
/** electionTimeoutMsMax is etcd's ceiling for --election-timeout (50 s). */
export const electionTimeoutMsMax = 50_000;
/** electionTimeoutHeartbeatsMin: etcd refuses an election timeout under 5 heartbeats. */
export const electionTimeoutHeartbeatsMin = 5;
/** logRotationMaxSizeMbDefault follows lumberjack's (etcd's rotator) 100 MB default. */
export const logRotationMaxSizeMbDefault = 100;
/** grpcKeepaliveIntervalDefault / grpcKeepaliveTimeoutDefault: etcd's --grpc-keepalive-interval
 * and --grpc-keepalive-timeout defaults. */
export const grpcKeepaliveIntervalDefault = '2h';
export const grpcKeepaliveTimeoutDefault = '20s';

/** watchProgressNotifyIntervalDefault is --experimental-watch-progress-notify-interval's
 * default, etcd's 10 minutes (progressNotifyIntervalMs). */
export const watchProgressNotifyIntervalDefault = `${C.progressNotifyIntervalMs / 60_000}m`;
/** leaseCheckpointIntervalDefault is --experimental-lease-checkpoint-interval's default, the
 * server's leaseCheckpointIntervalMs written as a duration. */
export const leaseCheckpointIntervalDefault = `${C.leaseCheckpointIntervalMs / 60_000}m`;
/** logRotationIntervalDefault rotates log files once a day. */
export const logRotationIntervalDefault = 'daily';
/** storageShardsDefaultMax caps the default shard count: past 8 the Raft applier, not the
 * shards, is the bottleneck on any machine we have measured. */
export const storageShardsDefaultMax = 8;
/** storageShardsMax bounds an explicit --storage-shards. */
export const storageShardsMax = 64;

/** defaultStorageShards is one shard per core left after the Raft/gateway thread, 1..8. */
export function defaultStorageShards(): number {
  const cores = typeof os.availableParallelism === 'function'
    ? os.availableParallelism()
    : os.cpus().length;
  return Math.min(storageShardsDefaultMax, Math.max(1, cores - 1));
}
