import {
  decodeCompactionRequest, decodeDeleteRangeRequest, decodePutRequest, decodeRangeRequest,
  decodeStatusRequest, decodeTxnRequest, encodeCompactionResponse, encodeDeleteRangeResponse,
  encodePutResponse,
  encodeRangeResponse, encodeStatusResponse, encodeTxnResponse, etcdServerVersion, parseJsonBody,
} from '../api/v3.js';
import type {
  CompactionResponse, DeleteRangeResponse, PutResponse, TxnResponse,
} from '../mvcc/types.js';
import { errorTable } from '../errors.js';
import type { Routes } from './routes.js';

/**
 * v3-routes: etcd 3.4's JSON gateway (grpc-gateway) paths. Each handler decodes with
 * src/api/v3 (which gives etcd's exact errors), calls KvService, and encodes etcd's JSON.
 * etcd 3.4 serves the same API under /v3beta too; we answer both.
 */
export function registerV3Routes(r: Routes): void {
  const kv = r.deps.kv;
  for (const base of ['/v3', '/v3beta']) {
    r.json('post', `${base}/kv/range`, async (body, hreq) => {
      const req = decodeRangeRequest(parseJsonBody(body));
      await r.checkKv(hreq, req);
      const { header, response } = await kv.range(req);
      return [200, encodeRangeResponse(header, response)];
    });
    r.json('post', `${base}/kv/put`, async (body, hreq) => {
      const req = decodePutRequest(parseJsonBody(body));
      const { header, response } = await kv.write(req, await r.checkKv(hreq, req));
      return [200, encodePutResponse(header, response as PutResponse)];
    });
    r.json('post', `${base}/kv/deleterange`, async (body, hreq) => {
      const req = decodeDeleteRangeRequest(parseJsonBody(body));
      const { header, response } = await kv.write(req, await r.checkKv(hreq, req));
      return [200, encodeDeleteRangeResponse(header, response as DeleteRangeResponse)];
    });
    r.json('post', `${base}/kv/txn`, async (body, hreq) => {
      const req = decodeTxnRequest(parseJsonBody(body));
      const { header, response } = await kv.write(req, await r.checkKv(hreq, req));
      return [200, encodeTxnResponse(header, response as TxnResponse)];
    });
    r.json('post', `${base}/kv/compaction`, async (body, hreq) => {
      const req = decodeCompactionRequest(parseJsonBody(body));
      const { header, response } = await kv.write(req, await r.checkKv(hreq, req));
      return [200, encodeCompactionResponse(header, response as CompactionResponse)];
    });
    r.json('post', `${base}/maintenance/status`, async (body) => {
      decodeStatusRequest(parseJsonBody(body));
      const [st, dbSize] = await Promise.all([kv.status(), kv.dbSizeBytes()]);
      return [200, encodeStatusResponse(kv.header(st.revision), {
        version: etcdServerVersion, dbSizeBytes: dbSize, leader: st.leader,
        raftIndex: st.raftIndex, raftTerm: st.raftTerm, raftAppliedIndex: st.raftAppliedIndex,
        dbSizeInUseBytes: dbSize, isLearner: st.isLearner,
        ...(st.leader === 0 ? { errors: [errorTable.NO_LEADER.text] } : {}),
      })];
    });
  }
}
