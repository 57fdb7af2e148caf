import type { PeerMsg, PeerReplies } from '../../actors/peer/messages.js';
import type { RaftMembersResp, RaftMsg, RaftReplies } from '../../actors/raft/messages.js';
import {
  type ClusterHeader, decodeMemberAdd, decodeMemberId, decodeMemberUpdate,
  decodeTransferLeadership, encodeMembersResponse,
} from '../api/cluster.js';
import { EtcdError } from '../errors.js';
import { parseJsonBody } from '../api/gojson.js';
import { failpoints } from '../cluster/setup.js';
import type { Routes } from './routes.js';

/**
 * cluster-routes: etcd 3.4's membership and leadership API on the JSON gateway —
 * /v3/cluster/member/{list,add,remove,update,promote} and
 * /v3/maintenance/transfer-leadership — answered by the Raft node (changes once applied),
 * plus the test-only fault hook /debug/peer-fault, which exists only when the process was
 * started with GOFAIL_FAILPOINTS=peer-fault.
 */
export function registerClusterRoutes(r: Routes): void {
  const raft = r.deps.system.gateway.ref<RaftMsg, RaftReplies>('raft');
  const kv = r.deps.kv;
  const answer = (res: RaftMembersResp, withMember: boolean): [number, string] => {
    const h: ClusterHeader = {
      clusterId: kv.clusterId, memberId: kv.memberId, raftTerm: res.raftTerm,
    };
    const m = res.response;
    return [200, encodeMembersResponse(h, m.members, withMember ? m.member : undefined)];
  };
  for (const base of ['/v3', '/v3beta']) {
    r.json('post', `${base}/cluster/member/list`, async (body) => {
      parseJsonBody(body);
      return answer(await raft.ask({ type: 'RaftMemberList' }), false);
    });
    r.json('post', `${base}/cluster/member/add`, async (body, req) => {
      const q = decodeMemberAdd(parseJsonBody(body));
      await r.checkAdmin(req);
      return answer(await raft.ask({ type: 'RaftMemberAdd', ...q }), true);
    });
    r.json('post', `${base}/cluster/member/remove`, async (body, req) => {
      const { id } = decodeMemberId(parseJsonBody(body));
      await r.checkAdmin(req);
      if (id <= 0) throw new EtcdError('MEMBER_NOT_FOUND');
      return answer(await raft.ask({ type: 'RaftMemberRemove', id }), false);
    });
    r.json('post', `${base}/cluster/member/update`, async (body, req) => {
      const { id, peerURLs } = decodeMemberUpdate(parseJsonBody(body));
      await r.checkAdmin(req);
      if (id <= 0) throw new EtcdError('MEMBER_NOT_FOUND');
      return answer(await raft.ask({ type: 'RaftMemberUpdate', id, peerURLs }), false);
    });
    r.json('post', `${base}/cluster/member/promote`, async (body, req) => {
      const { id } = decodeMemberId(parseJsonBody(body));
      await r.checkAdmin(req);
      if (id <= 0) throw new EtcdError('MEMBER_NOT_FOUND');
      return answer(await raft.ask({ type: 'RaftMemberPromote', id }), false);
    });
    r.json('post', `${base}/maintenance/transfer-leadership`, async (body, req) => {
      const { to } = decodeTransferLeadership(parseJsonBody(body));
      await r.checkAdmin(req);
      const st = await kv.status();
      // etcd checks leadership first: a follower answers "not leader" whatever the target.
      if (!st.isLeader) throw new EtcdError('NOT_LEADER');
      if (to <= 0) throw new EtcdError('BAD_LEADER_TRANSFEREE');
      await raft.ask({ type: 'RaftTransferLeader', to });
      return [200, '{}'];
    });
  }
  if (failpoints().includes('peer-fault')) {
    const peer = r.deps.system.gateway.ref<PeerMsg, PeerReplies>('peer');
    r.json('post', '/debug/peer-fault', async (body) => {
      const o = JSON.parse(body === '' ? '{}' : body) as { drop?: unknown; dropOut?: unknown };
      const ids = (v: unknown) => (Array.isArray(v) ? v.map((x) => Number(x)) : []);
      const drop = ids(o.drop);
      const dropOut = ids(o.dropOut);
      if (![...drop, ...dropOut].every((x) => Number.isSafeInteger(x) && x > 0)) {
        throw new EtcdError('BAD_REQUEST', 'drop and dropOut must list member ids');
      }
      return [200, JSON.stringify(await peer.ask({ type: 'PeerFault', drop, dropOut }))];
    });
  }
}
