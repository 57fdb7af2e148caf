import { peerHandshakeTimeoutMs } from '../../src/constants.js';
import type { Member } from '../../src/cluster/membership.js';
import { type HandshakeReply, wireVersion } from '../../src/cluster/wire.js';
import { Conn, dial } from './conn.js';
import type { PeerTls } from './messages.js';

/**
 * fetchCluster asks running members for the cluster id and member list (etcd's
 * GetClusterFromRemotePeers), for a member started with --initial-cluster-state=existing.
 * It tries every URL in turn until one answers or `deadlineMs` (on performance.now) passes.
 */
export async function fetchCluster(urls: string[], timeoutMs: number, tls?: PeerTls):
  Promise<{ clusterId: number; members: Member[] }> {
  const deadline = performance.now() + timeoutMs;
  const errors: string[] = [];
  while (performance.now() < deadline) {
    for (const url of urls) {
      try {
        return await askJoin(url, tls);
      } catch (e) {
        errors.push(`${url}: ${(e as Error).message}`);
      }
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error('could not retrieve cluster information from the given URLs ' +
    `(${errors.slice(-urls.length).join('; ')})`);
}

async function askJoin(url: string, tls?: PeerTls):
  Promise<{ clusterId: number; members: Member[] }> {
  const { socket, ready } = dial(url, tls);
  const c = new Conn(socket);
  try {
    await new Promise<void>((resolve, reject) => {
      c.socket.once(ready, () => resolve());
      c.onClose((why) => reject(new Error(why)));
    });
    c.sendValue({ v: wireVersion, kind: 'join', cluster: 0, from: 0, to: 0 });
    const r = await c.nextValue<HandshakeReply>(peerHandshakeTimeoutMs);
    if (!r.ok || typeof r.cluster !== 'number' || !Array.isArray(r.members)) {
      throw new Error(r.error ?? 'bad answer');
    }
    return { clusterId: r.cluster, members: r.members };
  } finally {
    c.close('done');
  }
}
