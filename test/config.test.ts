import test from 'ava';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as C from '../src/constants.js';
import {
  ConfigError, HelpRequested, compactionRetention, grpcKeepaliveMs, leaseCheckpointIntervalMs,
  loadConfig, parseDurationMs, parseInitialCluster, settings, watchProgressNotifyMs,
} from '../src/config/index.js';

type T = import('ava').ExecutionContext;

function configError(t: T, fn: () => unknown, setting: string, re: RegExp): void {
  const e = t.throws(fn, { instanceOf: ConfigError });
  t.is(e?.setting, setting);
  t.regex(e?.message ?? '', re);
}

function tmpFile(t: T, text: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'myetcd-config-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'myetcd.conf.json');
  fs.writeFileSync(file, text);
  return file;
}

test('config: defaults follow etcd and src/constants', (t) => {
  const c = loadConfig([], {});
  t.is(c.name, 'default');
  t.is(c.dataDir, 'default.etcd');
  t.deepEqual(c.listenClientUrls, ['http://127.0.0.1:2379']);
  t.deepEqual(c.advertiseClientUrls, ['http://127.0.0.1:2379']);
  t.deepEqual(c.listenPeerUrls, ['http://127.0.0.1:2380']);
  t.deepEqual(c.initialAdvertisePeerUrls, ['http://127.0.0.1:2380']);
  t.is(c.initialCluster, 'default=http://127.0.0.1:2380');
  t.is(c.initialClusterState, 'new');
  t.is(c.initialClusterToken, 'etcd-cluster');
  t.is(c.heartbeatInterval, C.heartbeatIntervalMs);
  t.is(c.electionTimeout, C.electionTimeoutMs);
  t.is(c.snapshotCount, C.snapshotCount);
  t.is(c.quotaBackendBytes, C.quotaBackendBytes);
  t.is(c.maxRequestBytes, C.requestBytesMax);
  t.is(c.maxTxnOps, C.txnOpsMax);
  t.is(c.autoCompactionMode, 'periodic');
  t.is(c.autoCompactionRetention, '0');
  t.is(c.logLevel, 'info');
  t.deepEqual(c.logOutputs, ['stderr']);
  t.true(c.storageShards >= 1 && c.storageShards <= 8);
  t.is(c.configFile, '');
});

test('config: the config is a plain object that survives structured clone', (t) => {
  const c = loadConfig(['--name', 'n1'], {});
  t.deepEqual(structuredClone(c), c);
});

test('config: name drives the data dir and initial cluster defaults', (t) => {
  const c = loadConfig(['--name', 'infra1'], {});
  t.is(c.dataDir, 'infra1.etcd');
  t.is(c.initialCluster, 'infra1=http://127.0.0.1:2380');
});

test('config: flags take --flag value, --flag=value and a single dash', (t) => {
  const c = loadConfig(['--data-dir', '/d', '--max-txn-ops=64', '-snapshot-count', '5'], {});
  t.is(c.dataDir, '/d');
  t.is(c.maxTxnOps, 64);
  t.is(c.snapshotCount, 5);
});

test('config: list settings split on commas', (t) => {
  const c = loadConfig(['--listen-client-urls', 'http://127.0.0.1:1,http://127.0.0.2:2',
    '--log-outputs', 'stderr,/tmp/x.log'], {});
  t.deepEqual(c.listenClientUrls, ['http://127.0.0.1:1', 'http://127.0.0.2:2']);
  t.deepEqual(c.advertiseClientUrls, c.listenClientUrls);
  t.deepEqual(c.logOutputs, ['stderr', '/tmp/x.log']);
});

test('config: a wildcard listen address is not advertised', (t) => {
  const c = loadConfig(['--listen-client-urls', 'http://0.0.0.0:2379'], {});
  t.deepEqual(c.advertiseClientUrls, ['http://127.0.0.1:2379']);
});

test('config: precedence is flags > MYETCD_* > ETCD_* > file > defaults', (t) => {
  const file = tmpFile(t, JSON.stringify({
    'name': 'fromfile', 'data-dir': '/file', 'snapshot-count': 7, 'max-txn-ops': 7,
    'log-level': 'error',
  }));
  const env = { MYETCD_DATA_DIR: '/myenv', ETCD_DATA_DIR: '/etcdenv', ETCD_SNAPSHOT_COUNT: '8',
    MYETCD_LOG_LEVEL: 'warn' };
  const c = loadConfig(['--config-file', file, '--log-level', 'debug'], env);
  t.is(c.name, 'fromfile');
  t.is(c.dataDir, '/myenv');
  t.is(c.snapshotCount, 8);
  t.is(c.maxTxnOps, 7);
  t.is(c.logLevel, 'debug');
  t.is(c.configFile, file);
});

test('config: MYETCD_CONFIG_FILE names the config file', (t) => {
  const file = tmpFile(t, JSON.stringify({ 'max-request-bytes': 1000 }));
  t.is(loadConfig([], { MYETCD_CONFIG_FILE: file }).maxRequestBytes, 1000);
});

test('config: config file lists may be arrays or comma strings, null means unset', (t) => {
  const file = tmpFile(t, JSON.stringify({
    'listen-client-urls': 'http://127.0.0.1:3000,http://127.0.0.1:3001',
    'log-outputs': ['stdout'], 'auto-compaction-retention': 1, 'initial-cluster-token': null,
  }));
  const c = loadConfig(['--config-file', file], {});
  t.deepEqual(c.listenClientUrls, ['http://127.0.0.1:3000', 'http://127.0.0.1:3001']);
  t.deepEqual(c.logOutputs, ['stdout']);
  t.is(c.autoCompactionRetention, '1');
  t.is(c.initialClusterToken, 'etcd-cluster');
});

test('config: --help throws HelpRequested listing every setting, default and env name', (t) => {
  const e = t.throws(() => loadConfig(['--name', 'x', '--help'], {}),
    { instanceOf: HelpRequested });
  for (const s of settings) {
    t.true(e!.help.includes(`--${s.flag} `), s.flag);
    t.true(e!.help.includes(`default: ${s.defaultText}`), s.flag);
    t.true(e!.help.includes('MYETCD_' + s.flag.toUpperCase().replace(/-/g, '_')), s.flag);
  }
});

interface Invalid {
  name: string;
  argv: string[];
  env?: NodeJS.ProcessEnv;
  setting: string;
  re: RegExp;
}

const invalid: Invalid[] = [
  { name: 'unknown flag', argv: ['--nope', '1'], setting: 'nope', re: /unknown flag --nope/ },
  { name: 'positional argument', argv: ['stray'], setting: '',
    re: /unexpected argument "stray"/ },
  { name: 'flag without value', argv: ['--data-dir'], setting: 'data-dir', re: /needs a value/ },
  { name: 'flag followed by a flag', argv: ['--name', '--data-dir', 'x'], setting: 'name',
    re: /needs a value/ },
  { name: 'non-integer', argv: ['--heartbeat-interval', 'fast'], setting: 'heartbeat-interval',
    re: /--heartbeat-interval: invalid value "fast": expected a non-negative integer \(milli/ },
  { name: 'negative integer', argv: ['--max-txn-ops=-1'], setting: 'max-txn-ops',
    re: /non-negative integer/ },
  { name: 'zero where at least one', argv: ['--snapshot-count', '0'], setting: 'snapshot-count',
    re: /at least 1/ },
  { name: 'bad enum', argv: ['--log-level', 'trace'], setting: 'log-level',
    re: /one of debug, info, warn, error/ },
  { name: 'bad cluster state', argv: ['--initial-cluster-state', 'old'],
    setting: 'initial-cluster-state', re: /one of new, existing/ },
  { name: 'not a URL', argv: ['--listen-peer-urls', 'localhost'], setting: 'listen-peer-urls',
    re: /is not a URL/ },
  { name: 'URL scheme', argv: ['--listen-client-urls', 'ftp://a:1'],
    setting: 'listen-client-urls', re: /http or https/ },
  { name: 'listen URL without port', argv: ['--listen-client-urls', 'http://127.0.0.1'],
    setting: 'listen-client-urls', re: /has no port/ },
  { name: 'URL with a path', argv: ['--advertise-client-urls', 'http://a:1/x'],
    setting: 'advertise-client-urls', re: /must not have a path/ },
  { name: 'election under 5 heartbeats', argv: ['--heartbeat-interval', '300'],
    setting: 'election-timeout',
    re: /--election-timeout\[1000ms\] should be at least as 5 times as --heartbeat-interval\[300/ },
  { name: 'election too long', argv: ['--election-timeout', '60000'],
    setting: 'election-timeout', re: /at most 50000/ },
  { name: 'name missing from cluster',
    argv: ['--name', 'a', '--initial-cluster', 'b=http://127.0.0.1:2380'],
    setting: 'initial-cluster', re: /couldn't find local name "a"/ },
  { name: 'cluster pair without =', argv: ['--initial-cluster', 'default'],
    setting: 'initial-cluster', re: /"default" is not name=url/ },
  { name: 'advertise peer URLs disagree with cluster',
    argv: ['--initial-cluster', 'default=http://127.0.0.1:9999'],
    setting: 'initial-advertise-peer-urls', re: /does not match --initial-cluster/ },
  { name: 'one URL for two members',
    argv: ['--initial-cluster', 'default=http://127.0.0.1:2380,b=http://127.0.0.1:2380'],
    setting: 'initial-cluster', re: /given for both default and b/ },
  { name: 'revision retention not a count',
    argv: ['--auto-compaction-mode', 'revision', '--auto-compaction-retention', '1h'],
    setting: 'auto-compaction-retention', re: /revision count/ },
  { name: 'periodic retention garbage', argv: ['--auto-compaction-retention', 'soon'],
    setting: 'auto-compaction-retention', re: /invalid value "soon"/ },
  { name: 'rotation interval garbage', argv: ['--log-rotation-interval', 'weekly'],
    setting: 'log-rotation-interval', re: /none, hourly, daily/ },
  { name: 'shards out of range', argv: ['--storage-shards', '0'], setting: 'storage-shards',
    re: /at least 1/ },
  { name: 'unknown MYETCD_ variable', argv: [], env: { MYETCD_DATADIR: '/x' }, setting: '',
    re: /unknown environment variable MYETCD_DATADIR/ },
  { name: 'bad env value names the variable', argv: [], env: { ETCD_MAX_TXN_OPS: 'many' },
    setting: 'max-txn-ops', re: /ETCD_MAX_TXN_OPS \(--max-txn-ops\): invalid value "many"/ },
  { name: 'missing config file', argv: ['--config-file', '/nonexistent/x.json'],
    setting: 'config-file', re: /cannot read \/nonexistent\/x.json/ },
];

for (const c of invalid) {
  test(`config: rejects ${c.name}`, (t) => {
    configError(t, () => loadConfig(c.argv, c.env ?? {}), c.setting, c.re);
  });
}

test('config: unknown ETCD_* variables are ignored, as etcd only warns', (t) => {
  t.notThrows(() => loadConfig([], { ETCD_UNSUPPORTED_ARCH: 'arm', ETCDCTL_API: '3' }));
});

test('config: config file errors name the key', (t) => {
  const withFile = (text: string) => () => loadConfig(['--config-file', tmpFile(t, text)], {});
  configError(t, withFile('{"wal-dir": "/x"}'), 'wal-dir', /"wal-dir": unknown key/);
  configError(t, withFile('{"snapshot-count": "5"}'), 'snapshot-count',
    /"snapshot-count": expected a non-negative integer, got "5"/);
  configError(t, withFile('{"name": 5}'), 'name', /"name": expected a string/);
  configError(t, withFile('{"log-outputs": [1]}'), 'log-outputs', /string or an array of strings/);
  configError(t, withFile('{name: 1}'), 'config-file', /not valid JSON/);
  configError(t, withFile('[1]'), 'config-file', /JSON object/);
});

test('config: parseInitialCluster groups several URLs per member', (t) => {
  const m = parseInitialCluster(
    'a=http://10.0.0.1:2380,b=http://10.0.0.2:2380,a=http://10.0.0.3:2380');
  t.deepEqual([...m], [
    ['a', ['http://10.0.0.1:2380', 'http://10.0.0.3:2380']],
    ['b', ['http://10.0.0.2:2380']],
  ]);
});

test('config: compactionRetention reads hours, durations and revision counts as etcd', (t) => {
  t.deepEqual(compactionRetention('periodic', '0'), { mode: 'off' });
  t.deepEqual(compactionRetention('periodic', '1'), { mode: 'periodic', periodMs: 3_600_000 });
  t.deepEqual(compactionRetention('periodic', '1h30m'), { mode: 'periodic', periodMs: 5_400_000 });
  t.deepEqual(compactionRetention('revision', '1000'), { mode: 'revision', revisions: 1000 });
  t.is(parseDurationMs('500ms'), 500);
  t.is(parseDurationMs('2.5s'), 2500);
  t.is(parseDurationMs('1x'), undefined);
  t.is(parseDurationMs(''), undefined);
  t.is(parseDurationMs('0'), 0, "Go's time.ParseDuration accepts a bare 0");
  t.is(parseDurationMs('00'), undefined);
});

test('config: the lease checkpoint interval defaults to the server constant; 0 disables', (t) => {
  const cfg = loadConfig([], {});
  t.is(leaseCheckpointIntervalMs(cfg.leaseCheckpointInterval), C.leaseCheckpointIntervalMs);
  t.is(settings.find((s) => s.key === 'leaseCheckpointInterval')?.defaultText,
    cfg.leaseCheckpointInterval);
  t.is(leaseCheckpointIntervalMs('0'), 0);
  t.is(leaseCheckpointIntervalMs('200ms'), 200);
  configError(t, () => loadConfig(['--experimental-lease-checkpoint-interval', '5'], {}),
    'experimental-lease-checkpoint-interval', /invalid value "5"/);
});

test('config: --grpc-keepalive-interval and --grpc-keepalive-timeout are durations with ' +
  'etcd\'s defaults (2h, 20s); 0 turns the pings off; anything else is refused', (t) => {
  t.deepEqual(grpcKeepaliveMs(loadConfig([], {})), { intervalMs: 7_200_000, timeoutMs: 20_000 });
  t.deepEqual(grpcKeepaliveMs(loadConfig(['--grpc-keepalive-interval', '0',
    '--grpc-keepalive-timeout', '1m30s'], {})), { intervalMs: 0, timeoutMs: 90_000 });
  t.deepEqual(grpcKeepaliveMs(loadConfig([], { ETCD_GRPC_KEEPALIVE_INTERVAL: '10s' })),
    { intervalMs: 10_000, timeoutMs: 20_000 });
  configError(t, () => loadConfig(['--grpc-keepalive-timeout', 'soon'], {}),
    'grpc-keepalive-timeout', /invalid value "soon"/);
});

test('config: --max-snapshots and --max-wals take etcd\'s defaults (5); --max-snapshots 0 is ' +
  'unlimited, --max-wals 0 (etcd: keep every file) is refused', (t) => {
  const d = loadConfig([], {});
  t.is(d.maxSnapshots, 5);
  t.is(d.maxWals, 5);
  const c = loadConfig(['--max-snapshots', '0', '--max-wals=2'], {});
  t.is(c.maxSnapshots, 0);
  t.is(c.maxWals, 2);
  t.is(loadConfig([], { ETCD_MAX_SNAPSHOTS: '3' }).maxSnapshots, 3);
  configError(t, () => loadConfig(['--max-wals', '0'], {}), 'max-wals', /at least 1/);
  configError(t, () => loadConfig(['--max-snapshots', '-1'], {}), 'max-snapshots',
    /invalid value/);
});

test('config: --max-concurrent-streams is a positive count, 1000 unless given', (t) => {
  t.is(loadConfig([], {}).maxConcurrentStreams, C.grpcConcurrentStreamsMax);
  t.is(loadConfig(['--max-concurrent-streams', '4294967295'], {}).maxConcurrentStreams,
    4294967295);
  configError(t, () => loadConfig(['--max-concurrent-streams', '0'], {}),
    'max-concurrent-streams', /at least 1/);
});

test('config: --experimental-watch-progress-notify-interval is a duration, 10m by default; as ' +
  'etcd, 0 keeps the default and less than 100ms is raised to it', (t) => {
  const ms = (args: string[]) =>
    watchProgressNotifyMs(loadConfig(args, {}).watchProgressNotifyInterval);
  const flag = '--experimental-watch-progress-notify-interval';
  t.is(ms([]), 600_000);
  t.is(ms([flag, '2s']), 2_000);
  t.is(ms([flag, '0']), 600_000);
  t.is(ms([flag, '10ms']), 100);
  configError(t, () => loadConfig([flag, 'often'], {}),
    'experimental-watch-progress-notify-interval', /invalid value "often"/);
});

test('config: etcd flags this member has one value of (--pre-vote, --logger, --enable-v2, ' +
  '--enable-pprof, --metrics) take it, bare or spelled, and refuse the others saying why',
(t) => {
  const c = loadConfig(['--pre-vote', '--logger', 'zap', '--enable-v2=false', '--enable-pprof',
    'false', '--metrics', 'basic'], {});
  t.deepEqual([c.preVote, c.logger, c.enableV2, c.enablePprof, c.metrics],
    ['true', 'zap', 'false', 'false', 'basic']);
  t.deepEqual(loadConfig([], {}).enableV2, 'false');
  configError(t, () => loadConfig(['--enable-v2'], {}), 'enable-v2',
    /"true": only false: the v2 API is not served/);
  configError(t, () => loadConfig(['--pre-vote', 'false'], {}), 'pre-vote', /always runs/);
  configError(t, () => loadConfig(['--logger', 'capnslog'], {}), 'logger', /only zap/);
  configError(t, () => loadConfig(['--metrics=extensive'], {}), 'metrics', /not exported/);
  configError(t, () => loadConfig([], { ETCD_ENABLE_PPROF: 'true' }), 'enable-pprof',
    /only false/);
});

test('config: --cors is * by default, or origins written scheme://host:port as etcd takes ' +
  'them; empty means any', (t) => {
  t.deepEqual(loadConfig([], {}).cors, ['*']);
  t.deepEqual(loadConfig(['--cors', 'http://a.com:80,https://[::1]:8443'], {}).cors,
    ['http://a.com:80', 'https://[::1]:8443']);
  t.deepEqual(loadConfig(['--cors', ''], {}).cors, ['*']);
  t.deepEqual(loadConfig([], { ETCD_CORS: 'http://b:1' }).cors, ['http://b:1']);
  for (const bad of ['http://a.com', 'a.com:80', 'ftp://a.com:21', 'http://a.com:80/x']) {
    configError(t, () => loadConfig(['--cors', bad], {}), 'cors', /scheme:\/\/host:port/);
  }
});
