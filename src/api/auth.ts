import type { AuthOp, Permission } from '../auth/store.js';
import { permTypes } from '../auth/store.js';
import { base64FromBytes } from '../bytes.js';
import type { ResponseHeader } from '../mvcc/types.js';
import { goJsonString } from './errors.js';
import type { JsonValue } from './gojson.js';
import {
  encodeHeader, jsonBody, jsonBool, jsonBytes, jsonEnum, jsonField, jsonMessage, jsonTypeError,
} from './v3.js';

/**
 * auth: etcd 3.4's /v3/auth/* JSON gateway messages (etcdserverpb.Auth*Request and
 * *Response, authpb.Permission). Decoding follows src/api/v3-decode: proto names first, then
 * JSON names, unknown fields ignored (recorded: `perm_type` is unknown — the field is
 * `permType` — and leaves a READ permission), Go's type errors. Encoding omits zero values as
 * jsonpb does: a READ permission has no permType, an empty key no key.
 */

/** AuthRoute names the auth paths; each decodes to an AuthOp or the authenticate request. */
export const authPaths = [
  'enable', 'disable', 'authenticate', 'user/add', 'user/get', 'user/list', 'user/delete',
  'user/changepw', 'user/grant', 'user/revoke', 'role/add', 'role/get', 'role/list',
  'role/delete', 'role/grant', 'role/revoke',
] as const;
export type AuthPath = typeof authPaths[number];

/** AuthCall is a decoded auth request: an op, with the password to hash (user add,
 * change password) or to check (authenticate) kept out of it. */
export interface AuthCall {
  op: AuthOp['op'];
  fields: Record<string, unknown>;
  password?: string;
}

function str(o: Record<string, JsonValue>, orig: string, json = orig): string {
  const v = jsonField(o, orig, json);
  if (v === undefined) return '';
  if (typeof v !== 'string') throw jsonTypeError(v, 'string');
  return v;
}

function perm(v: JsonValue | undefined): Permission | undefined {
  const o = jsonMessage(v);
  if (o === undefined) return undefined;
  const t = jsonEnum(jsonField(o, 'permType', 'permType'), 'authpb.Permission_Type', permTypes);
  const permType = permTypes[t ?? 0] ?? 'READ';
  const p: Permission = { permType, key: jsonBytes(jsonField(o, 'key', 'key')) ?? '' };
  const end = jsonBytes(jsonField(o, 'range_end', 'rangeEnd'));
  if (end !== undefined && end !== '') p.rangeEnd = end;
  return p;
}

/** decodeAuthRequest decodes the body of /v3/auth/<path>. */
export function decodeAuthRequest(path: AuthPath, json: unknown): AuthCall {
  const o = jsonBody(json);
  switch (path) {
    case 'enable': return { op: 'enable', fields: {} };
    case 'disable': return { op: 'disable', fields: {} };
    case 'authenticate':
      return { op: 'authenticate', fields: { name: str(o, 'name') }, password: str(o, 'password') };
    case 'user/add': {
      const opts = jsonMessage(jsonField(o, 'options', 'options'));
      const noPassword = opts === undefined ? undefined
        : jsonBool(jsonField(opts, 'no_password', 'noPassword'));
      return {
        op: 'userAdd', fields: { name: str(o, 'name'), ...(noPassword ? { noPassword } : {}) },
        password: str(o, 'password'),
      };
    }
    case 'user/get': return { op: 'userGet', fields: { name: str(o, 'name') } };
    case 'user/list': return { op: 'userList', fields: {} };
    case 'user/delete': return { op: 'userDelete', fields: { name: str(o, 'name') } };
    case 'user/changepw':
      return {
        op: 'userChangePassword', fields: { name: str(o, 'name') }, password: str(o, 'password'),
      };
    case 'user/grant':
      return { op: 'userGrantRole', fields: { user: str(o, 'user'), role: str(o, 'role') } };
    case 'user/revoke':
      return { op: 'userRevokeRole', fields: { name: str(o, 'name'), role: str(o, 'role') } };
    case 'role/add': return { op: 'roleAdd', fields: { name: str(o, 'name') } };
    case 'role/get': return { op: 'roleGet', fields: { role: str(o, 'role') } };
    case 'role/list': return { op: 'roleList', fields: {} };
    case 'role/delete': return { op: 'roleDelete', fields: { role: str(o, 'role') } };
    case 'role/grant': {
      const p = perm(jsonField(o, 'perm', 'perm'));
      // etcd 3.4.23 dereferences a missing perm and crashes (recorded); we refuse it.
      if (p === undefined) {
        return { op: 'roleGrantPermission', fields: { name: str(o, 'name') } };
      }
      return { op: 'roleGrantPermission', fields: { name: str(o, 'name'), perm: p } };
    }
    case 'role/revoke': {
      const end = jsonBytes(jsonField(o, 'range_end', 'rangeEnd'));
      return {
        op: 'roleRevokePermission',
        fields: {
          role: str(o, 'role'), key: jsonBytes(jsonField(o, 'key', 'key')) ?? '',
          ...(end !== undefined && end !== '' ? { rangeEnd: end } : {}),
        },
      };
    }
  }
}

function strList(name: string, list: string[] | undefined): string {
  if (list === undefined || list.length === 0) return '';
  return `,"${name}":[${list.map(goJsonString).join(',')}]`;
}

function encodePerm(p: Permission): string {
  const parts: string[] = [];
  if (p.permType !== 'READ') parts.push(`"permType":"${p.permType}"`);
  if (p.key !== '') parts.push(`"key":"${base64FromBytes(p.key)}"`);
  if (p.rangeEnd !== undefined && p.rangeEnd !== '') {
    parts.push(`"range_end":"${base64FromBytes(p.rangeEnd)}"`);
  }
  return `{${parts.join(',')}}`;
}

/** encodeAuthResponse writes an auth answer: header, then token, roles, users or perm. */
export function encodeAuthResponse(header: ResponseHeader, r: {
  token?: string; roles?: string[]; users?: string[]; perms?: Permission[];
}): string {
  let s = `{"header":${encodeHeader(header)}`;
  if (r.token !== undefined && r.token !== '') s += `,"token":${goJsonString(r.token)}`;
  s += strList('roles', r.roles);
  s += strList('users', r.users);
  if (r.perms !== undefined && r.perms.length > 0) {
    s += `,"perm":[${r.perms.map(encodePerm).join(',')}]`;
  }
  return s + '}';
}
