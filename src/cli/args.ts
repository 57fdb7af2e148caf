/**
 * args: a small cobra-like argument parser for myetcdctl. Flags may come before or after
 * positionals, as `--flag value`, `--flag=value`, `-f value`; booleans take no value (or
 * `--flag=false`); `--` ends flags.
 */

/** UsageError is a bad command line (etcdctl exits 128, ExitBadArgs). */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** FlagSpec declares a flag: its kind and default. */
export interface FlagSpec {
  kind: 'bool' | 'string' | 'int';
  short?: string;
  default?: string | number | boolean;
}

/** Parsed is a parsed command line. */
export interface Parsed {
  flags: Record<string, string | number | boolean>;
  args: string[];
}

/** parseArgs parses argv against the flag specs. */
export function parseArgs(argv: string[], specs: Record<string, FlagSpec>): Parsed {
  const flags: Record<string, string | number | boolean> = {};
  for (const [name, s] of Object.entries(specs))
    if (s.default !== undefined) flags[name] = s.default;
  const byShort = new Map(
    Object.entries(specs)
      .filter(([, s]) => s.short)
      .map(([n, s]) => [s.short!, n]),
  );
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
    const long = a.startsWith('--');
    const body = a.slice(long ? 2 : 1);
    const eq = body.indexOf('=');
    const key = eq < 0 ? body : body.slice(0, eq);
    const name = long ? key : (byShort.get(key) ?? key);
    const spec = specs[name];
    if (spec === undefined)
      throw new UsageError(`unknown flag: ${a.slice(0, long ? 2 + key.length : 1 + key.length)}`);
    let raw: string | undefined = eq < 0 ? undefined : body.slice(eq + 1);
    if (spec.kind === 'bool') {
      if (raw === undefined) flags[name] = true;
      else if (raw === 'true' || raw === 'false') flags[name] = raw === 'true';
      else
        throw new UsageError(
          `invalid argument "${raw}" for "--${name}" flag: expected true or false`,
        );
      continue;
    }
    if (raw === undefined) {
      raw = argv[++i];
      if (raw === undefined) throw new UsageError(`flag needs an argument: --${name}`);
    }
    if (spec.kind === 'int') {
      if (!/^-?\d+$/.test(raw)) {
        throw new UsageError(
          `invalid argument "${raw}" for "--${name}" flag: ` +
            `strconv.ParseInt: parsing "${raw}": invalid syntax`,
        );
      }
      flags[name] = Number(raw);
    } else {
      flags[name] = raw;
    }
  }
  return { flags, args };
}

/** argify splits a txn request line into words as etcdctl does: double-quoted strings
 * (with Go escapes) are one word each. */
export function argify(line: string): string[] {
  const out: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|(\S+)/g;
  for (let m = re.exec(line); m !== null; m = re.exec(line)) {
    out.push(m[1] !== undefined ? unquoteGo(m[1]) : m[2]!);
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
