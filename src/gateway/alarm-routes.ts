import type { RaftAlarmResp, RaftMsg, RaftReplies } from '../../actors/raft/messages.js';
import type { AlarmRequest } from '../api/alarm.js';
import { decodeAlarmRequest, encodeAlarmResponse } from '../api/alarm.js';
import { parseJsonBody } from '../api/gojson.js';
import type { ActorRef } from '../runtime/endpoint.js';
import type { Routes } from './routes.js';

/**
 * askAlarm answers etcd's AlarmRequest through the Raft node (the JSON gateway and gRPC's
 * Maintenance.Alarm share it). Alarms are replicated (src/alarms.ts): ACTIVATE and
 * DEACTIVATE go through the log; GET first confirms a read index, so that the list holds
 * every alarm committed before it, and answers from what this member has when it cannot (no
 * leader, or its own disk fault: an informational list beats none while writes are refused).
 */
export async function askAlarm(raft: ActorRef<RaftMsg, RaftReplies>, q: AlarmRequest):
  Promise<RaftAlarmResp> {
  if (q.action === 'GET') await raft.ask({ type: 'RaftReadIndex' }).catch(() => undefined);
  return raft.ask({ type: 'RaftAlarm', ...q });
}

/**
 * alarm-routes: etcd 3.4's /v3/maintenance/alarm on the JSON gateway (`etcdctl alarm list`,
 * `etcdctl alarm disarm`): the cluster's alarms (src/alarms.ts): NOSPACE, raised by
 * --quota-backend-bytes or a full disk on any member, refuses puts, txns with a put and lease
 * grants on every member with "etcdserver: mvcc: database space exceeded" until it is
 * disarmed (DEACTIVATE).
 */
export function registerAlarmRoutes(r: Routes): void {
  const raft = r.deps.system.gateway.ref<RaftMsg, RaftReplies>('raft');
  const kv = r.deps.kv;
  for (const base of ['/v3', '/v3beta']) {
    r.json('post', `${base}/maintenance/alarm`, async (body) => {
      const res = await askAlarm(raft, decodeAlarmRequest(parseJsonBody(body)));
      return [200, encodeAlarmResponse({ ...kv.header(res.revision), raftTerm: res.raftTerm },
        res.response.alarms)];
    });
  }
}
