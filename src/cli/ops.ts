import { Op, type Operation } from '../client/txn.js';
import type {
  DeleteOptions,
  GetOptions,
  PutOptions,
  SortOrder,
  SortTarget,
} from '../client/types.js';
import {
  badArgs,
  ExitError,
  exitCodes,
  type FlagSpec,
  type FlagValue,
  parseGoInt,
} from './args.js';
import { goQuote } from './format.js';

/**
 * ops: the get, put and del requests built from their flags and arguments, with etcdctl's
 * checks and wording (getGetOp, getPutOp, getDelOp). The commands and the txn reader share
 * them, as etcdctl's do.
 */

type Flags = Record<string, FlagValue>;

/** getFlags are get's flags (etcdctl 3.4, plus 3.5's --count-only). */
export const getFlags: Record<string, FlagSpec> = {
  consistency: { kind: 'string', default: 'l', desc: 'Linearizable(l) or Serializable(s)' },
  order: {
    kind: 'string',
    default: '',
    desc: 'Order of results; ASCEND or DESCEND (ASCEND by default)',
  },
  'sort-by': {
    kind: 'string',
    default: '',
    desc: 'Sort target; CREATE, KEY, MODIFY, VALUE, or VERSION',
  },
  limit: { kind: 'int', default: 0, desc: 'Maximum number of results' },
  prefix: { kind: 'bool', default: false, desc: 'Get keys with matching prefix' },
  'from-key': {
    kind: 'bool',
    default: false,
    desc: 'Get keys that are greater than or equal to the given key using byte compare',
  },
  rev: { kind: 'int', default: 0, desc: 'Specify the kv revision' },
  'keys-only': { kind: 'bool', default: false, desc: 'Get only the keys' },
  'count-only': { kind: 'bool', default: false, desc: 'Get only the count (etcdctl 3.5)' },
  'print-value-only': {
    kind: 'bool',
    default: false,
    desc: 'Only write values when using the "simple" output format',
  },
};

/** putFlags are put's flags. */
export const putFlags: Record<string, FlagSpec> = {
  lease: { kind: 'string', default: '0', desc: 'lease ID (in hexadecimal) to attach to the key' },
  'prev-kv': {
    kind: 'bool',
    default: false,
    desc: 'return the previous key-value pair before modification',
  },
  'ignore-value': {
    kind: 'bool',
    default: false,
    desc: 'updates the key using its current value',
  },
  'ignore-lease': {
    kind: 'bool',
    default: false,
    desc: 'updates the key using its current lease',
  },
};

/** delFlags are del's flags. */
export const delFlags: Record<string, FlagSpec> = {
  prefix: { kind: 'bool', default: false, desc: 'delete keys with matching prefix' },
  'prev-kv': { kind: 'bool', default: false, desc: 'return deleted key-value pairs' },
  'from-key': {
    kind: 'bool',
    default: false,
    desc: 'delete keys that are greater than or equal to the given key using byte compare',
  },
};

/** GetOp is a get request: key and options. */
export interface GetOp {
  key: string;
  opts: GetOptions;
}

/** getOp is etcdctl's getGetOp. */
export function getOp(args: string[], f: Flags): GetOp {
  if (args.length === 0) {
    throw badArgs('get command needs one argument as key and an optional argument as range_end');
  }
  const prefix = f.prefix === true;
  const fromKey = f['from-key'] === true;
  if (prefix && fromKey) {
    throw badArgs('`--prefix` and `--from-key` cannot be set at the same time, choose one');
  }
  if (f['keys-only'] === true && f['count-only'] === true) {
    throw badArgs('`--keys-only` and `--count-only` cannot be set at the same time, choose one');
  }
  const consistency = String(f.consistency ?? 'l');
  if (consistency !== 'l' && consistency !== 's') {
    throw new ExitError(exitCodes.badFeature, `unknown consistency flag ${goQuote(consistency)}`);
  }
  const opts: GetOptions = { serializable: consistency === 's' };
  if (args.length > 1) {
    if (prefix || fromKey) {
      throw badArgs(
        'too many arguments, only accept one argument when `--prefix` or `--from-key` is set',
      );
    }
    opts.rangeEnd = args[1]!;
  }
  opts.limit = Number(f.limit ?? 0);
  if (Number(f.rev ?? 0) > 0) opts.revision = Number(f.rev);
  const order = String(f.order ?? '').toUpperCase();
  if (order !== '' && order !== 'ASCEND' && order !== 'DESCEND') {
    throw new ExitError(exitCodes.badFeature, `bad sort order ${String(f.order)}`);
  }
  const targets: Record<string, SortTarget> = {
    '': 'KEY',
    CREATE: 'CREATE',
    KEY: 'KEY',
    MODIFY: 'MOD',
    VALUE: 'VALUE',
    VERSION: 'VERSION',
  };
  const target = targets[String(f['sort-by'] ?? '').toUpperCase()];
  if (target === undefined) {
    throw new ExitError(exitCodes.badFeature, `bad sort target ${String(f['sort-by'])}`);
  }
  // clientv3's WithSort: ascending by key is what the server does anyway, so it sends NONE.
  let sortOrder: SortOrder = order === '' ? 'NONE' : (order as SortOrder);
  if (target === 'KEY' && sortOrder === 'ASCEND') sortOrder = 'NONE';
  opts.sortOrder = sortOrder;
  opts.sortTarget = target;
  if (prefix) opts.prefix = true;
  if (fromKey) opts.fromKey = true;
  if (f['keys-only'] === true) opts.keysOnly = true;
  if (f['count-only'] === true) opts.countOnly = true;
  return { key: args[0]!, opts };
}

/** PutOp is a put request. */
export interface PutOp {
  key: string;
  value: string;
  opts: PutOptions;
}

/** putOp is etcdctl's getPutOp; `stdin` supplies the value when only the key is given. */
export function putOp(args: string[], f: Flags, stdin?: () => string): PutOp {
  const needs = 'put command needs 1 argument and input from stdin or 2 arguments';
  if (args.length === 0) throw badArgs(needs);
  const ignoreValue = f['ignore-value'] === true;
  if (ignoreValue && args.length > 1) {
    throw badArgs("put command needs only 1 argument when 'ignore-value' is set");
  }
  let value = '';
  if (!ignoreValue) {
    value = args[1] ?? stdin?.() ?? '';
    if (args.length < 2 && value === '') throw badArgs(needs);
  }
  const opts: PutOptions = {};
  const lease = leaseArg(String(f.lease ?? '0'), 'bad lease ID');
  if (lease !== '0') opts.lease = lease;
  if (f['prev-kv'] === true) opts.prevKv = true;
  if (ignoreValue) opts.ignoreValue = true;
  if (f['ignore-lease'] === true) opts.ignoreLease = true;
  return { key: args[0]!, value, opts };
}

/** DelOp is a delete request. */
export interface DelOp {
  key: string;
  opts: DeleteOptions;
}

/** delOp is etcdctl's getDelOp. */
export function delOp(args: string[], f: Flags): DelOp {
  if (args.length === 0 || args.length > 2) {
    throw badArgs('del command needs one argument as key and an optional argument as range_end');
  }
  const prefix = f.prefix === true;
  const fromKey = f['from-key'] === true;
  if (prefix && fromKey) {
    throw badArgs('`--prefix` and `--from-key` cannot be set at the same time, choose one');
  }
  const opts: DeleteOptions = {};
  if (args.length > 1) {
    if (prefix || fromKey) {
      throw badArgs(
        'too many arguments, only accept one argument when `--prefix` or `--from-key` is set',
      );
    }
    opts.rangeEnd = args[1]!;
  }
  if (prefix) opts.prefix = true;
  if (fromKey) opts.fromKey = true;
  if (f['prev-kv'] === true) opts.prevKv = true;
  return { key: args[0]!, opts };
}

/** leaseArg parses a hexadecimal lease id (Go's ParseInt(s, 16, 64)) into a decimal string;
 * a bad one exits 128 with `<what> (<Go's error>), expecting ID in Hex`. */
export function leaseArg(s: string, what: string): string {
  try {
    return parseGoInt(s, 16).toString();
  } catch (e) {
    throw badArgs(`${what} (${(e as Error).message}), expecting ID in Hex`);
  }
}

/** memberIdArg parses a hexadecimal member id (Go's ParseUint(s, 16, 64)). */
export function memberIdArg(s: string): string {
  try {
    return parseGoInt(s, 16, true).toString();
  } catch (e) {
    throw badArgs(`bad member ID arg (${(e as Error).message}), expecting ID in Hex`);
  }
}

/** toOperation turns a parsed request into a txn operation. */
export function toOperation(
  r: { type: 'get'; op: GetOp } | { type: 'put'; op: PutOp } | { type: 'del'; op: DelOp },
): Operation {
  switch (r.type) {
    case 'get':
      return Op.get(r.op.key, r.op.opts);
    case 'put':
      return Op.put(r.op.key, r.op.value, r.op.opts);
    case 'del':
      return Op.delete(r.op.key, r.op.opts);
  }
}
