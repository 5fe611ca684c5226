// Live updates (issue 13's steady cost). By delta: a page showing a live
// host fetches only what changed since the list it holds
// (processes?since=, docs/api.md) and applies it. After churn (exits, new
// pids, a reused pid, renames, moved parents, fields appearing and going,
// hostile text) the page must show exactly what a fresh load shows; a gap
// of several snapshots still goes by delta; a refused or inconsistent
// delta falls back to the whole list. Data goes through the real
// POST /api/v1/ingest of the aggregator run.mjs started.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS, STEP_TIMEOUT, ingest, watchPage } from './lib.mjs';
import { HOSTILE_NAME, smallProcesses, snapshot } from './fixtures.mjs';
import { applyDelta } from '../ui/static/js/api.js';

const BASE = process.env.PROCSCOPE_BASE;
if (!BASE) throw new Error('PROCSCOPE_BASE is not set: run the tests with `node run.mjs`');

const HOST = 'delta-churn';
const KEY = 'key-delta-0123456789';
const T0 = Date.now() - 3600 * 1000;
const BOOT = Date.parse('2026-11-25T08:00:00Z');
const iso = (ms) => new Date(ms).toISOString();
// Tall enough that every row of the host is drawn (the list is virtualised).
const VIEWPORT = { width: 1400, height: 2600 };

let browser;
before(async () => {
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
});
after(async () => {
  await browser?.close();
});

// churn is snapshot k of the host: every few steps processes exit, start
// (below and above the others' pids), a pid is reused, names, parents,
// numbers, command lines and optional fields change.
function churn(k) {
  const procs = smallProcesses().map((p) => ({ ...p }));
  const out = [];
  for (const p of procs) {
    if (k >= 1 && p.pid === 470) continue; // cron exits
    if (k >= 2 && p.pid === 303) continue; // htop exits
    if (p.pid === 452) p.cpu_percent = 7.9 + k * 3.1; // a busy backend
    if (p.pid === 460) p.memory_mb = 2048 + k * 100;
    if (k >= 2 && p.pid === 401) Object.assign(p, { name: 'nginx-renamed', cmdline: `nginx: worker ${k}` });
    if (k >= 3 && p.pid === 302) p.ppid = 300; // reparented
    if (k >= 3 && p.pid === 120) delete p.username; // a field goes
    if (k >= 2 && p.pid === 450) p.read_bytes_per_sec = 4096 * k; // a field appears
    if (k >= 4 && p.pid === 301) Object.assign(p, { name: HOSTILE_NAME, cmdline: '<script>alert(4)</script>', create_time: iso(BOOT + 9e6 + k) }); // pid reused
    if (k % 2 === 1 && p.pid === 1) p.memory_percent = 0.05; // a field that comes and goes
    if (k % 2 === 0 && p.pid === 1) delete p.memory_percent;
    out.push(p);
  }
  for (let j = 1; j <= k; j++) {
    out.push({ pid: 5 + j, ppid: 2, name: `kworker/new:${j}`, cpu_percent: 0.1 * j, memory_mb: 0, username: 'root', status: 'idle', create_time: iso(BOOT + 5e6 + j) });
    out.push({ pid: 9000 + j, ppid: 1, name: `job-${j}`, cpu_percent: j, memory_mb: 3 * j, username: 'app', status: 'running', create_time: iso(BOOT + 6e6 + j), cmdline: `/usr/bin/job --n ${j}` });
  }
  return out.sort((a, b) => a.pid - b.pid);
}

let pushed = 0;
let lastCount = 0; // processes in the last snapshot pushed
async function push(k) {
  pushed++;
  const procs = churn(k);
  lastCount = procs.length;
  const r = await ingest(BASE, KEY, snapshot(HOST, iso(T0 + pushed * 2000), procs));
  return r.snapshot_id;
}

// shows waits until the page shows snapshot id: its line (drawn before the
// list comes) and the list's count (each step of churn has another).
const shows = (page, id) => page.waitForFunction(([i, n]) => (document.getElementById('snap-meta')?.textContent ?? '').includes(`snapshot ${i} `) &&
  document.getElementById('match-count')?.textContent === `${n} processes`, [id, lastCount]);

// shown is everything the process list shows, row by row: every cell's
// text (the label holds the name, badges and command line) and the start
// cell's full time (its text is an age that moves on), the tree levels,
// and the process count.
async function shown(page) {
  return page.evaluate(() => ({
    count: document.getElementById('match-count').textContent,
    rows: Array.from(document.querySelectorAll('#viewport .row:not([hidden])'))
      .sort((a, b) => Number(a.getAttribute('aria-rowindex')) - Number(b.getAttribute('aria-rowindex')))
      .map((el) => [el.getAttribute('aria-rowindex'), el.getAttribute('aria-level'),
        ...Array.from(el.querySelectorAll('.c'), (c) => (c.classList.contains('c-start') ? c.title : c.textContent))].join(' | ')),
  }));
}

// sameAsFresh: a page loaded now on the same URL shows what page shows,
// in the flat list by pid and in the tree expanded.
async function sameAsFresh(ctx, page, id, what) {
  const fresh = await ctx.newPage();
  fresh.setDefaultTimeout(STEP_TIMEOUT);
  await fresh.goto(page.url());
  await shows(fresh, id);
  const a = await shown(page);
  const b = await shown(fresh);
  assert.equal(a.rows.length, b.rows.length, `${what}: row count`);
  assert.ok(a.rows.length > 25, `${what}: all rows drawn (${a.rows.length})`);
  assert.deepEqual(a, b, `${what}: the flat list equals a fresh load's`);
  for (const p of [page, fresh]) {
    await p.click('#view-tree');
    await p.click('#expand-all');
  }
  assert.deepEqual(await shown(page), await shown(fresh), `${what}: the tree equals a fresh load's`);
  await page.click('#view-flat');
  await fresh.close();
}

test('a live page applies deltas and equals a fresh load after churn, across a gap, and falls back when refused', async () => {
  let id = await push(0);
  const ctx = await browser.newContext({ viewport: VIEWPORT, baseURL: BASE });
  const page = await ctx.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT);
  const problems = watchPage(page, (m) => /status of 40[04]/.test(m.text()));
  const lists = [];
  page.on('request', (r) => {
    const m = r.url().match(/\/api\/v1\/snapshots\/(\d+)\/processes(?:\?since=(\d+))?$/);
    if (m) lists.push({ id: Number(m[1]), since: m[2] === undefined ? null : Number(m[2]) });
  });
  await page.goto(`/?${new URLSearchParams({ host: HOST, view: 'flat', sort: 'pid' })}`);
  await shows(page, id);
  // Whole (twice when the stream's first refresh overtakes the first load).
  assert.ok(lists.length >= 1 && lists.every((l) => l.id === id && l.since === null), `the first list is fetched whole: ${JSON.stringify(lists)}`);
  const loaded = lists.length;

  // Live churn: each snapshot by delta from the one shown.
  for (let k = 1; k <= 4; k++) {
    const prev = id;
    id = await push(k);
    await shows(page, id);
    assert.deepEqual(lists.at(-1), { id, since: prev }, `snapshot ${k} came as a delta since the one shown`);
  }
  assert.equal(lists.slice(loaded).filter((l) => l.since === null).length, 0, 'no whole list after the first');
  await sameAsFresh(ctx, page, id, 'after churn');

  // A gap: live updates off while three snapshots arrive; back on, one
  // delta over the three.
  const held = id;
  await page.uncheck('#auto');
  for (let k = 5; k <= 7; k++) id = await push(k);
  await page.check('#auto');
  await shows(page, id);
  assert.deepEqual(lists.at(-1), { id, since: held }, 'one delta across the gap');
  await sameAsFresh(ctx, page, id, 'after a gap');

  // The held snapshot is gone (retention): the server's 404 sends the page
  // to the whole list.
  await page.route(/\/processes\?since=/, (route) => route.fulfill({
    status: 404, contentType: 'application/json; charset=utf-8',
    body: JSON.stringify({ error: 'since: no such snapshot (unknown, or deleted by retention): fetch the processes without since' }),
  }));
  const before404 = lists.length;
  id = await push(8);
  await shows(page, id);
  assert.deepEqual(lists.slice(before404).map((l) => l.since === null), [false, true], 'a refused delta, then the whole list');
  await page.unroute(/\/processes\?since=/);
  await sameAsFresh(ctx, page, id, 'after a refused delta');

  // An answer that does not fit the list held (a count off): whole list.
  await page.route(/\/processes\?since=/, async (route) => {
    const res = await route.fetch();
    const d = await res.json();
    await route.fulfill({ response: res, body: JSON.stringify({ ...d, process_count: d.process_count + 1 }) });
  });
  const beforeBad = lists.length;
  id = await push(9);
  await shows(page, id);
  assert.deepEqual(lists.slice(beforeBad).map((l) => l.since === null), [false, true], 'an inconsistent delta, then the whole list');
  await page.unroute(/\/processes\?since=/);
  await sameAsFresh(ctx, page, id, 'after an inconsistent delta');

  // And live deltas resume from there.
  const prev = id;
  id = await push(10);
  await shows(page, id);
  assert.deepEqual(lists.at(-1), { id, since: prev });
  assert.deepEqual(problems, []);
  await ctx.close();
});

test('applyDelta refuses what does not fit and keeps the unchanged rows', () => {
  const held = [{ pid: 1, n: 'a' }, { pid: 3, n: 'c' }, { pid: 5, n: 'e' }];
  const got = applyDelta(held, { process_count: 3, changed: [{ pid: 2, n: 'b' }, { pid: 5, n: 'E' }], gone: [3] });
  assert.deepEqual(got, [{ pid: 1, n: 'a' }, { pid: 2, n: 'b' }, { pid: 5, n: 'E' }]);
  assert.equal(got[0], held[0], 'an unchanged row is the held object');
  assert.deepEqual(applyDelta(held, { process_count: 2, changed: [], gone: [5], pids: [3, 1] }), [held[1], held[0]], 'the order of pids');
  for (const [what, d] of [
    ['count off', { process_count: 4, changed: [], gone: [] }],
    ['gone not held', { process_count: 2, changed: [], gone: [4] }],
    ['pids not the rows', { process_count: 3, changed: [], gone: [], pids: [1, 3, 3] }],
    ['pids too short', { process_count: 3, changed: [], gone: [], pids: [1, 3] }],
    ['a row without pid', { process_count: 3, changed: [{ n: 'x' }], gone: [] }],
    ['not a delta', { error: 'x' }],
  ]) assert.equal(applyDelta(held, d), null, what);
});

// A live snapshot that changes numbers, and replaces one process by
// another on screen, is drawn into the text nodes already there: nothing
// inserted or removed in the list. The snapshot line and the list change
// in the same task (one frame to lay out and paint). The fleet table,
// hidden on a host's pages, is not redrawn there, and shows the fleet
// fetched meanwhile once it is shown.
test('a live snapshot rewrites text in place, lands with its snapshot line, and the hidden fleet table is left alone', async () => {
  const host = 'live-redraw';
  const key = 'key-redraw-0123456789';
  const base = smallProcesses();
  let t = T0;
  const send = async (procs) => (await ingest(BASE, key, snapshot(host, iso((t += 2000)), procs))).snapshot_id;
  let id = await send(base);
  const ctx = await browser.newContext({ viewport: VIEWPORT, baseURL: BASE });
  const page = await ctx.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT);
  const problems = watchPage(page);
  await page.goto(`/?${new URLSearchParams({ host, view: 'flat' })}`);
  await page.waitForFunction(([i, n]) => (document.getElementById('snap-meta')?.textContent ?? '').includes(`snapshot ${i} `) &&
    document.getElementById('match-count')?.textContent === `${n} processes`, [id, base.length]);
  await page.evaluate(() => {
    window.__batches = [];
    const vp = document.getElementById('viewport');
    const meta = document.getElementById('snap-meta');
    const fleet = document.getElementById('panel-fleet');
    new MutationObserver((ms) => {
      const b = { meta: '', inserted: 0, removed: 0, text: 0, fleet: 0 };
      for (const m of ms) {
        // (main.js sets the panel's hidden again and again: not a redraw)
        if (fleet.contains(m.target) && m.target !== fleet) b.fleet++;
        if (meta.contains(m.target)) b.meta = meta.textContent;
        if (!vp.contains(m.target)) continue;
        if (m.type === 'characterData') b.text++;
        b.inserted += m.addedNodes.length;
        b.removed += m.removedNodes.length;
      }
      window.__batches.push(b);
    }).observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true });
  });
  // Numbers move (the order by CPU with them), cron (470) exits and a new
  // process takes its row: as many rows as before.
  const next = base.filter((p) => p.pid !== 470).map((p) => (p.pid === 452 ? { ...p, cpu_percent: 95 } : p.pid === 460 ? { ...p, memory_mb: 3000 } : p));
  next.push({ pid: 471, ppid: 1, name: 'atd', cpu_percent: 0.1, memory_mb: 1.5, username: 'daemon', status: 'sleeping', num_threads: 1, create_time: iso(BOOT + 471000), cmdline: '/usr/sbin/atd -f' });
  id = await send(next);
  await page.waitForFunction(() => Array.from(document.querySelectorAll('#viewport .row:not([hidden]) .nm'), (e) => e.textContent).includes('atd'));
  const batches = await page.evaluate(() => window.__batches);
  const sum = (k) => batches.reduce((a, b) => a + b[k], 0);
  assert.equal(sum('inserted') + sum('removed'), 0, `no node inserted or removed in the list: ${JSON.stringify(batches)}`);
  assert.ok(sum('text') > 0, 'text was rewritten');
  const landed = batches.find((b) => b.meta.includes(`snapshot ${id} `));
  assert.ok(landed && landed.text > 0, `the snapshot line and the list change together: ${JSON.stringify(batches)}`);

  // The fleet is fetched on a host's page (host status); its hidden table
  // is not drawn. Another host arrives meanwhile.
  const other = 'live-redraw-other';
  await ingest(BASE, 'key-redraw-other-0123', snapshot(other, iso(t), smallProcesses()));
  const fleetAnswer = page.waitForResponse((r) => r.url().endsWith('/api/v1/fleet') && r.status() === 200);
  await page.click('#refresh');
  await fleetAnswer;
  await page.waitForFunction((o) => Array.from(document.querySelectorAll('#hosts button.host'), (b) => b.dataset.host).includes(o), other);
  assert.equal(await page.evaluate(() => window.__batches.reduce((a, b) => a + b.fleet, 0)), 0, 'the hidden fleet table was not redrawn');
  // Shown, it has what was fetched.
  await page.keyboard.press('g');
  await page.waitForSelector(`#panel-fleet tr[data-host="${other}"]`, { state: 'visible' });
  assert.deepEqual(problems, []);
  await ctx.close();
});

// The host switcher redraws every 5 s (its "ago" times age): each host
// keeps its row, and only the text that changed is written, so the list
// is not rebuilt (200 rows on a big fleet) and focus never moves.
test('the host switcher ages its times in place: no row rebuilt, focus kept', async () => {
  const ctx = await browser.newContext({ viewport: { width: 1400, height: 900 }, baseURL: BASE });
  const page = await ctx.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT);
  const problems = watchPage(page);
  // Seen just now: its "ago" counts seconds for the next minute.
  await push(1);
  await page.goto(`/?${new URLSearchParams({ host: HOST, tab: 'processes' })}`);
  await page.waitForSelector(`#hosts button.host[data-host="${HOST}"]`);
  await page.focus(`#hosts button.host[data-host="${HOST}"]`);
  const before = await page.evaluate(() => {
    window.__hosts = { inserted: 0, removed: 0, text: 0 };
    window.__focused = document.activeElement;
    new MutationObserver((ms) => {
      for (const m of ms) {
        if (m.type === 'characterData') window.__hosts.text++;
        window.__hosts.inserted += m.addedNodes.length;
        window.__hosts.removed += m.removedNodes.length;
      }
    }).observe(document.getElementById('hosts'), { subtree: true, childList: true, characterData: true });
    return document.querySelector('#hosts button.host.sel .seen').textContent;
  });
  // Two of its 5 s redraws (bounded: 12 s).
  await page.waitForFunction((b) => window.__hosts.text > 0 && document.querySelector('#hosts button.host.sel .seen').textContent !== b, before, { timeout: 12000 });
  await page.waitForTimeout(5500);
  const got = await page.evaluate(() => ({ ...window.__hosts, focusKept: document.activeElement === window.__focused }));
  assert.equal(got.inserted + got.removed, 0, `no row inserted or removed: ${JSON.stringify(got)}`);
  assert.ok(got.text > 0, 'the "ago" text was rewritten in place');
  assert.ok(got.focusKept, 'focus stayed on the same button');
  assert.deepEqual(problems, []);
  await ctx.close();
});
