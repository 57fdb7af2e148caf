/**
 * logger.ts — structured logging with src/log (pino underneath).
 *
 * Every line is one JSON object with etcd-like fields: `level` as a word, `time` in ISO-8601,
 * `member` (the member's --name), `msg`, and whatever fields the call adds. Each part of the
 * server logs through a child logger that adds `component` (raft, wal, shard, gateway…), so
 * `jq 'select(.component == "wal")'` picks one part's lines out of the stream.
 *
 *   node dist/examples/logger.js [level]        # debug, info (default), warn or error
 */
import { closeLogger, createLogger } from '../src/log/index.js';

const level = process.argv[2] ?? 'info';
// The server calls createLogger(config) with its whole Config; only logLevel is required.
// Here: JSON lines on stdout (the server's default is stderr, pretty-printed on a terminal).
const root = createLogger({ logLevel: level, name: 'example', logOutputs: ['stdout'] },
  { pretty: false });

root.info('root logger ready'); // {"level":"info","time":…,"pid":…,"member":"example",…}

// A child adds fields to every line it writes: here the component, as each actor does.
const wal = root.child({ component: 'wal' });
wal.info({ segment: '0000000000000001-0000000000000001.wal', bytes: 4096 }, 'segment opened');
wal.debug({ records: 12 }, 'fsync done'); // only written with level debug

// Children nest: a request-scoped logger inside the gateway component.
const gateway = root.child({ component: 'gateway' });
const request = gateway.child({ requestId: 'r-42', route: '/v3/kv/put' });
request.warn({ durationMs: 120 }, 'slow request');
request.error({ err: new Error('example failure') }, 'request failed'); // err is serialized

// Logging is asynchronous (it never blocks the caller): flush before the process exits.
await closeLogger(root);
