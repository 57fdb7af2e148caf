/**
 * metrics.ts — scrape the server's Prometheus metrics (GET /metrics) and print a few.
 *
 * The server exports etcd's own metric names (etcd_server_*, etcd_disk_*, etcd_mvcc_*), so
 * etcd dashboards and alerts work, plus MyEtcd's actor metrics (myetcd_actor_*). The format
 * is Prometheus' text format: `name{labels} value` per line, `# HELP`/`# TYPE` comments.
 *
 *   node dist/examples/metrics.js [endpoint]    # or ENDPOINT=http://host:port
 */
import { Client } from '../src/client/index.js';

const endpoint = process.argv[2] ?? process.env.ENDPOINT ?? 'http://127.0.0.1:2379';

/** scrape reads /metrics into a map from series (name and labels) to value. */
async function scrape(): Promise<Map<string, number>> {
  const res = await fetch(`${endpoint}/metrics`);
  if (!res.ok) throw new Error(`GET /metrics: HTTP ${res.status}`);
  const series = new Map<string, number>();
  for (const line of (await res.text()).split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    series.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return series;
}

const before = await scrape();
console.log(`scraped ${before.size} series from ${endpoint}/metrics`);
const show = [
  'etcd_server_has_leader',
  'etcd_server_is_leader',
  'etcd_server_proposals_committed_total',
  'etcd_server_proposals_applied_total',
  'etcd_disk_wal_fsync_duration_seconds_count',
  'etcd_disk_wal_fsync_duration_seconds_sum',
  'etcd_mvcc_put_total',
  'etcd_debugging_mvcc_keys_total',
];
for (const name of show) console.log(`  ${name} ${before.get(name) ?? '(absent)'}`);

// Writes move the counters: each put is one Raft proposal and (batched) one WAL fsync.
const client = new Client({ endpoints: [endpoint] });
const key = `examples/metrics/${process.pid}`;
for (let i = 0; i < 5; i++) await client.put(key, String(i));
await client.delete(key);
const after = await scrape();
for (const name of ['etcd_server_proposals_committed_total', 'etcd_mvcc_put_total']) {
  const d = (after.get(name) ?? 0) - (before.get(name) ?? 0);
  console.log(`after 5 puts and a delete: ${name} +${d} (others may write too)`);
}
const fsyncs = after.get('etcd_disk_wal_fsync_duration_seconds_count') ?? 0;
const seconds = after.get('etcd_disk_wal_fsync_duration_seconds_sum') ?? 0;
if (fsyncs > 0) console.log(`mean WAL fsync: ${(1000 * seconds / fsyncs).toFixed(2)} ms`);
