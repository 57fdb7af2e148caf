import test from 'ava';
import { createMetrics } from '../src/metrics/index.js';
import { metricValue as value } from './helpers/metrics.js';

// The etcd 3.4 families that etcd's dashboards and alerts read, with the types etcd 3.4.23's
// /metrics declares (read from a running etcd 3.4.23), and their values from what the
// actors report.

/** etcdTypes are `# TYPE` lines of etcd 3.4.23's /metrics. */
const etcdTypes: Record<string, string> = {
  etcd_server_id: 'gauge',
  etcd_server_version: 'gauge',
  etcd_cluster_version: 'gauge',
  etcd_server_quota_backend_bytes: 'gauge',
  etcd_server_is_leader: 'gauge',
  etcd_server_has_leader: 'gauge',
  etcd_server_heartbeat_send_failures_total: 'counter',
  etcd_mvcc_db_total_size_in_bytes: 'gauge',
  etcd_mvcc_db_total_size_in_use_in_bytes: 'gauge',
  etcd_disk_wal_write_bytes_total: 'gauge',
  etcd_disk_wal_fsync_duration_seconds: 'histogram',
  etcd_disk_backend_commit_duration_seconds: 'histogram',
  etcd_debugging_snap_save_total_duration_seconds: 'histogram',
  etcd_snap_fsync_duration_seconds: 'histogram',
  etcd_snap_db_fsync_duration_seconds: 'histogram',
  etcd_snap_db_save_total_duration_seconds: 'histogram',
};

const raft = {
  memberId: 0x8343c6e5086ae, leader: 0x8343c6e5086ae, isLeader: true, leaderChanges: 1,
  proposalsCommitted: 5, proposalsApplied: 5, proposalsPending: 0, proposalsFailed: 0,
};

test('metrics: etcd\'s dashboard families exist with etcd 3.4\'s types', async (t) => {
  const m = createMetrics({ version: '3.4.23', clusterVersion: '3.4',
    quotaBackendBytes: 8 * 1024 ** 3, buildVersion: '0.1.0', defaultMetrics: false });
  const { body } = await m.render();
  for (const [name, type] of Object.entries(etcdTypes)) {
    t.true(body.includes(`\n# TYPE ${name} ${type}\n`), `${name} ${type}`);
  }
  t.is(value(body, 'etcd_server_version{server_version="3.4.23"}'), 1);
  t.is(value(body, 'etcd_cluster_version{cluster_version="3.4"}'), 1);
  t.is(value(body, 'etcd_server_quota_backend_bytes'), 8 * 1024 ** 3);
  t.is(value(body, 'etcd_server_heartbeat_send_failures_total'), 0);
  t.is(value(body, `myetcd_build_info{version="0.1.0",api_version="3.4.23",` +
    `node_version="${process.version}"}`), 1);
});

test('metrics: etcd_server_id shows the member id in hex, as etcd does', async (t) => {
  const m = createMetrics({ defaultMetrics: false });
  m.ingestRaftStats(raft);
  const { body } = await m.render();
  t.is(value(body, 'etcd_server_id{server_id="8343c6e5086ae"}'), 1);
  m.ingestRaftStats({ ...raft, memberId: 255 });
  const after = (await m.render()).body;
  t.is(value(after, 'etcd_server_id{server_id="ff"}'), 1);
  t.false(after.includes('server_id="8343c6e5086ae"'), 'only the current id is shown');
});

test('metrics: WAL bytes keep growing across a WAL thread restart', async (t) => {
  const m = createMetrics({ defaultMetrics: false });
  m.ingestWalStats({ fsyncSeconds: [0.002], bytesWritten: 1_000 });
  m.ingestWalStats({ fsyncSeconds: [], bytesWritten: 1_500 });
  t.is(value((await m.render()).body, 'etcd_disk_wal_write_bytes_total'), 1_500);
  m.ingestWalStats({ fsyncSeconds: [], bytesWritten: 200 }); // restarted: counts from 0
  const { body } = await m.render();
  t.is(value(body, 'etcd_disk_wal_write_bytes_total'), 1_700);
  t.is(value(body, 'etcd_disk_wal_fsync_duration_seconds_count'), 1);
});

test('metrics: snapshot saves feed the snap histograms; received snapshots stay empty',
  async (t) => {
    const m = createMetrics({ defaultMetrics: false });
    m.ingestWalStats({ fsyncSeconds: [], bytesWritten: 0,
      snapshotSaveSeconds: [0.05, 0.3], snapshotFsyncSeconds: [0.003, 0.2] });
    const { body } = await m.render();
    t.is(value(body, 'etcd_debugging_snap_save_total_duration_seconds_count'), 2);
    t.is(value(body, 'etcd_debugging_snap_save_total_duration_seconds_bucket{le="0.064"}'), 1);
    t.is(value(body, 'etcd_snap_fsync_duration_seconds_count'), 2);
    t.is(value(body, 'etcd_snap_fsync_duration_seconds_bucket{le="0.004"}'), 1);
    t.is(value(body, 'etcd_snap_db_save_total_duration_seconds_count'), 0);
    t.is(value(body, 'etcd_snap_db_fsync_duration_seconds_count'), 0);
  });

test('metrics: etcd_server_slow_apply_total appears once the Raft node reports slow applies',
  async (t) => {
    const m = createMetrics({ defaultMetrics: false });
    m.ingestRaftStats(raft);
    t.false((await m.render()).body.includes('etcd_server_slow_apply_total'));
    m.ingestRaftStats({ ...raft, slowApplies: 2 });
    m.ingestRaftStats({ ...raft, slowApplies: 3 });
    const { body } = await m.render();
    t.true(body.includes('\n# TYPE etcd_server_slow_apply_total counter\n'));
    t.is(value(body, 'etcd_server_slow_apply_total'), 3);
  });
