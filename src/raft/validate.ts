/**
 * validateMessage checks a message from a peer before the core trusts it (style §5: check
 * Number.isSafeInteger where numbers enter). It returns why the message is malformed, or
 * undefined. The core asserts its own invariants; peers get a typed refusal instead.
 */
import {
  EntryConfChange, EntryNormal, isMessageType, type Message, type Snapshot,
} from './types.js';

function isId(n: unknown): boolean {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

function isBytes(b: unknown): boolean {
  return b instanceof Uint8Array;
}

function snapshotProblem(s: Snapshot): string | undefined {
  if (typeof s !== 'object' || s === null || !isBytes(s.data)) return 'snapshot.data';
  const md = s.metadata;
  if (typeof md !== 'object' || md === null || !isId(md.index) || !isId(md.term)) {
    return 'snapshot.metadata';
  }
  const cs = md.confState;
  if (typeof cs !== 'object' || cs === null || !Array.isArray(cs.voters)
    || !Array.isArray(cs.learners) || !cs.voters.every(isId) || !cs.learners.every(isId)) {
    return 'snapshot.metadata.confState';
  }
  return undefined;
}

/** validateMessage returns a description of the first malformed field, or undefined. */
export function validateMessage(m: Message): string | undefined {
  if (typeof m !== 'object' || m === null) return 'not an object';
  if (!isMessageType(m.type)) return 'type';
  for (const f of ['to', 'from', 'term', 'logTerm', 'index', 'commit', 'rejectHint'] as const) {
    if (!isId(m[f])) return f;
  }
  if (typeof m.reject !== 'boolean') return 'reject';
  if (!Array.isArray(m.entries)) return 'entries';
  for (const e of m.entries) {
    if (typeof e !== 'object' || e === null || !isId(e.term) || !isId(e.index)) return 'entry';
    if (e.type !== EntryNormal && e.type !== EntryConfChange) return 'entry.type';
    if (!isBytes(e.data)) return 'entry.data';
  }
  if (m.context !== undefined && m.context !== null && !isBytes(m.context)) return 'context';
  if (m.snapshot !== undefined && m.snapshot !== null) return snapshotProblem(m.snapshot);
  return undefined;
}
