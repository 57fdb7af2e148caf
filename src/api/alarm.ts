/**
 * The alarm API's codec: etcd 3.4's JSON gateway for /v3/maintenance/alarm.
 *
 * Request: `{"action": "GET"|"ACTIVATE"|"DEACTIVATE", "memberID": "…", "alarm":
 * "NONE"|"NOSPACE"|"CORRUPT"}` (enums by name or number, every field optional: `{}` lists
 * every alarm). Answer: `{"header":{…},"alarms":[{"memberID":"…","alarm":"NOSPACE"}]}`, the
 * list omitted when empty and a member id 0 omitted, as etcd's gateway (jsonpb, zero values
 * left out, uint64 as strings, enums by name).
 */
import { type AlarmAction, type AlarmMember, type AlarmType, alarmActions, alarmTypes }
  from '../alarms.js';
import { EtcdError } from '../errors.js';
import type { ResponseHeader } from '../mvcc/types.js';
import { GoNumber, goQuote, type JsonValue } from './gojson.js';
import { encodeHeader } from './v3-encode.js';

/** AlarmRequest is etcd's AlarmRequest, decoded. */
export interface AlarmRequest {
  action: AlarmAction;
  memberId: number;
  alarm: AlarmType;
}

function enumOf<T extends string>(v: JsonValue | undefined, goType: string, names: readonly T[]):
  T {
  if (v === undefined || v === null) return names[0]!;
  if (typeof v === 'string') {
    const i = names.indexOf(v as T);
    if (i < 0) {
      throw new EtcdError('INVALID_FIELD', `unknown value ${goQuote(v)} for enum ${goType}`);
    }
    return names[i]!;
  }
  const raw = v instanceof GoNumber ? v.raw : typeof v === 'number' ? String(v) : undefined;
  const n = raw === undefined ? NaN : Number(raw);
  if (!Number.isSafeInteger(n) || n < 0 || n >= names.length) {
    throw new EtcdError('BAD_REQUEST',
      `etcdserver: invalid argument: ${goType} has no value ${raw ?? typeof v}`);
  }
  return names[n]!;
}

function uint64(v: JsonValue | undefined): number {
  if (v === undefined || v === null) return 0;
  const raw = v instanceof GoNumber ? v.raw : typeof v === 'number' ? String(v)
    : typeof v === 'string' ? v : undefined;
  if (raw === undefined || !/^\d+$/.test(raw) || BigInt(raw) >= 2n ** 64n) {
    throw new EtcdError('INVALID_FIELD',
      `json: cannot unmarshal ${typeof v === 'string' ? 'string' : 'value'} into Go value of ` +
      'type uint64');
  }
  const n = Number(raw);
  if (!Number.isSafeInteger(n)) {
    throw new EtcdError('UNSAFE_INTEGER', `etcdserver: memberID ${raw} is beyond 2^53`);
  }
  return n;
}

/** decodeAlarmRequest reads etcd's AlarmRequest. */
export function decodeAlarmRequest(json: JsonValue | undefined): AlarmRequest {
  if (json !== undefined && json !== null &&
    (typeof json !== 'object' || Array.isArray(json) || json instanceof GoNumber)) {
    throw new EtcdError('INVALID_FIELD',
      `json: cannot unmarshal ${Array.isArray(json) ? 'array' : typeof json} into Go value of ` +
      'type map[string]json.RawMessage');
  }
  const o = (json ?? {}) as { [k: string]: JsonValue };
  return {
    action: enumOf(o['action'], 'etcdserverpb.AlarmRequest_AlarmAction', alarmActions),
    memberId: uint64(o['memberID']),
    alarm: enumOf(o['alarm'], 'etcdserverpb.AlarmType', alarmTypes),
  };
}

/** encodeAlarmResponse writes etcd's AlarmResponse. */
export function encodeAlarmResponse(h: ResponseHeader, alarms: readonly AlarmMember[]): string {
  let s = `{"header":${encodeHeader(h)}`;
  if (alarms.length > 0) {
    s += `,"alarms":[${alarms.map((a) => {
      const parts: string[] = [];
      if (a.memberId !== 0) parts.push(`"memberID":"${a.memberId}"`);
      if (a.alarm !== 'NONE') parts.push(`"alarm":"${a.alarm}"`);
      return `{${parts.join(',')}}`;
    }).join(',')}]`;
  }
  return s + '}';
}
