import test from 'ava';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  kernelThpMode, mallocHugePages, mallocHugePageTunables, mallocTunables, thpMode,
  withMallocTunables,
} from '../src/server/huge-pages.js';

// glibc's malloc tunables (docs/configuration.md, "The process's environment"): what the
// launchers set (no huge pages), and that an operator's huge pages take effect in a real
// process on this machine while the launchers' setting gives none.

const root = path.resolve(import.meta.dirname, '..', '..');
const kernelMode = kernelThpMode();
const thpUsable = kernelMode === 'always' || kernelMode === 'madvise';

test('huge pages: the kernel mode is read from sysfs\'s bracketed word', (t) => {
  t.is(thpMode('always [madvise] never\n'), 'madvise');
  t.is(thpMode('[always] madvise never'), 'always');
  t.is(thpMode('always madvise [never]'), 'never');
  t.is(thpMode(''), undefined);
});

test('huge pages: the launch environment adds the tunable and keeps an operator\'s own', (t) => {
  t.is(withMallocTunables({ PATH: '/bin' })['GLIBC_TUNABLES'], mallocTunables);
  t.is(withMallocTunables({ GLIBC_TUNABLES: '' })['GLIBC_TUNABLES'], mallocTunables);
  const own = { GLIBC_TUNABLES: mallocHugePageTunables };
  t.is(withMallocTunables(own), own);
  t.is(withMallocTunables({ PATH: '/bin' })['PATH'], '/bin');
});

test('huge pages: the start line reports them on only when an operator set the tunable', (t) => {
  t.false(mallocTunables.includes('hugetlb'));
  const on = mallocHugePages(
    { GLIBC_TUNABLES: `glibc.malloc.arena_max=2:${mallocHugePageTunables}` });
  const off = mallocHugePages({});
  const zero = mallocHugePages({ GLIBC_TUNABLES: mallocTunables });
  if (thpUsable) {
    t.deepEqual([on, off, zero], ['on', 'off', 'off']);
  } else {
    t.regex(on, /^unavailable/);
    t.is(off, on);
  }
});

test('huge pages: `npm start` and the container image set the same tunable', (t) => {
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as
    { scripts: Record<string, string> };
  t.true(pkg.scripts['start']!.startsWith(
    `GLIBC_TUNABLES=\${GLIBC_TUNABLES:-${mallocTunables}} exec node `));
  const docker = fs.readFileSync(path.join(root, 'Dockerfile'), 'utf8');
  t.regex(docker, new RegExp(`^\\s+GLIBC_TUNABLES=${mallocTunables.replace(/\./g, '\\.')}`,
    'm'));
});

/** anonHugeKiB runs a node process that fills a 64 MiB Buffer and reports its AnonHugePages. */
function anonHugeKiB(env: NodeJS.ProcessEnv): number {
  const script = "const b = Buffer.alloc(64 << 20, 1); const s = require('fs')" +
    ".readFileSync('/proc/self/smaps_rollup', 'utf8'); console.log(/AnonHugePages:\\s+(\\d+)/" +
    '.exec(s)[1], b[12345]);';
  const r = spawnSync(process.execPath, ['-e', script], { env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return Number(r.stdout.split(' ')[0]);
}

(thpUsable && kernelMode === 'madvise' ? test : test.skip)(
  'huge pages: an operator\'s tunable backs a large Buffer with huge pages, the launchers\' not',
  (t) => {
    const env = { ...process.env };
    delete env['GLIBC_TUNABLES'];
    t.is(anonHugeKiB(env), 0);
    t.is(anonHugeKiB(withMallocTunables(env)), 0);
    // The kernel may lack a free 2 MiB page for some of the 32 (it then falls back to 4 KiB
    // pages), so the test asks for at least one.
    const own = { ...env, GLIBC_TUNABLES: mallocHugePageTunables };
    t.true(anonHugeKiB(own) >= 2048);
  });
