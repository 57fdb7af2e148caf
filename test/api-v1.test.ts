import test from 'ava';
import type { KeyValue, ResponseHeader } from '../src/mvcc/types.js';
import type { LeaseId, Revision } from '../src/types.js';
import { ErrCompacted, EtcdError } from '../src/errors.js';
import {
  decodeV1BatchRequest,
  decodeV1DeleteRequest,
  decodeV1GetRequest,
  decodeV1Key,
  decodeV1ListRequest,
  decodeV1PutRequest,
  decodeV1TxnRequest,
  encodeV1BatchResponse,
  encodeV1DeleteResponse,
  encodeV1GetResponse,
  encodeV1ListResponse,
  encodeV1PutResponse,
  encodeV1TxnResponse,
  v1ErrorResponse,
} from '../src/api/v1.js';

const header: ResponseHeader = {
  clusterId: 1, memberId: 2, revision: 9 as Revision, raftTerm: 3,
};

function kv(key: string, value: string, rev = 5): KeyValue {
  return {
    key, value, createRevision: 2 as Revision, modRevision: rev as Revision, version: 3,
    lease: 0 as LeaseId,
  };
}

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return (e as EtcdError).code;
  }
  return 'no error';
}

test('v1: keys come from the path, percent-decoded, slashes kept, UTF-8 to bytes', (t) => {
  t.is(decodeV1Key('a/b%20c'), 'a/b c');
  t.is(decodeV1Key('%C3%A9'), '\xc3\xa9');
  t.is(code(() => decodeV1Key('')), 'EMPTY_KEY');
  t.is(code(() => decodeV1Key('%E0%A4%A')), 'BAD_REQUEST');
});

test('v1: PUT body as in the seed example decodes to the internal put', (t) => {
  t.deepEqual(decodeV1PutRequest('test', { key: 'test', value: 'hello' }), {
    type: 'put', key: 'test', value: 'hello',
  });
  t.deepEqual(decodeV1PutRequest('k', { value: 'é', lease: 7, prevKV: true }), {
    type: 'put', key: 'k', value: '\xc3\xa9', lease: 7, prevKv: true,
  });
  t.is(code(() => decodeV1PutRequest('test', { key: 'other', value: 'x' })), 'BAD_REQUEST');
  t.is(code(() => decodeV1PutRequest('test', {})), 'BAD_REQUEST');
  t.is(code(() => decodeV1PutRequest('test', { value: 1 })), 'BAD_REQUEST');
  t.is(code(() => decodeV1PutRequest('test', [])), 'BAD_REQUEST');
});

test('v1: PUT and GET round trip through the envelope', (t) => {
  t.is(encodeV1PutResponse(header, { type: 'put' }), '{"ok":true,"revision":9,"data":{}}');
  const body = encodeV1GetResponse(header, { type: 'range', kvs: [kv('test', 'hello')],
    more: false, count: 1 });
  t.deepEqual(JSON.parse(body), {
    ok: true, revision: 9,
    data: { key: 'test', value: 'hello', createRevision: 2, modRevision: 5, version: 3, lease: 0 },
  });
  t.deepEqual(decodeV1GetRequest('test', new URLSearchParams('revision=4')), {
    type: 'range', key: 'test', revision: 4,
  });
  t.is(code(() => decodeV1GetRequest('test', { revision: 'x' })), 'BAD_REQUEST');
});

test('v1: GET of a missing key is 404 KEY_NOT_FOUND in the failure envelope', (t) => {
  const e = t.throws(() => encodeV1GetResponse(header, { type: 'range', kvs: [], more: false,
    count: 0 }));
  const r = v1ErrorResponse(e);
  t.is(r.status, 404);
  t.deepEqual(JSON.parse(r.body), {
    ok: false, error: { code: 'KEY_NOT_FOUND', message: 'etcdserver: key not found' },
  });
});

test('v1: errors share the v3 code table; unknown errors are 500 INTERNAL', (t) => {
  const r = v1ErrorResponse(new ErrCompacted());
  t.is(r.status, 400);
  t.is(JSON.parse(r.body).error.code, 'COMPACTED');
  const u = v1ErrorResponse(new Error('boom at secret place'));
  t.is(u.status, 500);
  t.false(u.body.includes('secret'));
});

test('v1: DELETE with prefix and prevKV', (t) => {
  t.deepEqual(decodeV1DeleteRequest('dir/', { prefix: 'true', prevKV: '1' }), {
    type: 'deleteRange', key: 'dir/', rangeEnd: 'dir0', prevKv: true,
  });
  t.deepEqual(JSON.parse(encodeV1DeleteResponse(header, { type: 'deleteRange', deleted: 1,
    prevKvs: [kv('dir/a', 'x')] })).data.deleted, 1);
});

test('v1: listing by prefix pages with an opaque cursor', (t) => {
  const first = decodeV1ListRequest(new URLSearchParams('prefix=app/&limit=2'));
  t.deepEqual(first, { type: 'range', key: 'app/', rangeEnd: 'app0', limit: 2 });
  const body = encodeV1ListResponse(header, first, { type: 'range',
    kvs: [kv('app/a', '1'), kv('app/b', '2')], more: true, count: 3 });
  const page = JSON.parse(body) as { data: { cursor: string; more: boolean; count: number } };
  t.true(page.data.more);
  t.is(page.data.count, 3);
  const next = decodeV1ListRequest(new URLSearchParams(
    `prefix=app/&limit=2&revision=9&cursor=${page.data.cursor}`));
  t.deepEqual(next, { type: 'range', key: 'app/b\0', rangeEnd: 'app0', limit: 2, revision: 9 });
  const last = encodeV1ListResponse(header, next, { type: 'range', kvs: [kv('app/c', '3')],
    more: false, count: 1 });
  t.false('cursor' in (JSON.parse(last) as { data: object }).data);
  t.deepEqual(decodeV1ListRequest({ from: 'a', to: 'c' }),
    { type: 'range', key: 'a', rangeEnd: 'c', limit: 100 });
  t.deepEqual(decodeV1ListRequest({}), { type: 'range', key: '\0', rangeEnd: '\0', limit: 100 });
  t.is(code(() => decodeV1ListRequest({ prefix: 'a', from: 'b' })), 'BAD_REQUEST');
  t.is(code(() => decodeV1ListRequest({ limit: '100000' })), 'BAD_REQUEST');
  t.is(code(() => decodeV1ListRequest({ prefix: 'b', cursor: 'YQ' })), 'BAD_REQUEST');
});

test('v1: txn in friendly JSON decodes to the internal txn and back', (t) => {
  const r = decodeV1TxnRequest({
    compare: [{ key: 'lock', target: 'version', op: '==', value: 0 },
      { key: 'cfg', target: 'value', op: '!=', value: 'old' }],
    success: [{ op: 'put', key: 'lock', value: 'me' }, { op: 'get', key: 'cfg' }],
    failure: [{ op: 'get', key: 'lock' }],
  });
  t.deepEqual(r, {
    type: 'txn',
    compare: [{ key: 'lock', target: 'VERSION', result: 'EQUAL', version: 0 },
      { key: 'cfg', target: 'VALUE', result: 'NOT_EQUAL', value: 'old' }],
    success: [{ type: 'put', key: 'lock', value: 'me' }, { type: 'range', key: 'cfg' }],
    failure: [{ type: 'range', key: 'lock' }],
  });
  const body = encodeV1TxnResponse(header, { type: 'txn', succeeded: true, responses: [
    { type: 'put' }, { type: 'range', kvs: [kv('cfg', 'new')], more: false, count: 1 }] });
  const j = JSON.parse(body) as { data: { succeeded: boolean; responses: { op: string }[] } };
  t.true(j.data.succeeded);
  t.deepEqual(j.data.responses.map((x) => x.op), ['put', 'get']);
  t.is(code(() => decodeV1TxnRequest({ compare: [{ key: 'a', target: 'size' }] })),
    'BAD_REQUEST');
  t.is(code(() => decodeV1TxnRequest({ success: [{ op: 'put', key: 'a', value: '1' },
    { op: 'delete', key: 'a' }] })), 'DUPLICATE_KEY');
});

test('v1: batch is one atomic txn, limited to 128 ops, no reads', (t) => {
  const r = decodeV1BatchRequest({ ops: [{ op: 'put', key: 'a', value: '1' },
    { op: 'delete', key: 'b', prefix: true }] });
  t.deepEqual(r, { type: 'txn', compare: [], failure: [], success: [
    { type: 'put', key: 'a', value: '1' }, { type: 'deleteRange', key: 'b', rangeEnd: 'c' }] });
  const ops = Array.from({ length: 129 }, (_, i) => ({ op: 'put', key: `k${i}`, value: '' }));
  t.is(code(() => decodeV1BatchRequest({ ops })), 'TOO_MANY_OPS');
  t.is(code(() => decodeV1BatchRequest({ ops: [{ op: 'get', key: 'a' }] })), 'BAD_REQUEST');
  t.is(code(() => decodeV1BatchRequest({ ops: [] })), 'BAD_REQUEST');
  t.deepEqual(JSON.parse(encodeV1BatchResponse(header, { type: 'txn', succeeded: true,
    responses: [{ type: 'put' }, { type: 'deleteRange', deleted: 2 }] })), {
    ok: true, revision: 9, data: { responses: [{ op: 'put' }, { op: 'delete', deleted: 2 }] },
  });
});
