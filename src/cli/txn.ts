import { Compare, type CompareOp, type Comparison, type Operation } from '../client/txn.js';
import {
  argify,
  ExitError,
  exitCodes,
  FlagError,
  parseArgs,
  parseGoInt,
  unquoteGo,
} from './args.js';
import { delFlags, delOp, getFlags, getOp, leaseArg, putFlags, putOp, toOperation } from './ops.js';

/**
 * txn: etcdctl's txn input. Three sections, each ended by an empty line: comparisons, then
 * the requests run on success, then those run on failure.
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
 * create/c, mod/m, lease (hexadecimal; etcdctl 3.4 crashes on it), op one of = != < >; keys
 * and values are Go string literals. A request is a get, put or del command line with its
 * flags. As in etcdctl, input that ends before a section's empty line fails with "EOF"
 * (exit 3), malformed lines exit 3, and a request whose own checks fail exits as that
 * command would (128).
 */

/** InputError is malformed txn input (etcdctl exits 3, ExitInvalidInput). */
export class InputError extends ExitError {
  constructor(message: string) {
    super(exitCodes.invalidInput, message);
  }
}

const ops: Record<string, CompareOp> = { '=': '=', '!=': '!=', '<': '<', '>': '>' };

/** parseCompare parses one comparison line (etcdctl's parseCompare). */
export function parseCompare(line: string): Comparison {
  const paren = line.indexOf('(');
  if (paren < 0) throw new InputError(`malformed comparison: ${line}`);
  const target = line.slice(0, paren);
  const m = /^"((?:[^"\\]|\\.)*)"\)\s+(\S+)\s+"((?:[^"\\]|\\.)*)"/.exec(line.slice(paren + 1));
  if (m === null || ops[m[2]!] === undefined) throw new InputError(`malformed comparison: ${line}`);
  const key = unquoteGo(m[1]!);
  const op = ops[m[2]!]!;
  const val = unquoteGo(m[3]!);
  const num = (): number => {
    try {
      return Number(parseGoInt(val, 10));
    } catch {
      throw new InputError(`invalid txn compare request: ${line}`);
    }
  };
  switch (target) {
    case 'ver':
    case 'version':
      return Compare.version(key, op, num());
    case 'c':
    case 'create':
      return Compare.createRevision(key, op, num());
    case 'm':
    case 'mod':
      return Compare.modRevision(key, op, num());
    case 'val':
    case 'value':
      return Compare.value(key, op, val);
    case 'lease':
      try {
        return Compare.lease(key, op, leaseArg(val, 'bad lease ID'));
      } catch {
        throw new InputError(`invalid txn compare request: ${line}`);
      }
    default:
      throw new InputError(`malformed comparison: ${line} (unknown target ${target})`);
  }
}

/** parseRequest parses one request line of a txn branch (etcdctl's parseRequestUnion). */
export function parseRequest(line: string): Operation {
  const words = argify(line);
  if (words.length < 2) throw new InputError(`invalid txn compare request: ${line}`);
  const [cmd, ...rest] = words as [string, ...string[]];
  const flagsOf = (specs: typeof getFlags) => {
    try {
      return parseArgs(rest, specs);
    } catch (e) {
      if (e instanceof FlagError) throw new InputError(`invalid txn request: ${line}`);
      throw e;
    }
  };
  switch (cmd) {
    case 'get': {
      const { flags, args } = flagsOf(getFlags);
      return toOperation({ type: 'get', op: getOp(args, flags) });
    }
    case 'put': {
      const { flags, args } = flagsOf(putFlags);
      return toOperation({ type: 'put', op: putOp(args, flags) });
    }
    case 'del': {
      const { flags, args } = flagsOf(delFlags);
      return toOperation({ type: 'del', op: delOp(args, flags) });
    }
    default:
      throw new InputError(`invalid txn request: ${line}`);
  }
}

/** TxnInput is a parsed txn. */
export interface TxnInput {
  compares: Comparison[];
  success: Operation[];
  failure: Operation[];
}

/** LineReader yields lines with whether each ended with a newline. */
export type LineReader = () => Promise<{ line: string; ended: boolean } | undefined>;

/** lineReader reads lines from a byte stream as they arrive (the interactive mode prompts
 * before each section, so the input is not read ahead to its end). */
export function lineReader(stream: NodeJS.ReadableStream): LineReader {
  const it = stream[Symbol.asyncIterator]();
  let buf = '';
  let eof = false;
  return async () => {
    for (;;) {
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        return { line, ended: true };
      }
      if (eof) {
        if (buf === '') return undefined;
        const line = buf;
        buf = '';
        return { line, ended: false };
      }
      const r = await it.next();
      if (r.done === true) eof = true;
      else buf += typeof r.value === 'string' ? r.value : Buffer.from(r.value).toString('utf8');
    }
  };
}

/** readTxn reads the three sections, calling prompt(section) before each (the interactive
 * mode prints etcdctl's prompts). */
export async function readTxn(
  next: LineReader,
  prompt?: (text: string) => void,
): Promise<TxnInput> {
  const section = async <T>(text: string, parse: (line: string) => T): Promise<T[]> => {
    prompt?.(text);
    const out: T[] = [];
    for (;;) {
      const r = await next();
      if (r === undefined || !r.ended) throw new InputError('EOF');
      const line = r.line.trim();
      if (line === '') return out;
      out.push(parse(line));
    }
  };
  const compares = await section('compares:', parseCompare);
  const success = await section('success requests (get, put, del):', parseRequest);
  const failure = await section('failure requests (get, put, del):', parseRequest);
  return { compares, success, failure };
}
