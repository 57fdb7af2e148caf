/**
 * RawNode.proposeMany (src/raft/rawnode.ts): a turn's proposals in one MsgProp, as the Raft
 * node sends them. They are appended in order at consecutive indexes of the leader's term,
 * and committed like proposals made one by one; with no leader all are dropped together.
 */
import test from 'ava';
import { type Entry, EntryNormal, MemoryStorage, RawNode } from '../src/raft/index.js';
import type { MemberId } from '../src/types.js';

function node(): { n: RawNode; drain: (appended?: Entry[]) => Uint8Array[] } {
  const storage = new MemoryStorage();
  const n = RawNode.bootstrap({
    id: 1 as MemberId, electionTick: 10, heartbeatTick: 1, storage, maxSizePerMsg: 1 << 20,
    maxInflightMsgs: 256, preVote: true, checkQuorum: false, rng: () => 0.5,
  }, [1 as MemberId]);
  const drain = (appended: Entry[] = []): Uint8Array[] => {
    const committed: Uint8Array[] = [];
    while (n.hasReady()) {
      const rd = n.ready();
      appended.push(...rd.entries);
      if (rd.entries.length > 0) storage.append(rd.entries);
      if (rd.hardState !== undefined) storage.setHardState(rd.hardState);
      for (const e of rd.committedEntries) {
        if (e.type === EntryNormal && e.data.length > 0) committed.push(e.data);
      }
      n.advance(rd);
    }
    return committed;
  };
  return { n, drain };
}

test('raft: proposeMany appends the proposals in order and commits them all', (t) => {
  const { n, drain } = node();
  drain();
  n.campaign();
  drain();
  const datas = [1, 2, 3, 4].map((i) => new Uint8Array([i]));
  n.proposeMany(datas);
  n.propose(new Uint8Array([5]));
  const entries: Entry[] = [];
  t.deepEqual(drain(entries).map((d) => d[0]), [1, 2, 3, 4, 5], 'all committed, in order');
  t.deepEqual(entries.map((e) => e.data[0]), [1, 2, 3, 4, 5]);
  const first = entries[0]!.index;
  t.deepEqual(entries.map((e) => e.index - first), [0, 1, 2, 3, 4], 'consecutive indexes');
  t.true(entries.every((e) => e.term === n.term()), "the leader's term");
});

test('raft: proposeMany with no leader drops them all, and an empty batch is nothing', (t) => {
  const { n, drain } = node();
  drain();
  t.throws(() => n.proposeMany([new Uint8Array([1]), new Uint8Array([2])]),
    { message: /no leader/ });
  t.notThrows(() => n.proposeMany([]));
  n.campaign();
  t.deepEqual(drain(), [], 'nothing of the dropped batch was kept');
});
