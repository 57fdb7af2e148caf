import { grpcOverheadBytes, requestBytesMax, txnOpsMax } from '../constants.js';

/**
 * limits: the request bounds this server runs with — etcd's `--max-request-bytes` and
 * `--max-txn-ops`, and what follows from them — in one process-wide setting. main.ts sets it
 * once from the configuration before the gateway listens; the decoders (v3-size.ts,
 * v3-decode.ts, v1.ts) and the gateway read it. It is a setting, not state: like etcd's
 * ServerConfig it never changes while the server runs, and the default is etcd's.
 *
 * Why one setting instead of a parameter: the checks run deep inside decoders that /v3, /v1
 * and the lease routes share; every server process has exactly one configuration.
 */

/** RequestLimits are the bounds on one client request. */
export interface RequestLimits {
  /** requestBytesMax is --max-request-bytes: a write's Raft proposal over it is "etcdserver:
   * request is too large". */
  readonly requestBytesMax: number;
  /** txnOpsMax is --max-txn-ops: operations per txn branch. */
  readonly txnOpsMax: number;
  /** grpcRecvBytesMax is what grpc-go lets through to etcd: requestBytesMax + 512 KiB. */
  readonly grpcRecvBytesMax: number;
  /** httpBodyBytesMax bounds an HTTP request body: twice grpcRecvBytesMax — base64 (×4/3)
   * plus JSON's keys and quotes — so that every request grpc would accept is read and gets
   * etcd's own error from the decoders; past it the gateway answers 413 without reading on
   * (4 MiB by default, constants.ts's httpBodyBytesMax). */
  readonly httpBodyBytesMax: number;
}

/** requestLimitsOf derives the limits from the two flags. */
export function requestLimitsOf(requestBytes: number, txnOps: number): RequestLimits {
  const grpcRecvBytesMax = requestBytes + grpcOverheadBytes;
  return {
    requestBytesMax: requestBytes, txnOpsMax: txnOps, grpcRecvBytesMax,
    httpBodyBytesMax: 2 * grpcRecvBytesMax,
  };
}

let current: RequestLimits = requestLimitsOf(requestBytesMax, txnOpsMax);

/** requestLimits is the setting in force (etcd's defaults until setRequestLimits). */
export function requestLimits(): RequestLimits {
  return current;
}

/** setRequestLimits installs the configured limits (main.ts, once, before listening). */
export function setRequestLimits(requestBytes: number, txnOps: number): RequestLimits {
  current = requestLimitsOf(requestBytes, txnOps);
  return current;
}
