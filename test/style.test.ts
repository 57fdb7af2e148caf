import test from 'ava';
import { builtinModules } from 'node:module';
import { join } from 'node:path';
import {
  importCycles, importEdges, parseText, readSources, type SourceFile,
} from './helpers/source-graph.js';

// House rules checked by a test, not a wiki. docs/development.md ("The style test") states
// each rule and why; a failure names the file, the line and the rule. Runs from dist/test and
// parses the TypeScript sources with the compiler's parser (test/helpers/source-graph.ts).
const root = join(import.meta.dirname, '..', '..');
const sources = readSources(root, ['src', 'actors', 'test', 'bench', 'examples']);
/** code is what ships: src/ and actors/. */
const code = sources.filter((s) => s.path.startsWith('src/') || s.path.startsWith('actors/'));

/** pureCores hold the algorithms: no I/O, no clock, no randomness, no timers. */
const pureCores = ['src/raft/', 'src/mvcc/', 'src/wal/', 'src/lease/', 'src/watch/', 'src/auth/'];
/** vocabulary: the shared modules every layer (the pure cores too) may import. */
const vocabulary = ['src/types.ts', 'src/assert.ts', 'src/constants.ts', 'src/errors.ts'];
/** pureCodecs are pure file by file but may import impure modules (src/api/cluster.ts takes
 * urlProblem from src/config/values.ts, a folder with the loader), so they are held to the
 * file rule only. */
const pureCodecs = ['src/api/'];

const inPureCore = (p: string): boolean =>
  pureCores.some((d) => p.startsWith(d)) || vocabulary.includes(p);

/**
 * actorInternalsAllowed: imports of an actor's files other than its protocol from outside its
 * folder, `importer -> imported` → why. It only shrinks: an entry that no longer matches fails.
 */
const actorInternalsAllowed: Readonly<Record<string, string>> = {
  'src/cluster/setup.ts -> actors/peer/join.ts': 'fetchCluster runs on the main thread before ' +
    'any actor starts and dials with the peer transport\'s Conn (actors/peer/conn.ts); both ' +
    'leave actors/peer when the cluster work reshapes the transport',
};

/** functionLinesMax caps a function's length, first line to last, nested functions included. */
const functionLinesMax = 70;

/**
 * longFunctionsAllowed: `file:function` → its length today, never to grow, and why it is
 * longer than functionLinesMax. It only shrinks: an entry whose function is gone or fits the
 * cap fails, so that it is removed.
 */
const longFunctionsAllowed: Readonly<Record<string, { lines: number; why: string }>> = {};

/** lineColumnsMax is the longest line, in UTF-16 code units (what an editor shows as columns
 * for the text we write). */
const lineColumnsMax = 100;

/** docCommentFolders hold to "every exported name has a doc comment that starts with the
 * name" (mvcc/types.ts, the wire vocabulary shared with the API codecs, excepted). */
const docCommentFolders = ['src/mvcc/', 'src/lease/', 'src/server/', 'src/cli/', 'src/log/',
  'src/metrics/', 'src/assert.ts', 'src/bytes.ts', 'src/errors.ts'];
const docCommentExcepted = ['src/mvcc/types.ts'];

/** at formats a place for a failure message. */
const at = (s: SourceFile, line: number): string => `${s.path}:${line}`;

test('style: the checker sees every kind of import and names functions as a reader would',
  (t) => {
    const s = parseText(root, join(root, 'src', 'x', 'sample.ts'), [
      "import type { A } from '../a.js';",
      "import { type B, type C } from './b.js';",
      'import {',
      '  d,',
      "} from './d.js';",
      "export { e } from 'node:fs';",
      "type F = import('./f.js').F;",
      'export class K {',
      '  m(): void {',
      "    void import('./g.js');",
      '  }',
      '}',
      'export const h = (): number => {',
      '  return 1;',
      '};',
      'ctx.ep.onMessage((msg) => {',
      '  void [1].map((x) => x);',
      '});',
    ].join('\n'));
    t.deepEqual(s.imports.map((i) => [i.resolved ?? i.specifier, i.typeOnly, i.dynamic, i.line]), [
      ['src/a.ts', true, false, 1], ['src/x/b.ts', true, false, 2],
      ['src/x/d.ts', false, false, 3], ['node:fs', false, false, 6],
      ['src/x/f.ts', true, false, 7], ['src/x/g.ts', false, true, 10],
    ]);
    t.deepEqual(s.functions.map((f) => [f.name, f.line, f.lines]), [
      ['K.m', 9, 3], ['h', 13, 3], ['ctx.ep.onMessage(…)', 16, 3],
      ['ctx.ep.onMessage(…)/[1].map(…)', 17, 1],
    ]);
    t.deepEqual(s.exports.map((e) => e.names), [['K'], ['h']]);
    const cycle = importCycles([
      { from: 'a', to: 'b', typeOnly: false, line: 1 },
      { from: 'b', to: 'c', typeOnly: true, line: 1 },
      { from: 'c', to: 'a', typeOnly: false, line: 1 },
      { from: 'c', to: 'd', typeOnly: false, line: 1 },
    ]);
    t.deepEqual(cycle, [['a', 'b', 'c', 'a']]);
    t.deepEqual(importCycles([{ from: 'a', to: 'b', typeOnly: false, line: 1 }]), []);
  });

test('style: the pure cores import no node module or package and read no clock, randomness ' +
  'or timer', (t) => {
  const banned = [/\bDate\.now\b/, /\bnew Date\b/, /\bMath\.random\b/, /\bsetTimeout\b/,
    /\bsetInterval\b/, /\bsetImmediate\b/, /\bqueueMicrotask\b/, /\bprocess\./,
    /\bperformance\./];
  const builtins = new Set(builtinModules);
  const files = code.filter((s) => inPureCore(s.path) || pureCodecs.some((d) =>
    s.path.startsWith(d)));
  t.true(files.length > 60, `only ${files.length} files checked`);
  const problems: string[] = [];
  for (const s of files) {
    for (const b of banned) if (b.test(s.text)) problems.push(`${s.path} matches ${b}`);
    for (const i of s.imports) {
      const where = at(s, i.line);
      if (i.specifier.startsWith('node:') || builtins.has(i.specifier)) {
        problems.push(`${where} imports the node module '${i.specifier}' into a pure module`);
      } else if (i.resolved === undefined) {
        problems.push(`${where} imports the package '${i.specifier}' into a pure module`);
      } else if (i.dynamic) {
        problems.push(`${where} imports ${i.specifier} dynamically into a pure module`);
      } else if (inPureCore(s.path) && !inPureCore(i.resolved)) {
        problems.push(`${where} imports ${i.resolved}: a pure core imports only pure cores and ` +
          `${vocabulary.join(', ')}`);
      }
    }
  }
  t.deepEqual(problems, []);
});

/** dynamicImportsAllowed: the files that may import dynamically, each by a literal specifier
 * the graph resolves, and why. src/main.ts loads the client-facing half of a member (and the
 * gateway pool, when there is one) while the actor threads start: the two overlap on 2 cores
 * instead of queueing. Optional features load their libraries only when configured, not at
 * every start (docs/performance.md, session 22): the OTLP export (--otlp-endpoint) and JWT
 * tokens (--auth-token jwt). '*' allows any literal specifier. */
const dynamicImportsAllowed: Record<string, readonly string[] | '*'> = {
  'src/main.ts': '*',
  'src/gateway/observability.ts': ['./otlp.js'],
  'src/gateway/auth-gate.ts': ['jose'],
};

test('style: src/ and actors/ import no module dynamically, so the import graph is complete ' +
  '(but main\'s deferred start-up and optional features, by literal paths)', (t) => {
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const s of code) {
    for (const i of s.imports) {
      if (!i.dynamic) continue;
      const allowed = dynamicImportsAllowed[s.path];
      if (allowed === '*' ? i.resolved !== undefined : allowed?.includes(i.specifier)) {
        seen.add(s.path);
        continue;
      }
      problems.push(`${at(s, i.line)} imports ${i.specifier} dynamically`);
    }
  }
  for (const f of Object.keys(dynamicImportsAllowed)) {
    if (!seen.has(f)) problems.push(`dynamicImportsAllowed: ${f} imports nothing dynamically`);
  }
  t.deepEqual(problems, []);
});

test('style: outside an actor\'s folder only its protocol, actors/<name>/messages.ts, is imported',
  (t) => {
    const seen = new Set<string>();
    const problems: string[] = [];
    for (const s of code) {
      for (const i of s.imports) {
        const m = i.resolved === undefined ? null : /^actors\/([^/]+)\/(.+)$/.exec(i.resolved);
        if (m === null || m[2] === 'messages.ts' || s.path.startsWith(`actors/${m[1]}/`)) {
          continue;
        }
        const key = `${s.path} -> ${i.resolved}`;
        if (key in actorInternalsAllowed) seen.add(key);
        else problems.push(`${at(s, i.line)} imports ${i.resolved}, not a protocol`);
      }
    }
    for (const key of Object.keys(actorInternalsAllowed)) {
      if (!seen.has(key)) problems.push(`actorInternalsAllowed: "${key}" is gone; remove it`);
    }
    t.deepEqual(problems, []);
  });

test('style: no import cycle in src/, actors/, test/, bench/ or examples/ (type-only imports ' +
  'count)', (t) => {
  const edges = importEdges(sources, { types: true });
  t.true(edges.length > 500, `only ${edges.length} import edges`);
  t.deepEqual(importCycles(edges).map((cycle) => cycle.join(' -> ')), []);
});

test(`style: functions in src/ and actors/ are at most ${functionLinesMax} lines, but for a ` +
  'shrinking allow-list', (t) => {
  const seen = new Set<string>();
  const problems: string[] = [];
  for (const s of code) {
    for (const f of s.functions) {
      const key = `${s.path}:${f.name}`;
      const allowed = longFunctionsAllowed[key];
      if (allowed !== undefined) {
        seen.add(key);
        if (f.lines <= functionLinesMax) {
          problems.push(`${key} is ${f.lines} lines now: remove it from longFunctionsAllowed`);
        } else if (f.lines > allowed.lines) {
          problems.push(`${key} grew to ${f.lines} lines (allowed ${allowed.lines}): split it`);
        }
      } else if (f.lines > functionLinesMax) {
        problems.push(`${at(s, f.line)} ${f.name} is ${f.lines} lines (max ${functionLinesMax})`);
      }
    }
  }
  for (const key of Object.keys(longFunctionsAllowed)) {
    if (!seen.has(key)) problems.push(`longFunctionsAllowed: "${key}" is gone; remove it`);
  }
  t.deepEqual(problems, []);
});

test(`style: lines fit in ${lineColumnsMax} columns and no leftover marker is left in src/, ` +
  'actors/, test/, bench/ and examples/', (t) => {
  // Built from parts, so that this file does not match itself.
  const marker = new RegExp(['FIX', 'ME'].join('') + '|' + 'X'.repeat(3));
  t.true(sources.length > 200, `only ${sources.length} files read`);
  const problems: string[] = [];
  for (const s of sources) {
    s.text.split('\n').forEach((line, i) => {
      if (line.length > lineColumnsMax) problems.push(`${at(s, i + 1)} is ${line.length} columns`);
      if (marker.test(line)) problems.push(`${at(s, i + 1)} has a leftover marker`);
    });
  }
  t.deepEqual(problems, []);
});

test('style: every exported name has a doc comment that starts with its name (folders that ' +
  'hold to it)', (t) => {
  const files = code.filter((s) => docCommentFolders.some((d) => s.path.startsWith(d)) &&
    !docCommentExcepted.includes(s.path));
  t.true(files.length > 30, `only ${files.length} files checked`);
  const problems: string[] = [];
  for (const s of files) {
    for (const e of s.exports) {
      const what = `${at(s, e.line)} ${e.names.join(', ')}`;
      if (e.doc === undefined) problems.push(`${what} has no doc comment`);
      else if (!e.names.some((n) => e.doc!.startsWith(n))) {
        problems.push(`${what}: its doc comment starts "${e.doc.slice(0, 30)}"`);
      }
    }
  }
  t.deepEqual(problems, []);
});

test('style: every actor has a messages.ts protocol and an actor.ts shell', (t) => {
  const actors = new Map<string, Set<string>>();
  for (const s of code) {
    const m = /^actors\/([^/]+)\/([^/]+)$/.exec(s.path);
    if (m === null) continue;
    const files = actors.get(m[1]!) ?? new Set<string>();
    files.add(m[2]!);
    actors.set(m[1]!, files);
  }
  t.true(actors.size >= 5, `only ${actors.size} actors`);
  const problems: string[] = [];
  for (const [a, files] of actors) {
    for (const f of ['messages.ts', 'actor.ts']) {
      if (!files.has(f)) problems.push(`actors/${a} has no ${f}`);
    }
  }
  t.deepEqual(problems, []);
});

/** valueImports maps each file of the code to the files it imports for values (type-only
 * imports are erased: they load nothing). */
const valueImports = new Map<string, string[]>();
for (const e of importEdges(code, { types: false })) {
  valueImports.set(e.from, [...(valueImports.get(e.from) ?? []), e.to]);
}

/** loadedBy lists the files an entry loads at run time: its value imports, followed from file
 * to file. */
function loadedBy(entry: string): Set<string> {
  const seen = new Set<string>([entry]);
  const stack = [entry];
  while (stack.length > 0) {
    for (const to of valueImports.get(stack.pop()!) ?? []) {
      if (!seen.has(to)) {
        seen.add(to);
        stack.push(to);
      }
    }
  }
  return seen;
}

test('style: an actor thread loads only what it runs: the Raft core only on the Raft thread, ' +
  'the settings table and help text only on gateway threads', (t) => {
  // Each module is compiled again on every thread that loads it, at every start (seven threads
  // on 2 cores here; docs/performance.md, session 23). A gateway thread runs the HTTP front
  // end, which reads settings (the cluster routes); the others read only their own config.
  const actors = code.map((s) => /^actors\/([^/]+)\/actor\.ts$/.exec(s.path)?.[1])
    .filter((a): a is string => a !== undefined);
  t.true(actors.length >= 6, `actors found: ${actors.join(', ')}`);
  const problems: string[] = [];
  for (const a of actors) {
    const loaded = loadedBy(`actors/${a}/actor.ts`);
    if (a !== 'raft' && loaded.has('src/raft/raft.ts')) {
      problems.push(`actors/${a} loads the Raft core (src/raft/raft.ts)`);
    }
    for (const f of ['src/config/settings.ts', 'src/config/help.ts']) {
      if (a !== 'gateway' && loaded.has(f)) problems.push(`actors/${a} loads ${f}`);
    }
  }
  t.deepEqual(problems, []);
  // The rule sees what it is about: the Raft thread does load its core.
  t.true(loadedBy('actors/raft/actor.ts').has('src/raft/raft.ts'));
});
