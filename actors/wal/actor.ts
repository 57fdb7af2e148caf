import * as fsp from 'node:fs/promises';
import { Piscina } from 'piscina';
import {
  snapshotPoolIdleMs, walFsyncSamplesMax, walSlowFsyncMs, walSnapshotCutBytesMin,
  walSnapshotSamplesMax,
} from '../../src/constants.js';
import type { HardState } from '../../src/raft/index.js';
import type { ReplyToken } from '../../src/runtime/endpoint.js';
import type { TraceRef } from '../../src/runtime/trace.js';
import { assertNever } from '../../src/assert.js';
import { diskFaultCode, diskFaultKind, diskFaultText } from '../../src/alarms.js';
import { EtcdError, toEtcdError } from '../../src/errors.js';
import type { PackedReplies } from '../../src/runtime/endpoint.js';
import { startActor } from '../../src/runtime/worker.js';
import { failpointErrnoAsync, failpointsEnabled } from '../../src/runtime/failpoint.js';
import { collectGarbageSoon } from '../../src/runtime/gc.js';
import { moveBytes, ownsBuffer } from '../../src/runtime/codec.js';
import type { WalRecordInput, ZeroFill } from '../../src/wal/index.js';
import { createLogger, type LoggerConfig } from '../../src/log/index.js';
import { purgeSnapshots, readSnapshot } from './snap-store.js';
import { AheadAnswers } from './ahead-answers.js';
import { WalStore } from './wal-store.js';
import type {
  WalAnswers, WalAppend, WalConfig, WalMsg, WalSnapshotSave,
} from './messages.js';
import { snapshotPoolOptions, type SnapshotTaskTimed } from './snapshot-task.js';

/**
 * The WAL writer actor. Appends that arrive within one turn are written with one write and
 * one fdatasync (group commit), and only then answered. Snapshot files are written by a
 * piscina pool thread so that a large snapshot never stalls the group commit of the log, and
 * the zeros kept ahead of the tail (src/wal/zero-ahead.ts) by libuv's thread pool.
 */
const ctx = startActor<WalMsg, WalConfig>();
const cfg = ctx.config;
const log = createLogger(ctx.logConfig as LoggerConfig).child({ component: 'wal' });
const files = WalStore.open(cfg.dataDir, { logger: log,
  zeroAhead: { leadBytes: cfg.zeroAheadBytes } });
if (files.recovered.firstStart) {
  files.append([{ type: 'metadata', nodeId: cfg.memberId, clusterId: cfg.clusterId }]);
}
// One thread: snapshots are written one at a time, so their markers reach the log in order.
const pool = new Piscina({
  filename: new URL('./snapshot-task.js', import.meta.url).href,
  minThreads: 0,
  maxThreads: 1,
  idleTimeout: snapshotPoolIdleMs,
  ...snapshotPoolOptions,
});
/** saving: each snapshot being written, by index (settled: saved or failed), so that a read of
 * it waits for its file. */
const saving = new Map<number, Promise<void>>();

/** queue: appends waiting for the next group commit. */
let queue: { msg: WalAppend; token: ReplyToken | undefined; trace: TraceRef[] | undefined }[] =
  [];
let flushScheduled = false;
/** ahead: the answers the Raft node applied ahead of its append, posted once it is durable. */
const ahead = new AheadAnswers();
let fsyncSeconds: number[] = [];
let entriesPerFsync: number[] = [];
/** snapshotSaveSeconds / snapshotFsyncSeconds: snapshot timings since the last WalStats. */
let snapshotSaveSeconds: number[] = [];
let snapshotFsyncSeconds: number[] = [];

function flush(): void {
  flushScheduled = false;
  if (queue.length === 0) return;
  // Never written where a zero fill in flight may still land: the fill's end resumes it.
  let entryBytes = 0;
  for (const q of queue) entryBytes += q.msg.entries.length;
  if (files.appendWaitsForFill(entryBytes)) {
    waitingForFill = true;
    return;
  }
  const batch = queue;
  queue = [];
  const records: WalRecordInput[] = [];
  let hs: HardState | undefined;
  // The traced appends of this group commit share one span each (src/runtime/trace.ts).
  const traced: TraceRef[] = [];
  for (const q of batch) if (q.trace !== undefined) traced.push(...q.trace);
  const span = ctx.ep.startSpan('wal write+fsync', traced.length > 0 ? traced : undefined);
  for (const { msg } of batch) {
    if (msg.entries.length > 0) records.push({ type: 'framed', bytes: msg.entries });
    if (msg.hardState !== undefined) hs = msg.hardState;
  }
  // The hard state goes after the entries it may commit, as etcd's WAL.Save does.
  if (hs !== undefined) records.push({ type: 'state', state: hs });
  const t0 = performance.now();
  let entries: number;
  try {
    entries = files.append(records);
  } catch (e) {
    // A full or read-only disk (the store cut the tail back: nothing of the batch is kept) or
    // a failed disk (the store refuses from now on): the Raft node decides what follows.
    const err = toEtcdError(e);
    log.warn({ err: err.message, code: err.code, records: records.length },
      'wal: append failed; nothing of it is acknowledged');
    for (const { token } of batch) {
      if (token !== undefined) ctx.ep.replyError(token, { code: err.code, message: err.message });
    }
    settle(batch, false);
    ctx.ep.flushNow();
    return;
  }
  const seconds = (performance.now() - t0) / 1000;
  if (seconds * 1000 > walSlowFsyncMs) {
    log.warn({ tookMs: Math.round(seconds * 1000), expectedMs: walSlowFsyncMs,
      entries }, 'slow fdatasync');
  }
  if (fsyncSeconds.length < walFsyncSamplesMax) {
    fsyncSeconds.push(seconds);
    entriesPerFsync.push(entries);
  }
  // wal.entries: the log entries sharing this fsync — the traced request's and its neighbours'.
  span?.end({
    'wal.appends': batch.length, 'wal.records': entries + (hs === undefined ? 0 : 1),
    'wal.entries': entries,
    'write_fsync_ms': Math.round(seconds * 1e6) / 1e3,
  });
  for (const { token } of batch) {
    if (token !== undefined) ctx.ep.reply(token, { fsyncSeconds: seconds });
  }
  settle(batch, true);
  // Replies leave now rather than at the end of the turn: they are what the client waits for.
  ctx.ep.flushNow();
  startZeroFill();
}

/** filling: the zero fill being written; waitingForFill: an append waits for its end. */
let filling: Promise<void> | undefined;
let waitingForFill = false;
let stopping = false;
/** zeros: the bytes every fill writes (only ever read). */
let zeros: Buffer | undefined;

/** startZeroFill starts writing the next range of zeros ahead of the tail, if one is due. */
function startZeroFill(): void {
  if (filling !== undefined || stopping) return;
  const fill = files.nextZeroFill();
  if (fill === undefined) return;
  filling = writeZeros(fill).then(() => files.zeroFilled(fill, true), (e: unknown) => {
    files.zeroFilled(fill, false);
    log.warn({ err: String(e), file: fill.segment },
      'wal: could not write zeros ahead of the tail; appends go on into unwritten space');
  }).finally(() => {
    filling = undefined;
    // A waiting append goes first (it starts the next fill); otherwise the next fill, if due.
    if (waitingForFill) {
      waitingForFill = false;
      scheduleFlush();
    } else {
      startZeroFill();
    }
  });
}

/** writeZeros writes and syncs a fill through a descriptor of its own, off this thread. */
async function writeZeros(fill: ZeroFill): Promise<void> {
  // sleep(ms) holds this fill only: the thread goes on taking appends meanwhile.
  if (failpointsEnabled) await failpointErrnoAsync('walZeroFill', 'write');
  const length = fill.to - fill.from;
  if (zeros === undefined || zeros.length < length) zeros = Buffer.alloc(length);
  const fh = await fsp.open(fill.segment, 'r+');
  try {
    let done = 0;
    while (done < length) {
      const { bytesWritten } = await fh.write(zeros, done, length - done, fill.from + done);
      done += bytesWritten;
    }
    await fh.datasync();
  } finally {
    await fh.close();
  }
}

function scheduleFlush(): void {
  if (flushScheduled) return;
  flushScheduled = true;
  setImmediate(flush);
}

/** settle records how the Raft node's append in a group commit ended, and posts the answers
 * applied ahead of it once it is durable (dropped if it failed: the Raft node answers). */
function settle(batch: readonly { msg: WalAppend }[], durable: boolean): void {
  for (const { msg } of batch) {
    if (msg.seq !== undefined) postAnswers(ahead.settled(msg.seq, durable));
  }
}

/** postAnswers posts answers applied ahead to their askers (the gateway threads). */
function postAnswers(replies: readonly PackedReplies[]): void {
  for (const r of replies) {
    // Bytes packed inline in the Raft node's batch are a view of it: posting transfers the
    // buffer, so such answers go as a copy of their own.
    const bytes = ownsBuffer(r.bytes) ? r.bytes : r.bytes.slice();
    if (!ctx.ep.postPacked({ ...r, bytes })) {
      log.warn({ target: r.target }, 'wal: answers for an actor this writer has no channel to');
    }
  }
}

/** onAnswers takes the answers of an append: posted if it is durable, kept until its group
 * commit if it is queued, dropped if it failed. They follow their append on the Raft node's
 * channel and come before its next one. */
function onAnswers(a: WalAnswers): void {
  const now = ahead.take(a);
  if (now === undefined) log.warn({ seq: a.seq }, 'wal: answers for an unknown append, dropped');
  else postAnswers(now);
}

/** saveSnapshot has the pool write the snapshot file; once it is durable the marker goes
 * into the log, and segments and snapshot files the snapshot makes useless are removed. */
function saveSnapshot(msg: WalSnapshotSave, token: ReplyToken | undefined): void {
  const { index, term, parts, hardState } = msg;
  // Parts moved to this thread (MovedBytes) own their buffers and are moved on to the task's
  // thread; small ones view the batch buffer that other messages of the same batch (appends
  // not yet flushed) still view, so they are copied.
  const moved = parts.filter(ownsBuffer).map((p) => p.buffer as ArrayBuffer);
  const t0 = performance.now();
  const saved = pool.run({ dir: cfg.dataDir, term, index, parts },
    moved.length > 0 ? { transferList: moved } : {})
    .then(async ({ path, fsyncSeconds: fsync, error }: SnapshotTaskTimed) => {
      if (error !== undefined) throw snapshotFault(error);
      if (snapshotSaveSeconds.length < walSnapshotSamplesMax) {
        snapshotSaveSeconds.push((performance.now() - t0) / 1000);
        snapshotFsyncSeconds.push(fsync);
      }
      // The marker goes into the log only once the snapshot file is durable, so recovery
      // never looks for a snapshot that is not there (with a hard state that lets it use it),
      // and, as every append, never where a zero fill in flight may still land.
      while (files.appendWaitsForFill(0)) await filling;
      let cut = false;
      try {
        cut = files.cutAtSnapshot(index, walSnapshotCutBytesMin);
      } catch (e) {
        log.warn({ err: String(e) }, 'wal: could not start a segment at the snapshot');
      }
      files.saveSnapshotMarker(index, term, hardState);
      try {
        // A snapshot that started a segment keeps the one before it usable: the next start
        // reads only the new segment (readFromNewest), and a newest file that fails its CRC
        // still has an older one, with the segments that reach it, to fall back to.
        files.releaseTo(cut ? files.markerBefore(index) : index);
        // Older snapshot files are never read again once newer ones have markers, nor any
        // below the oldest segment kept.
        purgeSnapshots(cfg.dataDir, cfg.maxSnapshots,
          { logger: log, below: files.firstSegmentIndex });
      } catch (e) {
        // Space is not lost for good: the next snapshot releases and purges again.
        log.warn({ err: String(e) }, 'wal: could not release old segments or snapshots');
      }
      log.info({ index, term, path }, 'saved snapshot');
      if (token !== undefined) ctx.ep.reply(token, { path });
      collectGarbageSoon(); // this thread's copy of the body
    }).catch((e: unknown) => {
      const err = toEtcdError(e);
      const message = err.code === 'INTERNAL' ? String(e) : err.message;
      log.error({ err: message, code: err.code }, 'snapshot save failed');
      if (token !== undefined) ctx.ep.replyError(token, { code: err.code, message });
    });
  saving.set(index, saved);
  void saved.finally(() => {
    if (saving.get(index) === saved) saving.delete(index);
  });
}

ctx.ep.onMessage((msg, token) => {
  switch (msg.type) {
    case 'WalAppend':
      if (msg.seq !== undefined) ahead.appending(msg.seq);
      queue.push({ msg, token, trace: ctx.ep.traceContext });
      scheduleFlush();
      return;
    case 'WalLoad': {
      if (token === undefined) return;
      const r = files.recovered;
      const snap = r.snapshot;
      ctx.ep.reply(token, {
        hardState: r.hardState,
        entries: r.entries,
        snapshot: snap === undefined ? undefined :
          {
            index: snap.index, term: snap.term, body: moveBytes(snap.body),
            ...(snap.tail === undefined ? {} : { tail: moveBytes(snap.tail) }),
          },
        firstStart: r.firstStart,
        metadata: r.metadata === undefined ? undefined :
          { nodeId: r.metadata.nodeId, clusterId: r.metadata.clusterId },
      });
      // The Raft node owns them now; keeping them here would hold the whole log twice.
      files.releaseRecovered();
      collectGarbageSoon(); // the segments and the snapshot file read whole
      return;
    }
    case 'WalAnswers':
      onAnswers(msg);
      return;
    case 'WalSnapshotSave':
      saveSnapshot(msg, token);
      return;
    case 'WalSnapshotRead':
      if (token === undefined) return;
      // The Raft node keeps no copy of a snapshot it took: a follower may want it read back
      // while its file is still being written.
      void (saving.get(msg.index) ?? Promise.resolve())
        .then(() => readSnapshot(cfg.dataDir, msg.index, msg.term)).then(
        (body) => ctx.ep.reply(token, { body: moveBytes(body) }),
        (e: unknown) => ctx.ep.replyError(token, e as Error & { code?: string }));
      return;
    case 'WalStats':
      if (token !== undefined) {
        ctx.ep.reply(token, {
          fsyncSeconds, bytesWritten: files.bytesWritten, segments: files.segmentCount,
          snapshotSaveSeconds, snapshotFsyncSeconds, entriesPerFsync,
        });
        fsyncSeconds = [];
        entriesPerFsync = [];
        snapshotSaveSeconds = [];
        snapshotFsyncSeconds = [];
      }
      return;
    default:
      assertNever(msg);
  }
});

/** snapshotFault is the error of a snapshot file that could not be written, classified as a
 * WAL write's (the snapshot task reports the errno; a failed fsync is a failed disk). */
function snapshotFault(e: { code?: string; syscall?: string; message: string }): EtcdError {
  const kind = diskFaultKind(e.code, e.syscall === 'fsync' || e.syscall === 'fdatasync'
    ? 'fsync' : 'write');
  return new EtcdError(diskFaultCode(kind),
    diskFaultText(kind, e.code, `${e.syscall ?? 'write'} (snapshot file)`));
}

ctx.onStop(async () => {
  stopping = true;
  while (filling !== undefined) await filling;
  flush();
  files.close();
  await pool.destroy();
});

// The first fill waits for the first append: a start (a restore, a replay) does no I/O for it.
ctx.ready();
