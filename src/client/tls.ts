import https from 'node:https';
import { Readable } from 'node:stream';

/**
 * tls: the client's TLS options (etcdctl's --cacert, --cert, --key,
 * --insecure-skip-tls-verify) and a fetch for https endpoints that honours them. Node's global
 * fetch takes no CA nor client certificate without the undici package, so an https endpoint
 * with TLS options is served by node:https, answering a standard `Response` (a streaming body,
 * for watches and keep-alives).
 */

/** ClientTlsOptions: PEM contents (not paths) of the CA bundle, certificate and key. */
export interface ClientTlsOptions {
  ca?: string | Buffer;
  cert?: string | Buffer;
  key?: string | Buffer;
  /** insecureSkipVerify accepts any server certificate (self-signed, --auto-tls). */
  insecureSkipVerify?: boolean;
}

/** httpsFetch is fetch over node:https with TLS options; a failure to connect rejects as
 * fetch does (TypeError "fetch failed" with the system error as its cause). */
export function httpsFetch(url: string, init: RequestInit, t: ClientTlsOptions):
  Promise<Response> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {};
    new Headers(init.headers).forEach((v, k) => {
      headers[k] = v;
    });
    const req = https.request(url, {
      method: init.method ?? 'GET', headers, agent: false,
      ...(t.ca === undefined ? {} : { ca: t.ca }),
      ...(t.cert === undefined ? {} : { cert: t.cert }),
      ...(t.key === undefined ? {} : { key: t.key }),
      rejectUnauthorized: t.insecureSkipVerify !== true,
    }, (res) => {
      const h = new Headers();
      for (const [k, v] of Object.entries(res.headers)) {
        if (v !== undefined) h.set(k, Array.isArray(v) ? v.join(', ') : v);
      }
      const status = res.statusCode ?? 0;
      const body = status === 204 || status === 304 ? null
        : Readable.toWeb(res) as unknown as ReadableStream<Uint8Array>;
      resolve(new Response(body, { status, headers: h }));
    });
    req.on('error', (e) => reject(Object.assign(new TypeError('fetch failed'), { cause: e })));
    const signal = init.signal;
    if (signal) {
      if (signal.aborted) req.destroy(signal.reason as Error);
      signal.addEventListener('abort', () => req.destroy(signal.reason as Error), { once: true });
    }
    req.end(typeof init.body === 'string' ? init.body : undefined);
  });
}
