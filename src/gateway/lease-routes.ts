import type HyperExpress from 'hyper-express';
import type { LeaseMsg, LeaseReplies } from '../../actors/lease/messages.js';
import { streamErrorResponse } from '../api/errors.js';
import { EtcdError, GrpcCode } from '../errors.js';
import {
  decodeV1LeaseGrantRequest, decodeV1LeaseId, encodeV1Lease, encodeV1LeaseList, encodeV1Ok,
} from '../api/v1.js';
import {
  decodeLeaseGrantRequest, decodeLeaseKeepAliveRequest, decodeLeaseLeasesRequest,
  decodeLeaseRevokeRequest, decodeLeaseTimeToLiveRequest, encodeLeaseGrantResponse,
  encodeLeaseKeepAliveResponse, encodeLeaseLeasesResponse, encodeLeaseRevokeResponse,
  encodeLeaseTimeToLiveResponse, parseJsonBody,
} from '../api/v3.js';
import type { ActorRef } from '../runtime/endpoint.js';
import { requestLimits } from '../api/limits.js';
import { streamErrorLine, v1ErrorBody } from './errors.js';
import type { Routes } from './routes.js';
import { bodyOpenError, ChunkedStream, readJsonStream } from './stream.js';

/**
 * lease-routes: etcd 3.4's lease gateway paths and the seed's REST /v1/leases. Grants and
 * revokes go to the lease actor, which validates and forwards them to the Raft node (answered
 * after apply); keep-alive, time-to-live and listing are answered by the lease actor from
 * memory. The /v3 codecs are src/api's (written against etcd's recorded answers); /v1 answers
 * use the /v1 envelope.
 */
export function registerLeaseRoutes(r: Routes): void {
  const lease = r.deps.system.gateway.ref<LeaseMsg, LeaseReplies>('lease');
  registerV3LeaseRoutes(r, lease);
  registerV1LeaseRoutes(r, lease);
}

/** LeaseRef is the gateway's handle on the lease actor. */
type LeaseRef = ActorRef<LeaseMsg, LeaseReplies>;

/** registerV3LeaseRoutes serves etcd's paths, under /v3 and /v3beta as etcd 3.4 does. */
function registerV3LeaseRoutes(r: Routes, lease: LeaseRef): void {
  const kv = r.deps.kv;
  const header = (rev?: number) => kv.header(rev ?? kv.knownRevision);
  for (const base of ['/v3', '/v3beta']) {
    r.json('post', `${base}/lease/grant`, async (body, req) => {
      checkRequestSize(body);
      const g = decodeLeaseGrantRequest(parseJsonBody(body));
      await r.who(req); // etcd refuses an invalid token here; any user may grant
      const res = await lease.ask({ type: 'LeaseGrant', id: g.id, ttlSeconds: g.ttlSeconds });
      const granted = res.response as { id: number; ttlSeconds: number };
      return [200, encodeLeaseGrantResponse(header(res.revision), {
        type: 'leaseGrant', id: granted.id, ttlSeconds: granted.ttlSeconds,
      })];
    });
    for (const p of [`${base}/lease/revoke`, `${base}/kv/lease/revoke`]) {
      r.json('post', p, async (body, req) => {
        checkRequestSize(body);
        const { id } = decodeLeaseRevokeRequest(parseJsonBody(body));
        await checkRevoke(r, lease, req, id);
        const res = await lease.ask({ type: 'LeaseRevoke', id });
        return [200, encodeLeaseRevokeResponse(header(res.revision))];
      });
    }
    for (const p of [`${base}/lease/timetolive`, `${base}/kv/lease/timetolive`]) {
      r.json('post', p, async (body) => {
        checkRequestSize(body);
        const q = decodeLeaseTimeToLiveRequest(parseJsonBody(body));
        const t = await lease.ask({ type: 'LeaseTimeToLive', id: q.id, keys: q.keys });
        return [200, encodeLeaseTimeToLiveResponse(header(), {
          type: 'leaseTimeToLive', id: t.id, ttlSeconds: t.ttlSeconds,
          grantedTtlSeconds: t.grantedTtlSeconds, ...(t.keys ? { keys: t.keys } : {}),
        })];
      });
    }
    for (const p of [`${base}/lease/leases`, `${base}/kv/lease/leases`]) {
      r.json('post', p, async (body) => {
        checkRequestSize(body);
        decodeLeaseLeasesRequest(parseJsonBody(body));
        const { ids } = await lease.ask({ type: 'LeaseLeases' });
        return [200, encodeLeaseLeasesResponse(header(), { type: 'leaseLeases', ids })];
      });
    }
    r.server.post(`${base}/lease/keepalive`, (req, res) => keepAliveStream(r, lease, req, res));
  }
}

/** registerV1LeaseRoutes serves the seed's REST paths: UTF-8 keys, camelCase, numbers as JSON
 * numbers, the /v1 envelope. */
function registerV1LeaseRoutes(r: Routes, lease: LeaseRef): void {
  const kv = r.deps.kv;
  const pathId = (req: HyperExpress.Request) => decodeV1LeaseId(req.path_parameters['id'] ?? '');
  r.json('post', '/v1/leases', async (body) => {
    const g = decodeV1LeaseGrantRequest(parseJsonBody(body));
    const res = await lease.ask({ type: 'LeaseGrant', id: g.id, ttlSeconds: g.ttlSeconds });
    return [200, encodeV1Lease(res.revision, res.response as { id: number; ttlSeconds: number })];
  }, v1ErrorBody);
  r.json('get', '/v1/leases', async () => {
    const { ids } = await lease.ask({ type: 'LeaseLeases' });
    return [200, encodeV1LeaseList(kv.knownRevision, ids)];
  }, v1ErrorBody);
  r.json('get', '/v1/leases/:id', async (_body, req) => {
    const id = pathId(req);
    const t = await lease.ask({ type: 'LeaseTimeToLive', id, keys: true });
    if (t.ttlSeconds === -1) throw new EtcdError('LEASE_NOT_FOUND');
    return [200, encodeV1Lease(kv.knownRevision, {
      id, ttlSeconds: t.ttlSeconds, grantedTtlSeconds: t.grantedTtlSeconds, keys: t.keys ?? [],
    })];
  }, v1ErrorBody);
  r.json('delete', '/v1/leases/:id', async (_body, req) => {
    await checkRevoke(r, lease, req, pathId(req));
    const res = await lease.ask({ type: 'LeaseRevoke', id: pathId(req) });
    return [200, encodeV1Ok(res.revision, '{}')];
  }, v1ErrorBody);
  r.json('post', '/v1/leases/:id/keepalive', async (_body, req) => {
    const id = pathId(req);
    const k = await lease.ask({ type: 'LeaseKeepAlive', id });
    if (k.ttlSeconds === 0) throw new EtcdError('LEASE_NOT_FOUND');
    return [200, encodeV1Lease(kv.knownRevision, { id, ttlSeconds: k.ttlSeconds })];
  }, v1ErrorBody);
}

/**
 * keepAliveStream serves POST /v3/lease/keepalive as grpc-gateway does: each JSON object in
 * the request body is one LeaseKeepAliveRequest, answered in order by one
 * {"result":LeaseKeepAliveResponse} message as soon as it arrives; the response ends when the
 * body has ended and every answer is written. Requests that arrive together are asked
 * together (the lease actor answers them in one batch) and answered in one send. An error
 * before the first answer is etcd's 500 stream error (recorded: err-lease-keepalive-bad-json,
 * err-lease-keepalive-truncated); after it, an error line, as grpc-gateway writes it (gRPC
 * Unknown, as etcd reports it). A body still open after streamBodyOpenMsMax ends the stream
 * with an error line at once (see stream.ts).
 */
function keepAliveStream(
  r: Routes, lease: LeaseRef, req: HyperExpress.Request,
  res: HyperExpress.Response,
): void {
  const refused = r.refusal();
  if (refused !== undefined) {
    res.status(refused.status).header('content-type', 'application/json').send(refused.body);
    return;
  }
  const ka = new KeepAliveStream(r, lease, res, new ChunkedStream(req, res, 'application/json'));
  readJsonStream(req, {
    values: (texts) => ka.batch(texts),
    end: (pending) => ka.bodyEnd(pending),
    error: (e) => ka.later(() => ka.fail(e)),
    deadline() {
      // Now, not after the answers in flight: uWS would cut the socket under them.
      ka.stream.start();
      ka.fail(bodyOpenError(), [], GrpcCode.Unavailable);
    },
  });
}

/** KeepAliveStream is one /v3/lease/keepalive response: answers in request order. */
class KeepAliveStream {
  /** chain orders the answers (and the end) as the requests arrived. */
  private chain: Promise<void> = Promise.resolve();
  private failed = false;
  private batchesQueued = 0;
  private bodyEnded: 'no' | 'whole' | 'truncated' = 'no';

  constructor(
    private readonly r: Routes,
    private readonly lease: ActorRef<LeaseMsg, LeaseReplies>,
    private readonly res: HyperExpress.Response,
    readonly stream: ChunkedStream,
  ) {}

  /** later runs fn after every answer queued so far (a throw fails the stream). */
  later(fn: () => void | Promise<void>): void {
    this.chain = this.chain.then(fn).catch((e: unknown) => this.fail(e));
  }

  /** batch asks the requests of one body chunk together and answers them in one send. */
  batch(texts: string[]): void {
    this.batchesQueued++;
    let error: unknown;
    const asks: Promise<{ id: number; ttlSeconds: number }>[] = [];
    for (const text of texts) {
      try {
        const { id } = decodeLeaseKeepAliveRequest(parseJsonBody(text));
        asks.push(this.lease.ask({ type: 'LeaseKeepAlive', id }));
      } catch (e) {
        error = e;
        break;
      }
    }
    const settled = Promise.allSettled(asks);
    this.later(async () => {
      const results = await settled;
      this.batchesQueued--;
      if (this.failed || this.stream.closed) return;
      const header = this.r.deps.kv.header(this.r.deps.kv.knownRevision);
      const answers: string[] = [];
      for (const x of results) {
        if (x.status === 'rejected') {
          error = x.reason;
          break;
        }
        answers.push(encodeLeaseKeepAliveResponse(header, {
          type: 'leaseKeepAlive', id: x.value.id, ttlSeconds: x.value.ttlSeconds,
        }));
      }
      if (error !== undefined) this.fail(error, answers);
      else if (this.bodyEnded === 'whole' && this.batchesQueued === 0) this.stream.end(answers);
      else this.stream.write(answers);
    });
  }

  /** bodyEnd: the request body has ended (pending: inside a value). */
  bodyEnd(pending: boolean): void {
    this.bodyEnded = pending ? 'truncated' : 'whole';
    this.later(() => {
      if (pending) this.fail(new EtcdError('MALFORMED_JSON', 'unexpected EOF'));
      else this.stream.end();
    });
  }

  /** fail ends the stream with `answers` and an error: the error line once started, else
   * etcd's plain 500 answer. */
  fail(e: unknown, answers: string[] = [], grpcCode: number = GrpcCode.Unknown): void {
    if (this.failed || this.stream.closed) return;
    this.failed = true;
    if (this.stream.isStarted || answers.length > 0) {
      this.stream.end([...answers, streamErrorLine(e, grpcCode)]);
      return;
    }
    const eb = streamErrorResponse(e);
    this.res.status(eb.status).header('content-type', 'application/json').send(eb.body);
  }
}

/** checkRequestSize refuses bodies over etcd's --max-request-bytes, as etcd does. */
function checkRequestSize(body: string): void {
  const max = requestLimits().requestBytesMax;
  if (body.length * 3 > max && Buffer.byteLength(body) > max) {
    throw new EtcdError('REQUEST_TOO_LARGE');
  }
}

/** checkRevoke: revoking a lease deletes its keys, so the caller needs write access to each
 * (etcd's checkLeasePuts). The keys are read just before the revoke is proposed; a key
 * attached in between is not checked (etcd checks at apply time; see docs/security.md). */
async function checkRevoke(r: Routes, lease: LeaseRef, req: HyperExpress.Request,
  id: number): Promise<void> {
  const gate = r.deps.auth;
  if (gate === undefined) return;
  const by = await gate.who(req);
  if (!gate.store.enabled) return;
  const t = await lease.ask({ type: 'LeaseTimeToLive', id, keys: true });
  gate.checkLeaseRevoke(by, t.keys ?? []);
}
