import type { Change } from '../mvcc/types.js';
import type { Bytes } from '../types.js';

/**
 * The watch hub's vocabulary, shared by the pure core (hub.ts), the actor shell
 * (actors/watch) and the gateway codecs (src/gateway/watch-routes.ts).
 */

/** WatchFilter drops one kind of event, as etcd's WatchCreateRequest.FilterType. */
export type WatchFilter = 'NOPUT' | 'NODELETE';

/** WatchCreateSpec is a watch request as the gateway decoded it. */
export interface WatchCreateSpec {
  key: Bytes;
  /** rangeEnd as in a RangeRequest: undefined/'' one key, '\0' every key ≥ key. */
  rangeEnd?: Bytes;
  /** startRevision 0 (or absent) means "from the next revision". */
  startRevision?: number;
  /** watchId 0 (or absent) asks the hub to choose one (etcd's AutoWatchID). */
  watchId?: number;
  prevKv?: boolean;
  progressNotify?: boolean;
  filters?: WatchFilter[];
}

/**
 * WatchResponse is one etcd WatchResponse of a stream, minus the header's cluster fields
 * (the gateway adds them). `revision` is the header revision. For a response with events or a
 * progress answer, every event of the watcher (stream) at or below it has been delivered, in
 * this response or an earlier one — a client that reconnects from revision + 1 misses nothing
 * and sees nothing twice. A `created` response carries the current revision (as etcd's does),
 * which says nothing about delivery.
 */
export interface WatchResponse {
  watchId: number;
  revision: number;
  /** events: puts and deletes (Change.kind), all events of a revision together. */
  events: Change[];
  created?: boolean;
  canceled?: boolean;
  compactRevision?: number;
  cancelReason?: string;
}

/** ProgressWatchId is etcd's InvalidWatchID (-1): a progress answer for the whole stream. */
export const ProgressWatchId = -1;

/** Messages etcd 3.4 uses for refused watches (mvcc/watcher.go, mvcc/kvstore.go). */
export const watchErrors = {
  compacted: 'mvcc: required revision has been compacted',
  duplicateId: 'mvcc: duplicate watch ID provided on the WatchStream',
  emptyRange: 'mvcc: watcher range is empty',
  tooManyWatchers: 'etcdserver: too many requests',
  /** notFound: a cancel of an id the stream does not have (etcd's ErrWatcherNotExist). */
  notFound: 'mvcc: watcher does not exist',
} as const;

/** HistoryRequest is what a sync pass needs read from the shards' history. */
export interface HistoryRequest {
  /** pass identifies the sync pass (applyHistory checks it). */
  pass: number;
  fromRevision: number;
  toRevision: number;
  key: Bytes;
  rangeEnd: Bytes;
  /** limit bounds the events read (whole revisions: the shards never split one). */
  limit: number;
}

/** HistoryChange is one change read from history, with its revision. */
export interface HistoryChange {
  revision: number;
  change: Change;
  /** sub: the change's place in its transaction (etcd's sub revision); absent: 0. */
  sub?: number;
}
