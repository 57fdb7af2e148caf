import { readFileSync } from 'node:fs';
import { etcdClusterVersion, etcdServerVersion } from '../api/v3.js';

/**
 * version: the two versions a member has, and where each is shown.
 *
 * - **serverVersion** is this program's release (package.json): `myetcd --version`, the
 *   `starting myetcd` log line and the `myetcd_build_info{version}` metric.
 * - **apiVersion** is the etcd release whose API and behaviour the member reproduces (3.4.23).
 *   Clients read it from `GET /version` (`etcdserver`), and etcd's dashboards and alerts read it
 *   from `etcd_server_version{server_version}`; both say 3.4.23, because what they decide
 *   with it (which API calls exist, which panels apply) is the etcd API, not our release
 *   number. `etcd_cluster_version{cluster_version}` is the cluster's major.minor, 3.4.
 */

/** serverVersion is MyEtcd's own version, from package.json. */
export const serverVersion = (JSON.parse(
  readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as
  { version: string }).version;

/** apiVersion is the etcd version whose API is served (GET /version's etcdserver). */
export const apiVersion = etcdServerVersion;

/** clusterVersion is etcd's cluster version as etcd_cluster_version shows it (major.minor). */
export const clusterVersion = etcdClusterVersion.split('.').slice(0, 2).join('.');

/** versionText is `myetcd --version`, in the shape of etcd's `--version`:
 *
 *   myetcd Version: 0.1.0
 *   etcd API Version: 3.4.23
 *   Git SHA: Not provided (an npm package records none)
 *   Node Version: v20.20.2
 *   Node OS/Arch: linux/x64
 */
export function versionText(): string {
  return [
    `myetcd Version: ${serverVersion}`,
    `etcd API Version: ${apiVersion}`,
    'Git SHA: Not provided (an npm package records none)',
    `Node Version: ${process.version}`,
    `Node OS/Arch: ${process.platform}/${process.arch}`,
  ].join('\n') + '\n';
}
