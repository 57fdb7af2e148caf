import {
  keysRepackChunksPerSlice, keysRepackChunksPerTick, keysRepackTicksPerPass,
} from '../constants.js';

/** IdleRepackDeps: the key map an IdleRepack paces, and the actor's event loop and collector. */
export interface IdleRepackDeps {
  /** repack looks at up to `chunks` chunks (OrderedMap.repackCold) and returns the keys
   * packed. */
  repack(chunks: number): number;
  /** chunks is the key map's number of chunks (a full pass). */
  chunks(): number;
  /** idle: the actor has applied nothing for keysRepackIdleMs (checked before each slice). */
  idle(): boolean;
  /** defer runs fn after the actor's pending messages (on the next turn of its loop). */
  defer(fn: () => void): void;
  /** collect queues a full garbage collection of the thread. */
  collect(): void;
}

/**
 * IdleRepack paces the packing of keys left alone back into bytes, for the Raft node (the
 * applier's key map) and each shard actor (its index): at every tick while the actor is idle,
 * the tick's share of a pass (keysRepackTicksPerPass ticks a pass, so a chunk is packed only
 * when nothing touched it for that long; at most keysRepackChunksPerTick chunks), in slices
 * of keysRepackChunksPerSlice chunks with the event loop between them (a few ms each). A full
 * collection follows a pass that packed some keys, so the strings' pages go back to the
 * system.
 */
export class IdleRepack {
  /** packed: keys packed since the collection that followed the last pass. */
  private packed = 0;

  constructor(private readonly deps: IdleRepackDeps) {}

  /** tick runs this tick's share of a pass (nothing unless the actor is idle). */
  tick(): void {
    this.slice(Math.min(keysRepackChunksPerTick,
      Math.ceil(this.deps.chunks() / keysRepackTicksPerPass)));
  }

  private slice(chunks: number): void {
    if (!this.deps.idle()) return;
    const n = this.deps.repack(Math.min(chunks, keysRepackChunksPerSlice));
    if (n > 0) {
      this.packed += n;
    } else if (this.packed > 0) {
      this.packed = 0;
      this.deps.collect();
    }
    const left = chunks - keysRepackChunksPerSlice;
    if (left > 0) this.deps.defer(() => this.slice(left));
  }
}
