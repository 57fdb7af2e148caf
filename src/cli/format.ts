import type {
  DeleteResult,
  KeyValue,
  PutResult,
  RangeResult,
  ResponseHeader,
  StatusResult,
  TxnResult,
  WatchResponse,
} from '../client/types.js';

/**
 * format: etcdctl's "simple" and "json" writers. The json writer reproduces Go's
 * encoding/json of etcd's protobuf structs: snake_case names, zero fields left out, bytes in
 * base64, and 64-bit integers as bare JSON numbers (ids beyond 2^53 are written digit for
 * digit, never through a JS number).
 */

/** Raw is a JSON number written exactly as its digits. */
export class Raw {
  constructor(readonly digits: string) {}
}

/** goJson serializes like Go's json.Marshal, with Raw numbers written as is. */
export function goJson(v: unknown): string {
  if (v instanceof Raw) return v.digits;
  if (Array.isArray(v)) return `[${v.map(goJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const parts: string[] = [];
    for (const [k, x] of Object.entries(v))
      if (x !== undefined) parts.push(`${JSON.stringify(k)}:${goJson(x)}`);
    return `{${parts.join(',')}}`;
  }
  return JSON.stringify(v);
}

const n = (x: number | string): Raw => new Raw(String(x));

/** headerJson is etcd's ResponseHeader as Go marshals it. */
export function headerJson(h: ResponseHeader): Record<string, unknown> {
  return {
    cluster_id: n(h.clusterId),
    member_id: n(h.memberId),
    revision: n(h.revision),
    raft_term: n(h.raftTerm),
  };
}

/** kvJson is a KeyValue as Go marshals it (zero fields omitted). */
export function kvJson(kv: KeyValue): Record<string, unknown> {
  return {
    key: kv.key.length ? kv.key.toString('base64') : undefined,
    create_revision: kv.createRevision ? n(kv.createRevision) : undefined,
    mod_revision: kv.modRevision ? n(kv.modRevision) : undefined,
    version: kv.version ? n(kv.version) : undefined,
    value: kv.value.length ? kv.value.toString('base64') : undefined,
    lease: kv.lease !== '0' ? n(kv.lease) : undefined,
  };
}

export function rangeJson(r: RangeResult): Record<string, unknown> {
  return {
    header: headerJson(r.header),
    kvs: r.kvs.length ? r.kvs.map(kvJson) : undefined,
    more: r.more || undefined,
    count: r.count ? n(r.count) : undefined,
  };
}

export function putJson(r: PutResult): Record<string, unknown> {
  return { header: headerJson(r.header), prev_kv: r.prevKv ? kvJson(r.prevKv) : undefined };
}

export function deleteJson(r: DeleteResult): Record<string, unknown> {
  return {
    header: headerJson(r.header),
    deleted: r.deleted ? n(r.deleted) : undefined,
    prev_kvs: r.prevKvs.length ? r.prevKvs.map(kvJson) : undefined,
  };
}

export function txnJson(r: TxnResult): Record<string, unknown> {
  return {
    header: headerJson(r.header),
    succeeded: r.succeeded || undefined,
    responses: r.responses.length
      ? r.responses.map((x) => {
          if (x.type === 'range') return { Response: { response_range: rangeJson(x.range) } };
          if (x.type === 'put') return { Response: { response_put: putJson(x.put) } };
          return { Response: { response_delete_range: deleteJson(x.delete) } };
        })
      : undefined,
  };
}

export function watchJson(r: WatchResponse): Record<string, unknown> {
  return {
    Header: headerJson(r.header),
    Events: r.events.map((e) => ({
      type: e.type === 'DELETE' ? 'DELETE' : undefined,
      kv: kvJson(e.kv),
      prev_kv: e.prevKv ? kvJson(e.prevKv) : undefined,
    })),
    CompactRevision: 0,
    Canceled: false,
    Created: false,
  };
}

export function statusJson(endpoint: string, s: StatusResult): Record<string, unknown> {
  return {
    Endpoint: endpoint,
    Status: {
      header: headerJson(s.header),
      version: s.version || undefined,
      dbSize: s.dbSize ? n(s.dbSize) : undefined,
      leader: s.leader !== '0' ? n(s.leader) : undefined,
      raftIndex: s.raftIndex ? n(s.raftIndex) : undefined,
      raftTerm: s.raftTerm ? n(s.raftTerm) : undefined,
      raftAppliedIndex: s.raftAppliedIndex ? n(s.raftAppliedIndex) : undefined,
      errors: s.errors.length ? s.errors : undefined,
      dbSizeInUse: s.dbSizeInUse ? n(s.dbSizeInUse) : undefined,
      isLearner: s.isLearner || undefined,
    },
  };
}

/** kvLines is etcdctl's printKV: key then value, or the value alone. */
export function kvLines(kv: KeyValue, valueOnly: boolean): string[] {
  const out: string[] = [];
  if (!valueOnly) out.push(kv.key.toString('utf8'));
  out.push(kv.value.toString('utf8'));
  return out;
}

export function rangeLines(r: RangeResult, valueOnly: boolean): string[] {
  return r.kvs.flatMap((kv) => kvLines(kv, valueOnly));
}

export function putLines(r: PutResult, valueOnly: boolean): string[] {
  return ['OK', ...(r.prevKv ? kvLines(r.prevKv, valueOnly) : [])];
}

export function deleteLines(r: DeleteResult, valueOnly: boolean): string[] {
  return [String(r.deleted), ...r.prevKvs.flatMap((kv) => kvLines(kv, valueOnly))];
}

export function txnLines(r: TxnResult, valueOnly: boolean): string[] {
  const out = [r.succeeded ? 'SUCCESS' : 'FAILURE'];
  for (const x of r.responses) {
    out.push('');
    if (x.type === 'range') out.push(...rangeLines(x.range, valueOnly));
    else if (x.type === 'put') out.push(...putLines(x.put, valueOnly));
    else out.push(...deleteLines(x.delete, valueOnly));
  }
  return out;
}

export function watchLines(r: WatchResponse, valueOnly: boolean): string[] {
  const out: string[] = [];
  for (const e of r.events) {
    out.push(e.type);
    if (e.prevKv) out.push(...kvLines(e.prevKv, valueOnly));
    out.push(...kvLines(e.kv, valueOnly));
  }
  return out;
}

/** humanBytes is go-humanize's Bytes (SI units), which etcdctl uses for the db size. */
export function humanBytes(size: number): string {
  if (size < 10) return `${size} B`;
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB'];
  const e = Math.floor(Math.log(size) / Math.log(1000));
  const val = Math.floor((size / 1000 ** e) * 10 + 0.5) / 10;
  return `${val < 10 ? val.toFixed(1) : roundHalfEven(val)} ${units[e]}`;
}

function roundHalfEven(x: number): string {
  const f = Math.floor(x);
  const d = x - f;
  if (Math.abs(d - 0.5) < 1e-9) return String(f % 2 === 0 ? f : f + 1);
  return String(Math.round(x));
}

/** goDuration formats milliseconds as Go's time.Duration String does (e.g. 1.834515ms). */
export function goDuration(ms: number): string {
  const ns = Math.round(ms * 1e6);
  const trim = (v: number, digits: number) => v.toFixed(digits).replace(/\.?0+$/, '');
  if (ns < 1_000) return `${ns}ns`;
  if (ns < 1_000_000) return `${trim(ns / 1e3, 3)}µs`;
  if (ns < 1_000_000_000) return `${trim(ns / 1e6, 6)}ms`;
  return `${trim(ns / 1e9, 9)}s`;
}
