import { b64, type Json, idParam, rangeOf, txnResult } from './codec.js';
import type { Bytesish, DeleteOptions, GetOptions, PutOptions, TxnResult } from './types.js';

/**
 * txn: etcd's transactions, built as in clientv3:
 *
 *   await client.txn()
 *     .if(Compare.version('lock', '=', 0))
 *     .then(Op.put('lock', 'me', { lease }))
 *     .else(Op.get('lock'))
 *     .commit();
 */

/** CompareOp is a comparison operator as etcdctl writes it. */
export type CompareOp = '=' | '!=' | '<' | '>';

const results: Record<CompareOp, string> = {
  '=': 'EQUAL',
  '!=': 'NOT_EQUAL',
  '<': 'LESS',
  '>': 'GREATER',
};

/** Comparison is one compare of a txn (etcd's Compare message, JSON-encoded). */
export interface Comparison {
  readonly json: Json;
}

function cmp(
  target: string,
  key: Bytesish,
  op: CompareOp,
  field: string,
  value: unknown,
  range?: { prefix?: boolean; rangeEnd?: Bytesish },
): Comparison {
  const result = results[op];
  if (result === undefined) throw new TypeError(`client: unknown compare operator ${String(op)}`);
  return { json: { ...rangeOf(key, range ?? {}), result, target, [field]: value } };
}

/** Compare builds comparisons on a key's value, version, create/mod revision or lease. */
export const Compare = {
  value: (key: Bytesish, op: CompareOp, value: Bytesish, range?: { prefix?: boolean }) =>
    cmp('VALUE', key, op, 'value', b64(value), range),
  version: (key: Bytesish, op: CompareOp, version: number, range?: { prefix?: boolean }) =>
    cmp('VERSION', key, op, 'version', String(version), range),
  createRevision: (key: Bytesish, op: CompareOp, rev: number, range?: { prefix?: boolean }) =>
    cmp('CREATE', key, op, 'create_revision', String(rev), range),
  modRevision: (key: Bytesish, op: CompareOp, rev: number, range?: { prefix?: boolean }) =>
    cmp('MOD', key, op, 'mod_revision', String(rev), range),
  lease: (key: Bytesish, op: CompareOp, lease: string | number | bigint) =>
    cmp('LEASE', key, op, 'lease', idParam(lease)),
};

/** Operation is one request of a txn branch (etcd's RequestOp, JSON-encoded). */
export interface Operation {
  readonly json: Json;
}

/** Op builds txn operations; options are those of get/put/delete. */
export const Op = {
  get: (key: Bytesish, o: GetOptions = {}): Operation => ({
    json: { request_range: rangeRequest(key, o) },
  }),
  put: (key: Bytesish, value: Bytesish, o: PutOptions = {}): Operation => ({
    json: { request_put: putRequest(key, value, o) },
  }),
  delete: (key: Bytesish, o: DeleteOptions = {}): Operation => ({
    json: { request_delete_range: deleteRequest(key, o) },
  }),
  txn: (t: TxnBuilder): Operation => ({ json: { request_txn: t.request() } }),
};

/** rangeRequest encodes etcd's RangeRequest. */
export function rangeRequest(key: Bytesish, o: GetOptions): Json {
  const r: Json = { ...rangeOf(key, o) };
  if (o.revision !== undefined && o.revision !== 0) r.revision = String(o.revision);
  if (o.limit !== undefined && o.limit !== 0) r.limit = String(o.limit);
  if (o.keysOnly) r.keys_only = true;
  if (o.countOnly) r.count_only = true;
  if (o.serializable) r.serializable = true;
  if (o.sortOrder !== undefined && o.sortOrder !== 'NONE') r.sort_order = o.sortOrder;
  if (o.sortTarget !== undefined && o.sortTarget !== 'KEY') r.sort_target = o.sortTarget;
  if (o.minModRevision) r.min_mod_revision = String(o.minModRevision);
  if (o.maxModRevision) r.max_mod_revision = String(o.maxModRevision);
  if (o.minCreateRevision) r.min_create_revision = String(o.minCreateRevision);
  if (o.maxCreateRevision) r.max_create_revision = String(o.maxCreateRevision);
  return r;
}

/** putRequest encodes etcd's PutRequest. */
export function putRequest(key: Bytesish, value: Bytesish, o: PutOptions): Json {
  const r: Json = { key: b64(key), value: b64(value) };
  if (o.lease !== undefined && String(o.lease) !== '0') r.lease = idParam(o.lease);
  if (o.prevKv) r.prev_kv = true;
  if (o.ignoreValue) r.ignore_value = true;
  if (o.ignoreLease) r.ignore_lease = true;
  return r;
}

/** deleteRequest encodes etcd's DeleteRangeRequest. */
export function deleteRequest(key: Bytesish, o: DeleteOptions): Json {
  const r: Json = { ...rangeOf(key, o) };
  if (o.prevKv) r.prev_kv = true;
  return r;
}

/** TxnBuilder collects compares and branches; commit sends them (see the file comment). */
export class TxnBuilder {
  private readonly compares: Comparison[] = [];
  private readonly success: Operation[] = [];
  private readonly failure: Operation[] = [];

  constructor(private readonly send?: (req: Json) => Promise<Json>) {}

  /** if adds comparisons; all must hold for the then-branch to run. */
  if(...c: Comparison[]): this {
    this.compares.push(...c);
    return this;
  }

  /** then adds operations run when every comparison holds. */
  then(...ops: Operation[]): this {
    this.success.push(...ops);
    return this;
  }

  /** else adds operations run otherwise. */
  else(...ops: Operation[]): this {
    this.failure.push(...ops);
    return this;
  }

  /** request is the JSON TxnRequest. */
  request(): Json {
    return {
      compare: this.compares.map((c) => c.json),
      success: this.success.map((o) => o.json),
      failure: this.failure.map((o) => o.json),
    };
  }

  /** commit sends the transaction. */
  async commit(): Promise<TxnResult> {
    if (this.send === undefined)
      throw new TypeError('client: a nested txn is committed by its parent');
    return txnResult(await this.send(this.request()));
  }
}
