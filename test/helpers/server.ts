import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * startServer runs the real server (`node dist/src/main.js`) as a child process on a free
 * port with a fresh data dir, and waits for its "ready to serve client requests" log line.
 * Integration tests use it so that they exercise real worker threads, real files with real
 * fsync and real HTTP.
 */
export interface TestServer {
  url: string;
  dataDir: string;
  proc: ChildProcess;
  /** logs collects the server's log lines (stderr). */
  logs: string[];
  /** stop sends SIGTERM and waits for exit; resolves with the exit code. */
  stop(): Promise<number | null>;
  /** kill sends SIGKILL and waits for exit. */
  kill(): Promise<void>;
  /** cleanup removes the data dir (only when the test created it). */
  cleanup(): Promise<void>;
}

export interface StartOptions {
  dataDir?: string;
  args?: string[];
  env?: Record<string, string>;
  timeoutMs?: number;
}

const mainJs = new URL('../../src/main.js', import.meta.url).pathname;

export async function startServer(opts: StartOptions = {}): Promise<TestServer> {
  const own = opts.dataDir === undefined;
  const dataDir = opts.dataDir ?? await mkdtemp(join(tmpdir(), 'myetcd-test-'));
  const args = [mainJs, '--data-dir', dataDir, '--listen-client-urls', 'http://127.0.0.1:0',
    '--storage-shards', '2', '--log-level', 'info', ...(opts.args ?? [])];
  const proc = spawn(process.execPath, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...(opts.env ?? {}) },
  });
  const logs: string[] = [];
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (c) => resolve(c)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server not ready:\n${logs.join('\n')}`)),
      opts.timeoutMs ?? 30_000);
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
  return {
    url, dataDir, proc, logs,
    async stop() {
      proc.kill('SIGTERM');
      return exited;
    },
    async kill() {
      proc.kill('SIGKILL');
      await exited;
    },
    async cleanup() {
      if (own) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** post sends a JSON body and returns status and parsed JSON. */
export async function post(url: string, body: unknown): Promise<{ status: number; json: any }> {
  const r = await fetch(url, {
    method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body),
    headers: { 'content-type': 'application/json' },
  });
  const text = await r.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: r.status, json };
}

/** b64 encodes text as etcd's JSON gateway expects. */
export function b64(s: string): string {
  return Buffer.from(s, 'utf8').toString('base64');
}

/** unb64 decodes a base64 field. */
export function unb64(s: string | undefined): string {
  return Buffer.from(s ?? '', 'base64').toString('utf8');
}
