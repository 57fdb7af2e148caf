import type { ExecutionContext } from 'ava';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { HardState, WalEntry } from '../../src/wal/index.js';
import type { Index, MemberId, Term } from '../../src/types.js';

/** Builders for the WAL store's tests (test/wal-*.test.ts): entries, hard states, a dir. */

const enc = new TextEncoder();

/** entry is a normal entry at (term, index) whose data is `data` in UTF-8 (`e<index>`). */
export const entry = (term: number, index: number, data = `e${index}`): WalEntry => ({
  term: term as Term,
  index: index as Index,
  type: 0,
  data: enc.encode(data),
});

/** hs is a hard state: term, commit and the vote (member 1 unless given). */
export const hs = (term: number, commit: number, vote = 1): HardState => ({
  term: term as Term,
  vote: vote as MemberId,
  commit: commit as Index,
});

/** tmpDir makes a fresh directory that the test's teardown removes. */
export function tmpDir(t: ExecutionContext, prefix = 'myetcd-wal-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}
