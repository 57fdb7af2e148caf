/**
 * memory-breakdown: `npm run bench:memory` — where a real MyEtcd member's memory and restart
 * time go with N keys. It starts one member, writes N keys of V-byte values in 128-put txns
 * (as the restart workload of bench/run.ts), then prints the process's RSS and, per thread,
 * its V8 heap (used/total), external and ArrayBuffer bytes and what the actor reports of its
 * state (myetcd_actor_memory_bytes: Raft log, snapshot, applier and store columns). Then it
 * stops the member (SIGTERM, or SIGKILL with --kill), starts it again, and prints the time to
 * serve, the recovery phases the Raft node logs, and the same breakdown after the restart.
 *
 *   node dist/bench/memory-breakdown.js [--keys 1000000] [--value-size 100] [--kill]
 *     [--ours-args "..."] [--idle-s N]
 *
 * --idle-s N prints the breakdown once more N seconds after the first, the member left alone
 * meanwhile (it packs the keys it wrote back into bytes when idle).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { keyName, type KeySpace, valueOf } from './workloads.js';
import { cleanup, type Server, startServer, stopServer, rssBytes } from './servers.js';

const { values: flags } = parseArgs({
  options: {
    keys: { type: 'string', default: '1000000' },
    'value-size': { type: 'string', default: '100' },
    kill: { type: 'boolean', default: false },
    'ours-args': { type: 'string', default: '' },
    'idle-s': { type: 'string', default: '0' },
  },
});
const keys = Number(flags.keys);
const valueSize = Number(flags['value-size']);
const idleS = Number(flags['idle-s']);
const oursArgs = ['--log-level', process.env['BENCH_LOG_LEVEL'] ?? 'info',
  ...flags['ours-args']!.split(' ').filter((a) => a !== '')];
const space: KeySpace = { kind: 'flat', prefix: 'bench/restart/' };
const txnBatch = 128;
/** txnAttemptsMax: tries of one txn answered 503 (timed out) before the run fails. */
const txnAttemptsMax = 5;
const mib = (n: number): string => (n / 2 ** 20).toFixed(1);

/** load writes the keys with 8 connections of 128-put txns. */
async function load(s: Server): Promise<number> {
  const t0 = performance.now();
  const value = Buffer.from(valueOf(valueSize)).toString('base64');
  let next = 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      const from = next;
      if (from >= keys) return;
      next = Math.min(keys, from + txnBatch);
      const success = [];
      for (let i = from; i < next; i++) {
        success.push({ request_put: { key: Buffer.from(keyName(space, i)).toString('base64'),
          value } });
      }
      const body = JSON.stringify({ success });
      for (let attempt = 1; ; attempt++) {
        const r = await fetch(`http://${s.host}:${s.port}/v3/kv/txn`, { method: 'POST', body });
        const text = await r.text();
        if (r.status === 200) break;
        // On a machine loaded far past its cores a txn can time out (it may still apply): the
        // puts are the same again, so the retry only costs a revision.
        if (r.status !== 503 || attempt === txnAttemptsMax) {
          throw new Error(`txn: ${r.status} ${text}`);
        }
      }
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  return (performance.now() - t0) / 1000;
}

/** breakdown prints RSS, smaps' anonymous/file split, and each thread's parts from /metrics. */
async function breakdown(s: Server, title: string): Promise<void> {
  const text = await (await fetch(`http://${s.host}:${s.port}/metrics`)).text();
  const parts = new Map<string, Map<string, number>>();
  const line = /^myetcd_actor_memory_bytes\{actor="([^"]+)",part="([^"]+)"\} (\S+)$/gm;
  for (const m of text.matchAll(line)) {
    if (!parts.has(m[1]!)) parts.set(m[1]!, new Map());
    parts.get(m[1]!)!.set(m[2]!, Number(m[3]));
  }
  const main = (name: string): number => Number(new RegExp(
    `^${name.replace(/[{}]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
  parts.set('gateway', new Map([['heapUsed', main('nodejs_heap_size_used_bytes')],
    ['heapTotal', main('nodejs_heap_size_total_bytes')],
    ['newSpace', main('nodejs_heap_space_size_total_bytes{space="new"}')],
    ['external', main('nodejs_external_memory_bytes')]]));
  const smaps = readFileSync(`/proc/${s.pid}/smaps_rollup`, 'utf8');
  const kb = (f: string): number => Number(new RegExp(`^${f}:\\s+(\\d+) kB`, 'm').exec(smaps)?.[1]
    ?? NaN) * 1024;
  console.log(`\n## ${title}\nRSS ${mib(rssBytes(s.pid))} MiB (anonymous ${mib(kb('Anonymous'))}` +
    ` MiB, file-backed ${mib(kb('Rss') - kb('Anonymous'))} MiB)`);
  const cols = ['heapUsed', 'heapTotal', 'newSpace', 'external', 'arrayBuffers'];
  const extra = [...new Set([...parts.values()].flatMap((p) => [...p.keys()]))]
    .filter((k) => !cols.includes(k));
  console.log(`| thread | ${[...cols, ...extra].join(' | ')} |`);
  console.log(`|---|${[...cols, ...extra].map(() => '---:').join('|')}|`);
  let heapTotal = 0;
  for (const [actor, p] of [...parts].sort()) {
    heapTotal += p.get('heapTotal') ?? 0;
    console.log(`| ${actor} | ${[...cols, ...extra].map((c) => p.has(c) ? mib(p.get(c)!) : '')
      .join(' | ')} |`);
  }
  console.log(`(MiB; V8 heaps total ${mib(heapTotal)} MiB)`);
}

async function main(): Promise<void> {
  const opts = { kind: 'ours' as const, etcdBin: '', oursArgs, etcdArgs: [] };
  const first = await startServer(opts, 120_000);
  let second: Server | undefined;
  try {
    const seconds = await load(first);
    console.log(`wrote ${keys} keys in ${seconds.toFixed(1)} s`);
    await new Promise((r) => setTimeout(r, 3_000));
    await breakdown(first, `after writing ${keys} keys`);
    if (idleS > 0) {
      // Left alone, the member packs the keys it wrote back into bytes (keysRepackIdleMs).
      await new Promise((r) => setTimeout(r, idleS * 1_000));
      await breakdown(first, `${idleS} s later, left alone`);
    }
    console.log(`log: ${first.logPath}`);
    if (flags.kill) {
      process.kill(first.pid, 'SIGKILL');
      await new Promise((r) => first.child.once('exit', r));
    } else {
      await stopServer(first, 120_000);
    }
    second = await startServer({ ...opts, dataDir: first.dataDir }, 600_000);
    const serving = (second.servingAt - second.startedAt) / 1000;
    console.log(`\nstart → serving after ${flags.kill ? 'kill -9' : 'a clean stop'}: ` +
      `${serving.toFixed(2)} s`);
    const log = readFileSync(second.logPath, 'utf8').split('\n');
    for (const l of log) {
      if (/recovered from snapshot|replayed the WAL tail|snapshot taken/.test(l)) console.log(l);
    }
    await new Promise((r) => setTimeout(r, 3_000));
    await breakdown(second, 'after the restart');
  } finally {
    await stopServer(first);
    if (second !== undefined) await stopServer(second);
    if (process.env["BENCH_KEEP"] === undefined) cleanup(first);
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
