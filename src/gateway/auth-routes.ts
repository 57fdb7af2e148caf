import { type AuthCall, authPaths, decodeAuthRequest, encodeAuthResponse } from '../api/auth.js';
import { parseJsonBody } from '../api/v3.js';
import type { AuthInfo, AuthOp, AuthRequest, AuthResponse } from '../auth/store.js';
import { ErrInvalidArgument } from '../errors.js';
import type { AuthGate } from './auth-gate.js';
import type { KvService } from './kv-service.js';
import type { Routes } from './routes.js';

/** AuthAnswer is an auth call's result: the revision for the header, and the answer. */
export interface AuthAnswer {
  revision: number;
  response: Pick<AuthResponse, 'token' | 'roles' | 'users' | 'perms'>;
}

/**
 * runAuthCall serves one decoded auth call (the JSON gateway's /v3/auth/* and gRPC's Auth
 * service share it). Every request goes through the Raft log with its sender (etcd's
 * InternalRaftRequest header), and the Raft node's auth store decides — root role,
 * existence, etcd's errors. The gateway does what must stay off the apply loop: bcrypt
 * (hashing new passwords, checking authenticate's) and drawing simple tokens. A password is
 * hashed only after the replica says the sender may change users, so an anonymous client
 * cannot make the server spend bcrypt rounds on user/add. `who` resolves the sender
 * (authenticate needs none: etcd does not look at a token there).
 */
export async function runAuthCall(gate: AuthGate, kv: KvService, call: AuthCall,
  who: () => Promise<AuthInfo>): Promise<AuthAnswer> {
  const f = call.fields;
  if (call.op === 'authenticate') {
    const by = { user: '', rev: 0 };
    const name = f['name'] as string;
    await gate.checkPassword(name, call.password ?? '');
    if (gate.isJwt) {
      return { revision: kv.knownRevision, response: { token: await gate.signJwt(name) } };
    }
    const token = gate.newSimpleToken();
    const res = await kv.propose({ type: 'auth', by, op: 'authenticate', name, token });
    gate.learnToken(token, name);
    return { revision: res.revision, response: { token } };
  }
  const by = await who();
  if (call.op === 'roleGrantPermission' && f['perm'] === undefined) {
    throw new ErrInvalidArgument('perm is not provided');
  }
  const op = { ...f, op: call.op } as AuthOp;
  if (call.op === 'userAdd' || call.op === 'userChangePassword') {
    gate.checkAdmin(by);
    if (f['noPassword'] !== true) {
      (op as { hash?: string }).hash = await gate.hash(call.password ?? '');
    }
  }
  const res = await kv.propose({ type: 'auth', by, ...op } as AuthRequest);
  return { revision: res.revision, response: res.response as AuthResponse };
}

/** registerAuthRoutes serves etcd 3.4's /v3/auth/* (and /v3beta/auth/*) with runAuthCall. */
export function registerAuthRoutes(r: Routes): void {
  const gate = r.deps.auth;
  if (gate === undefined) return;
  const kv = r.deps.kv;
  for (const base of ['/v3', '/v3beta']) {
    for (const path of authPaths) {
      r.json('post', `${base}/auth/${path}`, async (body, req) => {
        const call = decodeAuthRequest(path, parseJsonBody(body));
        const res = await runAuthCall(gate, kv, call, () => gate.who(req));
        return [200, encodeAuthResponse(kv.header(res.revision), res.response)];
      });
    }
  }
}
