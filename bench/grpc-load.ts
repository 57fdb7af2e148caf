/**
 * grpc-load: PUT and GET over etcd's gRPC API, MyEtcd beside etcd 3.4, in one run — what etcd's
 * `benchmark put` / `benchmark range` do (that tool is not packaged here). The coordinator
 * starts one server at a time (MyEtcd with its gRPC port, then etcd, whose client port serves
 * gRPC), forks this file as the load generator in its own process for each workload, prints
 * ops/s and latency percentiles, and stops every server it started by its pid.
 *
 *   node dist/bench/grpc-load.js [--duration 10] [--conns 8] [--clients 128] [--value 256]
 *
 * The generator opens `conns` HTTP/2 connections (one grpc-js channel each, not pooled) and
 * keeps `clients` calls in flight across them (closed loop: each call's completion starts
 * the next). GET is a linearizable Range of one of `keys` preloaded keys. Beside ops/s it
 * prints the server's CPU per operation over the measured window (utime + stime of its
 * process from /proc, every thread) and the load generator's: on a machine whose cores the
 * generator shares, ops/s says as much about the client as about the server.
 */
import * as grpc from '@grpc/grpc-js';
import { fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadEtcdServices } from '../src/grpc/proto.js';
import {
  cleanup, cpuSeconds, freePort, killLiveServers, type ServerKind, startServer, stopServer,
} from './servers.js';
import { formatNumber, Histogram, type HistogramData, summarize } from './stats.js';

const { values: opts } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '1' },
    conns: { type: 'string', default: '8' },
    clients: { type: 'string', default: '128' },
    value: { type: 'string', default: '256' },
    keys: { type: 'string', default: '10000' },
    etcd: { type: 'string', default: '/usr/bin/etcd' },
    gen: { type: 'string' },
    target: { type: 'string' },
    workload: { type: 'string' },
    'server-pid': { type: 'string' },
  },
});

/** GenResult is what a generator process reports. */
interface GenResult {
  ops: number;
  errors: number;
  seconds: number;
  histogram: HistogramData;
  firstError?: string;
  /** CPU seconds over the measured window: the server's process and this generator's. */
  serverCpu: number;
  clientCpu: number;
}

type Workload = 'put' | 'get';

async function generate(target: string, workload: Workload): Promise<GenResult> {
  const KV = loadEtcdServices().clients['KV']!;
  const conns = Number(opts.conns);
  const clients = Number(opts.clients);
  const keys = Number(opts.keys);
  const value = Buffer.alloc(Number(opts.value), 0x78);
  const channels = Array.from({ length: conns }, () => new KV(target,
    grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 }) as
    unknown as Record<string, (req: unknown, cb: (e: Error | null) => void) => void>);
  const key = (i: number) => Buffer.from(`bench/${String(i).padStart(8, '0')}`);
  const call = (c: number, method: string, req: unknown) => new Promise<void>((resolve, reject) =>
    channels[c % conns]![method]!(req, (e) => (e ? reject(e) : resolve())));
  if (workload === 'get') {
    for (let i = 0; i < keys; i += clients) {
      await Promise.all(Array.from({ length: Math.min(clients, keys - i) }, (_, j) =>
        call(j, 'Put', { key: key(i + j), value })));
    }
  }
  const hist = new Histogram();
  let ops = 0;
  let errors = 0;
  let firstError: string | undefined;
  let measuring = false;
  let stop = false;
  let n = 0;
  const loop = async (c: number): Promise<void> => {
    while (!stop) {
      const i = n++ % keys;
      const t0 = performance.now();
      try {
        if (workload === 'put') await call(c, 'Put', { key: key(i), value });
        else await call(c, 'Range', { key: key(i) });
        if (measuring) {
          hist.record(Math.max(1, Math.round((performance.now() - t0) * 1000)));
          ops++;
        }
      } catch (e) {
        if (measuring) errors++;
        firstError ??= String(e);
      }
    }
  };
  const loops = Array.from({ length: clients }, (_, c) => loop(c));
  await new Promise((r) => setTimeout(r, Number(opts.warmup) * 1000));
  const serverPid = Number(opts['server-pid'] ?? 0);
  const ownCpu = (): number => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
  };
  const cpu0 = [serverPid > 0 ? cpuSeconds(serverPid) : NaN, ownCpu()];
  measuring = true;
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, Number(opts.duration) * 1000));
  measuring = false;
  const seconds = (performance.now() - t0) / 1000;
  const serverCpu = (serverPid > 0 ? cpuSeconds(serverPid) : NaN) - cpu0[0]!;
  const clientCpu = ownCpu() - cpu0[1]!;
  stop = true;
  await Promise.all(loops);
  for (const ch of channels) (ch as unknown as grpc.Client).close();
  return { ops, errors, seconds, histogram: hist.toData(), serverCpu, clientCpu,
    ...(firstError ? { firstError } : {}) };
}

function runGenerator(target: string, workload: Workload, serverPid: number):
  Promise<GenResult> {
  const self = fileURLToPath(import.meta.url);
  const child = fork(self, ['--gen', '1', '--target', target, '--workload', workload,
    '--server-pid', String(serverPid),
    '--duration', opts.duration!, '--warmup', opts.warmup!, '--conns', opts.conns!,
    '--clients', opts.clients!, '--value', opts.value!, '--keys', opts.keys!]);
  return new Promise((resolve, reject) => {
    child.once('message', (m) => resolve(m as GenResult));
    child.once('exit', (code) => reject(new Error(`generator exited with ${code}`)));
  });
}

async function coordinate(): Promise<void> {
  const kinds: ServerKind[] = existsSync(opts.etcd!) ? ['ours', 'etcd'] : ['ours'];
  console.log(`grpc-load: ${opts.conns} connections, ${opts.clients} calls in flight, ` +
    `${opts.value}-byte values, ${opts.duration} s per workload (after ${opts.warmup} s)`);
  console.log('| server | workload | ops/s | p50 ms | p99 ms | server CPU µs/op | ' +
    'generator CPU µs/op | errors |');
  console.log('|---|---|---:|---:|---:|---:|---:|---:|');
  for (const kind of kinds) {
    for (const workload of ['put', 'get'] as Workload[]) {
      const grpcPort = await freePort();
      const server = await startServer({
        kind, etcdBin: opts.etcd!, etcdArgs: [],
        oursArgs: ['--listen-client-grpc-urls', `http://127.0.0.1:${grpcPort}`],
      });
      try {
        const target = `127.0.0.1:${kind === 'ours' ? grpcPort : server.port}`;
        const r = await runGenerator(target, workload, server.pid);
        const s = summarize(Histogram.fromData(r.histogram), r.seconds, r.errors);
        const perOp = (cpu: number) => (r.ops > 0 ? (cpu * 1e6 / r.ops).toFixed(1) : '–');
        console.log(`| ${kind === 'ours' ? 'MyEtcd' : 'etcd 3.4'} | ${workload} | ` +
          `${formatNumber(s.opsPerSec)} | ${s.p50Ms.toFixed(2)} | ${s.p99Ms.toFixed(2)} | ` +
          `${perOp(r.serverCpu)} | ${perOp(r.clientCpu)} | ` +
          `${r.errors}${r.firstError ? ` (${r.firstError})` : ''} |`);
      } finally {
        await stopServer(server);
        cleanup(server);
      }
    }
  }
}

if (opts.gen !== undefined) {
  const r = await generate(opts.target!, opts.workload as Workload);
  if (process.send !== undefined) process.send(r);
  else {
    console.log(JSON.stringify({ ops: r.ops, errors: r.errors, seconds: r.seconds,
      serverCpu: r.serverCpu, clientCpu: r.clientCpu }));
  }
  process.exit(0);
} else {
  process.on('SIGINT', () => {
    killLiveServers();
    process.exit(130);
  });
  try {
    await coordinate();
  } finally {
    killLiveServers();
  }
}
