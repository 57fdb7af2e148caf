import type { RaftMsg, RaftReplies } from '../../actors/raft/messages.js';
import { decodeAlarmRequest, encodeAlarmResponse } from '../api/alarm.js';
import { parseJsonBody } from '../api/gojson.js';
import type { Routes } from './routes.js';

/**
 * alarm-routes: etcd 3.4's /v3/maintenance/alarm on the JSON gateway (`etcdctl alarm list`,
 * `etcdctl alarm disarm`), answered by the Raft node, which keeps this member's alarms
 * (src/alarms.ts): NOSPACE, raised by --quota-backend-bytes or a full disk, refuses puts,
 * txns with a put and lease grants with "etcdserver: mvcc: database space exceeded" until it
 * is disarmed (DEACTIVATE).
 */
export function registerAlarmRoutes(r: Routes): void {
  const raft = r.deps.system.gateway.ref<RaftMsg, RaftReplies>('raft');
  const kv = r.deps.kv;
  for (const base of ['/v3', '/v3beta']) {
    r.json('post', `${base}/maintenance/alarm`, async (body) => {
      const q = decodeAlarmRequest(parseJsonBody(body));
      const res = await raft.ask({ type: 'RaftAlarm', ...q });
      return [200, encodeAlarmResponse({ ...kv.header(res.revision), raftTerm: res.raftTerm },
        res.alarms)];
    });
  }
}
