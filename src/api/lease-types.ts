/**
 * The internal form of etcd's lease and maintenance requests/responses (etcdserverpb), as the
 * gateway codecs produce and consume them. Lease ids are JS numbers: etcd allows any int64
 * (negative too: recorded lease-grant-negative-id); we accept safe integers only.
 */
import type { Bytes } from '../types.js';

/** LeaseGrantRequest: TTL in seconds; id 0 asks the server to choose one. */
export interface LeaseGrantRequest {
  type: 'leaseGrant';
  ttlSeconds: number;
  id: number;
}

/** LeaseRevokeRequest revokes a lease and deletes its keys. */
export interface LeaseRevokeRequest {
  type: 'leaseRevoke';
  id: number;
}

/** LeaseKeepAliveRequest renews a lease once (one message of etcd's keep-alive stream). */
export interface LeaseKeepAliveRequest {
  type: 'leaseKeepAlive';
  id: number;
}

/** LeaseTimeToLiveRequest asks for the remaining TTL, and the attached keys when `keys`. */
export interface LeaseTimeToLiveRequest {
  type: 'leaseTimeToLive';
  id: number;
  keys: boolean;
}

/** LeaseLeasesRequest lists every lease. */
export interface LeaseLeasesRequest {
  type: 'leaseLeases';
}

export type LeaseRequest =
  | LeaseGrantRequest
  | LeaseRevokeRequest
  | LeaseKeepAliveRequest
  | LeaseTimeToLiveRequest
  | LeaseLeasesRequest;

/** LeaseGrantResponse: the granted id and TTL (etcd raises a TTL below its minimum). */
export interface LeaseGrantResponse {
  type: 'leaseGrant';
  id: number;
  ttlSeconds: number;
  /** error is etcd's legacy string field; empty (omitted) in practice. */
  error?: string;
}

export interface LeaseRevokeResponse {
  type: 'leaseRevoke';
}

/** LeaseKeepAliveResponse: ttlSeconds 0 means the lease was not found (etcd answers 200). */
export interface LeaseKeepAliveResponse {
  type: 'leaseKeepAlive';
  id: number;
  ttlSeconds: number;
}

/**
 * LeaseTimeToLiveResponse: ttlSeconds -1 means expired or not found (etcd answers 200 with
 * TTL -1, not an error); grantedTtlSeconds is the TTL given at grant; keys only when asked.
 */
export interface LeaseTimeToLiveResponse {
  type: 'leaseTimeToLive';
  id: number;
  ttlSeconds: number;
  grantedTtlSeconds: number;
  keys?: Bytes[];
}

export interface LeaseLeasesResponse {
  type: 'leaseLeases';
  ids: number[];
}

/** StatusResponse is /v3/maintenance/status (etcd's proto names these fields in camelCase). */
export interface StatusResponse {
  version: string;
  dbSizeBytes: number;
  leader: number;
  raftIndex: number;
  raftTerm: number;
  raftAppliedIndex: number;
  errors?: string[];
  dbSizeInUseBytes: number;
  isLearner?: boolean;
}
