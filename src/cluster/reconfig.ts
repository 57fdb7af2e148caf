import type { Member } from './membership.js';

/**
 * reconfig: etcd's safety checks before a membership change (--strict-reconfig-check), as
 * pure functions of the member list and of which members this member's transport has been
 * connected to for long enough. They refuse changes that would leave the cluster without a
 * quorum of started, reachable voters:
 *
 * - adding a voter needs a quorum of the new voter count already started (published), and
 *   every current voter connected for healthIntervalMs;
 * - removing a voter needs a quorum of the remaining voters started, and — unless the member
 *   removed is down already — enough connected voters left to form a quorum;
 * - promoting needs the learner in sync with the leader (match ≥ 90% of the leader's), then
 *   the same as adding a voter.
 *
 * Each check answers undefined (go ahead) or the code of etcd's error.
 */

/** ReconfigRefusal is the code of the error a refused change answers with. */
export type ReconfigRefusal = 'NOT_ENOUGH_STARTED' | 'UNHEALTHY' | 'LEARNER_NOT_READY';

/** Connectivity says, for each other member, since when this member has been connected to it
 * (ms on this member's clock), or undefined when it is not connected now. */
export type Connectivity = (id: number) => number | undefined;

/** learnerReadyPercent is etcd's readyPercent: a learner within 90% of the leader's match. */
export const learnerReadyPercent = 0.9;

/** ReconfigView is what the checks look at. */
export interface ReconfigView {
  selfId: number;
  members: readonly Member[];
  connectedSince: Connectivity;
  nowMs: number;
  /** healthIntervalMs: how long a member must have been connected (etcd: 5 s). */
  healthIntervalMs: number;
}

function started(m: Member): boolean {
  return m.name !== '';
}

function voters(v: ReconfigView): Member[] {
  return v.members.filter((m) => !m.isLearner);
}

/** connectedLongEnough: this member itself, or a member connected since healthIntervalMs. */
function connectedLongEnough(v: ReconfigView, id: number): boolean {
  if (id === v.selfId) return true;
  const since = v.connectedSince(id);
  return since !== undefined && since <= v.nowMs - v.healthIntervalMs;
}

/** readyToAddVoter is etcd's IsReadyToAddVotingMember. */
function readyToAddVoter(v: ReconfigView): boolean {
  const vs = voters(v);
  const nmembers = vs.length + 1;
  const nstarted = vs.filter(started).length;
  if (nstarted === 1 && nmembers === 2) return true;
  return nstarted >= Math.floor(nmembers / 2) + 1;
}

/** checkAdd is etcd's mayAddMember. */
export function checkAdd(v: ReconfigView, isLearner: boolean): ReconfigRefusal | undefined {
  if (!isLearner && !readyToAddVoter(v)) return 'NOT_ENOUGH_STARTED';
  if (!voters(v).every((m) => connectedLongEnough(v, m.id))) return 'UNHEALTHY';
  return undefined;
}

/** checkRemove is etcd's mayRemoveMember. */
export function checkRemove(v: ReconfigView, id: number): ReconfigRefusal | undefined {
  const target = v.members.find((m) => m.id === id);
  if (target?.isLearner === true) return undefined;
  const rest = voters(v).filter((m) => m.id !== id);
  const nstarted = rest.filter(started).length;
  if (nstarted < Math.floor(rest.length / 2) + 1) return 'NOT_ENOUGH_STARTED';
  // A member that is down is safe to remove: it is not part of the active quorum.
  if (id !== v.selfId && v.connectedSince(id) === undefined) return undefined;
  const vs = voters(v);
  const active = vs.filter((m) => connectedLongEnough(v, m.id)).length;
  if (active - 1 < 1 + Math.floor((vs.length - 1) / 2)) return 'UNHEALTHY';
  return undefined;
}

/** checkPromote is etcd's mayPromoteMember after the learner's readiness (checkLearnerReady). */
export function checkPromote(v: ReconfigView): ReconfigRefusal | undefined {
  const vs = voters(v);
  const nmembers = vs.length + 1;
  const nstarted = vs.filter(started).length + 1;
  if (nstarted < Math.floor(nmembers / 2) + 1) return 'NOT_ENOUGH_STARTED';
  if (!vs.every((m) => connectedLongEnough(v, m.id))) return 'UNHEALTHY';
  return undefined;
}

/** learnerReady is etcd's isLearnerReady: the learner's match against the leader's. */
export function learnerReady(learnerMatch: number, leaderMatch: number): boolean {
  return learnerMatch >= leaderMatch * learnerReadyPercent;
}
