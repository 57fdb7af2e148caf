import {
  historyEventsPerPassMax, watchersSyncedPerPassMax, watchStreamEventsMax, watchStreamsMax,
} from '../constants.js';
import { keyRangeOf } from '../mvcc/key-range.js';
import type { Change } from '../mvcc/types.js';
import type { Bytes } from '../types.js';
import {
  type HistoryChange, type HistoryRequest, ProgressWatchId, type WatchCreateSpec,
  watchErrors, type WatchResponse,
} from './types.js';
import { type GroupMember, WatcherGroup } from './watcher-group.js';
import { assert } from '../assert.js';

/**
 * WatchHub is the watch service's pure core (etcd's watchableStore + watchStream): streams of
 * watchers, each watcher a key range with a cursor `minRev` — the next revision it must see.
 *
 * Two groups, as etcd (mvcc/watchable_store.go):
 *  - synced: the watcher has seen everything up to currentRevision; every new revision's
 *    changes are routed to it as they arrive (onChanges), through WatcherGroup's key index.
 *  - unsynced: minRev ≤ currentRevision; it is caught up from history by sync passes
 *    (nextSync → the shell reads the shards → applyHistory), at most watchersSyncedPerPassMax
 *    watchers per pass, and moves to synced once its cursor passes currentRevision.
 *
 * No gap, no duplicate: a watcher's events are delivered only for revisions ≥ minRev, and
 * minRev only moves forward past what was delivered. A watcher is in exactly one group, so a
 * revision reaches it either live (synced) or from history (unsynced), never both: live
 * routing skips unsynced watchers, and history stops at the revision its pass was planned
 * for; anything newer is read by the next pass or, once synced, live.
 *
 * Bounded memory: each stream holds at most `bufferEvents` events, queued here or sent to the
 * gateway and not yet acknowledged (ack). A synced watcher whose next revision does not fit
 * is moved back to unsynced with minRev = that revision (etcd's "victim" watchers) and is
 * caught up from history when its stream has room again; a slow client never blocks the
 * others and never makes the hub buffer without bound. A revision's events for one watcher
 * travel in one response and are never split (when a stream is empty, a revision larger
 * than the whole buffer is still admitted, or it could never be delivered).
 *
 * Compaction: a watcher that needs a revision below compactRevision is cancelled with etcd's
 * answer (compact_revision, canceled, "mvcc: required revision has been compacted").
 */
export class WatchHub {
  /** currentRevision: the newest revision whose changes reached the hub. */
  currentRevision = 0;
  /** compactRevision: history below it is gone. */
  compactRevision = 0;
  private readonly synced = new WatcherGroup<Watcher>();
  /** unsynced, in round-robin order (a watcher left behind goes to the back). */
  private readonly unsynced = new Set<Watcher>();
  private readonly streams = new Map<number, Stream>();
  /** dirty: streams with queued responses since the last drain. */
  private readonly dirty = new Set<Stream>();
  /** progressWaiting: streams with a progress request not answered yet (it waits for every
   * watcher of the stream to be synced and for the revision it named). */
  private readonly progressWaiting = new Set<Stream>();
  private pass: { id: number; watchers: Watcher[] } | undefined;
  private nextPassId = 1;
  private readonly bufferEvents: number;
  private readonly perPass: number;
  private readonly historyLimit: number;
  private readonly streamsMax: number;

  constructor(opts: WatchHubOptions = {}) {
    this.bufferEvents = opts.bufferEvents ?? watchStreamEventsMax;
    this.perPass = opts.watchersSyncedPerPass ?? watchersSyncedPerPassMax;
    this.historyLimit = opts.historyEventsPerPass ?? historyEventsPerPassMax;
    this.streamsMax = opts.streamsMax ?? watchStreamsMax;
    assert(this.bufferEvents > 0 && this.perPass > 0 && this.historyLimit > 0, 'hub limits');
  }

  /**
   * recover sets the store position: at start-up (before any watch is created), and when the
   * store jumps ahead without the revisions in between reaching the hub — a follower that
   * installed its leader's snapshot. Synced watchers have seen everything up to the old
   * position, so they become unsynced from the revision after it and catch up from the
   * shards' history like any watcher left behind (or are cancelled, if it was compacted).
   */
  recover(revision: number, compactRevision: number): void {
    assert(compactRevision <= revision, 'recover: compact > current');
    if (revision > this.currentRevision && this.synced.size > 0) {
      for (const w of [...this.synced.values()]) {
        this.synced.delete(w);
        w.synced = false;
        w.minRev = Math.max(w.minRev, this.currentRevision + 1);
        this.unsynced.add(w);
        w.stream.unsyncedCount++;
      }
    }
    this.currentRevision = Math.max(this.currentRevision, revision);
    this.compactRevision = Math.max(this.compactRevision, compactRevision);
    this.answerWaitingProgress();
  }

  /** openStream registers a stream; false when watchStreamsMax streams are open. */
  openStream(streamId: number): boolean {
    if (this.streams.has(streamId)) return true;
    if (this.streams.size >= this.streamsMax) return false;
    this.streams.set(streamId, {
      id: streamId, watchers: new Map(), nextWatchId: 0, queue: [], queuedEvents: 0,
      outstandingEvents: 0, unsyncedCount: 0, progressAtLeast: 0,
    });
    return true;
  }

  /** closeStream drops a stream and all its watchers (client gone). */
  closeStream(streamId: number): void {
    const s = this.streams.get(streamId);
    if (s === undefined) return;
    for (const w of [...s.watchers.values()]) this.remove(w);
    this.streams.delete(streamId);
    this.dirty.delete(s);
    this.progressWaiting.delete(s);
  }

  /**
   * create adds a watcher to a stream (opened implicitly) and queues etcd's `created`
   * response (header revision = currentRevision), or a created+canceled one with etcd's
   * reason. Returns the watch id (-1 when refused).
   */
  create(streamId: number, spec: WatchCreateSpec): number {
    if (!this.openStream(streamId)) return -1;
    const s = this.streams.get(streamId)!;
    const refuse = (reason: string): number => {
      this.enqueue(s, {
        watchId: -1, revision: this.currentRevision, events: [], created: true, canceled: true,
        cancelReason: reason,
      });
      return -1;
    };
    const r = keyRangeOf(spec.key, spec.rangeEnd);
    if (!r.single && r.end !== undefined && r.end <= r.start) return refuse(watchErrors.emptyRange);
    let id = spec.watchId ?? 0;
    if (id !== 0) {
      if (s.watchers.has(id)) return refuse(watchErrors.duplicateId);
    } else {
      while (s.watchers.has(s.nextWatchId)) s.nextWatchId++;
      id = s.nextWatchId++;
    }
    const start = spec.startRevision ?? 0;
    const w: Watcher = {
      stream: s, id, start: r.start, end: r.end, single: r.single,
      minRev: start === 0 ? this.currentRevision + 1 : start,
      prevKv: spec.prevKv === true,
      noPut: spec.filters?.includes('NOPUT') === true,
      noDelete: spec.filters?.includes('NODELETE') === true,
      progressNotify: spec.progressNotify === true,
      synced: false, alive: true, eventsSinceTick: false,
    };
    s.watchers.set(id, w);
    this.enqueue(s, { watchId: id, revision: this.currentRevision, events: [], created: true });
    if (w.minRev > this.currentRevision) {
      w.synced = true;
      this.synced.add(w);
    } else if (w.minRev < this.compactRevision) {
      this.cancelCompacted(w);
    } else {
      this.unsynced.add(w);
      s.unsyncedCount++;
    }
    return id;
  }

  /** cancel removes a watcher at the client's request; false when the id is unknown. etcd
   * 3.4 then answers nothing, and a client that cancelled a wrong id (`{"cancel_request":{}}`
   * names watch 0) waits for an answer that never comes: we answer canceled with the reason,
   * etcd's mvcc wording ("mvcc: watcher does not exist"). */
  cancel(streamId: number, watchId: number): boolean {
    const w = this.streams.get(streamId)?.watchers.get(watchId);
    if (w === undefined) {
      if (!this.openStream(streamId)) return false;
      this.enqueue(this.streams.get(streamId)!, {
        watchId, revision: this.currentRevision, events: [], canceled: true,
        cancelReason: watchErrors.notFound,
      });
      return false;
    }
    this.remove(w);
    this.enqueue(w.stream, {
      watchId, revision: this.currentRevision, events: [], canceled: true,
    });
    return true;
  }

  /**
   * requestProgress answers a progress request (watch_id -1, header revision current) once
   * every watcher of the stream is synced — only then is "nothing before this revision is
   * missing" true (etcd 3.5 fixed 3.4's unconditional answer the same way) — and the hub has
   * reached `atLeast`, the revision the gateway had seen applied when the client asked (a
   * write acknowledged before the request is then below the answer's revision, as in etcd).
   */
  requestProgress(streamId: number, atLeast = 0): void {
    if (!this.openStream(streamId)) return;
    const s = this.streams.get(streamId)!;
    s.progressAtLeast = Math.max(s.progressAtLeast, atLeast);
    this.progressWaiting.add(s);
    this.maybeProgress(s);
  }

  /** hasPendingProgress: a progress request waits for the hub to reach its revision (the
   * shell keeps the Raft node's changes coming meanwhile). */
  get hasPendingProgress(): boolean {
    return this.progressWaiting.size > 0;
  }

  /** answerWaitingProgress tries every pending progress request (the hub's revision moved). A
   * Set may lose its current element while iterated. */
  private answerWaitingProgress(): void {
    for (const s of this.progressWaiting) this.maybeProgress(s);
  }

  /** maybeProgress answers a stream's pending progress request once every watcher of it is
   * synced and the hub has reached the revision the request named. */
  private maybeProgress(s: Stream): void {
    if (!this.progressWaiting.has(s)) return;
    if (s.unsyncedCount > 0 || this.currentRevision < s.progressAtLeast) return;
    this.progressWaiting.delete(s);
    this.enqueueProgress(s);
  }

  /**
   * onChanges routes one revision's changes (one transaction, in order) to the synced
   * watchers whose range holds each key. A watcher gets all its events of the revision in
   * one response, or — when its stream has no room — none, and goes back to unsynced.
   */
  onChanges(revision: number, changes: readonly Change[]): void {
    if (revision <= this.currentRevision && changes.length === 0) return;
    assert(revision > this.currentRevision,
      `watch: revision ${revision} after ${this.currentRevision}`);
    this.currentRevision = revision;
    this.answerWaitingProgress();
    if (this.synced.size === 0 || changes.length === 0) return;
    const hits = new Map<Watcher, Change[]>();
    for (const c of changes) {
      this.synced.forEachMatch(c.kv.key, (w) => {
        if (w.minRev > revision || !passes(w, c)) return;
        let evs = hits.get(w);
        if (evs === undefined) hits.set(w, (evs = []));
        evs.push(w.prevKv || c.prevKv === undefined ? c : { kind: c.kind, kv: c.kv });
      });
    }
    for (const [w, evs] of hits) {
      const s = w.stream;
      if (!this.fits(s, evs.length)) {
        this.synced.delete(w);
        w.synced = false;
        w.minRev = revision;
        this.unsynced.add(w);
        s.unsyncedCount++;
        continue;
      }
      w.eventsSinceTick = true;
      this.enqueue(s, { watchId: w.id, revision, events: evs });
    }
  }

  /** onCompacted records a compaction; unsynced watchers below it are cancelled by the next
   * sync pass (as etcd's syncWatchers does). */
  onCompacted(revision: number): void {
    this.compactRevision = Math.max(this.compactRevision, revision);
  }

  /** hasUnsynced reports whether a sync pass has work. */
  get hasUnsynced(): boolean {
    return this.unsynced.size > 0;
  }

  /** syncing reports whether a sync pass is waiting for history. */
  get syncing(): boolean {
    return this.pass !== undefined;
  }

  /**
   * nextSync plans a sync pass: up to watchersSyncedPerPassMax unsynced watchers whose streams
   * have room, and the history they need (one key span covering all of them, revisions from
   * the smallest cursor to currentRevision). Watchers below compactRevision are cancelled
   * here. Undefined when there is nothing to read (or a pass is already out).
   */
  nextSync(): HistoryRequest | undefined {
    if (this.pass !== undefined || this.unsynced.size === 0) return undefined;
    const picked: Watcher[] = [];
    let from = Infinity;
    let start: Bytes | undefined;
    let end: Bytes | undefined = '';
    let unbounded = false;
    for (const w of [...this.unsynced]) {
      if (picked.length >= this.perPass) break;
      if (w.minRev < this.compactRevision) {
        this.cancelCompacted(w);
        continue;
      }
      if (w.minRev > this.currentRevision) {
        this.markSynced(w);
        continue;
      }
      if (this.used(w.stream) >= this.bufferEvents) continue;
      picked.push(w);
      from = Math.min(from, w.minRev);
      if (start === undefined || w.start < start) start = w.start;
      if (w.end === undefined) unbounded = true;
      else if (w.end > end!) end = w.end;
    }
    if (picked.length === 0) return undefined;
    const id = this.nextPassId++;
    this.pass = { id, watchers: picked };
    return {
      pass: id, fromRevision: from, toRevision: this.currentRevision, key: start!,
      rangeEnd: unbounded ? '\0' : end!, limit: this.historyLimit,
    };
  }

  /**
   * applyHistory delivers a pass's history: `changes` in revision order, complete for every
   * revision in [fromRevision, throughRevision] within the pass's key span. Each watcher gets
   * its events from its cursor on, whole revisions at a time while its stream has room; its
   * cursor moves past what it got (or to throughRevision + 1), and it joins the synced group
   * once the cursor passes currentRevision.
   */
  applyHistory(pass: number, changes: readonly HistoryChange[], throughRevision: number): void {
    const p = this.pass;
    assert(p !== undefined && p.id === pass, 'watch: history answers the pass planned', pass);
    this.pass = undefined;
    for (let k = 1; k < changes.length; k++) {
      assert(changes[k - 1]!.revision <= changes[k]!.revision, 'watch: history out of order');
    }
    for (const w of p.watchers) {
      if (!w.alive || w.synced) continue;
      this.catchUp(w, changes, throughRevision);
      if (w.minRev > this.currentRevision) this.markSynced(w);
      else {
        this.unsynced.delete(w); // to the back of the round robin
        this.unsynced.add(w);
      }
    }
  }

  /** historyFailed abandons a pass (a shard failed or was compacted meanwhile); its
   * watchers stay unsynced and the next pass retries them. */
  historyFailed(pass: number): void {
    if (this.pass?.id === pass) this.pass = undefined;
  }

  /** progressTick sends etcd's progress notification (an empty response at the current
   * revision) to every synced progress_notify watcher that got no events since the last
   * tick. The shell calls it every progressNotifyIntervalMs. */
  progressTick(): void {
    for (const s of this.streams.values()) {
      for (const w of s.watchers.values()) {
        if (w.synced && w.progressNotify && !w.eventsSinceTick) {
          this.enqueue(s, { watchId: w.id, revision: this.currentRevision, events: [] });
        }
        w.eventsSinceTick = false;
      }
    }
  }

  /** drain takes every queued response, per stream; their events now count as outstanding
   * until the gateway acknowledges them. */
  drain(): { streamId: number; responses: WatchResponse[] }[] {
    const out: { streamId: number; responses: WatchResponse[] }[] = [];
    for (const s of this.dirty) {
      out.push({ streamId: s.id, responses: s.queue });
      s.queue = [];
      s.outstandingEvents += s.queuedEvents;
      s.queuedEvents = 0;
    }
    this.dirty.clear();
    return out;
  }

  /** ack: the gateway has written `events` events of a stream to its client. */
  ack(streamId: number, events: number): void {
    const s = this.streams.get(streamId);
    if (s === undefined) return;
    s.outstandingEvents = Math.max(0, s.outstandingEvents - events);
  }

  /** stats reports counts for metrics and tests. */
  stats(): { streams: number; watchers: number; synced: number; unsynced: number } {
    return {
      streams: this.streams.size, watchers: this.synced.size + this.unsynced.size,
      synced: this.synced.size, unsynced: this.unsynced.size,
    };
  }

  /** watcherStates lists up to `max` watchers with their cursors (GET /debug/watch). */
  watcherStates(max: number): { streamId: number; watchId: number; synced: boolean;
    minRev: number; bufferedEvents: number }[] {
    const out = [];
    for (const s of this.streams.values()) {
      for (const w of s.watchers.values()) {
        if (out.length >= max) return out;
        out.push({ streamId: s.id, watchId: w.id, synced: w.synced, minRev: w.minRev,
          bufferedEvents: this.used(s) });
      }
    }
    return out;
  }

  /** bufferedEvents is what a stream holds: queued plus unacknowledged (for tests). */
  bufferedEvents(streamId: number): number {
    const s = this.streams.get(streamId);
    return s === undefined ? 0 : this.used(s);
  }

  private catchUp(w: Watcher, changes: readonly HistoryChange[], through: number): void {
    const s = w.stream;
    const evs: Change[] = [];
    let i = firstAtOrAfter(changes, w.minRev);
    let blockedAt = 0;
    while (i < changes.length && changes[i]!.revision <= through) {
      const rev = changes[i]!.revision;
      const group: Change[] = [];
      for (; i < changes.length && changes[i]!.revision === rev; i++) {
        const c = changes[i]!.change;
        if (!inRange(w, c.kv.key) || !passes(w, c)) continue;
        group.push(w.prevKv || c.prevKv === undefined ? c : { kind: c.kind, kv: c.kv });
      }
      if (group.length === 0) continue;
      const held = this.used(s) + evs.length;
      if (held > 0 && held + group.length > this.bufferEvents) {
        blockedAt = rev;
        break;
      }
      for (const c of group) evs.push(c);
    }
    const next = blockedAt !== 0 ? blockedAt : Math.max(w.minRev, through + 1);
    w.minRev = next;
    if (evs.length > 0) {
      w.eventsSinceTick = true;
      this.enqueue(s, { watchId: w.id, revision: next - 1, events: evs });
    }
  }

  private markSynced(w: Watcher): void {
    this.unsynced.delete(w);
    w.synced = true;
    this.synced.add(w);
    const s = w.stream;
    s.unsyncedCount--;
    this.maybeProgress(s);
  }

  private cancelCompacted(w: Watcher): void {
    this.remove(w);
    this.enqueue(w.stream, {
      watchId: w.id, revision: this.currentRevision, events: [], canceled: true,
      compactRevision: this.compactRevision, cancelReason: watchErrors.compacted,
    });
  }

  private remove(w: Watcher): void {
    if (!w.alive) return;
    w.alive = false;
    const s = w.stream;
    s.watchers.delete(w.id);
    if (w.synced) this.synced.delete(w);
    else if (this.unsynced.delete(w)) {
      s.unsyncedCount--;
      this.maybeProgress(s);
    }
  }

  private enqueueProgress(s: Stream): void {
    this.enqueue(s, { watchId: ProgressWatchId, revision: this.currentRevision, events: [] });
  }

  private enqueue(s: Stream, r: WatchResponse): void {
    s.queue.push(r);
    s.queuedEvents += r.events.length;
    this.dirty.add(s);
  }

  private used(s: Stream): number {
    return s.queuedEvents + s.outstandingEvents;
  }

  /** fits: n more events fit in the stream's buffer (always, when the buffer is empty). */
  private fits(s: Stream, n: number): boolean {
    const used = this.used(s);
    return used === 0 || used + n <= this.bufferEvents;
  }
}

/** WatchHubOptions override the limits of src/constants.ts (tests use small ones). */
export interface WatchHubOptions {
  bufferEvents?: number;
  watchersSyncedPerPass?: number;
  historyEventsPerPass?: number;
  streamsMax?: number;
}

/** Watcher is one watch: a key range, filters, and its cursor. */
interface Watcher extends GroupMember {
  stream: Stream;
  id: number;
  /** minRev: the next revision this watcher must see (all before it were delivered). */
  minRev: number;
  prevKv: boolean;
  noPut: boolean;
  noDelete: boolean;
  progressNotify: boolean;
  /** synced: in the synced group (else in unsynced, or removed when !alive). */
  synced: boolean;
  alive: boolean;
  eventsSinceTick: boolean;
}

/** Stream is one client connection's watchers and its bounded buffer. */
interface Stream {
  id: number;
  watchers: Map<number, Watcher>;
  nextWatchId: number;
  queue: WatchResponse[];
  /** queuedEvents + outstandingEvents ≤ bufferEvents, except one oversized revision. */
  queuedEvents: number;
  outstandingEvents: number;
  unsyncedCount: number;
  /** progressAtLeast: the revision the pending progress answer waits for. */
  progressAtLeast: number;
}

function passes(w: Watcher, c: Change): boolean {
  return c.kind === 'put' ? !w.noPut : !w.noDelete;
}

function inRange(w: Watcher, key: Bytes): boolean {
  if (w.single) return key === w.start;
  return key >= w.start && (w.end === undefined || key < w.end);
}

function firstAtOrAfter(changes: readonly HistoryChange[], rev: number): number {
  let lo = 0;
  let hi = changes.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (changes[mid]!.revision < rev) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
