// histcharts.js: the History tab's charts, loaded with uPlot on first use
// (the first visit stays small). It knows uPlot; history.js knows the API.
//
// Every chart of one tab shares a cursor sync key (one crosshair moves across
// all of them), selects a range by dragging (zoom), draws the picked moments
// as vertical lines, and reports clicks with the time under the pointer.
// Each plot area is also a focusable slider over the range: its keys go to
// ctx.onKey (history.js steps through the stored snapshots) and showAt
// puts the shared crosshair on a moment.

import { bytes, localTime, num } from './util.js';
import { TOP_N } from './history.js';

const MAX_FS = 8; // filesystems drawn (the fullest)

const column = (xs, map) => xs.map((t) => (map && map.has(t) ? map.get(t) : null));
const obj = (v) => (v && typeof v === 'object' && !Array.isArray(v) ? v : {});
const pos = (v) => (Number.isFinite(Number(v)) && Number(v) > 0 ? Number(v) : 0);

// Series colours: distinct in light and dark, none of them the red and
// green that mean offline and online elsewhere in the page.
export const PALETTE = ['#3b7be8', '#e08a2e', '#8e5bd6', '#2a9d8f', '#c2549d', '#7d8a2e', '#5f7fa6', '#b5653c'];
export const OTHER_COLOR = '#8a93a0';

const MARK_COLORS = { viewing: '--warn', A: '--accent', B: '--on' };

function cssVar(name, fallback) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
}

function alpha(hex, a) {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255},${(n >> 8) & 255},${n & 255},${a})`;
}

/**
 * stackColumns turns aligned series into their running sums (nulls count
 * as 0, the process was not recorded then), for a stacked area chart: the
 * top edge of series i is the sum of series 1..i.
 */
export function stackColumns(data) {
  const x = data[0];
  const out = [x];
  let acc = x.map(() => 0);
  for (let i = 1; i < data.length; i++) {
    acc = acc.map((v, j) => v + (data[i][j] ?? 0));
    out.push(acc);
  }
  return out;
}

/**
 * makeChart draws one chart into box.
 * spec: {title, kind, height, series: [{label, color, fmt, fill, dash}],
 *        data (x then one column per series), stacked, yRange(lo, hi),
 *        axisFmt(v)}
 * ctx:  {uPlot, syncKey, window() -> {from, to}, marks() -> [{label, t}],
 *        onZoom(from, to), onClick(t, clientX, clientY, chart),
 *        onKey(chart, event), onBlur(chart, event)}
 */
export function makeChart(box, spec, ctx) {
  const { uPlot } = ctx;
  const fg = cssVar('--muted', '#666');
  const grid = cssVar('--line', '#ddd');
  const axis = { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 }, font: '11px system-ui, sans-serif' };
  let raw = spec.data;
  const drawn = spec.stacked ? stackColumns(raw) : raw;
  const series = [{ value: (u, v) => (v == null ? '' : localTime(new Date(v * 1000).toISOString())) }];
  spec.series.forEach((s, i) => {
    series.push({
      label: s.label,
      stroke: s.color,
      width: s.dash ? 1 : 1.5,
      dash: s.dash ? [4, 4] : undefined,
      // Stacked: series 1 fills down to zero, the others to the one below
      // (bands); plain charts fill only where asked.
      fill: spec.stacked ? (i === 0 ? alpha(s.color, 0.55) : undefined) : (s.fill ? alpha(s.color, 0.12) : undefined),
      points: { show: false },
      // The legend shows each series' own value, not the stacked sum.
      value: (u, v, si, di) => {
        const r = di == null ? null : raw[si][di];
        return r == null ? '—' : s.fmt(r);
      },
    });
  });
  const bands = spec.stacked ? spec.series.slice(1).map((s, i) => ({ series: [i + 2, i + 1], fill: alpha(s.color, 0.55) })) : [];
  let downX = null;
  const plot = new uPlot({
    width: chartWidth(box),
    height: spec.height || 170,
    scales: {
      x: { time: true, range: () => { const w = ctx.window(); return [w.from, w.to]; } },
      y: { range: (u, lo, hi) => spec.yRange(lo ?? 0, hi ?? 0) },
    },
    axes: [{ ...axis, values: timeTicks }, { ...axis, size: 64, values: (u, vals) => vals.map(spec.axisFmt) }],
    series,
    bands,
    cursor: {
      sync: { key: ctx.syncKey, setSeries: false },
      drag: { x: true, y: false, setScale: false },
      points: { show: !spec.stacked },
    },
    legend: { show: true, live: true },
    hooks: {
      draw: [(u) => drawMarks(u, box, ctx.marks())],
      setSelect: [(u) => {
        const { left, width } = u.select;
        if (width < 5) return;
        const a = u.posToVal(left, 'x');
        const b = u.posToVal(left + width, 'x');
        u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
        ctx.onZoom(a, b);
      }],
    },
  }, drawn, box);
  box.dataset.last = String(raw[0].length ? raw[0][raw[0].length - 1] : '');
  plot.over.title = 'Click: open the tree here, or set moment A or B. Drag: zoom in.';
  // uPlot measures its plot area once and again only on a window scroll
  // or resize; anything above that changes height (a message, a wrapped
  // toolbar) would leave the crosshair off by that much.
  plot.root.addEventListener('mouseenter', () => plot.syncRect(true), true);
  plot.over.addEventListener('mousedown', (e) => { downX = e.clientX; });
  plot.over.addEventListener('click', (e) => {
    // A drag that ended here was a zoom, not a click.
    if (downX !== null && Math.abs(e.clientX - downX) > 3) return;
    const rect = plot.over.getBoundingClientRect();
    const t = plot.posToVal(e.clientX - rect.left, 'x');
    if (Number.isFinite(t)) ctx.onClick(t, e.clientX, e.clientY, handle);
  });
  // The keyboard's way in: a slider whose value is the moment under the
  // crosshair (unix seconds, read out as a time).
  const over = plot.over;
  over.tabIndex = 0;
  over.setAttribute('role', 'slider');
  over.setAttribute('aria-label', `${spec.title}: moment. Arrow keys step through the stored snapshots, Enter opens the tree there or sets A or B.`);
  const w0 = ctx.window();
  over.setAttribute('aria-valuemin', String(Math.floor(w0.from)));
  over.setAttribute('aria-valuemax', String(Math.ceil(w0.to)));
  over.setAttribute('aria-valuenow', String(Math.ceil(w0.to)));
  over.setAttribute('aria-valuetext', 'no moment chosen');
  over.addEventListener('keydown', (e) => ctx.onKey?.(handle, e));
  over.addEventListener('blur', (e) => ctx.onBlur?.(handle, e));
  const handle = {
    plot,
    box,
    spec,
    over,
    /**
     * showAt puts the crosshair (every synced chart's) on moment t and
     * says it: text for assistive technology. null hides it.
     */
    showAt(t, text) {
      const w = ctx.window();
      over.setAttribute('aria-valuemin', String(Math.floor(w.from)));
      over.setAttribute('aria-valuemax', String(Math.ceil(w.to)));
      if (t == null) {
        plot.setCursor({ left: -10, top: -10 }, true, true);
        return;
      }
      over.setAttribute('aria-valuenow', String(Math.round(t)));
      over.setAttribute('aria-valuetext', text);
      const left = plot.valToPos(t, 'x');
      if (Number.isFinite(left)) plot.setCursor({ left, top: over.clientHeight / 2 }, true, true);
    },
    /** pointAt is the page point of moment t on this chart (for the menu). */
    pointAt(t) {
      const r = over.getBoundingClientRect();
      return { x: r.left + plot.valToPos(t, 'x'), y: r.top + r.height / 2 };
    },
    /** update redraws with new columns (same series). */
    update(data) {
      spec.data = data;
      raw = data; // the legend's values read it
      plot.setData(spec.stacked ? stackColumns(data) : data, true);
      box.dataset.points = String(data[0].length);
      box.dataset.last = String(data[0].length ? data[0][data[0].length - 1] : '');
    },
    resize() {
      plot.setSize({ width: chartWidth(box), height: spec.height || 170 });
    },
    redraw() {
      plot.redraw(false, false);
    },
    destroy() {
      plot.destroy();
    },
  };
  return handle;
}

const two = (n) => String(n).padStart(2, '0');

// timeTicks labels the time axis in the page's one time format (24 h,
// local): HH:MM, with seconds when ticks are closer than a minute, and the
// date (MM-DD) where the day changes and at the first tick.
function timeTicks(u, vals, axisIdx, foundSpace, foundIncr) {
  let day = '';
  return vals.map((v) => {
    const d = new Date(v * 1000);
    const hm = `${two(d.getHours())}:${two(d.getMinutes())}${foundIncr < 60 ? `:${two(d.getSeconds())}` : ''}`;
    const dd = `${two(d.getMonth() + 1)}-${two(d.getDate())}`;
    const label = dd !== day && (day !== '' || foundIncr >= 86400) ? `${dd} ${foundIncr >= 86400 ? '' : hm}`.trim() : hm;
    day = dd;
    return label;
  });
}

function chartWidth(box) {
  return Math.max(260, box.clientWidth - 22); // inside the figure's padding
}

// drawMarks draws the picked moments as labelled vertical lines, and
// records on the figure which ones are in view (the browser tests read it).
function drawMarks(u, box, marks) {
  const { ctx } = u;
  const { left, top, width, height } = u.bbox;
  const shown = [];
  ctx.save();
  ctx.font = `600 ${Math.round(11 * devicePixelRatio)}px system-ui, sans-serif`;
  ctx.textBaseline = 'top';
  ctx.textAlign = 'left'; // uPlot leaves its axes' alignment (centre) on the context
  for (const m of marks) {
    const x = Math.round(u.valToPos(m.t, 'x', true));
    if (!Number.isFinite(x) || x < left - 1 || x > left + width + 1) continue;
    const color = cssVar(MARK_COLORS[m.label] || '--accent', '#1d5fd6');
    ctx.strokeStyle = color;
    ctx.fillStyle = color;
    ctx.lineWidth = Math.max(1, devicePixelRatio) * 1.5;
    ctx.setLineDash([]);
    ctx.beginPath();
    ctx.moveTo(x, top);
    ctx.lineTo(x, top + height);
    ctx.stroke();
    const tw = ctx.measureText(m.label).width;
    const pad = 4 * devicePixelRatio;
    const bw = tw + 2 * pad; // the label sits centred on its line, inside the plot
    const tx = Math.min(Math.max(x - bw / 2, left), left + width - bw);
    ctx.fillRect(tx, top, bw, 15 * devicePixelRatio);
    ctx.fillStyle = cssVar('--panel', '#fff');
    ctx.fillText(m.label, tx + pad, top + 2 * devicePixelRatio);
    shown.push(m.label);
  }
  ctx.restore();
  box.dataset.marks = shown.join(',');
}

/**
 * chartSpecs turns the fetched series (history.js fetchAll: Maps from
 * unix seconds to values, the snapshot at the range's end, the top
 * processes) into chart descriptions for makeChart, aligned on the union of
 * the host series' times.
 */
export function chartSpecs(d) {
  const times = new Set();
  for (const m of [d.cpu, d.mem, d.swap, ...d.load, ...d.fs.values()]) for (const t of m.keys()) times.add(t);
  const xs = Array.from(times).sort((a, b) => a - b);
  const sys = obj(d.meta && d.meta.system);
  const memTotal = pos(obj(sys.memory).total_bytes);
  const swapTotal = pos(obj(sys.swap).total_bytes);
  const threads = pos(obj(sys.cpu).logical_threads);
  const pct = (v) => `${num(v, v < 10 ? 1 : 0)} %`;
  const upTo = (max, floor) => (lo, hi) => [0, max > 0 ? Math.max(max, hi) : Math.max(hi * 1.1, floor)];
  const bar = cssVar('--bar') || '#3b7be8';
  const out = [];

  out.push({ id: 'cpu', kind: '%', title: 'CPU usage (all cores)', data: [xs, column(xs, d.cpu)],
    series: [{ label: 'CPU', color: bar, fill: true, fmt: (v) => `${num(v, 1)} %` }],
    yRange: () => [0, 100], axisFmt: pct });

  const memSeries = [{ label: 'used', color: bar, fill: true, fmt: bytes }];
  const memData = [xs, column(xs, d.mem)];
  if (memTotal) {
    memSeries.push({ label: 'total', color: cssVar('--muted') || '#888', dash: true, fmt: bytes });
    memData.push(xs.map(() => memTotal));
  }
  out.push({ id: 'bytes', kind: 'bytes', title: memTotal ? `Memory used of ${bytes(memTotal)}` : 'Memory used', data: memData,
    series: memSeries, yRange: upTo(memTotal * 1.02, 1), axisFmt: bytes });

  const procChart = (id, list, key, title, fmt, other, yRange, axisFmt = fmt) => {
    const series = [];
    const data = [xs];
    list.forEach((p, i) => {
      const m = d.proc.get(`${p.pid}/${p.create_time || ''}`);
      if (!m || m[key].size === 0) return;
      series.push({ label: `${p.name || '?'} (${p.pid})`, color: PALETTE[i % PALETTE.length], fmt });
      data.push(column(xs, m[key]));
    });
    if (other && series.length) {
      const col = xs.map((t, j) => {
        const total = other(t);
        if (total == null) return null;
        let sum = 0;
        for (let k = 1; k < data.length; k++) sum += data[k][j] ?? 0;
        return Math.max(0, total - sum);
      });
      series.push({ label: 'other', color: OTHER_COLOR, fmt });
      data.push(col);
    }
    return { id, kind: id, title, stacked: true, data, series, yRange, axisFmt,
      empty: series.length === 0 ? 'No history for the top processes in this range (only the busiest and largest of each snapshot are recorded).' : '' };
  };
  const cpuOther = threads ? (t) => (d.cpu.has(t) ? (d.cpu.get(t) * threads) : null) : null;
  out.push(procChart('proc-cpu', d.top.cpu, 'cpu', `Top ${TOP_N} processes by CPU (% of one core)`, (v) => `${num(v, 1)} %`, cpuOther,
    (lo, hi) => [0, Math.max(hi * 1.1, 10)], pct));
  const memOther = (t) => (d.mem.has(t) ? d.mem.get(t) : null);
  out.push(procChart('proc-mem', d.top.mem, 'mem', `Top ${TOP_N} processes by memory (resident)`, bytes, memOther, upTo(memTotal * 1.02, 1)));

  const loadColors = [bar, '#e08a2e', '#8e5bd6'];
  out.push({ id: 'load', kind: 'load', title: threads ? `Load average (${threads} CPUs)` : 'Load average',
    data: [xs, ...d.load.map((m) => column(xs, m))],
    series: ['1 min', '5 min', '15 min'].map((label, i) => ({ label, color: loadColors[i], fill: i === 0, fmt: (v) => num(v, 2) })),
    yRange: (lo, hi) => [0, Math.max(hi * 1.15, 1)], axisFmt: (v) => num(v, v < 10 ? 1 : 0) });

  out.push({ id: 'swap', kind: 'swap', title: swapTotal ? `Swap used of ${bytes(swapTotal)}` : 'Swap used (no swap)',
    data: [xs, column(xs, d.swap)], series: [{ label: 'used', color: '#c2549d', fill: true, fmt: bytes }],
    yRange: upTo(swapTotal, 1024 * 1024), axisFmt: bytes });

  // Used % against each filesystem's size in the snapshot at the range's
  // end (sizes rarely change; history stores used bytes only).
  const sizes = new Map();
  for (const f of Array.isArray(sys.filesystems) ? sys.filesystems : []) {
    if (f && typeof f.mountpoint === 'string' && pos(f.total_bytes)) sizes.set(f.mountpoint, pos(f.total_bytes));
  }
  const lastOf = (m) => { let t = -Infinity; let v = 0; for (const [k, x] of m) if (k > t) { t = k; v = x; } return v; };
  const mounts = Array.from(d.fs.keys()).filter((mp) => sizes.has(mp))
    .sort((a, b) => lastOf(d.fs.get(b)) / sizes.get(b) - lastOf(d.fs.get(a)) / sizes.get(a) || (a < b ? -1 : 1)).slice(0, MAX_FS);
  out.push({ id: 'fs', kind: 'fs', title: d.fs.size > mounts.length && mounts.length === MAX_FS ? `Filesystems used (the ${MAX_FS} fullest)` : 'Filesystems used',
    data: [xs, ...mounts.map((mp) => column(xs, d.fs.get(mp)).map((v) => (v == null ? null : (100 * v) / sizes.get(mp))))],
    series: mounts.map((mp, i) => ({ label: mp, color: PALETTE[i % PALETTE.length], fmt: (v) => `${num(v, 1)} %` })),
    yRange: () => [0, 100], axisFmt: pct,
    empty: mounts.length ? '' : 'No filesystem history in this range.' });
  return out;
}
