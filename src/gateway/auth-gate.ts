import bcrypt from 'bcryptjs';
import type { CryptoKey, KeyObject } from 'jose';
import { randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type HyperExpress from 'hyper-express';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { AuthChanged } from '../../actors/raft/messages.js';
import { checkAccesses, checkLeaseRevoke, checkRequest, type Access } from '../auth/perms.js';
import { AuthStore, type AuthInfo } from '../auth/store.js';
import { ConfigError } from '../config/errors.js';
import { parseDurationMs } from '../config/values.js';
import { authTokensMax } from '../constants.js';
import { EtcdError } from '../errors.js';
import type { RequestOp, WriteRequest } from '../mvcc/types.js';
import type { Bytes } from '../types.js';
import type { KvService } from './kv-service.js';

/**
 * auth-gate: the gateway's half of etcd's auth. It keeps a replica of the auth store (the Raft
 * node pushes AuthChanged after every applied change), resolves the `Authorization` header to
 * a user (etcd's gateway passes the header on as the `authorization` metadata, the raw token,
 * no "Bearer"), checks passwords with bcrypt (on this thread, asynchronously: bcryptjs yields
 * between rounds, and the Raft apply loop never waits for it), and hands every front end the
 * same permission checks (src/auth/perms.ts). Writes are checked here and again at apply
 * time (AuthedRequest), so a permission revoked in between is never bypassed.
 *
 * Tokens, as etcd's --auth-token:
 *  - simple: 16 random letters and a sequence number, assigned through the Raft log so that
 *    every member knows it, kept in memory, valid until unused for --auth-token-ttl seconds
 *    (each use restarts the clock), void when the user's password changes, the user is
 *    deleted, auth is disabled or the member restarts. The auth revision checked is the
 *    store's current one: a simple token always sees the current permissions.
 *  - jwt: signed with the private key (RS256/ES256/... via jose), carrying the user name and
 *    the auth revision at issue; any member with the public key verifies it. A JWT issued
 *    before a permission change gets "revision of auth store is old" for writes, as etcd's;
 *    its reads are checked against the current permissions.
 * Like etcd 3.4.23 (recorded), a token that does not resolve is refused with "invalid auth
 * token" even while auth is disabled; requests without a token pass while it is disabled.
 */

/** anonymous is the caller without a token (shared: resolved on every request). */
const anonymous: AuthInfo = Object.freeze({ user: '', rev: 0 });

/** AuthGateOptions are the auth settings of Config. */
export interface AuthGateOptions {
  authToken: string;
  authTokenTtl: number;
  bcryptCost: number;
}

interface Jwt {
  /** jose: loaded only for --auth-token jwt (46 modules, ≈ 38 ms at every start otherwise). */
  jose: typeof import('jose');
  alg: string;
  ttlMs: number;
  pub: CryptoKey | KeyObject;
  priv?: CryptoKey | KeyObject;
}

const letters = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';

/** jwtAlgs are the sign methods accepted (etcd's jwt provider: RS*, PS*, ES*). */
const jwtAlgs = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384',
  'ES512'];

/** parseAuthToken reads --auth-token; 'jwt,…' keys are loaded by loadJwt. */
export function parseAuthToken(text: string): { kind: 'simple' } | {
  kind: 'jwt'; pubKey: string; privKey?: string; signMethod: string; ttlMs: number;
} {
  if (text === 'simple') return { kind: 'simple' };
  const parts = text.split(',');
  if (parts[0] !== 'jwt') {
    throw new ConfigError('auth-token', `unknown token type ${JSON.stringify(parts[0])} ` +
      "(want 'simple' or 'jwt,pub-key=…,priv-key=…,sign-method=…')");
  }
  const o = new Map<string, string>();
  for (const p of parts.slice(1)) {
    const eq = p.indexOf('=');
    if (eq < 0) throw new ConfigError('auth-token', `bad jwt option ${JSON.stringify(p)}`);
    o.set(p.slice(0, eq), p.slice(eq + 1));
  }
  const signMethod = o.get('sign-method') ?? '';
  if (!jwtAlgs.includes(signMethod)) {
    throw new ConfigError('auth-token', `jwt sign-method must be one of ${jwtAlgs.join(', ')}`);
  }
  const pubKey = o.get('pub-key');
  if (pubKey === undefined) throw new ConfigError('auth-token', 'jwt needs pub-key=<path>');
  const ttlMs = o.has('ttl') ? parseDurationMs(o.get('ttl')!) : 5 * 60_000;
  if (ttlMs === undefined || ttlMs <= 0) {
    throw new ConfigError('auth-token', 'jwt ttl must be a positive duration');
  }
  const privKey = o.get('priv-key');
  return { kind: 'jwt', pubKey, signMethod, ttlMs, ...(privKey ? { privKey } : {}) };
}

/** AuthGate: see the file comment. */
export class AuthGate {
  /** store is the replica of the applied auth state. */
  store = new AuthStore();
  /** failures counts refused authentications (wrong password, unknown user). */
  failures = 0;
  /** certUsers give the client certificate's common name behind a request's remote address
   * (--client-cert-auth): etcd's AuthInfoFromTLS, used when the request has no token. */
  readonly certUsers: ((ip: string) => string | undefined)[] = [];
  /** catchUp, on a gateway thread of --experimental-gateway-threads, waits until every push
   * the Raft node sent this thread before now has arrived (an unknown simple token). */
  catchUp?: () => Promise<void>;
  /** onFailure hears each refused authentication (the metric). */
  onFailure?: () => void;
  private readonly simple = new Map<string, { user: string; expiresMs: number }>();
  private seq = 0;
  private jwt?: Jwt;
  /** dummyHash is compared against when the user does not exist, so that a wrong name takes
   * as long as a wrong password. */
  private dummyHash?: string;

  private constructor(readonly opts: AuthGateOptions) {}

  /** create builds the gate, loading the JWT keys if configured (ConfigError if unusable). */
  static async create(opts: AuthGateOptions): Promise<AuthGate> {
    const g = new AuthGate(opts);
    const t = parseAuthToken(opts.authToken);
    if (t.kind === 'jwt') {
      const jose = await import('jose');
      try {
        const pub = await jose.importSPKI(readFileSync(t.pubKey, 'utf8'), t.signMethod);
        const priv = t.privKey === undefined ? undefined
          : await jose.importPKCS8(readFileSync(t.privKey, 'utf8'), t.signMethod);
        g.jwt = { jose, alg: t.signMethod, ttlMs: t.ttlMs, pub, ...(priv ? { priv } : {}) };
      } catch (e) {
        throw new ConfigError('auth-token', `cannot load the jwt keys: ${(e as Error).message}`);
      }
    }
    return g;
  }

  /** onPush follows the Raft node's AuthChanged. */
  onPush(m: AuthChanged): void {
    if (m.state !== undefined) this.store = AuthStore.fromJson(m.state);
    if (m.tokensCleared === true) this.simple.clear();
    if (m.invalidate !== undefined) {
      for (const [t, v] of this.simple) if (v.user === m.invalidate) this.simple.delete(t);
    }
    if (m.token !== undefined) this.assign(m.token.token, m.token.user);
  }

  private assign(token: string, user: string): void {
    if (this.simple.size >= authTokensMax) {
      // Bounded: the oldest token (first inserted) goes.
      const first = this.simple.keys().next().value;
      if (first !== undefined) this.simple.delete(first);
    }
    this.simple.set(token, { user, expiresMs: Date.now() + this.opts.authTokenTtl * 1000 });
  }

  /** hash hashes a password with the configured cost (etcd's --bcrypt-cost). */
  hash(password: string): Promise<string> {
    return bcrypt.hash(password, this.opts.bcryptCost);
  }

  /** checkPassword is etcd's CheckPassword: the user's name if the password is right. */
  async checkPassword(name: string, password: string): Promise<void> {
    if (!this.store.enabled) throw new EtcdError('AUTH_NOT_ENABLED');
    const u = this.store.user(name);
    if (u?.noPassword === true) throw new EtcdError('NO_PASSWORD_USER');
    if (u === undefined || u.hash === undefined) {
      this.dummyHash ??= await bcrypt.hash('', this.opts.bcryptCost);
      await bcrypt.compare(password, this.dummyHash);
      this.failures++;
      this.onFailure?.();
      throw new EtcdError('AUTH_FAILED');
    }
    if (!(await bcrypt.compare(password, u.hash))) {
      this.failures++;
      this.onFailure?.();
      throw new EtcdError('AUTH_FAILED');
    }
  }

  /** newSimpleToken draws a simple token (etcd's: 16 letters, '.', a sequence number). */
  newSimpleToken(): string {
    let s = '';
    for (let i = 0; i < 16; i++) s += letters[randomInt(letters.length)];
    return `${s}.${++this.seq}`;
  }

  /** isJwt: tokens are JWTs (no Raft round for authenticate). */
  get isJwt(): boolean {
    return this.jwt !== undefined;
  }

  /** signJwt issues a JWT for the user at the current auth revision. */
  async signJwt(user: string): Promise<string> {
    const j = this.jwt!;
    if (j.priv === undefined) throw new EtcdError('AUTH_FAILED');
    return new j.jose.SignJWT({ username: user, revision: this.store.revision })
      .setProtectedHeader({ alg: j.alg })
      .setExpirationTime(Math.floor((Date.now() + j.ttlMs) / 1000))
      .sign(j.priv);
  }

  /** learnToken records a simple token as soon as its authenticate is applied here. */
  learnToken(token: string, user: string): void {
    this.assign(token, user);
  }

  /** who resolves the request's token: no token is the empty user (revision 0). */
  async who(req: HyperExpress.Request): Promise<AuthInfo> {
    return this.whoNow(req) ?? this.whoByToken(req.header('authorization') || req.header('token'));
  }

  /** whoNow resolves a request without a token synchronously (no promise per request on the
   * hot path: the anonymous caller, or a --client-cert-auth user); undefined: it has a token,
   * resolve it with who. */
  whoNow(req: HyperExpress.Request): AuthInfo | undefined {
    const token = req.header('authorization') || req.header('token');
    if (token !== undefined && token !== '') return undefined;
    if (this.certUsers.length > 0 && this.store.enabled) {
      for (const f of this.certUsers) {
        const user = f(req.ip);
        if (user !== undefined) return { user, rev: this.store.revision };
      }
    }
    return anonymous;
  }

  /** whoByToken resolves a token (empty: no user). */
  async whoByToken(token: string | undefined): Promise<AuthInfo> {
    if (token === undefined || token === '') return anonymous;
    if (this.jwt !== undefined) {
      try {
        const { payload } = await this.jwt.jose.jwtVerify(token, this.jwt.pub,
          { algorithms: [this.jwt.alg] });
        const user = payload['username'];
        const rev = payload['revision'];
        if (typeof user === 'string' && typeof rev === 'number' && Number.isSafeInteger(rev)) {
          return { user, rev };
        }
      } catch {
        // refused below
      }
      throw new EtcdError('INVALID_AUTH_TOKEN');
    }
    let t = this.simple.get(token);
    if (t === undefined && this.catchUp !== undefined) {
      // Another gateway thread's authenticate: its token reaches this thread in a push that
      // may still be on the way; one round trip to the Raft node brings it (same channel).
      await this.catchUp();
      t = this.simple.get(token);
    }
    const now = Date.now();
    if (t === undefined || t.expiresMs < now) {
      if (t !== undefined) this.simple.delete(token);
      throw new EtcdError('INVALID_AUTH_TOKEN');
    }
    t.expiresMs = now + this.opts.authTokenTtl * 1000;
    return { user: t.user, rev: this.store.revision };
  }

  /** checkKv checks a KV request against the replica (reads: the only check; writes: the
   * early one, before the apply-time check). */
  checkKv(by: AuthInfo, req: RequestOp | WriteRequest): void {
    if (!this.store.enabled) return;
    // A JWT's older revision matters for writes (checked at apply); reads use the current.
    checkRequest(this.store, req.type === 'range' ? { ...by, rev: this.current(by) } : by, req);
  }

  /** checkRange checks read access to [key, rangeEnd) (watches). */
  checkRange(by: AuthInfo, key: Bytes, rangeEnd?: Bytes): void {
    if (!this.store.enabled) return;
    const a: Access = { need: 'read', key, ...(rangeEnd === undefined ? {} : { rangeEnd }) };
    checkAccesses(this.store, { ...by, rev: this.current(by) }, [a]);
  }

  /** checkLeaseRevoke checks write access to every key of a lease. */
  checkLeaseRevoke(by: AuthInfo, keys: Bytes[]): void {
    if (!this.store.enabled) return;
    checkLeaseRevoke(this.store, { ...by, rev: this.current(by) }, keys);
  }

  /** checkAdmin checks the root role (auth changes, compaction, members). */
  checkAdmin(by: AuthInfo): void {
    this.store.checkAdmin(by);
  }

  private current(by: AuthInfo): number {
    return by.user === '' ? 0 : Math.max(by.rev, this.store.revision);
  }
}

/** startAuth builds the gate, follows the Raft node's AuthChanged through the KV service
 * (before the actors start, so that no push is missed), and registers the auth metrics:
 * etcd's auth revision gauge and the refused authentications (ours; etcd counts none). */
export async function startAuth(opts: AuthGateOptions, kv: KvService, registry: Registry):
  Promise<AuthGate> {
  const gate = await AuthGate.create(opts);
  kv.onAuth = (m) => gate.onPush(m);
  if (kv.lastAuth !== undefined) gate.onPush(kv.lastAuth);
  new Gauge({
    name: 'etcd_debugging_auth_revision', help: 'The current revision of auth store.',
    registers: [registry], collect() {
      this.set(gate.store.revision);
    },
  });
  const failures = new Counter({
    name: 'myetcd_auth_failures_total',
    help: 'Authentications refused for a wrong password or an unknown user.',
    registers: [registry],
  });
  gate.onFailure = () => failures.inc();
  return gate;
}
