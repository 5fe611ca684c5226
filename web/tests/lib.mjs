// lib.mjs: shared helpers of the browser tests: start and stop the real
// aggregator, ingest over HTTP, launch Debian's Chromium, read the page.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const STEP_TIMEOUT = 10000; // ms, any single wait in a test

/**
 * startAggregator runs the binary on 127.0.0.1:0 with a fresh storage dir
 * and waits (bounded) for its "Listening on" line and /-/ready.
 * It runs in its own process group, so stopAggregator ends it and nothing else.
 */
export async function startAggregator(bin, { timeoutMs = 30000, log = () => {}, args = [] } = {}) {
  if (!existsSync(bin)) throw new Error(`aggregator binary ${bin} not found: run \`make build\` first`);
  const dir = mkdtempSync(join(tmpdir(), 'procscope-webtest-'));
  const child = spawn(bin, ['--web.listen-address=127.0.0.1:0', `--storage.path=${dir}`, '--log.level=info', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let output = '';
  const address = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`aggregator printed no listen address within ${timeoutMs} ms:\n${output}`)), timeoutMs);
    const onData = (buf) => {
      const s = buf.toString();
      output += s;
      log(s);
      const m = output.match(/Listening on.*?address=\[?(127\.0\.0\.1\]?:\d+)/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1].replace(']', ''));
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`aggregator exited with ${code} before listening:\n${output}`));
    });
  });
  child.stdout.removeAllListeners('data');
  child.stderr.removeAllListeners('data');
  child.stdout.on('data', (b) => log(b.toString()));
  child.stderr.on('data', (b) => log(b.toString()));
  const base = `http://${address}`;
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; i < 300 && Date.now() < deadline; i++) {
    try {
      const res = await fetch(`${base}/-/ready`, { signal: AbortSignal.timeout(2000) });
      if (res.ok) break;
    } catch {
      // not yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { child, base, dir };
}

export async function stopAggregator(agg) {
  if (!agg) return;
  const { child, dir } = agg;
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((r) => child.once('exit', r));
    try {
      process.kill(-child.pid, 'SIGTERM'); // its own process group, by id
    } catch {
      // already gone
    }
    const timedOut = await Promise.race([exited.then(() => false), new Promise((r) => setTimeout(() => r(true), 10000))]);
    if (timedOut) {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    }
  }
  rmSync(dir, { recursive: true, force: true });
}

/** ingest POSTs one snapshot (gzip JSON) and returns the parsed answer. */
export async function ingest(base, key, snap) {
  const res = await fetch(`${base}/api/v1/ingest`, {
    method: 'POST',
    headers: { 'X-API-KEY': key, 'Content-Type': 'application/json', 'Content-Encoding': 'gzip' },
    body: gzipSync(Buffer.from(JSON.stringify(snap))),
    signal: AbortSignal.timeout(STEP_TIMEOUT),
  });
  const body = await res.json();
  if (res.status !== 201 && res.status !== 200) throw new Error(`ingest ${snap.hostname}: ${res.status} ${JSON.stringify(body)}`);
  return body;
}

export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync'];

/** rows returns the rendered (visible) rows of the process list in order. */
export async function rows(page) {
  return page.evaluate(() => Array.from(document.querySelectorAll('#viewport .row:not([hidden])'))
    .map((el) => ({
      r: Number(el.getAttribute('aria-rowindex')) - 2,
      pid: Number(el.querySelector('.c-pid').textContent),
      ppid: Number(el.querySelector('.c-ppid').textContent),
      name: el.querySelector('.nm').textContent,
      level: Number(el.getAttribute('aria-level') || 0),
      expanded: el.getAttribute('aria-expanded'),
      selected: el.classList.contains('sel'),
      cpu: Number(el.querySelector('.c-cpu .v').textContent),
      mem: Number(el.querySelector('.c-mem .v').textContent),
      marks: Array.from(el.querySelectorAll('mark'), (m) => m.textContent),
      tag: el.querySelector('.tag')?.textContent ?? '',
    }))
    .sort((a, b) => a.r - b.r));
}

/** rowCount is the length of the whole (virtualised) list. */
export async function rowCount(page) {
  return Number(await page.getAttribute('#grid', 'aria-rowcount')) - 1;
}

/** measure returns the app's last performance.measure of that name (ms). */
export async function lastMeasure(page, name) {
  return page.evaluate((n) => {
    const e = performance.getEntriesByName(n, 'measure');
    return e.length ? e[e.length - 1].duration : -1;
  }, name);
}

/**
 * watchPage collects what must never happen on our pages: a dialog (then
 * dismissed), an uncaught page error, a console error (CSP violations
 * included) that ignoreConsole does not excuse. The test asserts the list
 * is empty at its end.
 */
export function watchPage(page, ignoreConsole = () => false) {
  const problems = [];
  page.on('dialog', (d) => {
    problems.push(`dialog opened: ${d.type()} ${d.message()}`);
    d.dismiss().catch(() => {});
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !ignoreConsole(m)) problems.push(`console error: ${m.text()} at ${m.location().url}`);
  });
  return problems;
}

/**
 * waitSeries waits (bounded, 30 s) until the host's CPU history over the
 * last rangeSec seconds has n points.
 */
export async function waitSeries(base, host, n, rangeSec) {
  const now = Math.ceil(Date.now() / 1000);
  const u = `${base}/api/v1/hosts/${encodeURIComponent(host)}/series?metric=cpu&from=${now - rangeSec}&to=${now + 60}`;
  let points = 0;
  for (let i = 0; i < 60 && points < n; i++) {
    const body = await (await fetch(u, { signal: AbortSignal.timeout(5000) })).json();
    points = body.series?.[0]?.values?.length ?? 0;
    if (points < n) await new Promise((r) => setTimeout(r, 500));
  }
  assert.ok(points >= n, `history of ${host} has ${n} points (${points})`);
}

let axeSource = null; // axe.min.js, read on the first axe() call: most test files never need it

/**
 * axe runs axe-core in the page (evaluated from the Node side, so the page's
 * CSP does not apply) and returns its serious and critical findings, one
 * line each; the test asserts the list is empty.
 */
export async function axe(page) {
  axeSource ??= readFileSync(join(dirname(fileURLToPath(import.meta.url)), 'node_modules', 'axe-core', 'axe.min.js'), 'utf8');
  await page.evaluate(axeSource);
  return page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { resultTypes: ['violations'] });
    return r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => `${v.impact} ${v.id}: ${v.help} (${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(' | ')})`);
  });
}
