/**
 * AsciiWriter builds one ASCII text (the gateway's JSON answers) in a reused byte buffer and
 * returns it as one flat string. A range of 100 keys written by string concatenation was ≈ 600
 * string pieces and 200 base64 strings (each through a Buffer), all garbage by the time the
 * answer left: the gateway allocated ≈ 167 KiB per such range (measured in session 11; see the
 * performance notes in docs/). Here the only allocation is the finished string.
 *
 * Not reentrant: one text at a time (`start` … `text`), which the synchronous encoders ensure.
 */

/** asciiWriterBytesMax: the buffer shrinks back to its first size after a text larger than
 * this, so one huge answer does not keep its buffer for good. */
const asciiWriterBytesMax = 1024 * 1024;
const asciiWriterFirstBytes = 16 * 1024;

/** base64Alphabet: the standard alphabet, as byte values. */
const base64Alphabet = Uint8Array.from(
  'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/', (c) => c.charCodeAt(0));
/** padByte: '='. */
const padByte = 0x3d;

/** AsciiWriter: see the file comment. */
export class AsciiWriter {
  /** buf: a Buffer, for its native latin1 decode in `text`; what is read was written first. */
  private buf = Buffer.allocUnsafeSlow(asciiWriterFirstBytes);
  private pos = 0;

  /** start begins a new text. */
  start(): void {
    this.pos = 0;
  }

  /** ascii appends text whose characters are all below 0x80. */
  ascii(s: string): void {
    this.room(s.length);
    const b = this.buf;
    let p = this.pos;
    for (let i = 0; i < s.length; i++) b[p++] = s.charCodeAt(i);
    this.pos = p;
  }

  /** int appends a number as its decimal text, as a template literal writes it. */
  int(n: number): void {
    this.ascii(String(n));
  }

  /**
   * base64 appends the standard padded base64 of a byte string (each character one byte, as
   * src/bytes.ts's Bytes): the same text as `Buffer.from(s, 'latin1').toString('base64')`,
   * which keeps only each character's low byte.
   */
  base64(s: string): void {
    const n = s.length;
    this.room(Math.ceil(n / 3) * 4);
    const b = this.buf;
    const a = base64Alphabet;
    let p = this.pos;
    let i = 0;
    for (; i + 2 < n; i += 3) {
      const v = ((s.charCodeAt(i) & 0xff) << 16) | ((s.charCodeAt(i + 1) & 0xff) << 8) |
        (s.charCodeAt(i + 2) & 0xff);
      b[p++] = a[v >>> 18]!;
      b[p++] = a[(v >>> 12) & 63]!;
      b[p++] = a[(v >>> 6) & 63]!;
      b[p++] = a[v & 63]!;
    }
    if (i < n) {
      const two = i + 1 < n;
      const v = ((s.charCodeAt(i) & 0xff) << 16) | (two ? (s.charCodeAt(i + 1) & 0xff) << 8 : 0);
      b[p++] = a[v >>> 18]!;
      b[p++] = a[(v >>> 12) & 63]!;
      b[p++] = two ? a[(v >>> 6) & 63]! : padByte;
      b[p++] = padByte;
    }
    this.pos = p;
  }

  /** text returns what was written since `start`, as one string. */
  text(): string {
    const out = this.buf.toString('latin1', 0, this.pos);
    if (this.buf.length > asciiWriterBytesMax) {
      this.buf = Buffer.allocUnsafeSlow(asciiWriterFirstBytes);
    }
    return out;
  }

  /** room makes space for n more bytes. */
  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const bigger = Buffer.allocUnsafeSlow(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(bigger, 0, 0, this.pos);
    this.buf = bigger;
  }
}
