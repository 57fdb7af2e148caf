/**
 * authority: makes etcdctl 3.4's `:authority` acceptable to Node's HTTP/2. Pure: bytes in,
 * bytes out.
 *
 * etcdctl 3.4 (clientv3's balancer) dials `passthrough:///http://127.0.0.1:23790` when given
 * `--endpoints http://127.0.0.1:23790`, and grpc-go sends the part after `///` as the HTTP/2
 * `:authority`. etcd's Go server ignores it; nghttp2 (Node's HTTP/2) checks the authority's
 * characters (RFC 3986's reg-name, `:`, `@`, `[`, `]`, `%`) and resets the stream on the `/`
 * with PROTOCOL_ERROR, so every call fails. Nothing in the server reads the authority, so the
 * gateway rewrites it on the way in: each disallowed character becomes `-`
 * (`http://127.0.0.1:23790` → `http:--127.0.0.1:23790`), keeping its length.
 *
 * The length must stay: the client's HPACK encoder entered the header into its dynamic table,
 * and the decoder's copy has to be charged the same size (RFC 7541 §4.1: name + value + 32)
 * or the two tables would evict differently and every later index would point elsewhere.
 * The value is re-encoded as a plain (non-Huffman) string, so the HEADERS frame grows by a
 * few bytes and its length is rewritten.
 *
 * Scope, to stay small and safe: only a HEADERS frame that carries END_HEADERS (grpc-go sends
 * a request's headers in one frame) is rewritten; only a literal header field whose name is
 * the static table's `:authority` (index 1) or the literal name; a Huffman-coded value is
 * decoded for the printable ASCII symbols (RFC 7541 Appendix B, below); anything else — a
 * symbol outside that set, a header block that does not parse — leaves the frame as it was,
 * which is what Node would have seen anyway.
 */

/** huffmanCodes are RFC 7541 Appendix B's codes of the symbols 0x20 (space) to 0x7e (`~`),
 * in order, as bit strings. */
const huffmanCodes: readonly string[] = [
  '010100', '1111111000', '1111111001', '111111111010', '1111111111001', '010101', '11111000',
  '11111111010', '1111111010', '1111111011', '11111001', '11111111011', '11111010', '010110',
  '010111', '011000', '00000', '00001', '00010', '011001', '011010', '011011', '011100', '011101',
  '011110', '011111', '1011100', '11111011', '111111111111100', '100000', '111111111011',
  '1111111100', '1111111111010', '100001', '1011101', '1011110', '1011111', '1100000', '1100001',
  '1100010', '1100011', '1100100', '1100101', '1100110', '1100111', '1101000', '1101001',
  '1101010', '1101011', '1101100', '1101101', '1101110', '1101111', '1110000', '1110001',
  '1110010', '11111100', '1110011', '11111101', '1111111111011', '1111111111111110000',
  '1111111111100', '11111111111100', '100010', '111111111111101', '00011', '100011', '00100',
  '100100', '00101', '100101', '100110', '100111', '00110', '1110100', '1110101', '101000',
  '101001', '101010', '00111', '101011', '1110110', '101100', '01000', '01001', '101101',
  '1110111', '1111000', '1111001', '1111010', '1111011', '111111111111110', '11111111100',
  '11111111111101', '1111111111101',
];

const byCode = new Map<string, number>(huffmanCodes.map((c, i) => [c, 0x20 + i]));
const codeBitsMax = Math.max(...huffmanCodes.map((c) => c.length));

/** huffmanDecode decodes a Huffman-coded string of printable ASCII; undefined when it holds
 * another symbol or ends in anything but up to 7 bits of EOS padding (all ones). */
export function huffmanDecode(b: Uint8Array): string | undefined {
  let out = '';
  let code = '';
  for (const byte of b) {
    for (let bit = 7; bit >= 0; bit--) {
      code += (byte >> bit) & 1 ? '1' : '0';
      const sym = byCode.get(code);
      if (sym !== undefined) {
        out += String.fromCharCode(sym);
        code = '';
      } else if (code.length > codeBitsMax) {
        return undefined;
      }
    }
  }
  return code.length < 8 && !code.includes('0') ? out : undefined;
}

/** authorityAllowed is nghttp2's authority alphabet (its check_authority). */
const authorityAllowed = /^[A-Za-z0-9\-._~!$&'()*+,;=:@[\]%]*$/;

/** fixAuthorityText replaces every character nghttp2 refuses with '-' (same length). */
export function fixAuthorityText(s: string): string {
  let out = '';
  for (const ch of s) out += authorityAllowed.test(ch) ? ch : '-';
  return out;
}

/** readInt reads an HPACK integer with an n-bit prefix at i: [value, next index], or
 * undefined past the end. */
function readInt(b: Uint8Array, i: number, prefixBits: number): [number, number] | undefined {
  if (i >= b.length) return undefined;
  const max = (1 << prefixBits) - 1;
  let v = b[i]! & max;
  i++;
  if (v < max) return [v, i];
  for (let shift = 0; shift < 28; shift += 7) {
    if (i >= b.length) return undefined;
    const x = b[i++]!;
    v += (x & 0x7f) * 2 ** shift;
    if ((x & 0x80) === 0) return [v, i];
  }
  return undefined;
}

/** writeInt writes an HPACK integer with an n-bit prefix and the given high bits. */
function writeInt(v: number, prefixBits: number, high: number): number[] {
  const max = (1 << prefixBits) - 1;
  if (v < max) return [high | v];
  const out = [high | max];
  v -= max;
  while (v >= 128) {
    out.push((v % 128) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return out;
}

interface Str {
  start: number;
  end: number;
  huffman: boolean;
  bytes: Uint8Array;
}

function readStr(b: Uint8Array, i: number): Str | undefined {
  if (i >= b.length) return undefined;
  const huffman = (b[i]! & 0x80) !== 0;
  const n = readInt(b, i, 7);
  if (n === undefined || n[1] + n[0] > b.length) return undefined;
  return { start: i, end: n[1] + n[0], huffman, bytes: b.subarray(n[1], n[1] + n[0]) };
}

const authorityName = ':authority';

/**
 * fixHeaderBlock rewrites the `:authority` of one HPACK header block when nghttp2 would
 * refuse it; undefined when there is nothing to change (or the block is beyond its scope).
 */
export function fixHeaderBlock(b: Uint8Array): Uint8Array | undefined {
  let i = 0;
  while (i < b.length) {
    const first = b[i]!;
    if (first & 0x80) { // indexed field
      const n = readInt(b, i, 7);
      if (n === undefined) return undefined;
      i = n[1];
      continue;
    }
    if ((first & 0xe0) === 0x20) { // dynamic table size update
      const n = readInt(b, i, 5);
      if (n === undefined) return undefined;
      i = n[1];
      continue;
    }
    // A literal: with incremental indexing (01), without (0000) or never indexed (0001).
    const n = readInt(b, i, first & 0x40 ? 6 : 4);
    if (n === undefined) return undefined;
    let isAuthority = n[0] === 1;
    i = n[1];
    if (n[0] === 0) {
      const name = readStr(b, i);
      if (name === undefined) return undefined;
      const text = name.huffman ? huffmanDecode(name.bytes)
        : String.fromCharCode(...name.bytes);
      isAuthority = text === authorityName;
      i = name.end;
    }
    const value = readStr(b, i);
    if (value === undefined) return undefined;
    if (isAuthority) {
      const text = value.huffman ? huffmanDecode(value.bytes)
        : String.fromCharCode(...value.bytes);
      if (text === undefined) return undefined;
      const fixed = fixAuthorityText(text);
      if (fixed === text) return undefined;
      const encoded = [...writeInt(fixed.length, 7, 0)];
      for (let k = 0; k < fixed.length; k++) encoded.push(fixed.charCodeAt(k));
      const out = new Uint8Array(b.length - (value.end - value.start) + encoded.length);
      out.set(b.subarray(0, value.start), 0);
      out.set(encoded, value.start);
      out.set(b.subarray(value.end), value.start + encoded.length);
      return out;
    }
    i = value.end;
  }
  return undefined;
}

/** prefaceBytes is the HTTP/2 client connection preface's length. */
const prefaceBytes = 24;
/** frameHeaderBytes is an HTTP/2 frame header's length. */
const frameHeaderBytes = 9;
/** frameBytesMax is HTTP/2's default SETTINGS_MAX_FRAME_SIZE, which grpc-js's server keeps:
 * a larger HEADERS frame passes through untouched. */
const frameBytesMax = 16_384;
const HEADERS = 0x1;
const END_HEADERS = 0x4;
const PADDED = 0x8;
const PRIORITY = 0x20;

/**
 * AuthorityRewriter follows a client's HTTP/2 byte stream (preface, then frames) and rewrites
 * the authority in HEADERS frames that carry END_HEADERS; everything else passes unchanged.
 * `push` returns the bytes to hand on; `fixed` says whether any frame needed a rewrite and
 * `sawHeaders` whether a complete HEADERS frame has gone by.
 */
export class AuthorityRewriter {
  private pending = new Uint8Array(0);
  private prefaceLeft = prefaceBytes;
  /** passLeft: payload bytes of the current frame still to pass through unexamined. */
  private passLeft = 0;
  fixed = false;
  sawHeaders = false;

  push(chunk: Uint8Array): Uint8Array[] {
    // A first request whose authority needed nothing: the rest passes unexamined.
    if (this.sawHeaders && !this.fixed && this.pending.length === 0) return [chunk];
    const out: Uint8Array[] = [];
    let b = this.pending.length > 0 ? concat(this.pending, chunk) : chunk;
    this.pending = new Uint8Array(0);
    for (;;) {
      if (this.prefaceLeft > 0) {
        const n = Math.min(this.prefaceLeft, b.length);
        if (n > 0) out.push(b.subarray(0, n));
        this.prefaceLeft -= n;
        b = b.subarray(n);
        if (this.prefaceLeft > 0) return out;
      }
      if (this.passLeft > 0) {
        const n = Math.min(this.passLeft, b.length);
        if (n > 0) out.push(b.subarray(0, n));
        this.passLeft -= n;
        b = b.subarray(n);
        if (this.passLeft > 0) return out;
      }
      if (b.length < frameHeaderBytes) break;
      const length = (b[0]! << 16) | (b[1]! << 8) | b[2]!;
      const type = b[3]!;
      const flags = b[4]!;
      if (type !== HEADERS || (flags & END_HEADERS) === 0 || length > frameBytesMax) {
        out.push(b.subarray(0, frameHeaderBytes));
        b = b.subarray(frameHeaderBytes);
        this.passLeft = length;
        continue;
      }
      if (b.length < frameHeaderBytes + length) break;
      out.push(this.headers(b.subarray(0, frameHeaderBytes + length)));
      b = b.subarray(frameHeaderBytes + length);
    }
    if (b.length > 0) this.pending = b.slice();
    return out;
  }

  /** headers returns a complete HEADERS frame, its authority fixed if it needs it. */
  private headers(frame: Uint8Array): Uint8Array {
    this.sawHeaders = true;
    const flags = frame[4]!;
    const payload = frame.subarray(frameHeaderBytes);
    let start = 0;
    let padLength = 0;
    if (flags & PADDED) {
      padLength = payload[0] ?? 0;
      start = 1;
    }
    if (flags & PRIORITY) start += 5;
    const end = payload.length - padLength;
    if (end < start) return frame;
    const block = fixHeaderBlock(payload.subarray(start, end));
    if (block === undefined) return frame;
    const length = start + block.length + padLength;
    if (length > frameBytesMax) return frame;
    this.fixed = true;
    const out = new Uint8Array(frameHeaderBytes + length);
    out.set(frame.subarray(0, frameHeaderBytes), 0);
    out[0] = (length >> 16) & 0xff;
    out[1] = (length >> 8) & 0xff;
    out[2] = length & 0xff;
    out.set(payload.subarray(0, start), frameHeaderBytes);
    out.set(block, frameHeaderBytes + start);
    out.set(payload.subarray(end), frameHeaderBytes + start + block.length);
    return out;
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}
