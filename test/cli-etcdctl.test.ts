import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { Client } from '../src/client/index.js';
import { idHex } from '../src/cli/format.js';
import {
  type CtlResult,
  ctlStderr,
  type EtcdCluster,
  etcdctlBin,
  haveEtcd,
  myetcdctlBin,
  needsEtcd,
  normIds,
  runCtl,
  startEtcd,
} from './helpers/etcd-ref.js';
import { startServer, type TestServer } from './helpers/server.js';

/**
 * myetcdctl against etcdctl 3.4, command by command: the same command line is run with
 * /usr/bin/etcdctl against a real etcd 3.4 and with bin/myetcdctl.js against a MyEtcd
 * server, both stores having taken the same writes in the same order (so revisions match),
 * and the outputs and exit codes are compared after replacing only what must differ: the
 * cluster and member ids, the raft term and index, lease ids, the db size, timings and
 * a lease's remaining TTL (checked against the time the test let pass). Needs Debian's
 * etcd-server and etcd-client; the tests are skipped, visibly, when they are missing.
 */

const serial = haveEtcd ? test.serial : test.serial.skip;
if (!haveEtcd) test.skip(`cli-etcdctl: ${needsEtcd}`, () => {});

/** Side is one of the two stores with the client that talks to it. */
interface Side {
  name: 'etcd' | 'myetcd';
  endpoint: string;
  /** subst maps a placeholder in a command line ({L1}) to this side's value. */
  subst: Map<string, string>;
  /** tokens maps a value that must differ (an id) to its placeholder in outputs. */
  tokens: Array<[string, string]>;
  run(args: string[], stdin?: string, env?: Record<string, string>): Promise<CtlResult>;
}

let etcd: EtcdCluster | undefined;
let server: TestServer | undefined;
let ref: Side;
let mine: Side;

test.before(async () => {
  if (!haveEtcd) return;
  etcd = await startEtcd(1);
  server = await startServer();
  ref = side('etcd', etcd.endpoints[0]!, (a, stdin, env) => runCtl(etcdctlBin, a, { stdin, env }));
  mine = side('myetcd', server.url, (a, stdin, env) =>
    runCtl(process.execPath, [myetcdctlBin, ...a], { stdin, env }),
  );
  for (const s of [ref, mine]) {
    const st = await new Client({ endpoints: [s.endpoint] }).status();
    for (const [id, token] of [
      [st.header.clusterId, '<cluster>'],
      [st.header.memberId, '<member>'],
    ]) {
      s.tokens.push([id!, token!], [idHex(id!).padStart(16, '0'), token!], [idHex(id!), token!]);
    }
  }
});

test.after.always(async () => {
  await server?.stop();
  await server?.cleanup();
  await etcd?.stop();
});

function side(
  name: Side['name'],
  endpoint: string,
  exec: (a: string[], stdin?: string, env?: Record<string, string>) => Promise<CtlResult>,
): Side {
  const s: Side = {
    name,
    endpoint,
    subst: new Map(),
    tokens: [],
    run: (args, stdin, env) =>
      exec(
        [
          '--endpoints',
          endpoint,
          ...args.map((a) => a.replace(/\{(\w+)\}/g, (m, k: string) => s.subst.get(k) ?? m)),
        ],
        stdin,
        env,
      ),
  };
  return s;
}

/** Norm is a normalised result. */
interface Norm {
  code: number;
  out: string;
  err: string;
}

function normText(s: Side, text: string): string {
  return normIds(text, s.tokens).replace(/\betcdctl\b/g, 'myetcdctl');
}

function norm(s: Side, r: CtlResult, protobuf = false): Norm {
  const err = ctlStderr(r.err);
  const out = protobuf ? normPb(r.out) : normText(s, r.out.toString('utf8'));
  return { code: r.code, out, err: normText(s, err) };
}

/** both runs one command line on both sides, etcd first. */
async function both(args: string[], stdin?: string): Promise<[CtlResult, CtlResult]> {
  const a = await ref.run(args, stdin);
  const b = await mine.run(args, stdin);
  return [a, b];
}

/** same asserts that a command line prints the same on both sides. */
async function same(t: ExecutionContext, args: string[], stdin?: string): Promise<Norm> {
  const [a, b] = await both(args, stdin);
  const pb = args.includes('protobuf');
  const na = norm(ref, a, pb);
  t.deepEqual(norm(mine, b, pb), na, `myetcdctl ${args.join(' ')}`);
  return na;
}

/** sameError asserts the exit code and the last error line (the usage text that cobra prints
 * with a flag error names the program and its flags, which differ). */
async function sameError(t: ExecutionContext, args: string[], stdin?: string): Promise<void> {
  const [a, b] = await both(args, stdin);
  const last = (s: Side, r: CtlResult) => normText(s, r.err.trim().split('\n').pop() ?? '');
  t.not(a.code, 0, `etcdctl ${args.join(' ')} should fail`);
  t.deepEqual(
    { code: b.code, err: last(mine, b) },
    { code: a.code, err: last(ref, a) },
    `myetcdctl ${args.join(' ')}`,
  );
}

// ---- a small protobuf reader, to normalise ids inside -w protobuf output ----

type PbField = { n: number; v: bigint | string | PbField[] };

function pbParse(b: Buffer): PbField[] | undefined {
  const out: PbField[] = [];
  let i = 0;
  const varint = (): bigint | undefined => {
    let x = 0n;
    for (let shift = 0n; i < b.length; shift += 7n) {
      const c = b[i++]!;
      x |= BigInt(c & 0x7f) << shift;
      if (c < 0x80) return x;
    }
    return undefined;
  };
  while (i < b.length) {
    const tag = varint();
    if (tag === undefined || tag === 0n) return undefined;
    const n = Number(tag >> 3n);
    const wire = Number(tag & 7n);
    if (wire === 0) {
      const v = varint();
      if (v === undefined) return undefined;
      out.push({ n, v });
    } else if (wire === 2) {
      const len = varint();
      if (len === undefined || i + Number(len) > b.length) return undefined;
      const sub = b.subarray(i, i + Number(len));
      i += Number(len);
      out.push({ n, v: pbParse(sub) ?? sub.toString('hex') });
    } else {
      return undefined;
    }
  }
  return out;
}

/** normPb decodes protobuf output and drops the headers' cluster id, member id and term. */
function normPb(b: Buffer): string {
  const fields = pbParse(b);
  if (fields === undefined) return `undecodable:${b.toString('hex')}`;
  const dropIds = (fs: PbField[]) => fs.filter((f) => ![1, 2, 4].includes(f.n));
  // A top level of varints is a header alone (the lease responses' quirk).
  const top = fields.every((f) => typeof f.v === 'bigint')
    ? dropIds(fields)
    : fields.map((f) => (f.n === 1 && Array.isArray(f.v) ? { n: 1, v: dropIds(f.v) } : f));
  return JSON.stringify(top, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
}

// ---- the commands ----

serial('etcdctl: put', async (t) => {
  await same(t, ['put', 'foo', 'bar']);
  await same(t, ['put', 'foo', 'bar2', '--prev-kv']);
  await same(t, ['put', 'foo', 'bar3', '--prev-kv', '-w', 'json']);
  await same(t, ['put', 'a', '1', '-w', 'fields']);
  await same(t, ['put', 'b', '2', '-w', 'protobuf']);
  await same(t, ['put', 'c', '3', '--prev-kv', '-w', 'fields']);
  await same(t, ['put', 'from-stdin'], 'value read from stdin');
  await same(t, ['put', '--ignore-value', 'foo']);
  await same(t, ['put', '--', 'dash', '-v']);
  await same(t, ['put', 'quoted', 'tab\there "q" \\ é \x01']);
  await sameError(t, ['put']);
  await sameError(t, ['put', 'lonely']);
  await sameError(t, ['put', '--ignore-value', 'foo', 'v']);
  await sameError(t, ['put', '--lease=zz', 'k', 'v']);
  await sameError(t, ['put', '--lease=1234', 'k', 'v']);
  await sameError(t, ['put', '--prefix', 'k', 'v']);
  await sameError(t, ['put', 'k', 'v', '-w', 'table']);
});

serial('etcdctl: get', async (t) => {
  await same(t, ['get', 'foo']);
  await same(t, ['get', 'foo', '-w', 'json']);
  await same(t, ['get', 'foo', '-w', 'fields']);
  await same(t, ['get', 'foo', '-w', 'protobuf']);
  await same(t, ['get', 'quoted', '-w', 'fields']);
  await same(t, ['get', 'foo', '--hex']);
  await same(t, ['get', 'a', 'c']);
  await same(t, ['get', 'a', 'c', '-w', 'json']);
  await same(t, ['get', 'a', '--from-key', '--keys-only']);
  await same(t, ['get', '', '--prefix', '--limit', '2', '-w', 'json']);
  await same(t, ['get', '', '--prefix', '--order', 'DESCEND', '--sort-by', 'MODIFY']);
  await same(t, ['get', '', '--prefix', '--sort-by', 'VALUE', '--keys-only']);
  await same(t, ['get', '', '--from-key', '--order=ascend', '--sort-by=create', '-w', 'fields']);
  await same(t, ['get', 'foo', '--print-value-only']);
  await same(t, ['get', 'foo', '--rev', '2']);
  await same(t, ['get', 'foo', '--consistency', 's']);
  await same(t, ['get', 'nokey']);
  await same(t, ['get', 'nokey', '-w', 'json']);
  await same(t, ['get', 'nokey', '-w', 'fields']);
  await same(t, ['get', 'foo', '--rev', '999999']);
  await sameError(t, ['get']);
  await sameError(t, ['get', 'foo', '-w', 'table']);
  await sameError(t, ['get', 'foo', '-w', 'yaml']);
  await sameError(t, ['get', 'foo', '--consistency', 'x']);
  // Go's %q, not JSON: a control byte is written \x01.
  await sameError(t, ['get', 'foo', '--consistency', 'a\x01b']);
  await sameError(t, ['get', 'foo', '--order', 'x']);
  await sameError(t, ['get', 'foo', '--sort-by', 'x']);
  await sameError(t, ['get', 'foo', '--bogus']);
  await sameError(t, ['get', 'foo', '--rev', 'abc']);
  await sameError(t, ['get', 'foo', '--rev']);
  await sameError(t, ['get', 'foo', '--prefix=maybe']);
  await sameError(t, ['get', 'foo', '-w', 'json', '--print-value-only']);
  await sameError(t, ['get', 'a', '--prefix', '--from-key']);
  await sameError(t, ['get', 'a', 'b', '--prefix']);
  // --count-only is etcdctl 3.5's; with -w fields it prints the header, More and Count.
  const [fields] = await both(['get', '', '--prefix', '-w', 'fields']);
  const counted = await mine.run(['get', '', '--prefix', '--count-only', '-w', 'fields']);
  const expected = normText(ref, fields.out.toString())
    .split('\n')
    .filter((l) => /^"(ClusterID|MemberID|Revision|RaftTerm|More|Count)"/.test(l) || l === '');
  t.is(counted.code, 0);
  t.deepEqual(normText(mine, counted.out.toString()).split('\n'), expected);
  const simple = await mine.run(['get', 'foo', '--count-only']);
  t.is(simple.code, 128);
  t.is(simple.err, 'Error: --count-only is only for `--write-out=fields`\n');
});

serial('etcdctl: del', async (t) => {
  await same(t, ['put', 'd/1', 'x']);
  await same(t, ['put', 'd/2', 'y']);
  await same(t, ['put', 'd/3', 'z']);
  await same(t, ['del', 'nokey']);
  await same(t, ['del', 'd/1', '--prev-kv']);
  await same(t, ['del', 'd/2', 'd/3', '-w', 'json']);
  await same(t, ['put', 'd/4', 'w']);
  await same(t, ['del', 'd/', '--prefix', '--prev-kv', '-w', 'fields']);
  await same(t, ['put', 'd/5', 'v']);
  await same(t, ['del', 'd/', '--prefix', '-w', 'protobuf']);
  await sameError(t, ['del']);
  await sameError(t, ['del', 'a', 'b', 'c']);
  await sameError(t, ['del', 'a', '--prefix', '--from-key']);
  await sameError(t, ['del', 'a', '--keys-only']);
});

serial('etcdctl: txn', async (t) => {
  const ok =
    'value("foo") = "bar3"\n\nput foo bar4 --prev-kv\nget foo\ndel nokey\nput t1 v\n\nput t2 v\n\n';
  await same(t, ['txn'], ok);
  await same(t, ['txn', '-w', 'json'], ok);
  await same(t, ['txn', '-w', 'fields'], ok);
  await same(t, ['txn', '-w', 'protobuf'], ok);
  const two =
    'mod("foo") > "0"\nver("a") = "1"\ncreate("nokey") = "0"\n\n' +
    'get a --prefix\nput "spaced key" "spaced value"\n\ndel foo\n\n';
  await same(t, ['txn', '-w', 'json'], two);
  await same(t, ['txn', '--interactive'], two);
  await same(t, ['txn'], '\n\n\n');
  await sameError(t, ['txn'], 'bogus\n\n\n');
  await sameError(t, ['txn'], 'value("foo") = "x"');
  await sameError(t, ['txn'], 'value("foo") = "x"\n\nput foo\n\n\n');
  await sameError(t, ['txn'], 'ver("foo") = "x"\n\n\n\n');
  await sameError(t, ['txn'], 'size("foo") = "1"\n\n\n\n');
  await sameError(t, ['txn'], '\n\nput a b --nope\n\n\n');
  await sameError(t, ['txn'], '\n\nlist a\n\n\n');
  await sameError(t, ['txn', 'extra'], '\n\n\n');
});

/** grantBoth grants a lease on both sides and records its ids under `name`. */
async function grantBoth(t: ExecutionContext, name: string, ttl: number): Promise<number> {
  const granted = Date.now();
  const [a, b] = await both(['lease', 'grant', String(ttl)]);
  for (const [s, r] of [
    [ref, a],
    [mine, b],
  ] as const) {
    const m = /^lease ([0-9a-f]{16}) granted with TTL\((\d+)s\)\n$/.exec(r.out.toString());
    t.truthy(m, `${s.name}: ${r.out.toString()} ${r.err}`);
    const hex = m![1]!;
    s.subst.set(name, hex);
    s.tokens.push([hex, `<${name}>`], [BigInt('0x' + hex).toString(), `<${name}>`]);
  }
  t.is(normText(mine, b.out.toString()), normText(ref, a.out.toString()));
  return granted;
}

/** remaining checks a lease's remaining TTL in an output against the time that passed since
 * it was granted, then replaces it with a placeholder. */
function remaining(t: ExecutionContext, text: string, granted: number, ttl: number): string {
  const elapsedS = Math.ceil((Date.now() - granted) / 1000);
  return text.replace(/(remaining\(|"ttl":|"TTL" : )(-?\d+)/g, (_m, pre: string, v: string) => {
    t.true(Number(v) <= ttl && Number(v) >= ttl - elapsedS - 1, `remaining ${v} of ${ttl}`);
    return `${pre}<remaining>`;
  });
}

serial('etcdctl: lease', async (t) => {
  const granted = await grantBoth(t, 'L1', 1000);
  await same(t, ['put', '--lease={L1}', 'leased', 'v']);
  await same(t, ['get', 'leased', '-w', 'json']);
  for (const w of ['simple', 'json', 'fields']) {
    for (const keys of [[], ['--keys']]) {
      const [a, b] = await both(['lease', 'timetolive', '{L1}', '-w', w, ...keys]);
      const na = norm(ref, a);
      const nb = norm(mine, b);
      t.deepEqual(
        { ...nb, out: remaining(t, nb.out, granted, 1000) },
        { ...na, out: remaining(t, na.out, granted, 1000) },
        `timetolive -w ${w} ${keys}`,
      );
    }
  }
  await same(t, ['lease', 'timetolive', '1234']);
  await same(t, ['lease', 'timetolive', '1234', '-w', 'json']);
  await same(t, ['lease', 'keep-alive', '--once', '{L1}']);
  await same(t, ['lease', 'keep-alive', '--once', '{L1}', '-w', 'json']);
  await same(t, ['lease', 'keep-alive', '--once', '{L1}', '-w', 'fields']);
  await same(t, ['lease', 'keep-alive', '--once', '{L1}', '-w', 'protobuf']);
  await same(t, ['lease', 'list']);
  await same(t, ['lease', 'list', '-w', 'json']);
  await same(t, ['lease', 'list', '-w', 'fields']);
  await same(t, ['lease', 'list', '-w', 'protobuf']);
  await same(t, ['lease', 'revoke', '{L1}']);
  await same(t, ['get', 'leased']);
  await same(t, ['lease', 'list']);
  await grantBoth(t, 'L2', 60);
  await same(t, ['lease', 'revoke', '{L2}', '-w', 'json']);
  await grantBoth(t, 'L3', 60);
  await same(t, ['lease', 'revoke', '{L3}', '-w', 'fields']);
  await same(t, ['lease', 'keep-alive', '{L3}']);
  await sameError(t, ['lease', 'grant', '100', '-w', 'table']);
  await sameError(t, ['lease', 'revoke', '{L3}']);
  await sameError(t, ['lease', 'revoke', 'zz']);
  await sameError(t, ['lease', 'revoke', 'ffffffffffffffffff']);
  await sameError(t, ['lease', 'revoke', '1234', '-w', 'protobuf']);
  await sameError(t, ['lease', 'keep-alive', '--once', '1234']);
  await sameError(t, ['lease', 'grant', 'x']);
  await sameError(t, ['lease', 'grant']);
  await sameError(t, ['lease', 'timetolive']);
});

/** watchUntil runs `watch` on one side until its stdout holds `marker`, then stops it. */
async function watchUntil(s: Side, args: string[], marker: string): Promise<string> {
  const [file, ...pre] = s.name === 'etcd' ? [etcdctlBin] : [process.execPath, myetcdctlBin];
  const argv = [...pre, '--endpoints', s.endpoint, 'watch', ...args];
  const child = spawn(file, argv, { env: { ETCDCTL_API: '3', PATH: process.env.PATH ?? '' } });
  let out = '';
  let err = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const at = out.indexOf(marker);
      if (at >= 0 && out.indexOf('\n', at + marker.length - 1) >= 0) resolve();
    });
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    void exited.then(() => reject(new Error(`${s.name} watch exited: ${err}`)));
  }).finally(() => child.kill('SIGTERM'));
  await exited;
  return normText(s, out);
}

serial('etcdctl: watch', async (t) => {
  const [a] = await both(['put', 'w/start', 's', '-w', 'json']);
  const rev = /"revision":(\d+)/.exec(a.out.toString())![1]!;
  await same(t, ['put', 'w/a', '1']);
  await same(t, ['put', 'w/a', '2']);
  await same(t, ['del', 'w/a']);
  await same(t, ['put', 'w/end', 'e']);
  for (const extra of [[], ['-w', 'json'], ['--prev-kv', '-w', 'fields'], ['--prev-kv']]) {
    const marker = extra.includes('json')
      ? Buffer.from('w/end').toString('base64')
      : extra.includes('fields')
        ? '"Value" : "e"\n"Lease" : 0\n'
        : 'w/end\ne\n';
    const args = ['w/', '--prefix', '--rev', rev, ...extra];
    t.is(
      await watchUntil(mine, args, marker),
      await watchUntil(ref, args, marker),
      `watch ${args.join(' ')}`,
    );
  }
  const range = ['w/a', 'w/b', '--rev', rev];
  const last = 'DELETE\nw/a\n\n';
  t.is(await watchUntil(mine, range, last), await watchUntil(ref, range, last));
  await sameError(t, ['watch']);
  await sameError(t, ['watch', 'a', 'b', '--prefix']);
  await sameError(t, ['watch', 'a', '--']);
});

serial('etcdctl: compaction', async (t) => {
  const [a] = await both(['put', 'compact-me', 'x', '-w', 'json']);
  const rev = /"revision":(\d+)/.exec(a.out.toString())![1]!;
  await same(t, ['compaction', rev]);
  await same(t, ['get', 'foo', '--rev', '2']);
  await same(t, ['watch', 'foo', '--rev', '2']);
  // The canceled response's header carries no revision, as etcd's.
  await same(t, ['watch', 'foo', '--rev', '2', '-w', 'json']);
  await same(t, ['compaction', '--physical', rev]);
  await sameError(t, ['compaction']);
  await sameError(t, ['compaction', 'x']);
});

/** statusLine replaces what must differ in an endpoint status line (version, db size, raft
 * term and indexes) after checking its shape. */
function statusNorm(text: string): string {
  return text
    .replace(
      /(, <member>, )3\.4\.\d+, [\d.]+ [kMG]?B, (true|false), (true|false), \d+, \d+, \d+,/g,
      '$1<version>, <size>, $2, $3, <term>, <index>, <index>,',
    )
    .replace(/\| +3\.4\.\d+ \| +[\d.]+ [kMG]?B \|/g, '| <version> | <size> |')
    .replace(/(\| +(true|false) \| +(true|false) \|)( +\d+ \|){3}/g, '$1 <raft> |')
    .replace(
      /"(version|dbSize|raftIndex|raftTerm|raftAppliedIndex|dbSizeInUse)":("[^"]*"|\d+)/g,
      '"$1":<$1>',
    )
    .replace(/"(Version|DBSize|RaftIndex|RaftAppliedIndex)" : .*/g, '"$1" : <$1>')
    .replace(/-+\+/g, '-+')
    .replace(/ +\|/g, ' |')
    .replace(/\| +/g, '| ');
}

serial('etcdctl: endpoint', async (t) => {
  const took = (s: string) =>
    s
      .replace(/took = [\d.]+(ns|µs|ms|s)/g, 'took = <t>')
      .replace(/"took":"[^"]+"/g, '"took":"<t>"')
      .replace(/"Took" : .*/g, '"Took" : <t>')
      .replace(/\| +[\d.]+(ns|µs|ms|s) \|/g, '| <t> |')
      .replace(/-+\+/g, '-+')
      .replace(/ +\|/g, ' |')
      .replace(/\| +/g, '| ');
  for (const w of ['simple', 'json', 'fields', 'table']) {
    const [a, b] = await both(['endpoint', 'health', '-w', w]);
    const [na, nb] = [norm(ref, a), norm(mine, b)];
    t.deepEqual(
      {
        code: nb.code,
        out: took(normText(mine, nb.out).split(mine.endpoint).join('<ep>')),
        err: took(nb.err.split(mine.endpoint).join('<ep>')),
      },
      {
        code: na.code,
        out: took(normText(ref, na.out).split(ref.endpoint).join('<ep>')),
        err: took(na.err.split(ref.endpoint).join('<ep>')),
      },
      `endpoint health -w ${w}`,
    );
  }
  for (const w of ['simple', 'json', 'fields', 'table']) {
    const [a, b] = await both(['endpoint', 'status', '-w', w]);
    const n = (s: Side, r: CtlResult) => {
      const x = norm(s, r);
      return { ...x, out: statusNorm(x.out.split(s.endpoint).join('<ep>')) };
    };
    t.deepEqual(n(mine, b), n(ref, a), `endpoint status -w ${w}`);
  }
  await sameError(t, ['endpoint', 'status', '-w', 'protobuf']);
  await sameError(t, ['endpoint', 'health', '-w', 'protobuf']);
});

serial('etcdctl: the command line itself', async (t) => {
  await sameError(t, ['bogus-command']);
  await sameError(t, ['lase']);
  await sameError(t, ['--bogus', 'get', 'foo']);
  await same(t, ['ge', 'foo']);
  await same(t, ['-w', 'json', 'get', 'foo']);
  const env = await Promise.all(
    [ref, mine].map((s) => s.run(['get', 'foo'], undefined, { ETCDCTL_WRITE_OUT: 'json' })),
  );
  t.is(normText(mine, env[1]!.out.toString()), normText(ref, env[0]!.out.toString()));
  const conflict = await Promise.all(
    [ref, mine].map((s) => s.run(['get', 'foo'], undefined, { ETCDCTL_ENDPOINTS: s.endpoint })),
  );
  t.deepEqual(
    conflict.map((r) => r.code),
    [1, 1],
  );
  t.true(conflict[1]!.err.includes('conflicting environment variable "ETCDCTL_ENDPOINTS"'));
});
