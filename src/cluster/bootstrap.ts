import { clusterIdOf, memberId64, memberIdOf } from './ids.js';
import type { Member } from './membership.js';

/**
 * bootstrap: who this member is and who its cluster is, before the WAL exists (etcd's
 * bootstrap in etcdserver/server.go). Three cases:
 *
 * - restart (the data dir has a WAL): identity and membership come from the WAL and its
 *   snapshot; the flags are not consulted (planFromFlags only feeds the fix-up of data dirs
 *   written before member URLs were recorded).
 * - `--initial-cluster-state new`: every founding member computes the same plan from the
 *   same --initial-cluster: ids from peer URLs + token, the cluster id from the sorted ids.
 * - `--initial-cluster-state existing`: the member was added with `member add`; its id and
 *   the cluster id were chosen by the cluster, which it asks (planJoin checks its answer
 *   against --initial-cluster as etcd's ValidateClusterAndAssignIDs does).
 */

/** ClusterPlan is what the Raft node starts a fresh data dir with. */
export interface ClusterPlan {
  selfId: number;
  clusterId: number;
  /** members: the founding members, or the members the cluster reported. */
  members: Member[];
  join: boolean;
}

/** BootstrapError is a refusal to start, with etcd's wording where etcd has one. */
export class BootstrapError extends Error {
  readonly code = 'EBOOTSTRAP';
}

/** planFromFlags builds the plan of a new cluster from --initial-cluster (name → URLs). */
export function planFromFlags(
  initialCluster: ReadonlyMap<string, string[]>, name: string, token: string,
): ClusterPlan {
  const members: Member[] = [...initialCluster].map(([n, urls]) => ({
    id: memberIdOf(urls, token), name: n, peerURLs: [...urls].sort(), clientURLs: [],
    isLearner: false,
  }));
  const ids = new Set(members.map((m) => m.id));
  if (ids.size !== members.length) {
    throw new BootstrapError('--initial-cluster: two members have the same peer URLs');
  }
  const self = members.find((m) => m.name === name);
  if (self === undefined) {
    throw new BootstrapError(
      `couldn't find local name ${JSON.stringify(name)} in the initial cluster configuration`);
  }
  return {
    selfId: self.id,
    clusterId: clusterIdOf([...initialCluster.values()].map((urls) => memberId64(urls, token))),
    members: members.sort((a, b) => a.id - b.id),
    join: false,
  };
}

/**
 * planJoin checks the cluster's answer against --initial-cluster (the same members by peer
 * URLs, as etcd's ValidateClusterAndAssignIDs) and takes the ids from the cluster.
 */
export function planJoin(
  initialCluster: ReadonlyMap<string, string[]>, name: string,
  remote: { clusterId: number; members: Member[] },
): ClusterPlan {
  const local = [...initialCluster].map(([n, urls]) => ({ name: n, urls: [...urls].sort() }));
  if (local.length !== remote.members.length) {
    throw new BootstrapError('member count is unequal');
  }
  const key = (urls: string[]) => [...urls].sort().join(',');
  const lsorted = [...local].sort((a, b) => key(a.urls).localeCompare(key(b.urls)));
  const rsorted = [...remote.members]
    .sort((a, b) => key(a.peerURLs).localeCompare(key(b.peerURLs)));
  let selfId = 0;
  for (let i = 0; i < lsorted.length; i++) {
    const l = lsorted[i]!;
    const r = rsorted[i]!;
    if (key(l.urls) !== key(r.peerURLs)) {
      throw new BootstrapError(
        `unmatched member while checking PeerURLs (${JSON.stringify(l.urls)} != ` +
        `${JSON.stringify(r.peerURLs)})`);
    }
    if (l.name === name) {
      selfId = r.id;
      if (r.name !== '') {
        throw new BootstrapError(`member ${r.id.toString(16)} has already been bootstrapped`);
      }
    }
  }
  if (selfId === 0) {
    throw new BootstrapError(
      `couldn't find local name ${JSON.stringify(name)} in the initial cluster configuration`);
  }
  return { selfId, clusterId: remote.clusterId, members: remote.members, join: true };
}
