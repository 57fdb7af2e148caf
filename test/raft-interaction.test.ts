/**
 * Scripted interaction tests over N in-memory nodes, in the manner of etcd-raft's
 * testdata/*.txt: each file in test/raft/testdata is a list of commands, each followed by
 * `----` and the expected output, then a blank line. REWRITE=1 regenerates the outputs.
 *
 * Commands: add-nodes N [voters=1,2] [learners=3] [prevote=bool] [checkquorum=bool]
 *   [inflight=n] [maxsize=bytes], campaign ID, propose ID DATA, propose-conf-change ID
 *   add|remove|learner NODE (add-learner/promote/remove ID NODE are shorthands),
 *   tick-election ID..., tick-heartbeat ID..., tick ID N, stabilize [ID...],
 *   process-ready ID..., deliver-msgs ID..., drop-msgs ID..., isolate ID, partition A,B C,
 *   heal, transfer-leader FROM TO, read-index ID CTX, compact ID KEEP, crash ID, restart ID,
 *   raft-state, raft-log ID, status ID.
 */
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  ConfChangeAddLearnerNode, ConfChangeAddNode, ConfChangeRemoveNode, MemoryStorage,
  type ConfChangeType, type Message, type Ready,
} from '../src/raft/index.js';
import type { MemberId } from '../src/types.js';
import {
  ctxString, defaultOptions, describeEntry, describeMessage, newNode, TestNode,
  type NodeOptions,
} from './raft/harness.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const dataDir = path.resolve(here, '../../test/raft/testdata');

/** Env is the scripted cluster: nodes, per-destination inboxes and cut links. */
class Env {
  nodes = new Map<number, TestNode>();
  inbox = new Map<number, Message[]>();
  /** cut holds "from-to" links that drop messages (partition, isolate). */
  cut = new Set<string>();
  crashed = new Set<number>();
  out: string[] = [];

  private ids(args: string[]): number[] {
    if (args.length === 0) return [...this.nodes.keys()].sort((a, b) => a - b);
    return args.map((a) => Number(a));
  }

  private node(id: number): TestNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  run(line: string): string {
    this.out = [];
    const [cmd, ...args] = line.trim().split(/\s+/);
    const kv = new Map<string, string>();
    const pos: string[] = [];
    for (const a of args) {
      const eq = a.indexOf('=');
      if (eq > 0) kv.set(a.slice(0, eq), a.slice(eq + 1));
      else pos.push(a);
    }
    switch (cmd) {
      case 'add-nodes': this.addNodes(Number(pos[0]), kv); break;
      case 'campaign': this.node(Number(pos[0])).rn.campaign(); break;
      case 'propose': this.propose(Number(pos[0]), pos.slice(1).join(' ')); break;
      case 'propose-conf-change': this.confChange(Number(pos[0]), pos[1]!, Number(pos[2])); break;
      case 'add-learner': this.confChange(Number(pos[0]), 'learner', Number(pos[1])); break;
      case 'promote': this.confChange(Number(pos[0]), 'add', Number(pos[1])); break;
      case 'remove': this.confChange(Number(pos[0]), 'remove', Number(pos[1])); break;
      case 'tick-election':
        for (const id of this.ids(pos)) this.tick(id, 2 * this.node(id).opts.electionTick);
        break;
      case 'tick-heartbeat':
        for (const id of this.ids(pos)) this.tick(id, this.node(id).opts.heartbeatTick);
        break;
      case 'tick': this.tick(Number(pos[0]), Number(pos[1])); break;
      case 'stabilize': this.stabilize(this.ids(pos)); break;
      case 'process-ready': for (const id of this.ids(pos)) this.processReady(id); break;
      case 'deliver-msgs': for (const id of this.ids(pos)) this.deliver(id); break;
      case 'drop-msgs':
        for (const id of this.ids(pos)) {
          for (const m of this.inbox.get(id) ?? []) this.out.push(`dropped: ${describeMessage(m)}`);
          this.inbox.set(id, []);
        }
        break;
      case 'isolate': {
        const id = Number(pos[0]);
        for (const o of this.nodes.keys()) {
          if (o === id) continue;
          this.cut.add(`${id}-${o}`);
          this.cut.add(`${o}-${id}`);
        }
        break;
      }
      case 'partition': {
        const groups = pos.map((g) => g.split(',').map(Number));
        for (const a of groups) {
          for (const b of groups) {
            if (a === b) continue;
            for (const x of a) for (const y of b) this.cut.add(`${x}-${y}`);
          }
        }
        break;
      }
      case 'heal': this.cut.clear(); break;
      case 'transfer-leader':
        this.node(Number(pos[0])).rn.transferLeader(Number(pos[1]) as MemberId);
        break;
      case 'read-index':
        this.node(Number(pos[0])).rn.readIndex(new TextEncoder().encode(pos[1]!));
        break;
      case 'compact': {
        const n = this.node(Number(pos[0]));
        n.compact(Number(pos[1] ?? 0));
        const s = n.storage.snapshot().metadata;
        this.out.push(`snapshot at ${s.index} (term ${s.term});`
          + ` first index ${n.storage.firstIndex()}`);
        break;
      }
      case 'crash': {
        const id = Number(pos[0]);
        this.crashed.add(id);
        this.inbox.set(id, []);
        break;
      }
      case 'restart': {
        const id = Number(pos[0]);
        this.crashed.delete(id);
        this.node(id).start();
        break;
      }
      case 'raft-state': this.raftState(); break;
      case 'raft-log': this.raftLog(Number(pos[0])); break;
      case 'status': this.status(Number(pos[0])); break;
      default: throw new Error(`unknown command ${cmd}`);
    }
    return this.out.join('\n');
  }

  private addNodes(n: number, kv: Map<string, string>): void {
    const opts: NodeOptions = { ...defaultOptions };
    if (kv.has('prevote')) opts.preVote = kv.get('prevote') === 'true';
    if (kv.has('checkquorum')) opts.checkQuorum = kv.get('checkquorum') === 'true';
    if (kv.has('inflight')) opts.maxInflightMsgs = Number(kv.get('inflight'));
    if (kv.has('maxsize')) opts.maxSizePerMsg = Number(kv.get('maxsize'));
    const first = this.nodes.size + 1;
    const created = Array.from({ length: n }, (_, i) => (first + i) as MemberId);
    const list = (k: string, dflt: MemberId[]): MemberId[] =>
      kv.has(k) ? kv.get(k)!.split(',').filter((s) => s !== '').map((s) => Number(s) as MemberId)
        : dflt;
    const voters = list('voters', created);
    const learners = list('learners', []);
    for (const id of created) {
      // A node in neither list joins later with an empty log, learning the config from the leader.
      const boot = voters.includes(id) || learners.includes(id);
      const node = boot ? newNode(id, voters, learners, opts, 1)
        : new TestNode(id, new MemoryStorage(), opts, 1);
      this.nodes.set(id, node);
      this.inbox.set(id, []);
      this.out.push(`INFO ${id} started: voters=[${voters}] learners=[${learners}]`
        + `${boot ? '' : ' (empty log, joining)'}`);
      // Persist and apply the bootstrap entries quietly, as etcd's add-nodes starts settled.
      while (node.rn.hasReady()) {
        node.takeReady();
        node.persist();
      }
    }
  }

  private propose(id: number, data: string): void {
    try {
      this.node(id).rn.propose(new TextEncoder().encode(data));
    } catch (e) {
      this.out.push(`error: ${(e as Error).message}`);
    }
  }

  private confChange(id: number, kind: string, nodeId: number): void {
    const type: ConfChangeType = kind === 'add' ? ConfChangeAddNode
      : kind === 'remove' ? ConfChangeRemoveNode : ConfChangeAddLearnerNode;
    try {
      this.node(id).rn.proposeConfChange({ type, nodeId: nodeId as MemberId });
    } catch (e) {
      this.out.push(`error: ${(e as Error).message}`);
    }
  }

  private tick(id: number, n: number): void {
    if (this.crashed.has(id)) return;
    for (let i = 0; i < n; i++) this.node(id).rn.tick();
  }

  private describeReady(id: number, rd: Ready): void {
    this.out.push(`> ${id} handling Ready`);
    const o = (s: string): void => { this.out.push(`  ${s}`); };
    if (rd.softState) o(`State:${rd.softState.raftState} Lead:${rd.softState.lead}`);
    if (rd.hardState) {
      const h = rd.hardState;
      o(`HardState Term:${h.term} Vote:${h.vote} Commit:${h.commit}`);
    }
    if (rd.entries.length > 0) o(`Entries: ${rd.entries.map(describeEntry).join(', ')}`);
    if (rd.snapshot) {
      const md = rd.snapshot.metadata;
      o(`Snapshot Index:${md.index} Term:${md.term} Voters:[${md.confState.voters}]`
        + ` Learners:[${md.confState.learners}]`);
    }
    if (rd.committedEntries.length > 0) {
      o(`CommittedEntries: ${rd.committedEntries.map(describeEntry).join(', ')}`);
    }
    for (const rs of rd.readStates) {
      o(`ReadState Index:${rs.index} Ctx:${ctxString(rs.requestCtx)}`);
    }
    for (const m of rd.messages) o(describeMessage(m));
  }

  private processReady(id: number): boolean {
    if (this.crashed.has(id)) return false;
    const n = this.node(id);
    if (!n.rn.hasReady()) return false;
    const rd = n.takeReady();
    this.describeReady(id, rd);
    n.persist();
    for (const m of rd.messages) {
      if (this.cut.has(`${m.from}-${m.to}`) || this.crashed.has(m.to)) {
        this.out.push(`  dropped: ${describeMessage(m)}`);
        continue;
      }
      const box = this.inbox.get(m.to);
      if (box) box.push(m);
    }
    return true;
  }

  private deliver(id: number): boolean {
    const msgs = this.inbox.get(id) ?? [];
    if (msgs.length === 0 || this.crashed.has(id)) return false;
    this.inbox.set(id, []);
    this.out.push(`> ${id} receiving messages`);
    for (const m of msgs) {
      this.out.push(`  ${describeMessage(m)}`);
      const err = this.node(id).rn.step(m);
      if (err) this.out.push(`  error: ${err.message}`);
    }
    return true;
  }

  private stabilize(ids: number[]): void {
    for (let round = 0; round < 1000; round++) {
      let any = false;
      for (const id of ids) any = this.processReady(id) || any;
      for (const id of ids) any = this.deliver(id) || any;
      if (!any) return;
    }
    throw new Error('stabilize did not converge');
  }

  private raftState(): void {
    for (const id of this.ids([])) {
      const n = this.node(id);
      if (this.crashed.has(id)) {
        this.out.push(`${id}: crashed`);
        continue;
      }
      const s = n.rn.status();
      const learner = s.config.learners.includes(id as MemberId) ? ' (Learner)'
        : s.config.voters.includes(id as MemberId) ? ' (Voter)' : ' (Non-member)';
      this.out.push(`${id}: ${s.raftState}${learner} Term:${s.term} Lead:${s.lead}`
        + ` Commit:${s.commit} Applied:${s.applied}`
        + ` Last:${n.rn.raft.raftLog.lastIndex()}`);
    }
  }

  private raftLog(id: number): void {
    const lg = this.node(id).rn.raft.raftLog;
    const first = lg.firstIndex();
    const last = lg.lastIndex();
    if (first > 1) this.out.push(`(entries before ${first} compacted)`);
    if (last < first) {
      this.out.push('log is empty');
      return;
    }
    for (const e of lg.slice(first, (last + 1) as never, Number.MAX_SAFE_INTEGER)) {
      this.out.push(describeEntry(e));
    }
  }

  private status(id: number): void {
    const s = this.node(id).rn.status();
    this.out.push(`${id}: ${s.raftState} term=${s.term} lead=${s.lead} commit=${s.commit}`
      + ` voters=[${s.config.voters}] learners=[${s.config.learners}]`);
    if (!s.progress) return;
    for (const [pid, p] of Object.entries(s.progress)) {
      this.out.push(`  ${pid}: ${p.state} match=${p.match} next=${p.next}`
        + `${p.isLearner ? ' learner' : ''}`
        + `${p.pendingSnapshot ? ` pendingSnap=${p.pendingSnapshot}` : ''}`
        + `${p.inflight ? ` inflight=${p.inflight}` : ''}`);
    }
  }
}

interface Case {
  header: string[];
  cmd: string;
  expected: string;
}

/** parse reads a datadriven file: optional comment lines, a command, ----, output, blank. */
function parse(text: string): Case[] {
  const lines = text.split('\n');
  const cases: Case[] = [];
  let header: string[] = [];
  let i = 0;
  while (i < lines.length) {
    const l = lines[i]!;
    if (l.startsWith('#') || l.trim() === '') {
      header.push(l);
      i++;
      continue;
    }
    const cmd = l;
    i++;
    if (lines[i] !== '----') throw new Error(`expected ---- after "${cmd}" at line ${i + 1}`);
    i++;
    const out: string[] = [];
    while (i < lines.length && lines[i] !== '') out.push(lines[i++]!);
    cases.push({ header, cmd, expected: out.join('\n') });
    header = [];
    i++; // The blank line ending the case.
  }
  return cases;
}

function format(cases: { header: string[]; cmd: string; actual: string }[]): string {
  let s = '';
  for (const c of cases) {
    const hdr = c.header.filter((h, k) => !(h === '' && k === 0 && s === ''));
    for (const h of hdr) s += `${h}\n`;
    s += `${c.cmd}\n----\n${c.actual === '' ? 'ok' : c.actual}\n\n`;
  }
  return s.replace(/\n+$/, '\n');
}

const files = fs.readdirSync(dataDir).filter((f) => f.endsWith('.txt')).sort();
for (const f of files) {
  test(`raft interaction: ${f.replace('.txt', '')}`, (t) => {
    const file = path.join(dataDir, f);
    const cases = parse(fs.readFileSync(file, 'utf8'));
    const env = new Env();
    const results = cases.map((c) => {
      let actual: string;
      try {
        actual = env.run(c.cmd);
      } catch (e) {
        actual = `panic: ${(e as Error).message}`;
      }
      return { header: c.header, cmd: c.cmd, actual: actual === '' ? 'ok' : actual };
    });
    if (process.env['REWRITE'] === '1') {
      fs.writeFileSync(file, format(results));
      t.pass();
      return;
    }
    for (let k = 0; k < cases.length; k++) {
      t.is(results[k]!.actual, cases[k]!.expected, `${f}: command "${cases[k]!.cmd}"`);
    }
  });
}
