/**
 * The cluster API's codecs: etcd 3.4's JSON gateway for /v3/cluster/member/* and
 * /v3/maintenance/transfer-leadership, written against a real etcd 3.4.23 cluster's answers.
 *
 * Member ids are uint64 in etcd and travel as JSON strings ("ID":"285371497858536126");
 * ours are below 2^53. A request naming an id we cannot hold (above 2^53) names no member
 * and is answered "member not found", as etcd answers any unknown id.
 *
 * Answers: member list/add/remove/update/promote carry a header WITHOUT a revision
 * (cluster_id, member_id, raft_term) and the members, each as
 * `{"ID","name","peerURLs","clientURLs","isLearner"}` with empty fields omitted (a member
 * added but not started has no name and no client URLs). transfer-leadership answers `{}`.
 */
import { urlProblem } from '../config/values.js';
import type { Member } from '../cluster/membership.js';
import { EtcdError } from '../errors.js';
import { goJsonString } from './errors.js';
import { GoNumber, type JsonValue } from './gojson.js';
import { encodeHeader } from './v3-encode.js';
import type { Revision } from '../types.js';

/** ClusterHeader is the member APIs' header (no revision). */
export interface ClusterHeader {
  clusterId: number;
  memberId: number;
  raftTerm: number;
}

type Obj = { [k: string]: JsonValue };

function obj(json: JsonValue | undefined): Obj {
  if (json === undefined || json === null) return {};
  if (typeof json === 'object' && !Array.isArray(json) && !(json instanceof GoNumber)) return json;
  throw new EtcdError('INVALID_FIELD',
    `json: cannot unmarshal ${Array.isArray(json) ? 'array' : typeof json} into Go value of ` +
    'type map[string]json.RawMessage');
}

/** uint64 reads a member id: a JSON number or a string holding one; 0 when absent. Ids
 * beyond 2^53 become -1 (no member has them). */
function uint64(v: JsonValue | undefined): number {
  if (v === undefined || v === null) return 0;
  const raw = v instanceof GoNumber ? v.raw : typeof v === 'number' ? String(v)
    : typeof v === 'string' ? v : undefined;
  if (raw === undefined || !/^\d+$/.test(raw) || BigInt(raw) >= 2n ** 64n) {
    throw new EtcdError('INVALID_FIELD',
      `json: cannot unmarshal ${typeof v === 'string' ? 'string' : 'number ' + raw} into Go ` +
      'value of type uint64');
  }
  const n = Number(raw);
  return Number.isSafeInteger(n) ? n : -1;
}

/** peerUrls reads etcd's peerURLs: a list of http(s)://host:port URLs, at least one. */
function peerUrls(v: JsonValue | undefined): string[] {
  const bad = () => new EtcdError('MEMBER_BAD_URLS');
  if (v === undefined || v === null) throw bad();
  if (!Array.isArray(v) || v.length === 0) throw bad();
  const out: string[] = [];
  for (const u of v) {
    if (typeof u !== 'string' || urlProblem(u, true) !== undefined) throw bad();
    out.push(u);
  }
  return out;
}

function bool(v: JsonValue | undefined): boolean {
  if (v === undefined || v === null) return false;
  if (typeof v === 'boolean') return v;
  throw new EtcdError('INVALID_FIELD', 'json: cannot unmarshal into Go value of type bool');
}

/** decodeMemberAdd: {peerURLs, isLearner}. */
export function decodeMemberAdd(json: JsonValue | undefined):
  { peerURLs: string[]; isLearner: boolean } {
  const o = obj(json);
  return { peerURLs: peerUrls(o['peerURLs']), isLearner: bool(o['isLearner']) };
}

/** decodeMemberId: {ID} (remove, promote). */
export function decodeMemberId(json: JsonValue | undefined): { id: number } {
  return { id: uint64(obj(json)['ID']) };
}

/** decodeMemberUpdate: {ID, peerURLs}. */
export function decodeMemberUpdate(json: JsonValue | undefined):
  { id: number; peerURLs: string[] } {
  const o = obj(json);
  return { id: uint64(o['ID']), peerURLs: peerUrls(o['peerURLs']) };
}

/** decodeTransferLeadership: {targetID}. */
export function decodeTransferLeadership(json: JsonValue | undefined): { to: number } {
  return { to: uint64(obj(json)['targetID']) };
}

/** encodeMember writes one etcdserverpb.Member, empty fields omitted. */
export function encodeMember(m: Member): string {
  let s = `{"ID":"${m.id}"`;
  if (m.name !== '') s += `,"name":${goJsonString(m.name)}`;
  if (m.peerURLs.length > 0) s += `,"peerURLs":[${m.peerURLs.map(goJsonString).join(',')}]`;
  if (m.clientURLs.length > 0) {
    s += `,"clientURLs":[${m.clientURLs.map(goJsonString).join(',')}]`;
  }
  if (m.isLearner) s += ',"isLearner":true';
  return s + '}';
}

/** encodeMembersResponse writes member list/remove/update/promote's answer, and add's with
 * the member added. */
export function encodeMembersResponse(h: ClusterHeader, members: Member[], added?: Member):
  string {
  let s = `{"header":${encodeHeader({ ...h, revision: 0 as Revision })}`;
  if (added !== undefined) s += `,"member":${encodeMember(added)}`;
  if (members.length > 0) s += `,"members":[${members.map(encodeMember).join(',')}]`;
  return s + '}';
}
