/**
 * loadgen: the load generator process. The harness forks one or more of these so that load
 * generation never shares an event loop with the harness or the server (it still shares the
 * machine's cores with the server: see docs/benchmark.md).
 *
 * Closed loop: each connection is a raw HTTP/1.1 keep-alive socket with exactly one request
 * in flight; when a response completes, its latency (send → last byte) is recorded and the
 * next request is written at once (or at its paced time when a rate is set). Requests are
 * built before the run where possible, so the loop only writes buffers and scans responses.
 *
 * Watch: opens one /v3/watch stream per watcher, counts events on every stream by scanning
 * the de-chunked bytes for `"kv":` and, on every sampleEvery-th stream, parses the JSON and
 * measures put-to-event latency from the send time stamped into each value.
 *
 * Protocol (process.send): parent → child LoadMsg; child → parent GenMsg.
 */
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { type HistogramData, Histogram } from './stats.js';
import { buildPost, OccurrenceCounter, ResponseParser } from './http1.js';
import { makeSource, prefixEndOf, type SourceSpec, stampOf } from './workloads.js';

/** ClosedSpec runs `connections` closed loops for warmupMs + durationMs (or until the source
 * is exhausted, or until timeoutMs). */
export interface ClosedSpec {
  mode: 'closed';
  host: string;
  port: number;
  connections: number;
  warmupMs: number;
  durationMs: number;
  source: SourceSpec;
  procIndex: number;
  procs: number;
  /** ratePerSec paces this process's requests (spread over its connections); 0 = unpaced */
  ratePerSec: number;
}

/** WatchSpec opens `watchers` watch streams on a prefix and measures until told to stop. */
export interface WatchSpec {
  mode: 'watch';
  host: string;
  port: number;
  watchers: number;
  prefix: string;
  sampleEvery: number;
}

/** LoadMsg is what the parent sends. */
export type LoadMsg =
  | { type: 'Run'; spec: ClosedSpec | WatchSpec }
  | { type: 'Measure' }
  | { type: 'Stop' };

/** GenResult is one process's measurement. */
export interface GenResult {
  /** completed requests (or events) inside the measured window */
  ops: number;
  /** responses with a status other than 2xx inside the window, and socket errors */
  errors: number;
  statuses: Record<string, number>;
  firstError: string | undefined;
  seconds: number;
  hist: HistogramData;
  /** CPU seconds this process used over the measured window */
  cpuSeconds: number;
  /** watch only: streams that answered 404 (the endpoint does not exist) */
  notFound?: number;
}

/** GenMsg is what the child sends. */
export type GenMsg =
  | { type: 'Progress'; done: number }
  | { type: 'Ready'; created: number; notFound: number; failed: number; firstError?: string }
  | { type: 'Result'; result: GenResult }
  | { type: 'Failed'; error: string };

const send = (m: GenMsg) => process.send?.(m);

function cpuSecondsNow(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

async function runClosed(spec: ClosedSpec): Promise<GenResult> {
  const source = makeSource(spec.source, `${spec.host}:${spec.port}`, spec.procIndex, spec.procs);
  const hist = new Histogram();
  const statuses: Record<string, number> = {};
  let errors = 0;
  let firstError: string | undefined;
  let done = 0;
  const t0 = performance.now();
  const measureFrom = t0 + spec.warmupMs;
  const endAt = measureFrom + spec.durationMs;
  let lastInWindow = measureFrom;
  let cpuAtStart: number | undefined = spec.warmupMs === 0 ? cpuSecondsNow() : undefined;
  const intervalMs = spec.ratePerSec > 0 ? spec.connections * 1000 / spec.ratePerSec : 0;
  const progress = setInterval(() => send({ type: 'Progress', done }), 200);

  const oneConnection = (index: number) => new Promise<void>((resolve) => {
    const socket = net.connect({ host: spec.host, port: spec.port });
    socket.setNoDelay(true);
    let sentAt = 0;
    let nextAt = t0 + (intervalMs * index) / spec.connections;
    let body: Buffer[] = [];
    const fire = () => {
      const now = performance.now();
      if (now >= endAt) return finish();
      if (intervalMs > 0 && now < nextAt) {
        setTimeout(fire, nextAt - now);
        return;
      }
      const req = source.next();
      if (req === undefined) return finish();
      // paced: keep to the schedule, but after a stall start afresh rather than burst to
      // catch up (the writers' rate stays at most ratePerSec)
      nextAt = Math.max(nextAt, now - intervalMs) + intervalMs;
      sentAt = performance.now();
      socket.write(req);
    };
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      socket.end();
      resolve();
    };
    const parser = new ResponseParser({
      onBody: (d) => {
        if (firstError === undefined) body.push(Buffer.from(d));
      },
      onEnd: (head) => {
        const now = performance.now();
        done++;
        if (now >= measureFrom && now <= endAt) {
          if (cpuAtStart === undefined) cpuAtStart = cpuSecondsNow();
          lastInWindow = now;
          statuses[head.status] = (statuses[head.status] ?? 0) + 1;
          if (head.status >= 200 && head.status < 300) hist.record((now - sentAt) * 1000);
          else {
            errors++;
            firstError ??= `HTTP ${head.status}: ${Buffer.concat(body).toString().slice(0, 300)}`;
          }
        }
        body = [];
        fire();
      },
    });
    socket.on('data', (chunk: Buffer) => {
      try {
        parser.feed(chunk);
      } catch (e) {
        errors++;
        firstError ??= String(e);
        socket.destroy();
        finish();
      }
    });
    socket.on('error', (e) => {
      errors++;
      firstError ??= String(e);
      finish();
    });
    socket.on('close', finish);
    socket.once('connect', fire);
  });

  await Promise.all(Array.from({ length: spec.connections }, (_, i) => oneConnection(i)));
  clearInterval(progress);
  send({ type: 'Progress', done });
  const end = Math.min(endAt, Math.max(lastInWindow, measureFrom));
  return {
    ops: hist.count, errors, statuses, firstError, seconds: (end - measureFrom) / 1000,
    hist: hist.toData(), cpuSeconds: cpuSecondsNow() - (cpuAtStart ?? cpuSecondsNow()),
  };
}

/** WatchRun holds the watch streams between Run, Measure and Stop. */
class WatchRun {
  private readonly sockets: net.Socket[] = [];
  private readonly counters: OccurrenceCounter[] = [];
  private hist = new Histogram();
  private measuring = false;
  private measureStart = 0;
  private cpuStart = 0;
  private baseline = 0;
  private created = 0;
  private notFound = 0;
  private failed = 0;
  private firstError: string | undefined;

  constructor(private readonly spec: WatchSpec) {}

  private total(): number {
    let n = 0;
    for (const c of this.counters) n += c.count;
    return n;
  }

  async open(): Promise<void> {
    const { spec } = this;
    const body = JSON.stringify({ create_request: {
      key: Buffer.from(spec.prefix).toString('base64'),
      range_end: prefixEndOf(spec.prefix).toString('base64'),
    } });
    const req = buildPost(`${spec.host}:${spec.port}`, '/v3/watch', body);
    const needle = Buffer.from('"kv":');
    const opened: Promise<void>[] = [];
    for (let w = 0; w < spec.watchers; w++) {
      const counter = new OccurrenceCounter(needle);
      this.counters.push(counter);
      const sampled = w % spec.sampleEvery === 0;
      let line = '';
      opened.push(new Promise<void>((resolve) => {
        let settled = false;
        const settle = () => {
          if (!settled) {
            settled = true;
            resolve();
          }
        };
        const socket = net.connect({ host: spec.host, port: spec.port });
        this.sockets.push(socket);
        socket.setNoDelay(true);
        let ok = false;
        const parser = new ResponseParser({
          onHead: (h) => {
            ok = h.status === 200;
            if (h.status === 404) this.notFound++;
            else if (!ok) {
              this.failed++;
              this.firstError ??= `watch: HTTP ${h.status}`;
            }
            if (!ok) settle();
          },
          onBody: (d) => {
            if (!ok) return;
            if (!settled) {
              // the first message is {"result":{…,"created":true}}
              this.created++;
              settle();
            }
            counter.feed(d);
            if (sampled && this.measuring) {
              line += d.toString('latin1');
              let nl = line.indexOf('\n');
              while (nl >= 0) {
                this.sample(line.slice(0, nl));
                line = line.slice(nl + 1);
                nl = line.indexOf('\n');
              }
            }
          },
          onEnd: () => settle(),
        });
        socket.on('data', (c: Buffer) => {
          try {
            parser.feed(c);
          } catch (e) {
            this.firstError ??= String(e);
            socket.destroy();
          }
        });
        socket.on('error', (e) => {
          this.failed++;
          this.firstError ??= String(e);
          settle();
        });
        socket.on('close', settle);
        socket.once('connect', () => socket.write(req));
      }));
    }
    await Promise.all(opened);
  }

  private sample(text: string): void {
    if (text.trim() === '') return;
    const now = process.hrtime.bigint();
    let msg: { result?: { events?: { kv?: { value?: string } }[] } };
    try {
      msg = JSON.parse(text) as typeof msg;
    } catch {
      return;
    }
    for (const ev of msg.result?.events ?? []) {
      const v = ev.kv?.value;
      if (v === undefined) continue;
      const stamp = stampOf(Buffer.from(v, 'base64'));
      if (stamp !== undefined) this.hist.record(Number(now - stamp) / 1000);
    }
  }

  ready(): GenMsg {
    return { type: 'Ready', created: this.created, notFound: this.notFound, failed: this.failed,
      ...(this.firstError ? { firstError: this.firstError } : {}) };
  }

  measure(): void {
    this.measuring = true;
    this.hist = new Histogram();
    this.baseline = this.total();
    this.measureStart = performance.now();
    this.cpuStart = cpuSecondsNow();
  }

  stop(): GenResult {
    const seconds = (performance.now() - this.measureStart) / 1000;
    const ops = this.total() - this.baseline;
    for (const s of this.sockets) s.destroy();
    return {
      ops, errors: this.failed, statuses: {}, firstError: this.firstError, seconds,
      hist: this.hist.toData(), cpuSeconds: cpuSecondsNow() - this.cpuStart,
      notFound: this.notFound,
    };
  }

  progress(): number {
    return this.total() - this.baseline;
  }
}

let watch: WatchRun | undefined;
let watchProgress: NodeJS.Timeout | undefined;

process.on('message', (raw) => {
  const m = raw as LoadMsg;
  void (async () => {
    try {
      switch (m.type) {
        case 'Run':
          if (m.spec.mode === 'closed') {
            send({ type: 'Result', result: await runClosed(m.spec) });
          } else {
            watch = new WatchRun(m.spec);
            await watch.open();
            send(watch.ready());
          }
          break;
        case 'Measure':
          watch?.measure();
          watchProgress = setInterval(() => send({ type: 'Progress',
            done: watch?.progress() ?? 0 }), 200);
          break;
        case 'Stop':
          clearInterval(watchProgress);
          if (watch !== undefined) send({ type: 'Result', result: watch.stop() });
          break;
        default: {
          const never: never = m;
          throw new Error(`unknown message ${JSON.stringify(never)}`);
        }
      }
    } catch (e) {
      send({ type: 'Failed', error: e instanceof Error ? e.stack ?? e.message : String(e) });
    }
  })();
});
process.on('disconnect', () => process.exit(0));
