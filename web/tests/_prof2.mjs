import { chromium } from 'playwright-core';
import { ingest, CHROMIUM_ARGS, startAggregator, stopAggregator } from '/work/main/web/tests/lib.mjs';
import { bigProcesses, snapshot } from '/work/main/web/tests/fixtures.mjs';
const agg = await startAggregator('/work/main/bin/procscope-aggregator');
await ingest(agg.base, 'k', snapshot('big', new Date().toISOString(), bigProcesses(5000)));
const b = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
const p = await b.newPage({ viewport: { width: 1280, height: 720 } });
await p.goto(agg.base + '/?host=big');
await p.waitForTimeout(2000);
const cdp = await p.context().newCDPSession(p);
await cdp.send('Profiler.enable'); await cdp.send('Profiler.setSamplingInterval', { interval: 100 });
await cdp.send('Profiler.start');
const times = await p.evaluate(async () => {
  const input = document.getElementById('search'); const out = [];
  for (const q of ['n', 'ng', 'ngi', 'ngin', '', 'n', 'ng', 'ngi']) { const t0 = performance.now(); input.value = q; input.dispatchEvent(new Event('input')); const t1 = performance.now(); await new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0))); out.push([+(t1 - t0).toFixed(1), +(performance.now() - t0).toFixed(1)]); await new Promise((r) => setTimeout(r, 50)); }
  return out;
});
const { profile } = await cdp.send('Profiler.stop');
console.log(JSON.stringify(times));
const self = new Map(); const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const dt = profile.timeDeltas;
profile.samples.forEach((id, k) => { const n = byId.get(id); const key = `${n.callFrame.functionName || '(anon)'} ${n.callFrame.url.split('/').pop()}:${n.callFrame.lineNumber}`; self.set(key, (self.get(key) || 0) + (dt[k] || 0) / 1000); });
console.log([...self].sort((a, b) => b[1] - a[1]).slice(0, 14).map(([k, v]) => `${v.toFixed(1)} ${k}`).join('\n'));
await b.close(); await stopAggregator(agg);
