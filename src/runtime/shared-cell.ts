/**
 * shared-cell: a small record that one thread publishes and any thread of its generation
 * reads without a message — a seqlock over Int32 words in a region of shared memory
 * (system.ts SharedRegions).
 *
 * The record is `fields` non-negative integers below 2^53 and a valid flag. Its one writer
 * makes the sequence word odd, writes the words, and makes it even again; a reader retries
 * while it sees an odd sequence or a sequence that changed across its reads, and gives up
 * after readAttemptsMax tries (a writer descheduled mid-write): the caller then takes its
 * slow way. Every access is an Atomics one, so no reader sees a torn value, and what the
 * writer did before a publish happens before what a reader does after reading it. Word 0 is
 * the supervisor's closed flag (SharedRegions): a closed cell reads as invalid.
 */

const wClosed = 0;
const wSeq = 1;
const wValid = 2;
const wFields = 3; // two words (high, low) per field

/** readAttemptsMax bounds a reader's retries against a writer met mid-write. */
export const readAttemptsMax = 64;

const two32 = 2 ** 32;

/** SharedCell: see the file comment. */
export class SharedCell {
  private readonly w: Int32Array;

  /** bytes is the size of a region that holds a cell of `fields` fields. */
  static bytes(fields: number): number {
    return (wFields + 2 * fields) * 4;
  }

  constructor(readonly buffer: SharedArrayBuffer, readonly fields: number) {
    const need = SharedCell.bytes(fields);
    if (buffer.byteLength < need) {
      throw new RangeError(`shared cell: ${buffer.byteLength} bytes, ${need} needed`);
    }
    this.w = new Int32Array(buffer, 0, need / 4);
  }

  /** publish writes the fields and marks the record valid (the one writer only). */
  publish(values: readonly number[]): void {
    const w = this.w;
    const s = Atomics.load(w, wSeq);
    Atomics.store(w, wSeq, s + 1);
    Atomics.store(w, wValid, 1);
    for (let i = 0; i < this.fields; i++) {
      const v = values[i]!;
      Atomics.store(w, wFields + 2 * i, Math.floor(v / two32) | 0);
      Atomics.store(w, wFields + 2 * i + 1, v | 0);
    }
    Atomics.store(w, wSeq, s + 2);
  }

  /** withdraw marks the record invalid until the next publish (the one writer only). */
  withdraw(): void {
    const w = this.w;
    if (Atomics.load(w, wValid) === 0) return;
    const s = Atomics.load(w, wSeq);
    Atomics.store(w, wSeq, s + 1);
    Atomics.store(w, wValid, 0);
    Atomics.store(w, wSeq, s + 2);
  }

  /** read fills out with the fields and returns true, or returns false when the record is
   * invalid, closed, or kept changing under the reader. */
  read(out: number[]): boolean {
    const w = this.w;
    for (let a = 0; a < readAttemptsMax; a++) {
      const s = Atomics.load(w, wSeq);
      if ((s & 1) !== 0) continue;
      if (Atomics.load(w, wClosed) !== 0) return false;
      const valid = Atomics.load(w, wValid) !== 0;
      if (valid) {
        for (let i = 0; i < this.fields; i++) {
          out[i] = (Atomics.load(w, wFields + 2 * i) >>> 0) * two32 +
            (Atomics.load(w, wFields + 2 * i + 1) >>> 0);
        }
      }
      if (Atomics.load(w, wSeq) === s) return valid;
    }
    return false;
  }

  /** closed: the supervisor has closed the cell's generation. */
  get closed(): boolean {
    return Atomics.load(this.w, wClosed) !== 0;
  }
}
