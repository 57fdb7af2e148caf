import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { loadConfig } from '../config/index.js';

/**
 * healthcheck: the container's HEALTHCHECK command. It asks the member's own `GET /health`
 * at the URL the member was configured with, so overriding the port or the address (by
 * flags appended to `docker run`, MYETCD_ or ETCD_ variables, a config file) keeps the
 * container healthy.
 *
 * The member's configuration is read the way the member read it: its command-line arguments
 * and environment come from /proc/<pid> (pid 1 in a container, or the pid given as the only
 * argument), passed through the same loadConfig. The first --listen-client-urls entry is
 * dialled, a wildcard address (0.0.0.0, ::) replaced by loopback. Exits 0 when /health answers
 * 200, 1 otherwise (with one line on stderr saying why).
 *
 *   node dist/src/server/healthcheck.js [pid]
 */

/** healthcheckTimeoutMs bounds the /health request (Docker's --timeout should exceed it). */
export const healthcheckTimeoutMs = 2_000;

/** healthUrl is the /health URL for a member's configuration arguments and environment. */
export function healthUrl(argv: string[], env: NodeJS.ProcessEnv): string {
  const config = loadConfig(argv, env);
  const url = new URL(config.listenClientUrls[0]!);
  if (url.hostname === '0.0.0.0') url.hostname = '127.0.0.1';
  if (url.hostname === '[::]') url.hostname = '[::1]';
  url.pathname = '/health';
  return url.href;
}

/** memberArgs reads a process's arguments after its script (node <script> args…). */
export function memberArgs(pid: number): string[] {
  const parts = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  if (parts[parts.length - 1] === '') parts.pop();
  let script = parts.findIndex((p, i) => i > 0 && /(main\.js|myetcd(\.js)?)$/.test(p));
  if (script < 0) script = parts.findIndex((p, i) => i > 0 && !p.startsWith('-'));
  return script < 0 ? [] : parts.slice(script + 1);
}

/** memberEnv reads a process's environment, or undefined when it cannot be read. */
export function memberEnv(pid: number): NodeJS.ProcessEnv | undefined {
  try {
    const env: NodeJS.ProcessEnv = {};
    for (const kv of readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')) {
      const eq = kv.indexOf('=');
      if (eq > 0) env[kv.slice(0, eq)] = kv.slice(eq + 1);
    }
    return env;
  } catch {
    return undefined;
  }
}

async function main(): Promise<void> {
  const pid = Number(process.argv[2] ?? 1);
  let url: string;
  try {
    url = healthUrl(memberArgs(pid), memberEnv(pid) ?? process.env);
  } catch (e) {
    process.stderr.write(`myetcd healthcheck: cannot read pid ${pid}'s configuration: ` +
      `${(e as Error).message}\n`);
    process.exit(1);
  }
  // A verdict is required: a request that hangs without holding the event loop open must not
  // end the process with 0 (healthy). The timer is ref'd, and an empty loop means unhealthy.
  process.on('beforeExit', () => process.exit(1));
  setTimeout(() => {
    process.stderr.write(`myetcd healthcheck: ${url}: no answer within ` +
      `${healthcheckTimeoutMs} ms\n`);
    process.exit(1);
  }, healthcheckTimeoutMs);
  try {
    const r = await fetch(url);
    const body = await r.text();
    if (r.status === 200) process.exit(0);
    process.stderr.write(`myetcd healthcheck: ${url} answered ${r.status} ${body.trim()}\n`);
  } catch (e) {
    process.stderr.write(`myetcd healthcheck: ${url}: ${(e as Error).message}\n`);
  }
  process.exit(1);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  void main();
}
