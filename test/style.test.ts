import test from 'ava';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

// House rules checked by a test, not a wiki (docs/development.md). Runs from dist/test and
// reads the TypeScript sources.
const root = join(import.meta.dirname, '..', '..');

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...tsFiles(p));
    else if (name.endsWith('.ts')) out.push(p);
  }
  return out;
}

/** pureCores hold the algorithms: no I/O, no clock, no randomness, no timers. */
const pureCores = ['raft', 'mvcc', 'wal', 'lease', 'watch'].map((d) => join(root, 'src', d));

test('style: the pure cores import no node module and read no clock, randomness or timer',
  (t) => {
    const banned = [/from\s+'node:/, /\bDate\.now\b/, /\bnew Date\b/, /\bMath\.random\b/,
      /\bsetTimeout\b/, /\bsetInterval\b/, /\bsetImmediate\b/, /\bprocess\./, /\bperformance\./];
    let checked = 0;
    for (const dir of pureCores) {
      for (const f of tsFiles(dir)) {
        checked++;
        const text = readFileSync(f, 'utf8');
        for (const b of banned) t.false(b.test(text), `${relative(root, f)} matches ${b}`);
      }
    }
    t.true(checked > 30, `only ${checked} files checked`);
  });

test('style: lines fit in 100 columns and no FIXME is left in src/ and actors/', (t) => {
  const files = [...tsFiles(join(root, 'src')), ...tsFiles(join(root, 'actors'))];
  t.true(files.length > 50);
  for (const f of files) {
    readFileSync(f, 'utf8').split('\n').forEach((line, i) => {
      if (line.length > 100) t.fail(`${relative(root, f)}:${i + 1} is ${line.length} columns`);
      if (/FIXME|XXX/.test(line)) t.fail(`${relative(root, f)}:${i + 1} has a leftover marker`);
    });
  }
  t.pass();
});

test('style: every actor has a messages.ts protocol and an actor.ts shell', (t) => {
  const actors = readdirSync(join(root, 'actors'));
  t.true(actors.length >= 5);
  for (const a of actors) {
    const names = readdirSync(join(root, 'actors', a));
    t.true(names.includes('messages.ts'), `actors/${a} has no messages.ts`);
    t.true(names.includes('actor.ts'), `actors/${a} has no actor.ts`);
  }
});
