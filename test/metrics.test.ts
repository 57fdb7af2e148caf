import test from 'ava';
import { createMetrics, etcdDiskBuckets } from '../src/metrics/index.js';
import { metricValue as value } from './helpers/metrics.js';

const stats = (n: number, depth: Record<string, number> = {}) => ({
  messagesIn: n, messagesOut: 2 * n, batchesIn: n / 10, batchesOut: n / 5,
  handleSecondsTotal: n / 1000, depth,
});

test('metrics: every etcd and actor metric name is in the text output', async (t) => {
  const m = createMetrics({ version: '0.1.0', defaultMetrics: false });
  const { body, contentType } = await m.render();
  t.regex(contentType, /text\/plain/);
  for (const name of [
    'etcd_server_has_leader', 'etcd_server_is_leader', 'etcd_server_leader_changes_seen_total',
    'etcd_server_proposals_committed_total', 'etcd_server_proposals_applied_total',
    'etcd_server_proposals_pending', 'etcd_server_proposals_failed_total',
    'etcd_disk_wal_fsync_duration_seconds', 'etcd_disk_backend_commit_duration_seconds',
    'etcd_mvcc_db_total_size_in_bytes', 'etcd_debugging_mvcc_keys_total', 'etcd_mvcc_put_total',
    'etcd_mvcc_delete_total', 'etcd_mvcc_range_total', 'etcd_mvcc_txn_total',
    'etcd_network_client_grpc_received_bytes_total', 'etcd_network_client_grpc_sent_bytes_total',
    'etcd_server_version', 'myetcd_actor_mailbox_depth', 'myetcd_actor_messages_in_total',
    'myetcd_actor_messages_out_total', 'myetcd_actor_batches_in_total', 'myetcd_actor_batch_size',
    'myetcd_actor_handle_seconds_total', 'myetcd_actor_restarts_total',
    'myetcd_http_requests_total', 'myetcd_http_request_duration_seconds',
  ]) {
    t.true(body.includes(`# TYPE ${name} `), name);
  }
  t.is(value(body, 'etcd_server_version{server_version="0.1.0"}'), 1);
});

test('metrics: WAL fsync uses etcd\'s buckets, 1 ms doubling to 8.192 s', async (t) => {
  t.is(etcdDiskBuckets.length, 14);
  t.is(etcdDiskBuckets[0], 0.001);
  t.is(etcdDiskBuckets[13], 8.192);
  const m = createMetrics({ defaultMetrics: false });
  m.ingestWalFsync([0.0005, 0.003, 0.003, 2]);
  m.ingestBackendCommit([0.01]);
  const { body } = await m.render();
  t.is(value(body, 'etcd_disk_wal_fsync_duration_seconds_bucket{le="0.001"}'), 1);
  t.is(value(body, 'etcd_disk_wal_fsync_duration_seconds_bucket{le="0.004"}'), 3);
  t.is(value(body, 'etcd_disk_wal_fsync_duration_seconds_count'), 4);
  t.is(value(body, 'etcd_disk_backend_commit_duration_seconds_count'), 1);
});

test('metrics: actor counters follow cumulative snapshots across a restart', async (t) => {
  const m = createMetrics({ defaultMetrics: false });
  m.ingestActorStats('raft', { ...stats(100, { wal: 3, 'shard-0': 0 }), batchSizes: [1, 64, 64] });
  m.ingestActorStats('raft', stats(150, { wal: 1 }));
  let { body } = await m.render();
  t.is(value(body, 'myetcd_actor_messages_in_total{actor="raft"}'), 150);
  t.is(value(body, 'myetcd_actor_messages_out_total{actor="raft"}'), 300);
  t.is(value(body, 'myetcd_actor_batches_in_total{actor="raft"}'), 15);
  t.is(value(body, 'myetcd_actor_handle_seconds_total{actor="raft"}'), 0.15);
  t.is(value(body, 'myetcd_actor_mailbox_depth{actor="raft",peer="wal"}'), 1);
  t.is(value(body, 'myetcd_actor_mailbox_depth{actor="raft",peer="shard-0"}'), 0);
  t.is(value(body, 'myetcd_actor_batch_size_count{actor="raft"}'), 3);
  t.is(value(body, 'myetcd_actor_batch_size_bucket{le="64",actor="raft"}'), 3);
  // The thread restarted: its counters start again from 0 and ours keep growing.
  m.ingestActorStats('raft', stats(20));
  ({ body } = await m.render());
  t.is(value(body, 'myetcd_actor_messages_in_total{actor="raft"}'), 170);
});

test('metrics: render pulls from the actor system and the Raft node', async (t) => {
  const m = createMetrics({ defaultMetrics: false });
  const system = {
    restarts: new Map([['shard-1', 2]]),
    actorStats: async () => new Map([['gateway', stats(10, { raft: 4 })], ['wal', stats(5)]]),
  };
  const raft = {
    status: async () => ({
      leader: 7, isLeader: true, leaderChanges: 1, proposalsCommitted: 42, proposalsApplied: 41,
      proposalsPending: 1, proposalsFailed: 3, dbSizeBytes: 4096, keys: 12,
    }),
  };
  const { body } = await m.render(system, raft);
  t.is(value(body, 'myetcd_actor_messages_in_total{actor="gateway"}'), 10);
  t.is(value(body, 'myetcd_actor_mailbox_depth{actor="gateway",peer="raft"}'), 4);
  t.is(value(body, 'myetcd_actor_messages_in_total{actor="wal"}'), 5);
  t.is(value(body, 'myetcd_actor_restarts_total{actor="shard-1"}'), 2);
  t.is(value(body, 'etcd_server_has_leader'), 1);
  t.is(value(body, 'etcd_server_is_leader'), 1);
  t.is(value(body, 'etcd_server_leader_changes_seen_total'), 1);
  t.is(value(body, 'etcd_server_proposals_committed_total'), 42);
  t.is(value(body, 'etcd_server_proposals_applied_total'), 41);
  t.is(value(body, 'etcd_server_proposals_pending'), 1);
  t.is(value(body, 'etcd_server_proposals_failed_total'), 3);
  t.is(value(body, 'etcd_mvcc_db_total_size_in_bytes'), 4096);
  t.is(value(body, 'etcd_debugging_mvcc_keys_total'), 12);
});

test('metrics: a source that fails or hangs does not fail the scrape', async (t) => {
  const m = createMetrics({ defaultMetrics: false });
  m.ingestRaftStats({
    leader: 1, isLeader: false, leaderChanges: 0, proposalsCommitted: 5, proposalsApplied: 5,
    proposalsPending: 0, proposalsFailed: 0,
  });
  const raft = { status: async () => { throw new Error('actor restarting'); } };
  m.onScrape(() => { throw new Error('hook fails'); });
  const { body } = await m.render(undefined, raft);
  t.is(value(body, 'etcd_server_proposals_committed_total'), 5);
  t.is(value(body, 'etcd_server_is_leader'), 0);
});

test('metrics: mvcc counts and sizes from several shards add up', async (t) => {
  const m = createMetrics({ defaultMetrics: false });
  m.ingestMvccStats('shard-0', { putTotal: 10, deleteTotal: 1, rangeTotal: 7, txnTotal: 2, keys: 5,
    dbSizeBytes: 100 });
  m.ingestMvccStats('shard-1', { putTotal: 4, keys: 3, dbSizeBytes: 50 });
  m.ingestMvccStats('shard-0', { putTotal: 12 });
  const { body } = await m.render();
  t.is(value(body, 'etcd_mvcc_put_total'), 16);
  t.is(value(body, 'etcd_mvcc_delete_total'), 1);
  t.is(value(body, 'etcd_mvcc_range_total'), 7);
  t.is(value(body, 'etcd_mvcc_txn_total'), 2);
  t.is(value(body, 'etcd_debugging_mvcc_keys_total'), 8);
  t.is(value(body, 'etcd_mvcc_db_total_size_in_bytes'), 150);
  // The size in use follows the store size (no free pages to count), and etcd 3.4's older
  // name for the size (its sample dashboard's "DB Size") shows the same.
  t.is(value(body, 'etcd_mvcc_db_total_size_in_use_in_bytes'), 150);
  t.is(value(body, 'etcd_debugging_mvcc_db_total_size_in_bytes'), 150);
});

test('metrics: HTTP requests and client bytes are counted', async (t) => {
  const m = createMetrics({ defaultMetrics: false });
  m.observeHttp('/v3/kv/put', 'POST', 200, 0.0002);
  m.observeHttp('/v3/kv/put', 'POST', 200, 0.0004);
  m.observeHttp('/v3/kv/range', 'POST', 400, 0.0001);
  m.addClientBytes(100, 250);
  const { body } = await m.render();
  t.is(value(body, 'myetcd_http_requests_total{route="/v3/kv/put",method="POST",code="200"}'), 2);
  t.is(value(body, 'myetcd_http_requests_total{route="/v3/kv/range",method="POST",code="400"}'), 1);
  t.is(value(body, 'myetcd_http_request_duration_seconds_count{route="/v3/kv/put"}'), 2);
  t.is(value(body, 'etcd_network_client_grpc_received_bytes_total'), 100);
  t.is(value(body, 'etcd_network_client_grpc_sent_bytes_total'), 250);
});

test('metrics: default process metrics are included unless turned off', async (t) => {
  const { body } = await createMetrics().render();
  t.true(body.includes('process_cpu_seconds_total'));
});

test('metrics: gRPC events are counted between scrapes and added once each', async (t) => {
  const m = createMetrics({ defaultMetrics: false });
  const s = 'etcdserverpb.KV';
  for (let i = 0; i < 3; i++) m.grpcEvent('started', 'unary', s, 'Range');
  m.grpcEvent('handled', 'unary', s, 'Range', 'OK');
  m.grpcEvent('handled', 'unary', s, 'Range', 'InvalidArgument');
  m.grpcEvent('sent', 'bidi_stream', 'etcdserverpb.Watch', 'Watch');
  const range = 'grpc_type="unary",grpc_service="etcdserverpb.KV",grpc_method="Range"';
  let { body } = await m.render();
  t.is(value(body, `grpc_server_started_total{${range}}`), 3);
  t.is(value(body, `grpc_server_handled_total{${range},grpc_code="OK"}`), 1);
  t.is(value(body, `grpc_server_handled_total{${range},grpc_code="InvalidArgument"}`), 1);
  t.is(value(body, 'grpc_server_msg_sent_total{grpc_type="bidi_stream",' +
    'grpc_service="etcdserverpb.Watch",grpc_method="Watch"}'), 1);
  ({ body } = await m.render());
  t.is(value(body, `grpc_server_started_total{${range}}`), 3, 'a second scrape adds nothing');
  m.grpcEvent('started', 'unary', s, 'Range');
  ({ body } = await m.render());
  t.is(value(body, `grpc_server_started_total{${range}}`), 4);
});
