/**
 * client: the MyEtcd client SDK — `Client` for etcd 3.4's JSON gateway (/v3, which works
 * against a real etcd too) and `V1Client` for MyEtcd's /v1 REST API (docs/api.md).
 */
export { Client, type ClientOptions, KeepAlive, type KeepAliveOptions, Watcher } from './client.js';
export { Compare, type CompareOp, Op, TxnBuilder } from './txn.js';
export { ClientError, grpcCodes } from './errors.js';
export { leaseFromHex, leaseHex, prefixEnd } from './codec.js';
export type * from './types.js';
