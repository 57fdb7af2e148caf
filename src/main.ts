import { setRequestLimits } from './api/limits.js';
import { actorSpecs, planCluster } from './cluster/setup.js';
import { type Config, loadConfig } from './config/index.js';
import { ConfigError, HelpRequested, VersionRequested } from './config/errors.js';
import { KvService } from './gateway/kv-service.js';
import type { GatewayPool, PoolHooks, PoolOptions } from './gateway/pool.js';
import { gatewayThreadsFor } from './gateway/pool-size.js';
import { flushLogger } from './log/index.js';
import { ActorSystem } from './runtime/system.js';
import { StartupError } from './server/errors.js';
import { mallocHugePages } from './server/huge-pages.js';
import { loggerConfig, prepareStart } from './server/startup.js';
import { apiVersion, serverVersion as version, versionText } from './server/version.js';

/**
 * main: starts one MyEtcd member. The main thread is the gateway (HTTP) and the supervisor;
 * every other subsystem is an actor in its own worker thread:
 *
 *   gateway ──► raft ──► wal          (propose → persist)
 *      │        │ └────► shard-0..N-1 (apply)
 *      │        ├──────► watch ──► shards (history)   ──► gateway (events)
 *      │        └──────► lease ──► raft (expiry revokes)
 *      └──────────────► shard-0..N-1 (reads at a revision)
 */

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig(process.argv.slice(2), process.env);
  } catch (e) {
    if (e instanceof HelpRequested) {
      process.stdout.write(e.message + '\n');
      process.exit(0);
    }
    if (e instanceof VersionRequested) {
      process.stdout.write(versionText());
      process.exit(0);
    }
    if (e instanceof ConfigError) {
      process.stderr.write(`myetcd: ${e.message}\n`);
      process.exit(2);
    }
    throw e;
  }
  // The client ports, the data directory's lock and the log files, in that order; a failure
  // leaves nothing behind (src/server/startup.ts).
  const { clientUrls, grpcUrls, metricsUrls, lock, logger } = await prepareStart(config);
  const log = logger.child({ component: 'main' });
  // Who this member is: from --initial-cluster, or asked of the running members when it joins
  // (--initial-cluster-state existing); a restart takes it from the WAL instead.
  const plan = await planCluster(config);
  const { selfId: memberId, clusterId } = plan;
  const pool = await newPool(config, plan, logger);
  const system = new ActorSystem(actorSpecs(config, plan), {
    ...pool?.systemOptions,
    logger: logger.child({ component: 'supervisor' }),
    logConfig: loggerConfig(config), spinUs: config.actorSpinUs,
    onFatal: (reason) => {
      log.fatal({ reason }, 'giving up after repeated actor crashes');
      flushLogger(logger);
      process.exit(1);
    },
  });
  log.info({ name: config.name, dataDir: config.dataDir, shards: config.storageShards, version,
    apiVersion, mallocHugePages: mallocHugePages() }, 'starting myetcd');
  setRequestLimits(config.maxRequestBytes, config.maxTxnOps); // decoders', gateway's limits
  const kv = KvService.forSystem(system, config.storageShards, memberId, clusterId);
  const hooks = startPool(pool, system); // before the actors: they connect to its threads
  // The actor threads load their code and the WAL while this thread loads the client-facing
  // half (HTTP, gRPC, metrics, tracing: ≈ 0.45 s of modules alone on this thread), which
  // needs the actors only once they run: on 2 cores the two overlap instead of queueing.
  const [front] = await Promise.all([import('./server/front-end.js'), system.start()]);
  await front.serve({ config, clientUrls, grpcUrls, metricsUrls, lock, logger, log, system, kv,
    pool, hooks, memberId, clusterId });
}

main().catch((e: unknown) => {
  if (e instanceof StartupError) {
    process.stderr.write(`myetcd: ${e.message}\n`);
    process.exit(1);
  }
  process.stderr.write(`myetcd: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});

/** newPool makes the gateway threads' pool when --experimental-gateway-threads asks for more
 * than the main thread (src/gateway/pool.ts, loaded only then: it loads uWS and prom-client,
 * which the main thread's own gateway loads later, beside the actors' start); undefined: the
 * main thread serves HTTP. */
async function newPool(config: Config, plan: { selfId: number; clusterId: number },
  logger: { child(b: object): PoolOptions['log'] }): Promise<GatewayPool | undefined> {
  const threads = gatewayThreadsFor(config);
  if (threads <= 1) return undefined;
  const { GatewayPool: Pool } = await import('./gateway/pool.js');
  return new Pool({
    threads, config, memberId: plan.selfId, clusterId: plan.clusterId, version,
    logConfig: loggerConfig(config), log: logger.child({ component: 'gateway-pool' }),
  });
}

/** startPool starts the gateway threads (if any) with hooks that are set once the
 * observability they need exists (the threads call nothing before they listen). */
function startPool(pool: GatewayPool | undefined, system: ActorSystem):
  { set(h: PoolHooks): void } {
  let h: PoolHooks | undefined;
  const need = (): PoolHooks => {
    if (h === undefined) throw new Error('gateway pool hooks are not set yet');
    return h;
  };
  pool?.start({
    onCall: (kind) => need().onCall(kind),
    onObserved: (name, m) => need().onObserved(name, m),
    onCrash: (name, why) => need().onCrash(name, why),
    // At spawn, before set.
    onAttach: (name, w) => system.attach(name, w),
  });
  return { set: (x) => { h = x; } };
}

