import test from 'ava';
import { b64, post, useServer, whenLogged } from './helpers/server.js';

/**
 * etcd's --listen-metrics-urls: more listeners that answer /metrics and /health alone (what
 * kubeadm's etcd manifest points its probes at), as real HTTP on a real port.
 */

test('--listen-metrics-urls serves /metrics and /health, nothing else; the client port ' +
  'goes on serving', async (t) => {
  const srv = await useServer(t, { args: ['--listen-metrics-urls', 'http://127.0.0.1:0'] });
  const ready = await whenLogged(srv, 'ready to serve metrics requests');
  const base = ready['url'] as string;
  t.not(new URL(base).port, new URL(srv.url).port);
  t.is((await post(`${srv.url}/v3/kv/put`, { key: b64('k'), value: b64('v') })).status, 200);

  const health = await fetch(`${base}/health`);
  t.is(health.status, 200);
  t.deepEqual(await health.json(), { health: 'true' });
  const metrics = await fetch(`${base}/metrics`);
  t.is(metrics.status, 200);
  const text = await metrics.text();
  t.regex(text, /^etcd_server_has_leader 1$/m);
  t.regex(text, /^etcd_mvcc_put_total [1-9]/m);

  // The API is the client port's alone.
  const api = await fetch(`${base}/v3/kv/range`, { method: 'POST', body: '{}' });
  t.is(api.status, 404);
  await api.text();
  t.is((await fetch(`${base}/version`)).status, 404);
  t.is((await post(`${srv.url}/v3/kv/range`, { key: b64('k') })).json.count, '1');
});
