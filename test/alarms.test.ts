import test from 'ava';
import {
  AlarmStore, type DiskFaultKind, diskFaultCode, diskFaultKind, diskFaultOfCode, isCappedRequest,
} from '../src/alarms.js';
import { decodeAlarmRequest, encodeAlarmResponse } from '../src/api/alarm.js';
import { parseJsonBody } from '../src/api/gojson.js';
import type { Revision } from '../src/types.js';

test('alarms: the store keeps one alarm per member and type, and reports only changes', (t) => {
  const s = new AlarmStore();
  t.deepEqual(s.activate(1, 'NOSPACE'), { memberId: 1, alarm: 'NOSPACE' });
  t.is(s.activate(1, 'NOSPACE'), undefined, 'already active');
  t.is(s.activate(1, 'NONE'), undefined, 'NONE is no alarm');
  s.activate(2, 'NOSPACE');
  s.activate(2, 'CORRUPT');
  t.deepEqual(s.get().map((a) => `${a.memberId}:${a.alarm}`),
    ['1:NOSPACE', '2:NOSPACE', '2:CORRUPT']);
  t.deepEqual(s.get('CORRUPT'), [{ memberId: 2, alarm: 'CORRUPT' }]);
  t.deepEqual(s.deactivate(1, 'NOSPACE'), { memberId: 1, alarm: 'NOSPACE' });
  t.is(s.deactivate(1, 'NOSPACE'), undefined);
  t.true(s.has('NOSPACE'), 'member 2 still has it');
  s.deactivate(2, 'NOSPACE');
  t.false(s.has('NOSPACE'));
});

test('alarms: a store rebuilt from its list (a snapshot\'s) holds the same alarms; an older ' +
  'snapshot without the list holds none', (t) => {
  const s = new AlarmStore();
  s.activate(7, 'NOSPACE');
  s.activate(3, 'CORRUPT');
  const back = AlarmStore.fromJson(s.get());
  t.deepEqual(back.get(), s.get());
  t.true(back.has('NOSPACE'));
  t.deepEqual(AlarmStore.fromJson(undefined).get(), []);
});

test('alarms: NOSPACE caps puts, txns holding a put (nested too) and lease grants', (t) => {
  const put = { type: 'put' };
  const del = { type: 'deleteRange' };
  const txn = (success: object[], failure: object[] = []) => ({ type: 'txn', success, failure });
  t.true(isCappedRequest(put));
  t.true(isCappedRequest({ type: 'leaseGrant' }));
  t.true(isCappedRequest(txn([del], [put])));
  t.true(isCappedRequest(txn([txn([], [txn([put])])])));
  t.false(isCappedRequest(txn([del, { type: 'range' }])));
  for (const type of ['deleteRange', 'compaction', 'leaseRevoke', 'leaseCheckpoint']) {
    t.false(isCappedRequest({ type }), type);
  }
});

test('alarms: a failed write is classified by its errno; a failed fsync is always io', (t) => {
  const cases: [string | undefined, 'write' | 'fsync', DiskFaultKind][] = [
    ['ENOSPC', 'write', 'space'], ['EDQUOT', 'write', 'space'], ['EFBIG', 'write', 'space'],
    ['EROFS', 'write', 'readOnly'], ['EACCES', 'write', 'readOnly'],
    ['EPERM', 'write', 'readOnly'],
    ['EIO', 'write', 'io'], [undefined, 'write', 'io'], ['ENOSPC', 'fsync', 'io'],
  ];
  for (const [code, call, kind] of cases) t.is(diskFaultKind(code, call), kind, `${code} ${call}`);
  for (const kind of ['space', 'readOnly', 'io'] as const) {
    t.is(diskFaultOfCode(diskFaultCode(kind)), kind);
  }
  t.is(diskFaultOfCode('TIMEOUT'), undefined);
});

test('alarm API codec: enums by name or number, memberID as string or number', (t) => {
  t.deepEqual(decodeAlarmRequest(parseJsonBody('{}')),
    { action: 'GET', memberId: 0, alarm: 'NONE' });
  t.deepEqual(decodeAlarmRequest(parseJsonBody(
    '{"action":"DEACTIVATE","memberID":"6673844312095655","alarm":"NOSPACE"}')),
  { action: 'DEACTIVATE', memberId: 6673844312095655, alarm: 'NOSPACE' });
  t.deepEqual(decodeAlarmRequest(parseJsonBody('{"action":1,"memberID":7,"alarm":2}')),
    { action: 'ACTIVATE', memberId: 7, alarm: 'CORRUPT' });
  for (const bad of ['{"action":"NUKE"}', '{"alarm":9}', '{"memberID":"x"}', '[]',
    '{"memberID":"18446744073709551616"}']) {
    const e = t.throws(() => decodeAlarmRequest(parseJsonBody(bad)), undefined, bad);
    t.true(['INVALID_FIELD', 'BAD_REQUEST'].includes((e as unknown as { code: string }).code),
      bad);
  }
  const h = { clusterId: 1, memberId: 2, revision: 3 as Revision, raftTerm: 4 };
  t.is(encodeAlarmResponse(h, []),
    '{"header":{"cluster_id":"1","member_id":"2","revision":"3","raft_term":"4"}}');
  t.is(encodeAlarmResponse(h, [{ memberId: 2, alarm: 'NOSPACE' }]),
    '{"header":{"cluster_id":"1","member_id":"2","revision":"3","raft_term":"4"},' +
    '"alarms":[{"memberID":"2","alarm":"NOSPACE"}]}');
});
