import * as fs from 'node:fs';

/**
 * huge-pages: large buffers (a snapshot or WAL segment read whole, the dumps a snapshot is
 * made of, msgpack buffers) are plain `ArrayBuffer`s, which Node allocates with glibc's
 * malloc. On a virtual machine each fresh 4 KiB page costs a fault, ≈ 12–18 µs on the
 * benchmark machine, and copying into 4 KiB pages misses the TLB: reading a 131 MiB snapshot
 * took 400 ms there, 260 with 2 MiB pages (docs/performance.md, session 13). glibc (≥ 2.35)
 * asks the kernel for transparent huge pages on its large chunks when GLIBC_TUNABLES holds
 * the tunable below; glibc reads it only when the process starts, so `npm start`, the
 * Dockerfile and the benchmark set it in the environment they start node with. Where glibc is
 * older, the kernel's transparent huge pages are off (`never`) or the C library is not glibc,
 * it changes nothing.
 * V8's own heap and the store's columns and arenas (resizable buffers, reserved by V8, also
 * the columns a restore decodes into) are not allocated by malloc and keep 4 KiB pages.
 */

/** mallocTunables is the GLIBC_TUNABLES setting the launchers add: huge pages for large
 * chunks, and a fixed mmap threshold of 4 MiB. glibc otherwise raises its threshold (up to
 * 32 MiB) after large frees, and then serves such chunks from a thread's arena, which keeps
 * what is freed inside it: after a snapshot of a million keys, ≈ 45–90 MiB stayed resident
 * (docs/performance.md, session 14). With the threshold fixed, every chunk of 4 MiB or more is
 * a mapping of its own, returned whole when freed. */
export const mallocTunables = 'glibc.malloc.hugetlb=1:glibc.malloc.mmap_threshold=4194304';

/** withMallocHugePages gives the environment `npm start` gives node: GLIBC_TUNABLES set to the
 * tunable unless it is already set (an operator's own tunables are kept as they are, as the
 * shell's `${GLIBC_TUNABLES:-…}` in package.json keeps them; `GLIBC_TUNABLES=
 * glibc.malloc.hugetlb=0` turns huge pages off). */
export function withMallocHugePages(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
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

/** mallocHugePages says, for the start log line, whether this process's large buffers can
 * get huge pages: 'on', 'off' (the tunable is not set) or the kernel's mode when it is
 * 'never' or unreadable. */
export function mallocHugePages(env: NodeJS.ProcessEnv = process.env): string {
  const mode = kernelThpMode();
  if (mode === undefined || mode === 'never') return `unavailable (kernel: ${mode ?? 'unknown'})`;
  const tunables = env['GLIBC_TUNABLES'] ?? '';
  return /(^|:)glibc\.malloc\.hugetlb=[12](:|$)/.test(tunables) ? 'on' : 'off';
}
