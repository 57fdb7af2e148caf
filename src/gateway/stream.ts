import { Writable } from 'node:stream';
import type HyperExpress from 'hyper-express';
import { EtcdError } from '../errors.js';
import { JsonStreamSplitter } from '../api/json-stream.js';
import {
  streamBodyOpenMsMax, streamWriteBytesMax, uwsReceiveBytesPerTimeout,
} from '../constants.js';

/**
 * stream: the plumbing of every long-lived HTTP response (/v3/watch, /v3/lease/keepalive,
 * /v1/watch): a response writer that puts each message on the wire complete, and a reader of
 * request bodies made of concatenated JSON values. docs/streams.md explains the choices.
 *
 * Why a writer of our own: the uWebSockets build under hyper-express (uWS.js 20.30) frames a
 * chunked response as `CRLF size CRLF data` per write — the CRLF that ENDS a chunk leaves only
 * with the next write (or the end of the response). Strict chunk readers (Python's urllib3 and
 * requests, which yield a chunk only after its CRLF) then see each message only when the next
 * one arrives; a quiet key's last change never. No uWS call writes bytes without that framing
 * except `end`/`tryEnd`, which add a Content-Length (invalid beside Transfer-Encoding). So each
 * message is followed, in the same cork (one send), by a one-byte chunk holding "\n": its
 * leading CRLF completes the message's chunk at once, and the "\n" chunk is completed by
 * whatever comes next. A whitespace-only chunk is exactly what etcd 3.4 itself sends after
 * every message larger than 2 KiB (Go flushes grpc-gateway's "\n" delimiter as its own chunk),
 * so clients of etcd already accept it, and it is blank to every JSON, line and SSE parser.
 */

/** chunkTerminator is the whitespace written after each message (see the file comment). */
const chunkTerminator = '\n';

/**
 * ChunkedStream is one long-lived HTTP/1.1 response with chunked transfer coding whose every
 * message is complete on the wire — data and the CRLF that ends its chunk — when `write`
 * returns (or, if the client reads slower than we write, as soon as the socket drains).
 *
 * Backpressure: uWS reports a write that could not leave at once (its buffer for this socket
 * was not empty); the `onFlushed` callbacks of such writes wait for the socket to drain. A
 * write inside a cork only learns of the previous cork's failure, so a stream is held back one
 * write late — bounded, since every caller bounds what it writes before `onFlushed`. On drain,
 * uWS flushes its buffer only if our writable handler writes something (with a handler
 * registered it does not drain by itself), so the handler writes one more terminator.
 */
export class ChunkedStream {
  private started = false;
  private done = false;
  /** waiting holds the onFlushed callbacks of writes that met backpressure, in order. */
  private waiting: (() => void)[] = [];

  constructor(
    private readonly req: HyperExpress.Request,
    private readonly res: HyperExpress.Response,
    private readonly contentType: string,
    private readonly headers: Readonly<Record<string, string>> = {},
  ) {}

  /** closed: the response is complete, or the client has gone. */
  get closed(): boolean {
    return this.done || this.res.completed;
  }

  /** started: the status line and headers have been written. */
  get isStarted(): boolean {
    return this.started;
  }

  /** onClose calls fn once the client goes away or the response has ended. */
  onClose(fn: () => void): void {
    this.res.once('close', fn);
  }

  /**
   * start writes the status line and headers (200). Called by the first write; call it
   * earlier to send the headers before any message.
   */
  start(): void {
    if (this.started || this.closed) return;
    this.started = true;
    this.res.status(200).header('content-type', this.contentType);
    for (const [k, v] of Object.entries(this.headers)) this.res.header(k, v);
    // hyper-express writes status and headers with the first body write; an empty one writes
    // nothing else (uWS ignores empty chunks), so every body byte after it is ours.
    this.res.write('');
    this.res.drain(() => this.onWritable());
  }

  /**
   * write sends messages, each as its own chunk (a client that reads one chunk as one message
   * gets one message), all complete on the wire at once; onFlushed runs once uWS has handed
   * them to the socket (at once, unless the client reads slower than we write).
   */
  write(messages: string | readonly string[], onFlushed?: () => void): void {
    if (this.closed) return;
    this.start();
    const raw = this.res.raw;
    let drained = true;
    if (utf8BytesAtMost(messages) <= streamWriteBytesMax) {
      this.res.atomic(() => {
        drained = writeEach(raw, messages);
        drained = raw.write(chunkTerminator) && drained;
      });
    } else {
      // Large: pieces of at most streamWriteBytesMax, each corked on its own (this uWS build
      // loses a corked write larger than its cork buffer while the socket is backed up).
      for (const piece of piecesOf(messages)) {
        this.res.atomic(() => { drained = raw.write(piece) && drained; });
      }
      this.res.atomic(() => { drained = raw.write(chunkTerminator) && drained; });
    }
    if (onFlushed === undefined) return;
    if (drained && this.waiting.length === 0) onFlushed();
    else this.waiting.push(onFlushed);
  }

  /**
   * end writes `lastMessages` (if any; the end of the response completes their chunk, so no
   * terminator is needed) and ends the response now, in one send. Once the request body has
   * been read, hyper-express ends it (a stream never started answers 200 with an empty body);
   * while the body is still streaming in (hyper-express would wait for it), uWS writes the
   * last chunk directly, the rest of the body is read and dropped, and uWS closes the idle
   * connection later.
   */
  end(lastMessages?: string | readonly string[]): void {
    if (this.closed) return;
    if (lastMessages !== undefined || !this.req.received) this.start();
    this.done = true;
    this.waiting = [];
    if (!this.started) this.res.status(200).header('content-type', this.contentType);
    const raw = this.res.raw;
    const now = this.started && !this.req.received;
    try {
      // Small last messages leave with the end in one send; large ones (a batch of keep-alive
      // answers) first, in pieces corked one by one, as write() does.
      const small = lastMessages === undefined ||
        utf8BytesAtMost(lastMessages) <= streamWriteBytesMax;
      if (!small) {
        for (const piece of piecesOf(lastMessages)) this.res.atomic(() => { raw.write(piece); });
      }
      this.res.atomic(() => {
        if (small && lastMessages !== undefined) writeEach(raw, lastMessages);
        if (now) raw.end();
        else this.res.end();
      });
    } catch {
      // the socket is gone already
    }
    // Answered: hyper-express must not touch the response again (it would wait for the body).
    // Its count of pending requests keeps this one; only its graceful shutdown(), which the
    // server does not use, reads that count.
    if (now) this.res.completed = true;
  }

  /** destroy closes the connection at once, dropping whatever uWS still buffers for it (a
   * client that stopped reading: the memory is freed now, not when uWS times it out). */
  destroy(): void {
    if (this.res.completed) return;
    this.done = true;
    this.waiting = [];
    try {
      this.res.raw.close();
    } catch {
      // gone already
    }
  }

  private onWritable(): boolean {
    if (this.closed) return true;
    const raw = this.res.raw;
    let drained = false;
    this.res.atomic(() => {
      drained = raw.write(chunkTerminator);
    });
    if (drained) {
      const ready = this.waiting;
      this.waiting = [];
      for (const fn of ready) fn();
    }
    return drained;
  }
}

/** utf8BytesAtMost bounds the UTF-8 size of messages (at most 3 bytes per UTF-16 unit). */
function utf8BytesAtMost(messages: string | readonly string[]): number {
  if (typeof messages === 'string') return messages.length * 3;
  let n = 0;
  for (const m of messages) n += m.length * 3;
  return n;
}

/** piecesOf cuts messages into pieces of at most streamWriteBytesMax bytes; a short message
 * stays whole (one chunk), a long one becomes several chunks, as Go's server cuts them. */
function piecesOf(messages: string | readonly string[]): (string | Buffer)[] {
  const out: (string | Buffer)[] = [];
  for (const m of typeof messages === 'string' ? [messages] : messages) {
    if (m.length * 3 <= streamWriteBytesMax) {
      out.push(m);
      continue;
    }
    const bytes = Buffer.from(m, 'utf8');
    for (let i = 0; i < bytes.length; i += streamWriteBytesMax) {
      out.push(bytes.subarray(i, i + streamWriteBytesMax));
    }
  }
  return out;
}

function writeEach(raw: HyperExpress.Response['raw'], messages: string | readonly string[]):
  boolean {
  if (typeof messages === 'string') return raw.write(messages);
  let drained = true;
  for (const m of messages) drained = raw.write(m) && drained;
  return drained;
}

/** JsonStreamHandlers receive what readJsonStream reads. */
export interface JsonStreamHandlers {
  /** values gets the text of each top-level JSON value completed by one chunk of the body,
   * in order (several requests that arrive together can be answered together). */
  values(texts: string[]): void;
  /** end: the body ended (pending: it ended inside a value). */
  end(pending: boolean): void;
  /** error: the body is not a sequence of JSON values (EtcdError, in Go's words). */
  error(e: unknown): void;
  /** deadline: the body is still open streamBodyOpenMsMax after the request (or after the
   * last uwsReceiveBytesPerTimeout bytes): uWS will cut the connection soon. */
  deadline(): void;
}

/**
 * readJsonStream reads a request body made of concatenated JSON values as it arrives.
 *
 * The deadline: while a request body is streaming, uWS arms a 10 s timer (4 s ticks, so it
 * fires 8–12 s later) and re-arms it only after 160 KiB more (its slowloris guard, compiled
 * in); when it fires it closes the socket without a word. A client that keeps the body open
 * to send more requests later is therefore cut whatever flows. `deadline` fires before the
 * earliest cut, so the route can end the response with an explicit last message instead.
 */
export function readJsonStream(req: HyperExpress.Request, on: JsonStreamHandlers): void {
  if (req.received) {
    // No body at all (Content-Length: 0, or none): hyper-express never ends a pipe for it, so
    // the end is reported here (etcd answers an empty keep-alive body with an empty 200).
    queueMicrotask(() => on.end(false));
    return;
  }
  const splitter = new JsonStreamSplitter();
  let failed = false;
  let bytes = 0;
  let timer: NodeJS.Timeout | undefined = setTimeout(() => {
    timer = undefined;
    if (!failed) on.deadline();
  }, streamBodyOpenMsMax);
  timer.unref();
  const stop = (): void => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
  };
  // hyper-express streams a request body only through pipe(): its Request is not a plain
  // Readable ('data' listeners alone never fire).
  req.pipe(new Writable({
    write(chunk: Buffer, _enc, done) {
      bytes += chunk.length;
      if (bytes >= uwsReceiveBytesPerTimeout && timer !== undefined) {
        bytes = 0;
        timer.refresh();
      }
      if (!failed) {
        try {
          const texts = splitter.push(chunk.toString('utf8'));
          if (texts.length > 0) on.values(texts);
        } catch (e) {
          failed = true;
          stop();
          on.error(e);
        }
      }
      done();
    },
    final(done) {
      stop();
      if (!failed) on.end(splitter.pending);
      done();
    },
    destroy(err, done) {
      stop();
      done(err);
    },
  }));
}

/** bodyOpenError is the last message of a stream whose request body stayed open past
 * streamBodyOpenMsMax (etcd's Unavailable: a client reconnects, from its last revision + 1). */
export function bodyOpenError(): EtcdError {
  return new EtcdError('STREAM_BODY_OPEN', `myetcd: request body still open after ${
    streamBodyOpenMsMax / 1000} s: the stream ends; send the requests, then end the body ` +
    '(HTTP/1.1 is not full duplex: etcd\'s gateway reads no body once it answers)');
}
