import test from 'ava';
import { OccurrenceCounter, ResponseParser, type ResponseHead } from '../bench/http1.js';
import { axisFor, barChartSvg, escapeXml, niceStep, shortNumber } from '../bench/svg.js';
import {
  bucketCount, bucketIndexOf, bucketRange, formatNumber, Histogram, progressBar, ratio,
  summarize,
} from '../bench/stats.js';
import { keyName, makeSource, prefixEndOf, stampOf } from '../bench/workloads.js';
import { seeded } from './helpers/rng.js';

test('bench stats: every value falls inside the range of its bucket, and buckets are ordered',
  (t) => {
    const rnd = seeded(7);
    for (let n = 0; n < 20_000; n++) {
      const v = Math.floor(2 ** (rnd() * 31));
      const i = bucketIndexOf(v);
      const [lo, hi] = bucketRange(i);
      if (!(lo <= v && v <= hi)) t.fail(`value ${v} outside bucket ${i} [${lo}, ${hi}]`);
      if (i < 0 || i >= bucketCount) t.fail(`bucket ${i} out of range`);
    }
    for (let i = 1; i < bucketCount; i++) {
      if (bucketRange(i)[0] !== bucketRange(i - 1)[1] + 1) t.fail(`gap before bucket ${i}`);
    }
    t.deepEqual(bucketRange(bucketIndexOf(1000)), [1000, 1003]);
    t.pass();
  });

test('bench stats: percentiles match sorted samples within the bucket error', (t) => {
  const rnd = seeded(42);
  const h = new Histogram();
  const samples: number[] = [];
  for (let n = 0; n < 50_000; n++) {
    // a long-tailed latency shape: mostly ~1 ms, some ~50 ms
    const v = rnd() < 0.98 ? 500 + rnd() * 1000 : 20_000 + rnd() * 60_000;
    samples.push(v);
    h.record(v);
  }
  samples.sort((a, b) => a - b);
  for (const q of [0.5, 0.9, 0.99, 0.999]) {
    const exact = samples[Math.ceil(q * samples.length) - 1]!;
    const got = h.percentileUs(q);
    t.true(Math.abs(got - exact) / exact < 0.01, `q=${q}: ${got} vs ${exact}`);
  }
  const mean = samples.reduce((a, b) => a + b, 0) / samples.length;
  t.true(Math.abs(h.meanUs() - mean) < 1e-6 * mean);
  t.is(h.percentileUs(0), h.minUs);
  t.is(h.percentileUs(1), h.maxUs);
});

test('bench stats: merging histograms equals recording into one', (t) => {
  const a = new Histogram();
  const b = new Histogram();
  const both = new Histogram();
  for (let v = 1; v <= 10_000; v += 3) {
    (v % 2 ? a : b).record(v);
    both.record(v);
  }
  const merged = Histogram.fromData(a.toData());
  merged.merge(JSON.parse(JSON.stringify(b.toData())));
  t.is(merged.count, both.count);
  t.is(merged.minUs, both.minUs);
  t.is(merged.maxUs, both.maxUs);
  for (const q of [0.1, 0.5, 0.99]) t.is(merged.percentileUs(q), both.percentileUs(q));
});

test('bench stats: an empty histogram summarises to NaN figures, not zeros', (t) => {
  const s = summarize(new Histogram(), 1);
  t.is(s.ops, 0);
  t.true(Number.isNaN(s.p50Ms) && Number.isNaN(s.meanMs) && Number.isNaN(s.maxMs));
  t.is(formatNumber(s.p99Ms), '–');
});

test('bench stats: summarize converts µs to ms and counts per second', (t) => {
  const h = new Histogram();
  for (let i = 0; i < 100; i++) h.record(2000);
  const s = summarize(h, 2);
  t.is(s.opsPerSec, 50);
  t.is(s.meanMs, 2);
  t.true(Math.abs(s.p50Ms - 2) < 0.02);
});

test('bench stats: ratio and number formatting', (t) => {
  t.is(ratio(10, 5), 2);
  t.true(Number.isNaN(ratio(1, 0)));
  t.true(Number.isNaN(ratio(undefined, 3)));
  t.is(formatNumber(12345.6), '12,346');
  t.is(formatNumber(3.214), '3.21');
  t.is(formatNumber(0.04567), '0.0457');
  t.is(formatNumber(0), '0');
  t.is(progressBar(0.5, 10), '█████░░░░░');
  t.is(progressBar(2, 4), '████');
});

test('bench svg: a chart escapes its text and draws one bar per finite value', (t) => {
  const svg = barChartSvg({
    title: 'put <&> get', unit: 'ops/s', series: ['MyEtcd', 'etcd'], log: true,
    groups: [{ label: 'put', values: [1000, 500] }, { label: 'watch', values: [undefined, 20] }],
  });
  t.true(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'));
  t.true(svg.trimEnd().endsWith('</svg>'));
  t.true(svg.includes('put &lt;&amp;&gt; get'));
  t.false(svg.includes('put <&> get'));
  t.is((svg.match(/<\/title><\/rect>/g) ?? []).length, 3);
  t.true(svg.includes('n/a'));
  t.is(escapeXml(`a"b'c`), 'a&quot;b&apos;c');
});

test('bench svg: axes', (t) => {
  const log = axisFor([3, 4500], true);
  t.deepEqual(log.ticks, [1, 10, 100, 1000, 10_000]);
  t.is(log.fraction(100), 0.5);
  const lin = axisFor([0, 87], false);
  t.deepEqual(lin.ticks, [0, 20, 40, 60, 80, 100]);
  t.is(lin.fraction(50), 0.5);
  t.is(lin.fraction(1e9), 1);
  t.is(niceStep(0.3), 0.5);
  t.is(niceStep(13), 20);
  t.is(shortNumber(12_345), '12.3k');
  t.is(shortNumber(0.25), '0.25');
});

function parseAll(bytes: Buffer, cut: number): { heads: ResponseHead[]; bodies: string[] } {
  const heads: ResponseHead[] = [];
  const bodies: string[] = [];
  let body = '';
  const p = new ResponseParser({
    onBody: (d) => { body += d.toString(); },
    onEnd: (h) => {
      heads.push(h);
      bodies.push(body);
      body = '';
    },
  });
  p.feed(bytes.subarray(0, cut));
  p.feed(bytes.subarray(cut));
  return { heads, bodies };
}

test('bench http1: back-to-back Content-Length and chunked responses parse at every split',
  (t) => {
    const wire = Buffer.from(
      'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello' +
      'HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n' +
      '3\r\nabc\r\n4;x=y\r\ndefg\r\n0\r\n\r\n' +
      'HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n');
    for (let cut = 0; cut <= wire.length; cut++) {
      const { heads, bodies } = parseAll(wire, cut);
      t.deepEqual(heads.map((h) => h.status), [200, 404, 200], `cut ${cut}`);
      t.deepEqual(bodies, ['hello', 'abcdefg', ''], `cut ${cut}`);
    }
  });

test('bench http1: occurrences are counted across piece boundaries', (t) => {
  const text = '{"kv":1}{"prev_kv":2}{"kv":3}"kv":';
  for (let cut = 0; cut <= text.length; cut++) {
    const c = new OccurrenceCounter(Buffer.from('"kv":'));
    c.feed(Buffer.from(text.slice(0, cut)));
    c.feed(Buffer.from(text.slice(cut)));
    t.is(c.count, 3, `cut ${cut}`);
  }
});

test('bench workloads: keys, prefix ends, stamps and one-shot sources', (t) => {
  t.is(keyName({ kind: 'flat', prefix: 'k/' }, 42), 'k/00000042');
  t.is(keyName({ kind: 'grouped', prefix: 'r/', groupSize: 100 }, 250), 'r/00000002/00000050');
  t.is(prefixEndOf('a/').toString(), 'a0');
  t.is(stampOf(Buffer.from('123456789;xxx')), 123456789n);
  t.is(stampOf(Buffer.from('xxx')), undefined);
  const space = { kind: 'flat', prefix: 'd/' } as const;
  // two generator processes split the keys between them, each key once
  const seen: string[] = [];
  for (const p of [0, 1]) {
    const src = makeSource({ kind: 'delete', space, count: 5 }, 'h', p, 2);
    for (let r = src.next(); r !== undefined; r = src.next()) {
      const body = JSON.parse(r.toString().split('\r\n\r\n')[1]!) as { key: string };
      seen.push(Buffer.from(body.key, 'base64').toString());
    }
  }
  t.deepEqual(seen.sort(), [0, 1, 2, 3, 4].map((i) => keyName(space, i)));
});
