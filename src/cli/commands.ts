import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { WatchCanceledError } from '../client/client.js';
import { leaseHex } from '../client/codec.js';
import { ClientError, grpcCodes } from '../client/errors.js';
import type { WatchEvent } from '../client/types.js';
import { badArgs, ExitError, exitCodes, parseGoInt } from './args.js';
import type { CommandDef, Ctx } from './command.js';
import { goDuration, goQuote, goStringSlice } from './format.js';
import { delFlags, delOp, getFlags, getOp, leaseArg, memberIdArg, putFlags, putOp } from './ops.js';
import type { EpHealth, EpStatus } from './printer.js';
import { SimplePrinter } from './printer.js';
import { lineReader, readTxn } from './txn.js';

/**
 * commands: myetcdctl's commands, each doing what etcdctl 3.4's does, in the same order
 * (check the arguments, make the client and the writer, send, print) so that the same
 * mistakes fail the same way. Requests go to etcd's JSON gateway (/v3/...), which MyEtcd and
 * etcd both serve.
 */

/** orExit runs a request; its failure exits `code` with `Error: <wrap(message)>`. */
async function orExit<T>(
  p: Promise<T>,
  code: number = exitCodes.error,
  wrap: (m: string) => string = (m) => m,
): Promise<T> {
  try {
    return await p;
  } catch (e) {
    if (e instanceof ExitError) throw e;
    throw new ExitError(code, wrap(e instanceof Error ? e.message : String(e)));
  }
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(typeof c === 'string' ? Buffer.from(c) : c);
  return Buffer.concat(chunks).toString('utf8');
}

const get: CommandDef = {
  name: 'get',
  use: 'get [options] <key> [range_end]',
  short: 'Gets the key or a range of keys',
  flags: getFlags,
  async run(ctx, args) {
    const { key, opts } = getOp(args, ctx.flags);
    const display = ctx.display();
    const r = await orExit(ctx.client().get(key, opts));
    if (ctx.flags['count-only'] === true && display.format !== 'fields') {
      throw badArgs('--count-only is only for `--write-out=fields`');
    }
    if (ctx.flags['print-value-only'] === true) {
      if (!(display instanceof SimplePrinter)) {
        throw badArgs('print-value-only is only for `--write-out=simple`');
      }
      display.valueOnly = true;
    }
    display.get(r);
  },
};

const put: CommandDef = {
  name: 'put',
  use: 'put [options] <key> <value> (<value> can also be given from stdin)',
  short: 'Puts the given key into the store',
  flags: putFlags,
  async run(ctx, args) {
    const fromStdin =
      args.length === 1 && ctx.flags['ignore-value'] !== true ? await readAll(ctx.io.stdin) : '';
    const { key, value, opts } = putOp(args, ctx.flags, () => fromStdin);
    const display = ctx.display();
    display.put(await orExit(ctx.client().put(key, value, opts)));
  },
};

const del: CommandDef = {
  name: 'del',
  use: 'del [options] <key> [range_end]',
  short: 'Removes the specified key or range of keys [key, range_end)',
  flags: delFlags,
  async run(ctx, args) {
    const { key, opts } = delOp(args, ctx.flags);
    const display = ctx.display();
    display.del(await orExit(ctx.client().delete(key, opts)));
  },
};

const txn: CommandDef = {
  name: 'txn',
  use: 'txn [options]',
  short: 'Txn processes all the requests in one transaction',
  flags: {
    interactive: {
      kind: 'bool',
      short: 'i',
      default: false,
      desc: 'Input transaction in interactive mode',
    },
  },
  async run(ctx, args) {
    if (args.length !== 0) throw badArgs('txn command does not accept argument');
    const display = ctx.display();
    const client = ctx.client();
    const prompt = ctx.flags.interactive === true ? (p: string) => ctx.io.out(p + '\n') : undefined;
    const input = await readTxn(lineReader(ctx.io.stdin), prompt);
    const t = client
      .txn()
      .if(...input.compares)
      .then(...input.success)
      .else(...input.failure);
    display.txn(await orExit(t.commit()));
  },
};

const compaction: CommandDef = {
  name: 'compaction',
  use: 'compaction [options] <revision>',
  short: 'Compacts the event history in etcd',
  flags: {
    physical: {
      kind: 'bool',
      default: false,
      desc: "'true' to wait for compaction to physically remove all old revisions",
    },
  },
  async run(ctx, args) {
    if (args.length !== 1) throw badArgs('compaction command needs 1 argument');
    let rev: number;
    try {
      rev = Number(parseGoInt(args[0]!, 10));
    } catch (e) {
      throw new ExitError(exitCodes.error, (e as Error).message);
    }
    const client = ctx.client();
    ctx.display();
    await orExit(client.compact(rev, { physical: ctx.flags.physical === true }));
    ctx.io.out(`compacted revision ${rev}\n`);
  },
};

const watch: CommandDef = {
  name: 'watch',
  use: 'watch [options] [key or prefix] [range_end] [--] [exec-command arg1 arg2 ...]',
  short: 'Watches events stream on keys or prefixes',
  flags: {
    interactive: { kind: 'bool', short: 'i', default: false, desc: 'Interactive mode' },
    prefix: { kind: 'bool', default: false, desc: 'Watch on a prefix if prefix is set' },
    rev: { kind: 'int', default: 0, desc: 'Revision to start watching' },
    'prev-kv': {
      kind: 'bool',
      default: false,
      desc: 'get the previous key-value pair before the event happens',
    },
  },
  async run(ctx, args) {
    const envKey = ctx.env.ETCDCTL_WATCH_KEY ?? '';
    const envRange = ctx.env.ETCDCTL_WATCH_RANGE_END ?? '';
    if (envKey === '' && envRange !== '') {
      throw badArgs(
        `ETCDCTL_WATCH_KEY is empty but got ETCDCTL_WATCH_RANGE_END=${goQuote(envRange)}`,
      );
    }
    if (ctx.flags.interactive === true) {
      throw new ExitError(
        exitCodes.badFeature,
        'watch --interactive is not supported by myetcdctl',
      );
    }
    const sep = ctx.rawArgs.indexOf('--');
    const execArgs = sep < 0 ? [] : ctx.rawArgs.slice(sep + 1);
    if (sep >= 0 && execArgs.length === 0) {
      throw badArgs('bad number of arguments (found separator --, but no commands)');
    }
    let watchArgs = sep < 0 ? args : args.slice(0, args.length - execArgs.length);
    if (envKey !== '') {
      if (watchArgs.length > 0) {
        throw badArgs('bad number of arguments (found conflicting environment key)');
      }
      watchArgs = envRange !== '' ? [envKey, envRange] : [envKey];
    }
    if (watchArgs.length < 1) throw badArgs('bad number of arguments');
    const prefix = ctx.flags.prefix === true;
    if (watchArgs.length === 2 && prefix) {
      throw badArgs('`range_end` and `--prefix` are mutually exclusive');
    }
    const client = ctx.client();
    const display = ctx.display();
    const w = client.watch(watchArgs[0]!, {
      prefix,
      ...(watchArgs.length >= 2 ? { rangeEnd: watchArgs[1]! } : {}),
      startRevision: Number(ctx.flags.rev ?? 0),
      prevKv: ctx.flags['prev-kv'] === true,
      ...(ctx.io.signal !== undefined ? { signal: ctx.io.signal } : {}),
    });
    try {
      for await (const r of w) {
        display.watch({ ...r, compactRevision: 0, canceled: false, created: false });
        for (const ev of r.events) await runOnEvent(execArgs, r.header.revision, ev, ctx);
      }
      if (ctx.io.signal?.aborted === true) return exitCodes.success;
    } catch (e) {
      if (!(e instanceof ClientError)) throw e;
      ctx.io.err(`watch was canceled (${e.message})\n`);
      if (e instanceof WatchCanceledError) {
        const { header, compactRevision } = e;
        display.watch({ header, events: [], compactRevision, canceled: true, created: false });
      }
    }
    throw new ExitError(exitCodes.interrupted, 'watch is canceled by the server');
  },
};

/** runOnEvent runs watch's exec-command for one event, with etcdctl's environment. */
async function runOnEvent(argv: string[], rev: number, ev: WatchEvent, ctx: Ctx): Promise<void> {
  if (argv.length === 0) return;
  const env = {
    ...ctx.env,
    ETCD_WATCH_REVISION: String(rev),
    ETCD_WATCH_EVENT_TYPE: goQuote(ev.type),
    ETCD_WATCH_KEY: goQuote(ev.kv.key),
    ETCD_WATCH_VALUE: goQuote(ev.kv.value),
  };
  const child = spawn(argv[0]!, argv.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.on('data', (d: Buffer) => ctx.io.out(d));
  child.stderr.on('data', (d: Buffer) => ctx.io.err(d.toString()));
  const code = await new Promise<number | null>((resolve) => {
    child.once('error', () => resolve(-1));
    child.once('close', (c) => resolve(c));
  });
  if (code !== 0) {
    ctx.io.err(
      `command ${goStringSlice(argv.map((a) => goQuote(a)))} error (exit status ${code})\n`,
    );
    throw new ExitError(exitCodes.error, '');
  }
}

const leaseGrant: CommandDef = {
  name: 'grant',
  use: 'grant <ttl>',
  short: 'Creates leases',
  async run(ctx, args) {
    if (args.length !== 1) throw badArgs('lease grant command needs TTL argument');
    let ttl: number;
    try {
      ttl = Number(parseGoInt(args[0]!, 10));
    } catch (e) {
      throw badArgs(`bad TTL (${(e as Error).message})`);
    }
    const display = ctx.display();
    const r = await orExit(
      ctx.client().leaseGrant(ttl),
      exitCodes.error,
      (m) => `failed to grant lease (${m})`,
    );
    display.grant(r);
  },
};

const leaseRevoke: CommandDef = {
  name: 'revoke',
  use: 'revoke <leaseID>',
  short: 'Revokes leases',
  async run(ctx, args) {
    if (args.length !== 1) throw badArgs('lease revoke command needs 1 argument');
    const id = leaseArg(args[0]!, 'bad lease ID arg');
    const display = ctx.display();
    const r = await orExit(
      ctx.client().leaseRevoke(id),
      exitCodes.error,
      (m) => `failed to revoke lease (${m})`,
    );
    display.revoke(id, r);
  },
};

const leaseTimeToLive: CommandDef = {
  name: 'timetolive',
  use: 'timetolive <leaseID> [options]',
  short: 'Get lease information',
  flags: { keys: { kind: 'bool', default: false, desc: 'Get keys attached to this lease' } },
  async run(ctx, args) {
    if (args.length !== 1) throw badArgs('lease timetolive command needs lease ID as argument');
    const keys = ctx.flags.keys === true;
    const client = ctx.client();
    const display = ctx.display();
    const r = await orExit(
      client.leaseTimeToLive(leaseArg(args[0]!, 'bad lease ID arg'), { keys }),
      exitCodes.badConnection,
    );
    display.timeToLive(r, keys);
  },
};

const leaseList: CommandDef = {
  name: 'list',
  use: 'list',
  short: 'List all active leases',
  async run(ctx) {
    const client = ctx.client();
    const display = ctx.display();
    display.leases(await orExit(client.leases(), exitCodes.badConnection));
  },
};

const leaseKeepAlive: CommandDef = {
  name: 'keep-alive',
  use: 'keep-alive [options] <leaseID>',
  short: 'Keeps leases alive (renew)',
  flags: {
    once: {
      kind: 'bool',
      default: false,
      desc: 'Resets the keep-alive time to its original value and exits immediately',
    },
  },
  async run(ctx, args) {
    if (args.length !== 1) throw badArgs('lease keep-alive command needs lease ID as argument');
    const id = leaseArg(args[0]!, 'bad lease ID arg');
    const client = ctx.client();
    const display = ctx.display();
    if (ctx.flags.once === true) {
      display.keepAlive(await orExit(client.leaseKeepAliveOnce(id), exitCodes.badConnection));
      return;
    }
    const ka = client.keepAlive(id, { onResponse: (r) => display.keepAlive(r) });
    const stop = () => ka.close();
    ctx.io.signal?.addEventListener('abort', stop, { once: true });
    await ka.done;
    ctx.io.signal?.removeEventListener('abort', stop);
    if (ctx.io.signal?.aborted === true) return;
    if (display instanceof SimplePrinter) ctx.io.out(`lease ${leaseHex(id)} expired or revoked.\n`);
  },
};

const lease: CommandDef = {
  name: 'lease',
  use: 'lease <subcommand>',
  short: 'Lease related commands',
  sub: [leaseGrant, leaseKeepAlive, leaseList, leaseRevoke, leaseTimeToLive],
};

/** endpointsOf is etcdctl's endpointsFromCluster: --endpoints, or with --cluster every
 * member's client URLs. */
async function endpointsOf(ctx: Ctx): Promise<string[]> {
  if (ctx.flags.cluster !== true) return ctx.endpoints;
  const r = await orExit(
    ctx.client().memberList(),
    exitCodes.error,
    (m) => `failed to fetch endpoints from etcd cluster member list: ${m}`,
  );
  return r.members.flatMap((m) => m.clientURLs);
}

const endpointHealth: CommandDef = {
  name: 'health',
  use: 'health',
  short: 'Checks the healthiness of endpoints specified in `--endpoints` flag',
  async run(ctx) {
    const display = ctx.display();
    const eps = await endpointsOf(ctx);
    const list: EpHealth[] = await Promise.all(
      eps.map(async (ep) => {
        const t0 = performance.now();
        const h: EpHealth = { ep, health: false, took: '', error: '' };
        try {
          await ctx.client([ep]).get('health');
          h.health = true;
        } catch (e) {
          if (e instanceof ClientError && e.code === grpcCodes.PermissionDenied) h.health = true;
          else h.error = e instanceof Error ? e.message : String(e);
        }
        h.took = goDuration(performance.now() - t0);
        return h;
      }),
    );
    display.endpointHealth(list);
    if (list.some((h) => h.error !== '')) throw new ExitError(exitCodes.error, 'unhealthy cluster');
  },
};

const endpointStatus: CommandDef = {
  name: 'status',
  use: 'status',
  short: 'Prints out the status of endpoints specified in `--endpoints` flag',
  async run(ctx) {
    const client = ctx.client();
    const display = ctx.display();
    const list: EpStatus[] = [];
    let failed = false;
    for (const ep of await endpointsOf(ctx)) {
      try {
        list.push({ ep, resp: await client.statusOf(ep) });
      } catch (e) {
        failed = true;
        const why = e instanceof Error ? e.message : String(e);
        ctx.io.err(`Failed to get the status of endpoint ${ep} (${why})\n`);
      }
    }
    display.endpointStatus(list);
    return failed ? exitCodes.error : exitCodes.success;
  },
};

const endpoint: CommandDef = {
  name: 'endpoint',
  use: 'endpoint <subcommand>',
  short: 'Endpoint related commands',
  persistentFlags: {
    cluster: {
      kind: 'bool',
      default: false,
      desc: 'use all endpoints from the cluster member list',
    },
  },
  sub: [endpointHealth, endpointStatus],
};

const peerUrlsFlag = (what: string) => ({
  'peer-urls': {
    kind: 'string' as const,
    default: '',
    desc: `comma separated peer URLs for the ${what} member.`,
  },
});

const memberAdd: CommandDef = {
  name: 'add',
  use: 'add <memberName> [options]',
  short: 'Adds a member into the cluster',
  flags: {
    ...peerUrlsFlag('new'),
    learner: { kind: 'bool', default: false, desc: 'indicates if the new member is raft learner' },
  },
  async run(ctx, args) {
    if (args.length < 1) throw badArgs('member name not provided');
    if (args.length > 1) {
      let ev = 'too many arguments';
      for (const s of args)
        if (s.toLowerCase().startsWith('http')) ev += `, did you mean --peer-urls=${s}`;
      throw badArgs(ev);
    }
    const name = args[0]!;
    const peerUrls = String(ctx.flags['peer-urls'] ?? '');
    if (peerUrls === '') throw badArgs('member peer urls not provided');
    const urls = peerUrls.split(',');
    const client = ctx.client();
    const display = ctx.display();
    const r = await orExit(client.memberAdd(urls, { isLearner: ctx.flags.learner === true }));
    display.memberAdd(r);
    if (!(display instanceof SimplePrinter)) return;
    const conf = r.members.flatMap((m) =>
      m.peerURLs.map((u) => `${m.id === r.member.id ? name : m.name}=${u}`),
    );
    ctx.io.out(
      '\n' +
        `ETCD_NAME=${goQuote(name)}\n` +
        `ETCD_INITIAL_CLUSTER=${goQuote(conf.join(','))}\n` +
        `ETCD_INITIAL_ADVERTISE_PEER_URLS=${goQuote(peerUrls)}\n` +
        'ETCD_INITIAL_CLUSTER_STATE="existing"\n',
    );
  },
};

const memberRemove: CommandDef = {
  name: 'remove',
  use: 'remove <memberID>',
  short: 'Removes a member from the cluster',
  async run(ctx, args) {
    if (args.length !== 1) throw badArgs('member ID is not provided');
    const id = memberIdArg(args[0]!);
    const client = ctx.client();
    const display = ctx.display();
    display.memberRemove(id, await orExit(client.memberRemove(id)));
  },
};

const memberUpdate: CommandDef = {
  name: 'update',
  use: 'update <memberID> [options]',
  short: 'Updates a member in the cluster',
  flags: peerUrlsFlag('updated'),
  async run(ctx, args) {
    if (args.length !== 1) throw badArgs('member ID is not provided');
    const id = memberIdArg(args[0]!);
    const peerUrls = String(ctx.flags['peer-urls'] ?? '');
    if (peerUrls === '') throw badArgs('member peer urls not provided');
    const client = ctx.client();
    const display = ctx.display();
    display.memberUpdate(id, await orExit(client.memberUpdate(id, peerUrls.split(','))));
  },
};

const memberPromote: CommandDef = {
  name: 'promote',
  use: 'promote <memberID>',
  short: 'Promotes a non-voting member in the cluster',
  async run(ctx, args) {
    if (args.length !== 1) throw badArgs('member ID is not provided');
    const id = memberIdArg(args[0]!);
    const client = ctx.client();
    const display = ctx.display();
    display.memberPromote(id, await orExit(client.memberPromote(id)));
  },
};

const memberList: CommandDef = {
  name: 'list',
  use: 'list',
  short: 'Lists all members in the cluster',
  async run(ctx) {
    const client = ctx.client();
    const display = ctx.display();
    display.memberList(await orExit(client.memberList()));
  },
};

const member: CommandDef = {
  name: 'member',
  use: 'member <subcommand>',
  short: 'Membership related commands',
  sub: [memberAdd, memberList, memberPromote, memberRemove, memberUpdate],
};

const moveLeader: CommandDef = {
  name: 'move-leader',
  use: 'move-leader <transferee-member-id>',
  short: 'Transfers leadership to another etcd cluster member.',
  async run(ctx, args) {
    if (args.length !== 1) throw badArgs('move-leader command needs 1 argument');
    let target: string;
    try {
      target = parseGoInt(args[0]!, 16, true).toString();
    } catch (e) {
      throw badArgs((e as Error).message);
    }
    const client = ctx.client();
    const display = ctx.display();
    let leader: { ep: string; id: string } | undefined;
    for (const ep of ctx.endpoints) {
      const s = await orExit(client.statusOf(ep));
      if (s.header.memberId === s.leader) {
        leader = { ep, id: s.leader };
        break;
      }
    }
    if (leader === undefined) {
      throw badArgs(`no leader endpoint given at ${goStringSlice(ctx.endpoints)}`);
    }
    const r = await orExit(client.moveLeader(target, leader.ep));
    display.moveLeader(leader.id, target, r);
  },
};

const version: CommandDef = {
  name: 'version',
  use: 'version',
  short: 'Prints the version of myetcdctl',
  async run(ctx) {
    ctx.io.out(`myetcdctl version: ${packageVersion()}\nAPI version: 3.4\n`);
  },
};

function packageVersion(): string {
  try {
    const url = new URL('../../../package.json', import.meta.url);
    return String((JSON.parse(readFileSync(url, 'utf8')) as { version?: string }).version);
  } catch {
    return 'unknown';
  }
}

/** rootCommands are myetcdctl's commands (etcdctl's, less auth, snapshot, defrag, alarm, lock,
 * elect, make-mirror, migrate, check and endpoint hashkv). */
export const rootCommands: CommandDef[] = [
  compaction,
  del,
  endpoint,
  get,
  lease,
  member,
  moveLeader,
  put,
  txn,
  version,
  watch,
];
