import type { Member } from '../../src/cluster/membership.js';
import type { Message as RaftMessage } from '../../src/raft/index.js';

/**
 * The peer actor's protocol: etcd's rafthttp in spirit. The peer actor owns this member's
 * connections to the other members: it sends the Raft node's messages, delivers theirs to it,
 * carries snapshots on connections of their own, and relays the few requests a follower must
 * send to the leader (lease keep-alives, learner promotion). Nothing here waits on the disk:
 * the Raft node hands over a message only once the state it promises is durable.
 */

/** PeerSend: messages of one Ready pass, for any members (Raft node → peer, send). */
export interface PeerSend {
  type: 'PeerSend';
  msgs: RaftMessage[];
}

/** PeerMembers: the membership the transport works with, after every change (Raft node →
 * peer). Handshakes are checked against it: another cluster id, or a removed member, is
 * refused with etcd's wording. */
export interface PeerMembers {
  type: 'PeerMembers';
  selfId: number;
  clusterId: number;
  /** members: every member (this one included); a joining member is told them. */
  members: Member[];
  removed: number[];
}

/** PeerForward relays an ask to an actor of another member (ask; the reply is that actor's
 * reply, or its error). `target` names the actor there ('raft', 'lease'). */
export interface PeerForward {
  type: 'PeerForward';
  to: number;
  target: string;
  msg: { type: string; [field: string]: unknown };
}

/** PeerConnectivity asks how long each member has been connected (reconfiguration checks). */
export interface PeerConnectivity {
  type: 'PeerConnectivity';
}

/** PeerStatsReq asks for the transport's counters (metrics). */
export interface PeerStatsReq {
  type: 'PeerStats';
}

/** PeerFault is the test-only fault hook: drop every message to and from the members named
 * (an empty list heals). Refused unless the process was started with the failpoint.
 * dropOut (optional) drops only this member's messages to the members named, an asymmetric
 * fault: theirs still arrive. */
export interface PeerFault {
  type: 'PeerFault';
  drop: number[];
  dropOut?: number[];
}

export type PeerMsg = PeerSend | PeerMembers | PeerForward | PeerConnectivity | PeerStatsReq |
  PeerFault;

/** PeerConnectivityResp: for each connected member, for how long (ms). */
export interface PeerConnectivityResp {
  connectedMs: Record<string, number>;
}

/** PeerMemberStats are one remote member's counters (etcd_network_peer_* by member id). */
export interface PeerMemberStats {
  sentBytes: number;
  receivedBytes: number;
  sentFailures: number;
  /** rttSeconds: round trips measured since the last PeerStats ask. */
  rttSeconds: number[];
  /** queued: messages waiting for the connection; dropped: messages dropped (queue full,
   * member unreachable) since start. */
  queued: number;
  dropped: number;
  connected: boolean;
}

/** PeerStatsResp: counters per remote member id (decimal). */
export interface PeerStatsResp {
  members: Record<string, PeerMemberStats>;
  /** listening: the peer URL actually listened on ('' when not listening). */
  listening: string;
}

/** PeerReplies maps each ask to its reply (PeerForward: the remote actor's reply). */
export interface PeerReplies {
  PeerConnectivity: PeerConnectivityResp;
  PeerStats: PeerStatsResp;
  PeerFault: { drop: number[]; dropOut?: number[] };
}

/** PeerTls is the peer transport's TLS (etcd's --peer-* flags): PEM file paths, read at each
 * dial (a rotated certificate is used by the next connection) and when listening. */
export interface PeerTls {
  certFile: string;
  keyFile: string;
  caFile?: string;
  /** clientCertAuth: refuse peers without a certificate from caFile at the handshake. */
  clientCertAuth: boolean;
  /** skipVerify: accept any certificate (--peer-auto-tls, as etcd). */
  skipVerify: boolean;
}

/** PeerConfig is the peer actor's start-up configuration. */
export interface PeerConfig {
  /** listenPeerUrls: where to accept other members' connections. */
  listenPeerUrls: string[];
  /** required: a busy or unusable listen address fails the start (a multi-member cluster);
   * otherwise (a single member, which needs no peer port) it is logged and ignored. */
  required: boolean;
  logLevel: string;
  /** faults enables PeerFault (failpoint 'peer-fault', tests only). */
  faults: boolean;
  /** heartbeatIntervalMs paces reconnects and round-trip probes. */
  heartbeatIntervalMs: number;
  /** tls: how https peer URLs speak TLS (absent: no TLS settings). */
  tls?: PeerTls;
  /** advertisePeerUrls: this member's --initial-advertise-peer-urls, given in handshakes
   * until the membership holds this member's record (etcd's X-PeerURLs). */
  advertisePeerUrls?: string[];
}
