import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import { loadEtcdServices } from '../src/grpc/proto.js';
import { etcdctlBin, haveEtcd, needsEtcd, runCtl } from './helpers/etcd-ref.js';
import {
  fastRaft, startCluster, type TestCluster, waitFor, waitForLeader,
} from './helpers/cluster.js';
import { grpcUrl } from './helpers/server.js';
import { until } from './helpers/wait.js';

/**
 * etcd's etcdctl 3.4 over gRPC against a three-member MyEtcd cluster: a write through one
 * member is read through another, the member list names the three, endpoint status names one
 * leader on every member, and move-leader hands leadership to a follower — the Cluster and
 * Maintenance services wired to the same membership and Raft node as the JSON gateway.
 */

const serial = haveEtcd ? test.serial : test.serial.skip;
if (!haveEtcd) test.skip(`grpc-cluster: ${needsEtcd}`, () => {});

let cluster: TestCluster | undefined;
let endpoints: string[] = [];

const ctl = (endpoint: string, ...args: string[]) =>
  runCtl(etcdctlBin, ['--endpoints', endpoint, ...args]);

test.before(async () => {
  if (!haveEtcd) return;
  // The third member spreads its keys over two shards: HashKV must not depend on it.
  cluster = await startCluster({ size: 3, args: fastRaft,
    memberArgs: (i) => ['--storage-shards', i === 2 ? '2' : '1'] });
  await waitForLeader(cluster);
  endpoints = await Promise.all(cluster.nodes.map((n) => grpcUrl(n.server!)));
});

test.after.always(async () => {
  await cluster?.stopAll();
});

/** statuses reads endpoint status of every member as etcdctl prints it in JSON. */
async function statuses(): Promise<{ id: string; leader: string }[]> {
  const r = await ctl(endpoints.join(','), 'endpoint', 'status', '-w', 'json');
  if (r.code !== 0) throw new Error(r.err);
  const text = r.out.toString();
  // uint64 ids as JSON numbers: read them as text.
  return [...text.matchAll(/"member_id":(\d+).*?"leader":(\d+)/g)]
    .map((m) => ({ id: m[1]!, leader: m[2]! }));
}

serial('grpc cluster: a put through one member is read through another', async (t) => {
  const put = await ctl(endpoints[0]!, 'put', 'across', 'members');
  t.is(put.code, 0, put.err);
  const get = await ctl(endpoints[2]!, 'get', 'across', '--print-value-only');
  t.is(get.out.toString(), 'members\n');
});

serial('grpc cluster: member list names the three members; status one leader', async (t) => {
  // Every member's client URL is its gRPC one, as each published it (through the log).
  let lines: string[] = [];
  await until(async () => {
    const r = await ctl(endpoints[1]!, 'member', 'list');
    lines = r.out.toString().trim().split('\n');
    return lines.length === 3 && cluster!.nodes.every((n, i) =>
      lines.some((l) => l.includes(`, ${n.name}, ${n.peerUrl}, ${endpoints[i]}, `)));
  }, 'a member list naming every member\'s gRPC URL');
  t.is(lines.length, 3);
  const sts = await statuses();
  t.is(sts.length, 3);
  t.is(new Set(sts.map((s) => s.leader)).size, 1);
});

serial('grpc cluster: endpoint hashkv gives every member one hash of the same revision (one ' +
  'of them with two shards); a put changes the newest and leaves an older revision\'s',
async (t) => {
  const hashes = async (rev: number): Promise<string[]> => {
    const r = await ctl(endpoints.join(','), 'endpoint', 'hashkv', '--rev', String(rev), '-w',
      'json');
    t.is(r.code, 0, r.err);
    return [...r.out.toString().matchAll(/"hash":(\d+)/g)].map((m) => m[1]!);
  };
  const revOf = async (...args: string[]): Promise<number> => {
    const r = await ctl(endpoints[0]!, ...args, '-w', 'json');
    t.is(r.code, 0, r.err);
    return Number(/"revision":(\d+)/.exec(r.out.toString())![1]!);
  };
  const agreed = async (rev: number): Promise<string[]> => {
    let all: string[] = [];
    await until(async () => {
      all = await hashes(rev);
      return all.length === 3 && new Set(all).size === 1;
    }, `one hash on three members at revision ${rev}`);
    return all;
  };
  const before = await revOf('put', 'hashed', 'one');
  const first = await agreed(before);
  const second = await agreed(await revOf('put', 'hashed', 'two'));
  t.not(second[0], first[0]);
  t.deepEqual(await hashes(before), first);
});

serial('grpc cluster: move-leader hands leadership to a follower', async (t) => {
  const before = await statuses();
  const leader = before[0]!.leader;
  const leaderAt = before.findIndex((s) => s.id === leader);
  const follower = before.find((s) => s.id !== leader)!.id;
  const hex = BigInt(follower).toString(16);
  const r = await ctl(endpoints[leaderAt]!, 'move-leader', hex);
  t.is(r.code, 0, r.err);
  t.is(r.out.toString(),
    `Leadership transferred from ${BigInt(leader).toString(16)} to ${hex}\n`);
  await waitFor('every member naming the new leader', async () => {
    const sts = await statuses();
    return sts.length === 3 && sts.every((s) => s.leader === follower) ? true : undefined;
  });
  t.pass();
});

serial('grpc cluster: with `hasleader` a member that lost its quorum answers "no leader" at ' +
  'once', async (t) => {
  const c = cluster!;
  await c.kill(1);
  await c.kill(2);
  const KV = loadEtcdServices().clients['KV']!;
  const kv = new KV(endpoints[0]!.replace(/^http:\/\//, ''), grpc.credentials.createInsecure());
  try {
    type RangeFn = (r: unknown, m: grpc.Metadata, o: grpc.CallOptions,
      cb: (e: grpc.ServiceError | null, v?: { kvs?: unknown[] }) => void) => void;
    const range = (kv as unknown as { Range: RangeFn }).Range.bind(kv);
    // A serializable read needs no leader: it is served from the member's own state...
    const serializable = (md: grpc.Metadata) => new Promise<grpc.ServiceError | null>(
      (resolve) => range({ key: Buffer.from('across'), serializable: true }, md,
        { deadline: Date.now() + 5_000 }, (e) => resolve(e)));
    const hasLeader = new grpc.Metadata();
    hasLeader.set('hasleader', 'true');
    let last: grpc.ServiceError | null = null;
    // ...unless the client requires a leader. The survivor steps down once check-quorum sees
    // no majority (an election timeout).
    await until(async () => {
      last = await serializable(hasLeader);
      return last !== null && last.code === grpc.status.UNAVAILABLE;
    }, 'the survivor refusing with no leader');
    t.is(last!.details, 'etcdserver: no leader');
    t.is(await serializable(new grpc.Metadata()), null);
  } finally {
    kv.close();
  }
});
