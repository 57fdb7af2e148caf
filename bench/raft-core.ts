/**
 * raft-core: `node dist/bench/raft-core.js [entries] [batch] [many]` — the CPU the Raft core
 * (src/raft, no I/O) spends per entry on a single-voter leader, in one thread: propose `batch`
 * entries of 150 bytes (one by one, or with `many` in one step: RawNode.proposeMany), take
 * the Ready, append to MemoryStorage, advance, take the committed entries (what
 * actors/raft/node.ts does per pass, without the WAL, the apply and the messages), and,
 * separately, what one `status()` call costs against the `term` accessor the shell now uses
 * once per pass. Prints CPU µs per entry (process.cpuUsage, so other load on the machine
 * inflates it less than wall time would; compare builds alternated). Last, the V8 heap the
 * log takes per entry it keeps: 100,000 entries of 150 bytes in the slabs this member frames
 * its proposals in, appended `batch` at a time, measured after full collections.
 */
import { entryBytes } from '../src/raft/entry-slab.js';
import { type Entry, EntryNormal, MemoryStorage, RawNode } from '../src/raft/index.js';
import { gcFunction } from '../src/runtime/gc.js';
import type { Index, MemberId, Term } from '../src/types.js';

const entries = Number(process.argv[2] ?? 200_000);
const batch = Number(process.argv[3] ?? 32);
/** many: propose each batch in one step (RawNode.proposeMany), as the Raft node does. */
const many = process.argv[4] === 'many';

function leader(): { node: RawNode; storage: MemoryStorage } {
  const storage = new MemoryStorage();
  const node = RawNode.bootstrap({
    id: 1 as MemberId, electionTick: 10, heartbeatTick: 1, storage, maxSizePerMsg: 1 << 20,
    maxInflightMsgs: 256, preVote: true, checkQuorum: false, rng: () => 0.5,
  }, [1 as MemberId]);
  const drain = () => {
    while (node.hasReady()) {
      const rd = node.ready();
      if (rd.entries.length > 0) storage.append(rd.entries);
      if (rd.hardState !== undefined) storage.setHardState(rd.hardState);
      node.advance(rd);
    }
  };
  drain();
  node.campaign();
  drain();
  return { node, storage };
}

function cpuUs(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

/** loop runs the per-pass work for `n` entries and returns CPU µs per entry. */
function loop(n: number): number {
  const { node, storage } = leader();
  const data = new Uint8Array(150).fill(7);
  const datas = Array.from({ length: batch }, () => data);
  let committed = 0;
  const t0 = cpuUs();
  for (let done = 0; done < n; done += batch) {
    if (many) node.proposeMany(datas);
    else for (let i = 0; i < batch; i++) node.propose(data);
    while (node.hasReady()) {
      const rd = node.ready();
      committed += rd.committedEntries.length;
      if (rd.entries.length > 0) storage.append(rd.entries);
      if (rd.hardState !== undefined) storage.setHardState(rd.hardState);
      node.advance(rd);
    }
    // MemoryStorage keeps the log until a snapshot compacts it; the shell compacts too.
    if (storage.lastIndex() > 100_000) storage.compact((storage.lastIndex() - 1_000) as Index);
  }
  if (committed < n) throw new Error(`only ${committed} of ${n} entries committed`);
  return (cpuUs() - t0) / n;
}

function calls(n: number, fn: () => unknown): number {
  const t0 = cpuUs();
  for (let i = 0; i < n; i++) fn();
  return (cpuUs() - t0) * 1000 / n;
}

loop(20_000); // warm up the JIT
const { node } = leader();
const rounds = [1, 2, 3].map(() => ({
  perEntryUs: loop(entries),
  statusNs: calls(200_000, () => node.status().term),
  termNs: calls(200_000, () => node.term()),
}));
for (const r of rounds) {
  process.stdout.write(`raft core, batch ${batch}: ${r.perEntryUs.toFixed(2)} µs/entry; ` +
    `status().term ${r.statusNs.toFixed(0)} ns, term() ${r.termNs.toFixed(0)} ns per call\n`);
}

/** heapPerEntry is the V8 heap a MemoryStorage takes per entry it keeps (see the top). */
function heapPerEntry(kept: number): number {
  const gc = gcFunction();
  if (gc === null) throw new Error('raft-core: no gc function');
  gc();
  const before = process.memoryUsage().heapUsed;
  const storage = new MemoryStorage();
  for (let i = 1; i <= kept; i += batch) {
    const ents: Entry[] = [];
    for (let k = 0; k < batch && i + k <= kept; k++) {
      ents.push({ term: 2 as Term, index: (i + k) as Index, type: EntryNormal,
        data: entryBytes(150) });
    }
    storage.append(ents);
  }
  gc();
  gc();
  const bytes = (process.memoryUsage().heapUsed - before) / kept;
  if (storage.lastIndex() !== kept) throw new Error('raft-core: entries missing');
  return bytes;
}
const heap = heapPerEntry(100_000);
process.stdout.write(`raft log: ${heap.toFixed(1)} bytes of V8 heap per entry kept\n`);
