/**
 * record-etcd replays a fixed list of HTTP requests against a running etcd 3.4 JSON gateway
 * and writes one fixture per request to test/fixtures/etcd/<name>.json:
 * {name, method, path, requestBody, generated?, status, contentType, responseBody}.
 * responseBody is etcd's exact text. Not part of `npm test`: run it by hand against a FRESH
 * etcd (the cases depend on each other: revisions count up from 1, leases use fixed IDs).
 *
 *   D=$(mktemp -d); etcd --name rec --data-dir $D \
 *     --listen-client-urls http://127.0.0.1:23790 --advertise-client-urls http://127.0.0.1:23790 \
 *     --listen-peer-urls http://127.0.0.1:23800 \
 *     --initial-advertise-peer-urls http://127.0.0.1:23800 \
 *     --initial-cluster rec=http://127.0.0.1:23800 --initial-cluster-state new &
 *   npx tsc -p . && node dist/test/compat/record-etcd.js http://127.0.0.1:23790
 *
 * Base64 cheat sheet for the bodies: Zm9v=foo YmFy=bar YmF6=baz Zm9vMg===foo2 AA==="\0"
 * YQ===a Yg===b bm9uZQ===none MQ===1 bGs==lk dg===v eA===x.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { generateBody, type Generated } from './generators.js';

interface Case {
  name: string;
  path: string;
  method?: 'GET' | 'POST' | 'PUT';
  body?: string;
  generated?: Generated;
}

const P = (name: string, path: string, body: string): Case => ({ name, path, body });

/** cases is the replay list, in order. Names are stable: tests look fixtures up by name. */
export const cases: Case[] = [
  // ---- put / range success shapes ----
  P('put-basic', '/v3/kv/put', '{"key":"Zm9v","value":"YmFy"}'),
  P('put-prev-kv-snake', '/v3/kv/put', '{"key":"Zm9v","value":"YmF6","prev_kv":true}'),
  P('put-prev-kv-camel', '/v3/kv/put', '{"key":"Zm9v","value":"YmF6","prevKv":true}'),
  P('put-empty-value', '/v3/kv/put', '{"key":"Zm9vMg==","value":""}'),
  P('put-unknown-field', '/v3/kv/put', '{"key":"Zm9v","value":"YmF6","bogus":1}'),
  P('range-single', '/v3/kv/range', '{"key":"Zm9v"}'),
  P('range-missing', '/v3/kv/range', '{"key":"bm9uZQ=="}'),
  P('range-all', '/v3/kv/range', '{"key":"AA==","range_end":"AA=="}'),
  P('range-limit-more', '/v3/kv/range', '{"key":"AA==","range_end":"AA==","limit":1}'),
  P('range-limit-string', '/v3/kv/range', '{"key":"AA==","range_end":"AA==","limit":"1"}'),
  P('range-limit-string-space', '/v3/kv/range', '{"key":"AA==","range_end":"AA==","limit":" 1"}'),
  P('range-limit-negative', '/v3/kv/range', '{"key":"AA==","range_end":"AA==","limit":-1}'),
  P('range-count-only-camel', '/v3/kv/range', '{"key":"AA==","rangeEnd":"AA==","countOnly":true}'),
  P('range-keys-only', '/v3/kv/range', '{"key":"AA==","range_end":"AA==","keys_only":true}'),
  P('range-sort-names', '/v3/kv/range',
    '{"key":"AA==","range_end":"AA==","sort_order":"DESCEND","sort_target":"KEY"}'),
  P('range-sort-numbers', '/v3/kv/range',
    '{"key":"AA==","range_end":"AA==","sort_order":2,"sort_target":0}'),
  P('range-sort-out-of-enum', '/v3/kv/range', '{"key":"AA==","range_end":"AA==","sort_order":7}'),
  P('range-null-fields', '/v3/kv/range',
    '{"key":"Zm9v","limit":null,"keys_only":null,"sort_order":null,"limit":"null"}'),
  P('range-revision-filters', '/v3/kv/range',
    '{"key":"Zm9v","min_mod_revision":"3","maxCreateRevision":100,"serializable":true}'),
  P('range-trailing-garbage', '/v3/kv/range', '{"key":"Zm9v"} garbage'),
  P('range-two-values', '/v3/kv/range', '{"key":"Zm9v"}{"key":"Zm9vMg=="}'),
  P('range-duplicate-json-key', '/v3/kv/range', '{"key":"Zm9v","key":"Zm9vMg=="}'),
  P('range-key-byte-array', '/v3/kv/range', '{"key":[102,111,111]}'),
  P('range-base64-newline', '/v3/kv/range', '{"key":"Zm9v\\nYmFy"}'),
  P('range-range-end-empty', '/v3/kv/range', '{"key":"Zm9v","range_end":""}'),
  P('range-revision-negative', '/v3/kv/range', '{"key":"Zm9v","revision":-1}'),
  P('range-int-minus-zero', '/v3/kv/range', '{"key":"Zm9v","limit":-0}'),
  // ---- request shape errors ----
  P('err-put-missing-key', '/v3/kv/put', '{"value":"YmFy"}'),
  P('err-put-empty-key', '/v3/kv/put', '{"key":"","value":"YmFy"}'),
  P('err-put-empty-body', '/v3/kv/put', ''),
  P('err-put-whitespace-body', '/v3/kv/put', '  \n'),
  P('err-put-null-body', '/v3/kv/put', 'null'),
  P('err-range-missing-key', '/v3/kv/range', '{}'),
  P('err-range-null-key', '/v3/kv/range', '{"key":null}'),
  P('err-delete-missing-key', '/v3/kv/deleterange', '{}'),
  P('err-json-truncated', '/v3/kv/put', '{"key":"Zm9v",'),
  P('err-json-bad-literal', '/v3/kv/put', 'notjson'),
  P('err-json-array-body', '/v3/kv/put', '[]'),
  P('err-json-trailing-comma', '/v3/kv/range', '{"key":"Zm9v",}'),
  P('err-json-unquoted-key', '/v3/kv/range', '{key:1}'),
  P('err-json-missing-comma', '/v3/kv/range', '{"key":"Zm9v" "a"}'),
  P('err-json-bad-escape', '/v3/kv/range', '{"key":"\\q"}'),
  P('err-json-leading-zero', '/v3/kv/range', '{"key":"Zm9v","limit":01}'),
  P('err-base64-bang', '/v3/kv/put', '{"key":"!!!"}'),
  P('err-base64-short', '/v3/kv/put', '{"key":"Zm9"}'),
  P('err-base64-urlsafe', '/v3/kv/range', '{"key":"-_8="}'),
  P('err-base64-mid', '/v3/kv/range', '{"key":"Zm9vYm!y"}'),
  P('err-base64-tail', '/v3/kv/range', '{"key":"Zm9vYmFy!"}'),
  P('err-base64-unpadded', '/v3/kv/range', '{"key":"Zm9vYg"}'),
  P('err-base64-half-pad', '/v3/kv/range', '{"key":"Zm9vYg="}'),
  P('err-base64-extra-pad', '/v3/kv/range', '{"key":"Zm9vYmFy===="}'),
  P('err-base64-pad-inside', '/v3/kv/range', '{"key":"Zm9=v"}'),
  P('err-bytes-number', '/v3/kv/range', '{"key":123}'),
  P('err-bytes-object', '/v3/kv/range', '{"key":{}}'),
  P('err-bytes-bool', '/v3/kv/range', '{"key":true}'),
  P('err-bool-string', '/v3/kv/put', '{"key":"Zm9v","prev_kv":"true"}'),
  P('err-bool-number', '/v3/kv/put', '{"key":"Zm9v","prev_kv":1}'),
  P('err-bool-object', '/v3/kv/range', '{"key":"Zm9v","keys_only":{}}'),
  P('err-int64-bad-string', '/v3/kv/put', '{"key":"Zm9v","lease":"abc"}'),
  P('err-int64-empty-string', '/v3/kv/range', '{"key":"Zm9v","limit":""}'),
  P('err-int64-fraction', '/v3/kv/put', '{"key":"Zm9v","lease":1.5}'),
  P('err-int64-exponent', '/v3/kv/range', '{"key":"Zm9v","limit":1e2}'),
  P('err-int64-exponent-string', '/v3/kv/range', '{"key":"Zm9v","limit":"1e2"}'),
  P('err-int64-float-zero', '/v3/kv/range', '{"key":"Zm9v","limit":1.0}'),
  P('err-int64-overflow', '/v3/kv/range', '{"key":"Zm9v","limit":9223372036854775808}'),
  P('err-int64-bool', '/v3/kv/range', '{"key":"Zm9v","limit":true}'),
  P('err-int64-bool-string', '/v3/kv/range', '{"key":"Zm9v","limit":"true"}'),
  P('err-int64-object', '/v3/kv/range', '{"key":"Zm9v","limit":{}}'),
  P('err-int64-array', '/v3/kv/range', '{"key":"Zm9v","limit":[]}'),
  P('err-enum-lowercase', '/v3/kv/range', '{"key":"Zm9v","sortOrder":"descend"}'),
  P('err-enum-unknown-name', '/v3/kv/range', '{"key":"Zm9v","sort_order":"BOGUS"}'),
  P('err-enum-number-string', '/v3/kv/range', '{"key":"Zm9v","sort_order":"1"}'),
  P('err-enum-overflow', '/v3/kv/range', '{"key":"Zm9v","sort_order":2147483648}'),
  P('err-enum-fraction', '/v3/kv/range', '{"key":"Zm9v","sort_order":1.5}'),
  P('err-enum-bool', '/v3/kv/range', '{"key":"Zm9v","sort_order":true}'),
  P('err-field-order', '/v3/kv/range', '{"limit":true,"key":"!!!"}'),
  // ---- put semantics ----
  P('err-put-lease-not-found', '/v3/kv/put', '{"key":"Zm9v","lease":12345}'),
  P('err-put-lease-not-found-string', '/v3/kv/put', '{"key":"Zm9v","lease":"12345"}'),
  P('put-ignore-value', '/v3/kv/put', '{"key":"Zm9v","ignore_value":true}'),
  P('err-put-ignore-value-missing-key', '/v3/kv/put', '{"key":"bWlzc2luZw==","ignore_value":true}'),
  P('err-put-ignore-lease-missing-key', '/v3/kv/put', '{"key":"bWlzc2luZw==","ignore_lease":true}'),
  P('err-put-value-provided', '/v3/kv/put', '{"key":"Zm9v","value":"YmFy","ignore_value":true}'),
  P('err-put-lease-provided', '/v3/kv/put', '{"key":"Zm9v","lease":1234,"ignore_lease":true}'),
  // ---- txn ----
  P('txn-empty', '/v3/kv/txn', '{}'),
  P('txn-mixed', '/v3/kv/txn',
    '{"compare":[{"key":"Zm9v","target":"VERSION","result":"GREATER","version":"0"}],' +
      '"success":[{"request_range":{"key":"Zm9v"}},' +
      '{"request_put":{"key":"YmFy","value":"MQ==","prev_kv":true}},' +
      '{"request_delete_range":{"key":"Zm9vMg==","prev_kv":true}}],"failure":[]}'),
  P('txn-failure-nested', '/v3/kv/txn',
    '{"compare":[{"key":"Zm9v","target":"VALUE","result":"EQUAL","value":"bm9wZQ=="}],' +
      '"success":[],"failure":[{"requestRange":{"key":"Zm9v","countOnly":true}},' +
      '{"requestTxn":{"success":[{"request_put":{"key":"YmF6"}}]}}]}'),
  P('txn-delete-nothing', '/v3/kv/txn',
    '{"compare":[{"key":"Zm9v","target":"MOD","result":"LESS","mod_revision":1000}],' +
      '"success":[{"request_delete_range":{"key":"bm9uZQ=="}}]}'),
  P('txn-compare-only', '/v3/kv/txn',
    '{"compare":[{"key":"Zm9v","target":"CREATE","result":"NOT_EQUAL","create_revision":1}]}'),
  P('txn-compare-lease', '/v3/kv/txn',
    '{"compare":[{"key":"Zm9v","target":"LEASE","result":"EQUAL","lease":0}]}'),
  P('txn-compare-enum-numbers', '/v3/kv/txn',
    '{"compare":[{"key":"Zm9v","target":1,"result":0,"create_revision":2}]}'),
  P('txn-compare-wrong-union', '/v3/kv/txn',
    '{"compare":[{"key":"Zm9v","target":"VERSION","result":"EQUAL","value":"eA=="}]}'),
  P('txn-compare-default-target', '/v3/kv/txn',
    '{"compare":[{"key":"YQ==","result":"EQUAL"}],"success":[{"request_put":{"key":"YQ=="}}]}'),
  P('txn-put-then-range', '/v3/kv/txn',
    '{"success":[{"request_put":{"key":"YQ=="}},{"request_range":{"key":"YQ=="}},' +
      '{"request_range":{"key":"bm8="}},{"request_delete_range":{"key":"bm8="}}]}'),
  P('txn-read-only-nested', '/v3/kv/txn',
    '{"success":[{"request_range":{"key":"YQ=="}},{"request_delete_range":{"key":"bm8="}},' +
      '{"request_txn":{"success":[{"request_range":{"key":"YQ=="}}]}}]}'),
  P('txn-same-key-both-branches', '/v3/kv/txn',
    '{"success":[{"request_put":{"key":"YQ=="}}],"failure":[{"request_put":{"key":"YQ=="}}]}'),
  P('err-txn-compare-missing-key', '/v3/kv/txn',
    '{"compare":[{"target":"VERSION","result":"EQUAL"}]}'),
  P('err-txn-compare-bad-target', '/v3/kv/txn', '{"compare":[{"key":"Zm9v","target":"BOGUS"}]}'),
  P('err-txn-empty-op', '/v3/kv/txn', '{"success":[{}]}'),
  P('err-txn-put-missing-key', '/v3/kv/txn', '{"success":[{"request_put":{}}]}'),
  P('err-txn-duplicate-put', '/v3/kv/txn',
    '{"success":[{"request_put":{"key":"YQ=="}},{"request_put":{"key":"YQ=="}}]}'),
  P('err-txn-duplicate-put-delete', '/v3/kv/txn',
    '{"success":[{"request_put":{"key":"YQ=="}},{"request_delete_range":{"key":"YQ=="}}]}'),
  P('err-txn-duplicate-nested', '/v3/kv/txn',
    '{"success":[{"request_txn":{"success":[{"request_put":{"key":"YQ=="}}]}},' +
      '{"request_txn":{"failure":[{"request_put":{"key":"YQ=="}}]}}]}'),
  P('err-txn-put-lease-not-found', '/v3/kv/txn',
    '{"success":[{"request_put":{"key":"YQ==","lease":777}}]}'),
  P('err-txn-value-provided', '/v3/kv/txn',
    '{"success":[{"request_put":{"key":"Yg==","value":"eA==","ignore_value":true}}]}'),
  P('err-txn-ignore-value-missing-key', '/v3/kv/txn',
    '{"success":[{"request_put":{"key":"bm9uZXhpc3Q=","ignore_value":true}}]}'),
  P('err-txn-success-object', '/v3/kv/txn', '{"success":{}}'),
  P('err-txn-op-number', '/v3/kv/txn', '{"success":[1]}'),
  { name: 'err-txn-too-many-ops', path: '/v3/kv/txn',
    generated: { kind: 'txnOps', branch: 'success', op: 'put', count: 129 } },
  { name: 'err-txn-too-many-ranges-failure', path: '/v3/kv/txn',
    generated: { kind: 'txnOps', branch: 'failure', op: 'range', count: 129 } },
  { name: 'txn-max-ops', path: '/v3/kv/txn',
    generated: { kind: 'txnOps', branch: 'success', op: 'put', count: 128 } },
  // ---- delete ----
  P('delete-one', '/v3/kv/deleterange', '{"key":"YQ=="}'),
  P('delete-none', '/v3/kv/deleterange', '{"key":"YQ=="}'),
  P('delete-prev-kv', '/v3/kv/deleterange', '{"key":"YmF6","prev_kv":true}'),
  P('delete-range-prefix', '/v3/kv/deleterange', '{"key":"aw==","range_end":"bA=="}'),
  // ---- request size ----
  { name: 'put-largest', path: '/v3/kv/put',
    generated: { kind: 'putValueBytes', key: 'big', valueBytes: 1572837 } },
  { name: 'err-put-too-large', path: '/v3/kv/put',
    generated: { kind: 'putValueBytes', key: 'big', valueBytes: 1572838 } },
  { name: 'err-put-grpc-max', path: '/v3/kv/put',
    generated: { kind: 'putValueBytes', key: 'foo', valueBytes: 2 * 1024 * 1024 } },
  // ---- compaction ----
  P('compaction-ok', '/v3/kv/compaction', '{"revision":3}'),
  P('err-compaction-again', '/v3/kv/compaction', '{"revision":3}'),
  P('err-compaction-older', '/v3/kv/compaction', '{"revision":2}'),
  P('err-compaction-future', '/v3/kv/compaction', '{"revision":100000}'),
  P('err-compaction-zero', '/v3/kv/compaction', '{}'),
  P('compaction-physical', '/v3/kv/compaction', '{"revision":4,"physical":true}'),
  P('err-range-compacted', '/v3/kv/range', '{"key":"Zm9v","revision":2}'),
  P('err-range-future', '/v3/kv/range', '{"key":"Zm9v","revision":100000}'),
  P('range-at-revision', '/v3/kv/range', '{"key":"Zm9v","revision":5}'),
  P('err-txn-range-compacted', '/v3/kv/txn',
    '{"success":[{"request_range":{"key":"Zm9v","revision":2}}]}'),
  // ---- lease ----
  P('lease-grant', '/v3/lease/grant', '{"TTL":60,"ID":1234}'),
  P('err-lease-grant-exists', '/v3/lease/grant', '{"TTL":60,"ID":1234}'),
  P('lease-grant-min-ttl', '/v3/lease/grant', '{"TTL":1,"ID":1235}'),
  P('lease-grant-negative-id', '/v3/lease/grant', '{"TTL":"60","ID":-3}'),
  P('lease-grant-lowercase-ignored', '/v3/lease/grant', '{"ttl":60,"id":"5678","ID":1236}'),
  P('err-lease-grant-ttl-too-large', '/v3/lease/grant', '{"TTL":9000000001,"ID":1237}'),
  P('put-with-lease', '/v3/kv/put', '{"key":"bGs=","value":"dg==","lease":1234}'),
  P('lease-timetolive', '/v3/lease/timetolive', '{"ID":1234}'),
  P('lease-timetolive-keys', '/v3/lease/timetolive', '{"ID":1234,"keys":true}'),
  P('lease-timetolive-alias-no-keys', '/v3/kv/lease/timetolive', '{"ID":1235,"keys":true}'),
  P('lease-timetolive-missing', '/v3/lease/timetolive', '{"ID":999}'),
  P('lease-timetolive-empty', '/v3/lease/timetolive', '{}'),
  P('lease-keepalive', '/v3/lease/keepalive', '{"ID":1234}'),
  P('lease-keepalive-missing', '/v3/lease/keepalive', '{"ID":999}'),
  P('lease-keepalive-empty', '/v3/lease/keepalive', '{}'),
  P('lease-keepalive-two', '/v3/lease/keepalive', '{"ID":1234}{"ID":999}'),
  P('err-lease-keepalive-bad-json', '/v3/lease/keepalive', '{"ID":"x"}'),
  P('err-lease-keepalive-truncated', '/v3/lease/keepalive', '{"ID":'),
  P('lease-revoke', '/v3/lease/revoke', '{"ID":-3}'),
  P('lease-revoke-alias', '/v3/kv/lease/revoke', '{"ID":1236}'),
  P('err-lease-revoke-missing', '/v3/lease/revoke', '{"ID":999}'),
  P('err-lease-revoke-alias-missing', '/v3/kv/lease/revoke', '{"ID":999}'),
  P('err-lease-revoke-empty', '/v3/lease/revoke', '{}'),
  P('lease-leases', '/v3/lease/leases', '{}'),
  P('lease-leases-alias', '/v3/kv/lease/leases', '{}'),
  P('err-lease-grant-alias-absent', '/v3/kv/lease/grant', '{"TTL":30}'),
  P('err-lease-keepalive-alias-absent', '/v3/kv/lease/keepalive', '{"ID":1234}'),
  // ---- maintenance, misc ----
  P('status', '/v3/maintenance/status', '{}'),
  P('err-unknown-path', '/v3/kv/bogus', '{}'),
  { name: 'err-range-get-method', path: '/v3/kv/range', method: 'GET' },
  { name: 'health', path: '/health', method: 'GET' },
  { name: 'version', path: '/version', method: 'GET' },
];

async function main(): Promise<void> {
  const base = process.argv[2] ?? 'http://127.0.0.1:23790';
  const dir = new URL('../../../test/fixtures/etcd/', import.meta.url);
  mkdirSync(dir, { recursive: true });
  for (const c of cases) {
    const method = c.method ?? 'POST';
    const body = c.generated ? generateBody(c.generated) : c.body;
    const res = await fetch(base + c.path, method === 'GET' ? { method } : { method, body });
    const responseBody = await res.text();
    const fixture = {
      name: c.name,
      method,
      path: c.path,
      requestBody: c.generated ? null : (c.body ?? null),
      ...(c.generated ? { generated: c.generated } : {}),
      status: res.status,
      contentType: res.headers.get('content-type'),
      responseBody,
    };
    writeFileSync(new URL(`${c.name}.json`, dir), JSON.stringify(fixture, null, 2) + '\n');
    console.log(res.status, c.name, responseBody.slice(0, 160));
  }
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop() ?? '')) {
  await main();
}
