import test, { type ExecutionContext } from 'ava';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { b64, grpcUrl, post, startServer, type TestServer } from './helpers/server.js';

// Real clients on a quiet key (issue 10): a Python client that reads chunk by chunk (the
// standard library, reading chunks as urllib3 does, and `requests` where it is installed),
// curl, and a browser's EventSource in headless Chromium. Each must show the event of a put
// before anything else is written: the test waits for it (generously) and writes nothing
// more meanwhile, so a message held back until the next write fails the test.

const waitMs = 20_000;

let srv: TestServer;
const children: ChildProcess[] = [];

test.before(async () => {
  srv = await startServer();
});

test.after.always(async () => {
  for (const c of children) killGroup(c);
  await srv?.stop();
  await srv?.cleanup();
});

/** killGroup ends a child started with `detached: true` (its own process group) and
 * everything it started, even once the child itself has exited (Chromium's helpers). */
function killGroup(c: ChildProcess): void {
  if (c.pid === undefined) return;
  try {
    process.kill(-c.pid, 'SIGKILL');
  } catch {
    // gone already
  }
}

function has(cmd: string, args: string[]): boolean {
  return spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;
}

async function put(key: string, value: string): Promise<void> {
  const r = await post(`${srv.url}/v3/kv/put`, { key: b64(key), value: b64(value) });
  if (r.status !== 200) throw new Error(`put: ${r.status}`);
}

/** Lines collects a child's stdout lines and waits for one that matches. */
class Lines {
  private readonly got: string[] = [];
  private wake: (() => void) | undefined;
  private exited: string | undefined;
  constructor(readonly child: ChildProcess) {
    children.push(child);
    let buf = '';
    let err = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        this.got.push(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
      this.wake?.();
    });
    child.stderr?.setEncoding('utf8').on('data', (d: string) => {
      err += d;
    });
    child.once('exit', (code, signal) => {
      this.exited = `exited (${code ?? signal}): ${err.slice(-2_000)}`;
      this.wake?.();
    });
  }

  /** until resolves with the first line (from the start) that satisfies pred. */
  async until(pred: (line: string) => boolean): Promise<string> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      const line = this.got.find(pred);
      if (line !== undefined) return line;
      if (this.exited !== undefined) throw new Error(this.exited);
      if (Date.now() > deadline) throw new Error(`no such line in:\n${this.got.join('\n')}`);
      await new Promise<void>((r) => {
        this.wake = r;
        setTimeout(r, 250);
      });
    }
  }
}

/** quietKey puts twice on a watched key, waiting for each event before the next write. */
async function quietKey(t: ExecutionContext, lines: Lines, key: string,
  event: (value: string) => (line: string) => boolean): Promise<void> {
  for (const value of ['first', 'second']) {
    const t0 = performance.now();
    await put(key, value);
    await lines.until(event(value));
    t.log(`${value}: shown ${(performance.now() - t0).toFixed(1)} ms after the put was sent`);
  }
  t.pass();
}

// The Python client prints one JSON line per message; each HTTP chunk must hold one whole
// JSON message, as the Python etcd gateway clients (etcd3gw) read it.
const pythonClient = String.raw`
import base64, http.client, json, sys
mode, url, key = sys.argv[1], sys.argv[2], sys.argv[3]
body = json.dumps({"create_request": {"key": base64.b64encode(key.encode()).decode()}})
host, port = url.split("//")[1].split(":")
if mode == "requests":
    import requests
    session = requests.Session()
    session.trust_env = False  # no proxy from the environment for a loopback server
    resp = session.post(url + "/v3/watch", data=body, stream=True)
    chunks = resp.iter_content(chunk_size=None)
else:
    conn = http.client.HTTPConnection(host, int(port))
    conn.request("POST", "/v3/watch", body=body, headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    assert resp.status == 200 and resp.chunked, (resp.status, resp.getheaders())
    def strict_chunks(fp):
        # urllib3's read_chunked: a chunk counts once its data AND its CRLF have been read.
        while True:
            size = int(fp.readline().split(b";", 1)[0], 16)
            if size == 0:
                return
            data = fp.read(size)
            if fp.read(2) != b"\r\n":
                raise ValueError("chunk data not followed by CRLF")
            yield data
    chunks = strict_chunks(resp.fp)
for c in chunks:
    text = c.decode("utf-8")
    if not text.strip():
        continue  # whitespace between messages (etcd sends such chunks too)
    print(json.dumps(json.loads(text)), flush=True)
`;

const python = has('python3', ['-c', 'import http.client']);
// `requests` may be installed for the PATH's python3 (pip) or for Debian's (python3-requests).
const pythonWithRequests = ['python3', '/usr/bin/python3']
  .find((bin) => has(bin, ['-c', 'import requests']));
const pythonRequests = python && pythonWithRequests !== undefined;

const pythonTest = (mode: 'stdlib' | 'requests') => async (t: ExecutionContext) => {
  const key = `python-${mode}`;
  const bin = mode === 'requests' ? pythonWithRequests! : 'python3';
  const lines = new Lines(spawn(bin, ['-c', pythonClient, mode, srv.url, key],
    { stdio: ['ignore', 'pipe', 'pipe'], detached: true }));
  await lines.until((l) => (JSON.parse(l) as { result?: { created?: boolean } }).result
    ?.created === true);
  await quietKey(t, lines, key, (value) => (l) => l.includes(`"value": "${b64(value)}"`));
};

if (python) {
  test('a Python client reading chunk by chunk (stdlib, as urllib3 reads) sees each event at once',
    pythonTest('stdlib'));
} else {
  test.skip('a Python client reading chunk by chunk: python3 is not installed', () => {});
}
if (pythonRequests) {
  test('a Python `requests` client (iter_content, one chunk = one message) sees each event',
    pythonTest('requests'));
} else {
  test.skip('a Python `requests` client: the requests module is not installed', () => {});
}

const curl = has('curl', ['--version']);
(curl ? test : test.skip)('curl sees each event of a quiet key at once', async (t) => {
  const key = 'curl/a';
  const lines = new Lines(spawn('curl', ['-sSN', '--no-buffer', '--noproxy', '*', '-X', 'POST',
    '--data-binary',
    JSON.stringify({ create_request: { key: b64(key) } }), `${srv.url}/v3/watch`],
  { stdio: ['ignore', 'pipe', 'pipe'], detached: true }));
  await lines.until((l) => l.includes('"created":true'));
  await quietKey(t, lines, key, (value) => (l) => l.includes(`"value":"${b64(value)}"`));
});

/**
 * Cdp speaks the DevTools protocol over Chromium's --remote-debugging-pipe: JSON messages
 * separated by NUL bytes on file descriptors 3 (to the browser) and 4 (from it).
 */
class Cdp {
  private nextId = 1;
  private readonly replies = new Map<number, (m: CdpMessage) => void>();
  readonly events: CdpMessage[] = [];
  private wake: (() => void) | undefined;
  constructor(private readonly proc: ChildProcess) {
    let buf = '';
    (proc.stdio[4] as NodeJS.ReadableStream).setEncoding('utf8');
    (proc.stdio[4] as NodeJS.ReadableStream).on('data', (d: string) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\0')) >= 0) {
        const m = JSON.parse(buf.slice(0, i)) as CdpMessage;
        buf = buf.slice(i + 1);
        const reply = m.id === undefined ? undefined : this.replies.get(m.id);
        if (reply !== undefined) reply(m);
        else this.events.push(m);
        this.wake?.();
      }
    });
  }

  async send(method: string, params: object = {}, sessionId?: string): Promise<any> {
    const id = this.nextId++;
    const reply = new Promise<CdpMessage>((resolve) => this.replies.set(id, resolve));
    (this.proc.stdio[3] as NodeJS.WritableStream)
      .write(JSON.stringify({ id, method, params, sessionId }) + '\0');
    const m = await reply;
    if (m.error !== undefined) throw new Error(`${method}: ${JSON.stringify(m.error)}`);
    return m.result;
  }

  /** event resolves with the first event (from the start) that satisfies pred. */
  async event(pred: (m: CdpMessage) => boolean): Promise<CdpMessage> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      const m = this.events.find(pred);
      if (m !== undefined) return m;
      if (Date.now() > deadline) {
        throw new Error(`no such event in ${JSON.stringify(this.events).slice(-2_000)}`);
      }
      await new Promise<void>((r) => {
        this.wake = r;
        setTimeout(r, 250);
      });
    }
  }
}

interface CdpMessage {
  id?: number;
  method?: string;
  params?: any;
  result?: any;
  error?: unknown;
  sessionId?: string;
}

const chromium = existsSync('/usr/bin/chromium');

/** pageAt starts headless Chromium (stopped at the test's end), opens `url` in a tab and gives
 * the tab's session, with a `report(text)` binding its scripts call. */
async function pageAt(t: ExecutionContext, url: string):
  Promise<{ cdp: Cdp; sessionId: string }> {
  const profile = mkdtempSync(join(tmpdir(), 'myetcd-chromium-'));
  t.teardown(() => rmSync(profile, { recursive: true, force: true }));
  const proc = spawn('/usr/bin/chromium', ['--headless=new', '--no-sandbox', '--disable-gpu',
    '--remote-debugging-pipe', `--user-data-dir=${profile}`, '--no-first-run',
    '--no-proxy-server', 'about:blank'],
  { stdio: ['ignore', 'ignore', 'ignore', 'pipe', 'pipe'], detached: true });
  children.push(proc);
  t.teardown(() => killGroup(proc));
  const cdp = new Cdp(proc);
  const { targetId } = await cdp.send('Target.createTarget', { url: 'about:blank' });
  const { sessionId } = await cdp.send('Target.attachToTarget', { targetId, flatten: true });
  await cdp.send('Page.enable', {}, sessionId);
  await cdp.send('Page.navigate', { url }, sessionId);
  await cdp.event((m) => m.method === 'Page.loadEventFired' && m.sessionId === sessionId);
  await cdp.send('Runtime.addBinding', { name: 'report' }, sessionId);
  return { cdp, sessionId };
}

(chromium ? test : test.skip)('a browser EventSource (headless Chromium) sees each event at once',
  async (t) => {
    // A page of the server's own origin, so that EventSource needs no CORS.
    const { cdp, sessionId } = await pageAt(t, `${srv.url}/version`);
    const key = 'browser/a';
    await cdp.send('Runtime.evaluate', { expression: `
      const es = new EventSource('/v1/watch?key=' + encodeURIComponent(${JSON.stringify(key)}));
      es.onmessage = (e) => report(e.data);
      es.onerror = () => report('error ' + es.readyState);` }, sessionId);
    const reported = (pred: (data: string) => boolean) => cdp.event((m) =>
      m.method === 'Runtime.bindingCalled' && pred(String(m.params?.payload)));
    await reported((d) => d.includes('"created":true'));
    for (const value of ['first', 'second']) {
      const t0 = performance.now();
      await put(key, value);
      await reported((d) => d.includes(`"value":"${value}"`));
      t.log(`${value}: shown ${(performance.now() - t0).toFixed(1)} ms after the put was sent`);
    }
    t.falsy(cdp.events.find((m) => m.method === 'Runtime.bindingCalled' &&
      String(m.params?.payload).startsWith('error')), 'the EventSource never failed');
    await cdp.send('Browser.close').catch(() => undefined);
  });

(chromium ? test : test.skip)('a browser page of another origin writes and reads through /v3 ' +
  '(CORS, its preflight included)', async (t) => {
  // Another origin than the API's: the member's gRPC port, which passes HTTP/1 on (a page
  // from another port is another origin to the browser).
  const { cdp, sessionId } = await pageAt(t, `${await grpcUrl(srv)}/version`);
  // A JSON body makes the browser ask first (an OPTIONS preflight naming content-type).
  await cdp.send('Runtime.evaluate', { expression: `
    const call = (path, body) => fetch(${JSON.stringify(srv.url)} + path, { method: 'POST',
      headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
      .then((r) => r.json());
    call('/v3/kv/put', { key: btoa('cors/a'), value: btoa('from a page') })
      .then(() => call('/v3/kv/range', { key: btoa('cors/a') }))
      .then((j) => report('ok ' + atob(j.kvs[0].value)), (e) => report('error ' + e));` },
  sessionId);
  const done = await cdp.event((m) => m.method === 'Runtime.bindingCalled');
  t.is(String(done.params?.payload), 'ok from a page');
  await cdp.send('Browser.close').catch(() => undefined);
});

test('CORS: an origin\'s request gets etcd\'s headers, any OPTIONS 200 with nothing more; a ' +
  'request without an origin gets none', async (t) => {
  const opts = (path: string) => fetch(`${srv.url}${path}`, { method: 'OPTIONS',
    headers: { origin: 'http://elsewhere.example:8080',
      'access-control-request-method': 'POST' } });
  for (const path of ['/v3/kv/range', '/no/such/path']) {
    const r = await opts(path);
    t.is(r.status, 200);
    t.is(await r.text(), '');
    t.is(r.headers.get('access-control-allow-origin'), '*');
    t.is(r.headers.get('access-control-allow-headers'), 'accept, content-type, authorization');
    t.is(r.headers.get('access-control-allow-methods'), 'POST, GET, OPTIONS, PUT, DELETE');
  }
  const withOrigin = await fetch(`${srv.url}/v3/kv/range`, { method: 'POST',
    headers: { origin: 'http://elsewhere.example:8080' }, body: JSON.stringify({ key: 'eA==' }) });
  t.is(withOrigin.status, 200);
  t.is(withOrigin.headers.get('access-control-allow-origin'), '*');
  const without = await fetch(`${srv.url}/v3/kv/range`, { method: 'POST',
    body: JSON.stringify({ key: 'eA==' }) });
  t.is(without.status, 200);
  t.is(without.headers.get('access-control-allow-origin'), null);
});

test('CORS: with --cors naming origins, only those get the headers, each its own', async (t) => {
  const s = await startServer({ args: ['--cors', 'http://a.example:80,http://b.example:8080'] });
  t.teardown(async () => { await s.stop(); await s.cleanup(); });
  const from = async (origin: string) => (await fetch(`${s.url}/v3/kv/range`, {
    method: 'POST', headers: { origin }, body: JSON.stringify({ key: 'eA==' }),
  })).headers.get('access-control-allow-origin');
  t.is(await from('http://b.example:8080'), 'http://b.example:8080');
  t.is(await from('http://a.example:80'), 'http://a.example:80');
  t.is(await from('http://a.example'), null, 'matched as written, as etcd does');
  t.is(await from('http://c.example:80'), null);
});

