/**
 * The etcd 3.4 JSON gateway codecs, in one import. Routes found on etcd 3.4.23 (all POST,
 * JSON body; GET on them is 405 text/plain "Method Not Allowed"; unknown paths are 404
 * text/plain "Not Found\n"):
 *   /v3/kv/range, /v3/kv/put, /v3/kv/deleterange, /v3/kv/txn, /v3/kv/compaction,
 *   /v3/lease/grant, /v3/lease/revoke, /v3/lease/keepalive (streamed), /v3/lease/timetolive,
 *   /v3/lease/leases, /v3/maintenance/status,
 *   aliases /v3/kv/lease/revoke, /v3/kv/lease/timetolive, /v3/kv/lease/leases
 *   (NOT /v3/kv/lease/grant nor /v3/kv/lease/keepalive: those are 404 on 3.4).
 * Plus GET /health (text/plain) and GET /version (application/json).
 */
export * from './v3-decode.js';
export * from './v3-encode.js';
export { errorResponse, streamErrorResponse } from './errors.js';

/** etcdServerVersion / etcdClusterVersion: the etcd release whose API this server answers as
 * (GET /version, /v3/maintenance/status). */
export const etcdServerVersion = '3.4.23';
export const etcdClusterVersion = '3.4.0';

/** V3Route names what a /v3 path does; the server switches on it. */
export type V3Route =
  | 'range' | 'put' | 'deleteRange' | 'txn' | 'compaction'
  | 'leaseGrant' | 'leaseRevoke' | 'leaseKeepAlive' | 'leaseTimeToLive' | 'leaseLeases'
  | 'status';

/** v3Routes maps every POST path etcd 3.4's gateway serves to its route. */
export const v3Routes: ReadonlyMap<string, V3Route> = new Map<string, V3Route>([
  ['/v3/kv/range', 'range'],
  ['/v3/kv/put', 'put'],
  ['/v3/kv/deleterange', 'deleteRange'],
  ['/v3/kv/txn', 'txn'],
  ['/v3/kv/compaction', 'compaction'],
  ['/v3/lease/grant', 'leaseGrant'],
  ['/v3/lease/revoke', 'leaseRevoke'],
  ['/v3/kv/lease/revoke', 'leaseRevoke'],
  ['/v3/lease/keepalive', 'leaseKeepAlive'],
  ['/v3/lease/timetolive', 'leaseTimeToLive'],
  ['/v3/kv/lease/timetolive', 'leaseTimeToLive'],
  ['/v3/lease/leases', 'leaseLeases'],
  ['/v3/kv/lease/leases', 'leaseLeases'],
  ['/v3/maintenance/status', 'status'],
]);

