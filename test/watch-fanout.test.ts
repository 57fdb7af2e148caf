import test from 'ava';
import { packWatchEvents, unpackWatchEvents } from '../actors/watch/messages.js';
import type { Change, KeyValue } from '../src/mvcc/types.js';
import type { LeaseId, Revision } from '../src/types.js';
import type { WatchResponse } from '../src/watch/types.js';

const kv = (key: string, rev: number): KeyValue => ({
  key, value: 'v', createRevision: rev as Revision, modRevision: rev as Revision, version: 1,
  lease: 0 as LeaseId,
});

test('watch fan-out: an event sent to many streams travels once and comes back shared', (t) => {
  const prev = kv('k', 2);
  const full: Change = { kind: 'put', kv: kv('k', 3), prevKv: prev };
  const bare: Change = { kind: 'put', kv: full.kv }; // the hub's copy for watchers without prevKv
  const other: Change = { kind: 'delete', kv: kv('j', 3) };
  const resp = (watchId: number, events: Change[]): WatchResponse =>
    ({ watchId, revision: 3, events });
  const drained = Array.from({ length: 1000 }, (_, i) => ({
    streamId: i + 1,
    responses: [resp(1, i % 2 === 0 ? [full, other] : [{ kind: 'put', kv: full.kv }, other])],
  }));
  drained.push({ streamId: 5000, responses: [resp(7, [bare])] });
  const m = packWatchEvents(drained);
  t.is(m.changes.length, 3, 'full, without prevKv, and the delete: each once');
  const back = unpackWatchEvents(m);
  t.is(back.length, 1001);
  t.deepEqual(back[0]!.responses[0]!.events, [full, other]);
  t.deepEqual(back[1]!.responses[0]!.events, [bare, other]);
  t.is(back[0]!.responses[0]!.events[1], back[1]!.responses[0]!.events[1], 'shared object');
  t.is(back[1000]!.responses[0]!.watchId, 7);
});
