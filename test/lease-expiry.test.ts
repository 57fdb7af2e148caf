import test from 'ava';
import { leaseExpiryLateMsMax } from '../src/constants.js';
import { measureExpiry } from './helpers/lease-expiry.js';
import { useServer } from './helpers/server.js';

// Lease expiry at scale, end to end: a few hundred leases that all expire together (renewed
// by one keep-alive stream) are revoked in batched proposals (leaseExpire), and no key
// outlives its lease by more than the stated tolerance, leaseExpiryLateMsMax.
//
// The measure is from outside (helpers/lease-expiry.ts). It asserts on what the test's own
// clock proves: a key listed by a range SENT at s was still there at s, and its lease was
// renewed before the keep-alive's answer a; so the key outlived its TTL by at least
// s − a − TTL. A slow client can only make that figure smaller, never fail the test; a slow
// server that keeps keys too long does.

test('300 leases expiring together: every key goes, none outlives its TTL by more than the ' +
  'tolerance', async (t) => {
  const srv = await useServer(t);
  const leases = 300;
  const ttlSeconds = 2;
  const r = await measureExpiry(srv.url, { leases, ttlSeconds, burst: true, concurrency: 16 });
  t.is(r.keysLeft, 0, 'every key is gone');
  t.is(r.watchPastTtlMs.filter((x) => Number.isNaN(x)).length, 0, 'a watcher saw each DELETE');
  const sure = r.pastTtlSureMs.filter((x) => !Number.isNaN(x));
  const worst = Math.max(-Infinity, ...sure);
  t.log(`${sure.length} keys seen after the renewal; the longest certainly outlived its TTL by ` +
    `${worst.toFixed(0)} ms (tolerance ${leaseExpiryLateMsMax} ms)`);
  t.true(worst <= leaseExpiryLateMsMax, `a key outlived its TTL by ${worst} ms`);
});
