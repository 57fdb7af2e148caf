import http from 'node:http';

/** streamWaitMs bounds a wait for the next line or event of a stream: generous, so that only
 * a line that never comes (a bug) reaches it, never a slow machine. */
export const streamWaitMs = 30_000;

/**
 * Queue is what the streams below share: parsed items as they arrive, a waiter woken on each
 * arrival or on the end, and how the response ended.
 */
class Queue<T> {
  /** ended: no more items will arrive (the response ended, closed or failed). */
  ended = false;
  /** endedCleanly: the response ended with its terminating chunk, as a server ends it on
   * purpose; a connection cut by a dying process or a reset leaves it false. */
  endedCleanly = false;
  private readonly items: T[] = [];
  private wake: (() => void) | undefined;

  push(item: T): void {
    this.items.push(item);
    this.wake?.();
  }

  end(clean: boolean): void {
    if (clean) this.endedCleanly = true;
    this.ended = true;
    this.wake?.();
  }

  /** next resolves with the next item; rejects with 'stream ended' once none can come, or
   * with `what` after timeoutMs. */
  async next(timeoutMs: number, what: string): Promise<T> {
    const deadline = performance.now() + timeoutMs;
    while (this.items.length === 0) {
      if (this.ended) throw new Error('stream ended');
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.wake = undefined;
    }
    return this.items.shift()!;
  }

  /** waitEnd resolves once the stream has ended, dropping what still arrives. */
  async waitEnd(timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (!this.ended) {
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`the stream did not end within ${timeoutMs} ms`);
      await this.next(left, 'the end of the stream').catch(() => undefined);
    }
  }
}

/**
 * LineStream is one streaming HTTP request to etcd's grpc-gateway stream routes
 * (/v3/watch, /v3/lease/keepalive): JSON objects written as the test goes, one JSON answer per
 * line read as they arrive.
 */
export class LineStream {
  status = 0;
  private readonly req: http.ClientRequest;
  private readonly q = new Queue<any>();
  /** parts: the text read since the last end of line. */
  private parts: string[] = [];
  private res: http.IncomingMessage | undefined;

  constructor(url: string, path: string) {
    this.req = http.request(new URL(path, url), {
      method: 'POST', agent: false,
      headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
    });
    this.req.on('response', (res) => {
      this.res = res;
      this.status = res.statusCode ?? 0;
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        // Linear in the bytes read: a line of megabytes (a watch catching up a long history)
        // arrives in many pieces, and only a piece's own text is searched for its end.
        let start = 0;
        let i;
        while ((i = d.indexOf('\n', start)) >= 0) {
          const line = (this.parts.join('') + d.slice(start, i)).trim();
          this.parts = [];
          if (line !== '') this.q.push(JSON.parse(line));
          start = i + 1;
        }
        if (start < d.length) this.parts.push(d.slice(start));
      });
      const done = (clean: boolean) => () => {
        // A response cut mid-line leaves half a line: only a clean end may leave a last line.
        const rest = this.parts.join('').trim();
        this.parts = [];
        if (clean && rest !== '') this.q.push(JSON.parse(rest));
        this.q.end(clean);
      };
      res.on('end', done(true));
      res.on('close', done(false));
      res.on('error', done(false));
    });
    this.req.on('error', () => this.q.end(false));
    this.req.flushHeaders();
  }

  /** ended: the response is over (no more lines). */
  get ended(): boolean {
    return this.q.ended;
  }

  /** endedCleanly: the server ended the response (not a cut connection). */
  get endedCleanly(): boolean {
    return this.q.endedCleanly;
  }

  send(o: unknown): void {
    this.req.write(JSON.stringify(o));
  }

  /** end finishes the request body: no more requests on this stream. The server answers
   * what is left; a watch response stays open. (A body left open is cut by uWS ~10 s after
   * it opened: see docs/watch.md.) */
  end(): void {
    this.req.end();
  }

  /** pause stops reading the socket (a slow client); resume reads again. */
  pause(): void {
    this.res?.pause();
  }
  resume(): void {
    this.res?.resume();
  }

  /** slowDown makes a slow reader: after each chunk read, the socket rests for `ms`. */
  slowDown(ms: number): void {
    this.req.once('response', (res) => {
      res.on('data', () => {
        res.pause();
        setTimeout(() => res.resume(), ms);
      });
    });
  }

  /** next is the next answer line (the whole object, `{"result":…}` or `{"error":…}`). */
  next(timeoutMs = streamWaitMs): Promise<any> {
    return this.q.next(timeoutMs, 'a response line');
  }

  /** result is the next answer's `result`. */
  async result(timeoutMs?: number): Promise<any> {
    const o = await this.next(timeoutMs);
    if (o.result === undefined) throw new Error(`not a result: ${JSON.stringify(o)}`);
    return o.result;
  }

  /** create sends a watch create_request and returns its `created` answer. */
  async create(req: Record<string, unknown>): Promise<any> {
    this.send({ create_request: req });
    const r = await this.result();
    if (r.created !== true) throw new Error(`expected created: ${JSON.stringify(r)}`);
    return r;
  }

  /** waitEnd resolves once the server ended the response. */
  waitEnd(timeoutMs = streamWaitMs): Promise<void> {
    return this.q.waitEnd(timeoutMs);
  }

  close(): void {
    this.req.destroy();
  }
}

/** SseEvent is one Server-Sent Event of /v1/watch. */
export interface SseEvent {
  id?: string;
  data: any;
}

/** SseStream reads a /v1/watch response (Server-Sent Events) event by event. */
export class SseStream {
  contentType = '';
  private readonly req: http.ClientRequest;
  private readonly q = new Queue<SseEvent>();
  private buf = '';

  constructor(url: string, body: unknown, lastEventId?: string) {
    this.req = http.request(new URL('/v1/watch', url), {
      method: 'POST', agent: false,
      headers: {
        'content-type': 'application/json',
        ...(lastEventId !== undefined ? { 'last-event-id': lastEventId } : {}),
      },
    });
    this.req.on('response', (res) => {
      this.contentType = String(res.headers['content-type'] ?? '');
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        this.buf += d;
        let i;
        while ((i = this.buf.indexOf('\n\n')) >= 0) {
          const block = this.buf.slice(0, i);
          this.buf = this.buf.slice(i + 2);
          const ev: { id?: string; data?: any } = {};
          for (const line of block.split('\n')) {
            if (line.startsWith('id: ')) ev.id = line.slice(4);
            else if (line.startsWith('data: ')) ev.data = JSON.parse(line.slice(6));
          }
          if (ev.data !== undefined) this.q.push(ev as SseEvent);
        }
      });
      res.on('end', () => this.q.end(true));
      res.on('close', () => this.q.end(false));
      res.on('error', () => this.q.end(false));
    });
    this.req.on('error', () => this.q.end(false));
    this.req.end(JSON.stringify(body));
  }

  /** ended / endedCleanly: as LineStream's. */
  get ended(): boolean {
    return this.q.ended;
  }
  get endedCleanly(): boolean {
    return this.q.endedCleanly;
  }

  next(timeoutMs = streamWaitMs): Promise<SseEvent> {
    return this.q.next(timeoutMs, 'an event');
  }

  waitEnd(timeoutMs = streamWaitMs): Promise<void> {
    return this.q.waitEnd(timeoutMs);
  }

  close(): void {
    this.req.destroy();
  }
}
