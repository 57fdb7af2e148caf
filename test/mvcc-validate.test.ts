import test from 'ava';
import { txnOpsMax } from '../src/constants.js';
import {
  validateRangeRequest,
  validateWriteRequest,
  type RequestOp,
  type TxnRequest,
  type WriteRequest,
} from '../src/mvcc/index.js';

const put = (key: string, extra: object = {}): RequestOp => ({ type: 'put', key, value: 'v',
  ...extra }) as RequestOp;
const del = (key: string, rangeEnd?: string): RequestOp =>
  rangeEnd === undefined ? { type: 'deleteRange', key } : { type: 'deleteRange', key, rangeEnd };
const txn = (success: RequestOp[], failure: RequestOp[] = [], compare = 0): TxnRequest => ({
  type: 'txn',
  compare: Array.from({ length: compare }, () => ({
    key: 'c', target: 'VERSION', result: 'EQUAL', version: 0,
  })),
  success,
  failure,
});
const many = (n: number, f: (i: number) => RequestOp) => Array.from({ length: n }, (_, i) => f(i));

interface Case {
  name: string;
  req: WriteRequest;
  /** error message expected, or undefined when the request is valid */
  err?: string;
}

const dup = 'etcdserver: duplicate key given in txn request';
const cases: Case[] = [
  { name: 'a plain put is valid', req: put('k') as WriteRequest },
  { name: 'an empty key is refused', req: put('') as WriteRequest,
    err: 'etcdserver: key is not provided' },
  { name: 'an empty delete key is refused', req: del('') as WriteRequest,
    err: 'etcdserver: key is not provided' },
  { name: 'ignore_value with a value is refused',
    req: put('k', { ignoreValue: true }) as WriteRequest, err: 'etcdserver: value is provided' },
  { name: 'ignore_lease with a lease is refused',
    req: put('k', { ignoreLease: true, lease: 5 }) as WriteRequest,
    err: 'etcdserver: lease is provided' },
  { name: 'a txn of maxTxnOps puts is valid', req: txn(many(txnOpsMax, (i) => put(`k${i}`))) },
  { name: 'a txn of maxTxnOps+1 puts is refused',
    req: txn(many(txnOpsMax + 1, (i) => put(`k${i}`))),
    err: 'etcdserver: too many operations in txn request' },
  { name: 'too many compares are refused', req: txn([], [], txnOpsMax + 1),
    err: 'etcdserver: too many operations in txn request' },
  { name: 'a nested txn gets what its parent leaves',
    req: txn([txn(many(txnOpsMax, (i) => put(`k${i}`)))]),
    err: 'etcdserver: too many operations in txn request' },
  { name: 'a compare with an empty key is refused',
    req: { type: 'txn', compare: [{ key: '', target: 'VALUE', result: 'EQUAL' }], success: [],
      failure: [] }, err: 'etcdserver: key is not provided' },
  { name: 'a key put twice in a txn is refused', req: txn([put('a'), put('a')]), err: dup },
  { name: 'a put inside a deleted range is refused', req: txn([del('a', 'c'), put('b')]),
    err: dup },
  { name: 'a put of a deleted key is refused', req: txn([put('b'), del('b')]), err: dup },
  { name: 'a put just outside a deleted range is fine', req: txn([del('a', 'c'), put('c')]) },
  { name: 'overlapping deletes are fine', req: txn([del('a', 'c'), del('b', 'd')]) },
  { name: 'a put after a from-key delete passes (etcd quirk)',
    req: txn([del('a', '\0'), put('b')]) },
  { name: 'the same key in both branches of a nested txn is fine',
    req: txn([txn([put('a')], [put('a')])]) },
  { name: 'a nested put of a key the parent puts is refused',
    req: txn([put('a'), txn([put('a')])]), err: dup },
  { name: 'a nested put inside a parent delete is refused',
    req: txn([del('a', 'c'), txn([], [put('b')])]), err: dup },
  { name: 'a parent put inside a nested delete is refused',
    req: txn([put('b'), txn([del('a', 'c')])]), err: dup },
  { name: 'the same key put in success and failure is fine', req: txn([put('a')], [put('a')]) },
  { name: 'an empty op is refused as etcd does ("key not found")',
    req: txn([{} as RequestOp]), err: 'etcdserver: key not found' },
  { name: 'an unknown compare target is refused',
    req: { type: 'txn', compare: [{ key: 'a', target: 'NOPE', result: 'EQUAL' }] as never,
      success: [], failure: [] }, err: 'etcdserver: invalid argument: compare target NOPE' },
  { name: 'a compaction needs a safe integer revision',
    req: { type: 'compaction', revision: 1.5 },
    err: 'etcdserver: invalid argument: revision is not a safe integer' },
];

for (const c of cases) {
  test(`mvcc: validate: ${c.name}`, (t) => {
    if (c.err === undefined) t.notThrows(() => validateWriteRequest(c.req));
    else t.throws(() => validateWriteRequest(c.req), { message: c.err });
  });
}

test('mvcc: validate: range sort options must be known', (t) => {
  t.notThrows(() => validateRangeRequest({ type: 'range', key: 'a', sortOrder: 'DESCEND',
    sortTarget: 'MOD' }));
  t.throws(() => validateRangeRequest({ type: 'range', key: 'a', sortOrder: 'UP' as never }), {
    code: 'BAD_REQUEST',
  } as never);
  t.throws(() => validateRangeRequest({ type: 'range', key: '' }), {
    message: 'etcdserver: key is not provided',
  });
});
