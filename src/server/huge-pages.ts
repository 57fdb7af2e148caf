import * as fs from 'node:fs';

/**
 * huge-pages: glibc's malloc and the kernel's transparent huge pages. Large buffers (a WAL
 * segment read whole, the dumps a snapshot is made of, msgpack buffers) are plain
 * `ArrayBuffer`s, which Node allocates with glibc's malloc; glibc (≥ 2.35) asks the kernel for
 * huge pages (2 MiB) on them when GLIBC_TUNABLES holds `glibc.malloc.hugetlb=1`, and reads that
 * only when the process starts.
 *
 * The launchers (`npm start`, the Dockerfile, the benchmark) no longer ask for huge pages; an
 * operator still may. Huge pages first helped: reading a 131 MiB snapshot took 400 ms in 4 KiB
 * pages and 260 in 2 MiB ones (the performance notes in docs/, session 13). On the benchmark's
 * virtual machine, though, memory a process frees goes back to the host (its balloon device
 * reports free pages), and a huge page is carved from exactly such blocks: the start after a
 * kill -9 of a member that wrote a million keys took 1.21–1.65 s with huge pages and 0.84–1.05
 * s without them (seven runs each, alternated), while a start after a graceful stop took about
 * the same: 0.82–1.24 s with, 0.87–1.09 s without (session 25). Where the tunable is set,
 * restores load into plain buffers (kv-columns.ts setPlainLoads), which then get the huge
 * pages.
 */

/** mallocTunables is the GLIBC_TUNABLES setting the launchers add: a fixed mmap threshold of
 * 4 MiB. glibc otherwise raises its threshold (up to 32 MiB) after large frees, and then
 * serves such chunks from a thread's arena, which keeps what is freed inside it: after a
 * snapshot of a million keys, ≈ 45–90 MiB stayed resident (the performance notes, session 14).
 * With the threshold fixed, every chunk of 4 MiB or more is a mapping of its own, returned
 * whole when freed. */
export const mallocTunables = 'glibc.malloc.mmap_threshold=4194304';

/** mallocHugePageTunables is what an operator sets to add huge pages to the launchers'
 * setting (docs/configuration.md), and what the tests start such members with. */
export const mallocHugePageTunables = `glibc.malloc.hugetlb=1:${mallocTunables}`;

/** withMallocTunables gives the environment `npm start` gives node: GLIBC_TUNABLES set to the
 * tunable unless it is already set (an operator's own tunables are kept as they are, as the
 * shell's `${GLIBC_TUNABLES:-…}` in package.json keeps them; mallocHugePageTunables adds
 * huge pages). */
export function withMallocTunables(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const given = env['GLIBC_TUNABLES'] ?? '';
  return given !== '' ? env : { ...env, GLIBC_TUNABLES: mallocTunables };
}

/** thpMode parses /sys/kernel/mm/transparent_hugepage/enabled ("always [madvise] never"). */
export function thpMode(text: string): string | undefined {
  return /\[(\w+)\]/.exec(text)?.[1];
}

/** kernelThpMode is this machine's transparent huge page mode, from sysfs (undefined where
 * it cannot be read). */
export function kernelThpMode(): string | undefined {
  try {
    return thpMode(fs.readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8'));
  } catch {
    return undefined;
  }
}

/** mallocHugePages says, for the start log line, whether this process's large buffers get
 * huge pages: 'on' (an operator set glibc.malloc.hugetlb), 'off' (the default) or the
 * kernel's mode when it is 'never' or unreadable. */
export function mallocHugePages(env: NodeJS.ProcessEnv = process.env): string {
  const mode = kernelThpMode();
  if (mode === undefined || mode === 'never') return `unavailable (kernel: ${mode ?? 'unknown'})`;
  const tunables = env['GLIBC_TUNABLES'] ?? '';
  return /(^|:)glibc\.malloc\.hugetlb=[12](:|$)/.test(tunables) ? 'on' : 'off';
}
