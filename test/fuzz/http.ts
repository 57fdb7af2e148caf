import fc from 'fast-check';
import http from 'node:http';
import { JsonStreamSplitter } from '../../src/api/json-stream.js';
import { mutate, mutationArb, type Mutation } from './decoders.js';

/**
 * Fuzzing every HTTP route of a real server (/v3, /v1, the streams: /v3/watch,
 * /v3/lease/keepalive, /v1/watch) with generated and mutated requests. A case starts from a
 * VALID request of a route and damages it: a JSON value replaced by one of the wrong type, a
 * huge or negative number, bad base64, deep nesting, odd unicode; a field dropped or added;
 * the text itself cut, flipped or spliced; the path, the method, the headers changed.
 *
 * Invariants checked on every case (`checkCase`), against a server only the fuzzer uses:
 * - an answer within answerMsMax (a stream: its status and first line or event);
 * - no 5xx: every case is a client's request, valid or not (the server is not overloaded);
 * - an error is a clear one: JSON with etcd's {error, code, message} on /v3, the
 *   {ok:false, error:{code, message}} envelope on /v1 (a path no route serves: 404/405 text);
 * - nothing partially applied: after an error the store's revision is unchanged;
 * and after every batch (`checkAlive`): the server still serves a put and a get.
 *
 * Inputs around helper probe's open bugs are left out (see knownUnanswered).
 */

/** answerMsMax bounds the wait for an answer: generous, a hang not a slow machine. */
export const answerMsMax = 15_000;

/** bodyBytesMax keeps bodies small: oversized bodies are helper probe's (413) tests. */
const bodyBytesMax = 64 * 1024;

/** Route is one request shape the server serves, with valid bodies to start from. */
interface Route {
  method: string;
  path: string | (() => fc.Arbitrary<string>);
  bodies: unknown[];
  stream?: 'lines' | 'sse';
  /** fixed: only bodies that cannot succeed (member changes would break the cluster). */
  fixed?: boolean;
}

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
const k = b64('fuzz/k');
const kEnd = b64('fuzz/l');

/** routes: every route with valid bodies (etcd 3.4's JSON gateway, and /v1). */
const routes: Route[] = [
  { method: 'POST', path: '/v3/kv/range', bodies: [{ key: k }, { key: k, range_end: kEnd,
    limit: 10, revision: 0, sort_order: 'ASCEND', sort_target: 'KEY', serializable: true,
    keys_only: false, count_only: false, min_mod_revision: 0 },
  { key: 'AA==', range_end: 'AA==' }] },
  { method: 'POST', path: '/v3/kv/put', bodies: [{ key: k, value: b64('v') },
    { key: k, value: b64('v'), prev_kv: true, ignore_lease: false }] },
  { method: 'POST', path: '/v3/kv/deleterange', bodies: [{ key: k, range_end: kEnd,
    prev_kv: true }] },
  { method: 'POST', path: '/v3/kv/txn', bodies: [{
    compare: [{ key: k, target: 'VERSION', result: 'EQUAL', version: 0 },
      { key: k, target: 'VALUE', result: 'NOT_EQUAL', value: b64('x') },
      { key: k, target: 'MOD', result: 'LESS', mod_revision: 100, range_end: kEnd }],
    success: [{ request_put: { key: k, value: b64('t') } },
      { request_range: { key: k, range_end: kEnd } }],
    failure: [{ request_delete_range: { key: k } },
      { request_txn: { success: [{ request_put: { key: b64('fuzz/n'), value: 'AA==' } }] } }],
  }] },
  { method: 'POST', path: '/v3/kv/compaction', bodies: [{ revision: 1, physical: true }] },
  { method: 'POST', path: '/v3/lease/grant', bodies: [{ TTL: 3600 }, { TTL: 3600, ID: 424242 }] },
  { method: 'POST', path: '/v3/lease/revoke', bodies: [{ ID: 424242 }] },
  { method: 'POST', path: '/v3/kv/lease/revoke', bodies: [{ ID: '424243' }] },
  { method: 'POST', path: '/v3/lease/timetolive', bodies: [{ ID: 424242, keys: true }] },
  { method: 'POST', path: '/v3/kv/lease/timetolive', bodies: [{ ID: 1 }] },
  { method: 'POST', path: '/v3/lease/leases', bodies: [{}] },
  { method: 'POST', path: '/v3/kv/lease/leases', bodies: [{}] },
  { method: 'POST', path: '/v3/maintenance/status', bodies: [{}] },
  { method: 'POST', path: '/v3/cluster/member/list', bodies: [{}, { linearizable: true }] },
  { method: 'POST', path: '/v3/maintenance/transfer-leadership', bodies: [{ targetID: 12345 }] },
  // Member changes that succeeded would change the fuzzed server's quorum: only bodies that
  // must be refused (wrong types, unknown members, bad URLs).
  { method: 'POST', path: '/v3/cluster/member/add', fixed: true, bodies: [{ peerURLs: 'x' },
    { peerURLs: [1] }, { peerURLs: ['not a url'] }, { peerURLs: [] }, { isLearner: 'yes' }] },
  { method: 'POST', path: '/v3/cluster/member/remove', fixed: true,
    bodies: [{ ID: 1 }, { ID: 'x' }, { ID: -1 }, {}] },
  { method: 'POST', path: '/v3/cluster/member/update', fixed: true,
    bodies: [{ ID: 1, peerURLs: ['http://127.0.0.1:1'] }, { ID: 2 ** 64 }, { peerURLs: 7 }] },
  { method: 'POST', path: '/v3/cluster/member/promote', fixed: true,
    bodies: [{ ID: 1 }, { ID: [] }, {}] },
  { method: 'POST', path: '/v3/watch', stream: 'lines', bodies: [
    { create_request: { key: k, range_end: kEnd, start_revision: 1, prev_kv: true,
      progress_notify: true, filters: ['NOPUT'], watch_id: 7, fragment: true } },
    { create_request: { key: k } }] },
  { method: 'POST', path: '/v3/lease/keepalive', stream: 'lines',
    bodies: [{ ID: 424242 }, { ID: '1' }] },
  { method: 'PUT', path: () => keyPathArb, bodies: [{ value: 'hello' },
    { value: 'x', prevKV: true }] },
  { method: 'GET', path: () => keyPathArb.map((p) => p + '?revision=0'), bodies: [''] },
  { method: 'DELETE', path: () => keyPathArb.map((p) => p + '?prefix=true&prevKV=true'),
    bodies: [''] },
  { method: 'GET', path: () => fc.constantFrom('/v1/keys?prefix=fuzz%2F&limit=5&keysOnly=true',
    '/v1/keys?from=a&to=z&revision=0&cursor=YQ', '/v1/keys'), bodies: [''] },
  { method: 'POST', path: '/v1/txn', bodies: [{
    compare: [{ key: 'fuzz/a', target: 'version', op: '==', value: 0 }],
    success: [{ op: 'put', key: 'fuzz/a', value: 'me' }, { op: 'get', key: 'fuzz/', prefix: true }],
    failure: [{ op: 'delete', key: 'fuzz/a', prevKV: true }],
  }] },
  { method: 'POST', path: '/v1/batch', bodies: [{ ops: [
    { op: 'put', key: 'fuzz/b', value: '1' }, { op: 'delete', key: 'fuzz/c', prefix: true }] }] },
  { method: 'POST', path: '/v1/leases', bodies: [{ ttl: 3600 }, { ttl: 3600, id: 424244 }] },
  { method: 'GET', path: '/v1/leases', bodies: [''] },
  { method: 'GET', path: () => leaseIdPathArb, bodies: [''] },
  { method: 'DELETE', path: () => leaseIdPathArb, bodies: [''] },
  { method: 'POST', path: () => leaseIdPathArb.map((p) => p + '/keepalive'), bodies: [''] },
  { method: 'POST', path: '/v1/watch', stream: 'sse', bodies: [{ key: 'fuzz/', prefix: true,
    prevKV: true, startRevision: 1 }] },
  { method: 'GET', path: () => fc.constantFrom('/v1/watch?key=fuzz%2F&prefix=true&prevKV=true',
    '/v1/watch?key=a&startRevision=1', '/v1/watch?key='), stream: 'sse', bodies: [''] },
  { method: 'GET', path: () => fc.constantFrom('/health', '/version', '/metrics'), bodies: [''] },
];

/** keyPathArb: /v1/key/ and a key: text, percent-encoded unicode, slashes, bad escapes. */
const keyPathArb: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom('fuzz/a', 'fuzz%2Fb', '%E2%82%AC', '%zz', '%', '%C0%80', '%ED%A0%80', 'a//b',
    '..', '.', '%00', 'x'.repeat(3000)),
  fc.string({ unit: 'grapheme', maxLength: 30 }).map((s) => encodeURIComponent(s)),
).map((key) => `/v1/key/${key}`);

/** leaseIdPathArb: /v1/leases/<id> with odd ids. */
const leaseIdPathArb: fc.Arbitrary<string> = fc.constantFrom('424244', '0', '-1', 'abc',
  '99999999999999999999999', '1e3', '0x10', '', '%20', '9007199254740993')
  .map((id) => `/v1/leases/${id}`);

/** oddValues replace a JSON value: wrong types, edge numbers, bad base64, odd text. */
const oddValueArb: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(null, true, false, 0, -1, 1.5, -0.0, 1e308, -1e308, 2 ** 53, 2 ** 63, 2 ** 64,
    '', ' ', 'not base64!', 'AAA', '====', 'A', '-_-_', '9223372036854775808',
    '-9223372036854775809', '18446744073709551616', '1e3', 'NaN', 'Infinity', '0x10', '\u0000',
    '\ud800', '漢字', '😀', '\u202e', [], {}, [[]], { '': '' }, 'ASCEND', 'NOPE'),
  fc.integer(), fc.double(), fc.string({ maxLength: 20 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.nat(200).map((depth) => nest(depth)),
);

/** nest builds a value nested `depth` arrays/objects deep. */
function nest(depth: number): unknown {
  let v: unknown = 0;
  for (let i = 0; i < depth; i++) v = i % 2 === 0 ? [v] : { a: v };
  return v;
}

/** JsonEdit is one structural change of a JSON body; `at` picks the place (a fraction). */
type JsonEdit =
  | { kind: 'replace'; at: number; value: unknown }
  | { kind: 'drop'; at: number }
  | { kind: 'add'; at: number; name: string; value: unknown }
  | { kind: 'wrap'; at: number };

const jsonEditArb: fc.Arbitrary<JsonEdit> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('replace' as const),
    at: fc.double({ min: 0, max: 1, noNaN: true }), value: oddValueArb }) },
  fc.record({ kind: fc.constant('drop' as const), at: fc.double({ min: 0, max: 1, noNaN: true }) }),
  fc.record({ kind: fc.constant('add' as const), at: fc.double({ min: 0, max: 1, noNaN: true }),
    name: fc.oneof(fc.constantFrom('key', 'value', 'ID', 'lease', '__proto__', 'constructor',
      'create_request', 'cancel_request', 'progress_request', 'TTL'), fc.string({ maxLength: 8 })),
    value: oddValueArb }),
  fc.record({ kind: fc.constant('wrap' as const), at: fc.double({ min: 0, max: 1, noNaN: true }) }),
);

/** slots lists every place in v that an edit can touch: [parent, name] pairs. */
function slots(v: unknown, out: [Record<string, unknown> | unknown[], string | number][] = []):
  [Record<string, unknown> | unknown[], string | number][] {
  if (Array.isArray(v)) {
    v.forEach((x, i) => {
      out.push([v, i]);
      slots(x, out);
    });
  } else if (typeof v === 'object' && v !== null) {
    for (const [name, x] of Object.entries(v)) {
      out.push([v as Record<string, unknown>, name]);
      slots(x, out);
    }
  }
  return out;
}

/** editJson applies edits to a deep copy of body (the root is replaced when it has no slot). */
function editJson(body: unknown, edits: readonly JsonEdit[]): unknown {
  let root = structuredClone(body);
  for (const e of edits) {
    const all = slots(root);
    if (all.length === 0) {
      if (e.kind === 'replace') root = e.value;
      else if (e.kind === 'wrap') root = [root];
      else if (e.kind === 'add' && typeof root === 'object' && root !== null) {
        Object.defineProperty(root, e.name,
          { value: e.value, enumerable: true, writable: true, configurable: true });
      }
      continue;
    }
    const [parent, name] = all[Math.min(all.length - 1, Math.floor(e.at * all.length))]!;
    const p = parent as Record<string | number, unknown>;
    switch (e.kind) {
      case 'replace':
        p[name] = e.value;
        break;
      case 'drop':
        if (Array.isArray(parent)) parent.splice(name as number, 1);
        else delete p[name];
        break;
      case 'wrap':
        p[name] = [p[name]];
        break;
      case 'add': {
        const target = p[name];
        if (typeof target === 'object' && target !== null && !Array.isArray(target)) {
          Object.defineProperty(target, e.name,
            { value: e.value, enumerable: true, writable: true, configurable: true });
        }
        break;
      }
    }
  }
  return root;
}

/** HttpCase is one request to send. */
export interface HttpCase {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: Uint8Array;
  stream: 'lines' | 'sse' | undefined;
  /** route: the route the case came from (for the report). */
  route: string;
}

const methodArb = fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD');

const headerArb: fc.Arbitrary<Record<string, string>> = fc.record({
  'content-type': fc.constantFrom('application/json', 'text/plain',
    'application/json; charset=utf-16', 'multipart/form-data; boundary=x', '', 'a/b/c',
    'application/grpc'),
  extra: fc.array(fc.tuple(
    fc.constantFrom('accept', 'x-fuzz', 'authorization', 'grpc-timeout', 'last-event-id',
      'accept-encoding', 'connection', 'te', 'expect', 'origin', 'cookie'),
    fc.oneof(fc.constantFrom('', 'gzip', '0', '-1', '99999999999999999999', 'close', 'trailers',
      '100-continue', 'Bearer x', '*/*'), fc.stringMatching(/^[\x20-\x7e]{0,40}$/))),
  { maxLength: 3 }),
}, { requiredKeys: [] }).map((h) => {
  const out: Record<string, string> = {};
  if (h['content-type'] !== undefined) out['content-type'] = h['content-type'];
  for (const [n, v] of h.extra ?? []) out[n] = v.trim();
  return out;
});

const enc = new TextEncoder();

/** caseArb generates one case: a route, a valid body, then damage. */
export const caseArb: fc.Arbitrary<HttpCase> = fc.constantFrom(...routes).chain((r) => fc.record({
  path: typeof r.path === 'string' ? fc.oneof(
    { weight: 9, arbitrary: fc.constant(r.path) },
    { weight: 1, arbitrary: fc.constantFrom(r.path + '/', r.path + '?x=%zz', r.path + '//',
      r.path.toUpperCase(), r.path + '/../range', '/v3/kv/', '/v3', '/v2/keys/a', '/v1/key/',
      '/' + 'a/'.repeat(500), '/v3/kv/range%00') },
  ) : r.path(),
  method: fc.oneof({ weight: 9, arbitrary: fc.constant(r.method) }, methodArb),
  body: fc.constantFrom(...r.bodies),
  edits: r.fixed === true ? fc.constant([]) : fc.array(jsonEditArb, { maxLength: 3 }),
  bytes: r.fixed === true ? fc.constant([]) : fc.oneof(
    { weight: 4, arbitrary: fc.constant([] as Mutation[]) },
    fc.array(mutationArb, { minLength: 1, maxLength: 3 })),
  headers: headerArb,
  // A stream body of several messages: the same edited message repeated.
  repeat: r.stream === 'lines' ? fc.integer({ min: 1, max: 3 }) : fc.constant(1),
}).map((c) => {
  const edited = c.body === '' ? '' : JSON.stringify(editJson(c.body, c.edits)) ?? '';
  let body = mutate(enc.encode(edited.repeat(c.repeat)), c.bytes);
  if (body.length > bodyBytesMax) body = body.subarray(0, bodyBytesMax);
  return {
    method: c.method, path: c.path, headers: c.headers, body, stream: r.stream,
    route: `${r.method} ${typeof r.path === 'string' ? r.path : '(generated path)'}`,
  };
}));

/**
 * knownUnanswered: stream requests that get no answer today, which helper probe is fixing
 * (issue 13, "Requests that never get an answer"); cases like these are left out (each would
 * wait answerMsMax). Remove this filter once probe's fix has landed. Found by probing:
 * /v3/watch with `{"create_request": false}`, a progress_request or a cancel_request, and
 * /v3/lease/keepalive with an empty body. Found by this fuzzer: /v3/watch or
 * /v3/lease/keepalive with a top-level JSON string (`"x"`) — src/api/json-stream.ts's
 * JsonStreamSplitter skips a string outside any object and yields nothing, so nothing
 * answers; etcd 3.4 answers 500 "json: cannot unmarshal string into Go value of type …" —
 * and /v3/watch with an object that is no create_request (`{}`, `{"foo":1}`: etcd 3.4 too
 * leaves these unanswered).
 */
export function knownUnanswered(c: HttpCase): boolean {
  if (c.method !== 'POST' || c.stream !== 'lines') return false;
  const watch = c.path === '/v3/watch';
  if (!watch && c.path !== '/v3/lease/keepalive') return false;
  const text = new TextDecoder().decode(c.body);
  let values: string[];
  const splitter = new JsonStreamSplitter();
  try {
    values = splitter.push(text);
  } catch {
    return false; // refused at once
  }
  if (splitter.pending) return false; // a truncated body: refused at its end
  // What the splitter skipped (a top-level string) is not in any value.
  const skipped = values.reduce((rest, v) => rest.replace(v, ''), text).trim() !== '';
  if (skipped || values.length === 0) return true;
  if (!watch) return false;
  return values.some((v) => {
    let o: unknown;
    try {
      o = JSON.parse(v);
    } catch {
      return false;
    }
    if (typeof o !== 'object' || o === null || Array.isArray(o)) return false;
    const create = (o as Record<string, unknown>)['create_request'];
    return typeof create !== 'object' || create === null;
  });
}

/** Answer is what came back: status, content type and body (a stream's first line/event). */
export interface Answer {
  status: number;
  contentType: string;
  text: string;
}

/** send sends a case and resolves with its answer; rejects after answerMsMax. */
export function send(url: string, c: HttpCase): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = http.request({
      host: u.hostname, port: u.port, method: c.method, path: c.path, agent: false,
      headers: { ...c.headers, 'content-length': String(c.body.length) },
    });
    const timer = setTimeout(() => {
      req.destroy();
      reject(new Error(`no answer within ${answerMsMax} ms`));
    }, answerMsMax);
    const done = (a: Answer) => {
      clearTimeout(timer);
      req.destroy();
      resolve(a);
    };
    req.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    req.on('response', (res) => {
      const contentType = String(res.headers['content-type'] ?? '');
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        text += d;
        // A stream's answer is open-ended: its first line (or event) is enough.
        if (c.stream !== undefined && res.statusCode === 200) {
          const end = c.stream === 'lines' ? text.indexOf('\n') : text.indexOf('\n\n');
          if (end >= 0) done({ status: 200, contentType, text: text.slice(0, end) });
        }
      });
      res.on('end', () => done({ status: res.statusCode ?? 0, contentType, text }));
      res.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
    req.end(c.body);
  });
}

/** problem returns what is wrong with an answer, or undefined. */
export function problem(c: HttpCase, a: Answer): string | undefined {
  if (a.status === 500 && c.stream === 'lines' && etcdStreamError(a.text)) return undefined;
  if (a.status >= 500) return `status ${a.status}: ${a.text.slice(0, 300)}`;
  if (a.status < 400) return undefined;
  if ((a.status === 404 || a.status === 405) && a.contentType.startsWith('text/')) {
    return undefined; // no route serves this path/method: the server's plain-text answer
  }
  let j: any;
  try {
    j = JSON.parse(a.text);
  } catch {
    return `status ${a.status} with a body that is not JSON: ${a.text.slice(0, 200)}`;
  }
  if (c.path.startsWith('/v1/')) {
    if (j?.ok !== false || typeof j?.error?.code !== 'string' ||
      typeof j?.error?.message !== 'string' || j.error.message === '') {
      return `status ${a.status}: not the /v1 error envelope: ${a.text.slice(0, 200)}`;
    }
    return undefined;
  }
  if (typeof j?.error !== 'string' || typeof j?.message !== 'string' ||
    typeof j?.code !== 'number' || j.message === '') {
    return `status ${a.status}: not etcd's error JSON: ${a.text.slice(0, 200)}`;
  }
  return undefined;
}

/**
 * etcdStreamError: a stream route's refusal of a body it cannot decode, before any answer, is
 * etcd 3.4's own 500 with gRPC code 2 (Unknown) and Go's decoding text — checked against
 * /usr/bin/etcd: `curl localhost:2379/v3/lease/keepalive -d '{"ID":1.5}'` answers 500 {"error":
 * "json: cannot unmarshal number 1.5 into Go value of type int64", …, "code":2}; /v3/watch
 * with `xx` the same. The one 5xx a client mistake may get, for compatibility.
 */
function etcdStreamError(text: string): boolean {
  try {
    const j = JSON.parse(text) as { error?: unknown; message?: unknown; code?: unknown };
    // Not the server's own failure (INTERNAL is code 2 too): "etcdserver: internal error".
    return j.code === 2 && typeof j.error === 'string' && j.error === j.message &&
      !j.error.startsWith('etcdserver:');
  } catch {
    return false;
  }
}

/** post sends a JSON body over a connection of its own. */
function post(url: string, path: string, body: unknown): Promise<{ status: number; json: any }> {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(body);
    const req = http.request(url + path, { method: 'POST', agent: false,
      headers: { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        text += d;
      });
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) });
        } catch (e) {
          reject(new Error(`${path}: ${res.statusCode} ${text.slice(0, 200)}`, { cause: e }));
        }
      });
    });
    req.setTimeout(answerMsMax, () => req.destroy(new Error(`${path}: no answer`)));
    req.on('error', reject);
    req.end(data);
  });
}

/** revision reads the store's revision. */
export async function revision(url: string): Promise<number> {
  const r = await post(url, '/v3/kv/range', { key: 'AA==' });
  if (r.status !== 200) throw new Error(`range: ${r.status} ${JSON.stringify(r.json)}`);
  return Number(r.json.header.revision);
}

/** checkAlive: the server still serves a put and reads it back. */
export async function checkAlive(url: string): Promise<void> {
  const value = b64(`alive-${Math.random()}`);
  const p = await post(url, '/v3/kv/put', { key: b64('fuzz-alive'), value });
  if (p.status !== 200) throw new Error(`put after fuzzing: ${p.status}`);
  const g = await post(url, '/v3/kv/range', { key: b64('fuzz-alive') });
  if (g.status !== 200 || g.json.kvs?.[0]?.value !== value) {
    throw new Error(`get after fuzzing: ${g.status} ${JSON.stringify(g.json)}`);
  }
}

/** Stats counts what a run saw. */
export interface HttpStats {
  cases: number;
  byStatus: Map<number, number>;
  skippedKnown: number;
}

/** newStats starts the counts. */
export function newStats(): HttpStats {
  return { cases: 0, byStatus: new Map(), skippedKnown: 0 };
}

/**
 * checkCase sends one case and checks the invariants; throws with what went wrong. `rev`
 * holds the store's revision before the case and is updated after it.
 */
export async function checkCase(url: string, c: HttpCase, rev: { value: number },
  stats: HttpStats): Promise<void> {
  if (knownUnanswered(c)) {
    stats.skippedKnown++;
    return;
  }
  let a: Answer;
  try {
    a = await send(url, c);
  } catch (e) {
    throw new Error(`${c.method} ${c.path}: ${(e as Error).message}`);
  }
  stats.cases++;
  stats.byStatus.set(a.status, (stats.byStatus.get(a.status) ?? 0) + 1);
  const wrong = problem(c, a);
  if (wrong !== undefined) throw new Error(`${c.method} ${c.path}: ${wrong}`);
  const after = await revision(url);
  if (a.status >= 400 && after !== rev.value) {
    throw new Error(`${c.method} ${c.path}: refused (${a.status}) yet the revision moved from ` +
      `${rev.value} to ${after}: partially applied`);
  }
  rev.value = after;
}

/** describe prints a case for a report: method, path, headers and the body as text. */
export function describe(c: HttpCase): string {
  return `${c.method} ${c.path} ${JSON.stringify(c.headers)} ` +
    JSON.stringify(new TextDecoder().decode(c.body));
}
