import test from 'ava';
import { readFileSync } from 'node:fs';
import { cases } from './compat/record-etcd.js';
import { generateBody } from './compat/generators.js';
import { RecordedLeases } from './helpers/lease-time.js';
import { useServer } from './helpers/server.js';
import { now } from './helpers/wait.js';

// The compatibility promise, checked end to end: replay against a FRESH MyEtcd the exact
// request sequence that was recorded against a fresh etcd 3.4.23 (test/compat/record-etcd.ts)
// and compare every answer — status and body text — with etcd's. Only what identifies the
// member (cluster_id, member_id, raft_term) differs by nature and is normalised.
const fixtures = new URL('../../test/fixtures/etcd/', import.meta.url);

interface Fixture {
  name: string;
  status: number;
  responseBody: string;
}

function normalise(body: string): string {
  return body
    .replace(/"cluster_id":"\d+"/g, '"cluster_id":"C"')
    .replace(/"member_id":"\d+"/g, '"member_id":"M"')
    .replace(/"raft_term":"\d+"/g, '"raft_term":"T"')
    .replace(/"leader":"\d+"/g, '"leader":"L"')
    // Sizes and Raft indexes are the implementation's own counts (etcd's bbolt file size, its
    // internal log entries); their presence and shape are compared, not their values.
    .replace(/"(dbSize|dbSizeInUse|raftIndex|raftAppliedIndex)":"\d+"/g, '"$1":"N"');
}

test('compat: every recorded etcd 3.4 answer is reproduced by MyEtcd', async (t) => {
  const srv = await useServer(t);
  const mismatches: string[] = [];
  // Two answers depend on time (a lease's remaining TTL, the live leases): compared with the
  // slack the replay's own clock allows (helpers/lease-time.ts).
  const leases = new RecordedLeases();
  for (const c of cases) {
    const fx = JSON.parse(readFileSync(new URL(`${c.name}.json`, fixtures), 'utf8')) as Fixture;
    const method = c.method ?? 'POST';
    const body = c.generated ? generateBody(c.generated) : c.body;
    // Generous: only an answer that never comes reaches it.
    const signal = AbortSignal.timeout(30_000);
    let res: Response;
    let text: string;
    const sent = now();
    try {
      res = await fetch(srv.url + c.path, method === 'GET' ? { method, signal } :
        { method, body, signal });
      text = await res.text();
    } catch (e) {
      mismatches.push(`${c.name}: no answer (${String(e)})`);
      continue;
    }
    const answer = { status: res.status, text };
    leases.observe(c.path, sent, answer);
    const { ours, theirs } = leases.normalise(c.path, body, answer,
      { status: fx.status, text: fx.responseBody }, now());
    if (ours.status !== theirs.status || normalise(ours.text) !== normalise(theirs.text)) {
      mismatches.push(`${c.name}: ${res.status} ${text.slice(0, 300)}\n` +
        `   etcd: ${fx.status} ${fx.responseBody.slice(0, 300)}`);
    }
  }
  t.log(`${cases.length - mismatches.length} of ${cases.length} answers identical`);
  t.deepEqual(mismatches, []);
});
