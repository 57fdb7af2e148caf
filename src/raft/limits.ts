/**
 * Limits private to the Raft core. The tunable ones (maxInflightMsgs, maxSizePerMsgBytes)
 * live in src/constants.ts and reach the core through RaftConfig; these are fixed properties
 * of the algorithm's bookkeeping, checked below.
 */

/** entryOverheadBytes approximates an entry's encoding beyond its data (term, index, type). */
export const entryOverheadBytes = 24;
/** readIndexPendingMax bounds read requests a leader holds before it has committed in its
 * term (etcd keeps them unbounded); beyond it the oldest is dropped and the client retries. */
export const readIndexPendingMax = 4_096;
/** electionTickMin is the smallest sensible election timeout in ticks. */
export const electionTickMin = 2;

function check(cond: boolean, what: string): void {
  if (!cond) throw new Error(`raft limits: ${what}`);
}
check(entryOverheadBytes > 0, 'an entry costs something even when empty');
check(readIndexPendingMax >= 1, 'a leader must hold at least one pending read');
