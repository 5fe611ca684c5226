// The History tab with history in an external TSDB (issue 14): a second
// aggregator of its own, started with --remote-write.url and --history.url
// pointing at a real victoria-metrics single node this test starts on
// 127.0.0.1 (Debian's package), draws its charts from VictoriaMetrics; with
// VictoriaMetrics killed it says the external TSDB failed to answer.
//
// Without /usr/bin/victoria-metrics the test skips loudly, unless
// REQUIRE_E2E=1, when that is a failure.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
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
const VM_BIN = process.env.VICTORIA_METRICS_PATH || '/usr/bin/victoria-metrics';
const AGG_BIN = resolve(process.env.PROCSCOPE_AGGREGATOR || join(here, '..', '..', 'bin', 'procscope-aggregator'));
const missing = !existsSync(VM_BIN);
if (missing && process.env.REQUIRE_E2E === '1') throw new Error(`${VM_BIN} not found (apt-get install victoria-metrics) and REQUIRE_E2E=1`);
if (missing) console.error(`!!! SKIPPING tsdb.test.mjs: ${VM_BIN} not found (apt-get install victoria-metrics); set REQUIRE_E2E=1 to make this a failure`);

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

let vm = null; // { child, dir, base }
let agg = null;
let browser = null;

async function startVM() {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'procscope-webtest-vm-'));
  const child = spawn(VM_BIN, [`-httpListenAddr=127.0.0.1:${port}`, `-storageDataPath=${dir}`, '-retentionPeriod=100y',
    '-search.latencyOffset=0s', '-search.disableCache', '-loggerLevel=WARN'], { stdio: 'ignore', detached: true });
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 300; i++) {
    try {
      if ((await fetch(`${base}/health`, { signal: AbortSignal.timeout(2000) })).ok) return { child, dir, base };
    } catch {
      // not yet
    }
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('victoria-metrics did not start');
}

/** killVM stops our own victoria-metrics by its process group id. */
async function killVM(signal = 'SIGKILL') {
  if (!vm || vm.child.exitCode !== null || vm.child.signalCode !== null) return;
  const exited = new Promise((r) => vm.child.once('exit', r));
  try {
    process.kill(-vm.child.pid, signal);
  } catch {
    // gone
  }
  await Promise.race([exited, new Promise((r) => setTimeout(r, 10000))]);
}

before(async () => {
  if (missing) return;
  vm = await startVM();
  agg = await startAggregator(AGG_BIN, { args: [`--remote-write.url=${vm.base}/api/v1/write`, `--history.url=${vm.base}`] });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 30000 });
});

after(async () => {
  if (browser) await browser.close();
  await stopAggregator(agg);
  await killVM();
  if (vm) rmSync(vm.dir, { recursive: true, force: true });
});

test('history tab: charts served from VictoriaMetrics (--history.url)', { skip: missing }, async () => {
  const HOST = 'tsdb-host';
  const key = 'key-tsdb-0123456789';
  const now = Date.now();
  for (const [k, m] of [40, 30, 20, 10].entries()) {
    const procs = smallProcesses().map((p) => (p.pid === 460 ? { ...p, cpu_percent: 10 + k * 20 } : p));
    await ingest(agg.base, key, snapshot(HOST, new Date(now - m * 60000).toISOString(), procs));
  }
  // Remote write batches for up to a second; then VictoriaMetrics has them.
  const seriesURL = `${agg.base}/api/v1/hosts/${HOST}/series?metric=cpu&from=${Math.floor(now / 1000) - 3600}&to=${Math.ceil(now / 1000)}`;
  let values = [];
  for (let i = 0; i < 60 && values.length < 4; i++) {
    const res = await fetch(seriesURL, { signal: AbortSignal.timeout(5000) });
    values = res.ok ? ((await res.json()).series?.[0]?.values ?? []) : [];
    if (values.length < 4) await new Promise((r) => setTimeout(r, 500));
  }
  assert.equal(values.length, 4, "the 4 snapshots' CPU, read back from VictoriaMetrics");
  // VictoriaMetrics itself holds exactly these samples.
  const q = new URLSearchParams({ query: `procscope_snapshot_cpu_usage_percent{hostname="${HOST}"}[2h]`, time: String(Math.ceil(now / 1000)) });
  const direct = await (await fetch(`${vm.base}/api/v1/query?${q}`, { signal: AbortSignal.timeout(5000) })).json();
  assert.deepEqual(direct.data.result[0].values.map(([t, v]) => [t, Number(v)]), values);

  const ctx = await browser.newContext({ viewport: { width: 1280, height: 1000 }, baseURL: agg.base });
  const page = await ctx.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT);
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('dialog', (d) => {
    errors.push(`dialog: ${d.message()}`);
    d.dismiss();
  });
  await page.goto(`/?${new URLSearchParams({ host: HOST, tab: 'history' })}`);
  await page.waitForSelector('#panel-history .chart canvas');
  assert.ok((await page.locator('#panel-history .chart').count()) >= 2, 'CPU, memory and the other charts');
  assert.ok(!(await page.textContent('#panel-history')).includes('charts are missing'), 'history loaded');
  assert.ok(!(await page.textContent('#panel-history')).includes('No charts'), 'history loaded');
  await page.screenshot({ path: join(ART, 'light-history-victoriametrics.png') });

  // No VictoriaMetrics, no history: the tab says so rather than showing
  // anything from elsewhere.
  await killVM();
  await page.reload();
  await page.waitForFunction(() => document.getElementById('panel-history')?.textContent.includes('external TSDB that failed to answer'), null, { timeout: 30000 });
  assert.deepEqual(errors, []);
  await ctx.close();
});
