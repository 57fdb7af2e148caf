/**
 * dashboardHtml is the page `GET /dashboard` serves: plain HTML, CSS and browser JavaScript in
 * one document (no build step, no framework, nothing fetched from elsewhere). It polls
 * `/debug/dashboard` once a second and renders the members, the actor threads, the routes,
 * the WAL and the watch/lease counts; its trace view draws `/debug/traces` as waterfalls with
 * one lane per actor thread; its key browser pages through `/v1/keys` and walks a key's
 * history back through `/v1/key/<key>?revision=n`; its watch panel is an EventSource on
 * `/v1/watch`. Every value from the server is put in the page as text, never as HTML.
 * (It lives in a .ts module so that the compiled server carries it; the JavaScript inside
 * avoids template literals, which this string cannot hold.)
 */
export const dashboardHtml = String.raw`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>MyEtcd dashboard</title>
<style>
body { font: 13px/1.35 system-ui, sans-serif; margin: 0; background: #f6f7f9; color: #1d2330; }
header { background: #1d2330; color: #fff; padding: 8px 16px; display: flex; gap: 16px;
  align-items: baseline; }
header h1 { font-size: 16px; margin: 0; }
header .muted { color: #aab; }
main { display: grid; grid-template-columns: 1fr 1fr; gap: 12px; padding: 12px; }
section { background: #fff; border: 1px solid #dde; border-radius: 6px; padding: 8px 12px;
  overflow: auto; }
section.wide { grid-column: 1 / 3; }
h2 { font-size: 14px; margin: 2px 0 6px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: right; padding: 2px 6px; border-bottom: 1px solid #eef; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
th { font-weight: 600; color: #556; }
tr.hot td { background: #fff1e0; }
.ok { color: #197a3a; } .bad { color: #b3261e; font-weight: 600; }
button { font: inherit; padding: 3px 10px; cursor: pointer; }
input { font: inherit; padding: 2px 4px; }
.kv { display: flex; gap: 18px; flex-wrap: wrap; }
.kv div b { display: block; font-size: 18px; }
.lane { display: grid; grid-template-columns: 260px 1fr; align-items: center; height: 20px; }
.lane .label { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.lane .track { position: relative; height: 14px; background: #f3f4f8; }
.lane .bar { position: absolute; top: 0; height: 14px; min-width: 2px; border-radius: 2px; }
.lane .wait { position: absolute; top: 5px; height: 4px; background: #c9ccd6; }
.lane .ms { position: absolute; font-size: 11px; top: 0; white-space: nowrap; color: #333; }
#traces li { cursor: pointer; } #traces li.sel { font-weight: 600; }
#traces ul { margin: 0; padding-left: 18px; max-height: 160px; overflow: auto; }
#events { max-height: 220px; overflow: auto; font-family: ui-monospace, monospace; }
.small { font-size: 11px; color: #667; }
</style></head>
<body>
<header><h1>MyEtcd</h1><span id="who" class="muted">connecting…</span>
<span id="status" class="muted"></span></header>
<main>
<section><h2>Members</h2><table id="members"><thead><tr><th>member</th><th>role</th>
<th>term</th><th>commit</th><th>applied</th><th>revision</th><th>health</th></tr></thead>
<tbody></tbody></table></section>
<section><h2>Storage</h2><div class="kv" id="wal"></div></section>
<section class="wide"><h2>Actor threads <span class="small">(the busiest is highlighted:
the bottleneck under load)</span></h2><table id="actors"><thead><tr><th>actor</th>
<th>thread</th><th>mailbox</th><th>msgs in/s</th><th>msgs out/s</th><th>batches in/s</th>
<th>msgs/batch</th><th>busy %</th><th>heap MiB</th><th>restarts</th></tr></thead>
<tbody></tbody></table></section>
<section class="wide"><h2>Requests</h2><table id="routes"><thead><tr><th>route</th>
<th>req/s</th><th>p50 ms</th><th>p90 ms</th><th>p99 ms</th><th>max ms</th></tr></thead>
<tbody></tbody></table></section>
<section class="wide" id="traces"><h2>Traces <button id="tracePut">trace a PUT</button>
<button id="traceGet">trace a GET</button> <span class="small" id="traceNote">a traced
request records each hop across the actor threads: queue wait (grey), handling (colour)</span>
</h2><ul id="traceList"></ul><div id="waterfall"></div></section>
<section><h2>Keys</h2><form id="keyForm">prefix <input id="prefix" value="">
<button>list</button> <button type="button" id="more" disabled>next page</button></form>
<table id="keys"><thead><tr><th>key</th><th>value</th><th>version</th><th>mod rev</th></tr>
</thead><tbody></tbody></table><div id="history"></div></section>
<section><h2>Watch</h2><form id="watchForm">prefix <input id="watchPrefix" value="">
<button>watch</button> <button type="button" id="unwatch">stop</button></form>
<div id="events"></div></section>
</main>
<script>
'use strict';
var laneColors = { gateway: '#3b6fd8', raft: '#d8553b', wal: '#8a3bd8', watch: '#2b9c6b',
  lease: '#c79a12', peer: '#666' };
function el(tag, attrs) {
  var e = document.createElement(tag);
  for (var k in (attrs || {})) {
    if (k === 'text') e.textContent = attrs[k]; else if (k === 'style') e.style.cssText = attrs[k];
    else e.setAttribute(k, attrs[k]);
  }
  for (var i = 2; i < arguments.length; i++) if (arguments[i] != null) e.append(arguments[i]);
  return e;
}
function $(id) { return document.getElementById(id); }
function row(cells, cls) {
  var tr = el('tr', cls ? { class: cls } : {});
  cells.forEach(function (c) { tr.append(c instanceof Node ? el('td', {}, c)
    : el('td', { text: String(c) })); });
  return tr;
}
function fill(id, rows) { var tb = $(id).tBodies[0]; tb.replaceChildren.apply(tb, rows); }
function fmt(n) { return typeof n === 'number' ? (Math.round(n * 100) / 100).toString() : '–'; }
function laneColor(actor) {
  if (laneColors[actor]) return laneColors[actor];
  if (actor.indexOf('shard') === 0) return '#1a8fb0';
  return '#777';
}

function render(d) {
  $('who').textContent = 'member ' + d.self.id + (d.self.name ? ' (' + d.self.name + ')' : '') +
    ' · ' + d.self.role + ' · term ' + d.self.term;
  $('status').textContent = 'updated ' + new Date(d.timeMs).toLocaleTimeString();
  fill('members', d.members.map(function (m) {
    var health = el('span', { class: m.healthy ? 'ok' : 'bad',
      text: m.healthy ? 'healthy' : (m.error || 'unhealthy') });
    return row([m.id + (m.name ? ' ' + m.name : '') + (m.self ? ' (this)' : ''),
      m.role || '–', fmt(m.term), fmt(m.commit), fmt(m.applied), fmt(m.revision), health]);
  }));
  var busiest = d.actors.reduce(function (a, b) { return b.busyPercent > a.busyPercent ? b : a; },
    d.actors[0]);
  fill('actors', d.actors.map(function (a) {
    return row([a.actor, a.thread, a.mailboxDepth, fmt(a.messagesInPerSec),
      fmt(a.messagesOutPerSec), fmt(a.batchesInPerSec), fmt(a.messagesPerBatch),
      fmt(a.busyPercent), fmt(a.heapUsedBytes / 1048576), a.restarts],
    a === busiest && a.busyPercent > 0 ? 'hot' : '');
  }));
  fill('routes', d.routes.map(function (r) {
    return row([r.route, fmt(r.requestsPerSec), fmt(r.p50Ms), fmt(r.p90Ms), fmt(r.p99Ms),
      fmt(r.maxMs)]);
  }));
  var w = d.wal;
  $('wal').replaceChildren(
    el('div', {}, el('b', { text: fmt(w.fsyncsPerSec) }), 'fsyncs/s'),
    el('div', {}, el('b', { text: fmt(w.fsyncP50Ms) + ' / ' + fmt(w.fsyncP99Ms) }),
      'fsync p50 / p99 ms'),
    el('div', {}, el('b', { text: fmt(w.entriesPerFsync) + ' (max ' + w.entriesPerFsyncMax +
      ')' }), 'entries per group commit'),
    el('div', {}, el('b', { text: String(d.watchers) }), 'watchers (' + d.watchStreams +
      ' streams)'),
    el('div', {}, el('b', { text: String(d.leases) }), 'leases'));
}

var polling = false;
function poll() {
  if (polling) return;
  polling = true;
  fetch('/debug/dashboard').then(function (r) { return r.json(); }).then(function (d) {
    if (d.self) render(d); else $('status').textContent = 'error: ' + JSON.stringify(d);
  }).catch(function (e) { $('status').textContent = 'unreachable: ' + e; })
    .finally(function () { polling = false; });
}
setInterval(poll, 1000);
poll();

// ---- Traces ----
var selected = null;
function loadTraces() {
  return fetch('/debug/traces?limit=30').then(function (r) { return r.json(); })
    .then(function (j) {
      $('traceList').replaceChildren.apply($('traceList'), j.traces.map(function (t) {
        var li = el('li', { text: new Date(t.startUnixMs).toLocaleTimeString() + ' ' + t.name +
          ' — ' + fmt(t.durationMs) + ' ms, ' + t.spans.length + ' spans' });
        if (selected === t.traceId) li.className = 'sel';
        li.onclick = function () { selected = t.traceId; drawTrace(t); loadTraces(); };
        return li;
      }));
      return j.traces;
    });
}
function drawTrace(t) {
  var total = Math.max(t.durationMs, 0.001);
  var byId = {};
  t.spans.forEach(function (s) { byId[s.spanId] = s; });
  function depth(s) { var n = 0; while (s.parentSpanId && byId[s.parentSpanId] && n < 20) {
    s = byId[s.parentSpanId]; n++; } return n; }
  var lanes = t.spans.map(function (s) {
    var a = s.attributes || {};
    var actor = String(a.actor || '?');
    var wait = Number(a['queue.wait_ms'] || 0);
    var left = s.startMs / total * 100;
    var width = Math.max(s.durationMs / total * 100, 0.2);
    var waitLeft = Math.max(0, (s.startMs - wait) / total * 100);
    var title = actor + ' · ' + s.name + '\nthread ' + a.thread + '\nstart +' + fmt(s.startMs) +
      ' ms, ' + fmt(s.durationMs) + ' ms' + (wait ? '\nqueue wait ' + fmt(wait) + ' ms' : '') +
      (a['batch.size'] ? '\nbatch of ' + a['batch.size'] + ' messages, ' + a['batch.traced'] +
      ' traced' : '') + (a['handle_ms'] !== undefined ? '\nhandling ' + a['handle_ms'] + ' ms'
      : '') + (a['write_fsync_ms'] !== undefined ? '\nwrite+fsync ' + a['write_fsync_ms'] +
      ' ms for ' + a['wal.entries'] + ' entries (' + a['wal.appends'] + ' appends)' : '');
    var track = el('div', { class: 'track', title: title },
      wait ? el('div', { class: 'wait', style: 'left:' + waitLeft + '%;width:' +
        Math.max(left - waitLeft, 0) + '%' }) : null,
      el('div', { class: 'bar', style: 'left:' + left + '%;width:' + width +
        '%;background:' + laneColor(actor) }),
      // The figure goes after the bar, or before it when the bar reaches the right edge.
      el('span', { class: 'ms', text: fmt(s.durationMs) + ' ms', style: left + width < 88
        ? 'left:' + (left + width + 0.5) + '%'
        : 'right:' + (100 - left + 0.5) + '%;background:#f3f4f8' }));
    var label = el('div', { class: 'label', title: title,
      style: 'padding-left:' + depth(s) * 10 + 'px' },
      el('b', { text: actor + ' ', style: 'color:' + laneColor(actor) }), s.name);
    return el('div', { class: 'lane', 'data-actor': actor, 'data-span': s.name }, label, track);
  });
  var head = el('div', { class: 'small', text: 'trace ' + t.traceId + ' · ' + t.name + ' · ' +
    fmt(t.durationMs) + ' ms across ' + new Set(t.spans.map(function (s) {
      return s.attributes.thread; })).size + ' threads' });
  $('waterfall').replaceChildren.apply($('waterfall'), [head].concat(lanes));
  $('waterfall').setAttribute('data-trace', t.traceId);
}
function traced(method, path, body) {
  $('traceNote').textContent = 'tracing ' + method + ' ' + path + '…';
  return fetch(path, { method: method, body: body, headers: { 'x-myetcd-trace': '1' } })
    .then(function (r) {
      var id = r.headers.get('x-myetcd-trace-id');
      if (!id) throw new Error('the answer names no trace');
      // The last spans (the apply's sends) are recorded just after the answer: look twice.
      return new Promise(function (ok) { setTimeout(ok, 150); }).then(function () {
        return fetch('/debug/traces?trace=' + id); }).then(function (r2) { return r2.json(); })
        .then(function (j) {
          var t = j.traces[0];
          if (!t) throw new Error('trace ' + id + ' not found');
          selected = t.traceId;
          drawTrace(t);
          $('traceNote').textContent = method + ' ' + path + ': ' + fmt(t.durationMs) +
            ' ms, ' + t.spans.length + ' spans';
          return loadTraces();
        });
    }).catch(function (e) { $('traceNote').textContent = 'failed: ' + e; });
}
$('tracePut').onclick = function () {
  traced('PUT', '/v1/key/dashboard/traced', JSON.stringify({ value: 'at ' +
    new Date().toISOString() }));
};
$('traceGet').onclick = function () { traced('GET', '/v1/key/dashboard/traced'); };
loadTraces();

// ---- Keys ----
var cursor = null;
function listKeys(more) {
  var q = '/v1/keys?limit=20&prefix=' + encodeURIComponent($('prefix').value);
  if (more && cursor) q += '&cursor=' + encodeURIComponent(cursor);
  fetch(q).then(function (r) { return r.json(); }).then(function (j) {
    if (!j.ok) { fill('keys', [row([j.error.message, '', '', ''])]); return; }
    cursor = j.data.more ? j.data.cursor : null;
    $('more').disabled = !cursor;
    fill('keys', j.data.kvs.map(function (kv) {
      var a = el('a', { href: '#', text: kv.key });
      a.onclick = function (e) { e.preventDefault(); keyHistory(kv.key); };
      return row([a, kv.value.length > 40 ? kv.value.slice(0, 40) + '…' : kv.value,
        kv.version, kv.modRevision]);
    }));
  });
}
function keyHistory(key) {
  var out = el('table', {}, el('thead', {}, el('tr', {}, el('th', { text: 'revision' }),
    el('th', { text: 'version' }), el('th', { text: 'value' }))));
  var tb = el('tbody');
  out.append(tb);
  $('history').replaceChildren(el('h2', { text: 'History of ' + key }), out);
  function step(rev, n) {
    if (n >= 20) return;
    var q = '/v1/key/' + key.split('/').map(encodeURIComponent).join('/') +
      (rev ? '?revision=' + rev : '');
    fetch(q).then(function (r) { return r.json(); }).then(function (j) {
      if (!j.ok) { if (n === 0 || j.error.code !== 'KEY_NOT_FOUND') tb.append(row([
        j.error.message, '', ''])); return; }
      tb.append(row([j.data.modRevision, j.data.version, j.data.value]));
      if (j.data.version > 1) step(j.data.modRevision - 1, n + 1);
    });
  }
  step(0, 0);
}
$('keyForm').onsubmit = function (e) { e.preventDefault(); cursor = null; listKeys(false); };
$('more').onclick = function () { listKeys(true); };
listKeys(false);

// ---- Watch ----
var es = null;
$('watchForm').onsubmit = function (e) {
  e.preventDefault();
  if (es) es.close();
  $('events').replaceChildren();
  es = new EventSource('/v1/watch?prefix=true&key=' +
    encodeURIComponent($('watchPrefix').value));
  es.onmessage = function (m) {
    var d = JSON.parse(m.data);
    (d.events || []).forEach(function (ev) {
      $('events').prepend(el('div', { text: 'rev ' + ev.modRevision + ' ' + ev.type + ' ' +
        ev.key + (ev.type === 'PUT' ? ' = ' + ev.value : '') }));
    });
    if (d.created) $('events').prepend(el('div', { class: 'small',
      text: 'watching from revision ' + d.revision }));
  };
};
$('unwatch').onclick = function () { if (es) es.close(); es = null; };
</script>
</body></html>
`;
