// history.js: the History tab. CPU and memory of one host over a range
// (uPlot, vendored, loaded on first use so the first visit stays small);
// a click on a chart picks a moment, which main.js opens as the process
// tree of that time, and "what changed" lists what started, exited and
// moved most between that moment and the latest snapshot.

import { h, bytes, localTime, num } from './util.js';
import { getJSON } from './api.js';

export const RANGES = { '1h': 3600, '6h': 6 * 3600, '24h': 86400, '7d': 7 * 86400 };

let uPlotPromise = null;

// loadUPlot imports the vendored module and its stylesheet once.
function loadUPlot() {
  if (!uPlotPromise) {
    const link = document.createElement('link');
    link.rel = 'stylesheet';
    link.href = new URL('../../vendor/uPlot.min.css', import.meta.url).href;
    document.head.appendChild(link);
    uPlotPromise = import('../../vendor/uPlot.esm.js').then((m) => m.default);
  }
  return uPlotPromise;
}

const enc = encodeURIComponent;
const seriesURL = (host, metric, from, to) => `api/v1/hosts/${enc(host)}/series?metric=${metric}&from=${from}&to=${to}`;
export const atURL = (host, t) => `api/v1/snapshots/at?hostname=${enc(host)}&time=${t}`;
export const snapshotsURL = (host, from, to, limit) => `api/v1/hosts/${enc(host)}/snapshots?from=${from}&to=${to}&limit=${limit}`;
export const diffURL = (id, against) => `api/v1/snapshots/${enc(id)}/diff?against=${enc(against)}`;
export const snapshotURL = (id) => `api/v1/snapshots/${enc(id)}`;

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

function toColumns(resp) {
  const s = resp && Array.isArray(resp.series) && resp.series[0];
  if (!s || !Array.isArray(s.values)) return [[], []];
  return [s.values.map((p) => p[0]), s.values.map((p) => p[1])];
}

/**
 * HistoryView draws the charts of one host. onPick(unixSeconds) is called
 * when a moment is clicked; onOpen(kind, pid) when a "what changed" entry is.
 */
export class HistoryView {
  constructor(panel, { onPick, onOpen }) {
    this.panel = panel;
    this.onPick = onPick;
    this.onOpen = onOpen;
    this.host = '';
    this.range = '1h';
    this.plots = [];
    this.seq = 0;
    this.build();
  }

  build() {
    this.rangeBtns = Object.keys(RANGES).map((r) => h('button', { type: 'button', 'data-range': r, onclick: () => this.setRange(r) }, r));
    this.status = h('span', { class: 'muted hist-status', 'aria-live': 'polite' });
    this.charts = h('div', { class: 'charts' });
    this.diff = h('div', { class: 'diff' });
    this.panel.replaceChildren(
      h('div', { class: 'toolbar' },
        h('div', { class: 'seg', role: 'group', 'aria-label': 'Range' }, this.rangeBtns),
        h('span', { class: 'muted' }, 'Click a chart to see the processes at that moment.'),
        this.status),
      this.charts,
      this.diff,
    );
    this.markRange();
  }

  markRange() {
    for (const b of this.rangeBtns) b.setAttribute('aria-pressed', b.dataset.range === this.range ? 'true' : 'false');
  }

  setRange(r) {
    if (!RANGES[r]) return;
    this.range = r;
    this.markRange();
    this.load();
  }

  setHost(host) {
    this.host = host;
    this.diff.replaceChildren();
  }

  destroyPlots() {
    for (const p of this.plots) p.destroy();
    this.plots = [];
  }

  async load() {
    const host = this.host;
    if (!host) return;
    const seq = ++this.seq;
    const to = Math.floor(Date.now() / 1000);
    const from = to - RANGES[this.range];
    this.status.textContent = 'loading…';
    try {
      const [uPlot, cpu, mem] = await Promise.all([
        loadUPlot(),
        getJSON(seriesURL(host, 'cpu', from, to)),
        getJSON(seriesURL(host, 'memory', from, to)),
      ]);
      if (seq !== this.seq) return;
      this.destroyPlots();
      this.charts.replaceChildren();
      const c = toColumns(cpu);
      const m = toColumns(mem);
      this.status.textContent = c[0].length === 0 && m[0].length === 0 ? 'no history in this range yet' : '';
      this.plots.push(this.chart(uPlot, 'CPU usage', [c[0], c[1]], '%', (v) => `${num(v, 1)} %`, from, to));
      this.plots.push(this.chart(uPlot, 'Memory used', [m[0], m[1]], 'bytes', (v) => bytes(v), from, to));
    } catch (err) {
      if (seq !== this.seq) return;
      this.status.textContent = `cannot load history: ${err.message}`;
    }
  }

  chart(uPlot, title, data, unit, fmt, from, to) {
    const box = h('figure', { class: 'chart', 'data-chart': unit },
      h('figcaption', null, title));
    this.charts.appendChild(box);
    const width = Math.max(300, box.clientWidth - 26); // inside the figure's padding
    const fg = cssVar('--muted') || '#666';
    const grid = cssVar('--line') || '#ddd';
    const axis = { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
    const plot = new uPlot({
      width,
      height: 200,
      scales: { x: { time: true, min: from, max: to }, y: { range: (u, lo, hi) => [0, Math.max(hi * 1.1, unit === '%' ? 10 : 1)] } },
      axes: [axis, { ...axis, size: 70, values: (u, vals) => vals.map(fmt) }],
      series: [{ value: (u, v) => (v == null ? '' : localTime(new Date(v * 1000).toISOString())) },
        { label: title, stroke: cssVar('--bar') || '#3b7be8', width: 1.5, fill: 'rgba(59,123,232,0.12)', value: (u, v) => (v == null ? '—' : fmt(v)) }],
      cursor: { drag: { x: false, y: false } },
      legend: { show: true },
    }, data, box);
    // A click picks the moment under the cursor.
    plot.over.addEventListener('click', () => {
      const left = plot.cursor.left;
      if (left == null || left < 0) return;
      const t = plot.posToVal(left, 'x');
      if (Number.isFinite(t)) this.onPick(t);
    });
    plot.over.title = 'Click to open the process tree of this moment';
    return plot;
  }

  clearDiff() {
    this.diff.replaceChildren();
  }

  /** showDiff lists what changed from snapshot `past` to the latest. */
  async showDiff(pastId, latestId, pastTime) {
    this.diff.replaceChildren(h('p', { class: 'muted' }, 'Comparing…'));
    if (!latestId || pastId === latestId) {
      this.diff.replaceChildren(h('p', { class: 'muted' }, 'This is the latest snapshot: nothing to compare.'));
      return;
    }
    try {
      const d = await getJSON(diffURL(pastId, latestId));
      const item = (p, kind, extra) => h('li', null, h('button', { type: 'button', class: 'link', onclick: () => this.onOpen(kind, p.pid) }, `${p.name} (${p.pid})`), extra ? h('span', { class: 'muted' }, ` ${extra}`) : null);
      const list = (title, items, make) => h('section', { class: 'card' }, h('h3', null, `${title} (${items.length})`),
        items.length ? h('ul', { class: 'difflist' }, items.slice(0, 50).map(make)) : h('p', { class: 'muted' }, 'none'),
        items.length > 50 ? h('p', { class: 'muted' }, `…and ${items.length - 50} more`) : null);
      const sign = (v) => (v > 0 ? '+' : '');
      this.diff.replaceChildren(
        h('h2', { class: 'diff-title' }, `What changed from ${localTime(pastTime)} to the latest snapshot`),
        h('div', { class: 'cards' },
          list('Started', d.started || [], (p) => item(p, 'live', '')),
          list('Exited', d.exited || [], (p) => item(p, 'past', '')),
          list('CPU movers', d.cpu_changes || [], (c) => item(c, 'live', `${num(c.before, 1)} → ${num(c.after, 1)} % (${sign(c.delta)}${num(c.delta, 1)})`)),
          list('Memory movers', d.memory_changes || [], (c) => item(c, 'live', `${num(c.before, 1)} → ${num(c.after, 1)} MB (${sign(c.delta)}${num(c.delta, 1)})`))));
    } catch (err) {
      this.diff.replaceChildren(h('p', { class: 'muted' }, `cannot compare: ${err.message}`));
    }
  }

  resized() {
    for (const p of this.plots) p.setSize({ width: Math.max(300, p.root.parentElement.clientWidth - 26), height: 200 });
  }
}

const hhmm = (t) => {
  const d = new Date(t * 1000);
  return `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
};

const processSeriesURL = (host, pid, createTime, from, to) =>
  `api/v1/hosts/${enc(host)}/processes/${enc(pid)}/series?from=${from}&to=${to}${createTime ? `&create_time=${enc(createTime)}` : ''}`;

/**
 * processHistory fills el with the last hour of one process's CPU and
 * memory. Only the busiest and largest processes of each snapshot are
 * recorded (--history.top-k), so "none" is a normal answer.
 */
export async function processHistory(el, host, pid, createTime) {
  const to = Math.floor(Date.now() / 1000);
  const from = to - 3600;
  el.replaceChildren(h('p', { class: 'muted' }, 'loading…'));
  try {
    const [uPlot, resp] = await Promise.all([loadUPlot(), getJSON(processSeriesURL(host, pid, createTime, from, to))]);
    const cpu = toColumns({ series: resp.cpu });
    const mem = toColumns({ series: resp.memory });
    if (cpu[0].length === 0 && mem[0].length === 0) {
      el.replaceChildren(h('p', { class: 'muted' }, 'No history in the last hour: only the busiest and largest processes of each snapshot are recorded.'));
      return;
    }
    el.replaceChildren();
    const fg = cssVar('--muted') || '#666';
    const grid = cssVar('--line') || '#ddd';
    const axis = { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { show: false }, font: '10px sans-serif' };
    const small = (title, data, fmt, color) => {
      const box = h('div', { class: 'spark', 'data-chart': title });
      el.appendChild(box);
      return new uPlot({
        width: Math.max(200, el.clientWidth),
        height: 110,
        scales: { x: { time: true, min: from, max: to }, y: { range: (u, lo, hi) => [0, Math.max(hi * 1.1, 1)] } },
        axes: [{ ...axis, size: 22, values: (u, vals) => vals.map(hhmm) }, { ...axis, size: 56, values: (u, vals) => vals.map(fmt) }],
        series: [{}, { label: title, stroke: color, width: 1.5, value: (u, v) => (v == null ? '—' : fmt(v)) }],
        cursor: { drag: { x: false, y: false } },
        legend: { show: true },
      }, data, box);
    };
    small('CPU %', cpu, (v) => num(v, 1), cssVar('--bar') || '#3b7be8');
    small('Memory', mem, (v) => bytes(v), cssVar('--warn') || '#b7791f');
  } catch (err) {
    el.replaceChildren(h('p', { class: 'muted' }, err.status === 404 ? 'No history for this process.' : `cannot load its history: ${err.message}`));
  }
}
