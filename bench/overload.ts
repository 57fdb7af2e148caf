/**
 * overload: MyEtcd pushed past what it can do, and attacked by slow clients
 * (`npm run bench:overload -- [--connections 1000] [--seconds 15] [--factor 2]`).
 *
 * 1. capacity: 64 closed-loop connections of 256-byte puts for 5 s → C puts/s.
 * 2. overload: `connections` keep-alive connections offer factor × C puts/s together for
 *    `seconds`: each connection sends its next put on its schedule (connections / rate
 *    apart), or as soon as the previous one is answered when that is later — one request in
 *    flight per connection, because uWS (20.30) closes a connection that pipelines a request
 *    behind one not yet answered (see docs/reliability.md). The server thus holds up to
 *    `connections` requests; past gatewayInflightMax (5,000) it must refuse.
 *    Meanwhile the slow clients: `idle` connections that never send a byte, `slowloris`
 *    connections that trickle a put's body a byte a second, and `stalled` watch streams that
 *    never read while the puts' events pour in.
 *    Measured: the server's peak RSS (VmRSS of all its threads, sampled every 100 ms), the
 *    share of 429/503 answers, latency percentiles of the accepted (2xx) puts (send → answer),
 *    and the gateway's own bounds from /metrics.
 * 3. recovery: once the load stops, 16 closed-loop connections in 250 ms windows; recovery
 *    time is from the end of the load until a window reaches 80% of C.
 *
 * The load generator runs in this process, on the same 2 cores as the server: it takes CPU
 * the server would otherwise have, so C and the overload are both measured under it.
 */
import net from 'node:net';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { buildPost, ResponseParser } from './http1.js';
import { cleanup, rssBytes, startServer, stopServer, type Server } from './servers.js';
import { Histogram } from './stats.js';

const { values: opts } = parseArgs({
  options: {
    connections: { type: 'string', default: '1000' },
    seconds: { type: 'string', default: '15' },
    factor: { type: 'string', default: '2' },
    idle: { type: 'string', default: '2000' },
    slowloris: { type: 'string', default: '200' },
    stalled: { type: 'string', default: '200' },
    json: { type: 'boolean', default: false },
  },
});
const connections = Number(opts.connections);
const seconds = Number(opts.seconds);
const factor = Number(opts.factor);

const b64 = (s: string): string => Buffer.from(s).toString('base64');
const value = b64('v'.repeat(256));
let seq = 0;
function putRequest(host: string): Buffer {
  seq++;
  return buildPost(host, '/v3/kv/put', `{"key":"${b64(`k${seq % 10_000}`)}","value":"${value}"}`);
}

/** Conn is one keep-alive connection whose answers come back in request order. */
class Conn {
  readonly socket: net.Socket;
  readonly sentAt: number[] = [];
  private head = 0;
  open = true;
  constructor(port: number, onAnswer: (status: number, sentAt: number) => void) {
    this.socket = net.connect(port, '127.0.0.1');
    this.socket.setNoDelay(true);
    const parser = new ResponseParser({
      onEnd: (h) => {
        const t = this.sentAt[this.head++]!;
        if (this.head > 4096) {
          this.sentAt.splice(0, this.head);
          this.head = 0;
        }
        onAnswer(h.status, t);
      },
    });
    this.socket.on('data', (d: Buffer) => parser.feed(d));
    this.socket.on('close', () => { this.open = false; });
    this.socket.on('error', () => { this.open = false; });
  }
  send(req: Buffer): void {
    if (!this.open) return;
    this.sentAt.push(performance.now());
    this.socket.write(req);
  }
  get outstanding(): number {
    return this.sentAt.length - this.head;
  }
}

/** closedLoop runs n connections, one request in flight each, until stop(); counts 2xx. */
function closedLoop(port: number, n: number): { ok: () => number; stop: () => void } {
  let ok = 0;
  const conns: Conn[] = [];
  for (let i = 0; i < n; i++) {
    const c: Conn = new Conn(port, (status) => {
      if (status < 300) ok++;
      c.send(putRequest('127.0.0.1'));
    });
    conns.push(c);
    c.send(putRequest('127.0.0.1'));
  }
  return { ok: () => ok, stop: () => { for (const c of conns) c.socket.destroy(); } };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const wanted = new Set(['myetcd_http_inflight_requests', 'myetcd_watch_buffered_bytes',
  'myetcd_watch_buffered_bytes_peak', 'myetcd_watch_streams_dropped_total',
  'myetcd_watch_streams']);

async function metrics(port: number): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  try {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    for (const line of text.split('\n')) {
      const [name, v] = line.split(' ');
      if (name !== undefined && wanted.has(name)) out[name] = Number(v);
    }
  } catch {
    // busy: skipped
  }
  return out;
}

async function main(): Promise<void> {
  const server: Server =
    await startServer({ kind: 'ours', etcdBin: '', oursArgs: [], etcdArgs: [] });
  const port = server.port;
  const extra: net.Socket[] = [];
  try {
    // 1. capacity
    const cap = closedLoop(port, 64);
    await sleep(1000);
    const c0 = cap.ok();
    await sleep(5000);
    const capacity = (cap.ok() - c0) / 5;
    cap.stop();
    await sleep(500);
    const rssBase = rssBytes(server.pid);
    console.error(`capacity ${capacity.toFixed(0)} puts/s; ` +
      `RSS ${(rssBase / 2 ** 20).toFixed(0)} MiB`);

    // 2. overload, with the slow clients
    for (let i = 0; i < Number(opts.idle); i++) {
      const s = net.connect(port, '127.0.0.1');
      s.on('error', () => undefined);
      extra.push(s);
    }
    const slowBody = `{"key":"${b64('slow')}","value":"${b64('x'.repeat(64))}"}`;
    const slowTimers: NodeJS.Timeout[] = [];
    for (let i = 0; i < Number(opts.slowloris); i++) {
      const s = net.connect(port, '127.0.0.1');
      s.on('error', () => undefined);
      s.write(`POST /v3/kv/put HTTP/1.1\r\nHost: x\r\nContent-Length: ${slowBody.length}\r\n\r\n`);
      let at = 0;
      slowTimers.push(setInterval(() => {
        if (at < slowBody.length) s.write(slowBody[at++]!);
      }, 1000));
      extra.push(s);
    }
    const watchBody = JSON.stringify({ create_request: { key: b64('k'), range_end: b64('l') } });
    for (let i = 0; i < Number(opts.stalled); i++) {
      const s = net.connect(port, '127.0.0.1');
      s.on('error', () => undefined);
      s.write(`POST /v3/watch HTTP/1.1\r\nHost: x\r\nContent-Length: ${watchBody.length}` +
        `\r\n\r\n${watchBody}`);
      s.pause();
      extra.push(s);
    }
    const statuses: Record<string, number> = {};
    const hist = new Histogram();
    let answered = 0;
    const conns: Conn[] = [];
    let answeredHook: (i: number) => void = () => undefined;
    for (let i = 0; i < connections; i++) {
      conns.push(new Conn(port, (status, sentAt) => {
        statuses[status] = (statuses[status] ?? 0) + 1;
        answered++;
        if (status < 300) hist.record(Math.round((performance.now() - sentAt) * 1000));
        answeredHook(i);
      }));
    }
    const rate = factor * capacity;
    const gapMs = (connections * 1000) / rate;
    let rssPeak = rssBytes(server.pid);
    const rssTimer = setInterval(() => { rssPeak = Math.max(rssPeak, rssBytes(server.pid)); }, 100);
    const mPeak: Record<string, number> = {};
    const t0 = performance.now();
    const endAt = t0 + seconds * 1000;
    let sent = 0;
    // Each connection: its k-th put is due at t0 + offset + k × gapMs; sent then, or when the
    // previous one is answered if that is later.
    const due = conns.map((_, i) => t0 + (gapMs * i) / connections);
    const timers: NodeJS.Timeout[] = [];
    const sendNext = (i: number): void => {
      const now = performance.now();
      if (now >= endAt) return;
      if (now < due[i]!) {
        timers[i] = setTimeout(() => sendNext(i), due[i]! - now);
        return;
      }
      due[i]! += gapMs;
      sent++;
      conns[i]!.send(putRequest('127.0.0.1'));
    };
    answeredHook = (i) => sendNext(i);
    for (let i = 0; i < connections; i++) sendNext(i);
    while (performance.now() < endAt) {
      const m = await metrics(port);
      for (const [k, v] of Object.entries(m)) mPeak[k] = Math.max(mPeak[k] ?? 0, v);
      await sleep(200);
    }
    const loadEnd = performance.now();
    for (const t of timers) clearTimeout(t);
    for (const c of conns) c.socket.destroy();
    for (const t of slowTimers) clearInterval(t);

    // 3. recovery
    const rec = closedLoop(port, 16);
    let recoveredMs = NaN;
    let prev = 0;
    while (performance.now() - loadEnd < 30_000) {
      await sleep(250);
      const ok = rec.ok();
      if ((ok - prev) / 0.25 >= 0.8 * capacity) {
        recoveredMs = performance.now() - loadEnd;
        break;
      }
      prev = ok;
    }
    rec.stop();
    clearInterval(rssTimer);
    const m = await metrics(port);
    for (const [k, v] of Object.entries(m)) mPeak[k] = Math.max(mPeak[k] ?? 0, v);
    const refused = (statuses['429'] ?? 0) + (statuses['503'] ?? 0);
    const result = {
      connections, seconds, factor, capacityPutsPerSec: Math.round(capacity),
      offered: sent, answered, statuses,
      refusedShare: answered === 0 ? NaN : refused / answered,
      acceptedP50Ms: hist.percentileUs(0.5) / 1000, acceptedP99Ms: hist.percentileUs(0.99) / 1000,
      acceptedMaxMs: hist.percentileUs(1) / 1000,
      rssBaseMiB: rssBase / 2 ** 20, rssPeakMiB: rssPeak / 2 ** 20,
      inflightPeak: mPeak['myetcd_http_inflight_requests'] ?? NaN,
      watchBufferedPeakBytes: m['myetcd_watch_buffered_bytes_peak'] ?? NaN,
      watchStreamsDropped: m['myetcd_watch_streams_dropped_total'] ?? NaN,
      recoveryMs: recoveredMs,
      idle: Number(opts.idle), slowloris: Number(opts.slowloris), stalled: Number(opts.stalled),
    };
    if (opts.json) console.log(JSON.stringify(result));
    else {
      console.log('| connections | offered | capacity | 429/503 share | ' +
        'accepted p50 / p99 / max |' +
        ` peak RSS (base) | peak in flight | watch buffered peak | dropped | recovery |`);
      console.log(`| ${connections} (+${result.idle} idle, ${result.slowloris} slowloris, ` +
        `${result.stalled} stalled watchers) | ${factor}× = ${Math.round(rate)} puts/s for ` +
        `${seconds} s | ${result.capacityPutsPerSec} puts/s | ` +
        `${(result.refusedShare * 100).toFixed(1)}% | ${result.acceptedP50Ms.toFixed(0)} / ` +
        `${result.acceptedP99Ms.toFixed(0)} / ${result.acceptedMaxMs.toFixed(0)} ms | ` +
        `${result.rssPeakMiB.toFixed(0)} MiB (${result.rssBaseMiB.toFixed(0)}) | ` +
        `${result.inflightPeak} | ${(result.watchBufferedPeakBytes / 2 ** 20).toFixed(1)} MiB | ` +
        `${result.watchStreamsDropped} | ${(recoveredMs / 1000).toFixed(2)} s |`);
      console.log(JSON.stringify(result));
    }
  } finally {
    for (const s of extra) s.destroy();
    await stopServer(server);
    cleanup(server);
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
