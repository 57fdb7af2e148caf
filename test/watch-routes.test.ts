import test from 'ava';
import type { ResponseHeader } from '../src/mvcc/types.js';
import type { LeaseId, Revision } from '../src/types.js';
import {
  decodeCreate, decodeV1Watch, encodeV3Result, JsonStreamSplitter,
} from '../src/gateway/watch-routes.js';

const h = { clusterId: 1, memberId: 2, revision: 5 as Revision, raftTerm: 3 } as ResponseHeader;
const kv = (key: string, rev: number, version: number) => ({
  key, value: version === 0 ? '' : 'v', createRevision: (version === 0 ? 0 : 2) as Revision,
  modRevision: rev as Revision, version, lease: 0 as LeaseId,
});

test('watch routes: the request stream splits into objects across chunks', (t) => {
  const s = new JsonStreamSplitter();
  t.deepEqual(s.push('{"create_request":{"key":"YQ=="}}{"progress'),
    ['{"create_request":{"key":"YQ=="}}']);
  t.true(s.pending);
  t.deepEqual(s.push('_request":{"x":"}{"}}\n'), ['{"progress_request":{"x":"}{"}}']);
  t.false(s.pending);
  t.throws(() => new JsonStreamSplitter().push('x'), { message: /invalid character 'x'/ });
});

test('watch routes: create_request decodes etcd\'s JSON', (t) => {
  t.deepEqual(decodeCreate({
    key: 'YQ==', range_end: 'Yg==', start_revision: '7', prev_kv: true, watch_id: 3,
    filters: ['NOPUT', 1], progress_notify: true,
  }), {
    key: 'a', rangeEnd: 'b', startRevision: 7, prevKv: true, watchId: 3,
    filters: ['NOPUT', 'NODELETE'], progressNotify: true,
  });
});

test('watch routes: responses encode as etcd 3.4\'s grpc-gateway lines', (t) => {
  t.is(encodeV3Result({ watchId: 0, revision: 5, events: [], created: true }, h),
    '{"result":{"header":{"cluster_id":"1","member_id":"2","revision":"5","raft_term":"3"},' +
    '"created":true}}\n');
  const line = encodeV3Result({ watchId: 2, revision: 5, events: [
    { kind: 'put', kv: kv('a', 4, 1) },
    { kind: 'delete', kv: kv('a', 5, 0), prevKv: kv('a', 4, 1) },
  ] }, h);
  t.is(line, '{"result":{"header":{"cluster_id":"1","member_id":"2","revision":"5",' +
    '"raft_term":"3"},"watch_id":"2","events":[{"kv":{"key":"YQ==","create_revision":"2",' +
    '"mod_revision":"4","version":"1","value":"dg=="}},{"type":"DELETE","kv":{"key":"YQ==",' +
    '"mod_revision":"5"},"prev_kv":{"key":"YQ==","create_revision":"2","mod_revision":"4",' +
    '"version":"1","value":"dg=="}}]}}\n');
  t.regex(encodeV3Result({ watchId: 1, revision: 5, events: [], canceled: true,
    compactRevision: 3, cancelReason: 'mvcc: required revision has been compacted' }, h),
  /"watch_id":"1","canceled":true,"compact_revision":"3","cancel_reason":"mvcc: required/);
});

test('watch routes: /v1 watch body and Last-Event-ID resume', (t) => {
  t.deepEqual(decodeV1Watch('{"key":"fö","prefix":true,"prevKV":true}', undefined), {
    key: 'f\xc3\xb6', rangeEnd: 'f\xc3\xb7', prevKv: true,
  });
  t.is(decodeV1Watch('{"key":"a","startRevision":3}', '41').startRevision, 42);
  t.throws(() => decodeV1Watch('{}', undefined), { message: 'etcdserver: key is not provided' });
});
