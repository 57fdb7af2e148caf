import test from 'ava';
import type { DashboardJson } from '../src/gateway/dashboard.js';
import { fastRaft, startCluster, waitFor, waitForLeader } from './helpers/cluster.js';
import { waitForSpans } from './helpers/server.js';

// The dashboard against a cluster (issue 16): any member's /debug/dashboard shows every member
// with its role, term and indexes (asking the others for /debug/member), and requests traced
// on a follower show the follower's own hops (a GET's read-index round trip among them).
// Three real member processes; all are killed on every path.

test('dashboard: a follower\'s /debug/dashboard shows the three members, one leader, and a ' +
  'PUT and a GET traced there show the follower\'s hops', async (t) => {
  const c = await startCluster({ size: 3, args: fastRaft });
  try {
    const leader = await waitForLeader(c);
    const follower = c.nodes.findIndex((_, i) => i !== leader);
    const url = c.nodes[follower]!.server!.url;
    const dash = await waitFor('three healthy members on the follower\'s dashboard', async () => {
      const r = await fetch(`${url}/debug/dashboard`);
      if (r.status !== 200) return undefined;
      const d = await r.json() as DashboardJson;
      const ok = d.members.length === 3 && d.members.every((m) => m.healthy) &&
        d.members.filter((m) => m.role === 'leader').length === 1;
      return ok ? d : undefined;
    });
    t.is(dash.self.role, 'follower');
    t.is(dash.members.filter((m) => m.role === 'follower').length, 2);
    t.is(new Set(dash.members.map((m) => m.term)).size, 1, 'one term');
    t.is(new Set(dash.members.map((m) => m.leader)).size, 1, 'one leader for all');
    t.deepEqual(dash.members.map((m) => m.name).sort(), ['m1', 'm2', 'm3']);
    t.true(dash.members.every((m) => (m.applied ?? 0) > 0 && (m.commit ?? 0) > 0));
    t.true(dash.actors.some((a) => a.actor === 'peer'));

    const r = await fetch(`${url}/v1/key/dash/c`,
      { method: 'PUT', body: '{"value":"v"}', headers: { 'x-myetcd-trace': '1' } });
    t.is(r.status, 200);
    const tr = await waitForSpans(url, r.headers.get('x-myetcd-trace-id')!,
      ['PUT /v1/key/*', 'RaftPropose', 'RaftPropose reply']);
    const propose = tr.spans.find((s) => s.name === 'RaftPropose')!;
    t.is(propose.attributes['thread'], 'myetcd-raft');
    t.is(propose.parentSpanId, tr.spans.find((s) => s.name === 'PUT /v1/key/*')!.spanId);

    // A linearizable GET in a cluster goes through a read index (a lone voter's would not):
    // the read-index round trip, then the shard read, both under the request.
    const g = await fetch(`${url}/v1/key/dash/c`, { headers: { 'x-myetcd-trace': '1' } });
    t.is(g.status, 200);
    const gt = await waitForSpans(url, g.headers.get('x-myetcd-trace-id')!,
      ['GET /v1/key/*', 'RaftReadIndex', 'RaftReadIndex reply', 'ShardRange', 'ShardRange reply']);
    const span = (name: string) => gt.spans.find((s) => s.name === name)!;
    const root = span('GET /v1/key/*');
    const ri = span('RaftReadIndex');
    t.is(ri.parentSpanId, root.spanId);
    t.is(ri.attributes['thread'], 'myetcd-raft');
    t.is(span('RaftReadIndex reply').parentSpanId, ri.spanId);
    // The shard read is the request's own: it follows the read index, under the request.
    t.is(span('ShardRange').parentSpanId, root.spanId);
    t.true(span('ShardRange').startMs >= ri.startMs);
    const m = await (await fetch(`${url}/metrics`)).text();
    t.regex(m, /^myetcd_linearizable_reads_total\{read_point="read_index"\} [1-9]/m);
    t.regex(m, /^myetcd_linearizable_reads_total\{read_point="shared"\} 0$/m);
  } finally {
    await c.stopAll();
  }
});
