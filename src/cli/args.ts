import { parseDurationMs } from '../config/load.js';

/**
 * args: myetcdctl's command line as etcdctl's (cobra and pflag) reads it. Flags may come
 * before or after positionals, as `--flag value`, `--flag=value`, `-f value`, `-fvalue`;
 * booleans take no value (or `--flag=false`); `--` ends flags. The errors and exit codes are
 * etcdctl's: a flag pflag cannot parse exits 1 (with the command's usage on stdout), a bad
 * argument that the command itself checks exits 128, a valid flag with an unsupported value 4.
 */

/** exitCodes are etcdctl's (cobrautl). */
export const exitCodes = {
  success: 0,
  error: 1,
  badConnection: 2,
  invalidInput: 3,
  badFeature: 4,
  interrupted: 5,
  io: 6,
  badArgs: 128,
} as const;

/** ExitError ends a command: etcdctl prints `Error: <message>` on stderr and exits `code`. */
export class ExitError extends Error {
  override name = 'ExitError';
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

/** badArgs is a bad argument that the command itself checks (etcdctl's ExitBadArgs, 128). */
export const badArgs = (message: string): ExitError => new ExitError(exitCodes.badArgs, message);

/** FlagError is a command line pflag rejects (unknown flag, bad value): exit 1. */
export class FlagError extends Error {
  override name = 'FlagError';
}

/** FlagSpec declares a flag: its kind, default and help text. */
export interface FlagSpec {
  kind: 'bool' | 'string' | 'int' | 'duration' | 'strings';
  short?: string;
  default?: string | number | boolean;
  desc?: string;
}

/** FlagValue is a parsed flag value (durations in milliseconds, string slices as arrays). */
export type FlagValue = string | number | boolean | string[];

/** Parsed is a parsed command line: the flags (defaults included), which of them the command
 * line set, and the positionals. */
export interface Parsed {
  flags: Record<string, FlagValue>;
  changed: Set<string>;
  args: string[];
}

/** parseArgs parses argv against the flag specs (pflag's rules). */
export function parseArgs(argv: string[], specs: Record<string, FlagSpec>): Parsed {
  const flags: Record<string, FlagValue> = {};
  for (const [name, s] of Object.entries(specs))
    if (s.default !== undefined)
      flags[name] = s.kind === 'strings' ? String(s.default).split(',') : s.default;
  const changed = new Set<string>();
  const byShort = new Map<string, string>();
  for (const [n, s] of Object.entries(specs)) if (s.short !== undefined) byShort.set(s.short, n);
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      args.push(...argv.slice(i + 1));
      break;
    }
    if (!a.startsWith('-') || a === '-') {
      args.push(a);
      continue;
    }
    let name: string;
    let raw: string | undefined;
    let shown: string;
    if (a.startsWith('--')) {
      const body = a.slice(2);
      const eq = body.indexOf('=');
      name = eq < 0 ? body : body.slice(0, eq);
      raw = eq < 0 ? undefined : body.slice(eq + 1);
      shown = `--${name}`;
      if (specs[name] === undefined) throw new FlagError(`unknown flag: --${name}`);
    } else {
      const c = a[1]!;
      const long = byShort.get(c);
      if (long === undefined) throw new FlagError(`unknown shorthand flag: '${c}' in ${a}`);
      name = long;
      const rest = a.slice(2);
      if (specs[name]!.kind === 'bool') {
        if (rest.startsWith('=')) raw = rest.slice(1);
        else if (rest !== '') throw new FlagError(`unknown shorthand flag: '${rest[0]}' in ${a}`);
      } else if (rest !== '') raw = rest.startsWith('=') ? rest.slice(1) : rest;
      shown = `-${c}, --${name}`;
    }
    const spec = specs[name]!;
    if (spec.kind === 'bool') {
      flags[name] = raw === undefined ? true : parseBool(raw, shown);
      changed.add(name);
      continue;
    }
    if (raw === undefined) {
      raw = argv[++i];
      if (raw === undefined) {
        throw new FlagError(
          a.startsWith('--')
            ? `flag needs an argument: ${a}`
            : `flag needs an argument: '${a[1]}' in ${a}`,
        );
      }
    }
    flags[name] = flagValue(spec, raw, shown);
    changed.add(name);
  }
  return { flags, changed, args };
}

/** flagValue converts a flag's text (from the command line or the environment). */
export function flagValue(spec: FlagSpec, raw: string, shown: string): FlagValue {
  const bad = (why: string) =>
    new FlagError(`invalid argument "${raw}" for "${shown}" flag: ${why}`);
  switch (spec.kind) {
    case 'bool':
      return parseBool(raw, shown);
    case 'int':
      try {
        return Number(parseGoInt(raw, 10));
      } catch (e) {
        throw bad((e as Error).message);
      }
    case 'duration': {
      const ms = parseDurationMs(raw);
      if (ms === undefined) throw bad(`time: invalid duration "${raw}"`);
      return ms;
    }
    case 'strings':
      return raw === '' ? [] : raw.split(',');
    case 'string':
      return raw;
  }
}

function parseBool(raw: string, shown: string): boolean {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(raw)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(raw)) return false;
  throw new FlagError(
    `invalid argument "${raw}" for "${shown}" flag: ` +
      `strconv.ParseBool: parsing "${raw}": invalid syntax`,
  );
}

/** parseGoInt is Go's strconv.ParseInt(s, base, 64) (ParseUint with `unsigned`): a BigInt,
 * or an Error with Go's message. */
export function parseGoInt(s: string, base: 10 | 16, unsigned = false): bigint {
  const fn = unsigned ? 'strconv.ParseUint' : 'strconv.ParseInt';
  const err = (why: string) => new Error(`${fn}: parsing "${s}": ${why}`);
  let body = s;
  let neg = false;
  if (!unsigned && (body.startsWith('+') || body.startsWith('-'))) {
    neg = body[0] === '-';
    body = body.slice(1);
  }
  const digits = base === 10 ? /^[0-9]+$/ : /^[0-9a-fA-F]+$/;
  if (!digits.test(body)) throw err('invalid syntax');
  let v = BigInt(base === 10 ? body : '0x' + body);
  if (neg) v = -v;
  const [min, max] = unsigned ? [0n, 2n ** 64n - 1n] : [-(2n ** 63n), 2n ** 63n - 1n];
  if (v < min || v > max) throw err('value out of range');
  return v;
}

/** argify splits a txn request line into words as etcdctl does: double-quoted strings (with
 * Go escapes) and single-quoted strings are one word each. */
export function argify(line: string): string[] {
  const out: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|'([^']*)'|(\S+)/g;
  for (let m = re.exec(line); m !== null; m = re.exec(line)) {
    out.push(m[1] !== undefined ? unquoteGo(m[1]) : (m[2] ?? m[3]!));
  }
  return out;
}

/** unquoteGo decodes the inside of a Go double-quoted string literal. */
export function unquoteGo(s: string): string {
  return s.replace(/\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|[0-7]{3}|.)/g, (_, e: string) => {
    switch (e[0]) {
      case 'n':
        return '\n';
      case 't':
        return '\t';
      case 'r':
        return '\r';
      case 'a':
        return '\x07';
      case 'b':
        return '\b';
      case 'f':
        return '\f';
      case 'v':
        return '\v';
      case 'x':
        return String.fromCharCode(parseInt(e.slice(1), 16));
      case 'u':
        return String.fromCharCode(parseInt(e.slice(1), 16));
      default:
        if (/^[0-7]{3}$/.test(e)) return String.fromCharCode(parseInt(e, 8));
        return e;
    }
  });
}
