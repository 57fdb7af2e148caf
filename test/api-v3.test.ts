import test from 'ava';
import { readdirSync, readFileSync } from 'node:fs';
import {
  ErrCompacted,
  ErrFutureRev,
  ErrKeyNotFound,
  ErrLeaseExists,
  ErrLeaseNotFound,
  EtcdError,
} from '../src/errors.js';
import type {
  KeyValue,
  RangeResponse,
  ResponseHeader,
  ResponseOp,
  TxnResponse,
} from '../src/mvcc/types.js';
import type { Revision, LeaseId } from '../src/types.js';
import {
  errorResponse,
  goJsonString,
  streamErrorResponse,
} from '../src/api/errors.js';
import { goBase64Decode, goBase64ErrorPos } from '../src/api/gobase64.js';
import { parseJsonBody } from '../src/api/gojson.js';
import {
  decodeCompactionRequest,
  decodeDeleteRangeRequest,
  decodeLeaseGrantRequest,
  decodeLeaseKeepAliveStream,
  decodeLeaseLeasesRequest,
  decodeLeaseRevokeRequest,
  decodeLeaseTimeToLiveRequest,
  decodePutRequest,
  decodeRangeRequest,
  decodeStatusRequest,
  decodeTxnRequest,
} from '../src/api/v3-decode.js';
import {
  encodeCompactionResponse,
  encodeDeleteRangeResponse,
  encodeHealth,
  encodeLeaseGrantResponse,
  encodeLeaseKeepAliveResponse,
  encodeLeaseLeasesResponse,
  encodeLeaseRevokeResponse,
  encodeLeaseTimeToLiveResponse,
  encodePutResponse,
  encodeRangeResponse,
  encodeStatusResponse,
  encodeTxnResponse,
  encodeVersion,
} from '../src/api/v3-encode.js';
import { v3Routes } from '../src/api/v3.js';
import {
  ActorGoneError, AskTimeoutError, MailboxFullError, RemoteError,
} from '../src/runtime/endpoint.js';
import { generateBody, type Generated } from './compat/generators.js';

interface Fixture {
  name: string;
  method: string;
  path: string;
  requestBody: string | null;
  generated?: Generated;
  status: number;
  contentType: string;
  responseBody: string;
}

const dir = new URL('../../test/fixtures/etcd/', import.meta.url);
const fixtures: Fixture[] = readdirSync(dir)
  .filter((f) => f.endsWith('.json'))
  .map((f) => JSON.parse(readFileSync(new URL(f, dir), 'utf8')) as Fixture);

function fixture(name: string): Fixture {
  const f = fixtures.find((x) => x.name === name);
  if (!f) throw new Error(`no fixture ${name}`);
  return f;
}

function requestText(f: Fixture): string {
  return f.generated ? generateBody(f.generated) : (f.requestBody ?? '');
}

const decoders: Record<string, (json: unknown) => unknown> = {
  range: decodeRangeRequest,
  put: decodePutRequest,
  deleteRange: decodeDeleteRangeRequest,
  txn: decodeTxnRequest,
  compaction: decodeCompactionRequest,
  leaseGrant: decodeLeaseGrantRequest,
  leaseRevoke: decodeLeaseRevokeRequest,
  leaseTimeToLive: decodeLeaseTimeToLiveRequest,
  leaseLeases: decodeLeaseLeasesRequest,
  status: decodeStatusRequest,
};

/** Errors etcd raises in the store or lessor, after our decoders accepted the request. */
const storeErrors: Record<string, () => unknown> = {
  'err-compaction-again': () => new ErrCompacted(),
  'err-compaction-older': () => new ErrCompacted(),
  'err-compaction-zero': () => new ErrCompacted(),
  'err-range-compacted': () => new ErrCompacted(),
  'err-txn-range-compacted': () => new ErrCompacted(),
  'err-compaction-future': () => new ErrFutureRev(),
  'err-range-future': () => new ErrFutureRev(),
  'err-lease-grant-exists': () => new ErrLeaseExists(),
  'err-lease-grant-ttl-too-large': () => new EtcdError('LEASE_TTL_TOO_LARGE'),
  'err-lease-revoke-empty': () => new ErrLeaseNotFound(),
  'err-lease-revoke-missing': () => new ErrLeaseNotFound(),
  'err-lease-revoke-alias-missing': () => new ErrLeaseNotFound(),
  'err-put-lease-not-found': () => new ErrLeaseNotFound(),
  'err-put-lease-not-found-string': () => new ErrLeaseNotFound(),
  'err-txn-put-lease-not-found': () => new ErrLeaseNotFound(),
  'err-put-ignore-lease-missing-key': () => new ErrKeyNotFound(),
  'err-put-ignore-value-missing-key': () => new ErrKeyNotFound(),
  'err-txn-ignore-value-missing-key': () => new ErrKeyNotFound(),
};

for (const f of fixtures) {
  const route = f.method === 'POST' ? v3Routes.get(f.path) : undefined;
  if (route === undefined || route === 'leaseKeepAlive') continue;
  const decode = decoders[route]!;
  test(`v3 decode: ${f.name} answers as etcd did (${f.status})`, (t) => {
    const run = (): unknown => decode(parseJsonBody(requestText(f)));
    if (f.status === 200) {
      t.notThrows(run);
      return;
    }
    const store = storeErrors[f.name];
    if (store !== undefined) {
      t.notThrows(run, 'the decoder accepts it; the store refuses it');
      const r = errorResponse(store());
      t.is(r.status, f.status);
      t.is(r.body, f.responseBody);
      return;
    }
    const err = t.throws(run);
    const r = errorResponse(err);
    t.is(r.status, f.status);
    t.is(r.body, f.responseBody);
  });
}

test('v3 decode: every store-level error fixture exists', (t) => {
  for (const name of Object.keys(storeErrors)) t.truthy(fixture(name));
});

test('v3 decode: keepalive bodies split into messages; a bad one is a 500 stream error', (t) => {
  const two = decodeLeaseKeepAliveStream(requestText(fixture('lease-keepalive-two')));
  t.deepEqual(two.requests, [
    { type: 'leaseKeepAlive', id: 1234 },
    { type: 'leaseKeepAlive', id: 999 },
  ]);
  t.is(two.error, undefined);
  for (const name of ['err-lease-keepalive-bad-json', 'err-lease-keepalive-truncated']) {
    const f = fixture(name);
    const r = decodeLeaseKeepAliveStream(requestText(f));
    t.is(r.requests.length, 0);
    const e = streamErrorResponse(r.error);
    t.is(e.status, f.status);
    t.is(e.body, f.responseBody);
  }
});

test('v3 decode: snake_case and lowerCamelCase, int64 strings, enums by name or number', (t) => {
  t.deepEqual(decodeRangeRequest(parseJsonBody(
    '{"key":"Zm9v","rangeEnd":"Zm9w","limit":"5","sort_order":"DESCEND","sortTarget":3,' +
    '"countOnly":true,"min_mod_revision":"7"}')), {
    type: 'range', key: 'foo', rangeEnd: 'fop', limit: 5, sortOrder: 'DESCEND',
    sortTarget: 'MOD', countOnly: true, minModRevision: 7,
  });
  t.deepEqual(decodePutRequest(parseJsonBody('{"key":"Zm9v","value":"YmFy","prevKv":true,' +
    '"lease":"758786209778663"}')), {
    type: 'put', key: 'foo', value: 'bar', prevKv: true, lease: 758786209778663,
  });
});

test('v3 decode: an int64 beyond ±2^53 is refused as UNSAFE_INTEGER, not rounded', (t) => {
  const e = t.throws(() => decodePutRequest(parseJsonBody(
    '{"key":"Zm9v","lease":"9007199254740993"}')));
  t.is((e as EtcdError).code, 'UNSAFE_INTEGER');
  t.is(errorResponse(e).status, 400);
});

test('v3 decode: the proto name wins over the JSON name when both are given', (t) => {
  const r = decodePutRequest(parseJsonBody('{"key":"Zm9v","prev_kv":false,"prevKv":true}'));
  t.is(r.prevKv, undefined);
});

test('v3 decode: a compare takes the target field from the union, else zero', (t) => {
  const r = decodeTxnRequest(parseJsonBody(
    '{"compare":[{"key":"YQ==","target":"MOD","result":"LESS","mod_revision":"9"},' +
    '{"key":"YQ==","target":"VERSION","value":"eA=="}]}'));
  t.deepEqual(r.compare, [
    { key: 'a', target: 'MOD', result: 'LESS', modRevision: 9 },
    { key: 'a', target: 'VERSION', result: 'EQUAL', version: 0 },
  ]);
});

test('v3 decode: nested txn budget and duplicate rules follow etcd', (t) => {
  const put = (k: string): string =>
    `{"request_put":{"key":"${Buffer.from(k).toString('base64')}"}}`;
  // then/else of one nested txn may write the same key.
  t.notThrows(() => decodeTxnRequest(parseJsonBody(
    `{"success":[{"request_txn":{"success":[${put('a')}],"failure":[${put('a')}]}}]}`)));
  // A delete with range_end "\0" does not conflict in etcd's interval check.
  t.notThrows(() => decodeTxnRequest(parseJsonBody(
    `{"success":[${put('b')},{"request_delete_range":{"key":"YQ==","range_end":"AA=="}}]}`)));
  // A delete range covering a put conflicts.
  const e = t.throws(() => decodeTxnRequest(parseJsonBody(
    `{"success":[${put('b')},{"request_delete_range":{"key":"YQ==","range_end":"Yw=="}}]}`)));
  t.is((e as EtcdError).code, 'DUPLICATE_KEY');
  // A nested txn's budget is txnOpsMax minus its parent's op count.
  const inner = Array.from({ length: 100 }, (_, i) => put(`n${i}`)).join(',');
  const outer = Array.from({ length: 30 }, (_, i) => put(`o${i}`)).join(',');
  const e2 = t.throws(() => decodeTxnRequest(parseJsonBody(
    `{"success":[${outer},{"request_txn":{"success":[${inner}]}}]}`)));
  t.is((e2 as EtcdError).code, 'TOO_MANY_OPS');
});

test('gojson: Go messages for syntax errors; first value only; empty body is undefined', (t) => {
  const cases: [string, string][] = [
    ['{"a":tru', 'unexpected EOF'],
    ['{"a":tx}', "invalid character 'x' in literal true (expecting 'r')"],
    ['{"a":1.}', "invalid character '}' after decimal point in numeric literal"],
    ['{"a":1e}', "invalid character '}' in exponent of numeric literal"],
    ['{"a":-x}', "invalid character 'x' in numeric literal"],
    ['{"a" 1}', "invalid character '1' after object key"],
    ['[1 2]', "invalid character '2' after array element"],
    ['{"a":"\\u12x"}', "invalid character 'x' in \\u hexadecimal character escape"],
    ['{"a":"\u0001"}', "invalid character '\\x01' in string literal"],
    ["{'a':1}", "invalid character '\\'' looking for beginning of object key string"],
    ['<', "invalid character '<' looking for beginning of value"],
  ];
  for (const [text, message] of cases) {
    const e = t.throws(() => parseJsonBody(text), undefined, text);
    t.is((e as EtcdError).message, message, text);
    t.is((e as EtcdError).code, 'MALFORMED_JSON');
  }
  t.is(parseJsonBody(''), undefined);
  t.is(parseJsonBody(' \n\t'), undefined);
  t.deepEqual(parseJsonBody('{"a":1} trailing'), { a: 1 });
  t.is(errorResponse(t.throws(() => parseJsonBody('<'))).body,
    '{"error":"invalid character \'\\u003c\' looking for beginning of value",' +
    '"message":"invalid character \'\\u003c\' looking for beginning of value","code":3}');
});

test('gobase64: standard alphabet only, newlines skipped, Go error offsets', (t) => {
  t.deepEqual(goBase64Decode('Zm9v\nYmFy'), { bytes: 'foobar' });
  t.deepEqual(goBase64Decode(''), { bytes: '' });
  t.deepEqual(goBase64Decode('/w=='), { bytes: '\xff' });
  t.deepEqual(goBase64Decode('_w=='), { error: 'illegal base64 data at input byte 0' });
  t.deepEqual(goBase64Decode('Zm8=Zm8='), { error: 'illegal base64 data at input byte 4' });
  t.deepEqual(goBase64Decode('Zm9v\r\n'), { bytes: 'foo' });
  t.deepEqual(goBase64Decode('Zm 9'), { error: 'illegal base64 data at input byte 2' });
  t.deepEqual(goBase64Decode('Zm9'), { error: 'illegal base64 data at input byte 0' });
});

test('gobase64: the atob fast path answers as Go\'s decoder on 20,000 random strings', (t) => {
  // The twin: Go's decodeQuantum loop (goBase64ErrorPos) for validity and position, Buffer for
  // the bytes. Strings are short and drawn mostly from the alphabet, with the characters atob
  // forgives and Go does not (space, tab, form feed, missing or misplaced '=').
  const chars = 'AQgw+/Zz09==== \t\f\r\n_-\u00e9';
  let seed = 20261130;
  const next = (m: number): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % m;
  };
  for (let i = 0; i < 20_000; i++) {
    let s = '';
    for (let n = next(13); n > 0; n--) s += chars[next(chars.length)];
    const pos = goBase64ErrorPos(s);
    const want = pos >= 0 ? { error: `illegal base64 data at input byte ${pos}` }
      : { bytes: Buffer.from(s.replace(/[\r\n]/g, ''), 'base64').toString('latin1') };
    t.deepEqual(goBase64Decode(s), want, JSON.stringify(s));
  }
});

// ---- encoders: rebuild the internal response from etcd's own JSON, re-encode, compare ----

function normalize(body: string): string {
  return body
    .replace(/"cluster_id":"\d+"/g, '"cluster_id":"1"')
    .replace(/"member_id":"\d+"/g, '"member_id":"2"')
    .replace(/"leader":"\d+"/g, '"leader":"2"');
}

type J = Record<string, unknown>;
const b64 = (s: unknown): string => Buffer.from((s as string) ?? '', 'base64').toString('latin1');
const num = (s: unknown): number => (s === undefined ? 0 : Number(s));

function headerOf(j: J): ResponseHeader {
  const h = (j.header ?? {}) as J;
  return {
    clusterId: h.cluster_id ? 1 : 0,
    memberId: h.member_id ? 2 : 0,
    revision: num(h.revision) as Revision,
    raftTerm: num(h.raft_term),
  };
}

function kvOf(j: J): KeyValue {
  return {
    key: b64(j.key), createRevision: num(j.create_revision) as Revision,
    modRevision: num(j.mod_revision) as Revision, version: num(j.version),
    value: b64(j.value), lease: num(j.lease) as LeaseId,
  };
}

function rangeOf(j: J): RangeResponse {
  return {
    type: 'range', kvs: ((j.kvs ?? []) as J[]).map(kvOf), more: j.more === true,
    count: num(j.count),
  };
}

function txnOf(j: J): TxnResponse {
  const responses: ResponseOp[] = ((j.responses ?? []) as J[]).map((r) => {
    if (r.response_range) return rangeOf(r.response_range as J);
    if (r.response_put) {
      const p = r.response_put as J;
      return p.prev_kv ? { type: 'put', prevKv: kvOf(p.prev_kv as J) } : { type: 'put' };
    }
    if (r.response_delete_range) {
      const d = r.response_delete_range as J;
      return {
        type: 'deleteRange', deleted: num(d.deleted),
        ...(d.prev_kvs ? { prevKvs: (d.prev_kvs as J[]).map(kvOf) } : {}),
      };
    }
    return txnOf(r.response_txn as J);
  });
  return { type: 'txn', succeeded: j.succeeded === true, responses };
}

function reencode(route: string, body: string): string {
  if (route === 'leaseKeepAlive') {
    return body.split('\n').filter((l) => l).map((line) => {
      const j = (JSON.parse(line) as { result: J }).result;
      return encodeLeaseKeepAliveResponse(headerOf(j),
        { type: 'leaseKeepAlive', id: num(j.ID), ttlSeconds: num(j.TTL) });
    }).join('');
  }
  const j = JSON.parse(body) as J;
  const h = headerOf(j);
  switch (route) {
    case 'range': return encodeRangeResponse(h, rangeOf(j));
    case 'put':
      return encodePutResponse(h, j.prev_kv ? { type: 'put', prevKv: kvOf(j.prev_kv as J) }
        : { type: 'put' });
    case 'deleteRange':
      return encodeDeleteRangeResponse(h, {
        type: 'deleteRange', deleted: num(j.deleted),
        ...(j.prev_kvs ? { prevKvs: (j.prev_kvs as J[]).map(kvOf) } : {}),
      });
    case 'txn': return encodeTxnResponse(h, txnOf(j));
    case 'compaction': return encodeCompactionResponse(h, { type: 'compaction' });
    case 'leaseGrant':
      return encodeLeaseGrantResponse(h, { type: 'leaseGrant', id: num(j.ID),
        ttlSeconds: num(j.TTL) });
    case 'leaseRevoke': return encodeLeaseRevokeResponse(h);
    case 'leaseTimeToLive':
      return encodeLeaseTimeToLiveResponse(h, {
        type: 'leaseTimeToLive', id: num(j.ID), ttlSeconds: num(j.TTL),
        grantedTtlSeconds: num(j.grantedTTL),
        ...(j.keys ? { keys: (j.keys as string[]).map(b64) } : {}),
      });
    case 'leaseLeases':
      return encodeLeaseLeasesResponse(h, {
        type: 'leaseLeases', ids: ((j.leases ?? []) as J[]).map((l) => num(l.ID)),
      });
    case 'status':
      return encodeStatusResponse(h, {
        version: j.version as string, dbSizeBytes: num(j.dbSize), leader: j.leader ? 2 : 0,
        raftIndex: num(j.raftIndex), raftTerm: num(j.raftTerm),
        raftAppliedIndex: num(j.raftAppliedIndex), dbSizeInUseBytes: num(j.dbSizeInUse),
      });
  }
  throw new Error(`no encoder for ${route}`);
}

for (const f of fixtures) {
  const route = f.method === 'POST' ? v3Routes.get(f.path) : undefined;
  if (route === undefined || f.status !== 200) continue;
  test(`v3 encode: ${f.name} re-encodes to etcd's exact text`, (t) => {
    t.is(reencode(route, f.responseBody), normalize(f.responseBody));
  });
}

test('v3 encode: txn nested headers are derived, not copied (a wrong revision fails)', (t) => {
  const f = fixture('txn-put-then-range');
  const j = JSON.parse(f.responseBody) as J;
  const h = { ...headerOf(j), revision: (headerOf(j).revision + 1) as Revision };
  t.not(encodeTxnResponse(h, txnOf(j)), normalize(f.responseBody));
});

test('v3 encode: health and version bodies', (t) => {
  t.is(encodeHealth(true), fixture('health').responseBody);
  t.is(encodeVersion('3.4.23', '3.4.0'), fixture('version').responseBody);
});

test('errors: overload, timeout and no-leader map to etcd statuses and texts', (t) => {
  const o = errorResponse(new EtcdError('TOO_MANY_REQUESTS'));
  t.is(o.status, 429);
  t.is(o.body, '{"error":"etcdserver: too many requests","message":"etcdserver: too many ' +
    'requests","code":8}');
  t.is(errorResponse(new EtcdError('TIMEOUT')).status, 503);
  t.is(errorResponse(new EtcdError('TIMEOUT')).message, 'etcdserver: request timed out');
  t.is(errorResponse(new EtcdError('NO_LEADER')).status, 503);
  t.is(errorResponse(new EtcdError('NO_LEADER')).grpcCode, 14);
});

test('errors: unknown errors are 500 and leak neither message nor stack', (t) => {
  const r = errorResponse(new TypeError('secret internals at /srv/x.js:1'));
  t.is(r.status, 500);
  t.false(r.body.includes('secret'));
  t.is(r.code, 'INTERNAL');
  t.is(errorResponse('a string').status, 500);
  t.is(errorResponse(null).status, 500);
});

test('errors: map by code only, never by message text', (t) => {
  t.is(errorResponse(new ErrCompacted()).message,
    'etcdserver: mvcc: required revision has been compacted');
  // An error that crossed a thread keeps only its code and message: the code decides.
  t.is(errorResponse({ code: 'LEASE_NOT_FOUND', message: 'x' }).status, 404);
  t.is(errorResponse({ code: 'LEASE_NOT_FOUND', message: 'x' }).message,
    'etcdserver: requested lease not found');
  t.is(errorResponse({ message: 'etcdserver: mvcc: required revision is a future revision' }).code,
    'INTERNAL');
  // The runtime's own errors answer as etcd does, here and after crossing a thread.
  const full = new MailboxFullError('raft');
  for (const e of [full, new RemoteError(full.code, full.message)]) {
    t.is(errorResponse(e).status, 429);
    t.is(errorResponse(e).message, 'etcdserver: too many requests');
  }
  t.is(errorResponse(new AskTimeoutError('raft', 'Put')).message,
    'etcdserver: request timed out');
  const gone = new ActorGoneError('raft');
  t.is(errorResponse(new RemoteError(gone.code, gone.message)).message,
    'etcdserver: server is restarting');
  t.is(errorResponse(gone).status, 503);
  t.is(goJsonString('a<b>&c'), '"a\\u003cb\\u003e\\u0026c"');
});
