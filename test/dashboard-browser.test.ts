import test from 'ava';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import puppeteer from 'puppeteer-core';
import { startServer, type TestServer } from './helpers/server.js';

// The dashboard in a real browser (issue 16): Debian's Chromium, headless, driven by
// puppeteer-core, loads /dashboard of a running server, sees the member and actor tables
// fill from /debug/dashboard, presses "trace a PUT" and finds the PUT's waterfall across the
// actor threads. Screenshots are kept in test-artifacts/ (docs/observability.md shows two).
// Every wait is on the page's state (waitForFunction), never on time.

const chromium = '/usr/bin/chromium';
const artifacts = new URL('../../test-artifacts/', import.meta.url).pathname;
/** waitMs bounds each wait: far above a real page update, reached only when one never comes. */
const waitMs = 60_000;

/** document is the page's, inside the functions the browser runs (this file has no DOM lib). */
declare const document: {
  querySelectorAll(sel: string): ArrayLike<PageElement> & Iterable<PageElement>;
  getElementById(id: string): PageElement | null;
};
interface PageElement {
  textContent: string | null;
  getAttribute(name: string): string | null;
  querySelectorAll(sel: string): ArrayLike<PageElement> & Iterable<PageElement>;
}

let srv: TestServer | undefined;

test.after.always(async () => {
  await srv?.shutdown();
});

(existsSync(chromium) ? test : test.skip)('dashboard: a headless Chromium sees the tables ' +
  'fill and the waterfall of a traced PUT', async (t) => {
  srv = await startServer();
  const profile = mkdtempSync(join(tmpdir(), 'myetcd-dashboard-'));
  t.teardown(() => rmSync(profile, { recursive: true, force: true }));
  const browser = await puppeteer.launch({
    executablePath: chromium, headless: true, pipe: true, userDataDir: profile,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--no-proxy-server'],
  });
  t.teardown(() => browser.close().catch(() => undefined));
  mkdirSync(artifacts, { recursive: true });
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 1000 });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(`${srv.url}/dashboard`);

  // The member table: this member, leading, healthy.
  await page.waitForFunction(() => {
    const rows = document.querySelectorAll('#members tbody tr');
    return rows.length === 1 && /leader/.test(rows[0]!.textContent ?? '') &&
      /healthy/.test(rows[0]!.textContent ?? '');
  }, { timeout: waitMs });
  // The actor table: the gateway and every actor thread (two shards in the test server).
  await page.waitForFunction(() => {
    const names = [...document.querySelectorAll('#actors tbody tr td:first-child')]
      .map((td) => td.textContent);
    return ['gateway', 'raft', 'wal', 'shard-0', 'shard-1', 'watch', 'lease']
      .every((n) => names.includes(n));
  }, { timeout: waitMs });
  const actorRows = await page.$$eval('#actors tbody tr', (rows) => rows.map(
    (r) => [...(r as unknown as PageElement).querySelectorAll('td')]
      .map((td) => td.textContent ?? '')));
  t.true(actorRows.every((cells) => cells.length === 10), 'every column filled');
  t.true(actorRows.some((cells) => cells[1] === 'myetcd-raft'));

  // Some traffic, so that the request table fills and the key browser has something.
  for (let i = 0; i < 5; i++) {
    const r = await fetch(`${srv.url}/v1/key/dashboard/k${i}`,
      { method: 'PUT', body: JSON.stringify({ value: `v${i}` }) });
    t.is(r.status, 200);
  }
  await page.waitForFunction(() => [...document.querySelectorAll('#routes tbody tr')]
    .some((r) => /PUT \/v1\/key/.test(r.textContent ?? '')), { timeout: waitMs });
  await page.click('#keyForm button');
  await page.waitForFunction(() => document.querySelectorAll('#keys tbody tr').length >= 5,
    { timeout: waitMs });

  await page.click('#tracePut');
  const lanes = await page.waitForFunction(() => {
    const w = document.getElementById('waterfall');
    if (w === null || w.getAttribute('data-trace') === null) return undefined;
    // A gateway thread's lane (MYETCD_EXPERIMENTAL_GATEWAY_THREADS) counts as the gateway's.
    const spans = [...w.querySelectorAll('.lane')].map((l) =>
      `${l.getAttribute('data-actor')?.replace(/^gateway-\d+$/, 'gateway')} ` +
      `${l.getAttribute('data-span')}`);
    const need = ['gateway PUT /v1/key/*', 'raft RaftPropose', 'wal WalAppend',
      'wal wal write+fsync', 'raft raft commit+apply'];
    return need.every((n) => spans.includes(n)) && spans.some((s) => s.startsWith('shard-'))
      ? spans : undefined;
  }, { timeout: waitMs });
  const spans = await lanes.jsonValue() as string[];
  t.log(spans.join('\n'));
  const traceId = await page.$eval('#waterfall',
    (w) => (w as unknown as PageElement).getAttribute('data-trace'));
  t.regex(traceId ?? '', /^[0-9a-f]{32}$/);
  // The page draws what the server recorded for that trace.
  const j = await (await fetch(`${srv.url}/debug/traces?trace=${traceId}`)).json() as
    { traces: { spans: unknown[] }[] };
  t.true(j.traces[0]!.spans.length >= spans.length);
  await page.screenshot({ path: join(artifacts, 'dashboard.png'), fullPage: true });
  const traces = await page.$('#traces');
  await traces!.screenshot({ path: join(artifacts, 'dashboard-trace.png') });
  t.deepEqual(errors, [], 'no script error on the page');
});
