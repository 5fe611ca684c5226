// history.js: the History tab. CPU and memory of one host over a preset or
// chosen range (uPlot, vendored, loaded on first use so the first visit
// stays small). A click on a chart picks a moment, which main.js opens as
// the process tree of that time, or (in "compare" mode) fills moment A then
// B. "What changed" lists what started, exited and moved most between two
// snapshots: a past moment and the latest, two chosen moments, or the last
// ten minutes; every entry links into the tree of the snapshot it is in.

import { h, bytes, localTime, num } from './util.js';
import { getJSON, latestURL } from './api.js';

export const RANGES = { '1h': 3600, '6h': 6 * 3600, '24h': 86400, '7d': 7 * 86400 };
export const DEFAULT_RANGE = '1h';
// The history API answers at most 400 days; a longer range is refused here
// with a message rather than by the server with a 400.
const MAX_RANGE_S = 400 * 86400;
const SINCE_S = 600; // "since 10 minutes ago"

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

const two = (n) => String(n).padStart(2, '0');

/**
 * toLocalInput formats unix seconds for a datetime-local input, in local
 * time (the input has no time zone), with seconds when withSec.
 */
export function toLocalInput(t, withSec = false) {
  const d = new Date(t * 1000);
  const base = `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}T${two(d.getHours())}:${two(d.getMinutes())}`;
  return withSec ? `${base}:${two(d.getSeconds())}` : base;
}

/**
 * fromLocalInput reads a datetime-local value as local time: unix seconds,
 * or NaN when empty or malformed. (valueAsNumber would read it as UTC.)
 */
export function fromLocalInput(v) {
  if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?$/.test(v)) return NaN;
  return Date.parse(v) / 1000; // a date-time without offset is local time
}

/**
 * parseRange validates a chosen range: {from, to} in unix seconds, or
 * {error} with the sentence shown to the user.
 */
export function parseRange(fromText, toText) {
  const from = fromLocalInput(fromText);
  const to = fromLocalInput(toText);
  if (!Number.isFinite(from) || !Number.isFinite(to)) return { error: 'Choose both a start and an end (date and time).' };
  if (from >= to) return { error: 'The start must be before the end.' };
  if (to - from > MAX_RANGE_S) return { error: 'A range is at most 400 days.' };
  return { from, to };
}

/**
 * HistoryView draws the charts of one host.
 * onPick(unixSeconds): a moment was clicked (open its tree);
 * onOpen(snapshotId, pid): a "what changed" entry was clicked;
 * onRange(): the range changed (main.js writes the URL).
 */
export class HistoryView {
  constructor(panel, { onPick, onOpen, onRange }) {
    this.panel = panel;
    this.onPick = onPick;
    this.onOpen = onOpen;
    this.onRange = onRange || (() => {});
    this.host = '';
    this.range = DEFAULT_RANGE; // a key of RANGES, or 'custom'
    this.custom = null; // {from, to} in unix seconds when range is 'custom'
    this.clickMode = 'open'; // or 'compare': chart clicks fill A, then B
    this.nextPick = 'a';
    this.plots = [];
    this.seq = 0;
    this.diffSeq = 0;
    this.diffKind = ''; // 'past' (a past moment vs the latest) or 'compare'
    this.build();
  }

  build() {
    this.rangeBtns = Object.keys(RANGES).map((r) => h('button', { type: 'button', 'data-range': r, onclick: () => this.setRange(r) }, r));
    this.fromIn = h('input', { type: 'datetime-local', id: 'range-from', 'aria-label': 'Range start' });
    this.toIn = h('input', { type: 'datetime-local', id: 'range-to', 'aria-label': 'Range end' });
    this.rangeErr = h('span', { class: 'form-error', id: 'range-error', role: 'alert' });
    this.status = h('span', { class: 'muted hist-status', 'aria-live': 'polite' });
    const rangeForm = h('form', { class: 'rangeform', id: 'range-form', novalidate: true, onsubmit: (e) => { e.preventDefault(); this.applyCustom(); } },
      h('label', null, 'From ', this.fromIn),
      h('label', null, 'to ', this.toIn),
      h('button', { type: 'submit', id: 'range-apply' }, 'Apply'));

    this.modeBtns = [['open', 'Open the tree'], ['compare', 'Pick A, then B']].map(([m, label]) => h('button', {
      type: 'button', 'data-mode': m, onclick: () => this.setClickMode(m),
    }, label));
    this.aIn = h('input', { type: 'datetime-local', step: '1', id: 'cmp-a', 'aria-label': 'Moment A' });
    this.bIn = h('input', { type: 'datetime-local', step: '1', id: 'cmp-b', 'aria-label': 'Moment B' });
    this.cmpErr = h('span', { class: 'form-error', id: 'cmp-error', role: 'alert' });
    const cmpForm = h('form', { class: 'rangeform', id: 'cmp-form', novalidate: true, onsubmit: (e) => { e.preventDefault(); this.compareInputs(); } },
      h('span', { class: 'muted' }, 'What changed between'),
      h('label', null, 'A ', this.aIn),
      h('label', null, 'and B ', this.bIn),
      h('button', { type: 'submit', id: 'cmp-apply' }, 'Compare'),
      h('button', { type: 'button', id: 'cmp-since', onclick: () => this.since() }, 'Since 10 minutes ago'));

    this.charts = h('div', { class: 'charts' });
    this.diff = h('div', { class: 'diff', id: 'diff' });
    this.panel.replaceChildren(
      h('div', { class: 'toolbar' },
        h('div', { class: 'seg', role: 'group', 'aria-label': 'Range' }, this.rangeBtns),
        rangeForm,
        this.rangeErr,
        this.status),
      h('div', { class: 'toolbar toolbar-2' },
        h('span', { class: 'muted' }, 'A click on a chart:'),
        h('div', { class: 'seg', role: 'group', 'aria-label': 'What a click on a chart does' }, this.modeBtns),
        cmpForm,
        this.cmpErr),
      this.charts,
      this.diff,
    );
    this.markRange();
    this.markMode();
  }

  markRange() {
    for (const b of this.rangeBtns) b.setAttribute('aria-pressed', b.dataset.range === this.range ? 'true' : 'false');
  }

  markMode() {
    for (const b of this.modeBtns) b.setAttribute('aria-pressed', b.dataset.mode === this.clickMode ? 'true' : 'false');
    for (const p of this.plots) {
      p.over.title = this.clickMode === 'compare'
        ? `Click to set moment ${this.nextPick.toUpperCase()}` : 'Click to open the process tree of this moment';
    }
  }

  setClickMode(m) {
    this.clickMode = m === 'compare' ? 'compare' : 'open';
    this.nextPick = 'a';
    this.markMode();
  }

  /** bounds is the shown range in unix seconds; a preset ends now. */
  bounds() {
    if (this.range === 'custom' && this.custom) return { ...this.custom };
    const to = Math.floor(Date.now() / 1000);
    return { from: to - RANGES[this.range], to };
  }

  setRange(r) {
    if (!RANGES[r]) return;
    this.range = r;
    this.custom = null;
    this.rangeErr.textContent = '';
    this.markRange();
    this.onRange();
    this.load();
  }

  applyCustom() {
    const r = parseRange(this.fromIn.value, this.toIn.value);
    if (r.error) {
      // Bad input changes nothing: the charts keep their range.
      this.rangeErr.textContent = r.error;
      return;
    }
    this.rangeErr.textContent = '';
    this.range = 'custom';
    this.custom = r;
    this.markRange();
    this.onRange();
    this.load();
  }

  /** urlParams names the range for the URL; the default adds nothing. */
  urlParams() {
    if (this.range === 'custom' && this.custom) {
      return { from: new Date(this.custom.from * 1000).toISOString(), to: new Date(this.custom.to * 1000).toISOString() };
    }
    return this.range === DEFAULT_RANGE ? {} : { range: this.range };
  }

  /** setURLParams restores a range from the URL (without loading). */
  setURLParams(p) {
    const from = Date.parse(p.get('from') ?? '') / 1000;
    const to = Date.parse(p.get('to') ?? '') / 1000;
    if (Number.isFinite(from) && Number.isFinite(to) && from < to && to - from <= MAX_RANGE_S) {
      this.range = 'custom';
      this.custom = { from, to };
      this.fromIn.value = toLocalInput(from);
      this.toIn.value = toLocalInput(to);
    } else {
      this.range = RANGES[p.get('range')] ? p.get('range') : DEFAULT_RANGE;
      this.custom = null;
    }
    this.rangeErr.textContent = '';
    this.markRange();
  }

  setHost(host) {
    if (host === this.host) return;
    this.host = host;
    this.diffSeq++;
    this.diffKind = '';
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
    const { from, to } = this.bounds();
    // A preset's inputs show what it covers, a start for choosing another.
    if (this.range !== 'custom') {
      this.fromIn.value = toLocalInput(from);
      this.toIn.value = toLocalInput(to);
    }
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
      this.status.textContent = c[0].length === 0 && m[0].length === 0 ? 'no history in this range' : '';
      this.plots.push(this.chart(uPlot, 'CPU usage', [c[0], c[1]], '%', (v) => `${num(v, 1)} %`, from, to));
      this.plots.push(this.chart(uPlot, 'Memory used', [m[0], m[1]], 'bytes', (v) => bytes(v), from, to));
      this.markMode();
    } catch (err) {
      if (seq !== this.seq) return;
      this.status.textContent = `cannot load history: ${err.message}`;
    }
  }

  chart(uPlot, title, data, unit, fmt, from, to) {
    // data-from/data-to say which range this drawing shows (and let the
    // browser tests check that a new range was really drawn).
    const box = h('figure', { class: 'chart', 'data-chart': unit, 'data-from': from, 'data-to': to, 'data-points': data[0].length },
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
      if (!Number.isFinite(t)) return;
      if (this.clickMode === 'compare') this.pickForCompare(t);
      else this.onPick(t);
    });
    return plot;
  }

  // pickForCompare fills A, then B; with both, it compares at once.
  pickForCompare(t) {
    const el = this.nextPick === 'a' ? this.aIn : this.bIn;
    el.value = toLocalInput(Math.floor(t), true);
    this.cmpErr.textContent = '';
    if (this.nextPick === 'a') {
      this.nextPick = 'b';
      this.markMode();
      return;
    }
    this.nextPick = 'a';
    this.markMode();
    this.compareInputs();
  }

  clearDiff() {
    this.diffSeq++;
    this.diffKind = '';
    this.diff.replaceChildren();
  }

  /** clearPastDiff drops a past-vs-latest diff; a chosen comparison stays. */
  clearPastDiff() {
    if (this.diffKind === 'past') this.clearDiff();
  }

  /** compareInputs compares the snapshots at or before moments A and B. */
  async compareInputs() {
    const a = fromLocalInput(this.aIn.value);
    const b = fromLocalInput(this.bIn.value);
    if (!Number.isFinite(a) || !Number.isFinite(b)) {
      this.cmpErr.textContent = 'Choose both moments A and B (date and time).';
      return;
    }
    if (a >= b) {
      this.cmpErr.textContent = 'Moment A must be before moment B.';
      return;
    }
    this.cmpErr.textContent = '';
    await this.compareMoments(a, b, null);
  }

  /** since compares the snapshot of ten minutes ago with the latest. */
  async since() {
    this.cmpErr.textContent = '';
    const now = Date.now() / 1000;
    this.aIn.value = toLocalInput(Math.floor(now - SINCE_S), true);
    this.bIn.value = '';
    await this.compareMoments(now - SINCE_S, null, 'in the last 10 minutes');
  }

  // compareMoments resolves a moment to the snapshot at or before it (b
  // null: the latest) and shows their diff.
  async compareMoments(a, b, label) {
    const host = this.host;
    if (!host) return;
    const seq = ++this.diffSeq;
    this.diffKind = 'compare';
    this.diff.replaceChildren(h('p', { class: 'muted diff-note' }, 'Comparing…'));
    const which = (t, name) => getJSON(atURL(host, t.toFixed(3))).catch((err) => {
      throw err.status === 404 ? new Error(`no snapshot is stored at or before moment ${name} (${localTime(new Date(t * 1000).toISOString())})`) : err;
    });
    try {
      const [ma, mb] = await Promise.all([which(a, 'A'), b === null ? getJSON(latestURL(host)) : which(b, 'B')]);
      if (seq !== this.diffSeq) return;
      if (ma.snapshot_id === mb.snapshot_id) {
        this.diff.replaceChildren(h('p', { class: 'muted diff-note' },
          `Both moments fall on the same snapshot (${ma.snapshot_id}, captured ${localTime(ma.captured_at)}): nothing to compare.`));
        return;
      }
      await this.renderDiff(ma, mb, seq, label);
    } catch (err) {
      if (seq !== this.diffSeq) return;
      this.diff.replaceChildren(h('p', { class: 'form-error diff-note' }, `Cannot compare: ${err.message}`));
    }
  }

  /** showDiff lists what changed from a past snapshot to the latest. */
  async showDiff(pastMeta, latestMeta) {
    const seq = ++this.diffSeq;
    this.diffKind = 'past';
    if (!latestMeta || pastMeta.snapshot_id === latestMeta.snapshot_id) {
      this.diff.replaceChildren(h('p', { class: 'muted diff-note' }, 'This is the latest snapshot: nothing to compare.'));
      return;
    }
    this.diff.replaceChildren(h('p', { class: 'muted diff-note' }, 'Comparing…'));
    try {
      await this.renderDiff(pastMeta, latestMeta, seq, 'to the latest snapshot');
    } catch (err) {
      if (seq !== this.diffSeq) return;
      this.diff.replaceChildren(h('p', { class: 'form-error diff-note' }, `Cannot compare: ${err.message}`));
    }
  }

  // renderDiff fetches and lists the diff of two snapshots. The server
  // orders them by time; exited processes link to the older snapshot (the
  // last one they are in), the rest to the newer.
  async renderDiff(ma, mb, seq, label) {
    const d = await getJSON(diffURL(ma.snapshot_id, mb.snapshot_id));
    if (seq !== this.diffSeq) return;
    const metas = { [ma.snapshot_id]: ma, [mb.snapshot_id]: mb };
    const older = metas[d.from] || ma;
    const newer = metas[d.to] || mb;
    const item = (p, snap, extra) => h('li', null,
      h('button', {
        type: 'button', class: 'link', 'data-pid': p.pid, 'data-snapshot': snap,
        title: `Show it in the tree of snapshot ${snap}`, onclick: () => this.onOpen(snap, p.pid),
      }, `${p.name} (${p.pid})`),
      extra ? h('span', { class: 'muted' }, ` ${extra}`) : null);
    // total: the server lists at most 1,000 started or exited processes
    // and counts them all (started_total, exited_total).
    const list = (id, title, items, make, total = items.length) => h('section', { class: 'card', 'data-list': id }, h('h3', null, `${title} (${total})`),
      items.length ? h('ul', { class: 'difflist' }, items.slice(0, 50).map(make)) : h('p', { class: 'muted' }, 'none'),
      total > 50 ? h('p', { class: 'muted' }, `…and ${total - Math.min(items.length, 50)} more`) : null);
    const sign = (v) => (v > 0 ? '+' : '');
    const at = (m) => `${localTime(m.captured_at)} (snapshot ${m.snapshot_id})`;
    const title = label === 'to the latest snapshot'
      ? `What changed from ${localTime(older.captured_at)} to the latest snapshot`
      : `What changed ${label ? `${label}: ` : ''}from ${at(older)} to ${at(newer)}`;
    this.diff.replaceChildren(
      h('h2', { class: 'diff-title' }, title),
      h('div', { class: 'cards' },
        list('started', 'Started', d.started || [], (p) => item(p, newer.snapshot_id, ''), d.started_total),
        list('exited', 'Exited', d.exited || [], (p) => item(p, older.snapshot_id, ''), d.exited_total),
        list('cpu', 'CPU movers', d.cpu_changes || [], (c) => item(c, newer.snapshot_id, `${num(c.before, 1)} → ${num(c.after, 1)} % (${sign(c.delta)}${num(c.delta, 1)})`)),
        list('memory', 'Memory movers', d.memory_changes || [], (c) => item(c, newer.snapshot_id, `${num(c.before, 1)} → ${num(c.after, 1)} MB (${sign(c.delta)}${num(c.delta, 1)})`))));
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
