import test from 'ava';
import { readFileSync } from 'node:fs';
import {
  ceilingOpsPerSec, parseGcSeconds, parseTaskStat, splitFamily, threadCpu, threadCpuMarkdown,
} from '../bench/threads.js';
import { parseThreadSelf } from '../src/runtime/thread-id.js';
import { startServer } from './helpers/server.js';

// The benchmark's per-thread CPU table (bench/threads.ts): /proc parsing and the arithmetic
// of µs per operation and the projected ceiling, on fixed samples; and GET /debug/threads on
// a real server, whose ids must be the server's own threads.

test('threads: parseTaskStat reads tid, name and utime + stime, even with ") " in the name',
  (t) => {
    const line = '4242 (node) S 4240 4240 27044 0 -1 4194368 2358 0 0 0 1500 250 0 0 20 0 9 0 ' +
      '1 2 3\n';
    t.deepEqual(parseTaskStat(line), { tid: 4242, comm: 'node', ticks: 1750 });
    const odd = '7 (a) b (c) R 1 1 1 0 -1 0 0 0 0 0 11 22 0 0 20 0 1 0 1 2 3';
    t.deepEqual(parseTaskStat(odd), { tid: 7, comm: 'a) b (c', ticks: 33 });
    t.is(parseTaskStat('garbage'), undefined);
    t.is(parseTaskStat('12 (x) S 1 2'), undefined, 'too few fields');
    const self = parseTaskStat(readFileSync('/proc/thread-self/stat', 'utf8'));
    t.true(self !== undefined && self.ticks >= 0, 'this thread\'s own line parses');
  });

test('threads: parseThreadSelf takes the tid from "PID/task/TID"', (t) => {
  t.is(parseThreadSelf('29798/task/29805'), 29805);
  t.is(parseThreadSelf('29798/task/29805\n'), 29805);
  t.is(parseThreadSelf('29798'), undefined);
  t.is(parseThreadSelf('x/task/y'), undefined);
  t.is(parseThreadSelf('1/task/0'), undefined);
});

test('threads: µs per op per named thread, the unnamed together, the total and the ceiling',
  (t) => {
    // 100 ticks/s: one tick is 10,000 µs. 1,000 operations in the window.
    const before = new Map([[10, 100], [11, 50], [12, 0], [20, 7], [21, 3], [22, 40]]);
    // 23 started during the window (counted from 0); 22 ended (left out).
    const after = new Map([[10, 300], [11, 450], [12, 1], [20, 17], [21, 3], [23, 5]]);
    const names = [{ name: 'gateway', tid: 10 }, { name: 'raft', tid: 11 },
      { name: 'wal', tid: 12 }, { name: 'gone', tid: 99 }];
    const c = threadCpu(before, after, names, 1000, 100);
    t.deepEqual(c.rows, [
      { name: 'gateway', tid: 10, usPerOp: 2000 },
      { name: 'raft', tid: 11, usPerOp: 4000 },
      { name: 'wal', tid: 12, usPerOp: 10 },
    ]);
    t.is(c.othersUsPerOp, 100 + 0 + 50);
    t.is(c.othersCount, 2, 'thread 21 spent nothing in the window');
    t.is(c.totalUsPerOp, 2000 + 4000 + 10 + 150);
    t.is(c.busiest?.name, 'raft');
    t.is(c.ceilingOpsPerSec, 250, '1,000,000 ÷ 4,000 µs/op');
    const md = threadCpuMarkdown(c);
    t.regex(md, /\| raft \*\*\(busiest\)\*\* \| 4000\.0 \| 65 % \|/);
    t.regex(md, /other threads \(2 with CPU: V8, libuv\) \| 150\.0 \|/);
    t.regex(md, /ceiling .*: 250 ops\/s \(1,000,000 ÷ 4000\.0 µs\/op of raft\)/);
  });

test('threads: GC pauses per op come from myetcd_actor_gc_seconds_total, by thread name',
  (t) => {
    const text = '# HELP myetcd_actor_gc_seconds_total x\n' +
      'myetcd_actor_gc_seconds_total{actor="raft"} 0.5\n' +
      'myetcd_actor_gc_seconds_total{actor="gateway"} 1.25\n' +
      'myetcd_actor_heap_used_bytes{actor="raft"} 99\n';
    const before = parseGcSeconds(text);
    t.deepEqual([...before], [['raft', 0.5], ['gateway', 1.25]]);
    const after = new Map([['raft', 0.75], ['gateway', 1.25]]);
    const c = threadCpu(new Map([[1, 0], [2, 0]]), new Map([[1, 100], [2, 50]]),
      [{ name: 'gateway', tid: 1 }, { name: 'raft', tid: 2 }, { name: 'wal', tid: 3 }], 1000,
      100, { before, after });
    t.deepEqual(c.rows.map((r) => [r.name, r.usPerOp, r.gcUsPerOp]),
      [['gateway', 1000, 0], ['raft', 500, 250]]);
    t.regex(threadCpuMarkdown(c), /\| raft \| 500\.0 \| 250\.0 \| 33 % \|/);
  });

test('threads: the ceiling is 1,000,000 ÷ µs/op; a thread that spent nothing sets none',
  (t) => {
    t.is(ceilingOpsPerSec(25), 40_000);
    t.is(ceilingOpsPerSec(0), Infinity);
    const c = threadCpu(new Map([[1, 5]]), new Map([[1, 5]]), [{ name: 'raft', tid: 1 }], 10,
      100);
    t.is(c.ceilingOpsPerSec, Infinity);
    t.true(Number.isNaN(threadCpu(new Map(), new Map([[1, 5]]), [], 10, 100).ceilingOpsPerSec),
      'no named thread, no ceiling');
  });

test('threads: with the gateway and shards split, the busiest thread left sets the ceiling',
  (t) => {
    for (const n of ['gateway', 'gateway-1', 'gateway-12']) t.is(splitFamily(n), 'gateway', n);
    for (const n of ['shard-0', 'shard-3']) t.is(splitFamily(n), 'shard', n);
    for (const n of ['raft', 'wal', 'lease', 'watch', 'peer', 'gateways', 'shard', 'xgateway']) {
      t.is(splitFamily(n), undefined, n);
    }
    // 100 ticks/s, 1,000 ops: a tick is 10 µs/op. Two gateway threads 40 + 30, two shards
    // 9 + 8, raft 20, wal 12: the gateway (40) is the busiest, raft the busiest of the rest.
    const names = [['gateway', 1], ['gateway-1', 2], ['shard-0', 3], ['shard-1', 4],
      ['raft', 5], ['wal', 6]].map(([name, tid]) => ({ name: name as string, tid: tid as number }));
    const ticks = [4, 3, 0.9, 0.8, 2, 1.2];
    const after = new Map(ticks.map((k, i) => [i + 1, k]));
    const c = threadCpu(new Map(), after, names, 1000, 100);
    t.is(c.busiest?.name, 'gateway');
    t.is(Math.round(c.ceilingOpsPerSec), 25_000, '1,000,000 ÷ 40');
    t.is(c.fixedBusiest?.name, 'raft');
    t.is(Math.round(c.splitCeilingOpsPerSec), 50_000, '1,000,000 ÷ 20');
    const fam = Object.fromEntries(c.families.map((f) => [f.family, f]));
    t.is(Math.round(fam['gateway']!.usPerOp), 70);
    t.is(fam['gateway']!.threadsNow, 2);
    t.is(fam['gateway']!.threadsNeeded, 4, '70 µs/op over threads of at most 20 each');
    t.is(Math.round(fam['shard']!.usPerOp), 17);
    t.is(fam['shard']!.threadsNeeded, 1);
    t.regex(threadCpuMarkdown(c), new RegExp('split across enough threads, the busiest thread ' +
      'that cannot be split sets it: 50,000 ops/s \\(1,000,000 ÷ 20\\.0 µs/op of raft\\), ' +
      'with the gateway\'s 70\\.0 µs/op over 4 threads \\(2 here\\) and the shards\' ' +
      '17\\.0 µs/op over 1 thread \\(2 here\\)\\.'));
    const alone = threadCpu(new Map(), new Map([[1, 5]]), [{ name: 'gateway', tid: 1 }], 10, 100);
    t.is(alone.fixedBusiest, undefined);
    t.true(Number.isNaN(alone.splitCeilingOpsPerSec), 'nothing unsplittable, no split ceiling');
    t.notRegex(threadCpuMarkdown(alone), /split across/);
  });

test('threads: GET /debug/threads names the gateway and every actor with its OS thread id',
  async (t) => {
    const srv = await startServer();
    try {
      const r = await fetch(`${srv.url}/debug/threads`);
      t.is(r.status, 200);
      t.regex(r.headers.get('content-type') ?? '', /application\/json/);
      const j = await r.json() as { pid: number; threads: { name: string; tid: number }[] };
      t.is(j.pid, srv.proc.pid!);
      const names = j.threads.map((x) => x.name);
      for (const n of ['gateway', 'raft', 'wal', 'watch', 'lease']) t.true(names.includes(n), n);
      t.true(names.some((n) => n.startsWith('shard')), names.join(','));
      t.is(j.threads.find((x) => x.name === 'gateway')?.tid, j.pid,
        'the gateway runs on the process\'s main thread, whose tid is the pid');
      t.is(new Set(j.threads.map((x) => x.tid)).size, j.threads.length, 'ids are distinct');
      for (const x of j.threads) {
        const s = parseTaskStat(readFileSync(`/proc/${j.pid}/task/${x.tid}/stat`, 'utf8'));
        t.is(s?.tid, x.tid, `${x.name}'s tid is a thread of the server`);
      }
      const gc = parseGcSeconds(await (await fetch(`${srv.url}/metrics`)).text());
      for (const x of j.threads) t.true(gc.has(x.name), `${x.name} reports its GC pauses`);
    } finally {
      await srv.close();
    }
  });
