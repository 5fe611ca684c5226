// system.js: the System Details tab, drawn from the latest snapshot's
// system_info (snapshot.SystemInfo in aggregator/snapshot/snapshot.go).
// system_info is stored as the exporter sent it, and the original Python
// agent sent other keys, so anything not understood is listed as text too.

import { h, bytes, num, duration, localTime } from './util.js';

const KNOWN = new Set(['os', 'cpu', 'memory', 'swap', 'filesystems', 'boot_time', 'uptime_seconds', 'load_average', 'process_count', 'exporter']);

const obj = (v) => (v && typeof v === 'object' && !Array.isArray(v) ? v : {});

function card(title, ...body) {
  return h('section', { class: 'card' }, h('h3', null, title), ...body);
}

function dl(pairs) {
  const kids = [];
  for (const [k, v] of pairs) {
    if (v === undefined || v === null || v === '' || v === '—') continue;
    kids.push(h('dt', null, k), h('dd', null, v));
  }
  return kids.length ? h('dl', null, kids) : h('p', { class: 'muted' }, 'not reported');
}

/** bar draws a used/total gauge; the width is set through the CSSOM (CSP-safe). */
function bar(used, total, label, caption) {
  const frac = total > 0 ? Math.min(1, Math.max(0, used / total)) : 0;
  const fill = h('div', { class: `fill${frac >= 0.9 ? ' hot' : frac >= 0.75 ? ' warm' : ''}` });
  fill.style.width = `${(frac * 100).toFixed(1)}%`;
  const el = h('div', { class: 'bar', role: 'meter', 'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-valuenow': (frac * 100).toFixed(0), 'aria-label': label }, fill);
  return caption ? h('div', { class: 'barcap' }, h('span', null, caption), el) : el;
}

const pct = (used, total) => (total > 0 ? `${((used / total) * 100).toFixed(1)} %` : '—');

/**
 * renderSystem fills el with the snapshot's details.
 * @param latest the /api/v1/snapshots/latest answer
 */
export function renderSystem(el, latest) {
  if (!latest) {
    el.replaceChildren(h('p', { class: 'muted pad' }, 'No snapshot yet.'));
    return;
  }
  const s = obj(latest.system);
  const os = obj(s.os);
  const cpu = obj(s.cpu);
  const mem = obj(s.memory);
  const swap = obj(s.swap);
  const load = obj(s.load_average);
  const memTotal = Number(mem.total_bytes) || 0;
  const memUsed = Number(mem.used_bytes) || 0;
  const swapTotal = Number(swap.total_bytes) || 0;
  const swapUsed = Number(swap.used_bytes) || 0;

  const cards = [];
  cards.push(card('Operating system', dl([
    ['System', os.name],
    ['Distribution', [os.distro, os.version].filter(Boolean).join(' ')],
    ['Kernel', os.kernel],
    ['Architecture', os.arch],
    ['Uptime', s.uptime_seconds !== undefined ? duration(s.uptime_seconds) : undefined],
    ['Booted', s.boot_time ? localTime(s.boot_time) : undefined],
    ['Exporter', s.exporter],
  ])));
  const usage = Number(cpu.usage_percent);
  cards.push(card('CPU', dl([
    ['Model', cpu.model],
    ['Physical cores', cpu.physical_cores !== undefined ? String(cpu.physical_cores) : undefined],
    ['Logical threads', cpu.logical_threads !== undefined ? String(cpu.logical_threads) : undefined],
    ['Frequency', cpu.current_mhz ? `${num(cpu.current_mhz, 0)} MHz${cpu.max_mhz ? ` (max ${num(cpu.max_mhz, 0)} MHz)` : ''}` : undefined],
    ['Usage', Number.isFinite(usage) ? `${num(usage, 1)} %` : undefined],
    ['Load average', s.load_average ? `${num(load.load1, 2)}  ${num(load.load5, 2)}  ${num(load.load15, 2)}` : undefined],
  ]), Number.isFinite(usage) ? bar(usage, 100, 'CPU usage', 'CPU') : null));
  cards.push(card('Memory', dl([
    ['Total', memTotal ? bytes(memTotal) : undefined],
    ['Used', memTotal ? `${bytes(memUsed)} (${pct(memUsed, memTotal)})` : undefined],
    ['Available', mem.available_bytes !== undefined ? bytes(mem.available_bytes) : undefined],
    ['Swap', swapTotal ? `${bytes(swapUsed)} of ${bytes(swapTotal)} (${pct(swapUsed, swapTotal)})` : (s.swap ? 'none' : undefined)],
  ]), memTotal ? bar(memUsed, memTotal, 'Memory used', 'RAM') : null, swapTotal ? bar(swapUsed, swapTotal, 'Swap used', 'Swap') : null));
  cards.push(card('Snapshot', dl([
    ['Captured', localTime(latest.captured_at)],
    ['Snapshot id', String(latest.snapshot_id)],
    ['Processes sent', latest.process_count !== undefined ? String(latest.process_count) : undefined],
    ['Processes on host', s.process_count !== undefined ? String(s.process_count) : undefined],
  ])));

  const fss = Array.isArray(s.filesystems) ? s.filesystems : [];
  const fsRows = fss.map((f) => {
    f = obj(f);
    const total = Number(f.total_bytes) || 0;
    const used = Number(f.used_bytes) || 0;
    return h('tr', null,
      h('td', { class: 'mono' }, String(f.mountpoint ?? '')),
      h('td', { class: 'mono' }, String(f.device ?? '')),
      h('td', null, String(f.fstype ?? '')),
      h('td', { class: 'num' }, bytes(used)),
      h('td', { class: 'num' }, bytes(total)),
      h('td', { class: 'usage' }, bar(used, total, `${f.mountpoint ?? ''} used`), h('span', { class: 'pct' }, pct(used, total))));
  });
  const storage = h('section', { class: 'card wide' }, h('h3', null, 'Storage'),
    fsRows.length
      ? h('table', { class: 'fs' },
        h('thead', null, h('tr', null, h('th', null, 'Mount'), h('th', null, 'Device'), h('th', null, 'Type'), h('th', { class: 'num' }, 'Used'), h('th', { class: 'num' }, 'Size'), h('th', null, 'Usage'))),
        h('tbody', null, fsRows))
      : h('p', { class: 'muted' }, 'not reported'));

  // Keys this UI does not know (older agents, newer exporters): shown as text.
  const extra = Object.keys(s).filter((k) => !KNOWN.has(k)).sort();
  const extraCard = extra.length
    ? h('section', { class: 'card wide' }, h('h3', null, 'Other details'),
      h('dl', null, extra.map((k) => [h('dt', { class: 'mono' }, k), h('dd', { class: 'mono' }, typeof s[k] === 'string' ? s[k] : JSON.stringify(s[k]))])))
    : null;

  el.replaceChildren(h('div', { class: 'cards' }, cards, storage, extraCard));
}
