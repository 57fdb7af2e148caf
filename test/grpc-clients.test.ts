import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import { Etcd3 } from 'etcd3';
import { watchStreamStallMsMax } from '../src/constants.js';
import { loadEtcdServices } from '../src/grpc/proto.js';
import { grpcUrl, startServer, type TestServer } from './helpers/server.js';

/**
 * MyEtcd's gRPC gateway with clients from another ecosystem than etcdctl: the npm `etcd3`
 * package (its own grpc-js and protos) doing KV, a transaction, a watch and a lease
 * keep-alive; and a raw grpc-js client sending what no well-behaved client sends — bytes that
 * are not protobuf, a message over the size limits, a watch stream that never reads — after
 * each of which the server must still serve.
 */

let server: TestServer;
let grpcAddr: string;

test.before(async () => {
  server = await startServer();
  grpcAddr = (await grpcUrl(server)).replace(/^http:\/\//, '');
});

test.after.always(async () => {
  await server?.shutdown();
});

test.serial('grpc: the etcd3 npm client puts, gets, deletes and runs a txn', async (t) => {
  const c = new Etcd3({ hosts: `http://${grpcAddr}` });
  try {
    await c.put('e3/a').value('1');
    await c.put('e3/b').value('2');
    t.is(await c.get('e3/a').string(), '1');
    t.deepEqual(await c.getAll().prefix('e3/').strings(), { 'e3/a': '1', 'e3/b': '2' });
    t.is(await c.getAll().prefix('e3/').count(), 2);
    const txn = await c.if('e3/a', 'Value', '==', '1').then(c.put('e3/c').value('3'))
      .else(c.put('e3/c').value('no')).commit();
    t.true(txn.succeeded);
    t.is(await c.get('e3/c').string(), '3');
    const del = await c.delete().key('e3/b').exec();
    t.is(del.deleted, '1');
    t.is(await c.get('e3/b').string(), null);
  } finally {
    c.close();
  }
});

test.serial('grpc: the etcd3 npm client watches a prefix and sees puts and a delete',
  async (t) => {
    const c = new Etcd3({ hosts: `http://${grpcAddr}` });
    try {
      const w = await c.watch().prefix('e3w/').create();
      const seen: string[] = [];
      const done = new Promise<void>((resolve) => {
        w.on('put', (kv) => {
          seen.push(`put ${kv.key.toString()}=${kv.value.toString()}`);
        });
        w.on('delete', (kv) => {
          seen.push(`delete ${kv.key.toString()}`);
          resolve();
        });
      });
      await c.put('e3w/x').value('1');
      await c.put('e3w/x').value('2');
      await c.delete().key('e3w/x');
      await done;
      t.deepEqual(seen, ['put e3w/x=1', 'put e3w/x=2', 'delete e3w/x']);
      await w.cancel();
    } finally {
      c.close();
    }
  });

test.serial('grpc: the etcd3 npm client keeps a lease alive over the keep-alive stream',
  async (t) => {
    const c = new Etcd3({ hosts: `http://${grpcAddr}` });
    try {
      const lease = c.lease(2, { autoKeepAlive: false });
      const id = await lease.grant();
      await lease.put('e3l/k').value('v');
      const before = await c.get('e3l/k').string();
      t.is(before, 'v');
      const ka = await lease.keepaliveOnce();
      t.is(ka.ID, id);
      t.is(ka.TTL, '2');
      await lease.revoke();
      t.is(await c.get('e3l/k').string(), null);
    } finally {
      c.close();
    }
  });

/** rawKv is a KV client whose Range sends any bytes and reads the status. */
function rawCall(method: string, body: Buffer): Promise<grpc.ServiceError | null> {
  const client = new grpc.Client(grpcAddr, grpc.credentials.createInsecure());
  return new Promise((resolve) => {
    client.makeUnaryRequest(method, (b: Buffer) => b, (b: Buffer) => b, body,
      (err) => {
        client.close();
        resolve(err);
      });
  });
}

function kvClient(): grpc.Client & Record<string, grpc.MethodDefinition<unknown, unknown>> {
  const KV = loadEtcdServices().clients['KV']!;
  return new KV(grpcAddr, grpc.credentials.createInsecure()) as never;
}

function unary<T>(client: grpc.Client, method: string, req: unknown): Promise<T> {
  return new Promise((resolve, reject) => {
    (client as unknown as Record<string, (r: unknown, cb: (e: Error | null, v: T) => void) =>
      void>)[method]!(req, (e, v) => (e ? reject(e) : resolve(v)));
  });
}

test.serial('grpc: bytes that are not protobuf fail the call, and the server keeps serving',
  async (t) => {
    // Field 1 (key) announced as 100 bytes long, with 3 present: a truncated message.
    const err = await rawCall('/etcdserverpb.KV/Range', Buffer.from([0x0a, 100, 1, 2, 3]));
    t.is(err?.code, grpc.status.INTERNAL);
    t.regex(err!.details, /deserializ/i);
    // A wire type that does not exist (7).
    const err2 = await rawCall('/etcdserverpb.KV/Put', Buffer.from([0x0f, 1]));
    t.is(err2?.code, grpc.status.INTERNAL);
    const c = kvClient();
    try {
      await unary(c, 'Put', { key: Buffer.from('after-garbage'), value: Buffer.from('ok') });
      const r = await unary<{ kvs: { value: Buffer }[] }>(c, 'Range',
        { key: Buffer.from('after-garbage') });
      t.is(r.kvs[0]!.value.toString(), 'ok');
      const unknown = await rawCall('/etcdserverpb.KV/NoSuchMethod', Buffer.alloc(0));
      t.is(unknown?.code, grpc.status.UNIMPLEMENTED);
    } finally {
      c.close();
    }
  });

test.serial('grpc: etcd\'s size limits: 1.5 MiB per write, 2 MiB per message', async (t) => {
  const c = kvClient();
  try {
    // Over --max-request-bytes (1.5 MiB) but under grpc's 2 MiB: etcd's own error.
    const big = Buffer.alloc(1.5 * 1024 * 1024 + 1, 0x61);
    const e1 = await t.throwsAsync(unary(c, 'Put', { key: Buffer.from('big'), value: big }));
    t.is((e1 as grpc.ServiceError).code, grpc.status.INVALID_ARGUMENT);
    t.is((e1 as grpc.ServiceError).details, 'etcdserver: request is too large');
    // Over 2 MiB: refused by the gRPC layer before decoding, as grpc-go does for etcd.
    const huge = Buffer.alloc(2 * 1024 * 1024 + 1, 0x62);
    const e2 = await t.throwsAsync(unary(c, 'Put', { key: Buffer.from('huge'), value: huge }));
    t.is((e2 as grpc.ServiceError).code, grpc.status.RESOURCE_EXHAUSTED);
    // Still serving; nothing was written.
    const r = await unary<{ count?: string }>(c, 'Range',
      { key: Buffer.from('big'), range_end: Buffer.from('bih'), count_only: true });
    t.is(r.count, undefined);
    // A key that is empty gets etcd's words, through the table the JSON gateway uses.
    const e3 = await t.throwsAsync(unary(c, 'Put', { key: Buffer.alloc(0), value: big }));
    t.is((e3 as grpc.ServiceError).details, 'etcdserver: key is not provided');
  } finally {
    c.close();
  }
});

test.serial('grpc: a watch stream that never reads holds bounded memory; its events wait in ' +
  'order until it reads', async (t) => {
  const s = loadEtcdServices();
  const W = s.clients['Watch']!;
  const w = new W(grpcAddr, grpc.credentials.createInsecure());
  const c = kvClient();
  const call = (w as unknown as { Watch(): grpc.ClientDuplexStream<unknown, WatchMsg> }).Watch();
  const events: number[] = [];
  let cancelReason: string | undefined;
  let created!: () => void;
  const isCreated = new Promise<void>((resolve) => {
    created = resolve;
  });
  call.on('data', (m: WatchMsg) => {
    if (m.created) created();
    if (m.canceled) cancelReason = m.cancel_reason ?? '';
    for (const e of m.events ?? []) events.push(Number(e.kv.mod_revision));
  });
  call.on('error', () => undefined);
  try {
    call.write({ create_request: { key: Buffer.from('nr/'), range_end: Buffer.from('nr0') } });
    await isCreated;
    // Stop reading: HTTP/2 flow control stops the server's writes once the stream's window
    // (64 KiB) is full, so the server flushes a bounded number of messages and the watch hub
    // stops at watchStreamEventsMax unacknowledged events instead of queueing them all.
    call.pause();
    const pausedAt = performance.now();
    const n = 2_000;
    const value = Buffer.alloc(1024, 0x61);
    for (let i = 0; i < n; i += 100) {
      await Promise.all(Array.from({ length: 100 }, (_, j) =>
        unary(c, 'Put', { key: Buffer.from(`nr/${i + j}`), value })));
    }
    const sent = async (): Promise<number> => {
      const text = await (await fetch(`${server.url}/metrics`)).text();
      const line = text.split('\n').find((l) => l.startsWith('grpc_server_msg_sent_total') &&
        l.includes('grpc_method="Watch"'));
      return line === undefined ? 0 : Number(line.split(' ').pop());
    };
    // One message per put (each put is its own revision): 2,000 at most if nothing held.
    // The window holds about 64 of these 1 KiB messages; half of watchStreamEventsMax is far
    // above that and far below 2,000.
    t.true(await sent() < 512, `messages flushed to a client that does not read: ${await sent()}`);
    // The server still serves others meanwhile.
    const r = await unary<{ count?: string }>(c, 'Range',
      { key: Buffer.from('nr/'), range_end: Buffer.from('nr0'), count_only: true });
    t.is(r.count, String(n));
    // Once the client reads, every event arrives, in revision order, none twice — unless the
    // pause outlasted watchStreamStallMsMax (a machine too loaded to write 2,000 keys in time):
    // then the server has dropped the stream, and says so in a last cancel with its reason.
    const all = new Promise<void>((resolve) => {
      const check = (): void => {
        if (events.length >= n || cancelReason !== undefined) resolve();
      };
      call.on('data', check);
      check();
    });
    const pausedMs = performance.now() - pausedAt;
    call.resume();
    await all;
    if (cancelReason !== undefined) {
      t.regex(cancelReason, /the client read nothing for \d+ s; watch again/);
      t.true(pausedMs > watchStreamStallMsMax, `dropped after a pause of ${pausedMs} ms`);
      t.log(`paused ${Math.round(pausedMs)} ms: the server dropped the stream, as it must`);
    } else {
      t.is(events.length, n);
    }
    t.true(events.every((rev, i) => i === 0 || rev === events[i - 1]! + 1));
  } finally {
    call.cancel();
    w.close();
    c.close();
  }
});

/** WatchMsg is the part of a WatchResponse the test reads. */
interface WatchMsg {
  created?: boolean;
  canceled?: boolean;
  cancel_reason?: string;
  events?: { kv: { mod_revision: string } }[];
}

test.serial('grpc: a watch that asked for fragments gets an answer larger than the request ' +
  'limit in fragments, every event once, in order', async (t) => {
  const W = loadEtcdServices().clients['Watch']!;
  const w = new W(grpcAddr, grpc.credentials.createInsecure());
  const c = kvClient();
  const call = (w as unknown as { Watch(): grpc.ClientDuplexStream<unknown, FragMsg> }).Watch();
  const got: FragMsg[] = [];
  let created!: () => void;
  const isCreated = new Promise<void>((resolve) => {
    created = resolve;
  });
  let last!: () => void;
  const isLast = new Promise<void>((resolve) => {
    last = resolve;
  });
  call.on('data', (m: FragMsg) => {
    if (m.created) created();
    if ((m.events ?? []).length === 0) return;
    got.push(m);
    if (!m.fragment) last();
  });
  call.on('error', () => undefined);
  try {
    // Ten keys of 100 KiB, then one txn that rewrites them all: its events with their previous
    // values are ≈ 2 MiB, over the 1.5 MiB request limit that bounds one answer.
    const key = (i: number) => Buffer.from(`frag/${i}`);
    for (let i = 0; i < 10; i++) {
      await unary(c, 'Put', { key: key(i), value: Buffer.alloc(100 * 1024, 0x61 + i) });
    }
    call.write({ create_request: { key: Buffer.from('frag/'), range_end: Buffer.from('frag0'),
      prev_kv: true, fragment: true } });
    await isCreated;
    const success = Array.from({ length: 10 }, (_, i) => ({
      request_put: { key: key(i), value: Buffer.alloc(100 * 1024, 0x41 + i) } }));
    await unary(c, 'Txn', { success });
    await isLast;
    t.true(got.length > 1, `${got.length} answer(s)`);
    t.deepEqual(got.map((m) => m.fragment === true),
      got.map((_, i) => i < got.length - 1));
    const events = got.flatMap((m) => m.events!);
    t.deepEqual(events.map((e) => e.kv.key.toString()), Array.from({ length: 10 },
      (_, i) => `frag/${i}`));
    for (const [i, e] of events.entries()) {
      t.true(e.kv.value.equals(Buffer.alloc(100 * 1024, 0x41 + i)));
      t.true(e.prev_kv!.value.equals(Buffer.alloc(100 * 1024, 0x61 + i)));
    }
  } finally {
    call.end();
    w.close();
    c.close();
  }
});

interface FragMsg {
  created?: boolean;
  fragment?: boolean;
  events?: { kv: { key: Buffer; value: Buffer }; prev_kv?: { value: Buffer } }[];
}

test.serial('grpc: grpc.health.v1 answers SERVING, a `hasleader` call is served while there ' +
  'is a leader, and the RPCs ' +
  'are counted in grpc_server_* metrics', async (t) => {
  const s = loadEtcdServices();
  const health = new (s.clients['Health']!)(grpcAddr, grpc.credentials.createInsecure());
  const c = kvClient();
  try {
    const h = await unary<{ status: number }>(health, 'Check', {});
    t.is(h.status, 1); // SERVING
    const md = new grpc.Metadata();
    md.set('hasleader', 'true');
    await new Promise<void>((resolve, reject) => {
      (c as unknown as { Range(r: unknown, m: grpc.Metadata, cb: (e: Error | null) => void):
        void }).Range({ key: Buffer.from('x') }, md, (e) => (e ? reject(e) : resolve()));
    });
    await t.throwsAsync(unary(c, 'Range', { key: Buffer.alloc(0) }));
    const text = await (await fetch(`${server.url}/metrics`)).text();
    const value = (prefix: string): number => {
      const line = text.split('\n').find((l) => l.startsWith(prefix));
      return line === undefined ? 0 : Number(line.split(' ').pop());
    };
    const range = 'grpc_type="unary",grpc_service="etcdserverpb.KV",grpc_method="Range"';
    // This test's two Ranges at least (earlier tests add theirs).
    t.true(value(`grpc_server_started_total{${range}}`) >= 2);
    t.true(value(`grpc_server_handled_total{${range},grpc_code="OK"}`) >= 1);
    t.true(value(`grpc_server_handled_total{${range},grpc_code="InvalidArgument"}`) >= 1);
    t.true(value(`grpc_server_msg_received_total{${range}}`) >= 2);
    t.true(value(`grpc_server_msg_sent_total{${range}}`) >= 1);
  } finally {
    health.close();
    c.close();
  }
});
