import type { PeerMsg } from '../../actors/peer/messages.js';
import {
  type RaftMsg, type RaftNodeConfig, readPointFields,
} from '../../actors/raft/messages.js';
import { RaftNode } from '../../actors/raft/node.js';
import {
  applyShardApply, type ShardMsg, type ShardRange,
} from '../../actors/shard/messages.js';
import { AheadAnswers } from '../../actors/wal/ahead-answers.js';
import { diskFaultCode, diskFaultKind } from '../../src/alarms.js';
import type { WalLoadResp, WalMsg } from '../../actors/wal/messages.js';
import type { Member } from '../../src/cluster/membership.js';
import { KvService } from '../../src/gateway/kv-service.js';
import { ShardReads, ShardStore } from '../../src/mvcc/index.js';
import {
  type Entry, type HardState, type Message as RaftMessage, MsgSnap,
} from '../../src/raft/index.js';
import { pack, unpack } from '../../src/runtime/codec.js';
import { SharedCell } from '../../src/runtime/shared-cell.js';
import { decodeFramedEntries } from '../../src/wal/index.js';
import {
  Endpoint, type Message, type PackedReplies, type ReplyToken,
} from '../../src/runtime/endpoint.js';
import type { Revision } from '../../src/types.js';

/**
 * cluster-sim: several members' real Raft nodes (actors/raft/node.ts: the loop, the apply
 * unit, read index, snapshots, proposals) in one process, each with the real KvService in
 * front, over in-process fakes of the other actors (an in-memory WAL that is durable exactly
 * when it answers, real ShardStores, a simulated network in place of the peer actor). Time is
 * virtual: a seeded scheduler runs one event per event-loop turn, so the runtime's batching
 * (setImmediate flushes) interleaves the same way on every run of a seed.
 */

/** Scheduler: events in virtual time, run one per turn of the event loop. */
export class Scheduler {
  nowMs = 0;
  private seq = 0;
  private queue: { at: number; seq: number; fn: () => void }[] = [];

  /** at runs fn at virtual time `at` (not before now). */
  at(at: number, fn: () => void): void {
    const e = { at: Math.max(at, this.nowMs), seq: this.seq++, fn };
    let i = this.queue.length;
    while (i > 0 && (this.queue[i - 1]!.at > e.at)) i--;
    this.queue.splice(i, 0, e);
  }

  /** soon runs fn now, after what is already due now. */
  soon(fn: () => void): void {
    this.at(this.nowMs, fn);
  }

  /** run executes events until virtual time `until`. */
  async run(until: number): Promise<void> {
    while (this.queue.length > 0 && this.queue[0]!.at <= until) {
      const e = this.queue.shift()!;
      this.nowMs = e.at;
      e.fn();
      await new Promise((r) => setImmediate(r));
    }
    this.nowMs = Math.max(this.nowMs, until);
  }
}

/** Disk is one member's durable WAL state (what survives a crash). */
interface Disk {
  hardState: HardState | undefined;
  entries: Entry[];
  snapshot: { index: number; term: number; body: Uint8Array } | undefined;
  firstStart: boolean;
}

/** SimMember is one member: its endpoints and node for the current boot. */
export interface SimMember {
  id: number;
  disk: Disk;
  up: boolean;
  generation: number;
  node?: RaftNode;
  kv?: KvService;
  gateway?: Endpoint<Message>;
  stores: ShardStore[];
  /** readPoint: this boot's shared read point (the supervisor closes it at a crash). */
  readPoint?: SharedArrayBuffer;
}

/** SimOptions shape one simulated cluster. */
export interface SimOptions {
  size: number;
  rng: () => number;
  sched: Scheduler;
  dropP: number;
  delayMsMax: number;
  shardCount: number;
  snapshotCount: number;
  /** walFault, when set, is asked at each append's "fsync": an errno (ENOSPC, EROFS, EIO)
   * fails that append as the WAL store does (nothing of it kept), undefined lets it pass. */
  walFault?: (member: number, append: { seq?: number; entries: number }) => string | undefined;
  /** requestTimeoutMs: the members' request timeout, virtual ms (default 400). */
  requestTimeoutMs?: number;
}

const heartbeatMs = 10;
const electionTicks = 10;

/** SimCluster: the members, the network between them, and the faults. */
export class SimCluster {
  readonly members: SimMember[];
  /** cut: member pairs that cannot talk (partitions), as "a-b" with a < b. */
  readonly cut = new Set<string>();
  readonly stats = { delivered: 0, dropped: 0, snapshots: 0, crashes: 0 };
  /** answered: the seq of every append whose answers the Raft node applied ahead and handed
   * to the WAL writer (WalAnswers), per member id. */
  readonly answered = new Map<number, number[]>();
  /** readsTakenBack counts the reads the shards failed after a rewind (ShardReads). */
  readsTakenBack = 0;
  /** errors: anything a member's boot threw (a bug: the test fails with it). */
  readonly errors: string[] = [];
  private readonly ids: number[];

  constructor(readonly o: SimOptions) {
    this.ids = Array.from({ length: o.size }, (_, i) => i + 1);
    this.members = this.ids.map((id) => ({
      id, up: false, generation: 0, stores: [],
      disk: { hardState: undefined, entries: [], snapshot: undefined, firstStart: true },
    }));
  }

  private founders(): Member[] {
    return this.ids.map((id) => ({
      id, name: `s${id}`, peerURLs: [`http://s${id}:1`], clientURLs: [], isLearner: false,
    }));
  }

  /** start boots a member (first start or restart after a crash) from its disk; the boot
   * runs as the scheduler runs. */
  start(i: number): void {
    const m = this.members[i]!;
    const gen = ++m.generation;
    const alive = () => m.up && m.generation === gen;
    const sched = this.o.sched;
    const eps = new Map<string, Endpoint<Message>>();
    const names = ['raft', 'wal', 'watch', 'lease', 'peer', 'gateway',
      ...Array.from({ length: this.o.shardCount }, (_, k) => `shard-${k}`)];
    for (const n of names) eps.set(n, new Endpoint<Message>(n));
    // Every actor of the member is connected with every other, in-process.
    for (let a = 0; a < names.length; a++) {
      for (let b = a + 1; b < names.length; b++) link(eps.get(names[a]!)!, eps.get(names[b]!)!,
        sched, alive);
    }
    m.up = true;
    this.fakeWal(m, eps.get('wal')!, alive);
    m.stores = [];
    for (let k = 0; k < this.o.shardCount; k++) {
      const store = { s: new ShardStore() };
      m.stores.push(store.s);
      fakeShard(eps.get(`shard-${k}`)!, store, (s) => { m.stores[k] = s; },
        () => { this.readsTakenBack++; });
    }
    eps.get('watch')!.onMessage(() => undefined);
    eps.get('lease')!.onMessage((_msg: Message) => undefined);
    this.fakePeer(m, eps.get('peer')!, alive);
    const cfg: RaftNodeConfig = {
      memberId: m.id, clusterId: 7, name: `s${m.id}`, clientURLs: [`http://c${m.id}:1`],
      initialMembers: this.founders(), join: false, token: 'sim', shardCount: this.o.shardCount,
      heartbeatIntervalMs: heartbeatMs, electionTicks, snapshotCount: this.o.snapshotCount,
      snapshotCatchUpEntries: 3, strictReconfigCheck: false,
      requestTimeoutMs: this.o.requestTimeoutMs ?? 400,
      logLevel: 'silent', seed: m.id * 1000 + gen,
    };
    const quiet = { debug() {}, info() {}, warn() {}, error() {} };
    m.readPoint = new SharedArrayBuffer(SharedCell.bytes(readPointFields));
    const node = new RaftNode({
      readPoint: new SharedCell(m.readPoint, readPointFields),
      config: cfg, ep: eps.get('raft')! as Endpoint<RaftMsg>, log: quiet,
      nowMs: () => sched.nowMs, wallMs: () => sched.nowMs,
      every: (ms, fn) => {
        let stopped = false;
        const tick = () => {
          if (stopped || !alive()) return;
          fn();
          sched.at(sched.nowMs + ms, tick);
        };
        sched.at(sched.nowMs + ms, tick);
        return () => { stopped = true; };
      },
      defer: (fn) => sched.soon(() => {
        if (alive()) fn();
      }),
      bootNonce: gen,
      removed: () => undefined,
    });
    eps.get('raft')!.onMessage((msg, token) => {
      if (alive()) node.handle(msg as RaftMsg, token);
    });
    m.node = node;
    m.gateway = eps.get('gateway')!;
    m.kv = new KvService(m.gateway, this.o.shardCount, m.id, 7);
    m.kv.setReadPoint(m.readPoint);
    node.boot().catch((e: unknown) => {
      if (alive()) this.errors.push(`s${m.id} boot: ${String(e)}`);
    });
  }

  /** crash stops a member at once: what its WAL had not answered is lost. */
  crash(i: number): void {
    const m = this.members[i]!;
    if (!m.up) return;
    m.up = false;
    // As the supervisor does when a generation ends (src/runtime/system.ts SharedRegions).
    if (m.readPoint !== undefined) Atomics.store(new Int32Array(m.readPoint, 0, 1), 0, 1);
    void m.node?.stop();
    // Clients of the crashed member see their requests fail (connection lost).
    m.gateway?.close();
    this.stats.crashes++;
  }

  private canTalk(a: number, b: number): boolean {
    const ma = this.members[a - 1]!;
    const mb = this.members[b - 1]!;
    return ma.up && mb.up && !this.cut.has(a < b ? `${a}-${b}` : `${b}-${a}`);
  }

  /** fakePeer: PeerSend goes over the simulated network to the target's Raft node. */
  private fakePeer(m: SimMember, ep: Endpoint<Message>, alive: () => boolean): void {
    const sched = this.o.sched;
    const raft = ep.ref<RaftMsg, unknown>('raft');
    ep.onMessage((msg, token) => {
      const p = msg as PeerMsg;
      if (!alive()) return;
      if (p.type === 'PeerSend') {
        for (const rm of p.msgs) this.transmit(m, rm, raft);
      } else if (p.type === 'PeerConnectivity' && token !== undefined) {
        ep.reply(token, { connectedMs: {} });
      } else if (p.type === 'PeerForward' && token !== undefined) {
        ep.replyError(token, { code: 'TIMEOUT', message: 'etcdserver: request timed out' });
      }
    });
    void sched;
  }

  private transmit(from: SimMember, rm: RaftMessage, raft: { sendUnbounded(m: RaftMsg): void }):
    void {
    const sched = this.o.sched;
    const to = this.members[rm.to - 1];
    const lost = to === undefined || !this.canTalk(from.id, rm.to) ||
      (rm.type !== MsgSnap && this.o.rng() < this.o.dropP);
    if (lost) {
      this.stats.dropped++;
      if (rm.type === MsgSnap) {
        sched.soon(() => raft.sendUnbounded({
          type: 'RaftReport', unreachable: [rm.to], snapshots: [{ id: rm.to, failed: true }],
        }));
      }
      return;
    }
    const gen = to.generation;
    sched.at(sched.nowMs + this.o.rng() * this.o.delayMsMax, () => {
      if (!to.up || to.generation !== gen || !this.canTalk(from.id, to.id)) {
        this.stats.dropped++;
        return;
      }
      this.stats.delivered++;
      to.node?.handle({ type: 'RaftStep', msgs: [rm] }, undefined);
      if (rm.type === MsgSnap) {
        this.stats.snapshots++;
        if (from.up) {
          from.node?.handle({
            type: 'RaftReport', unreachable: [], snapshots: [{ id: to.id, failed: false }],
          }, undefined);
        }
      }
    });
  }

  /** fakeWal: an in-memory WAL, durable exactly when it answers (after 1 ms of "fsync"). */
  private fakeWal(m: SimMember, ep: Endpoint<Message>, alive: () => boolean): void {
    const sched = this.o.sched;
    const d = m.disk;
    const ahead = new AheadAnswers();
    const post = (replies: readonly PackedReplies[]) => {
      for (const r of replies) ep.postPacked({ ...r, bytes: r.bytes.slice() });
    };
    ep.onMessage((msg, token) => {
      const w = msg as WalMsg;
      switch (w.type) {
        case 'WalLoad': {
          const r: WalLoadResp = {
            hardState: d.hardState, entries: [...d.entries], firstStart: d.firstStart,
            ...(d.snapshot === undefined ? {} : { snapshot: d.snapshot }),
            ...(d.firstStart ? {} : { metadata: { nodeId: m.id, clusterId: 7 } }),
          };
          d.firstStart = false;
          ep.reply(token!, r);
          return;
        }
        case 'WalAppend': {
          if (w.seq !== undefined) ahead.appending(w.seq);
          // This member's own entries, framed: their types are the Raft core's.
          const entries = decodeFramedEntries(w.entries) as Entry[];
          sched.at(sched.nowMs + 1, () => {
            if (!alive()) return; // the crash came before the fsync
            const errno = this.o.walFault?.(m.id, { seq: w.seq, entries: entries.length });
            if (errno !== undefined) {
              if (w.seq !== undefined) post(ahead.settled(w.seq, false));
              if (token !== undefined) {
                ep.replyError(token, { code: diskFaultCode(diskFaultKind(errno, 'write')),
                  message: `sim: ${errno}` });
              }
              return;
            }
            if (entries.length > 0) {
              const first = entries[0]!.index;
              d.entries = d.entries.filter((e) => e.index < first).concat(entries);
            }
            if (w.hardState !== undefined) d.hardState = w.hardState;
            if (token !== undefined) ep.reply(token, { fsyncSeconds: 0.001 });
            if (w.seq !== undefined) post(ahead.settled(w.seq, true));
          });
          return;
        }
        case 'WalAnswers': {
          // The answers of entries applied ahead, as the WAL actor posts them.
          const seqs = this.answered.get(m.id) ?? [];
          seqs.push(w.seq);
          this.answered.set(m.id, seqs);
          post(ahead.take(w) ?? []);
          return;
        }
        case 'WalSnapshotSave':
          sched.at(sched.nowMs + 2, () => {
            if (!alive()) return;
            if (d.snapshot === undefined || w.index > d.snapshot.index) {
              d.snapshot = { index: w.index, term: w.term, body: Buffer.concat(w.parts) };
              d.entries = d.entries.filter((e) => e.index > w.index);
            }
            if (w.hardState !== undefined) d.hardState = w.hardState;
            if (token !== undefined) ep.reply(token, { path: 'sim' });
          });
          return;
        case 'WalStats':
          if (token !== undefined) {
            ep.reply(token, { fsyncSeconds: [], bytesWritten: 0, segments: 0 });
          }
          return;
        case 'WalSnapshotRead':
          // The Raft node dropped the snapshot's data once saved; it reads it back here.
          sched.at(sched.nowMs + 1, () => {
            if (!alive() || token === undefined) return;
            const snap = d.snapshot;
            if (snap !== undefined && snap.index === w.index && snap.term === w.term) {
              ep.reply(token, { body: snap.body });
            } else {
              ep.replyError(token, new Error(`sim: no snapshot at ${w.index}`));
            }
          });
          return;
      }
    });
  }
}

/** fakeShard serves a ShardStore as the shard actor does (apply, read when caught up, fail
 * the reads a rewind took back). */
function fakeShard(
  ep: Endpoint<Message>, box: { s: ShardStore }, onRestore: (s: ShardStore) => void,
  onTakenBack: () => void,
): void {
  const reads = new ShardReads<ReplyToken, ShardRange>(() => box.s.currentRevision);
  const takenBack = { code: 'READ_POINT_TAKEN_BACK', message: 'read point taken back' };
  const run = (r: ShardRange, token: ReplyToken) => {
    try {
      ep.reply(token, box.s.range(r.req, r.atRevision as Revision));
    } catch (e) {
      ep.replyError(token, e as Error & { code?: string });
    }
  };
  ep.onMessage((msg, token) => {
    const s = msg as ShardMsg;
    switch (s.type) {
      case 'ShardApply':
        applyShardApply(box.s, s);
        reads.applied(s.index);
        break;
      case 'ShardRange': {
        const verdict = reads.admit(s, token!);
        if (verdict === 'run') run(s, token!);
        else if (verdict === 'takenBack') {
          onTakenBack();
          ep.replyError(token!, takenBack);
        }
        return;
      }
      case 'ShardRewind':
        for (const t of reads.rewind(s)) {
          onTakenBack();
          ep.replyError(t, takenBack);
        }
        return;
      case 'ShardRestore':
        box.s = s.dump === null ? new ShardStore()
          : ShardStore.fromSnapshot(unpack(s.dump), false, s.values);
        onRestore(box.s);
        reads.restored(s.index ?? 0);
        ep.reply(token!, { revision: box.s.currentRevision });
        break;
      case 'ShardSnapshot': {
        // As a shard sends it: the dump, its values apart (snapshotBodyParts).
        const { valueBytes, ...dump } = box.s.toSnapshot();
        ep.reply(token!, { dump: [pack(dump)], values: [valueBytes] });
        return;
      }
      default:
        if (token !== undefined) ep.replyError(token, { message: `sim: ${s.type} unsupported` });
        return;
    }
    for (const w of reads.drain()) run(w.msg, w.token);
  });
}


/** link connects two endpoints of one member; batches travel through the scheduler and are
 * dropped once the member crashed (`alive` false). Bytes moved beside a batch (MovedBytes)
 * travel with it, by reference: both ends share a thread. */
function link(a: Endpoint<Message>, b: Endpoint<Message>, sched: Scheduler, alive: () => boolean):
  void {
  type Receive = (buf: Uint8Array, moved?: readonly Uint8Array[]) => void;
  let toA: Receive | undefined;
  let toB: Receive | undefined;
  a.connect(b.name, {
    post: (buf, moved) => sched.soon(() => { if (alive()) toB?.(buf, moved); }),
    onBatch: (cb) => { toA = cb; },
    close: () => undefined,
  });
  b.connect(a.name, {
    post: (buf, moved) => sched.soon(() => { if (alive()) toA?.(buf, moved); }),
    onBatch: (cb) => { toB = cb; },
    close: () => undefined,
  });
}
