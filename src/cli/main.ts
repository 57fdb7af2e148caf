import { readFileSync } from 'node:fs';
import { Client } from '../client/client.js';
import type { ClientTlsOptions } from '../client/tls.js';
import {
  ExitError,
  exitCodes,
  FlagError,
  type FlagSpec,
  type FlagValue,
  flagValue,
  parseArgs,
} from './args.js';
import type { CommandDef, Ctx, Io } from './command.js';
import { rootCommands } from './commands.js';
import { newPrinter, type Printer } from './printer.js';

export type { Io } from './command.js';
export { exitCodes } from './args.js';

/**
 * myetcdctl: etcdctl (v3 API) for MyEtcd, over the JSON gateway; it works against etcd too.
 * Commands, flags, environment (ETCDCTL_*), output writers (-w simple, json, fields,
 * protobuf, table) and exit codes follow etcdctl 3.4: 0 success, 1 a failed request or a
 * flag pflag rejects, 2 a lease query that failed, 3 malformed txn input, 4 an unsupported
 * value (output format, consistency, sort), 5 a watch the server canceled, 128 bad arguments.
 */

const cliName = 'myetcdctl';

/** globalFlags are etcdctl's persistent root flags. The TLS, auth and discovery ones are
 * accepted by name and refused when set: the JSON gateway is reached over plain HTTP. */
const globalFlags: Record<string, FlagSpec> = {
  cacert: {
    kind: 'string',
    default: '',
    desc: 'verify certificates of TLS-enabled secure servers using this CA bundle',
  },
  cert: {
    kind: 'string',
    default: '',
    desc: 'identify secure client using this TLS certificate file',
  },
  'command-timeout': {
    kind: 'duration',
    default: 5_000,
    desc: 'timeout for short running command (excluding dial timeout)',
  },
  debug: { kind: 'bool', default: false, desc: 'enable client-side debug logging' },
  'dial-timeout': { kind: 'duration', default: 2_000, desc: 'dial timeout for client connections' },
  'discovery-srv': {
    kind: 'string',
    short: 'd',
    default: '',
    desc: 'domain name to query for SRV records describing cluster endpoints',
  },
  'discovery-srv-name': {
    kind: 'string',
    default: '',
    desc: 'service name to query when using DNS discovery',
  },
  endpoints: { kind: 'strings', default: '127.0.0.1:2379', desc: 'gRPC endpoints' },
  hex: { kind: 'bool', default: false, desc: 'print byte strings as hex encoded strings' },
  'insecure-discovery': {
    kind: 'bool',
    default: true,
    desc: 'accept insecure SRV records describing cluster endpoints',
  },
  'insecure-skip-tls-verify': {
    kind: 'bool',
    default: false,
    desc: 'skip server certificate verification',
  },
  'insecure-transport': {
    kind: 'bool',
    default: true,
    desc: 'disable transport security for client connections',
  },
  'keepalive-time': {
    kind: 'duration',
    default: 2_000,
    desc: 'keepalive time for client connections',
  },
  'keepalive-timeout': {
    kind: 'duration',
    default: 6_000,
    desc: 'keepalive timeout for client connections',
  },
  key: { kind: 'string', default: '', desc: 'identify secure client using this TLS key file' },
  password: { kind: 'string', default: '', desc: 'password for authentication' },
  user: { kind: 'string', default: '', desc: 'username[:password] for authentication' },
  'write-out': {
    kind: 'string',
    short: 'w',
    default: 'simple',
    desc: 'set the output format (fields, json, protobuf, simple, table)',
  },
};

const unsupportedGlobals = ['user', 'password', 'discovery-srv'];

const helpFlag: Record<string, FlagSpec> = { help: { kind: 'bool', short: 'h', default: false } };

const root: CommandDef = {
  name: cliName,
  use: cliName,
  short: 'A simple command line client for etcd3 (and MyEtcd).',
  sub: rootCommands,
};

/** run executes one myetcdctl command line and returns the exit code. */
export async function run(argv: string[], env: NodeJS.ProcessEnv, io: Io): Promise<number> {
  const { path, rest, words } = findCommand(argv);
  try {
    if (path.length === 1 && words.length > 0) {
      // cobra's error (with its suggestions), its hint, then etcdctl's own line.
      const msg =
        `unknown command ${JSON.stringify(words[0])} for "${cliName}"` + suggestions(words[0]!);
      io.err(`Error: ${msg}\nRun '${cliName} --help' for usage.\n`);
      throw new ExitError(exitCodes.error, msg);
    }
    return await execute(path, rest, env, io);
  } catch (e) {
    if (e instanceof FlagError) {
      // cobra prints the error, the command's usage (etcdctl writes it to stdout), then
      // etcdctl's main prints the error once more.
      io.err(`Error: ${e.message}\n\n`);
      io.out(usage(path));
      io.err(`Error: ${e.message}\n`);
      return exitCodes.error;
    }
    if (e instanceof ExitError) {
      if (e.message !== '') io.err(`Error: ${e.message}\n`);
      return e.code;
    }
    io.err(`Error: ${e instanceof Error ? e.message : String(e)}\n`);
    return exitCodes.error;
  }
}

/** findCommand walks the command tree as cobra's Find does: at each level the first word
 * that is not a flag names the subcommand (a prefix is enough: `myetcdctl ge foo` is get).
 * A flag without `=` that is not a known boolean takes the next word as its value, even an
 * unknown flag (`--bogus get foo` looks for a command "foo"). */
function findCommand(argv: string[]): { path: CommandDef[]; rest: string[]; words: string[] } {
  const path: CommandDef[] = [root];
  const rest = [...argv];
  for (;;) {
    const cur = path[path.length - 1]!;
    const words = commandWords(rest, flagsOf(path));
    if (cur.sub === undefined || words.length === 0) return { path, rest, words };
    const a = words[0]!;
    const exact = cur.sub.find((c) => c.name === a);
    const byPrefix = cur.sub.filter((c) => c.name.startsWith(a));
    const next = exact ?? (byPrefix.length === 1 ? byPrefix[0] : undefined);
    if (next === undefined) return { path, rest, words };
    path.push(next);
    rest.splice(rest.indexOf(a), 1);
  }
}

/** commandWords is cobra's stripFlags: the words of argv that are not flags or flag values. */
function commandWords(argv: string[], specs: Record<string, FlagSpec>): string[] {
  const byShort = new Map(Object.values(specs).map((s) => [s.short, s]));
  const words: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const s = argv[i]!;
    if (s === '--') break;
    const long = s.startsWith('--') && !s.includes('=') && specs[s.slice(2)]?.kind !== 'bool';
    const short = /^-[^-]$/.test(s) && byShort.get(s[1])?.kind !== 'bool';
    if (long || short) {
      if (argv.length - i - 1 <= 1) break;
      i++;
    } else if (s !== '' && !s.startsWith('-')) {
      words.push(s);
    }
  }
  return words;
}

function flagsOf(path: CommandDef[]): Record<string, FlagSpec> {
  const out: Record<string, FlagSpec> = { ...globalFlags };
  for (const c of path) Object.assign(out, c.persistentFlags ?? {});
  Object.assign(out, path[path.length - 1]!.flags ?? {}, helpFlag);
  return out;
}

async function execute(
  path: CommandDef[],
  argv: string[],
  env: NodeJS.ProcessEnv,
  io: Io,
): Promise<number> {
  const cmd = path[path.length - 1]!;
  const specs = flagsOf(path);
  const { flags, changed, args } = parseArgs(argv, specs);
  // --help, or a command group (`myetcdctl lease`): cobra prints the usage and succeeds.
  if (flags.help === true || cmd.run === undefined) {
    io.out(usage(path));
    return exitCodes.success;
  }
  applyEnv(flags, changed, env);
  for (const name of unsupportedGlobals) {
    if (flags[name] !== '') {
      throw new ExitError(exitCodes.badFeature, `--${name} is not supported by ${cliName}`);
    }
  }
  const endpoints = (flags.endpoints as string[]).map((s) => s.trim()).filter((s) => s !== '');
  const tls = tlsOf(flags);
  let display: Printer | undefined;
  const ctx: Ctx = {
    flags,
    rawArgs: argv,
    env,
    io,
    endpoints,
    display() {
      display ??= newPrinter(String(flags['write-out']), io, { hex: flags.hex === true });
      if (display === undefined) {
        throw new ExitError(exitCodes.badFeature, 'unsupported output format');
      }
      return display;
    },
    client(eps = endpoints) {
      return new Client({
        endpoints: eps,
        requestTimeoutMs: flags['command-timeout'] as number,
        dialTimeoutMs: flags['dial-timeout'] as number,
        ...(tls === undefined ? {} : { tls }),
      });
    },
  };
  return (await cmd.run(ctx, args)) ?? exitCodes.success;
}

/** tlsOf reads etcdctl's TLS flags (--cacert, --cert, --key, --insecure-skip-tls-verify):
 * the files' contents for the client, or undefined when none is given. */
function tlsOf(flags: Record<string, unknown>): ClientTlsOptions | undefined {
  const t: ClientTlsOptions = {};
  const read = (flag: string): Buffer | undefined => {
    const path = flags[flag] as string;
    if (path === '') return undefined;
    try {
      return readFileSync(path);
    } catch (e) {
      throw new ExitError(exitCodes.badArgs, `--${flag}: ${(e as Error).message}`);
    }
  };
  const ca = read('cacert');
  const cert = read('cert');
  const key = read('key');
  if (ca !== undefined) t.ca = ca;
  if (cert !== undefined) t.cert = cert;
  if (key !== undefined) t.key = key;
  if (flags['insecure-skip-tls-verify'] === true) t.insecureSkipVerify = true;
  return Object.keys(t).length === 0 ? undefined : t;
}

/** suggestions is cobra's "Did you mean this?" for a mistyped command: the commands within
 * a Levenshtein distance of 2, or that start with what was typed. */
function suggestions(typed: string): string {
  const close = rootCommands
    .map((c) => c.name)
    .filter((n) => levenshtein(typed.toLowerCase(), n) <= 2 || n.startsWith(typed.toLowerCase()));
  return close.length === 0
    ? ''
    : `\n\nDid you mean this?\n${close.map((n) => `\t${n}\n`).join('')}`;
}

function levenshtein(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur.push(Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + cost));
    }
    prev = cur;
  }
  return prev[b.length]!;
}

/** applyEnv sets each global flag the command line left alone from ETCDCTL_<FLAG>, as
 * etcdctl does; a flag given both ways is refused. Values that do not parse are ignored. */
function applyEnv(flags: Record<string, FlagValue>, changed: Set<string>, env: NodeJS.ProcessEnv) {
  for (const [name, spec] of Object.entries(globalFlags)) {
    const key = `ETCDCTL_${name.toUpperCase().replace(/-/g, '_')}`;
    const v = env[key];
    if (v === undefined || v === '') continue;
    if (changed.has(name)) {
      throw new ExitError(
        exitCodes.error,
        `conflicting environment variable ${JSON.stringify(key)} is shadowed by corresponding ` +
          'command-line flag (either unset environment variable or disable flag)',
      );
    }
    try {
      flags[name] = flagValue(spec, v, `--${name}`);
    } catch {
      // etcdctl ignores an environment value it cannot parse
    }
  }
}

/** usage is the help text of a command, in etcdctl's layout. */
function usage(path: CommandDef[]): string {
  const cmd = path[path.length - 1]!;
  const full = path.map((c) => c.name).join(' ');
  let s = `NAME:\n\t${full} - ${cmd.short}\n\nUSAGE:\n\t`;
  s +=
    path.length === 1
      ? `${cliName} [flags]\n\n`
      : `${cliName} ${path
          .slice(1, -1)
          .map((c) => c.name + ' ')
          .join('')}${cmd.use} [flags]\n\n`;
  if (path.length === 1) s += 'API VERSION:\n\t3.4\n\n';
  if (cmd.sub !== undefined) {
    s += 'COMMANDS:\n';
    const w = Math.max(...cmd.sub.map((c) => c.name.length));
    for (const c of cmd.sub) s += `\t${c.name.padEnd(w)}\t${c.short}\n`;
    s += '\n';
  }
  const own =
    path.length === 1
      ? { ...globalFlags, ...helpFlag }
      : { ...(cmd.flags ?? {}), ...(cmd.persistentFlags ?? {}), ...helpFlag };
  s += 'OPTIONS:\n' + flagLines(own) + '\n';
  if (path.length > 1) s += 'GLOBAL OPTIONS:\n' + flagLines(globalFlags) + '\n';
  return s;
}

function flagLines(specs: Record<string, FlagSpec>): string {
  return Object.entries(specs)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, s]) => {
      const short = s.short !== undefined ? `-${s.short}, ` : '    ';
      const def =
        s.kind === 'bool'
          ? `[=${String(s.default ?? false)}]`
          : s.kind === 'strings'
            ? `=[${String(s.default ?? '')}]`
            : s.kind === 'duration'
              ? `=${Number(s.default) / 1000}s`
              : s.kind === 'int'
                ? `=${String(s.default ?? 0)}`
                : `=${JSON.stringify(s.default ?? '')}`;
      const desc = name === 'help' ? 'help for this command' : (s.desc ?? '');
      return `  ${short}--${name}${def}\t\t${desc}\n`;
    })
    .join('');
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
