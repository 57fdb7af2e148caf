import * as readline from 'node:readline';
import { Client } from '../client/client.js';
import { leaseFromHex, leaseHex } from '../client/codec.js';
import { ClientError } from '../client/errors.js';
import type { SortOrder, SortTarget } from '../client/types.js';
import { parseDurationMs } from '../config/load.js';
import { type FlagSpec, parseArgs, UsageError } from './args.js';
import * as F from './format.js';
import { InputError, readTxn } from './txn.js';

/**
 * myetcdctl: etcdctl (v3 API) for MyEtcd, over the JSON gateway; it works against etcd too.
 * Commands, flags, output ("simple" and "json" writers) and exit codes follow etcdctl 3.4:
 * 0 success, 1 a failed request, 3 malformed input (txn), 128 a bad command line.
 */

/** exitCodes are etcdctl's. */
export const exitCodes = { success: 0, error: 1, invalidInput: 3, badArgs: 128 } as const;

const flagSpecs: Record<string, FlagSpec> = {
  endpoints: { kind: 'string' },
  'write-out': { kind: 'string', short: 'w', default: 'simple' },
  'command-timeout': { kind: 'string', default: '5s' },
  'dial-timeout': { kind: 'string', default: '2s' },
  help: { kind: 'bool', short: 'h' },
  // get / del / watch
  prefix: { kind: 'bool' },
  'from-key': { kind: 'bool' },
  rev: { kind: 'int' },
  limit: { kind: 'int' },
  'keys-only': { kind: 'bool' },
  'count-only': { kind: 'bool' },
  'print-value-only': { kind: 'bool' },
  consistency: { kind: 'string', default: 'l' },
  order: { kind: 'string' },
  'sort-by': { kind: 'string' },
  'prev-kv': { kind: 'bool' },
  // put
  lease: { kind: 'string' },
  'ignore-value': { kind: 'bool' },
  'ignore-lease': { kind: 'bool' },
  // txn
  interactive: { kind: 'bool', short: 'i' },
  // lease
  keys: { kind: 'bool' },
  once: { kind: 'bool' },
  // compaction
  physical: { kind: 'bool' },
};

/** Io is where a command writes (tests pass their own). */
export interface Io {
  out(text: string): void;
  err(text: string): void;
  stdin: NodeJS.ReadableStream;
}

const usage = `NAME:
\tmyetcdctl - a command line client for MyEtcd (and etcd v3)

USAGE:
\tmyetcdctl [flags] <command> [args]

COMMANDS:
\tget key [range_end]     [--prefix] [--from-key] [--rev=N] [--limit=N] [--keys-only]
\t                        [--count-only] [--print-value-only] [--consistency=l|s]
\t                        [--order=ASCEND|DESCEND] [--sort-by=CREATE|KEY|MODIFY|VALUE|VERSION]
\tput key value           [--lease=hexID] [--prev-kv] [--ignore-value] [--ignore-lease]
\tdel key [range_end]     [--prefix] [--from-key] [--prev-kv]
\ttxn                     [-i]  compares, blank line, success requests, blank line, failure requests
\twatch key [range_end]   [--prefix] [--rev=N] [--prev-kv]
\tlease grant <ttl>
\tlease revoke <leaseID>
\tlease timetolive <leaseID> [--keys]
\tlease list
\tlease keep-alive <leaseID> [--once]
\tendpoint health
\tendpoint status
\tcompaction <revision>   [--physical]

GLOBAL FLAGS:
\t--endpoints=http://127.0.0.1:2379   comma-separated endpoints (env ETCDCTL_ENDPOINTS)
\t-w, --write-out=simple               simple or json
\t--command-timeout=5s                 timeout of each request
\t--dial-timeout=2s                    timeout to connect a stream
`;

/** run executes one myetcdctl command line and returns the exit code. */
export async function run(argv: string[], env: NodeJS.ProcessEnv, io: Io): Promise<number> {
  try {
    return await dispatch(argv, env, io);
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`Error: ${e.message}\n`);
      return exitCodes.badArgs;
    }
    if (e instanceof InputError) {
      io.err(`Error: ${e.message}\n`);
      return exitCodes.invalidInput;
    }
    if (e instanceof ClientError) {
      io.err(`Error: ${e.message}\n`);
      return exitCodes.error;
    }
    io.err(`Error: ${e instanceof Error ? e.message : String(e)}\n`);
    return exitCodes.error;
  }
}

function duration(flags: Record<string, unknown>, name: string): number {
  const ms = parseDurationMs(String(flags[name]));
  if (ms === undefined)
    throw new UsageError(`invalid argument "${String(flags[name])}" for "--${name}" flag`);
  return ms;
}

async function dispatch(argv: string[], env: NodeJS.ProcessEnv, io: Io): Promise<number> {
  const { flags, args } = parseArgs(argv, flagSpecs);
  if (flags.help === true || args.length === 0) {
    io.out(usage);
    return exitCodes.success;
  }
  const endpoints = String(flags.endpoints ?? env.ETCDCTL_ENDPOINTS ?? 'http://127.0.0.1:2379')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const format = String(flags['write-out']);
  if (format !== 'simple' && format !== 'json') {
    throw new UsageError(`unsupported output format: ${format} (use simple or json)`);
  }
  const json = format === 'json';
  const client = new Client({
    endpoints,
    requestTimeoutMs: duration(flags, 'command-timeout'),
    dialTimeoutMs: duration(flags, 'dial-timeout'),
  });
  const lines = (ls: string[]) => {
    if (ls.length > 0) io.out(ls.join('\n') + '\n');
  };
  const printJson = (v: unknown) => io.out(F.goJson(v) + '\n');
  const valueOnly = flags['print-value-only'] === true;
  const [cmd, ...rest] = args;

  switch (cmd) {
    case 'get': {
      if (rest.length < 1 || rest.length > 2) {
        throw new UsageError(
          'get command needs one argument as key and an optional argument as range_end',
        );
      }
      const r = await client.get(rest[0]!, {
        prefix: flags.prefix === true,
        fromKey: flags['from-key'] === true,
        ...(rest[1] !== undefined ? { rangeEnd: rest[1] } : {}),
        revision: (flags.rev as number | undefined) ?? 0,
        limit: (flags.limit as number | undefined) ?? 0,
        keysOnly: flags['keys-only'] === true,
        countOnly: flags['count-only'] === true,
        serializable: flags.consistency === 's',
        ...sortOptions(flags),
      });
      if (json) printJson(F.rangeJson(r));
      else lines(F.rangeLines(r, valueOnly));
      return exitCodes.success;
    }
    case 'put': {
      const ignoreValue = flags['ignore-value'] === true;
      if (rest.length !== 2 && !(ignoreValue && rest.length === 1)) {
        throw new UsageError('put command needs 1 argument and input from stdin or 2 arguments');
      }
      const lease = flags.lease === undefined ? undefined : hexLease(String(flags.lease));
      const r = await client.put(rest[0]!, rest[1] ?? '', {
        ...(lease !== undefined ? { lease } : {}),
        prevKv: flags['prev-kv'] === true,
        ignoreValue,
        ignoreLease: flags['ignore-lease'] === true,
      });
      if (json) printJson(F.putJson(r));
      else lines(F.putLines(r, valueOnly));
      return exitCodes.success;
    }
    case 'del':
    case 'delete': {
      if (rest.length < 1 || rest.length > 2) {
        throw new UsageError(
          'del command needs one argument as key and an optional argument as range_end',
        );
      }
      const r = await client.delete(rest[0]!, {
        prefix: flags.prefix === true,
        fromKey: flags['from-key'] === true,
        prevKv: flags['prev-kv'] === true,
        ...(rest[1] !== undefined ? { rangeEnd: rest[1] } : {}),
      });
      if (json) printJson(F.deleteJson(r));
      else lines(F.deleteLines(r, valueOnly));
      return exitCodes.success;
    }
    case 'txn': {
      if (rest.length > 0) throw new UsageError('txn command does not accept argument');
      const rl = readline.createInterface({
        input: io.stdin,
        crlfDelay: Infinity,
        terminal: false,
      });
      try {
        const input = await readTxn(
          rl[Symbol.asyncIterator](),
          flags.interactive === true ? (p) => io.out(p + '\n') : undefined,
        );
        const r = await client
          .txn()
          .if(...input.compares)
          .then(...input.success)
          .else(...input.failure)
          .commit();
        if (json) printJson(F.txnJson(r));
        else lines(F.txnLines(r, valueOnly));
      } finally {
        rl.close();
      }
      return exitCodes.success;
    }
    case 'watch':
      return await watch(client, rest, flags, io, json, valueOnly);
    case 'lease':
      return await lease(client, rest, flags, io, json);
    case 'endpoint':
      return await endpoint(client, endpoints, rest, io, json);
    case 'compaction': {
      if (rest.length !== 1) throw new UsageError('compaction command needs 1 argument');
      const rev = Number(rest[0]);
      if (!Number.isSafeInteger(rev)) throw new UsageError(`bad revision: ${rest[0]}`);
      await client.compact(rev, { physical: flags.physical === true });
      io.out(`compacted revision ${rev}\n`);
      return exitCodes.success;
    }
    default:
      io.err(
        `Error: unknown command "${cmd}" for "myetcdctl"\nRun 'myetcdctl --help' for usage.\n`,
      );
      return exitCodes.error;
  }
}

function sortOptions(flags: Record<string, unknown>): {
  sortOrder?: SortOrder;
  sortTarget?: SortTarget;
} {
  const out: { sortOrder?: SortOrder; sortTarget?: SortTarget } = {};
  if (flags.order !== undefined) {
    const o = String(flags.order).toUpperCase();
    if (o !== 'ASCEND' && o !== 'DESCEND')
      throw new UsageError(`bad sort order ${String(flags.order)}`);
    out.sortOrder = o;
  }
  if (flags['sort-by'] !== undefined) {
    const t = String(flags['sort-by']).toUpperCase();
    const map: Record<string, SortTarget> = {
      CREATE: 'CREATE',
      KEY: 'KEY',
      MODIFY: 'MOD',
      VALUE: 'VALUE',
      VERSION: 'VERSION',
    };
    if (map[t] === undefined) throw new UsageError(`bad sort target ${String(flags['sort-by'])}`);
    out.sortTarget = map[t];
    out.sortOrder ??= 'ASCEND';
  }
  return out;
}

function hexLease(s: string): string {
  try {
    return leaseFromHex(s);
  } catch {
    throw new UsageError(`bad lease ID (${s}), expecting ID in Hex`);
  }
}

/** untilSignal resolves on SIGINT/SIGTERM (the way to stop watch and keep-alive). */
function untilSignal(): { promise: Promise<void>; dispose(): void } {
  let dispose = () => {};
  const promise = new Promise<void>((resolve) => {
    const on = () => resolve();
    process.once('SIGINT', on);
    process.once('SIGTERM', on);
    dispose = () => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
    };
  });
  return { promise, dispose };
}

async function watch(
  client: Client,
  rest: string[],
  flags: Record<string, unknown>,
  io: Io,
  json: boolean,
  valueOnly: boolean,
): Promise<number> {
  if (rest.length < 1 || rest.length > 2) {
    throw new UsageError(
      'watch in non-interactive mode requires one or two arguments as key or prefix, ' +
        'with range end',
    );
  }
  const w = client.watch(rest[0]!, {
    prefix: flags.prefix === true,
    ...(rest[1] !== undefined ? { rangeEnd: rest[1] } : {}),
    startRevision: (flags.rev as number | undefined) ?? 0,
    prevKv: flags['prev-kv'] === true,
  });
  const sig = untilSignal();
  void sig.promise.then(() => w.cancel());
  try {
    for await (const r of w) {
      if (json) io.out(F.goJson(F.watchJson(r)) + '\n');
      else io.out(F.watchLines(r, valueOnly).join('\n') + '\n');
    }
  } catch (e) {
    if (e instanceof ClientError) {
      io.err(`watch was canceled (${e.message})\n`);
      io.err('Error: watch is canceled by the server\n');
      return exitCodes.error;
    }
    throw e;
  } finally {
    sig.dispose();
  }
  return exitCodes.success;
}

async function lease(
  client: Client,
  rest: string[],
  flags: Record<string, unknown>,
  io: Io,
  json: boolean,
): Promise<number> {
  const [sub, ...a] = rest;
  const one = (what: string) => {
    if (a.length !== 1)
      throw new UsageError(
        `lease ${what} command needs ${what === 'grant' ? 'TTL' : 'lease ID'} argument`,
      );
    return a[0]!;
  };
  switch (sub) {
    case 'grant': {
      const ttl = Number(one('grant'));
      if (!Number.isSafeInteger(ttl)) throw new UsageError(`bad TTL (${a[0]})`);
      const r = await client.leaseGrant(ttl).catch((e: unknown) => {
        throw e instanceof ClientError
          ? new ClientError(`failed to grant lease (${e.message})`, e.code, e.status, e.endpoint)
          : e;
      });
      if (json) {
        io.out(
          F.goJson({
            ...F.headerJson(r.header),
            ID: new F.Raw(r.id),
            TTL: new F.Raw(String(r.ttl)),
            Error: '',
          }) + '\n',
        );
      } else {
        io.out(`lease ${leaseHex(r.id)} granted with TTL(${r.ttl}s)\n`);
      }
      return exitCodes.success;
    }
    case 'revoke': {
      const id = hexLease(one('revoke'));
      const r = await client.leaseRevoke(id).catch((e: unknown) => {
        throw e instanceof ClientError
          ? new ClientError(`failed to revoke lease (${e.message})`, e.code, e.status, e.endpoint)
          : e;
      });
      if (json) io.out(F.goJson({ header: F.headerJson(r.header) }) + '\n');
      else io.out(`lease ${leaseHex(id)} revoked\n`);
      return exitCodes.success;
    }
    case 'timetolive': {
      const id = hexLease(one('timetolive'));
      const r = await client.leaseTimeToLive(id, { keys: flags.keys === true });
      if (json) {
        io.out(
          F.goJson({
            ...F.headerJson(r.header),
            ID: new F.Raw(id),
            TTL: new F.Raw(String(r.ttl)),
            grantedTTL: new F.Raw(String(r.grantedTtl)),
            keys: r.keys.length ? r.keys.map((k) => k.toString('base64')) : undefined,
          }) + '\n',
        );
      } else if (r.grantedTtl === 0 && r.ttl === -1) {
        io.out(`lease ${leaseHex(id)} already expired\n`);
      } else {
        let s = `lease ${leaseHex(id)} granted with TTL(${r.grantedTtl}s), remaining(${r.ttl}s)`;
        if (flags.keys === true)
          s += `, attached keys([${r.keys.map((k) => k.toString('utf8')).join(' ')}])`;
        io.out(s + '\n');
      }
      return exitCodes.success;
    }
    case 'list': {
      const r = await client.leases();
      if (json) {
        io.out(
          F.goJson({
            header: F.headerJson(r.header),
            leases: r.leases.map((l) => ({ ID: new F.Raw(l) })),
          }) + '\n',
        );
      } else {
        io.out(
          `found ${r.leases.length} leases\n` + r.leases.map((l) => leaseHex(l) + '\n').join(''),
        );
      }
      return exitCodes.success;
    }
    case 'keep-alive': {
      const id = hexLease(one('keep-alive'));
      const print = (ttl: number) => io.out(`lease ${leaseHex(id)} keepalived with TTL(${ttl})\n`);
      if (flags.once === true) {
        const r = await client.leaseKeepAliveOnce(id);
        print(r.ttl);
        return exitCodes.success;
      }
      const ka = client.keepAlive(id, { onResponse: (r) => print(r.ttl) });
      const sig = untilSignal();
      const end = await Promise.race([ka.done, sig.promise.then(() => 'signal' as const)]);
      sig.dispose();
      ka.close();
      if (end !== 'signal') io.out(`lease ${leaseHex(id)} expired or revoked.\n`);
      return exitCodes.success;
    }
    default:
      throw new UsageError(`unknown command "${sub ?? ''}" for "lease"`);
  }
}

async function endpoint(
  client: Client,
  endpoints: string[],
  rest: string[],
  io: Io,
  json: boolean,
): Promise<number> {
  const [sub] = rest;
  if (sub === 'health') {
    const results = await Promise.all(
      endpoints.map(async (ep) => {
        const one = new Client({ endpoints: [ep], requestTimeoutMs: client.transport.timeoutMs });
        const t0 = performance.now();
        try {
          await one.get('health');
          return {
            endpoint: one.transport.endpoint,
            health: true,
            took: F.goDuration(performance.now() - t0),
          };
        } catch (e) {
          const took = F.goDuration(performance.now() - t0);
          if (e instanceof ClientError && e.codeName === 'PermissionDenied') {
            return { endpoint: one.transport.endpoint, health: true, took };
          }
          return {
            endpoint: one.transport.endpoint,
            health: false,
            took,
            error: e instanceof Error ? e.message : String(e),
          };
        }
      }),
    );
    if (json) io.out(F.goJson(results) + '\n');
    for (const r of results) {
      if (json) continue;
      if (r.health)
        io.out(`${r.endpoint} is healthy: successfully committed proposal: took = ${r.took}\n`);
      else io.err(`${r.endpoint} is unhealthy: failed to commit proposal: ${r.error}\n`);
    }
    if (results.some((r) => !r.health)) {
      io.err('Error: unhealthy cluster\n');
      return exitCodes.error;
    }
    return exitCodes.success;
  }
  if (sub === 'status') {
    const out: unknown[] = [];
    let failed = false;
    for (const ep of endpoints) {
      try {
        const s = await client.statusOf(ep);
        const url = new Client({ endpoints: [ep] }).transport.endpoint;
        if (json) out.push(F.statusJson(url, s));
        else {
          io.out(
            [
              url,
              leaseHex(s.header.memberId),
              s.version,
              F.humanBytes(s.dbSize),
              String(s.leader === s.header.memberId),
              String(s.isLearner),
              String(s.raftTerm),
              String(s.raftIndex),
              String(s.raftAppliedIndex),
              s.errors.join(', '),
            ].join(', ') + '\n',
          );
        }
      } catch (e) {
        failed = true;
        io.err(
          `Failed to get the status of endpoint ${ep} ` +
            `(${e instanceof Error ? e.message : String(e)})\n`,
        );
      }
    }
    if (json) io.out(F.goJson(out) + '\n');
    return failed ? exitCodes.error : exitCodes.success;
  }
  throw new UsageError(`unknown command "${sub ?? ''}" for "endpoint"`);
}

/** main runs myetcdctl as a process. */
export async function main(): Promise<void> {
  const code = await run(process.argv.slice(2), process.env, {
    out: (t) => process.stdout.write(t),
    err: (t) => process.stderr.write(t),
    stdin: process.stdin,
  });
  process.exitCode = code;
}
