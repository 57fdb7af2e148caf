import {
  decodeV1BatchRequest, decodeV1DeleteRequest, decodeV1GetRequest, decodeV1Key,
  decodeV1ListRequest, decodeV1PutRequest, decodeV1TxnRequest, encodeV1BatchResponse,
  encodeV1DeleteResponse, encodeV1GetResponse, encodeV1ListResponse, encodeV1PutResponse,
  encodeV1TxnResponse,
} from '../api/v1.js';
import { parseJsonBody } from '../api/v3.js';
import type { DeleteRangeResponse, PutResponse, TxnResponse } from '../mvcc/types.js';
import { v1ErrorBody } from './errors.js';
import type { Routes } from './routes.js';

/**
 * v1-routes: the seed's REST API (docs/api.md) over the same KvService as /v3: keys in the
 * path (they may contain '/'), UTF-8 values, one envelope for every answer.
 */
export function registerV1Routes(r: Routes): void {
  const kv = r.deps.kv;
  const keyOf = (path: string) => decodeV1Key(path.slice('/v1/key/'.length));
  r.json('put', '/v1/key/*', async (body, req) => {
    const put = decodeV1PutRequest(keyOf(req.path), parseJsonBody(body));
    const { header, response } = await kv.write(put, await r.checkKv(req, put));
    return [200, encodeV1PutResponse(header, response as PutResponse)];
  }, v1ErrorBody);
  r.json('get', '/v1/key/*', async (_body, req) => {
    const get = decodeV1GetRequest(keyOf(req.path), req.query_parameters);
    await r.checkKv(req, get);
    const { header, response } = await kv.range(get);
    return [200, encodeV1GetResponse(header, response)];
  }, v1ErrorBody);
  r.json('delete', '/v1/key/*', async (_body, req) => {
    const del = decodeV1DeleteRequest(keyOf(req.path), req.query_parameters);
    const { header, response } = await kv.write(del, await r.checkKv(req, del));
    return [200, encodeV1DeleteResponse(header, response as DeleteRangeResponse)];
  }, v1ErrorBody);
  r.json('get', '/v1/keys', async (_body, req) => {
    const list = decodeV1ListRequest(req.query_parameters);
    await r.checkKv(req, list);
    const { header, response } = await kv.range(list);
    return [200, encodeV1ListResponse(header, list, response)];
  }, v1ErrorBody);
  r.json('post', '/v1/txn', async (body, req) => {
    const txn = decodeV1TxnRequest(parseJsonBody(body));
    const { header, response } = await kv.write(txn, await r.checkKv(req, txn));
    return [200, encodeV1TxnResponse(header, response as TxnResponse)];
  }, v1ErrorBody);
  r.json('post', '/v1/batch', async (body, req) => {
    const batch = decodeV1BatchRequest(parseJsonBody(body));
    const { header, response } = await kv.write(batch, await r.checkKv(req, batch));
    return [200, encodeV1BatchResponse(header, response as TxnResponse)];
  }, v1ErrorBody);
}
