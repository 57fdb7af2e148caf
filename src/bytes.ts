import type { Bytes } from './types.js';

/** bytesFromBuffer converts raw bytes into the internal binary-string form. */
export function bytesFromBuffer(buf: Uint8Array): Bytes {
  return Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength).toString('latin1');
}

/** bufferFromBytes converts the internal binary-string form back into raw bytes. */
export function bufferFromBytes(b: Bytes): Buffer {
  return Buffer.from(b, 'latin1');
}

/** bytesFromUtf8 encodes text (a /v1 key or value) into the internal form. */
export function bytesFromUtf8(text: string): Bytes {
  return Buffer.from(text, 'utf8').toString('latin1');
}

/** utf8FromBytes decodes the internal form as UTF-8 text (lossy for non-UTF-8 bytes). */
export function utf8FromBytes(b: Bytes): string {
  return Buffer.from(b, 'latin1').toString('utf8');
}

/** bytesFromBase64 decodes etcd's base64 JSON field; undefined when it is not valid base64. */
export function bytesFromBase64(s: string): Bytes | undefined {
  if (!BASE64.test(s)) return undefined;
  return Buffer.from(s, 'base64').toString('latin1');
}

/** base64FromBytes encodes for etcd's JSON gateway (standard alphabet, padded). */
export function base64FromBytes(b: Bytes): string {
  return Buffer.from(b, 'latin1').toString('base64');
}

/** prefixEnd returns the range_end that selects every key with the given prefix (etcd's
 * GetPrefixRangeEnd): the prefix with its last byte below 0xff incremented and the rest cut.
 * A prefix of all 0xff bytes (or empty) yields "\0", meaning "to the end of the keyspace". */
export function prefixEnd(prefix: Bytes): Bytes {
  for (let i = prefix.length - 1; i >= 0; i--) {
    const c = prefix.charCodeAt(i);
    if (c < 0xff) return prefix.slice(0, i) + String.fromCharCode(c + 1);
  }
  return '\0';
}

// Standard or URL-safe alphabet, optional padding; Go's encoding/json accepts StdEncoding only,
// grpc-gateway (jsonpb) accepts both, so do we.
const BASE64 = /^(?:[A-Za-z0-9+/_-]{4})*(?:[A-Za-z0-9+/_-]{2}(?:==)?|[A-Za-z0-9+/_-]{3}=?)?$/;
