// Browser tests of the process list's culprit finding (issue 13, points 1,
// 2, 5 and 8): branch totals (Σ) on collapsed rows and the tree sorted by
// them, the paths to the top consumers open, repeated siblings grouped,
// bars and warning/critical colours with enough contrast, "what changed"
// from the Processes tab and the time-travel banner, the scroll anchor on
// sort changes, and the 5,000-process render benchmark. Data goes through
// the real POST /api/v1/ingest of the aggregator run.mjs started.
//
// UPDATE_SCREENSHOTS=1 also writes docs/culprit.png (1400x900).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, mkdirSync, copyFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS, STEP_TIMEOUT, ingest, rows, rowCount, watchPage } from './lib.mjs';
import { bigProcesses, systemInfo } from './fixtures.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const ART = join(here, 'artifacts');
mkdirSync(ART, { recursive: true });
const BASE = process.env.PROCSCOPE_BASE;
if (!BASE) throw new Error('PROCSCOPE_BASE is not set: run the tests with `node run.mjs`');

const NODE = 'k8s-node-7';
const YOUNG = 'young-host';
const KEYS = { [NODE]: 'key-node7-0123456789', [YOUNG]: 'key-young-0123456789' };
const RAM = 16 * 1024 * 1024 * 1024;
const BOOT = Date.parse('2026-11-25T08:00:00Z');
const iso = (ms) => new Date(ms).toISOString();
const perf = {};

// k8sProcesses: a node with a culprit: two busy loops under a cron job's
// shell script (0 % itself), 120 containerd-shim under containerd, a
// 4 GiB search engine (25 % of RAM), a 60 % node process, short sleeps.
function k8sProcesses() {
  const P = (pid, ppid, name, cpu, mem, more = {}) => ({
    pid, ppid, name, cpu_percent: cpu, memory_mb: mem, username: 'root', status: 'sleeping',
    num_threads: 1, create_time: iso(BOOT + pid * 1000), ...more,
  });
  const out = [
    P(1, 0, 'systemd', 0.2, 14.1, { cmdline: '/sbin/init' }),
    P(2, 0, 'kthreadd', 0, 0, { cmdline: '' }),
    P(300, 1, 'containerd', 1.2, 80.4, { cmdline: '/usr/bin/containerd' }),
    P(400, 1, 'kubelet', 4.2, 150.3, { cmdline: '/usr/bin/kubelet --config=/var/lib/kubelet/config.yaml', num_threads: 40 }),
    P(500, 1, 'cron', 0, 3.1, { cmdline: '/usr/sbin/cron -f' }),
    P(501, 500, 'backup.sh', 0, 4.2, { cmdline: '/bin/sh /opt/jobs/backup.sh', username: 'backup' }),
    P(502, 501, 'sh', 92.3, 1.2, { cmdline: 'sh -c while :; do :; done', status: 'running', username: 'backup' }),
    P(503, 501, 'sh', 91.8, 1.2, { cmdline: 'sh -c while :; do :; done', status: 'running', username: 'backup' }),
    P(600, 1, 'sshd', 0, 9.2, { cmdline: 'sshd: /usr/sbin/sshd -D' }),
    P(601, 600, 'sshd', 0, 11.1, { cmdline: 'sshd: alice [priv]' }),
    P(602, 601, 'bash', 0.1, 5.3, { cmdline: '-bash', username: 'alice' }),
    P(700, 1, 'postgres', 1.1, 210.4, { cmdline: 'postgres -D /var/lib/postgresql', username: 'postgres' }),
    P(800, 1, 'node', 61.5, 512.0, { cmdline: 'node /srv/api/server.js', username: 'app', status: 'running' }),
    P(900, 1, 'elasticsearch', 3.3, 4096.0, { cmdline: 'java -Xmx4g org.elasticsearch.bootstrap.Elasticsearch', username: 'elastic', num_threads: 90 }),
  ];
  for (let k = 0; k < 10; k++) out.push(P(3 + k, 2, `kworker/${k}:1`, 0, 0, { cmdline: '' }));
  for (let k = 0; k < 5; k++) out.push(P(710 + k, 700, 'postgres', 0.2, 20 + k, { cmdline: `postgres: worker ${k}`, username: 'postgres' }));
  for (let k = 0; k < 3; k++) out.push(P(610 + k, 602, 'sleep', 0, 0.5, { cmdline: 'sleep 5', username: 'alice' }));
  for (let k = 0; k < 120; k++) {
    out.push(P(1000 + k, 300, 'containerd-shim', 0.1, 12.0, { cmdline: `/usr/bin/containerd-shim-runc-v2 -namespace k8s.io -id ${k.toString(16).padStart(8, '0')}` }));
    out.push(P(2000 + k, 1000 + k, 'pause', 0, 0.6, { cmdline: '/pause' }));
  }
  return out;
}
const NODE_N = k8sProcesses().length;

const snap = (host, at, processes) => ({
  hostname: host,
  captured_at: iso(at),
  system_info: { ...systemInfo(host, processes.length), memory: { total_bytes: RAM, used_bytes: RAM / 2, available_bytes: RAM / 2 } },
  processes,
});

// The young host: two snapshots 3 minutes apart (younger than 10 min).
// Between them java exits, 12 chromium start, the database grows.
function youngBefore() {
  const P = (pid, ppid, name, cpu, mem) => ({ pid, ppid, name, cpu_percent: cpu, memory_mb: mem, create_time: iso(BOOT + pid * 1000) });
  return [P(1, 0, 'systemd', 0.1, 10), P(10, 1, 'java', 45, 2000), P(20, 1, 'db', 5, 500), P(30, 1, 'idle', 0, 5), P(40, 1, 'desktop', 1, 100)];
}
function youngAfter() {
  const procs = youngBefore().filter((p) => p.pid !== 10);
  procs.find((p) => p.pid === 20).memory_mb = 900;
  procs.find((p) => p.pid === 20).cpu_percent = 7;
  for (let k = 0; k < 12; k++) procs.push({ pid: 100 + k, ppid: 40, name: 'chromium', cpu_percent: 2, memory_mb: 100, create_time: iso(Date.now() - 60000) });
  return procs;
}

let browser;
let youngFirst = 0;

before(async () => {
  const now = Date.now();
  await ingest(BASE, KEYS[NODE], snap(NODE, now - 30000, k8sProcesses()));
  youngFirst = (await ingest(BASE, KEYS[YOUNG], snap(YOUNG, now - 180000, youngBefore()))).snapshot_id;
  await ingest(BASE, KEYS[YOUNG], snap(YOUNG, now - 20000, youngAfter()));
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 30000 });
});

after(async () => {
  if (browser) await browser.close();
  writeFileSync(join(ART, 'perf-procview.json'), `${JSON.stringify(perf, null, 2)}\n`);
});

async function open(t, path, { width = 1400, height = 900, colorScheme = 'light', ctx: given } = {}) {
  const ctx = given || await browser.newContext({ viewport: { width, height }, colorScheme, baseURL: BASE });
  ctx.setDefaultTimeout(STEP_TIMEOUT);
  const page = await ctx.newPage();
  const problems = watchPage(page);
  if (!given) t.after(() => ctx.close());
  await page.goto(path);
  return { page, ctx, check: () => assert.deepEqual(problems, [], 'the page raised dialogs, errors or CSP violations') };
}

const url = (params) => `/?${new URLSearchParams(params)}`;
const wait = (page, pred, what, arg = null) => page.waitForFunction(pred, arg, { timeout: STEP_TIMEOUT }).catch((e) => {
  throw new Error(`waiting for ${what}: ${e.message}`);
});
const waitLoaded = (page, n) => wait(page, (want) => document.getElementById('match-count').textContent === `${want.toLocaleString('en-US')} processes`
  && document.querySelectorAll('#viewport .row:not([hidden])').length > 0, `${n} processes`, n);
const rowOf = (page, pid) => page.locator(`#viewport .row:not([hidden]):has(.c-pid:text-is("${pid}"))`);

// gauges reads the CPU and memory cells of the visible rows.
async function gauges(page) {
  return page.evaluate(() => Array.from(document.querySelectorAll('#viewport .row:not([hidden])')).map((el) => {
    const g = (sel) => {
      const c = el.querySelector(sel);
      const lvl = c.classList.contains('crit') ? 'crit' : c.classList.contains('warn') ? 'warn' : '';
      return { own: c.querySelector('.v')?.textContent ?? c.textContent, sum: c.querySelector('.sum')?.textContent ?? '', lvl, bar: c.querySelector('.bar')?.style.transform ?? '' };
    };
    return {
      r: Number(el.getAttribute('aria-rowindex')) - 2,
      pid: el.querySelector('.c-pid').textContent,
      name: el.querySelector('.label').textContent,
      grp: el.classList.contains('grp'),
      expanded: el.getAttribute('aria-expanded'),
      cpu: g('.c-cpu'),
      mem: g('.c-mem'),
      ram: g('.c-ram'),
    };
  }).sort((a, b) => a.r - b.r));
}

test('culprit: busy loops under an idle script lift and open their branch; collapsed, the branch total shows', async (t) => {
  const { page, check } = await open(t, url({ host: NODE }));
  await waitLoaded(page, NODE_N);
  const header = await page.getAttribute('#grid-head [data-sort=cpu]', 'title');
  assert.match(header, /of one core/, 'the CPU% header says "of one core"');
  // At 1400 px the toolbar is one line: the list keeps the height.
  const mids = await page.$$eval('#panel-processes .toolbar > :not(.spacer)', (els) => els.map((e) => { const r = e.getBoundingClientRect(); return [e.id || e.className, Math.round(r.top + r.height / 2)]; }));
  const ys = mids.map(([, y]) => y);
  assert.ok(Math.max(...ys) - Math.min(...ys) <= 8, `one toolbar line: ${JSON.stringify(mids)}`);
  let r = await rows(page);
  // sorted by CPU, systemd's children follow their branch totals: cron's
  // 184.1 first, then node 61.5, ... and the way to the loops is open
  const kids = r.filter((x) => x.ppid === 1 && x.level === 2).map((x) => x.name);
  assert.deepEqual(kids.slice(0, 3), ['cron', 'node', 'containerd']);
  assert.deepEqual(r.filter((x) => x.ppid === 501).map((x) => x.cpu), [92.3, 91.8], 'the busy loops are on screen without a click');
  // collapse the script: it shows Σ of its branch in the critical colour
  await rowOf(page, 501).locator('.tog').click();
  let g = (await gauges(page)).find((x) => x.pid === '501');
  assert.equal(g.expanded, 'false');
  assert.deepEqual([g.cpu.own, g.cpu.sum, g.cpu.lvl], ['0.0', 'Σ184.1', 'crit']);
  assert.equal(g.mem.sum, 'Σ6.6');
  assert.equal(g.cpu.bar, 'scaleX(1)', 'the bar is full: more than one core');
  // collapse all: the root shows the whole host
  await page.click('#collapse-all');
  g = (await gauges(page)).find((x) => x.pid === '1');
  const total = k8sProcesses().reduce((s, p) => s + p.cpu_percent, 0);
  assert.equal(g.cpu.sum, `Σ${total.toFixed(1)}`);
  check();
});

test('a parent with 120 identical children groups them, with sums, until opened', async (t) => {
  const { page, check } = await open(t, url({ host: NODE }));
  await waitLoaded(page, NODE_N);
  const before = await rowCount(page);
  let g = (await gauges(page)).filter((x) => x.grp);
  // containerd is not on a hot path: open it
  await rowOf(page, 300).locator('.tog').click();
  g = (await gauges(page)).filter((x) => x.grp);
  const shim = g.find((x) => x.name.startsWith('containerd-shim'));
  assert.ok(shim, 'a containerd-shim group row');
  assert.equal(shim.name, 'containerd-shim×120');
  assert.equal(shim.expanded, 'false');
  assert.equal(shim.cpu.own, '12.0'); // 120 × 0.1
  assert.equal(shim.mem.sum, `Σ${(120 * 12 + 120 * 0.6).toFixed(1)}`); // with the pause children
  // With the detail panel open the name column is narrow: the name is cut, the count is not.
  await rowOf(page, 500).locator('.c-user').click();
  await page.keyboard.press('Enter');
  await page.waitForSelector('#detail:not([hidden]) h2');
  const fit = await page.$eval('#viewport .row.grp:has(.nm:text-is("containerd-shim")) .label', (l) => {
    const c = l.querySelector('.count').getBoundingClientRect();
    const box = l.getBoundingClientRect();
    return { cut: l.querySelector('.nm').scrollWidth > l.querySelector('.nm').clientWidth, count: c.right <= box.right + 0.5 && c.width > 0 };
  });
  assert.ok(fit.cut && fit.count, `a narrow column keeps "×120" whole: ${JSON.stringify(fit)}`);
  await page.keyboard.press('Escape');
  assert.equal(await rowCount(page), before + 1, 'one row for 120 processes');
  await page.locator('#viewport .row.grp:has(.nm:text-is("containerd-shim")) .tog').click();
  assert.equal(await rowCount(page), before + 1 + 120, 'opened: every shim, one level deeper');
  const r = await rows(page);
  const grpRow = r.find((x) => x.name === 'containerd-shim' && x.pid === 0);
  assert.ok(r.some((x) => x.ppid === 300 && x.level === grpRow.level + 1), 'members sit below the group row');
  // the keyboard opens and closes a group: select it, Enter
  await page.locator('#viewport .row.grp:has(.nm:text-is("containerd-shim")) .label').click();
  await page.keyboard.press('Enter');
  assert.equal(await rowCount(page), before + 1);
  await page.keyboard.press('ArrowRight');
  assert.equal(await rowCount(page), before + 1 + 120);
  // postgres ×5 is a group too (5 = the threshold; 3 sleeps are not)
  await page.keyboard.press('ArrowLeft'); // closes the group again
  await rowOf(page, 700).locator('.tog').click();
  assert.ok((await gauges(page)).some((x) => x.grp && x.name === 'postgres×5'));
  check();
});

// contrast ratio of two CSS colours (WCAG 2).
const CONTRAST = `(fg, bg) => {
  const rgb = (c) => c.match(/[\\d.]+/g).slice(0, 3).map(Number);
  const lum = (c) => {
    const [r, g, b] = rgb(c).map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const a = lum(fg); const b = lum(bg);
  return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
}`;

for (const colorScheme of ['light', 'dark']) {
  test(`${colorScheme}: warning and critical colours, bars and %RAM, readable on normal and selected rows`, async (t) => {
    const { page, check } = await open(t, url({ host: NODE }), { colorScheme });
    await waitLoaded(page, NODE_N);
    const g = await gauges(page);
    const by = (pid) => g.find((x) => x.pid === pid);
    assert.equal(by('502').cpu.lvl, 'crit', '92 % of one core is critical');
    assert.equal(by('800').cpu.lvl, 'warn', '61.5 % is a warning');
    assert.equal(by('400').cpu.lvl, '', '4.2 % is normal');
    assert.equal(by('900').ram.own, '25', 'elasticsearch: 4 GiB of 16 GiB');
    assert.equal(by('900').mem.lvl, 'warn');
    assert.equal(by('900').ram.lvl, 'warn');
    assert.equal(by('800').ram.own, '3.1');
    assert.match(by('800').cpu.bar, /^scaleX\(0\.61/);
    const measure = async () => page.evaluate((src) => {
      const contrast = eval(src); // eslint-disable-line no-eval
      const bgOf = (el) => {
        for (let e = el; e; e = e.parentElement) {
          const c = getComputedStyle(e).backgroundColor;
          if (c && !/rgba\(.*, 0\)$/.test(c) && c !== 'transparent') return c;
        }
        return 'rgb(255, 255, 255)';
      };
      const out = [];
      for (const sel of ['.c-cpu.crit .v', '.c-cpu.warn .v', '.c-ram.warn', '.c-mem.warn .v', '.c-cpu.has-sum .sum', '.c-cpu.has-sum .v', '.row.grp .count', '.c-pid']) {
        const el = document.querySelector(`#viewport .row:not([hidden]) ${sel}`);
        if (!el) continue;
        out.push({ sel, ratio: contrast(getComputedStyle(el).color, bgOf(el)) });
      }
      return out;
    }, CONTRAST);
    await rowOf(page, 300).locator('.tog').click(); // a group row (sshd shows a Σ)
    const normal = await measure();
    // select each coloured row in turn: the selection background too
    const selected = [];
    for (const pid of ['502', '800', '900', '600']) {
      await rowOf(page, pid).locator('.c-user').click();
      for (const m of await measure()) selected.push({ ...m, pid });
    }
    perf[`contrast_${colorScheme}`] = normal.map((m) => `${m.sel} ${m.ratio.toFixed(1)}`);
    assert.ok(normal.length >= 7, `measured ${normal.map((m) => m.sel)}`);
    for (const m of [...normal, ...selected]) assert.ok(m.ratio >= 4.5, `${m.sel}${m.pid ? ` (row ${m.pid} selected)` : ''}: contrast ${m.ratio.toFixed(2)} < 4.5`);
    await page.screenshot({ path: join(ART, `${colorScheme}-culprit.png`) });
    check();
  });
}

test('changing the sort keeps the selected row where it was; changing the view reveals it', async (t) => {
  const { page, check } = await open(t, url({ host: NODE }), { height: 700 });
  await waitLoaded(page, NODE_N);
  await page.click('#expand-all');
  // scroll into the middle and select a row there
  await page.evaluate(() => { const v = document.getElementById('viewport'); v.scrollTop = 2400; v.dispatchEvent(new Event('scroll')); });
  await wait(page, () => Array.from(document.querySelectorAll('#viewport .row:not([hidden])')).some((e) => Number(e.getAttribute('aria-rowindex')) > 105), 'rows at the scroll position');
  const target = (await rows(page)).find((x) => x.r >= 104 && x.name === 'pause');
  await rowOf(page, target.pid).locator('.c-user').click();
  const offset = async (pid) => page.evaluate((p) => {
    const el = Array.from(document.querySelectorAll('#viewport .row:not([hidden])')).find((e) => e.querySelector('.c-pid').textContent === String(p));
    return el ? el.getBoundingClientRect().top - document.getElementById('viewport').getBoundingClientRect().top : null;
  }, pid);
  const y0 = await offset(target.pid);
  assert.ok(y0 !== null && y0 > 0);
  for (const key of ['mem', 'pid', 'name']) {
    await page.selectOption('#sort', key);
    const y = await offset(target.pid);
    assert.ok(y !== null, `sorted by ${key}: the selected row is still on screen`);
    assert.ok(Math.abs(y - y0) <= 1, `sorted by ${key}: the selected row moved from ${y0} to ${y} px`);
    assert.ok(await page.evaluate(() => document.getElementById('viewport').scrollTop) > 0, `sorted by ${key}: not scrolled to the top`);
  }
  // flat view, select a process deep in the list, back to the tree (its
  // branch collapsed): the tree opens its ancestors and shows it
  await page.click('#collapse-all');
  await page.click('#view-flat');
  await page.selectOption('#sort', 'pid');
  await page.evaluate(() => { const v = document.getElementById('viewport'); v.scrollTop = v.scrollHeight; v.dispatchEvent(new Event('scroll')); });
  await wait(page, () => Array.from(document.querySelectorAll('#viewport .c-pid')).some((e) => e.textContent === '2119'), 'the last pause drawn');
  await rowOf(page, 2119).locator('.c-user').click();
  await page.click('#view-tree');
  const y = await offset(2119);
  assert.ok(y !== null && y >= 0 && y < 700, `the selected pause is on screen in the tree (${y})`);
  check();
});

test('collapse all is remembered across visits', async (t) => {
  const ctx = await browser.newContext({ viewport: { width: 1400, height: 900 }, baseURL: BASE });
  t.after(() => ctx.close());
  const first = await open(t, url({ host: NODE }), { ctx });
  await waitLoaded(first.page, NODE_N);
  await first.page.click('#collapse-all');
  assert.ok((await rows(first.page)).every((x) => x.level === 1));
  await first.page.waitForTimeout(300); // saved 150 ms after the change
  await first.page.close();
  const again = await open(t, url({ host: NODE }), { ctx });
  await waitLoaded(again.page, NODE_N);
  const r = await rows(again.page);
  assert.deepEqual(r.map((x) => x.level), [1, 1], 'a new visit shows the tree collapsed, hot paths too');
  await again.page.click('#expand-all');
  await again.page.waitForTimeout(300);
  await again.page.reload();
  await waitLoaded(again.page, NODE_N);
  assert.equal(await rowCount(again.page), NODE_N + 2, 'expand all is remembered too (every process and the 2 group rows)');
  first.check();
  again.check();
});

test('what changed: from the Processes tab on a host younger than the window; marks in the tree; grouped, ranked', async (t) => {
  const { page, check } = await open(t, url({ host: YOUNG }));
  await waitLoaded(page, youngAfter().length);
  await page.selectOption('#changes-win', '600');
  await wait(page, () => document.querySelectorAll('#changes li').length > 0, 'movers listed');
  const text = await page.textContent('#changes');
  assert.match(text, /younger than that: compared with its first snapshot/);
  assert.match(text, /\(\d+[smhd]( \d+[smhd])? before\)/, 'how long before, not "… ago before"');
  assert.doesNotMatch(text, /ago before/);
  assert.match(text, /12 started \(\+24\.0 % CPU, \+1\.2 GiB\), 1 exited \(−45\.0 % CPU, −2\.0 GiB\)/);
  const movers = await page.$$eval('#changes li', (els) => els.map((e) => `${e.dataset.kind} ${e.querySelector('.who').textContent}`));
  // java exited (45 % + 2 GiB) > chromium ×12 (24 % + 1.2 GiB) > db (2 % + 400 MiB); idle left out
  assert.deepEqual(movers, ['exited java', 'started chromium ×12', 'changed db']);
  // the tree marks them: chromium rows "new" (in their group), java as an exited ghost row
  await wait(page, () => document.querySelector('#viewport .row.exited') !== null, 'an exited row');
  const ghost = await page.$eval('#viewport .row.exited', (el) => ({ name: el.querySelector('.nm').textContent, badge: el.querySelector('.badge').textContent }));
  assert.deepEqual(ghost, { name: 'java', badge: 'exited' });
  assert.equal(await page.textContent('#match-count'), '16 processes', 'ghost rows are not counted');
  // chromium ×12 is open by default: the busiest of them are among the top consumers
  assert.equal(await page.getAttribute('#viewport .row.grp:has(.nm:text-is("chromium"))', 'aria-expanded'), 'true');
  assert.equal(await page.locator('#viewport .row.started .badge-new').count(), 12);
  // a mover selects its process in the tree
  await page.click('#changes li[data-kind=changed] .who');
  assert.equal(await page.textContent('#viewport .row.sel .nm'), 'db');
  await page.screenshot({ path: join(ART, 'light-what-changed.png') });
  // closing drops the marks
  await page.click('#changes .close');
  assert.equal(await page.locator('#viewport .row.exited, #viewport .row.started').count(), 0);
  assert.equal(await page.isVisible('#changes'), false);
  check();
});

test('what changed: the time-travel banner sums up since this moment and shows it in the live tree', async (t) => {
  const { page, check } = await open(t, url({ host: YOUNG, at: String(youngFirst) }));
  await wait(page, () => document.getElementById('past-changes').textContent.includes('Since this moment'), 'the banner summary');
  assert.equal(await page.textContent('#past-changes .past-sum'), 'Since this moment: 12 started, 1 exited; top: java −45.0 %, chromium ×12 +24.0 %, db +2.0 %.');
  await page.click('#past-changes-show');
  await wait(page, () => document.getElementById('past').hidden && document.querySelectorAll('#changes li').length === 3, 'live tree with the changes');
  assert.match(await page.textContent('#changes h2'), /^What changed since /);
  assert.equal(await page.locator('#viewport .row.exited').count(), 1);
  check();
});

test('5,000 processes with branch totals and groups render within budget (benchmark in the page)', async (t) => {
  const { page, check } = await open(t, url({ host: NODE }));
  await waitLoaded(page, NODE_N);
  const procs = bigProcesses(5000);
  const res = await page.evaluate(async ({ procs, ram }) => {
    const { ProcView } = await import('./static/js/procview.js');
    const el = (tag, cls, parent) => {
      const e = document.createElement(tag);
      if (cls) e.className = cls;
      if (parent) parent.appendChild(e);
      return e;
    };
    const times = [];
    const meta = { snapshot_id: 1, captured_at: new Date().toISOString(), system: { memory: { total_bytes: ram } } };
    for (let k = 0; k < 7; k++) {
      const box = el('div', 'procs', document.body);
      box.style.position = 'fixed';
      box.style.inset = '60px 40px 40px 300px';
      const grid = el('div', 'grid', box);
      const head = el('div', 'row head', grid);
      const viewport = el('div', 'viewport', grid);
      const spacer = el('div', 'spacer-y', viewport);
      const empty = el('div', 'empty', grid);
      const detail = el('aside', 'detail', box);
      detail.hidden = true;
      const matchCount = el('span', '', box);
      const view = new ProcView({ grid, head, viewport, spacer, empty, detail, matchCount }, { onSort() {} });
      view.setHost(`bench-${k}`);
      // Data in hand (already parsed): build, branch totals, sort by them,
      // groups, hot paths, the visible rows, and the layout they cost.
      const t0 = performance.now();
      view.setData(procs, meta);
      void viewport.getBoundingClientRect().height;
      void document.body.offsetHeight;
      times.push(performance.now() - t0);
      const drawn = viewport.querySelectorAll('.row:not([hidden])').length;
      if (drawn === 0) throw new Error('nothing drawn');
      box.remove();
    }
    // The same page, the logic alone (no DOM): how much of it is drawing.
    const T = await import('./static/js/tree.js');
    const logic = [];
    for (let k = 0; k < 7; k++) {
      const t0 = performance.now();
      const m = T.buildModel(procs);
      T.sortSiblings(m, 'cpu', undefined, true);
      const hot = T.hotPaths(m, 3);
      T.flatten(m, (i, d) => (i < 0 ? hot.group[-i - 1] === 1 : d === 0 || hot.proc[i] === 1), null);
      logic.push(performance.now() - t0);
    }
    return { times, logic };
  }, { procs, ram: RAM });
  const times = res.times;
  const sorted = times.slice(1).sort((a, b) => a - b); // the first warms the JIT
  const median = sorted[Math.floor(sorted.length / 2)];
  const logic = res.logic.slice(1).sort((a, b) => a - b)[3];
  perf.tree5000WithTotalsMs = { median: +median.toFixed(1), max: +sorted[sorted.length - 1].toFixed(1), first: +times[0].toFixed(1), logicMedian: +logic.toFixed(1), budget: 150, loadavg: loadavg()[0] };
  console.log(`perf: 5,000-process tree with branch totals: median ${median.toFixed(1)} ms, max ${sorted[sorted.length - 1].toFixed(1)} ms, first ${times[0].toFixed(1)} ms (budget 150 ms), of which the logic alone ${logic.toFixed(1)} ms; load average ${loadavg()[0]}`);
  // A generous bound: the machine is shared (load averages of 25 on 2
  // cores happen), so only a many-fold regression fails here; the figure
  // and its conditions are in docs/performance.md.
  assert.ok(median <= 1500, `median ${median.toFixed(1)} ms: ten times the 150 ms budget`);
  check();
});

// ---- live updates (issue 13's steady cost) ----

// liveHost ingests the k8s node under another name (each test its own, so
// their live snapshots do not meet) and returns a function that pushes the
// next snapshot with some processes changed: {pid: {cpu_percent...}}.
async function liveHost(name) {
  const key = `key-${name}-0123456789`;
  let at = Date.now() - 60000;
  let procs = k8sProcesses();
  const first = await ingest(BASE, key, snap(name, at, procs));
  const push = async (changes = {}) => {
    at += 2000;
    procs = procs.map((p) => (changes[p.pid] ? { ...p, ...changes[p.pid] } : p));
    return (await ingest(BASE, key, snap(name, at, procs))).snapshot_id;
  };
  return { first: first.snapshot_id, push };
}

const shows = (page, id) => wait(page, (want) => (document.getElementById('snap-meta')?.textContent ?? '').includes(`snapshot ${want} `), `snapshot ${id} on screen`, id);

// countSSE counts, in the page, the stream's messages (window.__sse), so a
// test knows the page heard of a snapshot whatever it then did about it.
const countSSE = () => {
  const ES = window.EventSource;
  window.__sse = 0;
  window.EventSource = class extends ES {
    constructor(...a) {
      super(...a);
      this.addEventListener('message', () => {
        window.__sse++;
        window.__sseAt = performance.now();
      });
    }
  };
};

test('a live snapshot that reorders the list moves the rows of the processes on screen and redraws only what changed', async (t) => {
  const host = 'live-reorder';
  const { push } = await liveHost(host);
  const { page, check } = await open(t, url({ host }));
  await waitLoaded(page, NODE_N);
  // Tag every drawn row and its name element with the pid they show, and
  // count from now on the labels and pid cells written again.
  const before = await page.evaluate(() => {
    window.__writes = { label: 0, pid: 0 };
    new MutationObserver((ms) => {
      for (const m of ms) {
        const el = m.target.nodeType === 1 ? m.target : m.target.parentElement;
        if (el.closest('.label')) window.__writes.label++;
        if (el.closest('.c-pid')) window.__writes.pid++;
      }
    }).observe(document.getElementById('viewport'), { subtree: true, childList: true, characterData: true });
    return Array.from(document.querySelectorAll('#viewport .row:not([hidden])'), (el) => {
      const pid = el.querySelector('.c-pid').textContent;
      el.__pid = pid;
      const nm = el.querySelector('.nm');
      if (nm) nm.__pid = pid;
      return { pid, r: Number(el.getAttribute('aria-rowindex')) };
    }).filter((x) => x.pid !== '');
  });
  // node (800) goes from 61.5 % to 250 %: it overtakes cron's branch.
  const id = await push({ 800: { cpu_percent: 250 } });
  await shows(page, id);
  // The snapshot line comes first, the process list just after it.
  await wait(page, () => Array.from(document.querySelectorAll('#viewport .row:not([hidden])'))
    .some((el) => el.querySelector('.c-pid').textContent === '800' && el.querySelector('.c-cpu .v').textContent === '250.0'), 'node at 250 %');
  const after = await page.evaluate(() => Array.from(document.querySelectorAll('#viewport .row:not([hidden])'), (el) => ({
    pid: el.querySelector('.c-pid').textContent,
    r: Number(el.getAttribute('aria-rowindex')),
    sameRow: el.__pid === el.querySelector('.c-pid').textContent,
    sameName: el.querySelector('.nm')?.__pid === el.querySelector('.c-pid').textContent,
    cpu: el.querySelector('.c-cpu .v').textContent,
  })).filter((x) => x.pid !== ''));
  const rowOfPid = (list, pid) => list.find((x) => x.pid === pid)?.r;
  assert.ok(rowOfPid(after, '800') < rowOfPid(after, '500'), `node now sorts before cron: ${JSON.stringify(after.slice(0, 12))}`);
  assert.ok(rowOfPid(before, '800') > rowOfPid(before, '500'), 'it did not before');
  assert.equal(after.find((x) => x.pid === '800').cpu, '250.0');
  const stayed = after.filter((x) => before.some((b) => b.pid === x.pid));
  const moved = stayed.filter((x) => rowOfPid(before, x.pid) !== x.r);
  assert.ok(moved.length >= 2, `rows moved: ${moved.map((x) => x.pid)}`);
  assert.deepEqual(stayed.filter((x) => !x.sameRow || !x.sameName).map((x) => x.pid), [],
    'each process still on screen keeps its row element and its name element');
  assert.deepEqual(await page.evaluate(() => window.__writes), { label: 0, pid: 0 }, 'no label or pid was written again');
  check();
});

test('a hidden tab fetches and draws no live snapshot; shown again, it catches up with one fetch', async (t) => {
  const host = 'live-hidden';
  const { push } = await liveHost(host);
  const ctx = await browser.newContext({ viewport: { width: 1400, height: 900 }, baseURL: BASE });
  t.after(() => ctx.close());
  await ctx.addInitScript(countSSE);
  // The tab's visibility, as the browser would report it for a background tab.
  await ctx.addInitScript(() => {
    let vis = 'visible';
    Object.defineProperty(Document.prototype, 'visibilityState', { configurable: true, get: () => vis });
    Object.defineProperty(Document.prototype, 'hidden', { configurable: true, get: () => vis === 'hidden' });
    window.__setVisibility = (v) => {
      vis = v;
      document.dispatchEvent(new Event('visibilitychange'));
    };
  });
  const { page, check } = await open(t, url({ host }), { ctx });
  let fetches = 0;
  page.on('request', (r) => {
    if (/\/api\/v1\/snapshots\/\d+\/processes/.test(r.url())) fetches++;
  });
  await waitLoaded(page, NODE_N);
  await wait(page, () => document.getElementById('live').dataset.stream === 'on', 'the stream connected');
  const shown = await page.textContent('#snap-meta');
  const before = fetches; // the first load's
  await page.evaluate(() => window.__setVisibility('hidden'));
  const heard = await page.evaluate(() => window.__sse);
  await push({ 800: { cpu_percent: 250 } });
  const last = await push({ 800: { cpu_percent: 10 } });
  await wait(page, (n) => window.__sse >= n + 2, 'the page heard both snapshots', heard);
  // Give a live update every chance to land (it would within milliseconds).
  await page.evaluate(() => new Promise((r) => setTimeout(r, 500)));
  assert.equal(fetches - before, 0, 'no process list fetched while hidden');
  assert.equal(await page.textContent('#snap-meta'), shown, 'the snapshot shown is the one before');
  await page.evaluate(() => window.__setVisibility('visible'));
  await shows(page, last);
  assert.equal(fetches - before, 1, 'shown again: one fetch, of the latest snapshot');
  check();
});

test('a live snapshot waits until the user stops scrolling the list', async (t) => {
  const host = 'live-gesture';
  const { push } = await liveHost(host);
  const ctx = await browser.newContext({ viewport: { width: 1400, height: 900 }, baseURL: BASE });
  t.after(() => ctx.close());
  await ctx.addInitScript(countSSE);
  const { page, check } = await open(t, url({ host }), { ctx });
  await waitLoaded(page, NODE_N);
  await wait(page, () => document.getElementById('live').dataset.stream === 'on', 'the stream connected');
  // Wheel over the list every 50 ms, and note when a new snapshot shows.
  await page.evaluate(() => {
    const first = Number(/snapshot (\d+)/.exec(document.getElementById('snap-meta').textContent)[1]);
    window.__wheel = { last: 0, stop: false, shownAt: 0 };
    const grid = document.getElementById('grid');
    const tick = () => {
      if (window.__wheel.stop) return;
      grid.dispatchEvent(new WheelEvent('wheel', { bubbles: true, deltaY: 1 }));
      window.__wheel.last = performance.now();
      setTimeout(tick, 50);
    };
    tick();
    new MutationObserver(() => {
      const m = /snapshot (\d+)/.exec(document.getElementById('snap-meta').textContent);
      if (m && Number(m[1]) > first && !window.__wheel.shownAt) window.__wheel.shownAt = performance.now();
    }).observe(document.getElementById('snap-meta'), { childList: true, characterData: true, subtree: true });
  });
  const heard = await page.evaluate(() => window.__sse);
  const id = await push({ 800: { cpu_percent: 250 } });
  await wait(page, (n) => window.__sse > n, 'the page heard the snapshot', heard);
  // The gesture goes on a little after the news came, then stops.
  await page.evaluate(() => new Promise((r) => setTimeout(() => {
    window.__wheel.stop = true;
    r();
  }, 600)));
  await shows(page, id);
  const w = await page.evaluate(() => ({ ...window.__wheel, sseAt: window.__sseAt }));
  assert.ok(w.sseAt < w.last, 'the snapshot came during the gesture');
  assert.ok(w.shownAt > w.last, `shown at ${w.shownAt.toFixed(0)} ms, after the last wheel at ${w.last.toFixed(0)} ms`);
  check();
});

test('screenshot: a culprit found in the tree (docs/culprit.png with UPDATE_SCREENSHOTS=1)', async (t) => {
  // The same processes again, now: the host is online in the picture.
  await ingest(BASE, KEYS[NODE], snap(NODE, Date.now(), k8sProcesses()));
  const { page, check } = await open(t, url({ host: NODE }), { width: 1400, height: 900 });
  await waitLoaded(page, NODE_N);
  // The way an SRE meets it: everything collapsed but the host, the
  // idle cron job's branch on top with its 184 % total in red.
  await page.click('#collapse-all');
  await rowOf(page, 1).locator('.tog').click();
  await rowOf(page, 300).locator('.tog').click();
  await rowOf(page, 500).locator('.c-user').click();
  await page.keyboard.press('Enter');
  await page.waitForSelector('#detail:not([hidden]) h2');
  const g = (await gauges(page)).find((x) => x.pid === '500');
  assert.equal(g.cpu.sum, 'Σ184.1');
  const out = join(ART, 'culprit.png');
  await page.screenshot({ path: out });
  if (process.env.UPDATE_SCREENSHOTS === '1') copyFileSync(out, join(here, '..', '..', 'docs', 'culprit.png'));
  check();
});
