import { authPaths, decodeAuthRequest, encodeAuthResponse } from '../api/auth.js';
import { parseJsonBody } from '../api/v3.js';
import type { AuthOp, AuthRequest, AuthResponse } from '../auth/store.js';
import { ErrInvalidArgument } from '../errors.js';
import type { Routes } from './routes.js';

/**
 * auth-routes: etcd 3.4's /v3/auth/* (and /v3beta/auth/*). Every request goes through the
 * Raft log with its sender (etcd's InternalRaftRequest header), and the Raft node's auth
 * store decides — root role, existence, etcd's errors. The gateway does what must stay off
 * the apply loop: bcrypt (hashing new passwords, checking authenticate's) and drawing simple
 * tokens. A password is hashed only after the replica says the sender may change users, so
 * an anonymous client cannot make the server spend bcrypt rounds on user/add.
 */
export function registerAuthRoutes(r: Routes): void {
  const gate = r.deps.auth;
  if (gate === undefined) return;
  const kv = r.deps.kv;
  for (const base of ['/v3', '/v3beta']) {
    for (const path of authPaths) {
      r.json('post', `${base}/auth/${path}`, async (body, req) => {
        const call = decodeAuthRequest(path, parseJsonBody(body));
        const f = call.fields as Record<string, unknown>;
        if (call.op === 'authenticate') {
          // Authenticate needs no token (etcd does not look at one here).
          const by = { user: '', rev: 0 };
          const name = f['name'] as string;
          await gate.checkPassword(name, call.password ?? '');
          if (gate.isJwt) {
            const token = await gate.signJwt(name);
            return [200, encodeAuthResponse(kv.header(kv.knownRevision), { token })];
          }
          const token = gate.newSimpleToken();
          const res = await kv.propose({ type: 'auth', by, op: 'authenticate', name, token });
          gate.learnToken(token, name);
          return [200, encodeAuthResponse(kv.header(res.revision), { token })];
        }
        const by = await gate.who(req);
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
        return [200, encodeAuthResponse(kv.header(res.revision), res.response as AuthResponse)];
      });
    }
  }
}
