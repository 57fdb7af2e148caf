/**
 * wal-fsync: what an fdatasync after a small append costs here when the append grows the file
 * (the WAL before session 9), when the file was extended ahead with ftruncate (sparse: what
 * actors/wal/wal-store.ts does now) and when it was filled with zeros ahead (close to etcd's
 * fallocate). It prints p50 / p90 / p99 per mode; run it where the data folder lives.
 *
 *   node dist/bench/wal-fsync.js [dir=os.tmpdir()] [appends=2000]
 */
import { closeSync, fdatasyncSync, fsyncSync, ftruncateSync, mkdtempSync, openSync, rmSync,
  writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const base = mkdtempSync(join(process.argv[2] ?? tmpdir(), 'wal-fsync-'));
const appends = Number(process.argv[3] ?? 2000);
const aheadBytes = 64 * 1024 * 1024;
const modes = ['growing', 'ftruncate ahead', 'zeros ahead'] as const;

/** timeAppends appends 120 bytes then fdatasyncs, `appends` times; µs per append + sync. */
function timeAppends(mode: (typeof modes)[number]): number[] {
  const fd = openSync(join(base, mode.replace(' ', '-')), 'w+');
  if (mode === 'ftruncate ahead') ftruncateSync(fd, aheadBytes);
  if (mode === 'zeros ahead') {
    const mib = Buffer.alloc(1024 * 1024);
    for (let o = 0; o < aheadBytes; o += mib.length) writeSync(fd, mib, 0, mib.length, o);
  }
  fsyncSync(fd);
  const record = Buffer.alloc(120, 7);
  const us: number[] = [];
  for (let i = 0; i < appends; i++) {
    const t0 = process.hrtime.bigint();
    writeSync(fd, record, 0, record.length, i * record.length);
    fdatasyncSync(fd);
    us.push(Number(process.hrtime.bigint() - t0) / 1000);
  }
  closeSync(fd);
  return us.sort((a, b) => a - b);
}

try {
  for (const mode of modes) {
    const us = timeAppends(mode);
    const at = (q: number): string => us[Math.floor(us.length * q)]!.toFixed(0);
    console.log(`${mode.padEnd(16)} p50 ${at(0.5)} µs  p90 ${at(0.9)} µs  p99 ${at(0.99)} µs`);
  }
} finally {
  rmSync(base, { recursive: true, force: true });
}
