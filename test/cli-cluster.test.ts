import test, { type ExecutionContext } from 'ava';
import { Client } from '../src/client/index.js';
import { idHex } from '../src/cli/format.js';
import {
  type CtlResult,
  type EtcdCluster,
  etcdctlBin,
  haveEtcd,
  myetcdctlBin,
  needsEtcd,
  runCtl,
  startEtcd,
} from './helpers/etcd-ref.js';
import { freePorts } from './helpers/cluster.js';

/**
 * The cluster commands and the SDK's failover, against a real 3-member etcd 3.4 cluster on
 * loopback: myetcdctl (over etcd's JSON gateway) and etcdctl (over gRPC) run the same command
 * lines against the same cluster and must print the same, after replacing only the ids of
 * members that each tool added for itself. MyEtcd serves no member routes yet, so this proves
 * the client side.
 */

const serial = haveEtcd ? test.serial : test.serial.skip;
if (!haveEtcd) test.skip(`cli-cluster: ${needsEtcd}`, () => {});
let cluster: EtcdCluster;

test.before(async () => {
  if (haveEtcd) cluster = await startEtcd(3);
});

test.after.always(async () => {
  await cluster?.stop();
});

type Tool = 'etcdctl' | 'myetcdctl';

function ctl(tool: Tool, args: string[], endpoints = cluster.endpoints): Promise<CtlResult> {
  const argv = ['--endpoints', endpoints.join(','), ...args];
  return tool === 'etcdctl'
    ? runCtl(etcdctlBin, argv)
    : runCtl(process.execPath, [myetcdctlBin, ...argv]);
}

/** freeUrl is a loopback URL on a port free now: a member that never starts, a dead endpoint. */
async function freeUrl(): Promise<string> {
  return `http://127.0.0.1:${(await freePorts(1))[0]!}`;
}

interface Norm {
  code: number;
  out: string;
  err: string;
}

/** norm drops etcdctl's client log lines and replaces the given values by placeholders. */
function norm(r: CtlResult, subst: Array<[string, string]> = []): Norm {
  let out = r.out.toString('utf8');
  let err = r.err
    .split('\n')
    .filter((l) => !l.startsWith('{"level"'))
    .join('\n');
  for (const [v, token] of subst) {
    out = out.split(v).join(token);
    err = err.split(v).join(token);
  }
  return { code: r.code, out, err: err.replace(/\betcdctl\b/g, 'myetcdctl') };
}

/** same runs a command line with both tools and asserts the same output. */
async function same(t: ExecutionContext, args: string[], endpoints?: string[]): Promise<Norm> {
  const a = norm(await ctl('etcdctl', args, endpoints));
  const b = norm(await ctl('myetcdctl', args, endpoints));
  t.deepEqual(b, a, `myetcdctl ${args.join(' ')}`);
  return a;
}

/** statuses reads each member's status through the SDK. */
async function statuses() {
  const c = new Client({ endpoints: cluster.endpoints });
  return await Promise.all(cluster.endpoints.map((ep) => c.statusOf(ep)));
}

/** addLearner adds a learner with one tool, retrying while etcd refuses membership changes
 * because its members have not all been connected long enough ("unhealthy cluster"). */
async function addLearner(tool: Tool, name: string, url: string, w = 'simple') {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const r = await ctl(tool, ['member', 'add', name, `--peer-urls=${url}`, '--learner', '-w', w]);
    if (r.code === 0 || !r.err.includes('unhealthy cluster') || Date.now() > deadline) return r;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** memberIdOf finds a member's id (decimal) by peer URL. */
async function memberIdOf(url: string): Promise<string> {
  const { members } = await new Client({ endpoints: cluster.endpoints }).memberList();
  const m = members.find((x) => x.peerURLs.includes(url));
  if (m === undefined) throw new Error(`no member with ${url}`);
  return m.id;
}

serial('cluster: member list in every format', async (t) => {
  const one = [cluster.endpoints[0]!];
  for (const w of ['simple', 'json', 'fields', 'table', 'protobuf']) {
    await same(t, ['member', 'list', '-w', w], one);
  }
  const { members } = await new Client({ endpoints: cluster.endpoints }).memberList();
  t.is(members.length, 3);
  t.deepEqual(members.map((m) => m.name).sort(), ['ref0', 'ref1', 'ref2']);
});

serial('cluster: member add, update and remove print as etcdctl', async (t) => {
  const url2 = await freeUrl();
  for (const w of ['simple', 'json', 'protobuf']) {
    // Each tool adds a learner in turn (removed in between), so the cluster answers both from
    // the same membership; only the new member's id and peer URL differ. (Each add has its
    // own URL: etcd derives a member id from the URLs and the second, and refuses an id it
    // has removed.)
    const outs: Norm[] = [];
    for (const tool of ['etcdctl', 'myetcdctl'] as const) {
      const url = await freeUrl();
      const added = await addLearner(tool, 'learner1', url, w);
      t.is(added.code, 0, `${tool} member add -w ${w}: ${added.err}`);
      const id = await memberIdOf(url);
      const subst: Array<[string, string]> = [
        [idHex(id).padStart(16, ' '), '<new>'],
        [id, '<new>'],
        [url, '<url>'],
      ];
      const update = await ctl(tool, [
        'member',
        'update',
        idHex(id),
        `--peer-urls=${url2}`,
        '-w',
        w,
      ]);
      const removed = await ctl(tool, ['member', 'remove', idHex(id), '-w', w]);
      if (w === 'protobuf') {
        // ids travel as varints: compare lengths and success only.
        outs.push({
          code: added.code + update.code + removed.code,
          out: [added.out.length > 0, update.out.length > 0, removed.out.length > 0].join(),
          err: added.err + update.err + removed.err,
        });
      } else {
        // etcd lists the members in no fixed order, and etcdctl's gRPC balancer may ask
        // another member than myetcdctl (header member_id): sort the lists, drop that id.
        const n = [added, update, removed]
          .map((r) => norm(r, subst))
          .map((x) => ({
            ...x,
            out: x.out
              .replace(
                /ETCD_INITIAL_CLUSTER="([^"]*)"/,
                (_m, l: string) => `ETCD_INITIAL_CLUSTER="${l.split(',').sort().join(',')}"`,
              )
              .replace(/"member_id":\d+/, '"member_id":<responder>')
              .replace(
                /"members":\[(.*)\]/,
                (_m, l: string) =>
                  `"members":[${(l.match(/\{"ID":[^{}]*\}/g) ?? []).sort().join(',')}]`,
              ),
          }));
        outs.push({
          code: n[0]!.code + n[1]!.code + n[2]!.code,
          out: n.map((x) => x.out).join('|'),
          err: n.map((x) => x.err).join('|'),
        });
      }
    }
    t.deepEqual(outs[1], outs[0], `member add/update/remove -w ${w}`);
  }
  const { members } = await new Client({ endpoints: cluster.endpoints }).memberList();
  t.deepEqual(members.map((m) => m.name).sort(), ['ref0', 'ref1', 'ref2']);
});

serial('cluster: member errors exit as etcdctl', async (t) => {
  const url = await freeUrl();
  const added = await addLearner('etcdctl', 'learner2', url);
  t.is(added.code, 0, `member add: ${added.err}`);
  const id = idHex(await memberIdOf(url));
  // promoting a learner that never started: etcd refuses
  await same(t, ['member', 'promote', id]);
  // a peer URL another member has (an add of the same URL could instead collide on the
  // member id, which etcd derives from the URLs and the current second)
  await same(t, ['member', 'update', id, `--peer-urls=${cluster.members[0]!.peerUrl}`]);
  t.is((await ctl('etcdctl', ['member', 'remove', id])).code, 0);
  await same(t, ['member', 'remove', id]);
  await same(t, ['member', 'update', 'abc', '--peer-urls=http://127.0.0.1:1']);
  await same(t, ['member', 'promote', 'abc']);
  await same(t, ['member', 'add']);
  await same(t, ['member', 'add', 'x']);
  await same(t, ['member', 'add', 'x', 'http://127.0.0.1:1']);
  await same(t, ['member', 'remove']);
  await same(t, ['member', 'remove', 'zz']);
  await same(t, ['member', 'update', 'abc']);
});

serial('cluster: endpoint status and health with --cluster', async (t) => {
  const one = [cluster.endpoints[1]!];
  for (const w of ['simple', 'json', 'fields', 'table']) {
    await same(t, ['endpoint', 'status', '--cluster', '-w', w], one);
  }
  // Health answers arrive in any order and their timings differ: compare sorted lines.
  const took = (s: string) =>
    s
      .replace(/took = [\d.]+(ns|µs|ms|s)/g, 'took = <t>')
      .replace(/"took":"[^"]+"/g, '"took":"<t>"')
      .split('\n')
      .sort()
      .join('\n');
  for (const args of [
    ['endpoint', 'health', '--cluster'],
    ['endpoint', 'health'],
  ]) {
    const [a, b] = [norm(await ctl('etcdctl', args, one)), norm(await ctl('myetcdctl', args, one))];
    t.deepEqual({ ...b, err: took(b.err) }, { ...a, err: took(a.err) }, args.join(' '));
    t.is(
      a.err.split('\n').filter((l) => l.includes('is healthy')).length,
      args.includes('--cluster') ? 3 : 1,
    );
  }
  const json = norm(await ctl('myetcdctl', ['endpoint', 'health', '--cluster', '-w', 'json'], one));
  const list = JSON.parse(json.out) as Array<{ endpoint: string; health: boolean }>;
  t.deepEqual(list.map((h) => h.endpoint).sort(), [...cluster.endpoints].sort());
  t.true(list.every((h) => h.health));
});

serial('cluster: move-leader', async (t) => {
  const st = await statuses();
  const leaderId = st[0]!.leader;
  const followers = st.filter((s) => s.header.memberId !== leaderId).map((s) => s.header.memberId);
  t.is(followers.length, 2);
  // etcdctl moves the leadership to one follower, myetcdctl moves it on to the other.
  const a = await ctl('etcdctl', ['move-leader', idHex(followers[0]!)]);
  t.is(
    a.out.toString(),
    `Leadership transferred from ${idHex(leaderId)} to ${idHex(followers[0]!)}\n`,
  );
  const b = await ctl('myetcdctl', ['move-leader', idHex(followers[1]!)]);
  t.deepEqual(norm(b), {
    code: 0,
    out: `Leadership transferred from ${idHex(followers[0]!)} to ${idHex(followers[1]!)}\n`,
    err: '',
  });
  const after = await statuses();
  t.true(
    after.every((s) => s.leader === followers[1]),
    'every member sees the new leader',
  );
  // errors: a transferee that is not a member; no leader among the endpoints; bad id
  await same(t, ['move-leader', '1']);
  const follower = cluster.members.find((m, i) => after[i]!.header.memberId !== followers[1])!;
  await same(t, ['move-leader', idHex(followers[0]!)], [follower.clientUrl]);
  await same(t, ['move-leader', 'zz']);
  await same(t, ['move-leader']);
  await same(t, ['move-leader', idHex(followers[0]!), '-w', 'fields']);
});

serial('cluster: the SDK and myetcdctl fail over to a member that answers', async (t) => {
  const st = await statuses();
  const leaderId = st[0]!.leader;
  const followerIdx = st.findIndex((s) => s.header.memberId !== leaderId);
  const follower = cluster.members[followerIdx]!;
  const others = cluster.endpoints.filter((e) => e !== follower.clientUrl);
  const dead = await freeUrl();
  const client = new Client({ endpoints: [dead, follower.clientUrl, ...others] });
  await client.put('failover/k', 'v1');
  t.is(await client.getString('failover/k'), 'v1');
  const w = client.watch('failover/k');
  const it = w[Symbol.asyncIterator]();
  const first = it.next();
  await w.created;
  await client.put('failover/k', 'v2');
  t.is((await first).value?.events[0]?.kv.value.toString(), 'v2');
  // The member the client and its watch use goes away for good.
  await cluster.kill(follower);
  await client.put('failover/k', 'v3');
  t.is(await client.getString('failover/k'), 'v3');
  t.not(client.transport.endpoint, follower.clientUrl);
  // The watch reconnects to a live member from the revision after its last event.
  t.is((await it.next()).value?.events[0]?.kv.value.toString(), 'v3');
  w.cancel();
  const cli = await ctl(
    'myetcdctl',
    ['get', 'failover/k', '--print-value-only'],
    [dead, follower.clientUrl, ...others],
  );
  t.deepEqual(norm(cli), { code: 0, out: 'v3\n', err: '' });
});
