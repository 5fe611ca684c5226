// The History tab with history in an external TSDB (issue 14): an
// aggregator of its own, started with --remote-write.url and --history.url
// pointing at a real TSDB this test starts on 127.0.0.1 in a temp dir
// (Debian's packages), draws its charts from that TSDB, with the right
// series on each; with the TSDB killed it says the external TSDB failed
// to answer. Twice: a victoria-metrics single node, and Prometheus 2.42
// with --web.enable-remote-write-receiver.
//
// Without /usr/bin/victoria-metrics or /usr/bin/prometheus that engine's
// test skips loudly, unless REQUIRE_E2E=1, when that is a failure.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS, STEP_TIMEOUT, ingest, startAggregator, stopAggregator } from './lib.mjs';
import { smallProcesses, snapshot } from './fixtures.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const ART = join(here, 'artifacts');
mkdirSync(ART, { recursive: true });
const AGG_BIN = resolve(process.env.PROCSCOPE_AGGREGATOR || join(here, '..', '..', 'bin', 'procscope-aggregator'));

/** freePort asks the OS for a free port on 127.0.0.1. */
function freePort() {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => res(port));
    });
  });
}

// The engines: how to start each on a port and a data dir of its own, and
// where it takes remote write and answers readiness.
const ENGINES = [
  {
    name: 'VictoriaMetrics',
    shot: 'light-history-victoriametrics.png',
    bin: process.env.VICTORIA_METRICS_PATH || '/usr/bin/victoria-metrics',
    pkg: 'victoria-metrics',
    ready: '/health',
    // -search.latencyOffset=0s: the newest samples are queryable at once.
    args: (port, dir) => [`-httpListenAddr=127.0.0.1:${port}`, `-storageDataPath=${dir}`, '-retentionPeriod=100y',
      '-search.latencyOffset=0s', '-search.disableCache', '-loggerLevel=WARN'],
  },
  {
    name: 'Prometheus',
    shot: 'light-history-prometheus.png',
    bin: process.env.PROMETHEUS_PATH || '/usr/bin/prometheus',
    pkg: 'prometheus',
    ready: '/-/ready',
    // The snapshots are up to 40 minutes old and their series start at
    // different times: out-of-order samples accepted a day back.
    config: 'global: {}\nstorage:\n  tsdb:\n    out_of_order_time_window: 1d\n',
    args: (port, dir) => [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`, '--web.enable-remote-write-receiver', '--storage.tsdb.retention.time=100y',
      '--log.level=warn'],
  },
];
for (const e of ENGINES) {
  e.missing = !existsSync(e.bin);
  if (e.missing && process.env.REQUIRE_E2E === '1') throw new Error(`${e.bin} not found (apt-get install ${e.pkg}) and REQUIRE_E2E=1`);
  if (e.missing) console.error(`!!! SKIPPING tsdb.test.mjs for ${e.name}: ${e.bin} not found (apt-get install ${e.pkg}); set REQUIRE_E2E=1 to make this a failure`);
}

/** startTSDB starts an engine in its own process group and waits (bounded) until it is ready. */
async function startTSDB(e) {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), `procscope-webtest-${e.pkg}-`));
  if (e.config) writeFileSync(join(dir, 'prometheus.yml'), e.config);
  let output = '';
  const child = spawn(e.bin, e.args(port, dir), { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const keep = (b) => {
    if (output.length < 1 << 16) output += b.toString();
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const base = `http://127.0.0.1:${port}`;
  const db = { child, dir, base, log: () => output };
  for (let i = 0; i < 300; i++) {
    try {
      if ((await fetch(`${base}${e.ready}`, { signal: AbortSignal.timeout(2000) })).ok) return db;
    } catch {
      // not yet
    }
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  await killTSDB(db);
  throw new Error(`${e.name} did not start:\n${output}`);
}

/** killTSDB stops our own TSDB by its process group id. */
async function killTSDB(db, signal = 'SIGKILL') {
  if (!db || db.child.exitCode !== null || db.child.signalCode !== null) return;
  const exited = new Promise((r) => db.child.once('exit', r));
  try {
    process.kill(-db.child.pid, signal);
  } catch {
    // gone
  }
  await Promise.race([exited, new Promise((r) => setTimeout(r, 10000))]);
}

let browser = null;
before(async () => {
  if (ENGINES.every((e) => e.missing)) return;
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 30000 });
});
after(async () => {
  if (browser) await browser.close();
});

/** charts reads every chart's kind, point count and legend labels. */
const charts = (page) => page.evaluate(() => Array.from(document.querySelectorAll('#panel-history .chart'), (f) => ({
  kind: f.dataset.chart,
  points: Number(f.dataset.points),
  labels: Array.from(f.querySelectorAll('.u-legend .u-series:not(:first-child) .u-label'), (el) => el.textContent),
  canvas: !!f.querySelector('canvas'),
})));

for (const e of ENGINES) {
  test(`history tab: charts served from ${e.name} (--history.url)`, { skip: e.missing }, async (t) => {
    const db = await startTSDB(e);
    t.after(async () => {
      await killTSDB(db);
      rmSync(db.dir, { recursive: true, force: true });
    });
    const agg = await startAggregator(AGG_BIN, { args: [`--remote-write.url=${db.base}/api/v1/write`, `--history.url=${db.base}`] });
    t.after(() => stopAggregator(agg));

    const HOST = `tsdb-${e.pkg}`;
    const key = `key-${e.pkg}-0123456789`;
    const now = Date.now();
    const ats = [];
    for (const [k, m] of [40, 30, 20, 10].entries()) {
      const procs = smallProcesses().map((p) => (p.pid === 460 ? { ...p, cpu_percent: 10 + k * 20 } : p));
      const snap = snapshot(HOST, new Date(now - m * 60000).toISOString(), procs);
      snap.system_info.cpu.usage_percent = 11 + k * 7;
      // History keeps sample times to 100 ms (rounded half up).
      ats.push((Math.floor((now - m * 60000 + 50) / 100) * 100) / 1000);
      await ingest(agg.base, key, snap);
    }
    // Remote write batches for up to a second; then the TSDB has them.
    const seriesURL = `${agg.base}/api/v1/hosts/${HOST}/series?metric=cpu&from=${Math.floor(now / 1000) - 3600}&to=${Math.ceil(now / 1000)}`;
    let values = [];
    for (let i = 0; i < 60 && values.length < 4; i++) {
      const res = await fetch(seriesURL, { signal: AbortSignal.timeout(5000) });
      values = res.ok ? ((await res.json()).series?.[0]?.values ?? []) : [];
      if (values.length < 4) await new Promise((r) => setTimeout(r, 500));
    }
    assert.deepEqual(values, ats.map((at, k) => [at, 11 + k * 7]), `the 4 snapshots' CPU, read back from ${e.name}`);
    // The TSDB itself holds exactly these samples.
    const q = new URLSearchParams({ query: `procscope_snapshot_cpu_usage_percent{hostname="${HOST}"}[2h]`, time: String(Math.ceil(now / 1000)) });
    const direct = await (await fetch(`${db.base}/api/v1/query?${q}`, { signal: AbortSignal.timeout(5000) })).json();
    assert.deepEqual(direct.data.result[0].values.map(([ts, v]) => [ts, Number(v)]), values);

    const ctx = await browser.newContext({ viewport: { width: 1280, height: 1000 }, baseURL: agg.base });
    t.after(() => ctx.close());
    const page = await ctx.newPage();
    page.setDefaultTimeout(STEP_TIMEOUT);
    const errors = [];
    page.on('pageerror', (err) => errors.push(String(err)));
    page.on('dialog', (d) => {
      errors.push(`dialog: ${d.message()}`);
      d.dismiss();
    });
    // What the page itself fetched for the CPU chart: the TSDB's samples.
    const cpuAnswers = [];
    page.on('response', async (r) => {
      const u = new URL(r.url());
      if (u.pathname === `/api/v1/hosts/${HOST}/series` && (u.searchParams.get('metric') ?? 'cpu') === 'cpu' && r.ok()) {
        cpuAnswers.push(await r.json().catch(() => null));
      }
    });
    await page.goto(`/?${new URLSearchParams({ host: HOST, tab: 'history' })}`);
    await page.waitForFunction(() => document.querySelectorAll('#panel-history .chart canvas').length >= 7
      && document.querySelector('#panel-history .hist-status')?.textContent === '', null, { timeout: 30000, polling: 100 });
    const cs = await charts(page);
    const by = Object.fromEntries(cs.map((c) => [c.kind, c]));
    assert.deepEqual(cs.map((c) => c.kind), ['%', 'bytes', 'proc-cpu', 'proc-mem', 'load', 'swap', 'fs'], 'every chart');
    assert.ok(cs.every((c) => c.canvas), 'every chart drawn');
    assert.equal(by['%'].points, 4, 'the CPU chart: the 4 samples');
    assert.deepEqual(by.bytes.labels, ['used', 'total'], 'memory against total RAM');
    assert.deepEqual(by.load.labels, ['1 min', '5 min', '15 min']);
    assert.deepEqual(by.swap.labels, ['used']);
    assert.deepEqual(by.fs.labels, ['/var/lib/docker', '/', '/boot/efi'], 'every filesystem, a series each, fullest first');
    assert.equal(by['proc-cpu'].labels[0], 'java (460)', 'the busiest process of the latest snapshot');
    assert.equal(by['proc-mem'].labels[0], 'java (460)');
    for (const c of cs) assert.ok(c.points >= 1, `${c.kind}: points from ${e.name} (${c.points})`);
    // The page asks for the window in buckets of `step` seconds (stamped
    // with their start): one bucket per sample here, holding its value.
    const bucketed = (a) => values.map(([ts, v]) => [Math.floor(ts / a.step) * a.step, v]);
    assert.ok(cpuAnswers.some((a) => a?.step > 0 && JSON.stringify(a.series?.[0]?.values) === JSON.stringify(bucketed(a))),
      `the page drew the CPU samples ${e.name} holds (${JSON.stringify(values)}): ${JSON.stringify(cpuAnswers)}`);
    const text = await page.textContent('#panel-history');
    assert.ok(!text.includes('charts are missing') && !text.includes('No charts'), 'history loaded');
    await page.screenshot({ path: join(ART, e.shot) });

    // No TSDB, no history: the tab says so rather than showing anything
    // from elsewhere.
    await killTSDB(db);
    await page.reload();
    await page.waitForFunction(() => document.getElementById('panel-history')?.textContent.includes('external TSDB that failed to answer'), null, { timeout: 30000 });
    assert.deepEqual(errors, []);
  });
}
