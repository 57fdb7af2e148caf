import { GrpcCode, grpcCodeName } from '../errors.js';
/**
 * ClientError is every failure the client SDK reports: an error answer from the server (with
 * the server's gRPC code and etcd's message, e.g. code 11 "etcdserver: mvcc: required
 * revision has been compacted"), or no answer at all from any endpoint (code 14, Unavailable,
 * status 0). `code` is the gRPC status code as etcd's JSON gateway sends it.
 */
export class ClientError extends Error {
  /** code is the gRPC status code (grpcCodes). */
  readonly code: number;
  /** codeName is the code's name ('NotFound', 'OutOfRange', …). */
  readonly codeName: string;
  /** status is the HTTP status, or 0 when no endpoint answered. */
  readonly status: number;
  /** endpoint is the endpoint that answered (or failed last). */
  readonly endpoint: string;
  constructor(message: string, code: number, status: number, endpoint: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'ClientError';
    this.code = code;
    this.codeName = grpcCodeName(code);
    this.status = status;
    this.endpoint = endpoint;
  }
}

/** grpcCodes are the gRPC status codes etcd answers with: the server's table (src/errors.ts). */
export const grpcCodes = GrpcCode;

/** grpcOfHttpStatus guesses a gRPC code for an HTTP error without an etcd error body. */
export function grpcOfHttpStatus(status: number): number {
  switch (status) {
    case 400:
      return 3;
    case 401:
      return 16;
    case 403:
      return 7;
    case 404:
      return 5;
    case 409:
      return 10;
    case 413:
      return 8;
    case 429:
      return 8;
    case 501:
      return 12;
    case 503:
      return 14;
    case 504:
      return 4;
    default:
      return 2;
  }
}
