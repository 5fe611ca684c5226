// history.js: the History tab. Charts of one host over a preset (5m to 7d)
// or a chosen range: CPU, memory against total RAM, the top processes' CPU
// and memory stacked, load, swap and each filesystem. uPlot and the chart
// code (histcharts.js) load on first use, so the first visit stays small.
//
// One crosshair moves across all charts; dragging zooms in (Reset goes
// back); while the range ends now, new points are appended as snapshots
// arrive. A click on a chart snaps to the nearest stored snapshot and offers
// "open the tree here", "set A" and "set B"; the moment being viewed and A
// and B are drawn on every chart. "What changed" lists what started, exited
// and moved most between two snapshots: a past moment and the latest, A and
// B, or the last ten minutes; every entry links into the tree of its snapshot.
//
// By keyboard: each chart is focusable; Left/Right step the crosshair to the
// previous/next stored snapshot, Home/End to the first/last of the range,
// PageUp/PageDown a tenth of the range (snapped), and Enter or Space opens
// the same menu there. In the menu, arrows move, Escape or Tab closes it and
// focus goes back to the chart.

import { h, bytes, localTime, num } from './util.js';
import { ApiError, getJSON, latestURL, processesURL } from './api.js';
import { resolveBase } from './changes.js';

export const RANGES = { '5m': 300, '15m': 900, '1h': 3600, '6h': 6 * 3600, '24h': 86400, '7d': 7 * 86400 };
export const DEFAULT_RANGE = '1h';
// The history API answers at most 400 days; a longer range is refused here
// with a message rather than by the server with a 400.
const MAX_RANGE_S = 400 * 86400;
const SINCE_S = 600; // "since 10 minutes ago"
export const TOP_N = 5; // processes in each stacked chart
const POINTS = 600; // buckets a range is cut into (the API allows 1,000)
const RETRY_MIN_MS = 5000;
const RETRY_MAX_MS = 60000;

let libPromise = null;
let libTries = 0;

// loadCharts imports the vendored uPlot, its stylesheet and histcharts.js
// once. A failed import (server down) is forgotten so the next try fetches
// again; the query string keeps the browser from answering with the failure
// it remembers for that URL.
function loadCharts() {
  if (!libPromise) {
    const q = libTries++ ? `?retry=${libTries}` : '';
    if (!document.querySelector('link[data-uplot]')) {
      const link = document.createElement('link');
      link.rel = 'stylesheet';
      link.dataset.uplot = '';
      link.href = new URL('../../vendor/uPlot.min.css', import.meta.url).href;
      document.head.appendChild(link);
    }
    libPromise = Promise.all([
      import(new URL(`../../vendor/uPlot.esm.js${q}`, import.meta.url).href),
      import(new URL(`./histcharts.js${q}`, import.meta.url).href),
    ]).then(([u, c]) => ({ uPlot: u.default, ...c }));
    libPromise.catch(() => { libPromise = null; });
  }
  return libPromise;
}

// loadUPlot is what the process detail's small charts need.
const loadUPlot = () => loadCharts().then((l) => l.uPlot);

const enc = encodeURIComponent;
const seriesURL = (host, metric, from, to, step) => `api/v1/hosts/${enc(host)}/series?metric=${metric}&from=${from}&to=${to}${step ? `&step=${step}` : ''}`;
const procSeriesURL = (host, pid, createTime, from, to, step) =>
  `api/v1/hosts/${enc(host)}/processes/${enc(pid)}/series?from=${from}&to=${to}${step ? `&step=${step}` : ''}${createTime ? `&create_time=${enc(createTime)}` : ''}`;
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
const unix = (iso) => Date.parse(iso) / 1000;

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
 * fitPreset is the smallest preset that shows a host whose first snapshot
 * is age seconds old (a new host opens on 5m, not on an empty hour).
 */
export function fitPreset(age) {
  for (const [k, s] of Object.entries(RANGES)) if (age <= s * 0.95) return k;
  return '7d';
}

/** stepFor buckets a range into about POINTS points (whole seconds). */
export const stepFor = (secs) => Math.max(1, Math.ceil(secs / POINTS));

/**
 * errText is the short sentence shown for a failed request: the server's
 * own refusal (it says what to do), else that the server is unreachable;
 * never a stack or a module URL.
 */
function errText(err) {
  if (err instanceof ApiError) return err.message.length > 160 ? `${err.message.slice(0, 160)}…` : err.message;
  return 'the server is unreachable';
}

// A series is a Map from unix seconds to a value: live updates replace and
// append points by time, and charts align series on the union of times.
const toMap = (cols) => new Map(cols[0].map((t, i) => [t, cols[1][i]]));

function merge(dst, src) {
  for (const [t, v] of src) dst.set(t, v);
}

function trim(map, from) {
  for (const t of map.keys()) if (t < from) map.delete(t);
}


const pos = (v) => (Number.isFinite(Number(v)) && Number(v) > 0 ? Number(v) : 0);

/** topProcesses picks the N busiest and N largest of a process list. */
export function topProcesses(procs, n = TOP_N) {
  const live = Array.isArray(procs) ? procs.filter((p) => p && Number.isSafeInteger(p.pid)) : [];
  const by = (key) => live.filter((p) => pos(p[key]) > 0).sort((a, b) => pos(b[key]) - pos(a[key]) || a.pid - b.pid).slice(0, n);
  return { cpu: by('cpu_percent'), mem: by('memory_mb') };
}

/**
 * HistoryView draws the charts of one host.
 * onPick(unixSeconds): "open the tree here" on a snapshot's exact time;
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
    this.autoRange = true; // no range chosen: fit the host's data
    this.fitted = ''; // host whose data the automatic range was fitted to
    this.zoomPrev = null; // the range before a drag-zoom, for Reset
    this.win = { from: 0, to: 0 }; // what the charts show
    this.step = 0;
    this.charts = []; // histcharts.js handles
    this.data = null; // series maps of the shown range
    this.marks = { viewing: null, A: null, B: null }; // unix seconds
    this.exact = { a: null, b: null }; // {value, t}: a chart pick's exact time behind the input's whole second
    this.seq = 0;
    this.diffSeq = 0;
    this.diffKind = ''; // 'past' (a past moment vs the latest) or 'compare'
    this.retryTimer = 0;
    this.retryMs = RETRY_MIN_MS;
    this.liveTimer = 0;
    this.liveLatest = 0; // snapshot id the live data has caught up with
    this.menuSeq = 0;
    this.menuFrom = null; // the chart the menu was opened from
    // The keyboard's moment (a snapshot's time and id), its queued steps,
    // and the first snapshot of the range it was asked in.
    this.kb = { t: null, id: 0, busy: 0, queue: Promise.resolve(), first: null, firstKey: '' };
    this.syncKey = `procscope-history-${Math.random().toString(36).slice(2)}`;
    this.build();
  }

  build() {
    this.rangeBtns = Object.keys(RANGES).map((r) => h('button', { type: 'button', 'data-range': r, onclick: () => this.setRange(r) }, r));
    this.resetBtn = h('button', { type: 'button', id: 'zoom-reset', hidden: true, title: 'Back to the range before zooming', onclick: () => this.resetZoom() }, 'Reset zoom');
    this.fromIn = h('input', { type: 'datetime-local', id: 'range-from', 'aria-label': 'Range start' });
    this.toIn = h('input', { type: 'datetime-local', id: 'range-to', 'aria-label': 'Range end' });
    this.rangeErr = h('span', { class: 'form-error', id: 'range-error', role: 'alert' });
    this.status = h('span', { class: 'muted hist-status', 'aria-live': 'polite' });
    this.liveEl = h('span', { class: 'hist-live', id: 'hist-live' });
    const rangeForm = h('form', { class: 'rangeform', id: 'range-form', novalidate: true, onsubmit: (e) => { e.preventDefault(); this.applyCustom(); } },
      h('label', null, 'From ', this.fromIn),
      h('label', null, 'to ', this.toIn),
      h('button', { type: 'submit', id: 'range-apply' }, 'Apply'));

    this.aIn = h('input', { type: 'datetime-local', step: '1', id: 'cmp-a', 'aria-label': 'Moment A' });
    this.bIn = h('input', { type: 'datetime-local', step: '1', id: 'cmp-b', 'aria-label': 'Moment B' });
    this.cmpErr = h('span', { class: 'form-error', id: 'cmp-error', role: 'alert' });
    const cmpForm = h('form', { class: 'rangeform', id: 'cmp-form', novalidate: true, onsubmit: (e) => { e.preventDefault(); this.compareInputs(); } },
      h('span', { class: 'muted' }, 'What changed between'),
      h('label', null, 'A ', this.aIn),
      h('label', null, 'and B ', this.bIn),
      h('button', { type: 'submit', id: 'cmp-apply' }, 'Compare'),
      h('button', { type: 'button', id: 'cmp-since', onclick: () => this.since() }, 'Since 10 minutes ago'));

    this.chartsEl = h('div', { class: 'charts' });
    this.menu = h('div', { class: 'hist-menu', id: 'hist-menu', role: 'menu', 'aria-label': 'This moment', hidden: true });
    this.menu.addEventListener('keydown', (e) => this.menuKey(e));
    this.diff = h('div', { class: 'diff', id: 'diff' });
    this.panel.replaceChildren(
      h('div', { class: 'toolbar' },
        h('div', { class: 'seg', role: 'group', 'aria-label': 'Range' }, this.rangeBtns),
        this.resetBtn,
        rangeForm,
        this.rangeErr,
        this.status,
        this.liveEl),
      h('div', { class: 'toolbar toolbar-2' },
        cmpForm,
        this.cmpErr,
        h('span', { class: 'muted hist-hint' }, 'Click a chart to open the tree or set A or B there; drag to zoom. Keyboard: arrows on a chart, then Enter.')),
      h('div', { class: 'charts-wrap' }, this.chartsEl, this.menu),
      this.diff,
    );
    document.addEventListener('mousedown', (e) => {
      if (!this.menu.hidden && !this.menu.contains(e.target)) this.closeMenu(false);
    });
    this.markRange();
  }

  markRange() {
    for (const b of this.rangeBtns) b.setAttribute('aria-pressed', b.dataset.range === this.range ? 'true' : 'false');
    this.resetBtn.hidden = !this.zoomPrev;
  }

  /** bounds is the shown range in unix seconds; a preset ends now. */
  bounds() {
    if (this.range === 'custom' && this.custom) return { ...this.custom };
    const to = Math.floor(Date.now() / 1000);
    return { from: to - RANGES[this.range], to };
  }

  /** live: the range ends now, so new snapshots extend it. */
  live() {
    return this.range !== 'custom';
  }

  setRange(r) {
    if (!RANGES[r]) return;
    this.range = r;
    this.custom = null;
    this.autoRange = false;
    this.zoomPrev = null;
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
    this.autoRange = false;
    this.zoomPrev = null;
    this.markRange();
    this.onRange();
    this.load();
  }

  // zoomTo shows a dragged-over part of the charts; Reset returns to the
  // range it was cut from.
  zoomTo(a, b) {
    const from = Math.floor(Math.min(a, b));
    const to = Math.max(Math.ceil(Math.max(a, b)), from + 10);
    if (!this.zoomPrev) this.zoomPrev = { range: this.range, custom: this.custom, autoRange: this.autoRange };
    this.range = 'custom';
    this.custom = { from, to };
    this.autoRange = false;
    this.fromIn.value = toLocalInput(from);
    this.toIn.value = toLocalInput(to);
    this.markRange();
    this.onRange();
    this.load();
  }

  resetZoom() {
    if (!this.zoomPrev) return;
    Object.assign(this, this.zoomPrev);
    this.zoomPrev = null;
    this.markRange();
    this.onRange();
    this.load();
  }

  /** urlParams names the range for the URL; the default adds nothing. */
  urlParams() {
    if (this.range === 'custom' && this.custom) {
      return { from: new Date(this.custom.from * 1000).toISOString(), to: new Date(this.custom.to * 1000).toISOString() };
    }
    return this.autoRange || this.range === DEFAULT_RANGE ? {} : { range: this.range };
  }

  /** setURLParams restores a range from the URL (without loading). */
  setURLParams(p) {
    const from = Date.parse(p.get('from') ?? '') / 1000;
    const to = Date.parse(p.get('to') ?? '') / 1000;
    this.zoomPrev = null;
    if (Number.isFinite(from) && Number.isFinite(to) && from < to && to - from <= MAX_RANGE_S) {
      this.range = 'custom';
      this.custom = { from, to };
      this.autoRange = false;
      this.fromIn.value = toLocalInput(from);
      this.toIn.value = toLocalInput(to);
    } else if (RANGES[p.get('range')]) {
      this.range = p.get('range');
      this.custom = null;
      this.autoRange = false;
    } else {
      // No range in the URL: the first load fits one to the host's data.
      this.range = DEFAULT_RANGE;
      this.custom = null;
      this.autoRange = true;
      this.fitted = '';
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
    this.marks = { viewing: null, A: null, B: null };
    this.exact = { a: null, b: null };
    this.kb.t = null;
    this.closeMenu(false);
    this.stopTimers();
    this.seq++;
    this.destroyCharts();
    this.chartsEl.replaceChildren();
  }

  stopTimers() {
    clearTimeout(this.retryTimer);
    clearTimeout(this.liveTimer);
    this.retryTimer = 0;
    this.liveTimer = 0;
  }

  destroyCharts() {
    for (const c of this.charts) c.destroy();
    this.charts = [];
  }

  // fitRange picks the smallest preset that holds the host's first
  // snapshot (at least 5m), once per host, when no range was chosen.
  async fitRange(host) {
    if (!this.autoRange || this.fitted === host) return;
    const now = Date.now() / 1000;
    const first = await getJSON(snapshotsURL(host, (now - RANGES['7d']).toFixed(3), (now + 60).toFixed(3), 1));
    if (host !== this.host || !this.autoRange) return;
    this.fitted = host;
    this.range = Array.isArray(first) && first.length ? fitPreset(now - unix(first[0].captured_at)) : '7d';
    this.markRange();
  }

  /** load fetches every series of the range and draws the charts. */
  async load() {
    const host = this.host;
    if (!host) return;
    const seq = ++this.seq;
    this.stopTimers();
    this.closeMenu(false);
    this.status.textContent = 'loading…';
    let lib;
    try {
      [lib] = await Promise.all([loadCharts(), this.fitRange(host)]);
    } catch (err) {
      if (seq !== this.seq) return;
      this.failed(seq, errText(err));
      return;
    }
    if (seq !== this.seq) return;
    const { from, to } = this.bounds();
    // A preset's inputs show what it covers, a start for choosing another.
    if (this.range !== 'custom') {
      this.fromIn.value = toLocalInput(from);
      this.toIn.value = toLocalInput(to);
    }
    const step = stepFor(to - from);
    const got = await this.fetchAll(host, from, to, step);
    if (seq !== this.seq) return;
    this.win = { from, to };
    this.step = step;
    this.data = got;
    this.draw(lib);
    const failed = Object.entries(got.errors);
    if (failed.length) {
      this.failed(seq, errText(failed[0][1]), true);
      return;
    }
    this.retryMs = RETRY_MIN_MS;
    this.status.textContent = got.cpu.size === 0 && got.mem.size === 0 ? 'no history in this range' : '';
    this.liveLatest = got.meta ? got.meta.snapshot_id : 0;
    this.scheduleLive(seq);
  }

  // failed says what went wrong in the charts' place and tries again, a
  // little later each time (at most a minute apart).
  failed(seq, text, partial = false) {
    const secs = Math.round(this.retryMs / 1000);
    const msg = `${partial ? 'Some charts are missing' : 'No charts'}: ${text}. Retrying in ${secs} s…`;
    this.status.textContent = '';
    if (partial) {
      this.chartsEl.prepend(h('p', { class: 'chart-error', role: 'status' }, msg));
    } else {
      this.destroyCharts();
      this.chartsEl.replaceChildren(h('p', { class: 'chart-error', role: 'status' }, msg));
    }
    this.retryTimer = setTimeout(() => {
      if (seq === this.seq && !this.panel.hidden) this.load();
    }, this.retryMs);
    this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
  }

  // fetchAll asks for every series of a range: a bounded number of
  // requests (7 host series, the snapshot at the range's end and its
  // processes, and at most 2 x TOP_N processes' series).
  async fetchAll(host, from, to, step, topFrom = null) {
    const errors = {};
    const one = (key, url) => getJSON(url).catch((err) => { errors[key] = err; return null; });
    const hostMetrics = ['cpu', 'memory', 'swap', 'load1', 'load5', 'load15', 'filesystem'];
    const metaP = getJSON(atURL(host, to.toFixed(3))).catch((err) => {
      if (err.status !== 404) errors.meta = err;
      return null;
    });
    const hostP = Promise.all(hostMetrics.map((m) => one(m, seriesURL(host, m, from, to, step))));
    const meta = await metaP;
    let top = topFrom;
    if (!top && meta) {
      const procs = await one('processes', processesURL(meta.snapshot_id));
      top = topProcesses(procs);
    }
    top = top || { cpu: [], mem: [] };
    const pids = new Map();
    for (const p of [...top.cpu, ...top.mem]) pids.set(`${p.pid}/${p.create_time || ''}`, p);
    const procAnswers = await Promise.all(Array.from(pids.values(), (p) =>
      one('processes', procSeriesURL(host, p.pid, p.create_time, from, to, step)).then((r) => [p, r])));
    const [cpu, mem, swap, l1, l5, l15, fs] = await hostP;
    const fsMaps = new Map();
    for (const s of (fs && Array.isArray(fs.series) ? fs.series : [])) {
      const mp = s.labels && s.labels.mountpoint;
      if (typeof mp === 'string' && Array.isArray(s.values)) fsMaps.set(mp, toMap(toColumns({ series: [s] })));
    }
    const proc = new Map();
    for (const [p, r] of procAnswers) {
      if (!r) continue;
      const pick = (list) => (Array.isArray(list) ? (list.find((s) => !p.create_time || s.labels?.create_time === p.create_time) || list[0]) : null);
      proc.set(`${p.pid}/${p.create_time || ''}`, {
        cpu: toMap(toColumns({ series: [pick(r.cpu)].filter(Boolean) })),
        mem: toMap(toColumns({ series: [pick(r.memory)].filter(Boolean) })),
      });
    }
    return {
      errors,
      meta,
      top,
      cpu: toMap(toColumns(cpu)),
      mem: toMap(toColumns(mem)),
      swap: toMap(toColumns(swap)),
      load: [toMap(toColumns(l1)), toMap(toColumns(l5)), toMap(toColumns(l15))],
      fs: fsMaps,
      proc,
    };
  }

  // draw (re)builds every chart from this.data.
  draw(lib) {
    this.destroyCharts();
    this.chartsEl.replaceChildren();
    this.chartsEl.dataset.draws = String(Number(this.chartsEl.dataset.draws || 0) + 1);
    const ctx = {
      uPlot: lib.uPlot,
      syncKey: this.syncKey,
      window: () => this.win,
      marks: () => this.markList(),
      onZoom: (a, b) => this.zoomTo(a, b),
      onClick: (t, x, y, chart) => this.openMenu(t, x, y, chart),
      onKey: (chart, e) => this.chartKey(chart, e),
      onBlur: (chart, e) => {
        // Focus into the menu or another chart keeps the crosshair.
        const to = e.relatedTarget;
        if (!(to && (this.menu.contains(to) || this.chartsEl.contains(to)))) chart.showAt(null);
      },
    };
    for (const spec of lib.chartSpecs(this.data)) {
      // data-from/data-to say which range this drawing shows (and let the
      // browser tests check that a new range was really drawn).
      const box = h('figure', { class: `chart chart-${spec.id}`, 'data-chart': spec.kind, 'data-from': this.win.from, 'data-to': this.win.to, 'data-points': spec.data[0].length },
        h('figcaption', null, spec.title));
      this.chartsEl.appendChild(box);
      if (spec.empty) {
        box.classList.add('chart-empty');
        box.appendChild(h('p', { class: 'muted' }, spec.empty));
        continue;
      }
      this.charts.push(lib.makeChart(box, spec, ctx));
    }
  }

  markList() {
    return Object.entries(this.marks).filter(([, t]) => t != null).map(([label, t]) => ({ label, t }));
  }

  setMark(label, t) {
    this.marks[label] = t;
    for (const c of this.charts) c.redraw();
  }

  // ---- live updates ----

  // pollMs follows the host's push interval (the median gap between
  // points), between 2 s and a minute; a long range refreshes once a step.
  pollMs() {
    const ts = Array.from(this.data ? this.data.cpu.keys() : []).sort((a, b) => a - b);
    const gaps = [];
    for (let i = 1; i < ts.length; i++) gaps.push(ts[i] - ts[i - 1]);
    gaps.sort((a, b) => a - b);
    const gap = gaps.length ? gaps[Math.floor(gaps.length / 2)] : 5;
    return Math.min(60, Math.max(2, gap, this.step)) * 1000;
  }

  // setOffline: the host's offline time (HH:MM:SS), or '' when it is
  // online. A range ending now on an offline host is not "live": it says
  // since when the host is silent (it still asks, and grows when data comes).
  setOffline(since) {
    if (this.offlineSince === since) return;
    this.offlineSince = since;
    this.showLive();
  }

  showLive() {
    const live = this.live();
    const off = live && this.offlineSince;
    this.liveEl.textContent = !live ? 'range in the past: not updating' : off ? `host offline since ${off}: no new data` : 'live';
    this.liveEl.className = `hist-live ${live && !off ? 'on' : 'off'}`;
  }

  scheduleLive(seq) {
    clearTimeout(this.liveTimer);
    this.showLive();
    if (!this.live()) return;
    this.liveTimer = setTimeout(() => this.tick(seq), this.pollMs());
  }

  // tick asks whether a newer snapshot exists (one small request) and only
  // then fetches the new part of every series and appends it. The history
  // store makes points searchable a moment after ingest, so a snapshot
  // whose point has not appeared yet is asked for again at the next tick.
  async tick(seq) {
    if (seq !== this.seq || !this.live()) return;
    if (this.panel.hidden) return; // load() starts again when the tab is shown
    if (document.hidden) {
      this.scheduleLive(seq);
      return;
    }
    try {
      const latest = await getJSON(latestURL(this.host));
      if (seq !== this.seq) return;
      if (latest.snapshot_id !== this.liveLatest) {
        const step = this.step;
        const last = Math.max(this.win.from, ...this.data.cpu.keys());
        const from = Math.floor(last / step) * step; // the last bucket is fetched again, whole
        const to = Math.floor(Date.now() / 1000);
        const got = await this.fetchAll(this.host, from, to, step, this.data.top);
        if (seq !== this.seq) return;
        if (Object.keys(got.errors).length) throw Object.values(got.errors)[0];
        const d = this.data;
        merge(d.cpu, got.cpu);
        merge(d.mem, got.mem);
        merge(d.swap, got.swap);
        got.load.forEach((m, i) => merge(d.load[i], m));
        for (const [mp, m] of got.fs) {
          if (!d.fs.has(mp)) d.fs.set(mp, new Map());
          merge(d.fs.get(mp), m);
        }
        for (const [k, m] of got.proc) {
          if (!d.proc.has(k)) d.proc.set(k, { cpu: new Map(), mem: new Map() });
          merge(d.proc.get(k).cpu, m.cpu);
          merge(d.proc.get(k).mem, m.mem);
        }
        if (got.meta) d.meta = got.meta;
        const caught = Array.from(got.cpu.keys()).some((t) => t + step > unix(latest.captured_at));
        if (caught) this.liveLatest = latest.snapshot_id;
        // The window slides to end now; what fell out of it goes.
        const secs = this.win.to - this.win.from;
        this.win = { from: to - secs, to };
        for (const m of [d.cpu, d.mem, d.swap, ...d.load, ...d.fs.values()]) trim(m, this.win.from);
        for (const p of d.proc.values()) {
          trim(p.cpu, this.win.from);
          trim(p.mem, this.win.from);
        }
        this.redrawData();
      }
      this.status.textContent = '';
    } catch (err) {
      if (seq !== this.seq) return;
      this.status.textContent = `live update failed (${errText(err)}), retrying`;
    }
    this.scheduleLive(seq);
  }

  // redrawData gives every chart its new columns (same series, so no
  // rebuild: the crosshair and legend stay where they are).
  async redrawData() {
    const lib = await loadCharts();
    const specs = new Map(lib.chartSpecs(this.data).map((s) => [s.id, s]));
    for (const c of this.charts) {
      const s = specs.get(c.spec.id);
      if (!s || s.series.length !== c.spec.series.length) {
        this.draw(lib);
        return;
      }
      c.box.dataset.from = String(this.win.from);
      c.box.dataset.to = String(this.win.to);
      c.update(s.data);
    }
  }

  // ---- the click menu ----

  // snap finds the stored snapshot nearest to t: the one at or before it
  // and the first after it, two small requests.
  async snap(t) {
    const host = this.host;
    const span = Math.max(60, this.win.to - this.win.from);
    const [before, after] = await Promise.all([
      getJSON(atURL(host, t.toFixed(3))).catch((err) => { if (err.status === 404) return null; throw err; }),
      getJSON(snapshotsURL(host, t.toFixed(3), (t + span).toFixed(3), 1)).then((l) => (Array.isArray(l) && l.length ? l[0] : null)),
    ]);
    const cands = [before, after].filter(Boolean);
    if (!cands.length) return null;
    cands.sort((a, b) => Math.abs(unix(a.captured_at) - t) - Math.abs(unix(b.captured_at) - t));
    return cands[0];
  }

  // ---- the keyboard ----

  // chartKey moves the keyboard's moment from snapshot to snapshot, or
  // opens the menu there. Steps are queued (each asks the server for the
  // neighbouring snapshot), at most a few ahead so a held key cannot run
  // away.
  chartKey(chart, e) {
    const steps = { ArrowLeft: 'prev', ArrowDown: 'prev', ArrowRight: 'next', ArrowUp: 'next', Home: 'first', End: 'last', PageUp: 'back', PageDown: 'fwd' };
    if (e.key === 'Escape' && !this.menu.hidden) {
      // The menu still looking for its snapshot (or saying it found none).
      e.preventDefault();
      this.closeMenu(true);
      return;
    }
    if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      this.kb.queue = this.kb.queue.then(async () => {
        if (this.kb.t == null || this.kb.t < this.win.from || this.kb.t > this.win.to) await this.kbMove(chart, 'last');
        if (this.kb.t == null) return;
        const p = chart.pointAt(this.kb.t);
        await this.openMenu(this.kb.t, p.x, p.y, chart);
      }).catch(() => {});
      return;
    }
    const how = steps[e.key];
    if (!how || e.altKey || e.ctrlKey || e.metaKey) return;
    e.preventDefault();
    if (this.kb.busy >= 3) return;
    this.kb.busy++;
    this.kb.queue = this.kb.queue.then(() => this.kbMove(chart, how)).catch(() => {}).finally(() => { this.kb.busy--; });
  }

  // kbMove finds the snapshot a step asks for and puts the crosshair on
  // it; at an end of the range it stays.
  async kbMove(chart, how) {
    const host = this.host;
    const seq = this.seq;
    const { from, to } = this.win;
    let t = this.kb.t;
    if (t == null || t < from || t > to) {
      // No moment yet (or the range moved): start from an end.
      how = how === 'prev' || how === 'back' || how === 'last' ? 'last' : 'first';
    }
    const first = (a, b) => getJSON(snapshotsURL(host, a.toFixed(3), b.toFixed(3), 1)).then((l) => (Array.isArray(l) && l.length ? l[0] : null));
    const atOrBefore = (x) => getJSON(atURL(host, x.toFixed(3))).catch((err) => { if (err.status === 404) return null; throw err; });
    let meta = null;
    try {
      // The range's first snapshot (asked once per range): nothing is
      // asked for before it, which would be a 404 when it is the host's
      // first.
      const key = `${host}|${from}|${to}`;
      if (this.kb.firstKey !== key) {
        this.kb.first = await first(from, to);
        this.kb.firstKey = key;
      }
      const f = this.kb.first;
      const ft = f ? unix(f.captured_at) : Infinity;
      if (how === 'first') meta = f;
      else if (how === 'last') meta = f ? await atOrBefore(to) : null;
      else if (how === 'next') meta = await first(t + 0.001, to);
      else if (how === 'prev') meta = t > ft ? await atOrBefore(t - 0.001) : null;
      else {
        const jump = (to - from) / 10;
        const target = Math.min(to, Math.max(from, t + (how === 'fwd' ? jump : -jump)));
        meta = target <= ft ? f : await this.snap(target);
      }
    } catch (err) {
      chart.over.setAttribute('aria-valuetext', `cannot find a snapshot: ${errText(err)}`);
      return;
    }
    if (seq !== this.seq || host !== this.host) return;
    const at = meta ? unix(meta.captured_at) : NaN;
    if (!(at >= from && at <= to)) {
      // Nothing further that way: say so, stay put.
      if (t != null) chart.over.setAttribute('aria-valuetext', `${this.kbText(this.kb.id, t)} (${how === 'next' || how === 'fwd' || how === 'last' ? 'the last' : 'the first'} in this range)`);
      else chart.over.setAttribute('aria-valuetext', 'no snapshot in this range');
      return;
    }
    this.kb.t = at;
    this.kb.id = meta.snapshot_id;
    chart.box.dataset.kbSnapshot = String(meta.snapshot_id);
    chart.showAt(at, this.kbText(meta.snapshot_id, at));
  }

  kbText(id, t) {
    return `snapshot ${id} at ${localTime(new Date(t * 1000).toISOString())}`;
  }

  async openMenu(t, clientX, clientY, chart = null) {
    const seq = ++this.menuSeq;
    this.menuFrom = chart;
    const wrap = this.menu.parentElement.getBoundingClientRect();
    const left = Math.min(Math.max(0, clientX - wrap.left + 8), Math.max(0, wrap.width - 240));
    this.menu.style.left = `${left}px`;
    this.menu.style.top = `${Math.max(0, clientY - wrap.top + 8)}px`;
    this.menu.replaceChildren(h('p', { class: 'muted' }, 'finding the nearest snapshot…'));
    this.menu.hidden = false;
    let meta;
    try {
      meta = await this.snap(t);
    } catch (err) {
      if (seq !== this.menuSeq) return;
      this.menu.replaceChildren(h('p', { class: 'form-error' }, `Cannot find a snapshot: ${errText(err)}.`));
      return;
    }
    if (seq !== this.menuSeq || this.menu.hidden) return;
    if (!meta) {
      this.menu.replaceChildren(h('p', { class: 'muted' }, 'No snapshot is stored near this moment.'));
      return;
    }
    const at = unix(meta.captured_at);
    // The keyboard goes on from the moment the menu was opened at.
    this.kb.t = at;
    this.kb.id = meta.snapshot_id;
    const item = (act, label, fn) => h('button', { type: 'button', role: 'menuitem', 'data-act': act, onclick: () => { this.closeMenu(true); fn(); } }, label);
    this.menu.dataset.snapshot = String(meta.snapshot_id);
    this.menu.dataset.time = String(at);
    this.menu.replaceChildren(
      h('p', { class: 'hist-menu-head', title: meta.captured_at }, `Snapshot ${meta.snapshot_id} · ${localTime(meta.captured_at)}`),
      item('open', 'Open the tree here', () => this.onPick(at)),
      item('a', 'Set A', () => this.pickMoment('a', at)),
      item('b', 'Set B', () => this.pickMoment('b', at)));
    this.menu.querySelector('button').focus();
  }

  closeMenu(refocus) {
    if (this.menu.hidden) return;
    this.menuSeq++;
    this.menu.hidden = true;
    this.menu.replaceChildren();
    const back = this.menuFrom && this.charts.includes(this.menuFrom) ? this.menuFrom : this.charts[0];
    this.menuFrom = null;
    if (refocus && back) {
      back.over.focus();
      if (this.kb.t != null) back.showAt(this.kb.t, this.kbText(this.kb.id, this.kb.t));
    }
  }

  menuKey(e) {
    const items = Array.from(this.menu.querySelectorAll('button'));
    const i = items.indexOf(document.activeElement);
    if (e.key === 'Escape' || e.key === 'Tab') {
      // Tab too: a menu is left, not tabbed through.
      this.closeMenu(true);
      e.preventDefault();
    } else if ((e.key === 'ArrowDown' || e.key === 'ArrowUp') && items.length) {
      items[(i + (e.key === 'ArrowDown' ? 1 : items.length - 1)) % items.length].focus();
      e.preventDefault();
    } else if ((e.key === 'Home' || e.key === 'End') && items.length) {
      items[e.key === 'Home' ? 0 : items.length - 1].focus();
      e.preventDefault();
    }
  }

  // pickMoment sets A or B to a snapshot's time; once both were picked on
  // a chart, they are compared at once.
  pickMoment(which, t) {
    const el = which === 'a' ? this.aIn : this.bIn;
    el.value = toLocalInput(Math.floor(t), true);
    this.exact[which] = { value: el.value, t };
    this.cmpErr.textContent = '';
    this.setMark(which.toUpperCase(), t);
    const picked = (w) => this.exact[w] && this.exact[w].value === (w === 'a' ? this.aIn : this.bIn).value;
    if (picked('a') && picked('b')) this.compareInputs();
  }

  // inputTime reads moment A or B: the exact time of a chart pick while
  // the input still shows it, else the typed time to the second, as the
  // end of that second (a snapshot at 12:00:05.300 is "at 12:00:05").
  inputTime(which) {
    const el = which === 'a' ? this.aIn : this.bIn;
    const ex = this.exact[which];
    if (ex && ex.value === el.value) return ex.t;
    const t = fromLocalInput(el.value);
    return Number.isFinite(t) && /T\d\d:\d\d:\d\d$/.test(el.value) ? t + 0.999 : t;
  }

  /** compareInputs compares the snapshots at or before moments A and B. */
  async compareInputs() {
    const a = this.inputTime('a');
    const b = this.inputTime('b');
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
    await this.compareMoments(now - SINCE_S, null, 'in the last 10 minutes', true);
  }

  // compareMoments resolves a moment to the snapshot at or before it (b
  // null: the latest) and shows their diff; A and B are marked where the
  // snapshots are.
  // orFirst: a host younger than moment A is compared from its first
  // snapshot (and says so) instead of failing.
  async compareMoments(a, b, label, orFirst = false) {
    const host = this.host;
    if (!host) return;
    const seq = ++this.diffSeq;
    this.diffKind = 'compare';
    this.diff.replaceChildren(h('p', { class: 'muted diff-note' }, 'Comparing…'));
    const which = (t, name) => getJSON(atURL(host, t.toFixed(3))).catch((err) => {
      throw err.status === 404 ? new ApiError(404, `no snapshot is stored at or before moment ${name} (${localTime(new Date(t * 1000).toISOString())})`) : err;
    });
    try {
      const first = orFirst ? resolveBase(host, a, Date.now() / 1000 + 60).then((r) => {
        if (r.first) label = `since its first snapshot (the host is younger than ${label.replace(/^in the last /, '')})`;
        return r.meta;
      }) : which(a, 'A');
      const [ma, mb] = await Promise.all([first, b === null ? getJSON(latestURL(host)) : which(b, 'B')]);
      if (seq !== this.diffSeq) return;
      this.marks.A = unix(ma.captured_at);
      this.setMark('B', unix(mb.captured_at));
      if (ma.snapshot_id === mb.snapshot_id) {
        this.diff.replaceChildren(h('p', { class: 'muted diff-note' },
          `Both moments fall on the same snapshot (${ma.snapshot_id}, captured ${localTime(ma.captured_at)}): nothing to compare.`));
        return;
      }
      await this.renderDiff(ma, mb, seq, label);
    } catch (err) {
      if (seq !== this.diffSeq) return;
      this.diff.replaceChildren(h('p', { class: 'form-error diff-note' }, `Cannot compare: ${errText(err)}`));
    }
  }

  /** showDiff lists what changed from a past snapshot to the latest. */
  async showDiff(pastMeta, latestMeta) {
    const seq = ++this.diffSeq;
    this.diffKind = 'past';
    // The moment being viewed is marked on every chart.
    this.setMark('viewing', unix(pastMeta.captured_at));
    if (!latestMeta || pastMeta.snapshot_id === latestMeta.snapshot_id) {
      this.diff.replaceChildren(h('p', { class: 'muted diff-note' }, 'This is the latest snapshot: nothing to compare.'));
      return;
    }
    this.diff.replaceChildren(h('p', { class: 'muted diff-note' }, 'Comparing…'));
    try {
      await this.renderDiff(pastMeta, latestMeta, seq, 'to the latest snapshot');
    } catch (err) {
      if (seq !== this.diffSeq) return;
      this.diff.replaceChildren(h('p', { class: 'form-error diff-note' }, `Cannot compare: ${errText(err)}`));
    }
  }

  clearDiff() {
    this.diffSeq++;
    this.diffKind = '';
    this.diff.replaceChildren();
  }

  /** clearPastDiff drops a past-vs-latest diff (back to live); a chosen comparison stays. */
  clearPastDiff() {
    this.setMark('viewing', null);
    if (this.diffKind === 'past') this.clearDiff();
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
    for (const c of this.charts) c.resize();
  }
}



const hhmm = (t) => {
  const d = new Date(t * 1000);
  return `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
};


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
    const [uPlot, resp] = await Promise.all([loadUPlot(), getJSON(procSeriesURL(host, pid, createTime, from, to, 0))]);
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
    el.replaceChildren(h('p', { class: 'muted' }, err.status === 404 ? 'No history for this process.' : `cannot load its history: ${errText(err)}`));
  }
}
