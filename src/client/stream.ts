import { setTimeout as sleep } from 'node:timers/promises';

/**
 * stream: reading grpc-gateway's streaming answers, which are JSON messages one per line
 * (`{"result": {...}}` or `{"error": {...}}`), as they arrive.
 */

/** jsonLines yields each JSON line of a streaming body as it arrives. */
export async function* jsonLines(
  body: ReadableStream<Uint8Array>,
): AsyncGenerator<Record<string, unknown>> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      buf += decoder.decode(value, { stream: true });
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (line !== '') yield JSON.parse(line) as Record<string, unknown>;
      }
    }
    const rest = (buf + decoder.decode()).trim();
    if (rest !== '') yield JSON.parse(rest) as Record<string, unknown>;
  } finally {
    reader.cancel().catch(() => undefined);
  }
}

/** streamRetryMs is the pause before reopening a stream that ended or broke. */
export const streamRetryMs = 100;
/** streamBackoffMsMax caps the pause between failed attempts to open a stream. */
export const streamBackoffMsMax = 3_000;

/** ResumableOptions describe a stream that `resumable` keeps open. */
export interface ResumableOptions<M> {
  /** signal ends the stream (the iteration then ends without error). */
  signal: AbortSignal;
  /** reconnectsMax bounds consecutive failures (0: never reopen). */
  reconnectsMax: number;
  /** open connects from the caller's resume point and returns the stream's messages. */
  open(signal: AbortSignal): Promise<AsyncIterable<M>>;
  /** final tells an error no reopening can cure (a refusal); it is thrown at once. */
  final(e: unknown): boolean;
  /** healthy tells a message that proves the stream works (resets the failure count). */
  healthy(m: M): boolean;
  /** lost makes the error thrown when the stream broke too often (default: the last). */
  lost?(e: unknown): unknown;
}

/**
 * resumable yields the messages of a stream (a watch), reopening it when it ends or breaks:
 * after a pause that doubles with each failed attempt to open it, or `streamRetryMs` after a
 * stream that worked. The caller keeps its resume point (the revision after the last event it
 * took) and `open` starts from it, so nothing is lost or repeated. One loop for the /v3 and
 * /v1 watches.
 */
export async function* resumable<M>(o: ResumableOptions<M>): AsyncGenerator<M> {
  const pause = (ms: number) => sleep(ms, undefined, { signal: o.signal }).catch(() => undefined);
  let failures = 0;
  while (!o.signal.aborted) {
    let messages: AsyncIterable<M>;
    try {
      messages = await o.open(o.signal);
    } catch (e) {
      if (o.signal.aborted) return;
      if (o.final(e) || ++failures > o.reconnectsMax) throw e;
      await pause(Math.min(streamRetryMs * 2 ** failures, streamBackoffMsMax));
      continue;
    }
    try {
      for await (const m of messages) {
        if (o.healthy(m)) failures = 0;
        yield m;
      }
      if (o.reconnectsMax === 0) failures = 1;
    } catch (e) {
      if (o.signal.aborted) return;
      if (o.final(e)) throw e;
      if (++failures > o.reconnectsMax) throw o.lost?.(e) ?? e;
    }
    if (o.signal.aborted) return;
    if (failures > o.reconnectsMax) {
      const ended = new Error('stream ended');
      throw o.lost?.(ended) ?? ended;
    }
    await pause(streamRetryMs);
  }
}
