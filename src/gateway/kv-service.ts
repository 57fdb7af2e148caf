import type {
  AuthChanged, ProposalRequest, RaftApplied, RaftMsg, RaftReplies,
} from '../../actors/raft/messages.js';
import { readPointFields, readPointRegion } from '../../actors/raft/messages.js';
import { readPointAttemptsMax } from '../constants.js';
import { SharedCell } from '../runtime/shared-cell.js';
import type { AuthInfo } from '../auth/store.js';
import { isCappedRequest } from '../alarms.js';
import { encodeRequest } from '../cluster/proposal.js';
import { addHashes } from '../grpc/digest.js';
import { type MergedEntries, mergeEntries } from '../grpc/range-entries.js';
import type { ShardMsg, ShardReplies } from '../../actors/shard/messages.js';
import { ErrFutureRev, mergeRanges, shardOf } from '../mvcc/index.js';
import type {
  RangeRequest, RangeResponse, ResponseHeader, WriteRequest, WriteResponse,
} from '../mvcc/types.js';
import type { ActorRef, Endpoint, Message } from '../runtime/endpoint.js';
import type { ActorSystem } from '../runtime/system.js';
import type { TraceRef } from '../runtime/trace.js';
import type { Revision } from '../types.js';

/** ReadPoint is where a linearizable read reads: the revision, and the Raft index of the last
 * batch sent to the shards (which they must have applied: a compaction has no revision). */
interface ReadPoint {
  revision: number;
  shardIndex: number;
  /** rewinds: the published point's count of rewinds (ShardRewind); absent: any other. */
  rewinds?: number;
}

/** ReadPointCounts: how this gateway's linearizable reads found their read point. */
export interface ReadPointCounts {
  /** shared: read from the Raft node's published point (a lone voter's, read-point.ts). */
  shared: number;
  /** asked: through a read-index ask to the Raft node. */
  asked: number;
}

/**
 * KvService is the gateway's view of the storage pipeline: both HTTP APIs (/v3 and /v1) call
 * it, and it hides which actor does what.
 *
 *  - Writes: one ask to the Raft node, answered after commit and apply.
 *  - Linearizable reads on a member that is the cluster's only voter take the read point the
 *    Raft node publishes in shared memory (actors/raft/read-point.ts): no ask at all.
 *  - Other linearizable reads: every read that arrives within one turn of the event loop
 *    shares ONE read-index ask to the Raft node (Raft §6.4); the reply is the revision to read
 *    at.
 *  - Either way, each read then goes straight to the shard(s) holding its keys, which wait
 *    until they have applied that revision. A single-key read costs one shard ask; a range
 *    asks every shard at the same revision and merges, so it never sees part of a
 *    transaction.
 *  - Serializable reads skip the read index and read at the newest revision this gateway has
 *    seen applied.
 */
export class KvService {
  private readonly raft: ActorRef<RaftMsg, RaftReplies>;
  private readonly shards: ActorRef<ShardMsg, ShardReplies>[];
  /** knownRevision: the newest revision the Raft node has reported applied. */
  knownRevision = 0;
  knownTerm = 0;
  /** rangeTotal counts ranges served (etcd_mvcc_range_total). */
  rangeTotal = 0;
  /** readPoints counts how linearizable reads found their read point. */
  readonly readPoints: ReadPointCounts = { shared: 0, asked: 0 };
  /** readPoint: the current generation's published read point, if any. */
  private readPoint: SharedCell | undefined;
  private readonly readPointOut: number[] = [0, 0, 0, 0];
  private readWaiters: {
    resolve(r: ReadPoint): void; reject(e: Error): void; trace: TraceRef[] | undefined;
  }[] = [];

  constructor(
    private readonly ep: Endpoint<Message>,
    shardCount: number,
    public memberId: number,
    public clusterId: number,
  ) {
    this.raft = ep.ref<RaftMsg, RaftReplies>('raft');
    // Until the HTTP server installs the gateway's handler (which passes these on), pushes are
    // this service's: the Raft node reports applied revisions from its first pass.
    ep.onMessage((msg) => {
      this.onPush(msg);
    });
    this.shards = Array.from({ length: shardCount },
      (_, i) => ep.ref<ShardMsg, ShardReplies>(`shard-${i}`));
  }

  /** header builds etcd's response header at a revision. */
  header(revision: number): ResponseHeader {
    return {
      clusterId: this.clusterId, memberId: this.memberId,
      revision: revision as Revision, raftTerm: this.knownTerm,
    };
  }

  /** onAuth hears the Raft node's AuthChanged pushes (the auth gate); the last state pushed
   * before it was set is kept in lastAuth. */
  onAuth?: (m: AuthChanged) => void;
  lastAuth?: AuthChanged;

  /** propose proposes any request and returns its applied result (auth requests). */
  async propose(req: ProposalRequest): Promise<RaftReplies['RaftPropose']> {
    const r = await this.raft.ask({ type: 'RaftPropose', reqBytes: encodeRequest(req) });
    this.learn(r.revision, r.raftTerm);
    return r;
  }

  /** write proposes a put, delete, txn or compaction and returns its applied result; `by`
   * (auth enabled) has the Raft node check the sender's permissions again at apply time. */
  async write(req: WriteRequest, by?: AuthInfo): Promise<{
    header: ResponseHeader; response: WriteResponse;
  }> {
    const bytes = encodeRequest(by === undefined ? req : { type: 'authed', by, req });
    const r = await this.raft.ask({
      type: 'RaftPropose', reqBytes: bytes, capped: isCappedRequest(req),
    });
    this.learn(r.revision, r.raftTerm);
    // Ranges inside a txn are answered by the applier from its latest-state view.
    return { header: this.header(r.revision), response: r.response as WriteResponse };
  }

  /** range reads, linearizably unless req.serializable. */
  range(req: RangeRequest): Promise<{ header: ResponseHeader; response: RangeResponse }> {
    this.rangeTotal++;
    // A shard's partial is not always final on its own (etcd's sort quirks, keys-only with a
    // VALUE sort): the merge finishes it, even for one part.
    return this.readShards(req, 'ShardRange', (parts) => mergeRanges(req, parts));
  }

  /**
   * rangeEntries reads as `range` does a request answered in key order (entriesRangeable),
   * the key-values written by the shards as items of RangeResponse's kvs field and merged as
   * bytes (src/grpc/range-entries.ts); undefined when a shard could not write one (read it
   * with `range`).
   */
  rangeEntries(req: RangeRequest):
    Promise<{ header: ResponseHeader; response: MergedEntries | undefined }> {
    this.rangeTotal++;
    return this.readShards(req, 'ShardRangeEntries', (parts) => (
      parts.some((p) => p.refused === true) ? undefined : mergeEntries(req, parts)));
  }

  /** readShards asks the shards that hold req's keys at its read point and merges their
   * answers. `attempt` counts the reads again after a read point was taken back (at most
   * readPointAttemptsMax). */
  private async readShards<T extends 'ShardRange' | 'ShardRangeEntries', R>(req: RangeRequest,
    type: T, merge: (parts: ShardReplies[T][]) => R, attempt = 1):
    Promise<{ header: ResponseHeader; response: R }> {
    // A traced read's shard asks come after an await: they continue the context kept here.
    const trace = this.ep.traceContext;
    const point: ReadPoint = req.serializable === true
      ? { revision: this.knownRevision, shardIndex: 0 }
      : this.sharedReadPoint() ?? await this.readIndex();
    const readRev = point.revision;
    const want = req.revision ?? 0;
    if (want > readRev) throw new ErrFutureRev();
    const msg = {
      type, req, atRevision: want > 0 ? want : readRev,
      waitRevision: readRev, waitIndex: point.shardIndex, rewinds: point.rewinds,
    } as Extract<ShardMsg, { type: T }>;
    const ask = (s: ActorRef<ShardMsg, ShardReplies>) =>
      s.ask(msg) as Promise<ShardReplies[T]>;
    let response: R;
    try {
      const single = req.rangeEnd === undefined || req.rangeEnd === '';
      const shards = single ? [this.shards[shardOf(req.key, this.shards.length)]!] : this.shards;
      response = merge(await this.ep.withTrace(trace, () => Promise.all(shards.map(ask))));
    } catch (e) {
      // The point was taken back (a failed append of entries applied ahead: ShardRewind);
      // a new one is not.
      if ((e as { code?: string }).code !== 'READ_POINT_TAKEN_BACK' ||
        attempt >= readPointAttemptsMax) throw e;
      return this.ep.withTrace(trace, () => this.readShards(req, type, merge, attempt + 1));
    }
    return { header: this.header(readRev), response };
  }

  /**
   * digest is HashKV's hash of every live key-value at `revision` (src/grpc/digest.ts): each
   * shard hashes its own keys a page of `pageKeys` at a time (the answers are a few numbers;
   * between pages the shard serves other requests), the shards at once, their sums added.
   */
  digest(revision: number, pageKeys: number): Promise<{ hash: number; keys: number }> {
    return this.readAt(revision, async (wait) => {
      const sums = await Promise.all(this.shards.map(async (s) => {
        let hash = 0;
        let keys = 0;
        await shardPages((from) => s.ask({ type: 'ShardDigest', from, limit: pageKeys, ...wait }),
          (page) => {
            hash = addHashes(hash, page.sum);
            keys += page.keys;
          });
        return { hash, keys };
      }));
      return sums.reduce((a, b) => ({ hash: addHashes(a.hash, b.hash), keys: a.keys + b.keys }));
    });
  }

  /**
   * exportPages reads every live key-value at `revision` as the shards encode it for a
   * snapshot file (ShardExport), each shard a page of `pageKeys` at a time, the shards at
   * once: the pages with their shard's index, each shard's in its key order. Undefined when
   * a shard could not encode a key-value (the caller reads the general way).
   */
  exportPages(revision: number, pageKeys: number):
    Promise<{ shard: number; page: ShardReplies['ShardExport'] }[] | undefined> {
    return this.readAt(revision, async (wait) => {
      const out: { shard: number; page: ShardReplies['ShardExport'] }[] = [];
      let refused = false;
      await Promise.all(this.shards.map((s, shard) => shardPages(
        (from) => s.ask({ type: 'ShardExport', from, limit: pageKeys, ...wait }),
        (page) => {
          refused ||= page.refused === true;
          out.push({ shard, page });
        })));
      return refused ? undefined : out;
    });
  }

  /** readAt runs `run` with the shard fields of a linearizable read at `revision` (as a
   * range at it would be read), again from a new read point when the point was taken back. */
  private async readAt<T>(revision: number, run: (wait: ShardWait) => Promise<T>):
    Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const point = this.sharedReadPoint() ?? await this.readIndex();
      if (revision > point.revision) throw new ErrFutureRev();
      try {
        return await run({ atRevision: revision, waitRevision: point.revision,
          waitIndex: point.shardIndex, rewinds: point.rewinds });
      } catch (e) {
        if ((e as { code?: string }).code !== 'READ_POINT_TAKEN_BACK' ||
          attempt >= readPointAttemptsMax) throw e;
      }
    }
  }

  /** status asks the Raft node for its status. */
  status(): Promise<RaftReplies['RaftStatus']> {
    return this.raft.ask({ type: 'RaftStatus' });
  }

  /** dbSizeBytes sums the shards' approximate MVCC sizes (etcd's dbSize is its bbolt file). */
  async dbSizeBytes(): Promise<number> {
    const st = await Promise.all(this.shards.map((s) => s.ask({ type: 'ShardStats' })));
    return st.reduce((n, x) => n + x.bytes, 0);
  }

  /** refresh learns the current revision (after a restart of the actors). */
  async refresh(): Promise<void> {
    const st = await this.status();
    // A restarted member's identity comes from its WAL, not from the flags.
    this.memberId = st.memberId;
    this.clusterId = st.clusterId;
    this.learn(st.revision, st.raftTerm);
  }

  /** onPush takes a message the actors pushed to the gateway; false when not this service's.
   * The Raft node reports applied revisions in a cluster (RaftApplied), so that serializable
   * reads see writes that entered through other members. */
  onPush(msg: Message): boolean {
    if (msg.type === 'AuthChanged') {
      const m = msg as AuthChanged;
      if (m.state !== undefined) this.lastAuth = { type: 'AuthChanged', state: m.state };
      this.onAuth?.(m);
      return true;
    }
    if (msg.type !== 'RaftApplied') return false;
    const m = msg as RaftApplied;
    this.learn(m.revision, m.raftTerm);
    return true;
  }

  /** mailboxDepth: the deepest mailbox behind this service (for admission control). */
  get mailboxDepth(): number {
    let d = this.raft.depth;
    for (const s of this.shards) d = Math.max(d, s.depth);
    return d;
  }

  private learn(revision: number, term: number): void {
    if (revision > this.knownRevision) this.knownRevision = revision;
    if (term > this.knownTerm) this.knownTerm = term;
  }

  /** forSystem makes the KvService of an actor system's main thread (its gateway endpoint),
   * taking each generation's shared read point as the actors start and restart. Before the
   * actors start: the Raft node may report applied revisions at once. */
  static forSystem(system: ActorSystem, shardCount: number, memberId: number,
    clusterId: number): KvService {
    const kv = new KvService(system.gateway, shardCount, memberId, clusterId);
    system.opts.onShared = (_generation, shared) => { kv.setReadPoint(shared[readPointRegion]); };
    return kv;
  }

  /** setReadPoint takes a generation's shared read point (undefined: none). */
  setReadPoint(buffer: SharedArrayBuffer | undefined): void {
    this.readPoint = buffer === undefined ? undefined : new SharedCell(buffer, readPointFields);
  }

  /** sharedReadPoint reads the Raft node's published point; undefined: ask for one. */
  private sharedReadPoint(): ReadPoint | undefined {
    const out = this.readPointOut;
    if (this.readPoint?.read(out) !== true) return undefined;
    this.readPoints.shared++;
    this.learn(out[0]!, out[2]!);
    return { revision: out[0]!, shardIndex: out[1]!, rewinds: out[3]! };
  }

  private readIndex(): Promise<ReadPoint> {
    this.readPoints.asked++;
    return new Promise((resolve, reject) => {
      this.readWaiters.push({ resolve, reject, trace: this.ep.traceContext });
      if (this.readWaiters.length === 1) setImmediate(this.issueReadIndex);
    });
  }

  private readonly issueReadIndex = (): void => {
    const waiters = this.readWaiters;
    this.readWaiters = [];
    let p: Promise<RaftReplies['RaftReadIndex']>;
    // The shared read index continues every traced read that waits for it.
    const traced: TraceRef[] = [];
    for (const w of waiters) if (w.trace !== undefined) traced.push(...w.trace);
    try {
      p = this.ep.withTrace(traced, () => this.raft.ask({ type: 'RaftReadIndex' }));
      // This runs after the turn's requests were read, so the batch is complete: send it.
      this.ep.flushNow();
    } catch (e) {
      for (const w of waiters) w.reject(e as Error);
      return;
    }
    p.then((r) => {
      this.learn(r.revision, r.raftTerm);
      for (const w of waiters) w.resolve({ revision: r.revision, shardIndex: r.shardIndex });
    }, (e: Error) => {
      for (const w of waiters) w.reject(e);
    });
  };
}

/** ShardWait: the fields by which a shard read waits for its revision (ShardRange's). */
interface ShardWait {
  atRevision: number;
  waitRevision: number;
  waitIndex: number;
  rewinds: number | undefined;
}

/** shardPages asks one shard for page after page (each from after the last one's `last`)
 * until a page has no `last`, handing each to `use`. */
async function shardPages<P extends { last?: string }>(ask: (from: string) => Promise<P>,
  use: (page: P) => void): Promise<void> {
  for (let from = '\0'; ;) {
    const page = await ask(from);
    use(page);
    if (page.last === undefined) return;
    from = page.last + '\0';
  }
}
