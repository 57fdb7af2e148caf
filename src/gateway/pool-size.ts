import { availableParallelism } from 'node:os';
import type { Config } from '../config/index.js';
import { gatewayThreadsAutoMax, gatewayThreadsCoresMin, gatewayThreadsMax } from '../constants.js';

/* pool-size: how many gateway threads a member runs (the pool itself is src/gateway/pool.ts,
 * which main loads only when there is more than one). */

/** gatewayThreadsFor decides the number of gateway threads: --experimental-gateway-threads;
 * 0 (the default) sizes it to the cores: the main thread alone below gatewayThreadsCoresMin
 * cores, else half the cores up to gatewayThreadsAutoMax. 1 is the main thread alone. TLS
 * with client certificates (the relay of src/gateway/tls.ts) is served by the main thread. */
export function gatewayThreadsFor(config: Config, cores = availableParallelism()): number {
  if (config.clientCertAuth === 'true' &&
    config.listenClientUrls.some((u) => u.startsWith('https:'))) return 1;
  const auto = cores < gatewayThreadsCoresMin ? 1
    : Math.min(Math.floor(cores / 2), gatewayThreadsAutoMax);
  const n = config.gatewayThreads === 0 ? auto : config.gatewayThreads;
  return Math.max(1, Math.min(n, gatewayThreadsMax));
}
