import * as fs from 'node:fs';
import * as C from '../constants.js';
import type { Config } from './config.js';
import * as D from './defaults.js';
import { ConfigError, HelpRequested, VersionRequested } from './errors.js';
import { byFlag, envName, type Setting, settings } from './settings.js';
import { helpText } from './help.js';
import { parseDurationMs, rotationIntervalMs, urlProblem } from './values.js';

export { parseDurationMs, rotationIntervalMs, urlProblem };

/**
 * loadConfig resolves the server's configuration from its command-line arguments (without
 * `node` and the script: pass `process.argv.slice(2)`) and environment.
 *
 * Precedence, highest first: flags > environment (MYETCD_<FLAG>, then etcd's ETCD_<FLAG>) >
 * the JSON file named by --config-file > defaults. (etcd itself ignores flags and environment
 * when --config-file is set; we layer them instead, so one file can be shared and one flag
 * changed per member.) Flags take `--flag value`, `--flag=value`, or Go's single dash.
 *
 * Throws ConfigError naming the setting for an unknown flag, environment variable
 * (MYETCD_* only: ETCD_* names etcd does not know are ignored, as etcd warns and goes on) or
 * file key, a value of the wrong type, a bad URL, or an impossible combination; throws
 * HelpRequested for `--help`/`-h` and VersionRequested for `--version`.
 */
export function loadConfig(argv: string[], env: NodeJS.ProcessEnv): Config {
  const fromFlags = parseFlags(argv);
  const fromEnv = parseEnv(env);
  const configFile = (fromFlags.get('configFile') ?? fromEnv.get('configFile') ?? '') as string;
  const fromFile = configFile === ''
    ? new Map<keyof Config, unknown>()
    : readConfigFile(configFile);

  const explicit = new Map<keyof Config, unknown>([...fromFile, ...fromEnv, ...fromFlags]);
  const get = <K extends keyof Config>(k: K): Config[K] | undefined =>
    explicit.get(k) as Config[K] | undefined;

  const name = get('name') ?? D.defaultName;
  const listenClientUrls = get('listenClientUrls') ?? [D.defaultClientUrl];
  const listenPeerUrls = get('listenPeerUrls') ?? [D.defaultPeerUrl];
  // gRPC's own port (see Config): etcd's gRPC proxy port by default; when the client URLs are
  // given (tests, clusters on one host), the OS picks one on each of their hosts, so that
  // members never collide on a fixed port.
  const defaultGrpcUrl = `http://127.0.0.1:${C.grpcListenPortDefault}`;
  const listenClientGrpcUrls = get('listenClientGrpcUrls') ?? (get('listenClientUrls') ===
    undefined ? [defaultGrpcUrl] : listenClientUrls.map((s) => {
      const url = new URL(s);
      return `${url.protocol}//${url.hostname}:0`;
    }));

  const initialAdvertisePeerUrls =
    get('initialAdvertisePeerUrls') ?? advertisable(listenPeerUrls, D.defaultPeerUrl);
  const cfg: Config = {
    name,
    dataDir: get('dataDir') ?? `${name}.etcd`,
    listenClientUrls,
    advertiseClientUrls:
      get('advertiseClientUrls') ?? advertisable(listenClientUrls, D.defaultClientUrl),
    listenClientGrpcUrls,
    listenMetricsUrls: get('listenMetricsUrls') ?? [],
    advertiseClientGrpcUrls: get('advertiseClientGrpcUrls') ??
      advertisable(listenClientGrpcUrls, defaultGrpcUrl),
    listenPeerUrls,
    initialAdvertisePeerUrls,
    initialCluster:
      get('initialCluster') ?? initialAdvertisePeerUrls.map((url) => `${name}=${url}`).join(','),
    initialClusterState: get('initialClusterState') ?? 'new',
    initialClusterToken: get('initialClusterToken') ?? D.defaultClusterToken,
    heartbeatInterval: get('heartbeatInterval') ?? C.heartbeatIntervalMs,
    electionTimeout: get('electionTimeout') ?? C.electionTimeoutMs,
    strictReconfigCheck: get('strictReconfigCheck') ?? 'true',
    ...durationsOf(get),
    maxConcurrentStreams: get('maxConcurrentStreams') ?? C.grpcConcurrentStreamsMax,
    ...snapshotsAndWalOf(get),
    ...fixedOf(get),
    quotaBackendBytes: get('quotaBackendBytes') || C.quotaBackendBytes,
    maxRequestBytes: get('maxRequestBytes') ?? C.requestBytesMax,
    maxTxnOps: get('maxTxnOps') ?? C.txnOpsMax,
    watchBufferedBytesMax: get('watchBufferedBytesMax') ?? C.watchBufferedBytesMax,
    gatewayThreads: get('gatewayThreads') ?? C.gatewayThreadsDefault,
    actorSpinUs: get('actorSpinUs') ?? C.actorSpinUsDefault,
    autoCompactionMode: get('autoCompactionMode') ?? 'periodic',
    autoCompactionRetention: get('autoCompactionRetention') ?? '0',
    ...logsOf(get),
    storageShards: get('storageShards') ?? D.defaultStorageShards(),
    configFile,
    traceSampleRate: get('traceSampleRate') ?? '0',
    otlpEndpoint: get('otlpEndpoint') ?? '',
    ...securityOf(get),
  };
  validate(cfg, explicit.has('initialCluster'));
  return cfg;
}

/** Getter reads one explicitly given setting (flag, environment or file). */
type Getter = <K extends keyof Config>(k: K) => Config[K] | undefined;

/** durationsOf reads the settings written as Go durations (checked by validate). */
function durationsOf(get: Getter):
  Pick<Config, 'leaseCheckpointInterval' | 'grpcKeepaliveInterval' | 'grpcKeepaliveTimeout' |
    'watchProgressNotifyInterval'> {
  return {
    leaseCheckpointInterval: get('leaseCheckpointInterval') ?? D.leaseCheckpointIntervalDefault,
    watchProgressNotifyInterval: get('watchProgressNotifyInterval') ??
      D.watchProgressNotifyIntervalDefault,
    grpcKeepaliveInterval: get('grpcKeepaliveInterval') ?? D.grpcKeepaliveIntervalDefault,
    grpcKeepaliveTimeout: get('grpcKeepaliveTimeout') ?? D.grpcKeepaliveTimeoutDefault,
  };
}

/** fixedOf reads the etcd flags accepted with one value only (settings.ts: enum, why). */
function fixedOf(get: Getter):
  Pick<Config, 'preVote' | 'enableV2' | 'enablePprof' | 'metrics'> {
  return {
    preVote: get('preVote') ?? 'true', enableV2: get('enableV2') ?? 'false',
    enablePprof: get('enablePprof') ?? 'false', metrics: get('metrics') ?? 'basic',
  };
}

/** logsOf reads the logging settings. */
function logsOf(get: Getter): Pick<Config, 'logger' | 'logLevel' | 'logOutputs' |
  'logRotationMaxSizeMb' | 'logRotationInterval'> {
  return {
    logger: get('logger') ?? 'zap',
    logLevel: get('logLevel') ?? 'info',
    logOutputs: get('logOutputs') ?? ['stderr'],
    logRotationMaxSizeMb: get('logRotationMaxSizeMb') ?? D.logRotationMaxSizeMbDefault,
    logRotationInterval: get('logRotationInterval') ?? D.logRotationIntervalDefault,
  };
}

/** snapshotsAndWalOf reads the settings of snapshots and of the WAL's files. */
function snapshotsAndWalOf(get: Getter): Pick<Config, 'snapshotCount' |
  'snapshotCatchupEntries' | 'maxSnapshots' | 'maxWals' | 'walZeroAheadBytes'> {
  return {
    snapshotCount: get('snapshotCount') ?? C.snapshotCount,
    snapshotCatchupEntries: get('snapshotCatchupEntries') ?? C.snapshotCatchUpEntries,
    maxSnapshots: get('maxSnapshots') ?? C.snapshotFilesKept,
    maxWals: get('maxWals') ?? C.walFilesKept,
    walZeroAheadBytes: get('walZeroAheadBytes') ?? C.walZeroAheadBytes,
  };
}

/** SecurityKey names the TLS and auth settings. */
type SecurityKey = 'certFile' | 'keyFile' | 'trustedCaFile' | 'clientCertAuth' | 'autoTls' |
  'peerCertFile' | 'peerKeyFile' | 'peerTrustedCaFile' | 'peerClientCertAuth' | 'peerAutoTls' |
  'authToken' | 'authTokenTtl' | 'bcryptCost' | 'cors';

/** securityOf: the TLS and auth settings with etcd's defaults (docs/security.md). */
function securityOf(get: Getter): Pick<Config, SecurityKey> {
  return {
    certFile: get('certFile') ?? '',
    keyFile: get('keyFile') ?? '',
    trustedCaFile: get('trustedCaFile') ?? '',
    clientCertAuth: get('clientCertAuth') ?? 'false',
    autoTls: get('autoTls') ?? 'false',
    peerCertFile: get('peerCertFile') ?? '',
    peerKeyFile: get('peerKeyFile') ?? '',
    peerTrustedCaFile: get('peerTrustedCaFile') ?? '',
    peerClientCertAuth: get('peerClientCertAuth') ?? 'false',
    peerAutoTls: get('peerAutoTls') ?? 'false',
    authToken: get('authToken') ?? 'simple',
    authTokenTtl: get('authTokenTtl') ?? 300,
    bcryptCost: get('bcryptCost') ?? 10,
    cors: get('cors') ?? ['*'],
  };
}

/** advertisable returns listen URLs as advertise URLs unless one listens on a wildcard
 * address (0.0.0.0, ::), which no peer or client could dial; then etcd's fixed default. */
function advertisable(listen: string[], fallback: string): string[] {
  const wildcard = listen.some((s) => {
    const h = new URL(s).hostname;
    return h === '0.0.0.0' || h === '[::]' || h === '::';
  });
  return wildcard ? [fallback] : [...listen];
}

function parseFlags(argv: string[]): Map<keyof Config, unknown> {
  const out = new Map<keyof Config, unknown>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--help' || arg === '-h' || arg === '-help') throw new HelpRequested(helpText());
    if (arg === '--version' || arg === '-version') throw new VersionRequested();
    if (!arg.startsWith('-') || arg === '-' || arg === '--') {
      throw new ConfigError('',
        `unexpected argument ${JSON.stringify(arg)}: settings are given as --flag value`);
    }
    const body = arg.replace(/^--?/, '');
    const eq = body.indexOf('=');
    const flag = eq < 0 ? body : body.slice(0, eq);
    const s = byFlag.get(flag);
    if (s === undefined) throw new ConfigError(flag, `unknown flag --${flag} (see --help)`);
    let raw: string;
    if (eq >= 0) {
      raw = body.slice(eq + 1);
    } else {
      const next = argv[i + 1];
      if (isBool(s) && next !== 'true' && next !== 'false') {
        // A boolean flag alone means true, as Go's flag package reads `--client-cert-auth`.
        out.set(s.key, parseText(s, 'true', `--${flag}`));
        continue;
      }
      if (next === undefined || next.startsWith('--')) {
        throw new ConfigError(flag, `--${flag} needs a value (--${flag} <${s.value}>)`);
      }
      raw = next;
      i++;
    }
    out.set(s.key, parseText(s, raw, `--${flag}`));
  }
  return out;
}

function parseEnv(env: NodeJS.ProcessEnv): Map<keyof Config, unknown> {
  const out = new Map<keyof Config, unknown>();
  const known = new Set(settings.map((s) => envName(s.flag)));
  for (const name of Object.keys(env)) {
    if (name.startsWith('MYETCD_') && !known.has(name)) {
      throw new ConfigError('',
        `unknown environment variable ${name} (see --help for MYETCD_* names)`);
    }
  }
  for (const s of settings) {
    for (const prefix of ['MYETCD_', 'ETCD_']) {
      const name = envName(s.flag, prefix);
      const raw = env[name];
      if (raw === undefined) continue;
      out.set(s.key, parseText(s, raw, `${name} (--${s.flag})`));
      break;
    }
  }
  return out;
}

function readConfigFile(path: string): Map<keyof Config, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch (e) {
    const why = (e as Error).message;
    throw new ConfigError('config-file', `--config-file: cannot read ${path}: ${why}`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    const why = (e as Error).message;
    throw new ConfigError('config-file', `--config-file: ${path} is not valid JSON: ${why}`);
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw new ConfigError('config-file', `--config-file: ${path} must hold a JSON object`);
  }
  const out = new Map<keyof Config, unknown>();
  for (const [k, v] of Object.entries(doc as Record<string, unknown>)) {
    const s = byFlag.get(k);
    const where = `config file ${path}: "${k}"`;
    if (s === undefined) throw new ConfigError(k, `${where}: unknown key`);
    if (s.key === 'configFile') {
      throw new ConfigError(k, `${where}: a config file cannot name another`);
    }
    if (v === null) continue; // YAML-converted files carry `key: null` for unset settings
    out.set(s.key, parseJson(s, v, where));
  }
  return out;
}

/** isBool: a true|false setting, which a bare flag sets to true. */
function isBool(s: Setting): boolean {
  return s.kind.t === 'enum' && (s.kind.bool === true || (s.kind.choices.length === 2 &&
    s.kind.choices[0] === 'true' && s.kind.choices[1] === 'false'));
}

/** parseText parses a flag's or environment variable's text by the setting's kind. */
function parseText(s: Setting, raw: string, where: string): unknown {
  const bad = (why: string) =>
    new ConfigError(s.flag, `${where}: invalid value ${JSON.stringify(raw)}: ${why}`);
  switch (s.kind.t) {
    case 'string':
      if (s.kind.nonEmpty && raw === '') throw bad('must not be empty');
      return raw;
    case 'enum':
      if (s.kind.choices.includes(raw)) return raw;
      if (s.kind.why !== undefined) throw bad(`only ${s.kind.choices.join(', ')}: ${s.kind.why}`);
      throw bad(`expected one of ${s.kind.choices.join(', ')}`);
    case 'int': {
      if (!/^\d+$/.test(raw.trim())) throw bad(`expected a non-negative integer${unit(s)}`);
      return checkInt(s, Number(raw.trim()), bad);
    }
    case 'list':
    case 'urls': {
      const items = raw.split(',').map((x) => x.trim()).filter((x) => x !== '');
      return checkList(s, items, bad);
    }
  }
}

/** parseJson checks a config-file value's JSON type, then parses it like text. */
function parseJson(s: Setting, v: unknown, where: string): unknown {
  const bad = (why: string) =>
    new ConfigError(s.flag, `${where}: ${why}, got ${JSON.stringify(v)}`);
  switch (s.kind.t) {
    case 'string':
    case 'enum':
      if (s.key === 'autoCompactionRetention' && typeof v === 'number') v = String(v);
      if (typeof v === 'boolean' && isBool(s)) v = String(v);
      if (typeof v !== 'string') throw bad('expected a string');
      return parseText(s, v, where);
    case 'int':
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
        throw bad(`expected a non-negative integer${unit(s)}`);
      }
      return checkInt(s, v, (why) => new ConfigError(s.flag, `${where}: ${why}`));
    case 'list':
    case 'urls':
      if (typeof v === 'string') return parseText(s, v, where);
      if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) {
        throw bad('expected a string or an array of strings');
      }
      return checkList(s, v.map((x: string) => x.trim()),
        (why) => new ConfigError(s.flag, `${where}: ${why}`));
  }
}

function unit(s: Setting): string {
  return s.kind.t === 'int' && s.kind.unit ? ` (${s.kind.unit})` : '';
}

function checkInt(s: Setting, n: number, bad: (why: string) => ConfigError): number {
  if (s.kind.t !== 'int') throw new Error('config: checkInt on a non-int setting');
  if (!Number.isSafeInteger(n)) throw bad('too large');
  if (n < s.kind.min) throw bad(`must be at least ${s.kind.min}`);
  if (s.kind.max !== undefined && n > s.kind.max) throw bad(`must be at most ${s.kind.max}`);
  return n;
}

function checkList(s: Setting, items: string[], bad: (why: string) => ConfigError): string[] {
  if (s.kind.t === 'list' && s.kind.origins === true) return checkOrigins(items, bad);
  if (items.length === 0) throw bad('expected at least one value');
  if (s.kind.t === 'urls') {
    for (const item of items) {
      const why = urlProblem(item, s.kind.listen);
      if (why !== undefined) throw bad(`${JSON.stringify(item)} ${why}`);
    }
  }
  return items;
}

/** checkOrigins checks --cors: '*' or origins as etcd takes them, scheme://host:port (a
 * browser's Origin is matched against them as written); none means any, as '*'. */
function checkOrigins(items: string[], bad: (why: string) => ConfigError): string[] {
  if (items.length === 0) return ['*'];
  for (const item of items) {
    if (item !== '*' && !/^https?:\/\/(\[[0-9a-fA-F:.]+\]|[^\s/:@[\]]+):\d{1,5}$/.test(item)) {
      throw bad(`${JSON.stringify(item)} is not * or an origin of the form scheme://host:port`);
    }
  }
  return items;
}

/** parseInitialCluster parses `name=url,name=url` into member name → peer URLs (one name
 * may appear several times for several URLs, as in etcd). Throws ConfigError. */
export function parseInitialCluster(text: string): Map<string, string[]> {
  const members = new Map<string, string[]>();
  for (const pair of text.split(',').map((x) => x.trim()).filter((x) => x !== '')) {
    const eq = pair.indexOf('=');
    const name = eq < 0 ? '' : pair.slice(0, eq);
    const url = eq < 0 ? '' : pair.slice(eq + 1);
    if (name === '' || url === '') {
      throw new ConfigError('initial-cluster',
        `--initial-cluster: ${JSON.stringify(pair)} is not name=url`);
    }
    const why = urlProblem(url, true);
    if (why !== undefined) {
      throw new ConfigError('initial-cluster',
        `--initial-cluster: ${JSON.stringify(url)} of ${name} ${why}`);
    }
    const urls = members.get(name) ?? [];
    urls.push(url);
    members.set(name, urls);
  }
  if (members.size === 0) throw new ConfigError('initial-cluster', '--initial-cluster: no members');
  return members;
}

/** CompactionRetention is autoCompactionRetention read by its mode. */
export type CompactionRetention =
  | { mode: 'off' }
  | { mode: 'periodic'; periodMs: number }
  | { mode: 'revision'; revisions: number };

/** compactionRetention reads autoCompactionRetention as etcd does: periodic mode takes a
 * bare number as hours ('1' = 1h) or a duration ('30m', '1h30m'); revision mode takes a
 * count of revisions to keep. '0' (either mode) disables auto compaction. Throws ConfigError. */
export function compactionRetention(
  mode: Config['autoCompactionMode'],
  retention: string,
): CompactionRetention {
  const bad = (why: string) => new ConfigError('auto-compaction-retention',
    `--auto-compaction-retention: invalid value ${JSON.stringify(retention)}: ${why}`);
  if (mode === 'revision') {
    if (!/^\d+$/.test(retention)) throw bad('expected a revision count in revision mode');
    const n = Number(retention);
    if (!Number.isSafeInteger(n)) throw bad('too large');
    return n === 0 ? { mode: 'off' } : { mode: 'revision', revisions: n };
  }
  let ms: number | undefined;
  if (/^\d+(\.\d+)?$/.test(retention)) ms = Number(retention) * 3_600_000;
  else ms = parseDurationMs(retention);
  if (ms === undefined) throw bad("expected hours ('1') or a duration ('30m', '1h30m')");
  return ms === 0 ? { mode: 'off' } : { mode: 'periodic', periodMs: ms };
}

/** leaseCheckpointIntervalMs reads leaseCheckpointInterval: milliseconds, 0 when disabled.
 * Throws ConfigError. */
export function leaseCheckpointIntervalMs(text: string): number {
  return durationSettingMs('experimental-lease-checkpoint-interval', text);
}

/** watchProgressNotifyMs reads watchProgressNotifyInterval: milliseconds. As etcd's watch
 * server, 0 keeps the default and anything shorter than watchProgressNotifyMsMin is raised to
 * it. Throws ConfigError. */
export function watchProgressNotifyMs(text: string): number {
  const ms = durationSettingMs('experimental-watch-progress-notify-interval', text);
  return ms === 0 ? C.progressNotifyIntervalMs : Math.max(ms, C.watchProgressNotifyMsMin);
}

/** grpcKeepaliveMs reads grpcKeepaliveInterval and grpcKeepaliveTimeout: milliseconds, the
 * interval 0 when pings are off. Throws ConfigError. */
export function grpcKeepaliveMs(cfg: Pick<Config, 'grpcKeepaliveInterval' |
  'grpcKeepaliveTimeout'>): { intervalMs: number; timeoutMs: number } {
  return { intervalMs: durationSettingMs('grpc-keepalive-interval', cfg.grpcKeepaliveInterval),
    timeoutMs: durationSettingMs('grpc-keepalive-timeout', cfg.grpcKeepaliveTimeout) };
}

/** durationSettingMs reads a duration setting ('5m', '30s', '0'). Throws ConfigError. */
function durationSettingMs(flag: string, text: string): number {
  const ms = parseDurationMs(text);
  if (ms === undefined) {
    throw new ConfigError(flag, `--${flag}: invalid value ${JSON.stringify(text)}: ` +
      "expected a duration ('5m', '30s') or 0");
  }
  return ms;
}

/** traceSampleRateOf reads traceSampleRate: a number from 0 to 1. Throws ConfigError. */
export function traceSampleRateOf(text: string): number {
  const rate = /^\s*[0-9.eE+-]+\s*$/.test(text) ? Number(text) : NaN;
  if (!(rate >= 0 && rate <= 1)) {
    throw new ConfigError('trace-sample-rate', `--trace-sample-rate: invalid value ` +
      `${JSON.stringify(text)}: expected a fraction from 0 to 1`);
  }
  return rate;
}

/** otlpEndpointOf reads otlpEndpoint: '' (off) or an http(s) URL. Throws ConfigError. */
export function otlpEndpointOf(text: string): string {
  if (text === '') return text;
  let ok = false;
  try {
    ok = ['http:', 'https:'].includes(new URL(text).protocol);
  } catch {
    ok = false;
  }
  if (!ok) {
    throw new ConfigError('otlp-endpoint', `--otlp-endpoint: invalid value ` +
      `${JSON.stringify(text)}: expected an http(s) URL such as http://127.0.0.1:4318/v1/traces`);
  }
  return text;
}

function validate(cfg: Config, clusterExplicit: boolean): void {
  if (cfg.electionTimeout < D.electionTimeoutHeartbeatsMin * cfg.heartbeatInterval) {
    throw new ConfigError('election-timeout',
      `--election-timeout[${cfg.electionTimeout}ms] should be at least as ` +
      `${D.electionTimeoutHeartbeatsMin} ` +
      `times as --heartbeat-interval[${cfg.heartbeatInterval}ms]`);
  }
  validateTls(cfg);
  compactionRetention(cfg.autoCompactionMode, cfg.autoCompactionRetention);
  leaseCheckpointIntervalMs(cfg.leaseCheckpointInterval);
  watchProgressNotifyMs(cfg.watchProgressNotifyInterval);
  grpcKeepaliveMs(cfg);
  rotationIntervalMs(cfg.logRotationInterval);
  traceSampleRateOf(cfg.traceSampleRate);
  otlpEndpointOf(cfg.otlpEndpoint);
  const members = parseInitialCluster(cfg.initialCluster);
  const mine = members.get(cfg.name);
  if (mine === undefined) {
    throw new ConfigError('initial-cluster',
      `--initial-cluster: couldn't find local name ${JSON.stringify(cfg.name)} ` +
      'in the initial cluster configuration');
  }
  if (clusterExplicit) {
    const a = [...mine].sort().join(',');
    const b = [...cfg.initialAdvertisePeerUrls].sort().join(',');
    if (a !== b) {
      throw new ConfigError('initial-advertise-peer-urls',
        `--initial-advertise-peer-urls ${JSON.stringify(b)} does not match --initial-cluster's ` +
        `URLs for ${cfg.name} ${JSON.stringify(a)}`);
    }
  }
  const seen = new Map<string, string>();
  for (const [name, urls] of members) {
    for (const url of urls) {
      const other = seen.get(url);
      if (other !== undefined && other !== name) {
        throw new ConfigError('initial-cluster',
          `--initial-cluster: ${url} is given for both ${other} and ${name}`);
      }
      seen.set(url, name);
    }
  }
  for (const out of cfg.logOutputs) {
    if (out === 'stdout' || out === 'stderr' || out === 'default') continue;
    if (out.trim() === '') throw new ConfigError('log-outputs', '--log-outputs: empty output');
  }
}

/** validateTls checks the TLS flags hang together: an https client URL has a certificate
 * (files or --auto-tls), a certificate has its key, --client-cert-auth has a CA to check
 * against; the same for the peer transport's --peer-* flags. */
function validateTls(cfg: Config): void {
  if ((cfg.certFile === '') !== (cfg.keyFile === '')) {
    throw new ConfigError('cert-file', '--cert-file and --key-file must be given together');
  }
  const https = cfg.listenClientUrls.some((u) => u.startsWith('https:'));
  if (https && cfg.certFile === '' && cfg.autoTls !== 'true') {
    throw new ConfigError('listen-client-urls', 'https client URLs need --cert-file and ' +
      '--key-file, or --auto-tls');
  }
  if (cfg.clientCertAuth === 'true' && cfg.trustedCaFile === '') {
    throw new ConfigError('client-cert-auth', '--client-cert-auth needs --trusted-ca-file');
  }
  if ((cfg.peerCertFile === '') !== (cfg.peerKeyFile === '')) {
    throw new ConfigError('peer-cert-file',
      '--peer-cert-file and --peer-key-file must be given together');
  }
  const peerHttps = [...cfg.listenPeerUrls, ...cfg.initialAdvertisePeerUrls]
    .some((u) => u.startsWith('https:'));
  if (peerHttps && cfg.peerCertFile === '' && cfg.peerAutoTls !== 'true') {
    throw new ConfigError('listen-peer-urls', 'https peer URLs need --peer-cert-file and ' +
      '--peer-key-file, or --peer-auto-tls');
  }
  if (cfg.peerClientCertAuth === 'true' && cfg.peerTrustedCaFile === '') {
    throw new ConfigError('peer-client-cert-auth',
      '--peer-client-cert-auth needs --peer-trusted-ca-file');
  }
}
