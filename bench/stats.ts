/**
 * stats: the latency histogram the load generator fills and the figures drawn from it. Pure:
 * no clock, no I/O, so it can be tested and merged across processes.
 *
 * Histogram is HDR-style (log-linear): values are whole microseconds; below 2^subBucketBits
 * every value has its own bucket, above it every power-of-two range is split into
 * 2^subBucketBits / 2 equal buckets, so a bucket is never wider than 1/128 of its values
 * (< 0.8 % relative error) and the whole range up to ~35 minutes fits in ~3,200 counters.
 * Worked example with subBucketBits = 7: 100 µs → bucket 100 (exact); 1,000 µs → magnitude 9,
 * shift 2, sub-bucket 250, bucket 3·128 + 122 = 506, which holds 1,000–1,003 µs.
 */

/** subBucketBits sets the histogram's precision: 2^7 = 128 sub-buckets per magnitude. */
export const subBucketBits = 7;
const subBucketCount = 1 << subBucketBits;
/** valueMaxUs is the largest value recorded as itself; larger values are clamped to it. */
export const valueMaxUs = 2 ** 31 - 1;
/** bucketCount is the number of counters a histogram holds. */
export const bucketCount = (31 - subBucketBits + 1) * subBucketCount;

/** bucketIndexOf maps a value in µs (clamped to 0..valueMaxUs, rounded down) to its bucket. */
export function bucketIndexOf(valueUs: number): number {
  const v = Math.min(valueMaxUs, Math.max(0, Math.floor(valueUs)));
  if (v < subBucketCount) return v;
  const magnitude = 31 - Math.clz32(v);
  const shift = magnitude - subBucketBits;
  return (shift + 1) * subBucketCount + ((v >>> shift) - subBucketCount);
}

/** bucketRange is the [lowest, highest] value (µs, inclusive) that falls in a bucket. */
export function bucketRange(index: number): [number, number] {
  const b = Math.floor(index / subBucketCount);
  if (b === 0) return [index, index];
  const shift = b - 1;
  const sub = index - b * subBucketCount + subBucketCount;
  const lo = sub * 2 ** shift;
  return [lo, lo + 2 ** shift - 1];
}

/** HistogramData is a histogram's serialisable form (sent from load generator processes). */
export interface HistogramData {
  /** buckets holds [index, count] pairs of the non-empty buckets, index ascending. */
  buckets: [number, number][];
  count: number;
  sumUs: number;
  minUs: number;
  maxUs: number;
}

/** Histogram counts latencies in µs; see the file comment for the bucket layout. */
export class Histogram {
  private readonly counts = new Float64Array(bucketCount);
  count = 0;
  sumUs = 0;
  minUs = Infinity;
  maxUs = -Infinity;

  /** record adds one value in µs. */
  record(valueUs: number): void {
    this.add(bucketIndexOf(valueUs), 1);
    this.count++;
    this.sumUs += valueUs;
    if (valueUs < this.minUs) this.minUs = valueUs;
    if (valueUs > this.maxUs) this.maxUs = valueUs;
  }

  // add counts `n` values in bucket `i`. A typed array drops an out-of-range write silently,
  // so an index from a bad merge would lose counts: refuse it instead.
  private add(i: number, n: number): void {
    const c = this.counts[i];
    if (c === undefined) throw new RangeError(`histogram: no bucket ${i}`);
    this.counts[i] = c + n;
  }

  /** merge adds another histogram's counts (e.g. one per load generator process). */
  merge(other: Histogram | HistogramData): void {
    const d = other instanceof Histogram ? other.toData() : other;
    for (const [i, c] of d.buckets) this.add(i, c);
    this.count += d.count;
    this.sumUs += d.sumUs;
    if (d.count > 0) {
      this.minUs = Math.min(this.minUs, d.minUs);
      this.maxUs = Math.max(this.maxUs, d.maxUs);
    }
  }

  /** meanUs is the exact mean (NaN when empty). */
  meanUs(): number {
    return this.count === 0 ? NaN : this.sumUs / this.count;
  }

  /** percentileUs returns the value below or at which a fraction q (0..1) of the recorded
   * values lie: the bucket holding the ⌈q·count⌉-th value, reported as its midpoint and
   * clamped to the exact min and max (the first and last values are reported exactly).
   * NaN when empty. */
  percentileUs(q: number): number {
    if (this.count === 0) return NaN;
    const rank = Math.max(1, Math.ceil(Math.min(1, Math.max(0, q)) * this.count));
    // the smallest and largest values are known exactly
    if (rank === 1) return this.minUs;
    if (rank === this.count) return this.maxUs;
    let seen = 0;
    for (let i = 0; i < bucketCount; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) {
        const [lo, hi] = bucketRange(i);
        return Math.min(this.maxUs, Math.max(this.minUs, (lo + hi) / 2));
      }
    }
    return this.maxUs;
  }

  /** toData returns the serialisable form. */
  toData(): HistogramData {
    const buckets: [number, number][] = [];
    for (let i = 0; i < bucketCount; i++) {
      const c = this.counts[i]!;
      if (c > 0) buckets.push([i, c]);
    }
    return { buckets, count: this.count, sumUs: this.sumUs, minUs: this.minUs, maxUs: this.maxUs };
  }

  /** fromData rebuilds a histogram from its serialisable form. */
  static fromData(d: HistogramData): Histogram {
    const h = new Histogram();
    h.merge(d);
    return h;
  }
}

/** Summary is what every workload reports: throughput and latency percentiles. */
export interface Summary {
  ops: number;
  errors: number;
  seconds: number;
  opsPerSec: number;
  meanMs: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
}

/** summarize turns a histogram of one measured window into a Summary. */
export function summarize(h: Histogram, seconds: number, errors = 0): Summary {
  const ms = (us: number) => us / 1000;
  return {
    ops: h.count,
    errors,
    seconds,
    opsPerSec: seconds > 0 ? h.count / seconds : NaN,
    meanMs: ms(h.meanUs()),
    p50Ms: ms(h.percentileUs(0.5)),
    p99Ms: ms(h.percentileUs(0.99)),
    p999Ms: ms(h.percentileUs(0.999)),
    maxMs: h.count === 0 ? NaN : ms(h.maxUs),
  };
}

/** ratio is ours ÷ theirs, NaN when either is missing or theirs is 0. */
export function ratio(ours: number | undefined, theirs: number | undefined): number {
  if (ours === undefined || theirs === undefined) return NaN;
  if (!Number.isFinite(ours) || !Number.isFinite(theirs) || theirs === 0) return NaN;
  return ours / theirs;
}

/** formatNumber prints a figure with 3 significant digits and thousands separators
 * ("12,345", "3.21", "0.0456"); "–" for NaN or undefined. */
export function formatNumber(v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return '–';
  const a = Math.abs(v);
  if (a >= 1000) return Math.round(v).toLocaleString('en-US');
  if (a === 0) return '0';
  const digits = Math.max(0, 2 - Math.floor(Math.log10(a)));
  return v.toFixed(Math.min(digits, 6));
}

/** formatRatio prints a ratio as "0.42×"; "–" when undefined. */
export function formatRatio(r: number): string {
  return Number.isFinite(r) ? `${formatNumber(r)}×` : '–';
}

/** progressBar draws a text bar of width cells for a fraction 0..1. */
export function progressBar(fraction: number, width: number): string {
  const f = Math.min(1, Math.max(0, Number.isFinite(fraction) ? fraction : 0));
  const full = Math.round(f * width);
  return '█'.repeat(full) + '░'.repeat(width - full);
}
