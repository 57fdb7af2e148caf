/**
 * raft-core: `node dist/bench/raft-core.js [entries] [batch] [many]` — the CPU the Raft core
 * (src/raft, no I/O) spends per entry on a single-voter leader, in one thread: propose `batch`
 * entries of 150 bytes (one by one, or with `many` in one step: RawNode.proposeMany), take
 * the Ready, append to MemoryStorage, advance, take the committed entries (what
 * actors/raft/node.ts does per pass, without the WAL, the apply and the messages), and,
 * separately, what one `status()` call costs against the `term` accessor the shell now uses
 * once per pass. Prints CPU µs per entry (process.cpuUsage, so other load on the machine
 * inflates it less than wall time would; compare builds alternated).
 */
import { MemoryStorage, RawNode } from '../src/raft/index.js';
import type { Index, MemberId } from '../src/types.js';

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
