import test from 'ava';
import { accessesOf, checkRequest, rangePermitted } from '../src/auth/perms.js';
import { type AuthOp, AuthStore, type Permission } from '../src/auth/store.js';
import { decodeAuthRequest, encodeAuthResponse } from '../src/api/auth.js';
import { EtcdError } from '../src/errors.js';
import type { TxnRequest } from '../src/mvcc/types.js';
import type { Revision } from '../src/types.js';

const anon = { user: '', rev: 0 };

/** run applies ops as `by` and returns the error code of the last one (or 'OK'). */
function apply(s: AuthStore, op: AuthOp, by = anon): string {
  try {
    s.apply({ type: 'auth', by, ...op });
    return 'OK';
  } catch (e) {
    return e instanceof EtcdError ? e.code : String(e);
  }
}

/** enabled builds a store with root, a role r with `perms`, user u holding r, auth on. */
function enabled(perms: Permission[]): AuthStore {
  const s = new AuthStore();
  apply(s, { op: 'userAdd', name: 'root', hash: 'h' });
  apply(s, { op: 'userGrantRole', user: 'root', role: 'root' });
  apply(s, { op: 'roleAdd', name: 'r' });
  for (const perm of perms) apply(s, { op: 'roleGrantPermission', name: 'r', perm });
  apply(s, { op: 'userAdd', name: 'u', hash: 'h' });
  apply(s, { op: 'userGrantRole', user: 'u', role: 'r' });
  if (apply(s, { op: 'enable' }) !== 'OK') throw new Error('enable failed');
  return s;
}

test('auth store: enable needs a root user holding the root role, as etcd 3.4', (t) => {
  const s = new AuthStore();
  t.is(apply(s, { op: 'enable' }), 'ROOT_USER_NOT_EXIST');
  t.is(apply(s, { op: 'userAdd', name: 'root', hash: 'h' }), 'OK');
  t.is(apply(s, { op: 'enable' }), 'ROOT_ROLE_NOT_EXIST');
  // The root role need not exist as a role to be granted.
  t.is(apply(s, { op: 'userGrantRole', user: 'root', role: 'root' }), 'OK');
  t.is(apply(s, { op: 'enable' }), 'OK');
  t.true(s.enabled);
  // Enabled: admin operations need the root user; none at all is "user name is empty".
  t.is(apply(s, { op: 'roleAdd', name: 'x' }), 'USER_EMPTY');
  t.is(apply(s, { op: 'roleAdd', name: 'x' }, { user: 'root', rev: s.revision }), 'OK');
  t.is(apply(s, { op: 'userDelete', name: 'root' }, { user: 'root', rev: 1 }),
    'INVALID_AUTH_MGMT');
  t.is(apply(s, { op: 'userRevokeRole', name: 'root', role: 'root' }, { user: 'root', rev: 1 }),
    'INVALID_AUTH_MGMT');
});

test('auth store: errors of the user and role operations are etcd\'s', (t) => {
  const s = new AuthStore();
  t.is(apply(s, { op: 'userAdd', name: '' }), 'USER_EMPTY');
  t.is(apply(s, { op: 'userAdd', name: 'a', hash: 'h' }), 'OK');
  t.is(apply(s, { op: 'userAdd', name: 'a', hash: 'h' }), 'USER_ALREADY_EXIST');
  t.is(apply(s, { op: 'userGrantRole', user: 'a', role: 'nope' }), 'ROLE_NOT_FOUND');
  t.is(apply(s, { op: 'userGrantRole', user: 'nope', role: 'root' }), 'USER_NOT_FOUND');
  t.is(apply(s, { op: 'userRevokeRole', name: 'a', role: 'r' }), 'ROLE_NOT_GRANTED');
  t.is(apply(s, { op: 'roleAdd', name: '' }), 'ROLE_EMPTY');
  t.is(apply(s, { op: 'roleAdd', name: 'r' }), 'OK');
  t.is(apply(s, { op: 'roleAdd', name: 'r' }), 'ROLE_ALREADY_EXIST');
  t.is(apply(s, { op: 'roleRevokePermission', role: 'r', key: 'k' }), 'PERMISSION_NOT_GRANTED');
  t.is(apply(s, { op: 'roleDelete', role: 'zz' }), 'ROLE_NOT_FOUND');
  t.is(apply(s, { op: 'userDelete', name: 'zz' }), 'USER_NOT_FOUND');
  t.is(apply(s, { op: 'userChangePassword', name: 'zz', hash: 'h' }), 'USER_NOT_FOUND');
  // Deleting a role takes it from its users.
  apply(s, { op: 'userGrantRole', user: 'a', role: 'r' });
  t.deepEqual(s.user('a')!.roles, ['r']);
  apply(s, { op: 'roleDelete', role: 'r' });
  t.deepEqual(s.user('a')!.roles, []);
});

test('auth store: every change bumps the revision; reads and no-ops do not', (t) => {
  const s = new AuthStore();
  apply(s, { op: 'userAdd', name: 'a', hash: 'h' });
  apply(s, { op: 'roleAdd', name: 'r' });
  t.is(s.revision, 2);
  apply(s, { op: 'userList' });
  apply(s, { op: 'userGet', name: 'a' });
  apply(s, { op: 'userGrantRole', user: 'a', role: 'r' });
  apply(s, { op: 'userGrantRole', user: 'a', role: 'r' }); // already granted: no change
  t.is(s.revision, 3);
});

test('auth store: permissions are kept sorted by key, an equal grant updates its type', (t) => {
  const s = new AuthStore();
  apply(s, { op: 'roleAdd', name: 'r' });
  const grant = (permType: Permission['permType'], key: string, rangeEnd?: string) =>
    apply(s, { op: 'roleGrantPermission', name: 'r',
      perm: { permType, key, ...(rangeEnd ? { rangeEnd } : {}) } });
  grant('READ', '/b/', '/c/');
  grant('WRITE', '/a/');
  grant('READWRITE', '/b/', '/c/');
  const r = s.apply({ type: 'auth', by: anon, op: 'roleGet', role: 'r' });
  t.deepEqual(r.perms, [
    { permType: 'WRITE', key: '/a/' }, { permType: 'READWRITE', key: '/b/', rangeEnd: '/c/' },
  ]);
});

test('auth store: toJson and fromJson round-trip (snapshots, the gateway replica)', (t) => {
  const s = enabled([{ permType: 'READ', key: '/a/', rangeEnd: '/a0' }]);
  const copy = AuthStore.fromJson(JSON.parse(JSON.stringify(s.toJson())));
  t.deepEqual(copy.toJson(), s.toJson());
  t.true(copy.enabled);
  t.deepEqual(copy.permissions('u'), [{ permType: 'READ', key: '/a/', rangeEnd: '/a0' }]);
  t.false(AuthStore.fromJson(undefined).enabled);
});

test('perms: a range is allowed when the union of grants covers it', (t) => {
  const perms: Permission[] = [
    { permType: 'READ', key: '/a', rangeEnd: '/b' },
    { permType: 'READWRITE', key: '/b', rangeEnd: '/c' },
    { permType: 'WRITE', key: 'k' },
    { permType: 'READ', key: 'z', rangeEnd: '\0' },
  ];
  const cases: [string, 'read' | 'write', string, string | undefined, boolean][] = [
    ['a key inside a READ range', 'read', '/a/x', undefined, true],
    ['write into a READ range', 'write', '/a/x', undefined, false],
    ['two adjacent grants cover a longer range', 'read', '/a', '/c', true],
    ['a range reaching past the grants', 'read', '/a', '/d', false],
    ['a range starting before the grants', 'read', '/', '/b', false],
    ['a single WRITE key', 'write', 'k', undefined, true],
    ['read of a WRITE-only key', 'read', 'k', undefined, false],
    ['a key one byte past a single key', 'write', 'k\0', undefined, false],
    ['an open-ended READ grant covers an open-ended read', 'read', 'zz', '\0', true],
    ['an open-ended read past a bounded grant', 'read', '/b', '\0', false],
  ];
  for (const [name, need, key, end, want] of cases) {
    t.is(rangePermitted(perms, need, key, end), want, name);
  }
});

test('perms: coverage agrees with a naive twin on random grants and ranges', (t) => {
  // Keys over a 3-letter alphabet of length ≤ 2; "covered" checked key by key on that space.
  const alphabet = ['a', 'b', 'c'];
  const space: string[] = [''];
  for (const x of alphabet) {
    space.push(x);
    for (const y of alphabet) space.push(x + y);
  }
  space.sort();
  let seed = 12345;
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  const pick = () => space[rnd(space.length)]!;
  const inPerm = (p: Permission, k: string) => p.rangeEnd === undefined ? k === p.key
    : k >= p.key && (p.rangeEnd === '\0' || k < p.rangeEnd);
  for (let round = 0; round < 2000; round++) {
    const perms: Permission[] = [];
    for (let i = rnd(4); i > 0; i--) {
      const key = pick();
      const kind = rnd(3);
      perms.push({ permType: 'READ', key,
        ...(kind === 0 ? {} : { rangeEnd: kind === 1 ? '\0' : key + alphabet[rnd(3)] }) });
    }
    const key = pick();
    const kind = rnd(3);
    const end = kind === 0 ? undefined : kind === 1 ? '\0' : pick();
    // Naive: every key of the (finite) space inside the request is inside some grant. The
    // space is closed under "next key" for keys of length < 2 only, so requests that reach
    // keys outside it (open-ended, or past 'cc') are compared only when both agree on them.
    const want = space.filter((k) => end === undefined ? k === key
      : end <= key && end !== '\0' ? k === key : k >= key && (end === '\0' || k < end));
    const naive = want.every((k) => perms.some((p) => inPerm(p, k)));
    const got = rangePermitted(perms, 'read', key, end);
    if (got) t.true(naive, `covered but a key is not: ${JSON.stringify({ perms, key, end })}`);
    else if (end === undefined) t.false(naive, `${JSON.stringify({ perms, key })}`);
  }
});

test('perms: a txn needs read on every compare and every op of both branches', (t) => {
  const txn: TxnRequest = {
    type: 'txn',
    compare: [{ key: 'c', target: 'VERSION', result: 'EQUAL', version: 0 }],
    success: [{ type: 'put', key: 'p', value: 'v', prevKv: true }],
    failure: [{ type: 'txn', compare: [], success: [
      { type: 'deleteRange', key: 'd', rangeEnd: 'e' }], failure: [] }],
  };
  t.deepEqual(accessesOf(txn), [
    { need: 'read', key: 'c', rangeEnd: undefined },
    { need: 'write', key: 'p' }, { need: 'read', key: 'p' },
    { need: 'write', key: 'd', rangeEnd: 'e' },
  ]);
  const s = enabled([
    { permType: 'READ', key: 'c' }, { permType: 'READWRITE', key: 'p' },
  ]);
  const u = { user: 'u', rev: s.revision };
  const err = t.throws(() => checkRequest(s, u, txn), { instanceOf: EtcdError });
  t.is(err.code, 'PERMISSION_DENIED');
  t.notThrows(() => checkRequest(s, u, { ...txn, failure: [] }));
});

test('perms: the auth revision check refuses a request checked before a change', (t) => {
  const s = enabled([{ permType: 'READWRITE', key: 'k' }]);
  const put = { type: 'put' as const, key: 'k', value: 'v' };
  t.notThrows(() => checkRequest(s, { user: 'u', rev: s.revision }, put));
  const code = (f: () => void) => {
    try {
      f();
      return 'OK';
    } catch (e) {
      return (e as EtcdError).code;
    }
  };
  t.is(code(() => checkRequest(s, { user: 'u', rev: s.revision - 1 }, put)),
    'AUTH_OLD_REVISION');
  t.is(code(() => checkRequest(s, anon, put)), 'USER_EMPTY');
  t.is(code(() => checkRequest(s, { user: 'ghost', rev: s.revision }, put)),
    'PERMISSION_DENIED');
  // Compaction is an admin operation; root may do anything.
  const compact = { type: 'compaction' as const, revision: 1 };
  t.is(code(() => checkRequest(s, { user: 'u', rev: s.revision }, compact)),
    'PERMISSION_DENIED');
  t.is(code(() => checkRequest(s, { user: 'root', rev: s.revision }, compact)), 'OK');
  // A put attaching a lease needs write access to the lease's keys too.
  const leased = { ...put, lease: 7 };
  t.is(code(() => checkRequest(s, { user: 'u', rev: s.revision }, leased, () => ['other'])),
    'PERMISSION_DENIED');
  t.is(code(() => checkRequest(s, { user: 'u', rev: s.revision }, leased, () => ['k'])), 'OK');
});

test('auth codec: jsonpb names, READ omitted, unknown perm_type ignored as etcd 3.4', (t) => {
  const call = decodeAuthRequest('role/grant', {
    name: 'r', perm: { perm_type: 'READWRITE', key: 'a2V5', range_end: 'a2V6' },
  });
  t.deepEqual(call.fields, { name: 'r', perm: { permType: 'READ', key: 'key', rangeEnd: 'kez' } });
  const bad = t.throws(() => decodeAuthRequest('role/grant', {
    name: 'r', perm: { permType: 'BAD' } }), { instanceOf: EtcdError });
  t.is(bad.message, 'unknown value "BAD" for enum authpb.Permission_Type');
  const header = { clusterId: 1, memberId: 2, revision: 3 as Revision, raftTerm: 4 };
  t.is(encodeAuthResponse(header, { perms: [
    { permType: 'READ', key: '' }, { permType: 'WRITE', key: 'a', rangeEnd: 'b' }] }),
  '{"header":{"cluster_id":"1","member_id":"2","revision":"3","raft_term":"4"},' +
    '"perm":[{},{"permType":"WRITE","key":"YQ==","range_end":"Yg=="}]}');
  t.is(encodeAuthResponse(header, { roles: [] }),
    '{"header":{"cluster_id":"1","member_id":"2","revision":"3","raft_term":"4"}}');
});
