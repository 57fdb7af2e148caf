/**
 * http1: just enough HTTP/1.1 for a load generator on raw sockets — request bytes built once,
 * and an incremental response parser (Content-Length, chunked, or a body that lasts until the
 * connection closes, as a watch stream may). Pure: it sees bytes, not sockets, so it can be
 * tested on responses split at every offset.
 */

/** buildPost returns the complete bytes of a keep-alive POST with a JSON body. */
export function buildPost(host: string, path: string, body: string): Buffer {
  const b = Buffer.from(body, 'utf8');
  const head = `POST ${path} HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\n` +
    `Content-Length: ${b.length}\r\n\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), b]);
}

/** ResponseHead is a parsed status line and the headers the parser needs. */
export interface ResponseHead {
  status: number;
  contentLength: number | undefined;
  chunked: boolean;
}

/** headerBytesMax bounds a response head; a longer one is a protocol error. */
export const headerBytesMax = 16 * 1024;

/** parseHead parses a response head (without the blank line), or throws. */
export function parseHead(text: string): ResponseHead {
  const lines = text.split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '');
  if (m === null) throw new Error(`bad status line ${JSON.stringify(lines[0])}`);
  let contentLength: number | undefined;
  let chunked = false;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const c = line.indexOf(':');
    if (c < 0) continue;
    const name = line.slice(0, c).trim().toLowerCase();
    const value = line.slice(c + 1).trim();
    if (name === 'content-length') contentLength = Number(value);
    else if (name === 'transfer-encoding') chunked = value.toLowerCase().includes('chunked');
  }
  return { status: Number(m[1]), contentLength: chunked ? undefined : contentLength, chunked };
}

/** ResponseEvents are the parser's callbacks. */
export interface ResponseEvents {
  /** onHead runs once a response's head is parsed. */
  onHead?(head: ResponseHead): void;
  /** onBody receives body bytes (de-chunked) as they arrive; slices of the input. */
  onBody?(data: Buffer): void;
  /** onEnd runs when a response is complete (never for a body that lasts until close). */
  onEnd(head: ResponseHead): void;
}

const CRLFCRLF = Buffer.from('\r\n\r\n');

/**
 * ResponseParser parses back-to-back responses on one connection. feed() takes each chunk
 * read from the socket; callbacks fire as responses complete.
 */
export class ResponseParser {
  private buf: Buffer = Buffer.alloc(0);
  private head: ResponseHead | undefined;
  /** remaining body bytes of a Content-Length body or of the current chunk */
  private remaining = 0;
  /** chunked state: 'size' reading a size line, 'data' in a chunk, 'crlf' after a chunk's
   * data, 'trailer' after the last chunk */
  private chunkState: 'size' | 'data' | 'crlf' | 'trailer' = 'size';

  constructor(private readonly ev: ResponseEvents) {}

  /** feed parses as much of the input as it can; throws on a protocol error. */
  feed(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    let pos = 0;
    for (;;) {
      if (this.head === undefined) {
        const end = this.buf.indexOf(CRLFCRLF, pos);
        if (end < 0) {
          if (this.buf.length - pos > headerBytesMax) throw new Error('response head too long');
          break;
        }
        this.head = parseHead(this.buf.toString('latin1', pos, end));
        pos = end + 4;
        this.ev.onHead?.(this.head);
        if (this.head.chunked) this.chunkState = 'size';
        else this.remaining = this.head.contentLength ?? Infinity;
        if (!this.head.chunked && this.remaining === 0) this.finish();
        continue;
      }
      const h = this.head;
      if (!h.chunked) {
        const n = Math.min(this.remaining, this.buf.length - pos);
        if (n > 0) this.ev.onBody?.(this.buf.subarray(pos, pos + n));
        pos += n;
        this.remaining -= n;
        if (this.remaining === 0) {
          this.finish();
          continue;
        }
        break;
      }
      // chunked
      if (this.chunkState === 'size' || this.chunkState === 'crlf' ||
        this.chunkState === 'trailer') {
        const eol = this.buf.indexOf('\r\n', pos, 'latin1');
        if (eol < 0) break;
        const line = this.buf.toString('latin1', pos, eol);
        pos = eol + 2;
        if (this.chunkState === 'crlf') {
          if (line !== '') throw new Error('missing CRLF after chunk');
          this.chunkState = 'size';
        } else if (this.chunkState === 'trailer') {
          if (line === '') this.finish();
        } else {
          const size = parseInt(line.split(';')[0]!, 16);
          if (!Number.isFinite(size)) throw new Error(`bad chunk size ${JSON.stringify(line)}`);
          if (size === 0) this.chunkState = 'trailer';
          else {
            this.remaining = size;
            this.chunkState = 'data';
          }
        }
        continue;
      }
      const n = Math.min(this.remaining, this.buf.length - pos);
      if (n > 0) this.ev.onBody?.(this.buf.subarray(pos, pos + n));
      pos += n;
      this.remaining -= n;
      if (this.remaining > 0) break;
      this.chunkState = 'crlf';
    }
    this.buf = pos >= this.buf.length ? Buffer.alloc(0) : this.buf.subarray(pos);
  }

  private finish(): void {
    const h = this.head!;
    this.head = undefined;
    this.remaining = 0;
    this.chunkState = 'size';
    this.ev.onEnd(h);
  }
}

/** countOccurrences counts needle in a stream fed piece by piece, including occurrences that
 * straddle two pieces. */
export class OccurrenceCounter {
  private tail: Buffer = Buffer.alloc(0);
  count = 0;

  constructor(private readonly needle: Buffer) {}

  /** feed scans the next piece of the stream. */
  feed(data: Buffer): void {
    const hay = this.tail.length === 0 ? data : Buffer.concat([this.tail, data]);
    let i = hay.indexOf(this.needle);
    let after = 0;
    while (i >= 0) {
      this.count++;
      after = i + this.needle.length;
      i = hay.indexOf(this.needle, after);
    }
    const keep = Math.min(this.needle.length - 1, hay.length - after);
    this.tail = Buffer.from(hay.subarray(hay.length - keep));
  }
}
