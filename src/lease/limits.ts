/**
 * Lease limits that src/constants.ts does not name yet (the lead may move them there).
 * minLeaseTtlSeconds / maxLeaseTtlSeconds come from src/constants.ts.
 */

/** expiredLeasesPerCall bounds revocations proposed per check: etcd's leaseRevokeRate is
 * 1,000/s and it checks every 500 ms. */
export const expiredLeasesPerCall = 500;

/** expiredLeaseRetryMs: an expired lease whose revocation has not been applied is proposed
 * again after this long (etcd's expiredLeaseRetryInterval: 3 s). */
export const expiredLeaseRetryMs = 3_000;

/** leaseCheckIntervalMs: how often the lease actor looks for expired leases (etcd: 500 ms). */
export const leaseCheckIntervalMs = 500;

/** leaseCheckpointIntervalMs: how often the leader checkpoints remaining TTLs through the log
 * (etcd 3.6's default lease checkpoint interval: 5 minutes). */
export const leaseCheckpointIntervalMs = 5 * 60_000;

/** leaseCheckpointBatchMax bounds the leases checkpointed by one proposal (etcd's
 * maxLeaseCheckpointBatchSize: 1,000). */
export const leaseCheckpointBatchMax = 1_000;
