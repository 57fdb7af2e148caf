import { existsSync, readdirSync } from 'node:fs';
import type { LeaseConfig } from '../../actors/lease/messages.js';
import type { PeerConfig, PeerTls } from '../../actors/peer/messages.js';
import { selfSigned } from '../server/certs.js';
import { join as joinPath } from 'node:path';
import {
  type RaftMsg, type RaftNodeConfig, readPointFields, readPointRegion,
} from '../../actors/raft/messages.js';
import { SharedCell } from '../runtime/shared-cell.js';
import type { ShardConfig } from '../../actors/shard/messages.js';
import type { WalConfig } from '../../actors/wal/messages.js';
import type { WatchConfig } from '../../actors/watch/messages.js';
import { fetchCluster } from '../../actors/peer/join.js';
import { parseFailpoints } from '../failpoints.js';
import {
  type Config, leaseCheckpointIntervalMs, parseInitialCluster, watchProgressNotifyMs,
} from '../config/index.js';
import { requestTimeoutBaseMs } from '../constants.js';
import type { Endpoint, Message } from '../runtime/endpoint.js';
import type { ActorSpec } from '../runtime/system.js';
import type { MemberId } from '../types.js';
import { walDirOf } from '../server/data-dir.js';
import { type ClusterPlan, planFromFlags, planJoin } from './bootstrap.js';

/**
 * setup: how a member process is laid out — which cluster it belongs to (planCluster) and
 * which actor threads it runs with what configuration (actorSpecs). main.ts calls both.
 */

/** joinTimeoutMs bounds how long a joining member looks for a running member to ask. */
const joinTimeoutMs = 10_000;

/** failpoints names the points GOFAIL_FAILPOINTS enables (etcd's gofail variable; the
 * grammar is src/failpoints.ts). Throws CONFIG_INVALID on a spec it cannot read. */
export function failpoints(env: NodeJS.ProcessEnv = process.env): string[] {
  return [...parseFailpoints(env['GOFAIL_FAILPOINTS'] ?? '').keys()];
}

/** hasWal reports whether the data dir already holds a WAL (a restart). */
export function hasWal(dataDir: string): boolean {
  const dir = walDirOf(dataDir);
  return existsSync(dir) && readdirSync(dir).some((f) => f.endsWith('.wal'));
}

/**
 * planCluster decides this member's identity for a fresh data dir: from --initial-cluster
 * for a new cluster, from the running members for --initial-cluster-state=existing. On a
 * restart the plan from the flags is returned only as a default; the WAL's identity wins.
 */
export async function planCluster(config: Config): Promise<ClusterPlan> {
  const initial = parseInitialCluster(config.initialCluster);
  const token = config.initialClusterToken;
  if (hasWal(config.dataDir) || config.initialClusterState === 'new') {
    return planFromFlags(initial, config.name, token);
  }
  const mine = new Set(config.initialAdvertisePeerUrls);
  const others = [...initial.values()].flat().filter((u) => !mine.has(u));
  const remote = await fetchCluster(others, joinTimeoutMs, peerTlsOf(config));
  return planJoin(initial, config.name, remote);
}

/** actorSpecs lays out the actor threads for a configuration and a cluster plan. */
export function actorSpecs(config: Config, plan: ClusterPlan): ActorSpec[] {
  const dist = new URL('../../actors/', import.meta.url);
  const shardNames = Array.from({ length: config.storageShards }, (_, i) => `shard-${i}`);
  const { selfId: memberId, clusterId } = plan;
  const faults = failpoints();
  const wal: WalConfig = {
    dataDir: config.dataDir, logLevel: config.logLevel, memberId: memberId as MemberId, clusterId,
    zeroAheadBytes: config.walZeroAheadBytes, maxSnapshots: config.maxSnapshots,
  };
  const electionTicks = Math.max(2, Math.round(config.electionTimeout / config.heartbeatInterval));
  const raft: RaftNodeConfig = {
    memberId, clusterId, name: config.name, clientURLs: config.advertiseClientUrls,
    initialMembers: plan.members, join: plan.join, token: config.initialClusterToken,
    shardCount: config.storageShards,
    heartbeatIntervalMs: config.heartbeatInterval, electionTicks,
    snapshotCount: config.snapshotCount, snapshotCatchUpEntries: config.snapshotCatchupEntries,
    logLevel: config.logLevel,
    strictReconfigCheck: config.strictReconfigCheck !== 'false',
    requestTimeoutMs: requestTimeoutBaseMs + 2 * config.electionTimeout,
    seed: memberId % 0x7fffffff,
    quotaBackendBytes: config.quotaBackendBytes,
  };
  const peerTls = peerTlsOf(config);
  const peer: PeerConfig = {
    listenPeerUrls: config.listenPeerUrls,
    required: plan.members.length > 1 || plan.join,
    logLevel: config.logLevel, faults: faults.includes('peer-fault'),
    heartbeatIntervalMs: config.heartbeatInterval,
    advertisePeerUrls: config.initialAdvertisePeerUrls,
    ...(peerTls === undefined ? {} : { tls: peerTls }),
  };
  const watch: WatchConfig = { shardCount: config.storageShards, logLevel: config.logLevel,
    progressNotifyIntervalMs: watchProgressNotifyMs(config.watchProgressNotifyInterval) };
  const lease: LeaseConfig = {
    logLevel: config.logLevel, seed: memberId % 0x7fffffff,
    checkpointIntervalMs: leaseCheckpointIntervalMs(config.leaseCheckpointInterval),
    requestTimeoutMs: raft.requestTimeoutMs,
  };
  return [
    // Order matters for graceful stop: the Raft node stops proposing before the WAL closes.
    {
      name: 'raft', url: new URL('raft/actor.js', dist), config: raft,
      connects: ['wal', 'watch', 'lease', 'peer', ...shardNames],
      shares: { [readPointRegion]: SharedCell.bytes(readPointFields) },
    },
    {
      name: 'peer', url: new URL('peer/actor.js', dist), config: peer,
      connects: ['raft', 'lease'],
    },
    { name: 'lease', url: new URL('lease/actor.js', dist), config: lease, connects: ['raft'] },
    { name: 'watch', url: new URL('watch/actor.js', dist), config: watch, connects: shardNames },
    { name: 'wal', url: new URL('wal/actor.js', dist), config: wal, connects: ['raft'] },
    ...shardNames.map((name, index): ActorSpec => ({
      name, url: new URL('shard/actor.js', dist),
      config: {
        index, count: config.storageShards, logLevel: config.logLevel, failpoints: faults,
      } satisfies ShardConfig,
      connects: ['raft', 'watch'],
    })),
  ];
}

/** publishClientUrls tells the Raft node the client URLs to publish to the cluster once the
 * gateway listens: an advertised URL with port 0 (a listen URL that let the OS choose) gets
 * the port actually bound by the listener at the same position. grpcClientURLs, the gRPC
 * gateway's (already resolved), are published with them. */
export function publishClientUrls(ep: Endpoint<Message>, config: Config, ports: number[],
  grpcClientURLs?: string[]): void {
  const urls = config.advertiseClientUrls.map((u, i) => {
    const url = new URL(u);
    if (url.port !== '0' || ports[i] === undefined) return u;
    return `${url.protocol}//${url.host.replace(/:0$/, '')}:${ports[i]}`;
  });
  ep.ref<RaftMsg, unknown>('raft').sendUnbounded({
    type: 'RaftPublish', clientURLs: urls, ...(grpcClientURLs ? { grpcClientURLs } : {}),
  });
}

const peerTlsResolved = new Map<Config, PeerTls | undefined>();

/** peerTlsOf is the peer transport's TLS from etcd's --peer-* flags (the --peer-auto-tls
 * certificate made once, in <data-dir>/fixtures/peer); undefined without https peer URLs. */
export function peerTlsOf(config: Config): PeerTls | undefined {
  if (peerTlsResolved.has(config)) return peerTlsResolved.get(config);
  let t: PeerTls | undefined;
  const urls = [...config.listenPeerUrls, ...config.initialAdvertisePeerUrls];
  if (urls.some((u) => u.startsWith('https:')) || config.peerCertFile !== '') {
    let { peerCertFile: certFile, peerKeyFile: keyFile } = config;
    const auto = certFile === '' && config.peerAutoTls === 'true';
    if (auto) {
      ({ certFile, keyFile } = selfSigned(joinPath(config.dataDir, 'fixtures', 'peer'),
        config.listenPeerUrls, 'peer-auto-tls'));
    }
    t = {
      certFile, keyFile, clientCertAuth: config.peerClientCertAuth === 'true', skipVerify: auto,
      ...(config.peerTrustedCaFile === '' ? {} : { caFile: config.peerTrustedCaFile }),
    };
  }
  peerTlsResolved.set(config, t);
  return t;
}
