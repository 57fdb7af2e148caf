import { Writable } from 'node:stream';
import type HyperExpress from 'hyper-express';
import type { LeaseMsg, LeaseReplies } from '../../actors/lease/messages.js';
import { ApiError, errorResponse, streamErrorResponse } from '../api/errors.js';
import { GoNumber, parseJsonBody, type JsonValue } from '../api/gojson.js';
import { base64FromBytes, utf8FromBytes } from '../bytes.js';
import type { ActorRef } from '../runtime/endpoint.js';
import { maxRequestBytes } from '../constants.js';
import type { Routes } from './server.js';
import { encodeHeader, JsonStreamSplitter, refusal } from './watch-routes.js';

/**
 * lease-routes: etcd 3.4's lease gateway paths and the seed's REST /v1/leases. Grants and
 * revokes go to the lease actor, which validates and forwards them to the Raft node (answered
 * after apply); keep-alive, time-to-live and listing are answered by the lease actor from
 * memory. src/api has no lease codecs yet, so the minimal ones live here (etcd's field names
 * "ID", "TTL", "grantedTTL", "keys"; int64 as strings; zeros omitted).
 */
export function registerLeaseRoutes(r: Routes): void {
  const lease = r.deps.system.gateway.ref<LeaseMsg, LeaseReplies>('lease');
  const kv = r.deps.kv;
  const hdr = (rev?: number) => encodeHeader(kv.header(rev ?? kv.knownRevision));
  for (const base of ['/v3', '/v3beta']) {
    r.json('post', `${base}/lease/grant`, async (body) => {
      checkRequestSize(body);
      const o = obj(parseJsonBody(body));
      const res = await lease.ask({
        type: 'LeaseGrant', id: int64(o['ID'], 'ID'), ttlSeconds: int64(o['TTL'], 'TTL'),
      });
      const g = res.response as { id: number; ttlSeconds: number };
      return [200, `{"header":${hdr(res.revision)}${i64('ID', g.id)}${i64('TTL', g.ttlSeconds)}}`];
    });
    for (const p of [`${base}/lease/revoke`, `${base}/kv/lease/revoke`]) {
      r.json('post', p, async (body) => {
        checkRequestSize(body);
        const id = int64(obj(parseJsonBody(body))['ID'], 'ID');
        const res = await lease.ask({ type: 'LeaseRevoke', id });
        return [200, `{"header":${hdr(res.revision)}}`];
      });
    }
    for (const p of [`${base}/lease/timetolive`, `${base}/kv/lease/timetolive`]) {
      r.json('post', p, async (body) => {
        checkRequestSize(body);
        const o = obj(parseJsonBody(body));
        const t = await lease.ask({
          type: 'LeaseTimeToLive', id: int64(o['ID'], 'ID'), keys: o['keys'] === true,
        });
        let s = `{"header":${hdr()}${i64('ID', t.id)}${i64('TTL', t.ttlSeconds)}`;
        s += i64('grantedTTL', t.grantedTtlSeconds);
        if (t.keys !== undefined && t.keys.length > 0) {
          s += `,"keys":[${t.keys.map((k) => `"${base64FromBytes(k)}"`).join(',')}]`;
        }
        return [200, s + '}'];
      });
    }
    for (const p of [`${base}/lease/leases`, `${base}/kv/lease/leases`]) {
      r.json('post', p, async (body) => {
        checkRequestSize(body);
        obj(parseJsonBody(body));
        const { ids } = await lease.ask({ type: 'LeaseLeases' });
        const list = ids.length === 0 ? ''
          : `,"leases":[${ids.map((id) => `{"ID":"${id}"}`).join(',')}]`;
        return [200, `{"header":${hdr()}${list}}`];
      });
    }
    r.server.post(`${base}/lease/keepalive`, (req, res) => keepAliveStream(r, lease, req, res));
  }

  // ---- /v1: REST, UTF-8 keys, camelCase, numbers as JSON numbers ----
  r.json('post', '/v1/leases', async (body) => {
    const o = obj(parseJsonBody(body));
    const res = await lease.ask({
      type: 'LeaseGrant', id: int64(o['id'], 'id'), ttlSeconds: int64(o['ttl'], 'ttl'),
    });
    const g = res.response as { id: number; ttlSeconds: number };
    return [200, JSON.stringify({ id: g.id, ttl: g.ttlSeconds, revision: res.revision })];
  });
  r.json('get', '/v1/leases', async () => {
    const { ids } = await lease.ask({ type: 'LeaseLeases' });
    return [200, JSON.stringify({ leases: ids.map((id) => ({ id })) })];
  });
  r.json('get', '/v1/leases/:id', async (_body, req) => {
    const id = pathId(req);
    const t = await lease.ask({ type: 'LeaseTimeToLive', id, keys: true });
    if (t.ttlSeconds === -1) throw new ApiError('LEASE_NOT_FOUND');
    return [200, JSON.stringify({
      id, ttl: t.ttlSeconds, grantedTtl: t.grantedTtlSeconds,
      keys: (t.keys ?? []).map(utf8FromBytes),
    })];
  });
  r.json('delete', '/v1/leases/:id', async (_body, req) => {
    const res = await lease.ask({ type: 'LeaseRevoke', id: pathId(req) });
    return [200, JSON.stringify({ revision: res.revision })];
  });
  r.json('post', '/v1/leases/:id/keepalive', async (_body, req) => {
    const id = pathId(req);
    const k = await lease.ask({ type: 'LeaseKeepAlive', id });
    if (k.ttlSeconds === 0) throw new ApiError('LEASE_NOT_FOUND');
    return [200, JSON.stringify({ id, ttl: k.ttlSeconds })];
  });
}

/**
 * keepAliveStream serves POST /v3/lease/keepalive as grpc-gateway does: each JSON object in
 * the request body is one LeaseKeepAliveRequest, answered in order by one
 * {"result":LeaseKeepAliveResponse} line; the response ends when the body has ended and every
 * answer is written. An error before the first answer is etcd's 500 stream error (recorded:
 * err-lease-keepalive-bad-json, err-lease-keepalive-truncated); after it, an error line.
 */
function keepAliveStream(
  r: Routes, lease: ActorRef<LeaseMsg, LeaseReplies>, req: HyperExpress.Request,
  res: HyperExpress.Response,
): void {
  const splitter = new JsonStreamSplitter();
  let chain: Promise<void> = Promise.resolve();
  let started = false;
  let failed = false;
  const fail = (e: unknown): void => {
    if (failed || res.closed) return;
    failed = true;
    const eb = streamErrorResponse(e);
    if (!started) {
      res.status(eb.status).type('json').send(eb.body);
    } else {
      const m = errorResponse(e);
      res.write(JSON.stringify({ error: {
        grpc_code: 2, http_code: 500, message: m.message, http_status: 'Internal Server Error',
      } }) + '\n');
      res.end();
    }
  };
  const one = (text: string): void => {
    chain = chain.then(async () => {
      if (failed || res.closed) return;
      let id: number;
      try {
        id = int64(obj(JSON.parse(text) as JsonValue)['ID'], 'ID');
      } catch (e) {
        if (e instanceof ApiError) throw e;
        throw new ApiError('MALFORMED_JSON', 'unexpected EOF');
      }
      const k = await lease.ask({ type: 'LeaseKeepAlive', id });
      if (!started) {
        started = true;
        res.status(200).type('json');
      }
      const h = encodeHeader(r.deps.kv.header(r.deps.kv.knownRevision));
      res.write(`{"result":{"header":${h}${i64('ID', k.id)}${i64('TTL', k.ttlSeconds)}}}\n`);
    }).catch(fail);
  };
  const refused = refusal(r);
  if (refused !== undefined) {
    res.status(refused.status).type('json').send(refused.body);
    return;
  }
  // hyper-express streams a request body only through pipe() ('data' listeners never fire).
  req.pipe(new Writable({
    write(chunk: Buffer, _enc, done) {
      try {
        for (const text of splitter.push(chunk.toString('utf8'))) one(text);
      } catch (e) {
        chain = chain.then(() => fail(e));
      }
      done();
    },
    final(done) {
      chain = chain.then(() => {
        if (failed || res.closed) return;
        if (splitter.pending) {
          fail(new ApiError('MALFORMED_JSON', 'unexpected EOF'));
          return;
        }
        if (!started) res.status(200).type('json').send('');
        else res.end();
      });
      done();
    },
  }));
}

function obj(v: JsonValue | undefined): Record<string, JsonValue> {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v) || v instanceof GoNumber) {
    throw new ApiError('INVALID_FIELD',
      'json: cannot unmarshal non-object into Go value of type etcdserverpb.LeaseRequest');
  }
  return v;
}

/** int64 reads a jsonpb int64: a JSON number or a numeric string (etcd takes both). */
function int64(v: JsonValue | undefined, field: string): number {
  if (v === undefined || v === null) return 0;
  if (typeof v === 'string') {
    if (!/^-?\d+$/.test(v)) {
      throw new ApiError('MALFORMED_JSON',
        `invalid character '${v[0] ?? '"'}' looking for beginning of value`);
    }
    v = Number(v);
  }
  if (typeof v !== 'number' || !Number.isInteger(v)) {
    throw new ApiError('INVALID_FIELD', `bad value for ${field}`);
  }
  if (!Number.isSafeInteger(v)) throw new ApiError('UNSAFE_INTEGER', `${field} out of range`);
  return v;
}

function i64(name: string, v: number): string {
  return v === 0 ? '' : `,"${name}":"${v}"`;
}

function pathId(req: HyperExpress.Request): number {
  const s = req.path_parameters['id'] ?? '';
  if (!/^-?\d+$/.test(s) || !Number.isSafeInteger(Number(s))) {
    throw new ApiError('BAD_REQUEST', 'lease id must be an integer');
  }
  return Number(s);
}

/** checkRequestSize refuses bodies over etcd's --max-request-bytes, as etcd does. */
function checkRequestSize(body: string): void {
  if (body.length * 3 > maxRequestBytes && Buffer.byteLength(body) > maxRequestBytes) {
    throw new ApiError('REQUEST_TOO_LARGE');
  }
}
