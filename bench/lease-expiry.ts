/**
 * lease-expiry: `npm run bench:lease-expiry` — grants N leases (default 10,000) with TTL T
 * (default 5 s), one key each, and measures how long each key outlived its TTL (an upper
 * bound, see
 * test/helpers/lease-expiry.ts). By default every lease is renewed at once after the grants
 * (they all expire together: the worst case); `--spread` lets each expire TTL after its
 * grant. Prints p50 / p99 / max past TTL (to the first range without the key; to the
 * renewal's answer; to a watcher's DELETE event) and the share past TTL + 1 s / + 2 s.
 * `--etcd` runs etcd 3.4 (/usr/bin/etcd) instead, for comparison.
 */
import { parseArgs } from 'node:util';
import { leaseExpiryLateMsMax } from '../src/constants.js';
import { measureExpiry, quantile } from '../test/helpers/lease-expiry.js';
import { cleanup, startServer, stopServer } from './servers.js';

const { values } = parseArgs({
  options: {
    leases: { type: 'string', default: '10000' },
    ttl: { type: 'string', default: '5' },
    concurrency: { type: 'string', default: '256' },
    spread: { type: 'boolean', default: false },
    etcd: { type: 'boolean', default: false },
    'etcd-bin': { type: 'string', default: '/usr/bin/etcd' },
  },
});

const kind = values.etcd ? 'etcd' : 'ours';
const server = await startServer({ dataDir: process.env.BENCH_DIR,
  kind, etcdBin: values['etcd-bin'], oursArgs: [], etcdArgs: [],
});
try {
  const leases = Number(values.leases);
  const ttlSeconds = Number(values.ttl);
  const r = await measureExpiry(`http://127.0.0.1:${server.port}`, {
    leases, ttlSeconds, concurrency: Number(values.concurrency), burst: !values.spread,
  });
  const s = [...r.pastTtlMs].sort((a, b) => a - b);
  const m = [...r.pastTtlMinMs].sort((a, b) => a - b);
  const w = [...r.watchPastTtlMs].sort((a, b) => a - b);
  const sure = r.pastTtlSureMs.filter((x) => !Number.isNaN(x));
  const share = (ms: number) => `${(100 * s.filter((x) => x > ms).length / s.length).toFixed(1)}%`;
  const f = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
  console.log(`${kind}: ${leases} leases, TTL ${ttlSeconds} s, granted in ${f(r.grantMs)}; ` +
    `key lifetime past TTL: p50 ${f(quantile(s, 0.5))}, p99 ${f(quantile(s, 0.99))}, ` +
    `max ${f(s[s.length - 1]!)}; past TTL + 1 s: ${share(1000)}, + 2 s: ${share(2000)}; ` +
    `keys left: ${r.keysLeft}; from the renewal's answer: p50 ${f(quantile(m, 0.5))}, ` +
    `p99 ${f(quantile(m, 0.99))}, max ${f(m[m.length - 1]!)}; DELETE seen by a watcher: ` +
    `p50 ${f(quantile(w, 0.5))}, p99 ${f(quantile(w, 0.99))}, max ${f(w[w.length - 1]!)}; ` +
    `certainly outlived its TTL by at most ${f(Math.max(0, ...sure))} ` +
    `(stated tolerance ${f(leaseExpiryLateMsMax)})`);
} finally {
  await stopServer(server);
  if (process.env.BENCH_DIR === undefined) cleanup(server);
}
