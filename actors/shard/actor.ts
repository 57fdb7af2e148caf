import { IdleRepack, ShardReads, ShardStore } from '../../src/mvcc/index.js';
import { setPlainLoads } from '../../src/mvcc/kv-columns.js';
import { mallocHugePages } from '../../src/server/huge-pages.js';
import type { Revision } from '../../src/types.js';
import {
  isShared, moveBytes, movedBytesMin, packBinFieldsApart, releaseBytes, unpack,
} from '../../src/runtime/codec.js';
import type { ReplyToken } from '../../src/runtime/endpoint.js';
import { assertNever } from '../../src/assert.js';
import { EtcdError } from '../../src/errors.js';
import { keyValueSpanHash } from '../../src/grpc/digest.js';
import { keyValueSpanBytes, putKeyValueSpan, putRangeEntry } from '../../src/grpc/wire.js';
import type {
  EntryEncoder, RangeEntries, ShardExportPage, SpanEncoder,
} from '../../src/mvcc/shard-store.js';
import { startActor } from '../../src/runtime/worker.js';
import {
  collectGarbageSoon, collectIdleGarbageSoon, DroppedBytesWatch,
} from '../../src/runtime/gc.js';
import { heartbeatIntervalMs, keysRepackIdleMs } from '../../src/constants.js';
import {
  applyShardApply, type ShardConfig, type ShardDigest, type ShardExport, type ShardExportResp,
  type ShardMsg, type ShardRange, type ShardRangeEntries, type ShardRangeEntriesResp,
  type ShardRestore,
} from './messages.js';

/**
 * The storage shard actor: a thin shell around one ShardStore (src/mvcc). It applies the
 * revisions the Raft node sends, in order, and answers reads. Reads that name a revision
 * this shard has not applied yet wait in `reads` (bounded by the gateway's admission
 * limit) and run as soon as the revision arrives.
 */
const ctx = startActor<ShardMsg, ShardConfig>();
// A restore builds its columns and arenas where the allocator gives huge pages, if it does
// (src/mvcc/kv-columns.ts plainLoads).
setPlainLoads(mallocHugePages() === 'on');
let store = new ShardStore();
/** reads: the reads waiting for revisions and indexes not applied yet (src/mvcc). */
/** ShardRead: a message that reads at a revision (and waits for it as a range does). */
type ShardRead = ShardRange | ShardRangeEntries | ShardDigest | ShardExport;
const reads = new ShardReads<ReplyToken, ShardRead>(() => store.currentRevision);
const crashOnRead = ctx.config.failpoints?.includes('shard-crash-on-read') === true;
/** takenBack: the answer to a read whose read point was taken back (ShardReads). */
const takenBack = new EtcdError('READ_POINT_TAKEN_BACK');

function runRange(msg: ShardRead, token: ReplyToken): void {
  try {
    const at = msg.atRevision as Revision;
    switch (msg.type) {
      case 'ShardRange':
        ctx.ep.reply(token, store.range(msg.req, at));
        return;
      case 'ShardRangeEntries':
        ctx.ep.reply(token, entriesReply(store.rangeEntries(msg.req, at, entryEncoder)));
        return;
      case 'ShardDigest':
        ctx.ep.reply(token, store.digest(msg.from, msg.limit, at, keyValueSpanHash));
        return;
      case 'ShardExport':
        ctx.ep.reply(token, exportReply(store.exportPage(msg.from, msg.limit, at, spanEncoder)));
        return;
      default:
        assertNever(msg);
    }
  } catch (e) {
    ctx.ep.replyError(token, e as Error & { code?: string });
  }
}

const spanEncoder: SpanEncoder = { bytes: keyValueSpanBytes, put: putKeyValueSpan };
const entryEncoder: EntryEncoder = { bytes: keyValueSpanBytes, put: putRangeEntry };

/** entriesReply is a range's items as ShardRangeEntriesResp: the bytes moved, not copied. */
function entriesReply(r: RangeEntries | undefined): ShardRangeEntriesResp {
  if (r === undefined) {
    return { bytes: new Uint8Array(0), ends: new Uint8Array(0), count: 0, more: false,
      refused: true };
  }
  return { bytes: moveBytes(r.bytes), count: r.count, more: r.more,
    ends: moveBytes(new Uint8Array(r.ends.buffer, r.ends.byteOffset, r.ends.byteLength)) };
}

/** exportReply is an export page as ShardExportResp: its bytes moved, not copied. */
function exportReply(page: ShardExportPage | undefined): ShardExportResp {
  if (page === undefined) {
    return { bytes: new Uint8Array(0), index: new Uint8Array(0), keys: 0, refused: true };
  }
  const n = page.mods.length;
  const index = new Uint8Array(n * 12);
  index.set(new Uint8Array(page.mods.buffer, page.mods.byteOffset, n * 8), 0);
  index.set(new Uint8Array(page.ends.buffer, page.ends.byteOffset, n * 4), n * 8);
  return { bytes: moveBytes(page.bytes), index: moveBytes(index), keys: n,
    ...(page.last !== undefined ? { last: page.last } : {}) };
}

/** admitRange runs a read now, keeps it until the shard catches up, or fails it (taken back). */
function admitRange(msg: ShardRead, token: ReplyToken): void {
  if (crashOnRead && msg.type === 'ShardRange' && msg.req.key === 'failpoint/crash') {
    throw new Error('failpoint shard-crash-on-read: crashing the shard thread');
  }
  const verdict = reads.admit(msg, token);
  if (verdict === 'run') runRange(msg, token);
  else if (verdict === 'takenBack') ctx.ep.replyError(token, takenBack);
}

function drainWaiting(): void {
  for (const w of reads.drain()) runRange(w.msg, w.token);
}

/** restore replaces the store with a snapshot's dump (null: the empty store). */
function restore(msg: ShardRestore, token: ReplyToken | undefined): void {
  // A dump in shared memory is a view of the snapshot file's body, which nobody writes: the
  // store keeps reading its values there (as the applier does) instead of copying them.
  // A snapshot that keeps its values apart sends them apart: then they are what is kept.
  store = msg.dump === null ? new ShardStore()
    : ShardStore.fromSnapshot(unpack(msg.dump), isShared(msg.values ?? msg.dump), msg.values);
  // Any other dump is copied (columns, value bytes, keys): its memory goes back now, not at
  // the next full collection.
  if (msg.dump !== null) releaseBytes(msg.dump);
  if (msg.values !== undefined) releaseBytes(msg.values);
  reads.restored(msg.index ?? 0);
  drainWaiting();
  if (token !== undefined) ctx.ep.reply(token, { revision: store.currentRevision });
  // The old store and the load's temporaries are garbage. Skipping this collection at boot
  // (no old store) gained nothing measurable and left ≈ 25–50 MiB more resident when the
  // member began serving (docs/performance.md, session 7).
  collectGarbageSoon();
}

/** lastApplyMs: when changes last arrived. */
let lastApplyMs = 0;
/** keysRepack packs the store's keys left alone back into bytes while no change arrives
 * (keysRepackIdleMs), as the Raft node does with the applier's; reads are answered between
 * its slices. */
const keysRepack = new IdleRepack({
  repack: (chunks) => store.repackKeys(chunks),
  chunks: () => store.keyChunks(),
  idle: () => performance.now() - lastApplyMs >= keysRepackIdleMs,
  defer: (fn) => setImmediate(fn),
  collect: () => collectIdleGarbageSoon(),
});
setInterval(() => keysRepack.tick(), heartbeatIntervalMs).unref();

ctx.ep.memoryReporter = () => ({
  storeColumns: store.offHeapBytes(), storeSharedValues: store.sharedValueBytes(),
  storeApplierValues: store.applierValueBytes(),
});
/** dropped: what the store replaced, and when that is worth a GC (DroppedBytesWatch). */
const dropped = new DroppedBytesWatch(collectGarbageSoon);
ctx.ep.onMessage((msg, token) => {
  switch (msg.type) {
    case 'ShardApply':
      lastApplyMs = performance.now();
      applyShardApply(store, msg);
      reads.applied(msg.index);
      drainWaiting();
      // The store replaced columns or an arena (a rebuild, a growth past a reservation): the
      // old ones are garbage. A growth in place leaves nothing to collect.
      dropped.notice(store.droppedBytes());
      return;
    case 'ShardRange':
    case 'ShardRangeEntries':
    case 'ShardDigest':
    case 'ShardExport':
      if (token !== undefined) admitRange(msg, token);
      return;
      return;
    case 'ShardRestore':
      restore(msg, token);
      return;
    case 'ShardRewind':
      for (const t of reads.rewind(msg)) ctx.ep.replyError(t, takenBack);
      return;
    case 'ShardSnapshot':
      // The dump's columns move to the Raft node as they are (no packed copy of them all),
      // and its values apart (the snapshot file keeps them apart: snapshotBodyParts), where
      // they lie in runs in the arena as views of that shared memory.
      if (token !== undefined) {
        const { valueBytes, ...dump } = store.toSnapshotPieces(movedBytesMin);
        ctx.ep.reply(token, {
          dump: packBinFieldsApart(dump).map(moveBytes), values: valueBytes.map(moveBytes),
        });
      }
      collectGarbageSoon(); // the dump's columns and bytes, once sent
      return;
    case 'ShardHistory': {
      if (token === undefined) return;
      try {
        const to = Math.min(msg.toRevision, store.currentRevision);
        const subs: number[] = [];
        const changes = store.history(
          msg.fromRevision as Revision, to as Revision, msg.key, msg.rangeEnd, msg.limit, subs,
        );
        const out = changes.map((change, i) => ({
          revision: change.kv.modRevision, change, sub: subs[i]!,
        }));
        // history never splits a revision, so a full answer ends at its last revision.
        const full = msg.limit > 0 && out.length >= msg.limit;
        const through = full ? out[out.length - 1]!.revision : to;
        ctx.ep.reply(token, { changes: out, throughRevision: through });
      } catch (e) {
        ctx.ep.replyError(token, e as Error & { code?: string });
      }
      return;
    }
    case 'ShardStats':
      if (token !== undefined) {
        const s = store.stats();
        ctx.ep.reply(token, {
          ...s, currentRevision: store.currentRevision, compactRevision: store.compactRevision,
        });
      }
      return;
    default:
      assertNever(msg);
  }
});

ctx.ready();
