import test from 'ava';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

// src/mvcc is a pure core (docs/mvcc.md): no I/O, clock, randomness or timers, and the
// house rules on line length and leftovers. Runs from dist/test, reads the TypeScript.
const dir = join(import.meta.dirname, '..', '..', 'src', 'mvcc');
const files = readdirSync(dir).filter((f) => f.endsWith('.ts'));

test('mvcc: style: the pure core imports no node module and reads no clock or randomness', (t) => {
  t.true(files.length > 5);
  const banned = [/from\s+'node:/, /\bDate\.now\b/, /\bnew Date\b/, /\bMath\.random\b/,
    /\bsetTimeout\b/, /\bsetInterval\b/, /\bsetImmediate\b/, /\bprocess\./, /\bperformance\./];
  for (const f of files) {
    const text = readFileSync(join(dir, f), 'utf8');
    for (const b of banned) t.false(b.test(text), `${f} matches ${b}`);
  }
});

test('mvcc: style: lines fit in 100 columns and no FIXME is left', (t) => {
  for (const f of files) {
    readFileSync(join(dir, f), 'utf8').split('\n').forEach((line, i) => {
      t.true(line.length <= 100, `${f}:${i + 1} is ${line.length} columns`);
      t.false(/FIXME|XXX/.test(line), `${f}:${i + 1} has a leftover marker`);
    });
  }
});

test('mvcc: style: every exported name has a doc comment starting with its name', (t) => {
  // types.ts is the shared wire vocabulary, owned with the API codecs; it is not checked here.
  for (const f of files.filter((name) => name !== 'types.ts')) {
    const lines = readFileSync(join(dir, f), 'utf8').split('\n');
    lines.forEach((line, i) => {
      const m = /^export (?:abstract )?(?:class|function|interface|type|const) (\w+)/.exec(line);
      if (m === null) return;
      // Walk back over the comment block to its first line.
      let j = i - 1;
      if (!lines[j]?.trim().endsWith('*/')) {
        t.fail(`${f}:${i + 1} ${m[1]} has no doc comment`);
        return;
      }
      while (j > 0 && !lines[j]!.trim().startsWith('/**')) j--;
      const first = lines[j]!.replace(/^\s*\/\*\*\s*/, '') || (lines[j + 1] ?? '').replace(
        /^\s*\*\s*/, '');
      t.true(first.startsWith(m[1]!), `${f}:${i + 1} doc of ${m[1]}: "${first.slice(0, 30)}"`);
    });
  }
});
