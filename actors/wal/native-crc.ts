import { createRequire } from 'node:module';
import { type NativeCrc32c, useNativeCrc32c } from '../../src/wal/index.js';

/**
 * native-crc: the WAL writer's threads (the actor and its snapshot tasks) checksum with the
 * CPU's CRC32C instructions through `@node-rs/crc32`, ≈ 9× the JavaScript tables on large
 * spans (src/wal/crc32c.ts). The pure core cannot load an add-on, so its shells install it by
 * importing this module. Where the add-on does not load (a platform without a prebuilt
 * binary), the tables keep working alone: the sums are the same.
 */
/** loadNativeCrc32c loads the add-on's crc32c, or gives undefined where it does not load. */
export function loadNativeCrc32c(): NativeCrc32c | undefined {
  try {
    const m = createRequire(import.meta.url)('@node-rs/crc32') as { crc32c?: NativeCrc32c };
    return typeof m.crc32c === 'function' ? m.crc32c : undefined;
  } catch {
    return undefined;
  }
}

useNativeCrc32c(loadNativeCrc32c());
