/**
 * membership: who is in the cluster, as every member's applier sees it after applying the
 * log up to some index. It changes only by applying log entries (conf changes, and the normal
 * entries that publish a member's name and client URLs or update its peer URLs), so all
 * members agree on it at any index, and it travels in snapshots.
 *
 * Besides the members, the table remembers every removed id (etcd's "removed" store): a
 * removed member that comes back is refused by the peer transport, never re-admitted.
 */

/** Member is one cluster member as etcd's member list shows it. */
export interface Member {
  id: number;
  /** name is empty until the member has started and published it (etcd: IsStarted). */
  name: string;
  peerURLs: string[];
  clientURLs: string[];
  isLearner: boolean;
  /** grpcClientURLs: where the member serves etcd's gRPC API (its
   * --advertise-client-grpc-urls, published with its name); absent until published, and in
   * tables written before the gRPC API existed. */
  grpcClientURLs?: string[];
}

/** MembershipJson is the table's form inside snapshots (a file format: fields only added). */
export interface MembershipJson {
  members: Member[];
  removed: number[];
}

/** MemberTable: see the file comment. */
export class MemberTable {
  private readonly members = new Map<number, Member>();
  private readonly removedIds = new Set<number>();

  /** fromJson rebuilds a table from a snapshot's membership. */
  static fromJson(j: MembershipJson): MemberTable {
    const t = new MemberTable();
    for (const m of j.members) t.members.set(m.id, copy(m));
    for (const id of j.removed) t.removedIds.add(id);
    return t;
  }

  /** toJson is the table as a snapshot stores it, members sorted by id. */
  toJson(): MembershipJson {
    return { members: this.list(), removed: [...this.removedIds].sort((a, b) => a - b) };
  }

  /** list returns every member, sorted by id (etcd lists by id). */
  list(): Member[] {
    return [...this.members.values()].sort((a, b) => a.id - b.id).map(copy);
  }

  /** get returns a member or undefined. */
  get(id: number): Member | undefined {
    const m = this.members.get(id);
    return m === undefined ? undefined : copy(m);
  }

  /** has reports whether id is a current member. */
  has(id: number): boolean {
    return this.members.has(id);
  }

  /** isRemoved reports whether id was a member once and was removed. */
  isRemoved(id: number): boolean {
    return this.removedIds.has(id);
  }

  /** size is the number of members, learners included. */
  get size(): number {
    return this.members.size;
  }

  /** voters lists the ids of the voting members. */
  voters(): number[] {
    return this.list().filter((m) => !m.isLearner).map((m) => m.id);
  }

  /** memberOfPeerUrl finds the member that advertises a peer URL. */
  memberOfPeerUrl(url: string): Member | undefined {
    for (const m of this.members.values()) if (m.peerURLs.includes(url)) return copy(m);
    return undefined;
  }

  /** add admits a member (a voter, or a learner); re-adding an existing id keeps its
   * published attributes (bootstrap entries are applied again on restart). */
  add(m: Member): void {
    const old = this.members.get(m.id);
    const next = copy(m);
    if (old !== undefined) {
      if (next.name === '') next.name = old.name;
      if (next.clientURLs.length === 0) next.clientURLs = [...old.clientURLs];
    }
    this.members.set(m.id, next);
  }

  /** promote turns a learner into a voter. */
  promote(id: number): void {
    const m = this.members.get(id);
    if (m !== undefined) m.isLearner = false;
  }

  /** demote turns a voter into a learner (a conf change may ask for it). */
  demote(id: number): void {
    const m = this.members.get(id);
    if (m !== undefined) m.isLearner = true;
  }

  /** remove drops a member for good. */
  remove(id: number): void {
    this.members.delete(id);
    this.removedIds.add(id);
  }

  /** updatePeerUrls replaces a member's peer URLs (etcd's member update). */
  updatePeerUrls(id: number, peerURLs: string[]): void {
    const m = this.members.get(id);
    if (m !== undefined) m.peerURLs = [...peerURLs];
  }

  /** publish records the name and client URLs (HTTP, and gRPC when given) a started member
   * announces. */
  publish(id: number, name: string, clientURLs: string[], grpcClientURLs?: string[]): void {
    const m = this.members.get(id);
    if (m === undefined) return;
    m.name = name;
    m.clientURLs = [...clientURLs];
    if (grpcClientURLs !== undefined) m.grpcClientURLs = [...grpcClientURLs];
  }
}

function copy(m: Member): Member {
  return {
    id: m.id, name: m.name, peerURLs: [...m.peerURLs], clientURLs: [...m.clientURLs],
    isLearner: m.isLearner,
    ...(m.grpcClientURLs === undefined ? {} : { grpcClientURLs: [...m.grpcClientURLs] }),
  };
}
