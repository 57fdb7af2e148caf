/**
 * client: the MyEtcd client SDK — `Client` for etcd 3.4's JSON gateway (/v3, which works
 * against a real etcd too) and `V1Client` for MyEtcd's /v1 REST API (docs/api.md).
 */
export {
  Client, type ClientOptions, KeepAlive, type KeepAliveOptions, WatchCanceledError, Watcher,
} from './client.js';
export { Compare, type CompareOp, Op, TxnBuilder } from './txn.js';
export { ClientError, grpcCodes } from './errors.js';
export type { ClientTlsOptions } from './tls.js';
export { leaseFromHex, leaseHex, prefixEnd } from './codec.js';
export type * from './types.js';
export {
  V1Client, type V1ClientOptions, V1Error, type V1ErrorCode, V1KeepAlive,
  type V1KeepAliveOptions, V1Watch, type V1WatchOptions, type V1KeyValue, type V1Result,
  type V1ListOptions, type V1Page, type V1Compare, type V1Op, type V1OpResponse, type V1Txn,
  type V1WatchEvent, type V1WatchResponse, type V1LeaseInfo,
} from './v1.js';
