/**
 * Base64 exactly as etcd 3.4's gateway reads `bytes` fields: Go's encoding/json decodes them
 * with base64.StdEncoding (padded, standard alphabet; '\r' and '\n' are skipped). URL-safe
 * input is REFUSED (recorded: err-base64-urlsafe) even though newer grpc-gateways accept it.
 * Errors carry Go's position: "illegal base64 data at input byte N".
 */
import type { Bytes } from '../types.js';

const STD = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * goBase64Decode decodes s to the internal binary string, or returns the Go error message.
 * Fast path: a well-formed padded string goes straight to Buffer (native, no copies in JS).
 */
export function goBase64Decode(s: string): { bytes: Bytes } | { error: string } {
  if (s.length % 4 === 0 && STD.test(s)) {
    // With the length a multiple of 4 and '=' only at the end (at most two), every quantum
    // is complete and the padding well placed: exactly what Go accepts without '\r'/'\n'.
    return { bytes: Buffer.from(s, 'base64').toString('latin1') };
  }
  const pos = goBase64ErrorPos(s);
  if (pos >= 0) return { error: `illegal base64 data at input byte ${pos}` };
  // Valid only because of '\r'/'\n', which Go skips.
  return { bytes: Buffer.from(s.replace(/[\r\n]/g, ''), 'base64').toString('latin1') };
}

function decodes(c: number): boolean {
  return (
    (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) ||
    c === 0x2b || c === 0x2f
  );
}

/** goBase64ErrorPos ports Go 1.19's decodeQuantum loop; -1 when the input is valid. */
export function goBase64ErrorPos(src: string): number {
  let si = 0;
  const n = src.length;
  while (si < n) {
    let j = 0;
    for (; j < 4; j++) {
      if (si === n) {
        if (j === 0) return -1;
        return si - j; // StdEncoding pads: a short final quantum is corrupt
      }
      const c = src.charCodeAt(si);
      si++;
      if (decodes(c)) continue;
      if (c === 0x0a || c === 0x0d) {
        j--;
        continue;
      }
      if (c !== 0x3d /* = */) return si - 1;
      // padding
      if (j === 0 || j === 1) return si - 1;
      if (j === 2) {
        while (si < n && (src.charCodeAt(si) === 0x0a || src.charCodeAt(si) === 0x0d)) si++;
        if (si === n) return n;
        if (src.charCodeAt(si) !== 0x3d) return si - 1;
        si++;
      }
      while (si < n && (src.charCodeAt(si) === 0x0a || src.charCodeAt(si) === 0x0d)) si++;
      if (si < n) return si;
      return -1;
    }
  }
  return -1;
}
