/**
 * raft-capacity: `npm run bench:raft -- [--outstanding 50,200,1000] [--duration 6]` — how much
 * the Raft thread costs per write when nothing else sets the pace. It starts one member's
 * actors (Raft node, WAL writer with its fsyncs, shards, lease reaper, watch hub: the real
 * worker threads, data in a temporary folder) in this process, without HTTP: this thread is
 * the gateway, and keeps N proposals (PUTs of `--value-size` bytes to keys drawn from `--keys`)
 * outstanding at all times, as the HTTP gateway would for N clients, at about a tenth of its
 * CPU per request. For each N it prints the writes per second and each thread's CPU µs per
 * write from /proc (bench/threads.ts), with the projected ceiling 1,000,000 ÷ the busiest
 * actor thread's µs/op.
 *
 * `npm run bench` runs it as its last workload (raft-capacity), with the server's flags.
 *
 * Why: in the HTTP benchmark the gateway uses most of this machine's two cores, so the Raft
 * thread is measured at the batch sizes 50 connections give (≈ 25 entries an fsync), where a
 * fixed cost per pass weighs on every entry; the ceiling a host with enough cores would reach
 * is set by the Raft thread's cost at the batch sizes of its own saturation. Raising N shows
 * that cost falling toward its per-entry part.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { actorSpecs, planCluster } from '../src/cluster/setup.js';
import { loadConfig } from '../src/config/index.js';
import { KvService } from '../src/gateway/kv-service.js';
import { ActorSystem } from '../src/runtime/system.js';
import { loggerConfig } from '../src/server/startup.js';
import { clockTicksPerSec } from './servers.js';
import { sampleTasks, threadCpu, threadCpuMarkdown } from './threads.js';

const { values: flags } = parseArgs({
  options: {
    outstanding: { type: 'string', default: '50,200,1000' },
    duration: { type: 'string', default: '6' },
    warmup: { type: 'string', default: '2' },
    keys: { type: 'string', default: '10000' },
    'value-size': { type: 'string', default: '100' },
    /** member-args: more of the member's flags (e.g. "--storage-shards 2"). */
    'member-args': { type: 'string', default: '' },
    /** tids: print each actor thread's OS thread id first (to point perf at one). */
    tids: { type: 'boolean', default: false },
  },
});
const levels = flags.outstanding!.split(',').map(Number);
const durationS = Number(flags.duration);
const warmupS = Number(flags.warmup);
const keys = Number(flags.keys);
const value = 'v'.repeat(Number(flags['value-size']));
/** leaderWaitMs bounds the wait for the single member to elect itself. */
const leaderWaitMs = 10_000;

const silent = { info() {}, warn() {}, error() {} };

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'raft-capacity-'));
  const config = loadConfig(['--data-dir', dir, '--log-level', 'error',
    ...flags['member-args']!.split(' ').filter((a) => a !== '')], {});
  const plan = await planCluster(config);
  const system = new ActorSystem(actorSpecs(config, plan), {
    logger: silent, logConfig: loggerConfig(config), spinUs: config.actorSpinUs,
  });
  const kv = KvService.forSystem(system, config.storageShards, plan.selfId, plan.clusterId);
  await system.start();
  const put = (): Promise<unknown> => kv.write({
    type: 'put', key: `bench/raft/${String(Math.floor(Math.random() * keys)).padStart(8, '0')}`,
    value,
  });
  await firstWrite(put);
  if (flags.tids === true) {
    for (const t of system.threads()) console.log(`# tid ${t.tid} ${t.name}`);
  }
  console.log(`# Raft thread capacity (no HTTP): PUT ${value.length} B to ${keys} keys, ` +
    `${durationS} s per level after ${warmupS} s\n`);
  for (const n of levels) {
    const load = new Load(n, put);
    await sleep(warmupS * 1000);
    // This thread is the load, not the member: its CPU is reported apart, and the table and
    // its total hold the member's threads alone.
    const member = system.threads().filter((t) => t.name !== 'gateway');
    const driverTid = system.threads().find((t) => t.name === 'gateway')?.tid;
    const before = sampleTasks(process.pid);
    const done0 = load.done;
    const t0 = performance.now();
    await sleep(durationS * 1000);
    const ops = load.done - done0;
    const seconds = (performance.now() - t0) / 1000;
    const after = sampleTasks(process.pid);
    await load.stop();
    const driverUs = driverTid === undefined ? NaN
      : ((after.get(driverTid) ?? 0) - (before.get(driverTid) ?? 0)) * 1e6 / clockTicksPerSec / ops;
    if (driverTid !== undefined) for (const m of [before, after]) m.delete(driverTid);
    const t = threadCpu(before, after, member, ops, clockTicksPerSec);
    console.log(`## ${n} outstanding: ${Math.round(ops / seconds).toLocaleString('en-US')} ` +
      `writes/s, ${load.failed} failed\n`);
    console.log(`The driver (this process's main thread, standing in for the gateway): ` +
      `${driverUs.toFixed(2)} µs a write, not in the table.\n`);
    console.log(threadCpuMarkdown(t) + '\n');
  }
  await system.stop();
  rmSync(dir, { recursive: true, force: true });
}

/** firstWrite retries a write until the member has elected itself and applied it. */
async function firstWrite(put: () => Promise<unknown>): Promise<void> {
  const deadline = performance.now() + leaderWaitMs;
  for (;;) {
    try {
      await put();
      return;
    } catch (e) {
      if (performance.now() > deadline) throw e;
      await sleep(50);
    }
  }
}

/** Load keeps `n` writes outstanding until stopped. */
class Load {
  done = 0;
  failed = 0;
  private stopping = false;
  private readonly loops: Promise<void>[];

  constructor(n: number, private readonly put: () => Promise<unknown>) {
    this.loops = Array.from({ length: n }, () => this.loop());
  }

  private async loop(): Promise<void> {
    while (!this.stopping) {
      try {
        await this.put();
        this.done++;
      } catch {
        this.failed++;
      }
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.loops);
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
