import { EtcdError } from '../errors.js';
import type { Bytes } from '../types.js';

/**
 * store: etcd 3.4's auth store (auth/store.go) as a pure state machine. It holds the users
 * (bcrypt hashes, never passwords: the gateway hashes before proposing, so the apply loop
 * never spends bcrypt's 50 ms), the roles and their key permissions, the enabled flag and the
 * auth revision, which every change bumps. The Raft node's state machine applies AuthRequests
 * in log order, so every member holds the same store; the gateway keeps a replica (from
 * `toJson`) to check permissions and passwords without a thread hop. Snapshots carry `toJson`.
 *
 * Worked example (what etcd 3.4 answers, recorded against 3.4.23):
 *   userAdd root, userGrantRole root→root, enable        → enabled, revision 2
 *   roleAdd r, roleGrantPermission r READ [/a/, /b/)      → revision 4
 *   userAdd u, userGrantRole u→r                          → revision 6
 *   u reads /a/x: allowed; u writes /a/x: "etcdserver: permission denied"
 *   userDelete root (while enabled): "etcdserver: invalid auth management"
 */

/** rootUser and rootRole are etcd's built-in names: the root role may do anything. */
export const rootUser = 'root';
export const rootRole = 'root';

/** PermType is authpb.Permission_Type; its index is the enum number. */
export const permTypes = ['READ', 'WRITE', 'READWRITE'] as const;
export type PermType = typeof permTypes[number];

/** Permission is authpb.Permission: a key, or [key, rangeEnd) ("\0": every key ≥ key). */
export interface Permission {
  permType: PermType;
  key: Bytes;
  /** rangeEnd: '' or absent means the single key. */
  rangeEnd?: Bytes;
}

/** AuthUser is authpb.User: the bcrypt hash (absent for a no-password user) and the roles,
 * sorted. */
export interface AuthUser {
  name: string;
  hash?: string;
  noPassword?: boolean;
  roles: string[];
}

/** AuthRole is authpb.Role: its permissions, sorted by key (grant order among equal keys). */
export interface AuthRole {
  name: string;
  perms: Permission[];
}

/** AuthStateJson is the store as data: snapshots and the gateway's replica. */
export interface AuthStateJson {
  enabled: boolean;
  revision: number;
  users: AuthUser[];
  roles: AuthRole[];
}

/** AuthInfo is who sends a request: the user ('' for none) and the auth revision the gateway
 * checked the token at (etcd's AuthInfo). */
export interface AuthInfo {
  user: string;
  rev: number;
}

/** AuthOp is one auth operation as it travels through the log (etcd's InternalRaftRequest
 * auth fields). Reads go through the log too, as etcd's do (linearizable answers). */
export type AuthOp =
  | { op: 'enable' }
  | { op: 'disable' }
  | { op: 'authenticate'; name: string; token: string }
  | { op: 'userAdd'; name: string; hash?: string; noPassword?: boolean }
  | { op: 'userDelete'; name: string }
  | { op: 'userChangePassword'; name: string; hash?: string }
  | { op: 'userGrantRole'; user: string; role: string }
  | { op: 'userRevokeRole'; name: string; role: string }
  | { op: 'userGet'; name: string }
  | { op: 'userList' }
  | { op: 'roleAdd'; name: string }
  | { op: 'roleDelete'; role: string }
  | { op: 'roleGrantPermission'; name: string; perm: Permission }
  | { op: 'roleRevokePermission'; role: string; key: Bytes; rangeEnd?: Bytes }
  | { op: 'roleGet'; role: string }
  | { op: 'roleList' };

/** AuthRequest is an AuthOp in a Raft entry, with its sender (`by`). */
export type AuthRequest = { type: 'auth'; by: AuthInfo } & AuthOp;

/** AuthResponse is the applied result: what the JSON answer carries besides the header. */
export interface AuthResponse {
  type: 'auth';
  token?: string;
  roles?: string[];
  users?: string[];
  perms?: Permission[];
  /** changed: the store changed (the gateway's replica must follow). */
  changed?: boolean;
  /** invalidate: the user whose tokens are no longer valid (password change, deletion). */
  invalidate?: string;
  /** tokensCleared: auth was disabled, every token is void. */
  tokensCleared?: boolean;
}

/** adminOps need the root role when auth is enabled (etcd's needAdminPermission). */
const adminOps: ReadonlySet<AuthOp['op']> = new Set([
  'enable', 'disable', 'userAdd', 'userDelete', 'userChangePassword', 'userGrantRole',
  'userRevokeRole', 'roleAdd', 'roleGrantPermission', 'roleRevokePermission', 'roleDelete',
  'userList', 'roleList',
]);

function insertSorted(list: string[], s: string): void {
  let i = 0;
  while (i < list.length && list[i]! < s) i++;
  list.splice(i, 0, s);
}

function sameEnd(a: Bytes | undefined, b: Bytes | undefined): boolean {
  return (a ?? '') === (b ?? '');
}

/** AuthStore: see the file comment. */
export class AuthStore {
  enabled = false;
  /** revision counts changes; a request checked at an older revision is refused at apply. */
  revision = 0;
  private readonly users = new Map<string, AuthUser>();
  private readonly roles = new Map<string, AuthRole>();

  /** fromJson rebuilds a store from toJson's data (snapshots, the gateway's replica). */
  static fromJson(j: AuthStateJson | undefined): AuthStore {
    const s = new AuthStore();
    if (j === undefined) return s;
    s.enabled = j.enabled;
    s.revision = j.revision;
    for (const u of j.users) s.users.set(u.name, { ...u, roles: [...u.roles] });
    for (const r of j.roles) {
      s.roles.set(r.name, { name: r.name, perms: r.perms.map((p) => ({ ...p })) });
    }
    return s;
  }

  /** toJson is the whole store as data (sorted, so equal stores give equal data). */
  toJson(): AuthStateJson {
    const byName = <T extends { name: string }>(a: T, b: T) => (a.name < b.name ? -1 : 1);
    return {
      enabled: this.enabled, revision: this.revision,
      users: [...this.users.values()].map((u) => ({ ...u, roles: [...u.roles] })).sort(byName),
      roles: [...this.roles.values()].map((r) => ({ name: r.name, perms: [...r.perms] }))
        .sort(byName),
    };
  }

  /** user returns a user by name. */
  user(name: string): AuthUser | undefined {
    return this.users.get(name);
  }

  /** hasRootRole: the user holds the root role. */
  hasRootRole(name: string): boolean {
    return this.users.get(name)?.roles.includes(rootRole) ?? false;
  }

  /** permissions lists every permission of the user's roles. */
  permissions(name: string): Permission[] {
    const out: Permission[] = [];
    for (const r of this.users.get(name)?.roles ?? []) {
      for (const p of this.roles.get(r)?.perms ?? []) out.push(p);
    }
    return out;
  }

  /** checkAdmin is etcd's IsAdminPermitted: nothing to check while auth is disabled. */
  checkAdmin(by: AuthInfo): void {
    if (!this.enabled) return;
    if (by.user === '') throw new EtcdError('USER_EMPTY');
    if (!this.users.has(by.user)) throw new EtcdError('USER_NOT_FOUND');
    if (!this.hasRootRole(by.user)) throw new EtcdError('PERMISSION_DENIED');
  }

  /** apply executes one auth request as etcd's authApplierV3 then applierV3backend do. */
  apply(req: AuthRequest): AuthResponse {
    if (adminOps.has(req.op)) this.checkAdmin(req.by);
    switch (req.op) {
      case 'enable': case 'disable': case 'authenticate':
        return this.applyAuth(req);
      case 'roleAdd': case 'roleDelete': case 'roleGrantPermission':
      case 'roleRevokePermission': case 'roleGet': case 'roleList':
        return this.applyRole(req);
      default:
        return this.applyUser(req);
    }
  }

  private applyAuth(req: AuthRequest & { op: 'enable' | 'disable' | 'authenticate' }):
    AuthResponse {
    switch (req.op) {
      case 'enable': {
        if (this.enabled) return { type: 'auth' };
        const root = this.users.get(rootUser);
        if (root === undefined) throw new EtcdError('ROOT_USER_NOT_EXIST');
        if (!root.roles.includes(rootRole)) throw new EtcdError('ROOT_ROLE_NOT_EXIST');
        this.enabled = true;
        return this.bump({});
      }
      case 'disable':
        if (!this.enabled) return { type: 'auth' };
        this.enabled = false;
        return this.bump({ tokensCleared: true });
      case 'authenticate': {
        if (!this.enabled) throw new EtcdError('AUTH_NOT_ENABLED');
        if (!this.users.has(req.name)) throw new EtcdError('AUTH_FAILED');
        return { type: 'auth', token: req.token };
      }
    }
  }

  private applyUser(req: AuthRequest): AuthResponse {
    switch (req.op) {
      case 'userAdd': {
        if (req.name === '') throw new EtcdError('USER_EMPTY');
        if (this.users.has(req.name)) throw new EtcdError('USER_ALREADY_EXIST');
        const u: AuthUser = { name: req.name, roles: [] };
        if (req.noPassword === true) u.noPassword = true;
        else if (req.hash !== undefined) u.hash = req.hash;
        this.users.set(req.name, u);
        return this.bump({});
      }
      case 'userDelete':
        if (this.enabled && req.name === rootUser) throw new EtcdError('INVALID_AUTH_MGMT');
        if (!this.users.delete(req.name)) throw new EtcdError('USER_NOT_FOUND');
        return this.bump({ invalidate: req.name });
      case 'userChangePassword': {
        const u = this.users.get(req.name);
        if (u === undefined) throw new EtcdError('USER_NOT_FOUND');
        if (u.noPassword !== true && req.hash !== undefined) u.hash = req.hash;
        return this.bump({ invalidate: req.name });
      }
      case 'userGrantRole': {
        const u = this.users.get(req.user);
        if (u === undefined) throw new EtcdError('USER_NOT_FOUND');
        if (req.role !== rootRole && !this.roles.has(req.role)) {
          throw new EtcdError('ROLE_NOT_FOUND');
        }
        if (u.roles.includes(req.role)) return { type: 'auth' };
        insertSorted(u.roles, req.role);
        return this.bump({});
      }
      case 'userRevokeRole': {
        if (this.enabled && req.name === rootUser && req.role === rootRole) {
          throw new EtcdError('INVALID_AUTH_MGMT');
        }
        const u = this.users.get(req.name);
        if (u === undefined) throw new EtcdError('USER_NOT_FOUND');
        const i = u.roles.indexOf(req.role);
        if (i < 0) throw new EtcdError('ROLE_NOT_GRANTED');
        u.roles.splice(i, 1);
        return this.bump({});
      }
      case 'userGet': {
        // A user may read itself without the root role (etcd: authApplierV3.UserGet).
        if (req.name !== req.by.user) this.checkAdmin(req.by);
        const u = this.users.get(req.name);
        if (u === undefined) throw new EtcdError('USER_NOT_FOUND');
        return { type: 'auth', roles: [...u.roles] };
      }
      case 'userList':
        return { type: 'auth', users: [...this.users.keys()].sort() };
      default:
        throw new EtcdError('INTERNAL');
    }
  }

  private applyRole(req: AuthRequest): AuthResponse {
    switch (req.op) {
      case 'roleAdd':
        if (req.name === '') throw new EtcdError('ROLE_EMPTY');
        if (this.roles.has(req.name)) throw new EtcdError('ROLE_ALREADY_EXIST');
        this.roles.set(req.name, { name: req.name, perms: [] });
        return this.bump({});
      case 'roleDelete':
        if (this.enabled && req.role === rootRole) throw new EtcdError('INVALID_AUTH_MGMT');
        if (!this.roles.delete(req.role)) throw new EtcdError('ROLE_NOT_FOUND');
        for (const u of this.users.values()) {
          const i = u.roles.indexOf(req.role);
          if (i >= 0) u.roles.splice(i, 1);
        }
        return this.bump({});
      case 'roleGrantPermission': {
        const r = this.roles.get(req.name);
        if (r === undefined) throw new EtcdError('ROLE_NOT_FOUND');
        const p: Permission = { permType: req.perm.permType, key: req.perm.key };
        if (req.perm.rangeEnd !== undefined && req.perm.rangeEnd !== '') {
          p.rangeEnd = req.perm.rangeEnd;
        }
        const same = r.perms.find((q) => q.key === p.key && sameEnd(q.rangeEnd, p.rangeEnd));
        if (same !== undefined) same.permType = p.permType;
        else {
          let i = 0;
          while (i < r.perms.length && r.perms[i]!.key <= p.key) i++;
          r.perms.splice(i, 0, p);
        }
        return this.bump({});
      }
      case 'roleRevokePermission': {
        const r = this.roles.get(req.role);
        if (r === undefined) throw new EtcdError('ROLE_NOT_FOUND');
        const i = r.perms.findIndex((q) => q.key === req.key && sameEnd(q.rangeEnd, req.rangeEnd));
        if (i < 0) throw new EtcdError('PERMISSION_NOT_GRANTED');
        r.perms.splice(i, 1);
        return this.bump({});
      }
      case 'roleGet': {
        // A user may read a role it holds (etcd: authApplierV3.RoleGet).
        if (!(this.users.get(req.by.user)?.roles.includes(req.role) ?? false)) {
          this.checkAdmin(req.by);
        }
        const r = this.roles.get(req.role);
        if (r === undefined) throw new EtcdError('ROLE_NOT_FOUND');
        return { type: 'auth', perms: r.perms.map((p) => ({ ...p })) };
      }
      case 'roleList':
        return { type: 'auth', roles: [...this.roles.keys()].sort() };
      default:
        throw new EtcdError('INTERNAL');
    }
  }

  private bump(r: Omit<AuthResponse, 'type'>): AuthResponse {
    this.revision++;
    return { type: 'auth', changed: true, ...r };
  }
}
