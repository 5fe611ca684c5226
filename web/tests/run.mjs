// run.mjs: the web UI's test entry point (`make webtest`).
//
// It starts the real aggregator (bin/procscope-aggregator, built by
// `make build`) on 127.0.0.1:0 with a temporary storage dir, then runs the
// tests with node's test runner: tree.test.mjs (pure logic) and
// ui.test.mjs (Debian's Chromium through playwright-core, data ingested
// through the real POST /api/v1/ingest) and fleet.test.mjs (which starts
// its own aggregator, as it stops it). `node run.mjs fleet.test.mjs` runs
// one file. The aggregator is stopped by its
// process group id at the end, on failure too.
//
// Without /usr/bin/chromium the browser tests are skipped loudly, unless
// REQUIRE_E2E=1, when that is a failure.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, createWriteStream } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CHROMIUM, startAggregator, stopAggregator } from './lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const TOTAL_TIMEOUT_MS = 20 * 60 * 1000;
const artifacts = join(here, 'artifacts');
mkdirSync(artifacts, { recursive: true });

const extra = []; // e.g. --test-name-pattern=benchmark from the command line
function runTests(files, env) {
  return new Promise((res) => {
    const child = spawn(process.execPath, ['--test', '--test-concurrency=1', '--test-timeout=480000', ...extra, ...files], {
      cwd: here,
      stdio: 'inherit',
      env: { ...process.env, ...env },
      detached: true,
    });
    const timer = setTimeout(() => {
      console.error(`run.mjs: tests still running after ${TOTAL_TIMEOUT_MS / 1000}s, stopping them`);
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }, TOTAL_TIMEOUT_MS);
    child.on('exit', (code, sig) => {
      clearTimeout(timer);
      res(code ?? (sig ? 1 : 0));
    });
  });
}

if (!existsSync(CHROMIUM)) {
  const banner = '!'.repeat(78);
  console.error(`${banner}\n!!! SKIPPING the browser tests: ${CHROMIUM} not found (apt-get install chromium).\n!!! Only the tree logic tests run. Set REQUIRE_E2E=1 to make this a failure.\n${banner}`);
  if (process.env.REQUIRE_E2E === '1') {
    console.error('REQUIRE_E2E=1: a missing Chromium is a failure');
    process.exit(1);
  }
  process.exit(await runTests(['tree.test.mjs'], {}));
}

const bin = resolve(process.env.PROCSCOPE_AGGREGATOR || join(here, '..', '..', 'bin', 'procscope-aggregator'));
const logFile = createWriteStream(join(artifacts, 'aggregator.log'));
let agg = null;
let stopping = false;
async function cleanup(code) {
  if (stopping) return;
  stopping = true;
  await stopAggregator(agg);
  logFile.end();
  process.exit(code);
}
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => cleanup(130));

let code = 1;
try {
  agg = await startAggregator(bin, { log: (s) => logFile.write(s) });
  console.log(`run.mjs: aggregator ${bin} at ${agg.base} (pid ${agg.child.pid}), log in artifacts/aggregator.log`);
  // `node run.mjs procview.test.mjs` runs only the files named.
  const only = process.argv.slice(2).filter((f) => f.endsWith('.test.mjs'));
  extra.push(...process.argv.slice(2).filter((f) => f.startsWith('--test-name-pattern=')));
  // One runner per file, in this order: node's runner would order them by
  // name, and procview's hosts must not show up in ui's exact host list.
  code = 0;
  for (const f of only.length ? only : ['tree.test.mjs', 'ui.test.mjs', 'procview.test.mjs', 'history.test.mjs', 'tsdb.test.mjs', 'fleet.test.mjs', 'insight.test.mjs', 'live.test.mjs', 'steady.test.mjs']) {
    const c = await runTests([f], { PROCSCOPE_BASE: agg.base, PROCSCOPE_AGGREGATOR: bin });
    if (c !== 0) code = c;
  }
} catch (err) {
  console.error(`run.mjs: ${err.stack || err}`);
  code = 1;
}
await cleanup(code);
