// Browser tests of the History tab (issue 13, point 4): presets fitted to a
// new host, drag-zoom and reset, one crosshair across the charts, the click
// menu snapping to stored snapshots, marked moments, live appends, every
// chart with data, and short retrying messages instead of raw errors.
// Debian's Chromium through playwright-core against the real aggregator
// that run.mjs started; data goes in through the real POST /api/v1/ingest.
//   UPDATE_SCREENSHOTS=1 node run.mjs history.test.mjs   # also rewrites docs/history.png
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS, STEP_TIMEOUT, axe, ingest, rows, startAggregator, stopAggregator, waitSeries, watchPage } from './lib.mjs';
import { smallProcesses, snapshot } from './fixtures.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const ART = join(here, 'artifacts');
const DOCS = join(here, '..', '..', 'docs');
mkdirSync(ART, { recursive: true });
if (!process.env.PROCSCOPE_BASE) throw new Error('PROCSCOPE_BASE is not set: run the tests with `node run.mjs`');
// An aggregator of its own (the binary run.mjs uses): the hosts ingested
// here must not show up in ui.test.mjs's host list, and a fresh store makes
// "a new host" really new.
const BIN = resolve(process.env.PROCSCOPE_AGGREGATOR || join(here, '..', '..', 'bin', 'procscope-aggregator'));
let agg = null;
let BASE = '';

const HOST = 'hist-fresh.example';
const KEY = 'key-hist-fresh-0123456789';
const EVERY_S = 5; // the host's push interval
const COUNT = 48; // four minutes of snapshots: the default range is 5m
const CHARTS = ['%', 'bytes', 'proc-cpu', 'proc-mem', 'load', 'swap', 'fs'];

let browser;
const t0 = Math.floor(Date.now() / 1000) - COUNT * EVERY_S;
const snaps = []; // {id, t} oldest first

// Snapshot k: a busy java and postgres that wander, load and memory that
// follow, a filesystem that fills up: charts with something to read.
function snap(k, at) {
  const wave = Math.sin(k / 6);
  const procs = smallProcesses().map((p) => {
    if (p.pid === 460) return { ...p, cpu_percent: 120 + 60 * wave, memory_mb: 2048 + 8 * k };
    if (p.pid === 452) return { ...p, cpu_percent: 40 + 30 * Math.cos(k / 4), memory_mb: 150 + 2 * k };
    if (p.pid === 401) return { ...p, cpu_percent: 15 + (k % 7) * 3 };
    return p;
  });
  const s = snapshot(HOST, new Date(at * 1000).toISOString(), procs);
  const sys = s.system_info;
  sys.cpu.usage_percent = 22 + 10 * wave + (k % 5);
  sys.memory.used_bytes = 17e9 + k * 60e6 + 4e8 * wave;
  sys.swap.used_bytes = 268435456 + k * 4e6;
  sys.load_average = { load1: 3 + 2 * wave, load5: 2.6 + wave, load15: 2.2 + 0.3 * wave };
  sys.filesystems[0].used_bytes = 301480864972 + k * 2e9;
  sys.filesystems[2].used_bytes = 1030792151040 - k * 1e9;
  return s;
}

before(async () => {
  agg = await startAggregator(BIN);
  BASE = agg.base;
  for (let k = 0; k < COUNT; k++) {
    const at = t0 + k * EVERY_S + 0.25;
    snaps.push({ id: (await ingest(BASE, KEY, snap(k, at))).snapshot_id, t: at });
  }
  await waitSeries(BASE, HOST, COUNT, 3600);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 30000 });
});

after(async () => {
  if (browser) await browser.close();
  await stopAggregator(agg);
});

const url = (q) => `/?${new URLSearchParams(q)}`;

async function open(t, path, { width = 1400, height = 900, ignoreConsole = () => false } = {}) {
  const ctx = await browser.newContext({ viewport: { width, height }, colorScheme: 'light', baseURL: BASE });
  ctx.setDefaultTimeout(STEP_TIMEOUT);
  const page = await ctx.newPage();
  const problems = watchPage(page, ignoreConsole);
  t.after(() => ctx.close());
  await page.goto(path);
  return { page, check: () => assert.deepEqual(problems, [], 'the page raised dialogs, errors or CSP violations') };
}

/** charts reads every chart's kind, range, point count, legend labels and marks. */
const charts = (page) => page.evaluate(() => Array.from(document.querySelectorAll('#panel-history .chart'), (f) => ({
  kind: f.dataset.chart,
  from: Number(f.dataset.from),
  to: Number(f.dataset.to),
  points: Number(f.dataset.points),
  labels: Array.from(f.querySelectorAll('.u-legend .u-series:not(:first-child) .u-label'), (e) => e.textContent),
  marks: f.dataset.marks ?? '',
  canvas: !!f.querySelector('canvas'),
})));

const waitFor = (page, fn, what, arg, timeout = STEP_TIMEOUT) => page.waitForFunction(fn, arg, { timeout, polling: 100 })
  .catch((err) => { throw new Error(`waiting for ${what}: ${err.message}`); });

const waitCharts = (page) => waitFor(page, (n) => document.querySelectorAll('#panel-history .chart canvas').length === n
  && document.querySelector('#panel-history .hist-status').textContent === '', 'the charts', CHARTS.length);

/** xOf is the page x of unix time t on a chart's plot area. */
async function xOf(page, kind, t) {
  const over = page.locator(`#panel-history .chart[data-chart="${kind}"] .u-over`);
  await over.scrollIntoViewIfNeeded();
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
  const box = await over.boundingBox();
  const c = (await charts(page)).find((x) => x.kind === kind);
  return { x: box.x + (box.width * (t - c.from)) / (c.to - c.from), y: box.y + box.height / 2, box };
}

test('a new host opens on 5m with every chart drawn with data; presets change the window', async (t) => {
  const { page, check } = await open(t, url({ host: HOST, tab: 'history' }));
  await waitCharts(page);
  assert.equal(await page.getAttribute('#panel-history [data-range="5m"]', 'aria-pressed'), 'true', 'four minutes of data: 5m');
  assert.equal(new URL(page.url()).searchParams.get('range'), null, 'the fitted default adds nothing to the URL');
  const cs = await charts(page);
  assert.deepEqual(cs.map((c) => c.kind), CHARTS);
  for (const c of cs) {
    assert.equal(c.to - c.from, 300, `${c.kind} shows 5 minutes`);
    assert.ok(c.points >= COUNT - 2, `${c.kind} has the snapshots' points (${c.points})`);
  }
  const by = Object.fromEntries(cs.map((c) => [c.kind, c.labels]));
  assert.deepEqual(by.bytes, ['used', 'total'], 'memory against total RAM');
  assert.deepEqual(by.load, ['1 min', '5 min', '15 min']);
  assert.deepEqual(by.swap, ['used']);
  assert.deepEqual(by.fs, ['/var/lib/docker', '/', '/boot/efi'], 'every filesystem, fullest first');
  assert.deepEqual(by['proc-cpu'].slice(0, 3), ['java (460)', 'postgres (452)', 'nginx (401)'], 'the busiest processes of the latest snapshot');
  assert.equal(by['proc-cpu'].at(-1), 'other');
  assert.equal(by['proc-mem'][0], 'java (460)');
  assert.equal(by['proc-mem'].at(-1), 'other');
  // The memory axis ends at total RAM (31.3 GiB in the fixture).
  const memTitle = await page.textContent('#panel-history .chart[data-chart="bytes"] figcaption');
  assert.equal(memTitle, 'Memory used of 31.3 GiB');
  // Filesystems in used %: hovering shows each one's share of its size.
  const p = await xOf(page, 'fs', snaps[40].t);
  await page.mouse.move(p.x, p.y, { steps: 3 });
  await waitFor(page, () => /%$/.test(document.querySelector('#panel-history .chart[data-chart="fs"] .u-legend .u-series:nth-child(2) .u-value')?.textContent ?? ''), 'fs legend');
  const fsValues = await page.$$eval('#panel-history .chart[data-chart="fs"] .u-legend .u-series:not(:first-child) .u-value', (l) => l.map((e) => e.textContent));
  const k = 40;
  assert.deepEqual(fsValues, [`${((100 * (1030792151040 - k * 1e9)) / 1099511627776).toFixed(1)} %`,
    `${((100 * (301480864972 + k * 2e9)) / 502468108288).toFixed(1)} %`, `${((100 * 6160384) / 535805952).toFixed(1)} %`]);

  for (const [r, secs] of [['15m', 900], ['1h', 3600], ['6h', 21600], ['24h', 86400], ['7d', 604800], ['5m', 300]]) {
    await page.click(`#panel-history [data-range="${r}"]`);
    await waitFor(page, (s) => Array.from(document.querySelectorAll('#panel-history .chart'))
      .every((f) => Number(f.dataset.to) - Number(f.dataset.from) === s), `every chart redrawn for ${r}`, secs);
    assert.equal(await page.getAttribute(`#panel-history [data-range="${r}"]`, 'aria-pressed'), 'true');
    assert.equal(new URL(page.url()).searchParams.get('range'), r === '1h' ? null : r);
    const c = (await charts(page))[0];
    assert.ok(c.points >= (r === '7d' ? 1 : 2), `${r}: the data is still there (${c.points} points, one per ~17 min at 7d)`);
  }
  check();
});

test('"Since 10 minutes ago" on a host younger than that compares from its first snapshot', async (t) => {
  const { page, check } = await open(t, url({ host: HOST, tab: 'history' }));
  await waitCharts(page);
  await page.click('#cmp-since');
  await waitFor(page, () => document.querySelector('#diff .diff-title, #diff .form-error') !== null, 'the comparison');
  assert.equal(await page.locator('#diff .form-error').count(), 0, `no failure: ${await page.textContent('#diff')}`);
  const title = await page.textContent('#diff .diff-title');
  assert.match(title, /^What changed since its first snapshot \(the host is younger than 10 minutes\): from /);
  assert.ok(title.includes(`(snapshot ${snaps[0].id})`), `from the first snapshot: ${title}`);
  check();
});

test('drag zooms every chart in, Reset zoom goes back; one crosshair moves across all charts', async (t) => {
  const { page, check } = await open(t, url({ host: HOST, tab: 'history', range: '15m' }));
  await waitCharts(page);
  const before = (await charts(page))[0];
  assert.equal(before.to - before.from, 900);

  // Crosshair: hovering the CPU chart moves the cursor of every other chart
  // to the same moment (their legends show its time).
  const mid = snaps[20].t;
  const p = await xOf(page, '%', mid);
  await page.mouse.move(p.x, p.y);
  await waitFor(page, () => {
    const times = Array.from(document.querySelectorAll('#panel-history .chart .u-legend .u-series:first-child .u-value'), (e) => e.textContent);
    return times.length === 7 && times[0] !== '' && times.every((x) => x === times[0]);
  }, 'every legend at the hovered moment');
  const cursorLefts = await page.evaluate(() => Array.from(document.querySelectorAll('#panel-history .chart .u-cursor-x'),
    (e) => e.getBoundingClientRect().left));
  assert.equal(cursorLefts.length, 7);
  for (const l of cursorLefts) assert.ok(Math.abs(l - cursorLefts[0]) <= 2 || Math.abs(l - cursorLefts[0]) > 100, 'charts in one column line up');
  const memAt = await page.textContent('#panel-history .chart[data-chart="bytes"] .u-legend .u-series:nth-child(2) .u-value');
  assert.match(memAt, /GiB$/, `the memory chart shows its value at that moment (${memAt})`);

  // Drag across the load chart from snapshot 10 to snapshot 30.
  const a = await xOf(page, 'load', snaps[10].t);
  const b = await xOf(page, 'load', snaps[30].t);
  await page.mouse.move(a.x, a.y);
  await page.mouse.down();
  await page.mouse.move((a.x + b.x) / 2, a.y, { steps: 4 });
  await page.mouse.move(b.x, a.y, { steps: 4 });
  await page.mouse.up();
  await waitFor(page, () => Array.from(document.querySelectorAll('#panel-history .chart'))
    .every((f) => Number(f.dataset.to) - Number(f.dataset.from) < 200), 'every chart zoomed in');
  const z = await charts(page);
  for (const c of z) {
    assert.ok(Math.abs(c.from - snaps[10].t) <= 3 && Math.abs(c.to - snaps[30].t) <= 3, `${c.kind} shows the dragged span (${c.from}..${c.to})`);
  }
  assert.ok(z[0].points >= 18 && z[0].points <= 22, `about 20 snapshots in view (${z[0].points})`);
  assert.equal(await page.isVisible('#zoom-reset'), true);
  assert.equal(await page.locator('#panel-history [data-range][aria-pressed="true"]').count(), 0);
  assert.equal(await page.isVisible('#hist-menu'), false, 'a drag is not a click');
  assert.equal(await page.textContent('#hist-live'), 'range in the past: not updating');
  await page.click('#zoom-reset');
  await waitFor(page, () => Array.from(document.querySelectorAll('#panel-history .chart'))
    .every((f) => Number(f.dataset.to) - Number(f.dataset.from) === 900), 'back to 15m');
  assert.equal(await page.getAttribute('#panel-history [data-range="15m"]', 'aria-pressed'), 'true');
  assert.equal(await page.isVisible('#zoom-reset'), false);
  check();
});

test('a click offers open the tree / set A / set B at the nearest snapshot; picked moments are marked on every chart', async (t) => {
  const { page, check } = await open(t, url({ host: HOST, tab: 'history' }));
  await waitCharts(page);
  const clickAt = async (kind, time) => {
    const p = await xOf(page, kind, time);
    await page.mouse.click(p.x, p.y);
    await page.waitForSelector('#hist-menu [data-act=open]');
  };

  // A second after snapshot 12 (they are 5 s apart, a pixel is 0.7 s):
  // it snaps back to 12.
  await clickAt('%', snaps[12].t + 1);
  assert.equal(await page.getAttribute('#hist-menu', 'data-snapshot'), String(snaps[12].id));
  assert.match(await page.textContent('#hist-menu'), new RegExp(`^Snapshot ${snaps[12].id} · `));
  await page.click('#hist-menu [data-act=a]');
  assert.equal(await page.isVisible('#hist-menu'), false);
  // A second before snapshot 36, on another chart: it snaps forward to 36
  // (the snapshot at or before that moment is 35).
  await clickAt('load', snaps[36].t - 1);
  assert.equal(await page.getAttribute('#hist-menu', 'data-snapshot'), String(snaps[36].id));
  await page.click('#hist-menu [data-act=b]');
  await waitFor(page, (id) => (document.querySelector('#diff .diff-title')?.textContent ?? '').includes(`(snapshot ${id})`), 'the diff of A and B', snaps[36].id);
  assert.match(await page.textContent('#diff .diff-title'), new RegExp(`snapshot ${snaps[12].id}\\).*snapshot ${snaps[36].id}\\)`));
  await waitFor(page, () => Array.from(document.querySelectorAll('#panel-history .chart:not(.chart-empty)')).every((f) => f.dataset.marks === 'A,B'), 'A and B on every chart');

  // The marks are really drawn: the pixel column at A is the mark's colour.
  const lit = await page.evaluate(([ta]) => {
    const f = document.querySelector('#panel-history .chart[data-chart="swap"]');
    const cv = f.querySelector('canvas');
    const from = Number(f.dataset.from);
    const to = Number(f.dataset.to);
    const over = f.querySelector('.u-over').getBoundingClientRect();
    const r = cv.getBoundingClientRect();
    const x = Math.round((over.left - r.left + (over.width * (ta - from)) / (to - from)) * devicePixelRatio);
    const y = Math.round((over.top - r.top + over.height * 0.3) * devicePixelRatio);
    const px = (dx) => Array.from(cv.getContext('2d').getImageData(x + dx, y, 1, 1).data);
    return [px(0), px(-1), px(1), px(12)];
  }, [snaps[12].t]);
  const accentish = (c) => c[2] > 150 && c[0] < 120; // --accent is #1d5fd6
  assert.ok(lit.slice(0, 3).some(accentish), `a blue line at A: ${JSON.stringify(lit)}`);
  assert.ok(!accentish(lit[3]), 'and not beside it');
  // Its label "A" sits inside its box, centred (uPlot leaves textAlign
  // 'center' on the context: the letter was drawn half out of the box).
  const label = await page.evaluate(([ta]) => {
    const f = document.querySelector('#panel-history .chart[data-chart="swap"]');
    const cv = f.querySelector('canvas');
    const from = Number(f.dataset.from);
    const to = Number(f.dataset.to);
    const over = f.querySelector('.u-over').getBoundingClientRect();
    const r = cv.getBoundingClientRect();
    const d = devicePixelRatio;
    const x = Math.round((over.left - r.left + (over.width * (ta - from)) / (to - from)) * d);
    const top = Math.round((over.top - r.top) * d);
    const h = Math.round(15 * d);
    const img = cv.getContext('2d').getImageData(x - 40 * d, top, 80 * d, h).data;
    const w = 80 * d;
    const at = (i, j) => img.slice((j * w + i) * 4, (j * w + i) * 4 + 3);
    const blue = (c) => c[2] > 150 && c[0] < 120;
    const light = (c) => c[0] > 200 && c[1] > 200 && c[2] > 200;
    let l = -1; // the box: the blue run on its first row
    let rr = -1;
    for (let i = 0; i < w; i++) if (blue(at(i, 1))) { if (l < 0) l = i; rr = i; }
    let gl = w; // the letter: light pixels inside the box
    let gr = -1;
    for (let j = 2; j < h - 2; j++) for (let i = Math.max(0, l); i <= rr; i++) if (light(at(i, j))) { gl = Math.min(gl, i); gr = Math.max(gr, i); }
    return { box: [l, rr], glyph: [gl, gr], d };
  }, [snaps[12].t]);
  assert.ok(label.box[0] >= 0 && label.glyph[1] > label.glyph[0], `a label box with a letter: ${JSON.stringify(label)}`);
  const left = label.glyph[0] - label.box[0];
  const right = label.box[1] - label.glyph[1];
  assert.ok(left >= 2 * label.d && Math.abs(left - right) <= 3 * label.d, `the letter centred in its box: ${JSON.stringify(label)}`);

  // Escape closes the menu without doing anything.
  await clickAt('swap', snaps[20].t);
  await page.keyboard.press('Escape');
  assert.equal(await page.isVisible('#hist-menu'), false);

  // "Open the tree here": the Processes tab at that snapshot.
  await clickAt('fs', snaps[24].t + 0.4);
  await page.click('#hist-menu [data-act=open]');
  await page.waitForSelector('#past:not([hidden])');
  assert.match(await page.textContent('#past-text'), new RegExp(`snapshot ${snaps[24].id},`));
  assert.equal(await page.getAttribute('#tab-processes', 'aria-selected'), 'true');
  assert.equal(new URL(page.url()).searchParams.get('at'), String(snaps[24].id));
  assert.ok((await rows(page)).some((r) => r.name === 'java'));
  // Back on History, the moment being viewed is marked too.
  await page.click('#tab-history');
  await waitCharts(page);
  await waitFor(page, () => Array.from(document.querySelectorAll('#panel-history .chart:not(.chart-empty)')).every((f) => f.dataset.marks.split(',').includes('viewing')), 'the viewed moment on every chart');
  check();
});

test('the charts work by keyboard: arrows step the crosshair through stored snapshots, Enter opens the menu, Escape closes it', async (t) => {
  // A fixed range holding exactly the host's 48 snapshots.
  const from = new Date((snaps[0].t - 2) * 1000).toISOString();
  const to = new Date((snaps[COUNT - 1].t + 1) * 1000).toISOString();
  const { page, check } = await open(t, url({ host: HOST, tab: 'history', from, to }));
  await waitCharts(page);
  const cpu = '#panel-history .chart[data-chart="%"] .u-over';
  // Focusable, in the tab order right after the toolbar, and named.
  assert.equal(await page.getAttribute(cpu, 'role'), 'slider');
  assert.equal(await page.getAttribute(cpu, 'tabindex'), '0');
  await page.focus('#cmp-since');
  await page.keyboard.press('Tab');
  assert.ok(await page.evaluate((sel) => document.activeElement === document.querySelector(sel), cpu), 'Tab reaches the first chart');
  const at = (k) => waitFor(page, ([sel, id]) => document.querySelector(sel).getAttribute('aria-valuetext').startsWith(`snapshot ${id} at `),
    `the keyboard moment at snapshot ${snaps[k].id}`, [cpu, snaps[k].id]);
  const press = async (key, k) => {
    await page.keyboard.press(key);
    await at(k);
  };
  await press('End', COUNT - 1);
  for (let k = COUNT - 2; k >= COUNT - 4; k--) await press('ArrowLeft', k);
  assert.equal(await page.getAttribute(cpu, 'aria-valuenow'), String(Math.round(snaps[COUNT - 4].t)));
  // The crosshair is on that snapshot, on every chart: each legend shows
  // the same time, and the CPU chart's cursor line is at its x.
  await waitFor(page, () => {
    const times = Array.from(document.querySelectorAll('#panel-history .chart .u-legend .u-series:first-child .u-value'), (e) => e.textContent);
    return times.length === 7 && times[0] !== '' && times.every((x) => x === times[0]);
  }, 'every legend at the keyboard moment');
  const p = await xOf(page, '%', snaps[COUNT - 4].t);
  const cursorX = await page.evaluate(() => document.querySelector('#panel-history .chart[data-chart="%"] .u-cursor-x').getBoundingClientRect().left);
  assert.ok(Math.abs(cursorX - p.x) <= 2, `the crosshair at the snapshot (${cursorX} vs ${p.x})`);
  // Home, and at the first snapshot a further step stays there.
  await press('Home', 0);
  await page.keyboard.press('ArrowLeft');
  await waitFor(page, (sel) => document.querySelector(sel).getAttribute('aria-valuetext').endsWith('(the first in this range)'), 'the first of the range', cpu);
  await press('ArrowRight', 1);
  await press('ArrowRight', 2);
  // Enter: the menu at that snapshot, focus on its first item.
  await page.keyboard.press('Enter');
  await page.waitForSelector('#hist-menu [data-act=open]');
  assert.equal(await page.getAttribute('#hist-menu', 'data-snapshot'), String(snaps[2].id));
  await waitFor(page, () => document.activeElement?.dataset.act === 'open', 'focus on "Open the tree here"');
  assert.deepEqual(await page.$$eval('#hist-menu [role=menuitem]', (b) => b.map((x) => x.tagName)), ['BUTTON', 'BUTTON', 'BUTTON']);
  await page.keyboard.press('ArrowDown');
  assert.equal(await page.evaluate(() => document.activeElement.dataset.act), 'a');
  assert.deepEqual(await axe(page), [], 'axe with a focused chart and the menu open');
  // Escape: closed, focus back on the chart, the moment kept.
  await page.keyboard.press('Escape');
  assert.equal(await page.isVisible('#hist-menu'), false);
  assert.ok(await page.evaluate((sel) => document.activeElement === document.querySelector(sel), cpu), 'focus back on the chart');
  // Set A here by keyboard, then B ten snapshots on, from another chart.
  await page.keyboard.press('Enter');
  await page.waitForSelector('#hist-menu [data-act=a]');
  await page.keyboard.press('ArrowDown');
  await page.keyboard.press('Enter');
  assert.equal(await page.isVisible('#hist-menu'), false);
  await waitFor(page, () => Array.from(document.querySelectorAll('#panel-history .chart:not(.chart-empty)')).every((f) => f.dataset.marks === 'A'), 'A on every chart');
  const load = '#panel-history .chart[data-chart="load"] .u-over';
  await page.focus(load);
  const loadAt = (k) => waitFor(page, ([sel, id]) => document.querySelector(sel).getAttribute('aria-valuetext').startsWith(`snapshot ${id} at `),
    `load chart at snapshot ${snaps[k].id}`, [load, snaps[k].id]);
  for (let k = 3; k <= 12; k++) {
    await page.keyboard.press('ArrowRight');
    await loadAt(k); // from the moment the other chart had
  }
  await page.keyboard.press(' ');
  await page.waitForSelector('#hist-menu [data-act=b]');
  await page.keyboard.press('End'); // the last item
  assert.equal(await page.evaluate(() => document.activeElement.dataset.act), 'b');
  await page.keyboard.press('Enter');
  await waitFor(page, (id) => (document.querySelector('#diff .diff-title')?.textContent ?? '').includes(`(snapshot ${id})`), 'the diff of A and B', snaps[12].id);
  assert.match(await page.textContent('#diff .diff-title'), new RegExp(`snapshot ${snaps[2].id}\\).*snapshot ${snaps[12].id}\\)`));
  assert.ok(await page.evaluate((sel) => document.activeElement === document.querySelector(sel), load), 'focus back on the load chart');
  // Tab leaves the menu (closed) for the chart it came from.
  await page.keyboard.press('Enter');
  await page.waitForSelector('#hist-menu [data-act=open]');
  await page.keyboard.press('Tab');
  assert.equal(await page.isVisible('#hist-menu'), false);
  assert.ok(await page.evaluate((sel) => document.activeElement === document.querySelector(sel), load));
  assert.deepEqual(await axe(page), [], 'axe with a focused chart');
  check();
});

test('while the range ends now, a new snapshot is appended to every chart', async (t) => {
  // A snapshot now: the host is online, so the range ending now is "live"
  // (an offline host's says since when it is silent). Its point is 30 s
  // before the new one's, so that the cursor put at the new point (the
  // window slides a few pixels a second meanwhile) cannot snap to it.
  const pre = Math.max(Math.floor(Date.now() / 1000) - 30, snaps[snaps.length - 1].t + 1);
  snaps.push({ id: (await ingest(BASE, KEY, snap(COUNT, pre))).snapshot_id, t: pre });
  const { page, check } = await open(t, url({ host: HOST, tab: 'history', range: '5m' }));
  await waitCharts(page);
  assert.equal(await page.textContent('#hist-live'), 'live');
  const at = Math.max(Math.floor(Date.now() / 1000), pre + 2);
  const lastBefore = await page.$$eval('#panel-history .chart', (l) => l.map((f) => Number(f.dataset.last)));
  assert.ok(lastBefore.every((x) => x < at));
  const id = (await ingest(BASE, KEY, snap(COUNT + 1, at))).snapshot_id;
  snaps.push({ id, t: at });
  // The page polls at the host's push interval (5 s); the history store
  // makes a point searchable a moment after ingest. The window slides, so
  // the oldest points may leave it: the newest one is what must appear.
  await waitFor(page, (t) => Array.from(document.querySelectorAll('#panel-history .chart')).every((f) => Number(f.dataset.last) === t),
    'the new point on every chart', at, 45000);
  for (const c of await charts(page)) {
    assert.ok(c.to >= at && c.to - c.from === 300, `${c.kind}: the window slid to now`);
  }
  // The appended point has values: the legends at the right edge show them.
  const right = await xOf(page, '%', at);
  await page.mouse.move(right.x - 1, right.y, { steps: 3 });
  await waitFor(page, () => /%$/.test(document.querySelector('#panel-history .chart[data-chart="proc-cpu"] .u-legend .u-series:nth-child(2) .u-value')?.textContent ?? ''), 'top process values at the new point');
  assert.match(await page.textContent('#panel-history .chart[data-chart="proc-cpu"] .u-legend .u-series:first-child .u-value'),
    new RegExp(`${new Date(at * 1000).toTimeString().slice(0, 8)}$`), 'the legend is at the new snapshot');
  assert.equal(await page.locator('#panel-history .chart canvas').count(), 7, 'updated in place');
  check();
});

test('a failed chart library or series fetch shows a short message in the charts and retries', async (t) => {
  const expected = (m) => /Failed to load resource|net::ERR_FAILED/.test(m.text());
  const { page, check } = await open(t, 'about:blank', { ignoreConsole: expected });
  // First the chart library cannot be fetched (the server went away).
  let blockLib = true;
  await page.route('**/vendor/uPlot.esm.js*', (route) => (blockLib ? route.abort('failed') : route.continue()));
  await page.goto(url({ host: HOST, tab: 'history' }));
  await page.waitForSelector('#panel-history .chart-error');
  const msg = await page.textContent('#panel-history .chart-error');
  assert.match(msg, /^No charts: the server is unreachable\. Retrying in 5 s…$/);
  assert.ok(!/https?:|\.js|import/i.test(await page.textContent('#panel-history')), 'no module URL or stack');
  blockLib = false;
  await waitCharts(page);
  assert.equal(await page.locator('#panel-history .chart-error').count(), 0);

  // Then one series answers 500 twice: the others are drawn, a short
  // message stands in, and a retry draws it.
  let fails = 2;
  await page.route('**/series?metric=load5*', (route) => (fails-- > 0
    ? route.fulfill({ status: 500, contentType: 'application/json', body: '{"error":"history store unavailable"}' })
    : route.continue()));
  await page.click('#panel-history [data-range="15m"]');
  await page.waitForSelector('#panel-history .chart-error');
  assert.equal(await page.textContent('#panel-history .chart-error'), 'Some charts are missing: history store unavailable. Retrying in 5 s…');
  assert.equal(await page.locator('#panel-history .chart[data-chart="%"] canvas').count(), 1, 'the other charts are drawn');
  await waitFor(page, () => !document.querySelector('#panel-history .chart-error') && document.querySelectorAll('#panel-history .chart canvas').length === 7,
    'the retries recovered', null, 30000);
  check();
});

test('docs/history.png: a host with a few minutes of data, every chart, A and B marked', async (t) => {
  // The range is the host's whole life (the machine may be slow enough for
  // a 5m window to have slid past the first snapshots by now).
  const from = new Date((snaps[0].t - 10) * 1000).toISOString();
  const to = new Date((Math.max(snaps.at(-1).t, Date.now() / 1000) + 5) * 1000).toISOString();
  const { page, check } = await open(t, url({ host: HOST, tab: 'history', from, to }));
  await waitCharts(page);
  for (const [k, act] of [[12, 'a'], [36, 'b']]) {
    const p = await xOf(page, '%', snaps[k].t);
    await page.mouse.click(p.x, p.y);
    await page.click(`#hist-menu [data-act=${act}]`);
  }
  await page.waitForSelector('#diff .diff-title');
  // A fresh snapshot, so the sidebar shows the host online.
  await ingest(BASE, KEY, snap(COUNT + 2, Date.now() / 1000));
  await page.click('#refresh');
  await waitFor(page, () => !document.querySelector('#hosts .host .seen').textContent.includes('offline'), 'the host online');
  await page.evaluate(() => document.getElementById('panel-history').scrollTo(0, 0));
  const p = await xOf(page, 'load', snaps[26].t);
  await page.mouse.move(p.x, p.y, { steps: 3 });
  await page.screenshot({ path: join(ART, 'history.png') });
  // Like the other screenshots: docs/ only when asked, so a test run leaves the tree clean.
  if (process.env.UPDATE_SCREENSHOTS === '1') await page.screenshot({ path: join(DOCS, 'history.png') });
  check();
});
