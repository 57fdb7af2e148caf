import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { check, type Verdict } from './checker.js';
import { appendModel, parseJepsenExpected, parseJepsenLog, parseKvEdn } from './formats.js';
import { kvModel } from './kv-model.js';

/**
 * reference: the reference histories of ../shared/data/porcupine-histories with the verdict
 * each must get, and a runner that checks them (used by `npm run lincheck` and by the test).
 */

/** referenceDir is where the histories are kept (beside the project, shared by its trees);
 * LINCHECK_DATA overrides it. */
export const referenceDir = process.env['LINCHECK_DATA'] ??
  new URL('../../../../shared/data/porcupine-histories', import.meta.url).pathname;

/** ReferenceCase is one file and its expected verdict (true = linearizable). */
export interface ReferenceCase { name: string; path: string; kind: 'jepsen' | 'kv';
  expected: boolean }

/** referenceCases lists every file that has a verdict. */
export function referenceCases(dir = referenceDir): ReferenceCase[] {
  const expected = parseJepsenExpected(readFileSync(join(dir, 'jepsen_expected.txt'), 'utf8'));
  const out: ReferenceCase[] = [];
  for (const [n, ok] of [...expected].sort((a, b) => a[0] - b[0])) {
    const name = `etcd_${String(n).padStart(3, '0')}.log`;
    out.push({ name: `jepsen/${name}`, path: join(dir, 'jepsen', name), kind: 'jepsen',
      expected: ok });
  }
  for (const f of readdirSync(join(dir, 'kv')).sort()) {
    const m = /^c\d+-(ok|bad)\.txt$/.exec(f);
    if (m === null) continue;
    out.push({ name: `kv/${f}`, path: join(dir, 'kv', f), kind: 'kv', expected: m[1] === 'ok' });
  }
  return out;
}

/** CaseResult is a case's verdict, steps and time taken. */
export interface CaseResult { c: ReferenceCase; verdict: Verdict; ops: number; steps: number;
  ms: number }

/** runCase parses and checks one reference file. */
export function runCase(c: ReferenceCase, stepsMax?: number): CaseResult {
  const text = readFileSync(c.path, 'utf8');
  const t0 = performance.now();
  const opts = stepsMax === undefined ? {} : { stepsMax };
  let r: { verdict: Verdict; steps: number };
  let ops: number;
  if (c.kind === 'jepsen') {
    const h = parseJepsenLog(text);
    ops = h.length;
    r = check(kvModel({ versions: false }), h, opts);
  } else {
    const h = parseKvEdn(text);
    ops = h.length;
    r = check(appendModel, h, opts);
  }
  return { c, verdict: r.verdict, ops, steps: r.steps, ms: performance.now() - t0 };
}

/** agrees says whether a verdict is the expected one ('unknown' never agrees). */
export function agrees(r: CaseResult): boolean {
  return r.verdict === (r.c.expected ? 'ok' : 'illegal');
}
