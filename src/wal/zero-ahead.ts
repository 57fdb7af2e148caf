/**
 * Zeros written ahead of the WAL's tail, as PostgreSQL's wal_init_zero does. A file system
 * such as ext4 keeps a block that was never written (a hole left by ftruncate, or an unwritten
 * extent from fallocate, which is how etcd preallocates) as metadata that the block's first
 * write changes, so the fdatasync after an append into fresh blocks also commits the journal.
 * Blocks once written with zeros and synced are plain data, and an append over them syncs
 * only its own pages: under 50-connection PUTs the WAL writer's write + fdatasync fell from
 * ≈ 430 to ≈ 320 µs here (see the performance notes, session 26).
 *
 * ZeroAhead is the bookkeeping, with no I/O: which range of the tail segment to fill next
 * (one fill at a time, written and synced off the WAL writer's thread by the actor), and the
 * rule that keeps it safe — no append may write where a fill in flight may still land, or a
 * late write of zeros would erase records. Recovery reads zeros after the records as their end
 * (decoder.ts), whether they are holes or written, so a fill changes nothing it reads.
 */
import { assert } from '../assert.js';

/** ZeroFill is one range [from, to) of a segment file to write with zeros and sync. */
export interface ZeroFill {
  readonly segment: string;
  readonly from: number;
  readonly to: number;
}

/** ZeroAheadLimits sizes the fills. */
export interface ZeroAheadLimits {
  /** leadBytes: a fill starts while fewer zeroed bytes than this lie ahead of the tail. */
  readonly leadBytes: number;
  /** stepBytes: the size of one fill. */
  readonly stepBytes: number;
  /** gapBytes: a first fill starts this far past the tail, so the appends that follow at
   * once do not wait for it. */
  readonly gapBytes: number;
  /** segmentSizeBytes: nothing is filled past it (the segment is cut there). */
  readonly segmentSizeBytes: number;
}

/** zeroFillAlign: fills start on a page boundary. */
const zeroFillAlign = 4096;

export class ZeroAhead {
  private segment: string;
  /** zeroedTo: the end of the zeros written and synced ahead of the tail (or the tail). */
  private zeroedTo: number;
  private inflight: ZeroFill | undefined;
  /** stopped: a fill failed; none is tried again in this segment. */
  private stopped = false;

  constructor(private readonly limits: ZeroAheadLimits, segment: string, tailBytes: number) {
    assert(limits.stepBytes > 0 && limits.stepBytes % zeroFillAlign === 0,
      'zero ahead: a step is whole pages', limits.stepBytes);
    this.segment = segment;
    this.zeroedTo = tailBytes;
  }

  /** next returns the fill to start now, and counts it in flight; undefined if one is in
   * flight, enough zeros lie ahead, a fill failed in this segment, or the segment is full. */
  next(tailBytes: number): ZeroFill | undefined {
    if (this.inflight !== undefined || this.stopped || this.limits.leadBytes <= 0) return;
    if (this.zeroedTo - tailBytes >= this.limits.leadBytes) return;
    const first = alignUp(tailBytes + this.limits.gapBytes, zeroFillAlign);
    const from = Math.max(this.zeroedTo, first);
    const to = Math.min(from + this.limits.stepBytes, this.limits.segmentSizeBytes);
    if (to <= from) return;
    this.inflight = { segment: this.segment, from, to };
    return this.inflight;
  }

  /** done records how a fill ended: the zeros count ahead of the tail once synced. (A fill
   * is always of the tail segment: none is in flight at a cut.) */
  done(fill: ZeroFill, ok: boolean): void {
    assert(this.inflight === fill, 'zero ahead: done is told of the fill in flight');
    this.inflight = undefined;
    if (ok) this.zeroedTo = Math.max(this.zeroedTo, fill.to);
    else this.stopped = true;
  }

  /** blocks reports whether a write of `bytes` at `tailBytes` would reach the fill in flight:
   * the append must then wait for it. */
  blocks(tailBytes: number, bytes: number): boolean {
    return this.inflight !== undefined && tailBytes + bytes > this.inflight.from;
  }

  /** get inFlight: the fill being written, if any. */
  get inFlight(): ZeroFill | undefined {
    return this.inflight;
  }

  /** truncated: the tail file was cut back to `tailBytes` (its zeros ahead are gone). */
  truncated(tailBytes: number): void {
    this.zeroedTo = tailBytes;
  }

  /** cut: the tail is a new segment, `tailBytes` long. No fill can be in flight: its range
   * lies below the old segment's size, which the appends before the cut reached only once it
   * was done (blocks). */
  cut(segment: string, tailBytes: number): void {
    assert(this.inflight === undefined, 'zero ahead: no fill in flight in a segment being cut');
    this.segment = segment;
    this.zeroedTo = tailBytes;
    this.stopped = false;
  }
}

function alignUp(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}
