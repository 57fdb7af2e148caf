import net from 'node:net';

/**
 * StrictChunkReader reads an HTTP/1.1 response from a raw socket the way Python's urllib3
 * (and so `requests`) does: a chunk is handed out only once its size line, all of its data
 * AND the CRLF that ends it have arrived. A server that sends a chunk's CRLF late (with the
 * next chunk) holds every message back until the next write — which is what these tests
 * catch. It also checks the framing strictly (hex size, exact CRLFs, no Content-Length beside
 * Transfer-Encoding, as Node's llhttp requires) and fails on anything else.
 */
export class StrictChunkReader {
  /** status and headers (lower-case names) once the head has been read. */
  status = 0;
  headers: Record<string, string> = {};
  /** ended: the last chunk (size 0) and the trailer section have been read. */
  ended = false;
  /** closed: the server closed the connection. */
  closed = false;

  private buf = Buffer.alloc(0);
  private headRead = false;
  private readonly chunks: string[] = [];
  private error: Error | undefined;
  private wake: (() => void) | undefined;

  constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.parse();
    });
    socket.on('close', () => {
      this.closed = true;
      this.notify();
    });
    socket.on('error', (e) => {
      this.error ??= e;
      this.notify();
    });
  }

  /** connect opens a socket to url's host and port and sends `request` (raw bytes). */
  static async open(url: string, request: string): Promise<StrictChunkReader> {
    const u = new URL(url);
    const socket = net.connect(Number(u.port), u.hostname);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const reader = new StrictChunkReader(socket);
    socket.write(request);
    return reader;
  }

  /**
   * next resolves with the data of the next complete chunk, or undefined once the response
   * has ended; it rejects when the framing is wrong, the connection closes mid-response, or
   * nothing complete arrives within timeoutMs.
   */
  async next(timeoutMs: number): Promise<string | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.error !== undefined) throw this.error;
      const c = this.chunks.shift();
      if (c !== undefined) return c;
      if (this.ended) return undefined;
      if (this.closed) throw new Error('connection closed before the response ended');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no complete chunk within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }

  /** nextMessage returns the next newline-terminated message, skipping whitespace-only chunks
   * (blank to every JSON, line and SSE reader). A message larger than the server's write piece
   * (streamWriteBytesMax) spans several chunks, all sent at once, as Go's server cuts them. */
  async nextMessage(timeoutMs: number): Promise<string | undefined> {
    const deadline = Date.now() + timeoutMs;
    let text = '';
    for (;;) {
      const c = await this.next(Math.max(1, deadline - Date.now()));
      if (c === undefined) return text === '' ? undefined : text;
      text += c;
      if (text.trim() === '') text = '';
      else if (text.endsWith('\n')) return text;
    }
  }

  /** pending: complete chunks not yet taken with next(). */
  get pending(): number {
    return this.chunks.length;
  }

  /** close destroys the socket. */
  close(): void {
    this.socket.destroy();
  }

  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  private fail(message: string): void {
    this.error ??= new Error(`bad HTTP framing: ${message}`);
    this.socket.destroy();
    this.notify();
  }

  private parse(): void {
    if (!this.headRead) {
      const end = this.buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const lines = this.buf.subarray(0, end).toString('latin1').split('\r\n');
      this.buf = this.buf.subarray(end + 4);
      const m = /^HTTP\/1\.1 (\d{3}) /.exec(lines[0] ?? '');
      if (m === null) return this.fail(`status line ${JSON.stringify(lines[0])}`);
      this.status = Number(m[1]);
      for (const line of lines.slice(1)) {
        const i = line.indexOf(':');
        if (i <= 0) return this.fail(`header line ${JSON.stringify(line)}`);
        this.headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
      }
      this.headRead = true;
      if (this.headers['transfer-encoding'] !== 'chunked') {
        return this.fail(`not chunked: ${JSON.stringify(this.headers)}`);
      }
      if (this.headers['content-length'] !== undefined) {
        return this.fail('Content-Length beside Transfer-Encoding');
      }
    }
    while (!this.ended) {
      const eol = this.buf.indexOf('\r\n');
      if (eol < 0) return;
      const sizeLine = this.buf.subarray(0, eol).toString('latin1');
      const m = /^([0-9a-fA-F]+)(;.*)?$/.exec(sizeLine);
      if (m === null) return this.fail(`chunk size line ${JSON.stringify(sizeLine)}`);
      const size = parseInt(m[1]!, 16);
      if (size === 0) {
        // last-chunk, then the trailer section: here no trailers, so one more CRLF.
        if (this.buf.length < eol + 4) return;
        if (this.buf.subarray(eol + 2, eol + 4).toString('latin1') !== '\r\n') {
          return this.fail('trailer section');
        }
        this.buf = this.buf.subarray(eol + 4);
        this.ended = true;
        this.notify();
        return;
      }
      const start = eol + 2;
      if (this.buf.length < start + size + 2) return; // data and its CRLF not all here yet
      if (this.buf.subarray(start + size, start + size + 2).toString('latin1') !== '\r\n') {
        return this.fail('chunk data not followed by CRLF');
      }
      this.chunks.push(this.buf.subarray(start, start + size).toString('utf8'));
      this.buf = this.buf.subarray(start + size + 2);
      this.notify();
    }
  }
}

/** httpRequest builds a raw HTTP/1.1 request with a complete body. */
export function httpRequest(method: string, path: string, body = '',
  headers: Record<string, string> = {}): string {
  let head = `${method} ${path} HTTP/1.1\r\nHost: test\r\n`;
  for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
  if (method !== 'GET') head += `Content-Length: ${Buffer.byteLength(body)}\r\n`;
  return `${head}\r\n${body}`;
}

/** chunk frames text as one chunk of a chunked request body ('' gives the last chunk). */
export function chunk(text: string): string {
  const n = Buffer.byteLength(text);
  return n === 0 ? '0\r\n\r\n' : `${n.toString(16)}\r\n${text}\r\n`;
}
