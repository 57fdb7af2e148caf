import type {
  DeleteResult,
  KeyValue,
  Member,
  PutResult,
  RangeResult,
  ResponseHeader,
  StatusResult,
  TxnOpResult,
  TxnResult,
  WatchEvent,
} from '../client/types.js';

/**
 * format: what etcdctl's writers are made of. `goJson` reproduces Go's encoding/json of
 * etcd's protobuf structs: the struct's own field names, zero fields left out where the field
 * says `omitempty`, bytes in base64, and 64-bit integers as bare JSON numbers (ids beyond 2^53
 * are written digit for digit, never through a JS number). `goQuote` is Go's `%q`, which the
 * "fields" writer uses; `goDuration` and `humanBytes` are Go's time.Duration and go-humanize.
 *
 * This is not the gateway's encoder (src/api/v3-encode.ts) written again: that one writes
 * jsonpb (`"revision":"5"`, `"response_put"`), this one Go's encoding/json as etcdctl -w json
 * prints it (`"revision":5`, `{"Response":{"ResponsePut":…}}`), over the SDK's types. Checked
 * against etcd 3.4: `curl $EP/v3/kv/range -d '{"key":"aw=="}'` vs `etcdctl -w json get k`.
 */

/** Raw is a JSON number written exactly as its digits. */
export class Raw {
  constructor(readonly digits: string) {}
}

/** goJson serializes like Go's json.Marshal, with Raw numbers written as is; undefined
 * fields are left out (omitempty), null is written as null (a nil slice). */
export function goJson(v: unknown): string {
  if (v instanceof Raw) return v.digits;
  if (Array.isArray(v)) return `[${v.map(goJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const parts: string[] = [];
    for (const [k, x] of Object.entries(v))
      if (x !== undefined) parts.push(`${JSON.stringify(k)}:${goJson(x)}`);
    return `{${parts.join(',')}}`;
  }
  return goString(v);
}

/** goString writes a JSON scalar as Go does: strings escape <, > and & as \u003c and so on. */
function goString(v: unknown): string {
  const s = JSON.stringify(v);
  if (typeof v !== 'string') return s;
  return s.replace(
    /[<>&\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** num writes an int64/uint64 as a bare JSON number. */
export const num = (x: number | string): Raw => new Raw(String(x));
/** omit0 is a number field with omitempty: left out when zero. */
const omit0 = (x: number | string): Raw | undefined =>
  x === 0 || x === '0' || x === '' ? undefined : num(x);
const omitEmpty = <T>(xs: T[]): T[] | undefined => (xs.length ? xs : undefined);
const b64 = (b: Buffer): string | undefined => (b.length ? b.toString('base64') : undefined);

/** headerJson is etcd's ResponseHeader as Go marshals it (every field omitempty). */
export function headerJson(h: ResponseHeader): Record<string, unknown> {
  return {
    cluster_id: omit0(h.clusterId),
    member_id: omit0(h.memberId),
    revision: omit0(h.revision),
    raft_term: omit0(h.raftTerm),
  };
}

/** kvJson is a KeyValue as Go marshals it (zero fields omitted). */
export function kvJson(kv: KeyValue): Record<string, unknown> {
  return {
    key: b64(kv.key),
    create_revision: omit0(kv.createRevision),
    mod_revision: omit0(kv.modRevision),
    version: omit0(kv.version),
    value: b64(kv.value),
    lease: omit0(kv.lease),
  };
}

/** rangeJson is etcd's RangeResponse. */
export function rangeJson(r: RangeResult): Record<string, unknown> {
  return {
    header: headerJson(r.header),
    kvs: omitEmpty(r.kvs.map(kvJson)),
    more: r.more || undefined,
    count: omit0(r.count),
  };
}

/** putJson is etcd's PutResponse. */
export function putJson(r: PutResult): Record<string, unknown> {
  return { header: headerJson(r.header), prev_kv: r.prevKv ? kvJson(r.prevKv) : undefined };
}

/** deleteJson is etcd's DeleteRangeResponse. */
export function deleteJson(r: DeleteResult): Record<string, unknown> {
  return {
    header: headerJson(r.header),
    deleted: omit0(r.deleted),
    prev_kvs: omitEmpty(r.prevKvs.map(kvJson)),
  };
}

/** txnJson is etcd's TxnResponse. Each ResponseOp holds its oneof as Go names it:
 * `{"Response":{"ResponsePut":{...}}}`. */
export function txnJson(r: TxnResult): Record<string, unknown> {
  return {
    header: headerJson(r.header),
    succeeded: r.succeeded || undefined,
    responses: omitEmpty(r.responses.map((x) => ({ Response: responseOpJson(x) }))),
  };
}

function responseOpJson(x: TxnOpResult): Record<string, unknown> {
  switch (x.type) {
    case 'range':
      return { ResponseRange: rangeJson(x.range) };
    case 'put':
      return { ResponsePut: putJson(x.put) };
    case 'delete':
      return { ResponseDeleteRange: deleteJson(x.delete) };
    case 'txn':
      return { ResponseTxn: txnJson(x.txn) };
  }
}

/** WatchPrint is what the writers print of a watch response (clientv3's WatchResponse). */
export interface WatchPrint {
  header: ResponseHeader;
  events: WatchEvent[];
  compactRevision: number;
  canceled: boolean;
  created: boolean;
}

/** eventJson is an mvccpb.Event: the type is an enum, written as its number (DELETE = 1). */
export function eventJson(e: WatchEvent): Record<string, unknown> {
  return {
    type: e.type === 'DELETE' ? num(1) : undefined,
    kv: kvJson(e.kv),
    prev_kv: e.prevKv ? kvJson(e.prevKv) : undefined,
  };
}

/** watchJson is clientv3's WatchResponse: a plain Go struct, so no omitempty on its own
 * fields. */
export function watchJson(r: WatchPrint): Record<string, unknown> {
  return {
    Header: headerJson(r.header),
    Events: r.events.map(eventJson),
    CompactRevision: num(r.compactRevision),
    Canceled: r.canceled,
    Created: r.created,
  };
}

/** memberJson is etcd's Member. */
export function memberJson(m: Member): Record<string, unknown> {
  return {
    ID: omit0(m.id),
    name: m.name || undefined,
    peerURLs: omitEmpty(m.peerURLs),
    clientURLs: omitEmpty(m.clientURLs),
    isLearner: m.isLearner || undefined,
  };
}

/** membersJson is the members field of the member responses. */
export function membersJson(ms: Member[]): Record<string, unknown>[] | undefined {
  return omitEmpty(ms.map(memberJson));
}

/** statusJson is etcd's StatusResponse. */
export function statusJson(s: StatusResult): Record<string, unknown> {
  return {
    header: headerJson(s.header),
    version: s.version || undefined,
    dbSize: omit0(s.dbSize),
    leader: omit0(s.leader),
    raftIndex: omit0(s.raftIndex),
    raftTerm: omit0(s.raftTerm),
    raftAppliedIndex: omit0(s.raftAppliedIndex),
    errors: omitEmpty(s.errors),
    dbSizeInUse: omit0(s.dbSizeInUse),
    isLearner: s.isLearner || undefined,
  };
}

/** idHex formats a uint64/int64 id as Go's %x does (two's complement for int64). */
export function idHex(id: string): string {
  return BigInt.asUintN(64, BigInt(id)).toString(16);
}

/** goQuote is Go's strconv.Quote of a byte string (`%q`): printable runes as they are,
 * the usual escapes, \u/\U for other runes and \x for bytes that are not UTF-8. */
export function goQuote(b: Buffer | string): string {
  const buf = typeof b === 'string' ? Buffer.from(b, 'utf8') : b;
  let out = '"';
  for (let i = 0; i < buf.length;) {
    const [cp, size] = decodeRune(buf, i);
    i += size;
    if (cp < 0) {
      out += `\\x${buf[i - 1]!.toString(16).padStart(2, '0')}`;
      continue;
    }
    const c = String.fromCodePoint(cp);
    if (c === '"' || c === '\\') out += '\\' + c;
    else if (isPrint(c)) out += c;
    else if (escapes[c] !== undefined) out += escapes[c];
    else if (cp < 0x80) out += `\\x${cp.toString(16).padStart(2, '0')}`;
    else if (cp < 0x10000) out += `\\u${cp.toString(16).padStart(4, '0')}`;
    else out += `\\U${cp.toString(16).padStart(8, '0')}`;
  }
  return out + '"';
}

const escapes: Record<string, string> = {
  '\x07': '\\a',
  '\b': '\\b',
  '\f': '\\f',
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
  '\v': '\\v',
};

/** isPrint is Go's unicode.IsPrint: letters, marks, numbers, punctuation, symbols and the
 * ASCII space. */
function isPrint(c: string): boolean {
  return c === ' ' || /^[\p{L}\p{M}\p{N}\p{P}\p{S}]$/u.test(c);
}

/** decodeRune decodes one UTF-8 rune at i: [code point, bytes], or [-1, 1] when invalid. */
function decodeRune(b: Buffer, i: number): [number, number] {
  const c0 = b[i]!;
  if (c0 < 0x80) return [c0, 1];
  const need = c0 >= 0xf0 && c0 <= 0xf4 ? 3 : c0 >= 0xe0 ? 2 : c0 >= 0xc2 ? 1 : -1;
  if (need < 0 || c0 > 0xf4) return [-1, 1];
  let cp = c0 & (0x3f >> need);
  for (let k = 1; k <= need; k++) {
    const c = b[i + k];
    if (c === undefined || (c & 0xc0) !== 0x80) return [-1, 1];
    cp = (cp << 6) | (c & 0x3f);
  }
  const min = [0, 0x80, 0x800, 0x10000][need]!;
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return [-1, 1];
  return [cp, need + 1];
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
  if (ns === 0) return '0s';
  if (ns < 1_000) return `${ns}ns`;
  if (ns < 1_000_000) return `${trim(ns / 1e3, 3)}µs`;
  if (ns < 1_000_000_000) return `${trim(ns / 1e6, 6)}ms`;
  return `${trim(ns / 1e9, 9)}s`;
}

/** goStringSlice is Go's %v of a []string: `[a b]`. */
export function goStringSlice(xs: string[]): string {
  return `[${xs.join(' ')}]`;
}
