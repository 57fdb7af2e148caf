import * as prom from 'prom-client';
import type { PeerMsg, PeerReplies } from '../../actors/peer/messages.js';
import type { Endpoint, Message } from '../runtime/endpoint.js';

/**
 * metrics: the peer transport's numbers under etcd's names (etcd_network_peer_*, labelled by
 * the remote member's id in hex as etcd labels them), plus the per-member queue depth and
 * drops that are ours. The peer actor keeps cumulative totals; each scrape asks it
 * (PeerStats) and adds what grew since the previous scrape — a total that went down means
 * the actor restarted, and the whole new total is added (as src/metrics does).
 */

/** etcdRttBuckets are etcd's: prometheus.ExponentialBuckets(0.0001, 2, 14). */
const etcdRttBuckets = prom.exponentialBuckets(0.0001, 2, 14);

/** peerMetricsHook registers the peer metrics in `registry` and returns the scrape hook that
 * fills them (pass it to Metrics.onScrape). */
export function peerMetricsHook(registry: prom.Registry, ep: Endpoint<Message>):
  () => Promise<void> {
  const peer = ep.ref<PeerMsg, PeerReplies>('peer');
  const counter = (name: string, help: string, label: string) =>
    new prom.Counter({ name, help, labelNames: [label], registers: [registry] });
  const sent = counter('etcd_network_peer_sent_bytes_total',
    'The total number of bytes sent to peers.', 'To');
  const received = counter('etcd_network_peer_received_bytes_total',
    'The total number of bytes received from peers.', 'From');
  const failures = counter('etcd_network_peer_sent_failures_total',
    'The total number of send failures from peers.', 'To');
  const dropped = counter('myetcd_network_peer_dropped_messages_total',
    'Raft messages to a peer dropped (queue full, peer unreachable or backed up).', 'To');
  const rtt = new prom.Histogram({
    name: 'etcd_network_peer_round_trip_time_seconds',
    help: 'Round-Trip-Time histogram between peers', labelNames: ['To'],
    buckets: etcdRttBuckets, registers: [registry],
  });
  const queued = new prom.Gauge({
    name: 'myetcd_network_peer_queued_messages',
    help: 'Raft messages waiting for the connection to a peer.', labelNames: ['To'],
    registers: [registry],
  });
  const active = new prom.Gauge({
    name: 'etcd_network_active_peers', help: 'The current number of active peer connections.',
    labelNames: ['Remote'], registers: [registry],
  });
  const last = new Map<string, number>();
  const grow = (c: prom.Counter<string>, key: string, label: Record<string, string>, v: number) => {
    const prev = last.get(key) ?? 0;
    const d = v >= prev ? v - prev : v;
    last.set(key, v);
    if (d > 0) c.inc(label, d);
  };
  return async () => {
    const st = await peer.ask({ type: 'PeerStats' }, 2_000);
    for (const [id, m] of Object.entries(st.members)) {
      const hex = Number(id).toString(16);
      grow(sent, `s${id}`, { To: hex }, m.sentBytes);
      grow(received, `r${id}`, { From: hex }, m.receivedBytes);
      grow(failures, `f${id}`, { To: hex }, m.sentFailures);
      grow(dropped, `d${id}`, { To: hex }, m.dropped);
      for (const s of m.rttSeconds) rtt.observe({ To: hex }, s);
      queued.set({ To: hex }, m.queued);
      active.set({ Remote: hex }, m.connected ? 1 : 0);
    }
  };
}
