/**
 * config.ts — how the server resolves its configuration (src/config, docs/configuration.md).
 *
 * Every setting has an etcd-named flag, an environment variable (MYETCD_<FLAG>, or etcd's
 * ETCD_<FLAG>) and a key in a JSON config file. Highest wins: flags > environment > file >
 * defaults. This program writes a small config file, sets a few variables, passes a flag,
 * and prints where each value came from. Extra flags given to it are layered on top:
 *
 *   node dist/examples/config.js [--name n1 --heartbeat-interval 200 ...]
 *
 * (It starts no server: loadConfig is a pure function of argv, environment and the file.)
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../src/config/index.js';

const dir = mkdtempSync(join(tmpdir(), 'myetcd-config-example-'));
const file = join(dir, 'myetcd.json');
// The file's keys are the flag names, exactly as in etcd's YAML config file.
writeFileSync(file, JSON.stringify({
  'name': 'from-file',
  'data-dir': join(dir, 'data'),
  'heartbeat-interval': 50,
  'election-timeout': 500,
  'log-level': 'warn',
  'listen-client-urls': 'http://127.0.0.1:2379',
}, null, 2));

// A made-up environment (the real server passes process.env).
const env = {
  MYETCD_LOG_LEVEL: 'debug', // beats the file's "warn"
  ETCD_NAME: 'from-etcd-env', // etcd's variable names work too…
  MYETCD_NAME: 'from-env', //   …but MYETCD_* wins over ETCD_*
};
const argv = ['--config-file', file, '--name', 'from-flag', ...process.argv.slice(2)];

try {
  const config = loadConfig(argv, env);
  console.log(`loaded configuration (file ${file}):`);
  console.log(`  name              = ${config.name}   (flag beats env and file)`);
  console.log(`  logLevel          = ${config.logLevel}   (env beats file)`);
  console.log(`  heartbeatInterval = ${config.heartbeatInterval}   (file beats default)`);
  console.log(`  electionTimeout   = ${config.electionTimeout}`);
  console.log(`  snapshotCount     = ${config.snapshotCount}   (default)`);
  console.log(`  initialCluster    = ${config.initialCluster}   (derived)`);
  console.log('the whole Config object:');
  console.log(JSON.stringify(config, null, 2));

  // Mistakes name the setting at fault; the server prints the message and exits 2.
  for (const bad of [['--heartbeat-interval', 'fast'], ['--no-such-flag', '1']]) {
    try {
      loadConfig(bad, {});
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      console.log(`rejected ${bad.join(' ')}: ${e.message}`);
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
