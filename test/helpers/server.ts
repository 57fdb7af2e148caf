import { registerCompletionHandler, type ExecutionContext } from 'ava';
import { type ChildProcess, spawn } from 'node:child_process';
import http from 'node:http';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TraceJson } from '../../src/gateway/trace-routes.js';
import { until } from './wait.js';

/**
 * startServer runs the real server (`node dist/src/main.js`) as a child process on a free
 * port with a fresh data dir, and waits for its "ready to serve client requests" log line.
 * Integration tests use it so that they exercise real worker threads, real files with real
 * fsync and real HTTP.
 *
 * No server outlives its test, on any path:
 * - a test stops what it starts: `useServer(t)` registers the teardown itself; a server
 *   shared by a file is stopped in its `test.after.always`;
 * - a server that is not ready in time, or does not exit within stopTimeoutMs of SIGTERM, is
 *   killed, and the test fails with its logs (instead of hanging until the runner's timeout);
 * - each server runs in its own process group, and kills go to the whole group;
 * - a server still running when the test file is done is killed, with a warning naming it;
 * - if the test process itself dies (a runner timeout, a crash, SIGKILL), the server's stdin
 *   pipe closes and the preloaded orphan-guard kills it.
 */
export interface TestServer {
  url: string;
  dataDir: string;
  proc: ChildProcess;
  /** logs collects the server's log lines (stderr and stdout). */
  logs: string[];
  /** running is true until the process has exited. */
  readonly running: boolean;
  /** stop sends SIGTERM and resolves with the exit code; a server that has not exited
   * within stopTimeoutMs is killed and stop rejects (a hung shutdown is a failure). */
  stop(): Promise<number | null>;
  /** kill sends SIGKILL to the server's process group and waits for the exit. */
  kill(): Promise<void>;
  /** cleanup removes the data dir (only when the test created it). */
  cleanup(): Promise<void>;
  /** close kills the server if it still runs, then removes its data dir if it owns it: the
   * one call for teardowns and `finally` blocks; safe to call more than once. */
  close(): Promise<void>;
  /** shutdown is stop (graceful, bounded) then cleanup, whatever stop did: for a server
   * shared by a file, in its `test.after.always`. */
  shutdown(): Promise<number | null>;
}

export interface StartOptions {
  dataDir?: string;
  args?: string[];
  env?: Record<string, string>;
  /** readyTimeoutMs bounds the start (generous: only a broken or stuck start reaches it). */
  readyTimeoutMs?: number;
  /** exitExpected: the test makes the server die by itself (a failpoint's panic), so its
   * exit is no news worth printing. */
  exitExpected?: boolean;
}

/** stopTimeoutMs bounds a graceful stop (the server's own drain is shutdownDrainMsMax, 5 s);
 * generous, so that only a hung shutdown reaches it, never a slow machine. */
export const stopTimeoutMs = 60_000;
/** readyTimeoutMs is the default bound on a start, generous for the same reason. */
export const readyTimeoutMs = 60_000;

const mainJs = new URL('../../src/main.js', import.meta.url).pathname;
const guard = new URL('./orphan-guard.js', import.meta.url).href;

/** live holds every server process of this test process that has not exited yet. */
const live = new Map<ChildProcess, string>();
/** expectedExits holds the servers killed here as leftovers (their exit is no news). */
const expectedExits = new WeakSet<ChildProcess>();

/** killGroup sends a signal to the server's process group (it leads one: detached). */
function killGroup(proc: ChildProcess, signal: NodeJS.Signals): void {
  if (proc.pid === undefined || proc.exitCode !== null || proc.signalCode !== null) return;
  try {
    process.kill(-proc.pid, signal);
  } catch {
    try {
      proc.kill(signal);
    } catch {
      // gone meanwhile
    }
  }
}

// The test file is done (ava's completion handler) or its process exits: whatever still runs
// was leaked by a test. Kill it so that neither this process nor the machine keeps it.
registerCompletionHandler(() => {
  if (live.size === 0) return;
  process.stderr.write(`helpers/server: ${live.size} test server(s) still running when the ` +
    `tests ended; killed: ${[...live.values()].join(', ')}\n`);
  for (const proc of live.keys()) {
    expectedExits.add(proc);
    killGroup(proc, 'SIGKILL');
    proc.stdout?.destroy();
    proc.stderr?.destroy();
    proc.stdin?.destroy();
    proc.unref();
  }
});
process.on('exit', () => {
  for (const proc of live.keys()) killGroup(proc, 'SIGKILL');
});

export async function startServer(opts: StartOptions = {}): Promise<TestServer> {
  const own = opts.dataDir === undefined;
  const dataDir = opts.dataDir ?? await mkdtemp(join(tmpdir(), 'myetcd-test-'));
  const args = ['--import', guard, mainJs, '--data-dir', dataDir,
    '--listen-client-urls', 'http://127.0.0.1:0', '--storage-shards', '2', '--log-level', 'info',
    ...(opts.args ?? [])];
  const proc = spawn(process.execPath, args, {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, ...(opts.env ?? {}) },
    detached: true,
  });
  live.set(proc, `pid ${proc.pid} (${dataDir})`);
  const logs: string[] = [];
  let stopping = false;
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (c) => {
    live.delete(proc);
    resolve(c);
  }));
  const closed = new Promise<void>((resolve) => proc.once('close', () => resolve()));
  proc.once('close', (c, signal) => {
    if (stopping || expectedExits.has(proc) || opts.exitExpected === true) return;
    // Nobody asked it to stop: say so, with its last words, whatever the test does next.
    process.stderr.write(`helpers/server: server ${dataDir} exited by itself (code ${c}, ` +
      `signal ${signal}):\n${logs.slice(-20).join('\n')}\n`);
  });
  const kill = async () => {
    stopping = true;
    killGroup(proc, 'SIGKILL');
    await exited;
  };
  const cleanup = async () => {
    if (own) await rm(dataDir, { recursive: true, force: true });
  };
  if (process.env.TEST_SERVER_LOG_DIR !== undefined) {
    // Keep every line on disk too, for a post-mortem of a run (test/stress-suite.sh sets it).
    const file = createWriteStream(join(process.env.TEST_SERVER_LOG_DIR, `server-${proc.pid}.log`));
    proc.stdout!.pipe(file, { end: false });
    proc.stderr!.pipe(file, { end: false });
    proc.once('close', () => file.end());
  }
  let url: string;
  try {
    url = await ready(proc, logs, exited, opts.readyTimeoutMs ?? readyTimeoutMs);
  } catch (e) {
    await kill();
    await cleanup();
    throw e;
  }
  live.set(proc, url);
  const srv: TestServer = {
    url, dataDir, proc, logs,
    get running() {
      return proc.exitCode === null && proc.signalCode === null;
    },
    async stop() {
      stopping = true;
      killGroup(proc, 'SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const hung = new Promise<'hung'>((resolve) => {
        timer = setTimeout(() => resolve('hung'), stopTimeoutMs);
      });
      const code = await Promise.race([exited, hung]);
      clearTimeout(timer);
      if (code !== 'hung') {
        // 'exit' can come before the last log lines are read: wait for the pipes to close.
        await closed;
        return code;
      }
      await kill();
      throw new Error(`server ${url} did not exit within ${stopTimeoutMs} ms of SIGTERM ` +
        `(killed):\n${logs.slice(-20).join('\n')}`);
    },
    kill,
    cleanup,
    async close() {
      await kill();
      await cleanup();
    },
    async shutdown() {
      try {
        return await srv.stop();
      } finally {
        await cleanup();
      }
    },
  };
  return srv;
}

/** useServer starts a server for one test and stops it (and removes its data dir) when the
 * test ends, passed or failed. */
export async function useServer(t: ExecutionContext, opts: StartOptions = {}):
  Promise<TestServer> {
  const srv = await startServer(opts);
  t.teardown(() => srv.close());
  return srv;
}

/** ready collects log lines until the "ready" line names the URL; rejects when the process
 * exits first or the deadline passes. */
function ready(proc: ChildProcess, logs: string[], exited: Promise<number | null>,
  timeoutMs: number): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(
      `server not ready within ${timeoutMs} ms:\n${logs.join('\n')}`)), timeoutMs);
    let buf = '';
    const onData = (d: Buffer) => {
      buf += d.toString('utf8');
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        logs.push(line);
        try {
          const j = JSON.parse(line) as { msg?: string; url?: string };
          if (j.msg === 'ready to serve client requests' && j.url !== undefined) {
            clearTimeout(timer);
            resolve(j.url);
          }
        } catch {
          // not JSON: keep it in logs
        }
      }
    };
    proc.stderr!.on('data', onData);
    proc.stdout!.on('data', onData);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before ready:\n${logs.join('\n')}`));
    });
  });
}

/** readReply reads a whole answer: its status and the body parsed as JSON (the text when it
 * is not JSON). */
export function readReply(res: http.IncomingMessage,
  resolve: (r: { status: number; json: any }) => void, reject: (e: Error) => void): void {
  let text = '';
  res.setEncoding('utf8');
  res.on('data', (d: string) => {
    text += d;
  });
  res.on('error', reject);
  res.on('end', () => {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = text;
    }
    resolve({ status: res.statusCode ?? 0, json });
  });
}

/**
 * post sends a JSON body and returns status and parsed JSON. Each request has a connection of
 * its own (Connection: close): a kept-alive connection that sat idle while this process was
 * starved of CPU can be closed by the server's idle timeout (uWS: 10 s) just as the next
 * request goes out on it, and a POST lost that way cannot be retried safely.
 */
export function post(url: string, body: unknown): Promise<{ status: number; json: any }> {
  const data = typeof body === 'string' ? body : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(url, {
      method: 'POST', agent: false,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) },
    }, (res) => readReply(res, resolve, reject));
    req.on('error', (e: Error & { code?: string }) => {
      reject(new Error(`POST ${url}: ${e.message} (${e.code})`, { cause: e }));
    });
    req.end(data);
  });
}

/** b64 encodes text as etcd's JSON gateway expects. */
export function b64(s: string): string {
  return Buffer.from(s, 'utf8').toString('base64');
}

/** unb64 decodes a base64 field. */
export function unb64(s: string | undefined): string {
  return Buffer.from(s ?? '', 'base64').toString('utf8');
}

/** put writes key=value over /v3 (extra fields such as `lease` or `prev_kv` join the body)
 * and returns the revision; a refusal throws. */
export async function put(url: string, key: string, value: string, extra: object = {}):
  Promise<number> {
  const r = await post(`${url}/v3/kv/put`, { key: b64(key), value: b64(value), ...extra });
  if (r.status !== 200) throw new Error(`put ${key}: ${r.status} ${JSON.stringify(r.json)}`);
  return Number(r.json.header.revision);
}

/** del deletes one key over /v3 and returns the revision. */
export async function del(url: string, key: string): Promise<number> {
  const r = await post(`${url}/v3/kv/deleterange`, { key: b64(key) });
  if (r.status !== 200) throw new Error(`delete ${key}: ${r.status}`);
  return Number(r.json.header.revision);
}

/** keys lists the keys under a prefix (the prefix's last character must not be 0xff). */
export async function keys(url: string, prefix: string): Promise<string[]> {
  const end = prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
  const r = await post(`${url}/v3/kv/range`, { key: b64(prefix), range_end: b64(end) });
  if (r.status !== 200) throw new Error(`range ${prefix}: ${r.status} ${JSON.stringify(r.json)}`);
  return (r.json.kvs ?? []).map((kv: { key: string }) => unb64(kv.key));
}

/** logged returns the server's JSON log lines whose msg is `msg`, parsed, oldest first. */
export function logged(srv: TestServer, msg: string): Record<string, any>[] {
  const out: Record<string, any>[] = [];
  for (const line of srv.logs) {
    if (!line.includes(msg)) continue;
    try {
      const j = JSON.parse(line) as Record<string, any>;
      if (j.msg === msg) out.push(j);
    } catch {
      // not JSON
    }
  }
  return out;
}

/** whenLogged resolves with the first of the server's log lines with message `msg` for which
 * `ok` holds, waiting on its log stream (each new chunk of output), not on time; it rejects if
 * the server exits first. */
export function whenLogged(srv: TestServer, msg: string,
  ok: (j: Record<string, any>) => boolean = () => true): Promise<Record<string, any>> {
  return new Promise((resolve, reject) => {
    const check = (): void => {
      const j = logged(srv, msg).find(ok);
      if (j === undefined) return;
      srv.proc.stderr!.off('data', check);
      resolve(j);
    };
    // This listener runs after the one startServer installed, which has appended the lines.
    srv.proc.stderr!.on('data', check);
    srv.proc.once('exit', () => reject(new Error(`server exited before logging "${msg}"`)));
    check();
  });
}

/** grpcUrl waits for the server's "ready to serve gRPC client requests" log line and returns
 * the URL it names (http://host:port, the port actually bound). */
export async function grpcUrl(srv: TestServer): Promise<string> {
  let url: string | undefined;
  await until(() => {
    url = logged(srv, 'ready to serve gRPC client requests').at(-1)?.['url'] as string | undefined;
    return url !== undefined;
  }, 'the gRPC listener');
  return url!;
}

/** waitForSpans waits until the trace `id` on the member at `url` (its /debug/traces) holds
 * spans with every name in `names`, and returns it (a trace's last spans — the apply's sends
 * — are recorded just after the answer leaves). */
export async function waitForSpans(url: string, id: string, names: string[]):
  Promise<TraceJson> {
  let t: TraceJson | undefined;
  await until(async () => {
    const r = await fetch(`${url}/debug/traces?trace=${id}`);
    t = ((await r.json()) as { traces: TraceJson[] }).traces[0];
    return t !== undefined && names.every((n) => t!.spans.some((s) => s.name === n));
  }, `spans ${names.join(', ')} in trace ${id}`);
  return t!;
}
