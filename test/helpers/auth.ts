import http from 'node:http';
import https from 'node:https';
import { readReply } from './server.js';

/**
 * auth helpers: JSON calls with etcd's `Authorization` header (the raw token), and the first
 * message of a /v3/watch stream, for the auth and TLS tests.
 */

/** Reply is a status and the parsed JSON (or the text when it is not JSON). */
export interface Reply {
  status: number;
  json: any;
}

/** CallOptions: a token, and TLS settings for https URLs. */
export interface CallOptions {
  token?: string;
  method?: string;
  tls?: https.RequestOptions;
}

/** call sends one request (a connection of its own) and reads the whole answer. */
export function call(url: string, body: unknown = {}, opts: CallOptions = {}): Promise<Reply> {
  const data = typeof body === 'string' ? body : JSON.stringify(body);
  const headers: Record<string, string | number> = {
    'content-type': 'application/json', 'content-length': Buffer.byteLength(data),
  };
  if (opts.token !== undefined) headers['authorization'] = opts.token;
  const mod = url.startsWith('https:') ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.request(url, {
      method: opts.method ?? 'POST', agent: false, headers, ...(opts.tls ?? {}),
    }, (res) => readReply(res, resolve, reject));
    req.on('error', reject);
    req.end(data);
  });
}

/** firstWatchMessage opens /v3/watch with one create request and returns the first message
 * of the answer stream (then closes the stream). */
export function firstWatchMessage(url: string, create: object, token?: string): Promise<any> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (token !== undefined) headers['authorization'] = token;
    const req = http.request(`${url}/v3/watch`, { method: 'POST', agent: false, headers },
      (res) => {
        let buf = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          buf += d;
          const i = buf.indexOf('\n');
          if (i >= 0) {
            try {
              resolve(JSON.parse(buf.slice(0, i)));
            } catch (e) {
              reject(e);
            }
            req.destroy();
          }
        });
        res.on('error', () => undefined);
      });
    req.on('error', (e) => reject(e));
    // The body stays open (a watch stream); the first answer comes for the create.
    req.write(JSON.stringify({ create_request: create }) + '\n');
  });
}

/** b64 encodes text as etcd's JSON gateway expects. */
export function b64(s: string): string {
  return Buffer.from(s, 'utf8').toString('base64');
}
