import { Compare, type CompareOp, type Comparison, type Operation, Op } from '../client/txn.js';
import { leaseFromHex } from '../client/codec.js';
import { argify, parseArgs, UsageError, unquoteGo } from './args.js';

/**
 * txn: etcdctl's txn input. Three sections, each ended by a blank line (or the end of
 * input): comparisons, then the requests run on success, then those run on failure.
 *
 *   mod("key1") > "0"
 *   value("key2") = "x"
 *
 *   put key1 "new value"
 *   get key2
 *
 *   del key1 --prev-kv
 *
 * A comparison is `target("key") op "value"`, target one of value/val, version/ver,
 * create/c, mod/m, lease (hexadecimal), op one of = != < >; keys and values are Go string
 * literals. A request is a get, put or del command line with its flags.
 */

/** InputError is malformed txn input (etcdctl exits 3, ExitInvalidInput). */
export class InputError extends Error {
  override name = 'InputError';
}

/** parseCompare parses one comparison line (etcdctl's parseCompare). */
export function parseCompare(line: string): Comparison {
  const m = /^\s*([a-z]+)\("((?:[^"\\]|\\.)*)"\)\s+(=|!=|<|>)\s+"((?:[^"\\]|\\.)*)"\s*$/.exec(line);
  if (m === null) throw new InputError(`malformed comparison: ${line}`);
  const [, target, rawKey, op, rawVal] = m as unknown as [
    string,
    string,
    string,
    CompareOp,
    string,
  ];
  const key = unquoteGo(rawKey);
  const val = unquoteGo(rawVal);
  const num = () => {
    if (!/^-?\d+$/.test(val))
      throw new InputError(`malformed comparison: ${line} (invalid number ${val})`);
    return Number(val);
  };
  switch (target) {
    case 'val':
    case 'value':
      return Compare.value(key, op, val);
    case 'ver':
    case 'version':
      return Compare.version(key, op, num());
    case 'c':
    case 'create':
      return Compare.createRevision(key, op, num());
    case 'm':
    case 'mod':
      return Compare.modRevision(key, op, num());
    case 'lease':
      try {
        return Compare.lease(key, op, leaseFromHex(val));
      } catch {
        throw new InputError(`malformed comparison: ${line} (invalid lease ID ${val})`);
      }
    default:
      throw new InputError(`malformed comparison: ${line} (unknown target ${target})`);
  }
}

const getFlags = {
  prefix: { kind: 'bool' },
  'from-key': { kind: 'bool' },
  limit: { kind: 'int' },
  rev: { kind: 'int' },
  'keys-only': { kind: 'bool' },
  'count-only': { kind: 'bool' },
  consistency: { kind: 'string' },
  order: { kind: 'string' },
  'sort-by': { kind: 'string' },
  'print-value-only': { kind: 'bool' },
} as const;
const putFlags = {
  lease: { kind: 'string' },
  'prev-kv': { kind: 'bool' },
  'ignore-value': { kind: 'bool' },
  'ignore-lease': { kind: 'bool' },
} as const;
const delFlags = {
  prefix: { kind: 'bool' },
  'prev-kv': { kind: 'bool' },
  'from-key': { kind: 'bool' },
} as const;

/** parseRequest parses one request line of a txn branch. */
export function parseRequest(line: string): Operation {
  const words = argify(line);
  const [cmd, ...rest] = words;
  try {
    switch (cmd) {
      case 'get': {
        const { flags, args } = parseArgs(rest, getFlags);
        if (args.length < 1 || args.length > 2)
          throw new InputError(`invalid txn request: ${line}`);
        return Op.get(args[0]!, {
          prefix: flags.prefix === true,
          fromKey: flags['from-key'] === true,
          ...(args[1] !== undefined ? { rangeEnd: args[1] } : {}),
          limit: (flags.limit as number | undefined) ?? 0,
          revision: (flags.rev as number | undefined) ?? 0,
          keysOnly: flags['keys-only'] === true,
          countOnly: flags['count-only'] === true,
          serializable: flags.consistency === 's',
        });
      }
      case 'put': {
        const { flags, args } = parseArgs(rest, putFlags);
        if (args.length !== 2 && !(args.length === 1 && flags['ignore-value'] === true)) {
          throw new InputError(`invalid txn request: ${line}`);
        }
        const lease = flags.lease as string | undefined;
        return Op.put(args[0]!, args[1] ?? '', {
          ...(lease !== undefined ? { lease: leaseFromHex(lease) } : {}),
          prevKv: flags['prev-kv'] === true,
          ignoreValue: flags['ignore-value'] === true,
          ignoreLease: flags['ignore-lease'] === true,
        });
      }
      case 'del':
      case 'delete': {
        const { flags, args } = parseArgs(rest, delFlags);
        if (args.length < 1 || args.length > 2)
          throw new InputError(`invalid txn request: ${line}`);
        return Op.delete(args[0]!, {
          prefix: flags.prefix === true,
          fromKey: flags['from-key'] === true,
          prevKv: flags['prev-kv'] === true,
          ...(args[1] !== undefined ? { rangeEnd: args[1] } : {}),
        });
      }
      default:
        throw new InputError(`invalid txn request: ${line}`);
    }
  } catch (e) {
    if (e instanceof UsageError || e instanceof TypeError)
      throw new InputError(`invalid txn request: ${line} (${e.message})`);
    throw e;
  }
}

/** TxnInput is a parsed txn. */
export interface TxnInput {
  compares: Comparison[];
  success: Operation[];
  failure: Operation[];
}

/** readTxn reads the three sections from lines, calling prompt(section) before each (the
 * interactive mode prints etcdctl's prompts). */
export async function readTxn(
  lines: AsyncIterator<string>,
  prompt?: (text: string) => void,
): Promise<TxnInput> {
  const section = async (text: string): Promise<string[]> => {
    prompt?.(text);
    const out: string[] = [];
    for (;;) {
      const r = await lines.next();
      if (r.done) return out;
      const line = r.value.replace(/\r$/, '');
      if (line.trim() === '') return out;
      out.push(line);
    }
  };
  const compares = (await section('compares:')).map(parseCompare);
  const success = (await section('success requests (get, put, del):')).map(parseRequest);
  const failure = (await section('failure requests (get, put, del):')).map(parseRequest);
  return { compares, success, failure };
}
