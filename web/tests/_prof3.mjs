import { chromium } from 'playwright-core';
import { ingest, CHROMIUM_ARGS, startAggregator, stopAggregator } from '/work/main/web/tests/lib.mjs';
import { bigProcesses, snapshot } from '/work/main/web/tests/fixtures.mjs';
const agg = await startAggregator('/work/main/bin/procscope-aggregator');
await ingest(agg.base, 'k', snapshot('big', new Date().toISOString(), bigProcesses(5000)));
const b = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
const variants = ['', '.viewport{contain:none !important}', '.grid{container-type:normal !important}', 'mark{border-radius:0 !important;padding:0 !important}', '.c{text-overflow:clip !important}', '.label .cmd{display:none !important}', '#viewport .row{contain: strict}', '*{font-variant-numeric:normal !important}'];
for (const css of variants) {
  const p = await b.newPage({ viewport: { width: 1280, height: 720 } });
  await p.goto(agg.base + '/?host=big');
  await p.waitForTimeout(1500);
  const times = await p.evaluate(async (css) => {
    if (css) { const s = new CSSStyleSheet(); s.replaceSync(css); document.adoptedStyleSheets = [s]; }
    await new Promise((r) => setTimeout(r, 100));
    const input = document.getElementById('search'); const out = [];
    for (const q of ['n', 'ng', 'n', 'ng', 'n', 'ng', 'n', 'ng']) { const t0 = performance.now(); input.value = q; input.dispatchEvent(new Event('input')); const t1 = performance.now(); await new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0))); out.push(performance.now() - t1); await new Promise((r) => setTimeout(r, 30)); }
    out.sort((a, b) => a - b);
    return out[Math.floor(out.length / 2)].toFixed(1);
  }, css);
  console.log(times, css);
  await p.close();
}
await b.close(); await stopAggregator(agg);
