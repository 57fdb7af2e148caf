import test from 'ava';
import { encodeStreamError } from '../src/api/errors.js';
import { parseJsonBody } from '../src/api/gojson.js';
import { JsonStreamSplitter } from '../src/api/json-stream.js';
import { decodeV1WatchQuery, decodeV1WatchRequest, encodeV1WatchEvent } from '../src/api/v1.js';
import { EtcdError } from '../src/errors.js';
import { decodeWatchRequest, encodeWatchResponse } from '../src/api/v3.js';
import type { ResponseHeader } from '../src/mvcc/types.js';
import type { LeaseId, Revision } from '../src/types.js';

// The watch streams' codecs are src/api's: the same decoders (and errors) as every /v3 body.

const h = { clusterId: 1, memberId: 2, revision: 5 as Revision, raftTerm: 3 } as ResponseHeader;
const kv = (key: string, rev: number, version: number) => ({
  key, value: version === 0 ? '' : 'v', createRevision: (version === 0 ? 0 : 2) as Revision,
  modRevision: rev as Revision, version, lease: 0 as LeaseId,
});
const decode = (text: string) => decodeWatchRequest(parseJsonBody(text));

test('watch codec: the request stream splits into objects across chunks', (t) => {
  const s = new JsonStreamSplitter();
  t.deepEqual(s.push('{"create_request":{"key":"YQ=="}}{"progress'),
    ['{"create_request":{"key":"YQ=="}}']);
  t.true(s.pending);
  t.deepEqual(s.push('_request":{"x":"}{"}}\n'), ['{"progress_request":{"x":"}{"}}']);
  t.false(s.pending);
  t.throws(() => new JsonStreamSplitter().push('x'), {
    message: 'invalid character \'x\' looking for beginning of value',
  });
  // Only JSON's four whitespace characters may stand between values, as in Go's decoder
  // (found by the HTTP fuzzer: a leading \x01 was skipped).
  t.throws(() => new JsonStreamSplitter().push('\u0001{}'), { instanceOf: EtcdError });
  t.deepEqual(new JsonStreamSplitter().push(' \t\r\n{}'), ['{}']);
  // A value whose quotes do not pair is still open when the body ends: `pending` tells the
  // route to fail the stream ("unexpected EOF") instead of waiting.
  const cut = new JsonStreamSplitter();
  t.deepEqual(cut.push('{kaeate_request":{"key":"YQ=="}}'), []);
  t.true(cut.pending);
});

test('watch codec: create_request decodes etcd\'s JSON, proto or JSON names', (t) => {
  t.deepEqual(decode(JSON.stringify({ create_request: {
    key: 'YQ==', range_end: 'Yg==', start_revision: '7', prev_kv: true, watch_id: 3,
    filters: ['NOPUT', 1], progress_notify: true, fragment: false,
  } })), { type: 'create', spec: {
    key: 'a', rangeEnd: 'b', startRevision: 7, prevKv: true, watchId: 3,
    filters: ['NOPUT', 'NODELETE'], progressNotify: true,
  } });
  t.deepEqual(decode('{"createRequest":{"key":"YQ==","startRevision":2,"prevKv":true}}'),
    { type: 'create', spec: { key: 'a', startRevision: 2, prevKv: true } });
  t.deepEqual(decode('{"cancel_request":{"watch_id":"4"}}'), { type: 'cancel', watchId: 4 });
  t.deepEqual(decode('{"progress_request":{}}'), { type: 'progress' });
  t.deepEqual(decode('{}'), { type: 'none' });
  // A filter number without a name is dropped, as etcd's FiltersFromRequest does.
  t.deepEqual(decode('{"create_request":{"key":"YQ==","filters":[7]}}'),
    { type: 'create', spec: { key: 'a' } });
});

test('watch codec: a bad field fails as on /v3/kv, in Go\'s words', (t) => {
  const fails = (text: string, message: string) => {
    const e = t.throws(() => decode(text), { instanceOf: EtcdError });
    t.is(e?.message, message, text);
  };
  fails('{"create_request":{"key":"YQ=","prev_kv":true}}', 'illegal base64 data at input byte 3');
  fails('{"create_request":{"key":"YQ==","prev_kv":"true"}}',
    'json: cannot unmarshal string into Go value of type bool');
  fails('{"create_request":{"key":"YQ==","start_revision":"x"}}',
    'invalid character \'x\' looking for beginning of value');
  fails('{"create_request":{"key":"YQ==","start_revision":1.5}}',
    'json: cannot unmarshal number 1.5 into Go value of type int64');
  fails('{"create_request":{"key":"YQ==","filters":["NOPE"]}}',
    'unknown value "NOPE" for enum etcdserverpb.WatchCreateRequest_FilterType');
  fails('{"create_request":"a"}',
    'json: cannot unmarshal string into Go value of type map[string]json.RawMessage');
});

test('watch codec: responses encode as etcd 3.4\'s grpc-gateway lines', (t) => {
  t.is(encodeWatchResponse(h, { watchId: 0, revision: 5, events: [], created: true }),
    '{"result":{"header":{"cluster_id":"1","member_id":"2","revision":"5","raft_term":"3"},' +
    '"created":true}}\n');
  const line = encodeWatchResponse(h, { watchId: 2, revision: 5, events: [
    { kind: 'put', kv: kv('a', 4, 1) },
    { kind: 'delete', kv: kv('a', 5, 0), prevKv: kv('a', 4, 1) },
  ] });
  t.is(line, '{"result":{"header":{"cluster_id":"1","member_id":"2","revision":"5",' +
    '"raft_term":"3"},"watch_id":"2","events":[{"kv":{"key":"YQ==","create_revision":"2",' +
    '"mod_revision":"4","version":"1","value":"dg=="}},{"type":"DELETE","kv":{"key":"YQ==",' +
    '"mod_revision":"5"},"prev_kv":{"key":"YQ==","create_revision":"2","mod_revision":"4",' +
    '"version":"1","value":"dg=="}}]}}\n');
  t.regex(encodeWatchResponse(h, { watchId: 1, revision: 5, events: [], canceled: true,
    compactRevision: 3, cancelReason: 'mvcc: required revision has been compacted' }),
  /"watch_id":"1","canceled":true,"compact_revision":"3","cancel_reason":"mvcc: required/);
  // The header cache answers by value, not by the last object it saw.
  t.regex(encodeWatchResponse({ ...h, revision: 6 as Revision }, {
    watchId: -1, revision: 6, events: [] }), /"revision":"6".*"watch_id":"-1"/);
});

test('watch codec: a stream error is grpc-gateway\'s error line', (t) => {
  t.is(encodeStreamError(new EtcdError('COMPACTED')),
    '{"error":{"grpc_code":11,"http_code":400,"message":"etcdserver: mvcc: required revision ' +
    'has been compacted","http_status":"Bad Request"}}\n');
  t.is(encodeStreamError(new EtcdError('EMPTY_KEY'), 2),
    '{"error":{"grpc_code":2,"http_code":500,"message":"etcdserver: key is not provided",' +
    '"http_status":"Internal Server Error"}}\n');
});

test('watch codec: /v1 watch body, query and Last-Event-ID resume', (t) => {
  t.deepEqual(decodeV1WatchRequest(parseJsonBody('{"key":"fö","prefix":true,"prevKV":true}')), {
    key: 'f\xc3\xb6', rangeEnd: 'f\xc3\xb7', prevKv: true,
  });
  t.is(decodeV1WatchRequest(parseJsonBody('{"key":"a","startRevision":3}'), '41').startRevision,
    42);
  t.is(decodeV1WatchRequest(parseJsonBody('{"key":"a","startRevision":3}')).startRevision, 3);
  t.throws(() => decodeV1WatchRequest(parseJsonBody('{}')),
    { message: 'etcdserver: key is not provided' });
  t.throws(() => decodeV1WatchRequest(parseJsonBody('{"key":"a","prefix":"yes"}')),
    { message: 'field prefix must be true or false' });
  t.throws(() => decodeV1WatchRequest(parseJsonBody('{"key":"a","startRevision":-1}')),
    { message: 'field startRevision must not be negative' });
  t.deepEqual(decodeV1WatchQuery({ key: 'a', prefix: 'true', startRevision: '4' }), {
    key: 'a', rangeEnd: 'b', startRevision: 4,
  });
  t.is(decodeV1WatchQuery(new URLSearchParams('key=a'), '9').startRevision, 10);
  t.throws(() => decodeV1WatchQuery({}), { message: 'etcdserver: key is not provided' });
});

test('watch codec: a /v1 watch response is one Server-Sent Event', (t) => {
  t.is(encodeV1WatchEvent(h, { watchId: 1, revision: 5, events: [], created: true }),
    'data: {"revision":5,"watchId":1,"created":true,"events":[]}\n\n');
  t.is(encodeV1WatchEvent(h, { watchId: 1, revision: 5, events: [
    { kind: 'delete', kv: kv('a', 5, 0), prevKv: kv('a', 4, 1) },
  ] }), 'id: 5\ndata: {"revision":5,"watchId":1,"events":[{"type":"DELETE","key":"a",' +
    '"value":"","createRevision":0,"modRevision":5,"version":0,"lease":0,"prevKv":{"key":"a",' +
    '"value":"v","createRevision":2,"modRevision":4,"version":1,"lease":0}}]}\n\n');
});
