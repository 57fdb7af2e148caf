import { leaseHex } from '../client/codec.js';
import type {
  DeleteResult,
  KeyValue,
  LeaseGrantResult,
  LeaseKeepAliveResult,
  LeaseTimeToLiveResult,
  MemberAddResult,
  MemberListResult,
  PutResult,
  RangeResult,
  ResponseHeader,
  StatusResult,
  TxnOpResult,
  TxnResult,
} from '../client/types.js';
import { ExitError, exitCodes } from './args.js';
import * as F from './format.js';
import * as P from './protobuf.js';
import { renderTable } from './table.js';

/**
 * printer: etcdctl 3.4's output writers, selected with `-w`: simple (the default), json,
 * fields, protobuf and table. Each command calls one method; a writer that etcdctl does not
 * offer for that command fails with etcdctl's "<format> not supported as output format"
 * (exit 4). etcdctl's quirks are kept where they are what scripts see: `endpoint health`
 * writes its simple lines to stderr; the lease responses' protobuf output is the marshalled
 * header alone (clientv3's lease structs embed the header, whose Marshal is what is called);
 * `-w table` serves only member list and endpoint health/status.
 */

/** Out is where a writer writes. */
export interface Out {
  out(data: string | Buffer): void;
  err(text: string): void;
}

/** EpHealth is one line of `endpoint health` (etcdctl's epHealth). */
export interface EpHealth {
  ep: string;
  health: boolean;
  took: string;
  error: string;
}

/** EpStatus is one line of `endpoint status` (etcdctl's epStatus). */
export interface EpStatus {
  ep: string;
  resp: StatusResult;
}

/** LeasesResult is `lease list`'s answer. */
export interface LeasesResult {
  header: ResponseHeader;
  leases: string[];
}

/** Printer is the set of etcdctl's display calls. */
export interface Printer {
  readonly format: OutputFormat;
  get(r: RangeResult): void;
  put(r: PutResult): void;
  del(r: DeleteResult): void;
  txn(r: TxnResult): void;
  watch(r: F.WatchPrint): void;
  grant(r: LeaseGrantResult): void;
  revoke(id: string, r: { header: ResponseHeader }): void;
  keepAlive(r: LeaseKeepAliveResult): void;
  timeToLive(r: LeaseTimeToLiveResult, keys: boolean): void;
  leases(r: LeasesResult): void;
  memberAdd(r: MemberAddResult): void;
  memberRemove(id: string, r: MemberListResult): void;
  memberUpdate(id: string, r: MemberListResult): void;
  memberPromote(id: string, r: MemberListResult): void;
  memberList(r: MemberListResult): void;
  endpointHealth(hs: EpHealth[]): void;
  endpointStatus(ss: EpStatus[]): void;
  moveLeader(leader: string, target: string, r: { header: ResponseHeader }): void;
}

/** OutputFormat is a value of -w. */
export type OutputFormat = 'simple' | 'json' | 'fields' | 'protobuf' | 'table';

/** newPrinter is etcdctl's NewPrinter; undefined for an unknown format. */
export function newPrinter(
  format: string,
  out: Out,
  opts: { hex?: boolean } = {},
): Printer | undefined {
  switch (format) {
    case 'simple':
      return new SimplePrinter(out, opts.hex === true);
    case 'json':
      return new JsonPrinter(out);
    case 'fields':
      return new FieldsPrinter(out);
    case 'protobuf':
      return new ProtobufPrinter(out);
    case 'table':
      return new TablePrinter(out);
    default:
      return undefined;
  }
}

function unsupported(format: string): never {
  throw new ExitError(exitCodes.badFeature, `${format} not supported as output format`);
}

const memberListHeader = ['ID', 'Status', 'Name', 'Peer Addrs', 'Client Addrs', 'Is Learner'];

function memberListRows(r: MemberListResult): string[][] {
  return r.members.map((m) => [
    F.idHex(m.id),
    m.name === '' ? 'unstarted' : 'started',
    m.name,
    m.peerURLs.join(','),
    m.clientURLs.join(','),
    String(m.isLearner),
  ]);
}

const healthHeader = ['endpoint', 'health', 'took', 'error'];

function healthRows(hs: EpHealth[]): string[][] {
  return hs.map((h) => [h.ep, String(h.health), h.took, h.error]);
}

const statusHeader = [
  'endpoint',
  'ID',
  'version',
  'db size',
  'is leader',
  'is learner',
  'raft term',
  'raft index',
  'raft applied index',
  'errors',
];

function statusRows(ss: EpStatus[]): string[][] {
  return ss.map(({ ep, resp: s }) => [
    ep,
    F.idHex(s.header.memberId),
    s.version,
    F.humanBytes(s.dbSize),
    String(s.leader === s.header.memberId),
    String(s.isLearner),
    String(s.raftTerm),
    String(s.raftIndex),
    String(s.raftAppliedIndex),
    s.errors.join(', '),
  ]);
}

/** SimplePrinter is etcdctl's default writer. `valueOnly` is get's --print-value-only. */
export class SimplePrinter implements Printer {
  readonly format = 'simple';
  valueOnly = false;

  constructor(
    private readonly o: Out,
    private readonly hex: boolean,
  ) {}

  private line(s: string): void {
    this.o.out(s + '\n');
  }

  private kv(kv: KeyValue): void {
    const show = (b: Buffer) =>
      this.hex ? [...b].map((x) => '\\x' + x.toString(16).padStart(2, '0')).join('') : b.toString();
    if (!this.valueOnly) this.line(show(kv.key));
    this.line(show(kv.value));
  }

  get(r: RangeResult): void {
    for (const kv of r.kvs) this.kv(kv);
  }

  put(r: PutResult): void {
    this.line('OK');
    if (r.prevKv !== undefined) this.kv(r.prevKv);
  }

  del(r: DeleteResult): void {
    this.line(String(r.deleted));
    for (const kv of r.prevKvs) this.kv(kv);
  }

  txn(r: TxnResult): void {
    this.line(r.succeeded ? 'SUCCESS' : 'FAILURE');
    for (const x of r.responses) {
      this.line('');
      if (x.type === 'range') this.get(x.range);
      else if (x.type === 'put') this.put(x.put);
      else if (x.type === 'delete') this.del(x.delete);
      else this.line(`unexpected response ${F.goJson(F.txnJson(x.txn))}`);
    }
  }

  watch(r: F.WatchPrint): void {
    for (const e of r.events) {
      this.line(e.type);
      if (e.prevKv !== undefined) this.kv(e.prevKv);
      this.kv(e.kv);
    }
  }

  grant(r: LeaseGrantResult): void {
    this.line(`lease ${leaseHex(r.id)} granted with TTL(${r.ttl}s)`);
  }

  revoke(id: string): void {
    this.line(`lease ${leaseHex(id)} revoked`);
  }

  keepAlive(r: LeaseKeepAliveResult): void {
    this.line(`lease ${leaseHex(r.id)} keepalived with TTL(${r.ttl})`);
  }

  timeToLive(r: LeaseTimeToLiveResult, keys: boolean): void {
    if (r.grantedTtl === 0 && r.ttl === -1) {
      this.line(`lease ${leaseHex(r.id)} already expired`);
      return;
    }
    let txt = `lease ${leaseHex(r.id)} granted with TTL(${r.grantedTtl}s), remaining(${r.ttl}s)`;
    if (keys) txt += `, attached keys(${F.goStringSlice(r.keys.map((k) => k.toString()))})`;
    this.line(txt);
  }

  leases(r: LeasesResult): void {
    this.line(`found ${r.leases.length} leases`);
    for (const id of r.leases) this.line(leaseHex(id));
  }

  memberAdd(r: MemberAddResult): void {
    const hex16 = (id: string) => F.idHex(id).padStart(16, ' ');
    this.line(`Member ${hex16(r.member.id)} added to cluster ${hex16(r.header.clusterId)}`);
  }

  private memberChange(id: string, r: MemberListResult, what: string): void {
    const hex16 = (x: string) => F.idHex(x).padStart(16, ' ');
    this.line(`Member ${hex16(id)} ${what} cluster ${hex16(r.header.clusterId)}`);
  }

  memberRemove(id: string, r: MemberListResult): void {
    this.memberChange(id, r, 'removed from');
  }

  memberUpdate(id: string, r: MemberListResult): void {
    this.memberChange(id, r, 'updated in');
  }

  memberPromote(id: string, r: MemberListResult): void {
    this.memberChange(id, r, 'promoted in');
  }

  memberList(r: MemberListResult): void {
    for (const row of memberListRows(r)) this.line(row.join(', '));
  }

  endpointHealth(hs: EpHealth[]): void {
    for (const h of hs) {
      if (h.error === '') {
        this.o.err(`${h.ep} is healthy: successfully committed proposal: took = ${h.took}\n`);
      } else {
        this.o.err(`${h.ep} is unhealthy: failed to commit proposal: ${h.error}\n`);
      }
    }
  }

  endpointStatus(ss: EpStatus[]): void {
    for (const row of statusRows(ss)) this.line(row.join(', '));
  }

  moveLeader(leader: string, target: string): void {
    this.line(`Leadership transferred from ${F.idHex(leader)} to ${F.idHex(target)}`);
  }
}

/** JsonPrinter is `-w json`: Go's encoding/json of the response structs. */
export class JsonPrinter implements Printer {
  readonly format = 'json';

  constructor(private readonly o: Out) {}

  private print(v: unknown): void {
    this.o.out(F.goJson(v) + '\n');
  }

  get(r: RangeResult): void {
    this.print(F.rangeJson(r));
  }

  put(r: PutResult): void {
    this.print(F.putJson(r));
  }

  del(r: DeleteResult): void {
    this.print(F.deleteJson(r));
  }

  txn(r: TxnResult): void {
    this.print(F.txnJson(r));
  }

  watch(r: F.WatchPrint): void {
    this.print(F.watchJson(r));
  }

  // clientv3's lease responses embed *ResponseHeader: Go inlines its fields (hence the spread).
  grant(r: LeaseGrantResult): void {
    this.print({ ...F.headerJson(r.header), ID: F.num(r.id), TTL: F.num(r.ttl), Error: '' });
  }

  revoke(_id: string, r: { header: ResponseHeader }): void {
    this.print({ header: F.headerJson(r.header) });
  }

  keepAlive(r: LeaseKeepAliveResult): void {
    this.print({ ...F.headerJson(r.header), ID: F.num(r.id), TTL: F.num(r.ttl) });
  }

  timeToLive(r: LeaseTimeToLiveResult): void {
    this.print({
      ...F.headerJson(r.header),
      id: F.num(r.id),
      ttl: F.num(r.ttl),
      'granted-ttl': F.num(r.grantedTtl),
      keys: r.keys.length ? r.keys.map((k) => k.toString('base64')) : null,
    });
  }

  leases(r: LeasesResult): void {
    this.print({ ...F.headerJson(r.header), leases: r.leases.map((id) => ({ id: F.num(id) })) });
  }

  memberAdd(r: MemberAddResult): void {
    this.print({
      header: F.headerJson(r.header),
      member: F.memberJson(r.member),
      members: F.membersJson(r.members),
    });
  }

  private members(r: MemberListResult): void {
    this.print({ header: F.headerJson(r.header), members: F.membersJson(r.members) });
  }

  memberRemove(_id: string, r: MemberListResult): void {
    this.members(r);
  }

  memberUpdate(_id: string, r: MemberListResult): void {
    this.members(r);
  }

  /** memberPromote: etcdctl 3.4 crashes here (its JSON writer lacks the method); this
   * writes the response as the other member commands do. */
  memberPromote(_id: string, r: MemberListResult): void {
    this.members(r);
  }

  memberList(r: MemberListResult): void {
    this.members(r);
  }

  endpointHealth(hs: EpHealth[]): void {
    this.print(
      hs.map((h) => ({
        endpoint: h.ep,
        health: h.health,
        took: h.took,
        error: h.error || undefined,
      })),
    );
  }

  endpointStatus(ss: EpStatus[]): void {
    this.print(ss.map((s) => ({ Endpoint: s.ep, Status: F.statusJson(s.resp) })));
  }

  moveLeader(_l: string, _t: string, r: { header: ResponseHeader }): void {
    this.print({ header: F.headerJson(r.header) });
  }
}

/** FieldsPrinter is `-w fields`: one `"Name" : value` line per field, for scripts. */
export class FieldsPrinter implements Printer {
  readonly format = 'fields';

  constructor(private readonly o: Out) {}

  private line(name: string, v: string | number | boolean): void {
    this.o.out(`"${name}" : ${String(v)}\n`);
  }

  private hdr(h: ResponseHeader): void {
    this.line('ClusterID', h.clusterId);
    this.line('MemberID', h.memberId);
    this.line('Revision', h.revision);
    this.line('RaftTerm', h.raftTerm);
  }

  private kv(pfx: string, kv: KeyValue): void {
    this.line(`${pfx}Key`, F.goQuote(kv.key));
    this.line(`${pfx}CreateRevision`, kv.createRevision);
    this.line(`${pfx}ModRevision`, kv.modRevision);
    this.line(`${pfx}Version`, kv.version);
    this.line(`${pfx}Value`, F.goQuote(kv.value));
    this.line(`${pfx}Lease`, kv.lease);
  }

  del(r: DeleteResult): void {
    this.hdr(r.header);
    this.line('Deleted', r.deleted);
    for (const kv of r.prevKvs) this.kv('Prev', kv);
  }

  get(r: RangeResult): void {
    this.hdr(r.header);
    for (const kv of r.kvs) this.kv('', kv);
    this.line('More', r.more);
    this.line('Count', r.count);
  }

  put(r: PutResult): void {
    this.hdr(r.header);
    if (r.prevKv !== undefined) this.kv('Prev', r.prevKv);
  }

  txn(r: TxnResult): void {
    this.hdr(r.header);
    this.line('Succeeded', r.succeeded);
    for (const x of r.responses) this.op(x);
  }

  private op(x: TxnOpResult): void {
    if (x.type === 'range') this.get(x.range);
    else if (x.type === 'put') this.put(x.put);
    else if (x.type === 'delete') this.del(x.delete);
    else this.line('Unknown', F.goQuote(F.goJson(F.txnJson(x.txn))));
  }

  watch(r: F.WatchPrint): void {
    this.hdr(r.header);
    for (const e of r.events) {
      this.line('Type', e.type);
      if (e.prevKv !== undefined) this.kv('Prev', e.prevKv);
      this.kv('', e.kv);
    }
  }

  grant(r: LeaseGrantResult): void {
    this.hdr(r.header);
    this.line('ID', r.id);
    this.line('TTL', r.ttl);
  }

  revoke(_id: string, r: { header: ResponseHeader }): void {
    this.hdr(r.header);
  }

  keepAlive(r: LeaseKeepAliveResult): void {
    this.hdr(r.header);
    this.line('ID', r.id);
    this.line('TTL', r.ttl);
  }

  timeToLive(r: LeaseTimeToLiveResult): void {
    this.hdr(r.header);
    this.line('ID', r.id);
    this.line('TTL', r.ttl);
    this.line('GrantedTTL', r.grantedTtl);
    for (const k of r.keys) this.line('Key', F.goQuote(k));
  }

  leases(r: LeasesResult): void {
    this.hdr(r.header);
    for (const id of r.leases) this.line('ID', id);
  }

  memberAdd(): void {
    unsupported('fields');
  }

  memberRemove(): void {
    unsupported('fields');
  }

  memberUpdate(): void {
    unsupported('fields');
  }

  memberPromote(): void {
    unsupported('fields');
  }

  memberList(r: MemberListResult): void {
    this.hdr(r.header);
    for (const m of r.members) {
      this.line('ID', m.id);
      this.line('Name', F.goQuote(m.name));
      for (const u of m.peerURLs) this.line('PeerURL', F.goQuote(u));
      for (const u of m.clientURLs) this.line('ClientURL', F.goQuote(u));
      this.line('IsLearner', m.isLearner);
      this.o.out('\n');
    }
  }

  endpointHealth(hs: EpHealth[]): void {
    for (const h of hs) {
      this.line('Endpoint', F.goQuote(h.ep));
      this.line('Health', h.health);
      this.line('Took', h.took);
      this.line('Error', h.error);
      this.o.out('\n');
    }
  }

  endpointStatus(ss: EpStatus[]): void {
    for (const { ep, resp: s } of ss) {
      this.hdr(s.header);
      this.line('Version', F.goQuote(s.version));
      this.line('DBSize', s.dbSize);
      this.line('Leader', s.leader);
      this.line('IsLearner', s.isLearner);
      this.line('RaftIndex', s.raftIndex);
      this.line('RaftTerm', s.raftTerm);
      this.line('RaftAppliedIndex', s.raftAppliedIndex);
      this.line('Errors', F.goStringSlice(s.errors));
      this.line('Endpoint', F.goQuote(ep));
      this.o.out('\n');
    }
  }

  moveLeader(): void {
    unsupported('fields');
  }
}

/** ProtobufPrinter is `-w protobuf`: the response's wire bytes, with no newline. */
export class ProtobufPrinter implements Printer {
  readonly format = 'protobuf';

  constructor(private readonly o: Out) {}

  private print(b: Buffer): void {
    this.o.out(b);
  }

  get(r: RangeResult): void {
    this.print(P.rangePb(r));
  }

  put(r: PutResult): void {
    this.print(P.putPb(r));
  }

  del(r: DeleteResult): void {
    this.print(P.deletePb(r));
  }

  txn(r: TxnResult): void {
    this.print(P.txnPb(r));
  }

  watch(r: F.WatchPrint): void {
    this.print(P.watchPb(r));
  }

  grant(r: LeaseGrantResult): void {
    this.print(P.headerPb(r.header));
  }

  revoke(): void {
    throw new ExitError(
      exitCodes.badFeature,
      'marshal unsupported for type clientv3.LeaseRevokeResponse',
    );
  }

  keepAlive(r: LeaseKeepAliveResult): void {
    this.print(P.headerPb(r.header));
  }

  timeToLive(r: LeaseTimeToLiveResult): void {
    this.print(P.headerPb(r.header));
  }

  leases(r: LeasesResult): void {
    this.print(P.headerPb(r.header));
  }

  memberAdd(r: MemberAddResult): void {
    this.print(P.memberAddPb(r));
  }

  memberRemove(_id: string, r: MemberListResult): void {
    this.print(P.membersPb(r));
  }

  memberUpdate(_id: string, r: MemberListResult): void {
    this.print(P.membersPb(r));
  }

  /** memberPromote: etcdctl 3.4 crashes here; this writes the MemberPromoteResponse. */
  memberPromote(_id: string, r: MemberListResult): void {
    this.print(P.membersPb(r));
  }

  memberList(r: MemberListResult): void {
    this.print(P.membersPb(r));
  }

  endpointHealth(): void {
    unsupported('protobuf');
  }

  endpointStatus(): void {
    unsupported('protobuf');
  }

  moveLeader(_l: string, _t: string, r: { header: ResponseHeader }): void {
    this.print(P.headerOnlyPb(r.header));
  }
}

/** TablePrinter is `-w table`: only member list and endpoint health and status. */
export class TablePrinter implements Printer {
  readonly format = 'table';

  constructor(private readonly o: Out) {}

  get(): void {
    unsupported('table');
  }
  put(): void {
    unsupported('table');
  }
  del(): void {
    unsupported('table');
  }
  txn(): void {
    unsupported('table');
  }
  watch(): void {
    unsupported('table');
  }
  grant(): void {
    unsupported('table');
  }
  revoke(): void {
    unsupported('table');
  }
  keepAlive(): void {
    unsupported('table');
  }
  timeToLive(): void {
    unsupported('table');
  }
  leases(): void {
    unsupported('table');
  }
  memberAdd(): void {
    unsupported('table');
  }
  memberRemove(): void {
    unsupported('table');
  }
  memberUpdate(): void {
    unsupported('table');
  }
  memberPromote(): void {
    unsupported('table');
  }
  moveLeader(): void {
    unsupported('table');
  }

  memberList(r: MemberListResult): void {
    this.o.out(renderTable(memberListHeader, memberListRows(r)));
  }

  endpointHealth(hs: EpHealth[]): void {
    this.o.out(renderTable(healthHeader, healthRows(hs)));
  }

  endpointStatus(ss: EpStatus[]): void {
    this.o.out(renderTable(statusHeader, statusRows(ss)));
  }
}
