/**
 * config: the server's settings, read from flags, environment and a JSON file
 * (see load.ts for precedence and docs/configuration.md for every setting).
 */
export { type Config, clusterStates, compactionModes, logLevels } from './config.js';
export { ConfigError, HelpRequested, VersionRequested } from './errors.js';
export {
  loadConfig, parseInitialCluster, compactionRetention, type CompactionRetention,
  grpcKeepaliveMs, leaseCheckpointIntervalMs, watchProgressNotifyMs, parseDurationMs,
  rotationIntervalMs, urlProblem,
} from './load.js';
export { traceSampleRateOf, otlpEndpointOf } from './load.js';
export { helpText } from './help.js';
export { settings, envName, type Setting } from './settings.js';
