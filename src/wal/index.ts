/**
 * The WAL's pure core: record format, CRC32C, encoder, decoder, recovery and the snapshot file
 * format. No I/O here: actors/wal/wal-store.ts and actors/wal/snap-store.ts are the shells
 * that read and write the files.
 */
export * from './crc32c.js';
export * from './errors.js';
export * from './record.js';
export * from './encoder.js';
export * from './decoder.js';
export * from './recovery.js';
export * from './segment-name.js';
export * from './snapshot-format.js';
export * from './invariants.js';
export * from './zero-ahead.js';
