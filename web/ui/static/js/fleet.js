// fleet.js: the home page, every host in one table (GET /api/v1/fleet):
// status, CPU, memory, busiest filesystem, load, processes, exporter, last
// seen; sortable (problems first by default) and filterable.
//
// Rows are kept per host and updated in place, so a live update of 1,000
// hosts rewrites the cells that changed, not the table.

import { h, bytes, num, ago, localTime, shortStart } from './util.js';

// Thresholds (docs/ui.md): a share used at or above WARN is amber, at or
// above CRIT red; the same as the System tab's bars. Load is judged per
// logical CPU.
export const WARN = 0.75;
export const CRIT = 0.9;
export const LOAD_WARN = 1;
export const LOAD_CRIT = 2;

const ratio = (used, total) => (Number.isFinite(used) && total > 0 ? Math.max(0, used / total) : NaN);
const isNum = (v) => typeof v === 'number' && Number.isFinite(v);

/** metrics derives the shares the table shows and sorts by. */
export function metrics(ho) {
  const cpu = isNum(ho.cpu_percent) ? ho.cpu_percent / 100 : NaN;
  const mem = ratio(ho.memory_used_bytes, ho.memory_total_bytes);
  const fs = ho.busiest_fs ? ratio(ho.busiest_fs.used_bytes, ho.busiest_fs.total_bytes) : NaN;
  const load = isNum(ho.load1) && ho.logical_cpus > 0 ? ho.load1 / ho.logical_cpus : NaN;
  return { cpu, mem, fs, load };
}

/**
 * severity: 4 status unknown (server unreachable), 3 offline or no
 * snapshot ever, 2 critical, 1 warning, 0 fine. worst: the highest share, for ties.
 */
export function severity(ho, m, stale) {
  if (stale) return 4;
  if (!ho.online || ho.latest_snapshot_id == null) return 3;
  const over = (v, w, c) => (v >= c ? 2 : v >= w ? 1 : 0);
  return Math.max(over(m.cpu, WARN, CRIT), over(m.mem, WARN, CRIT), over(m.fs, WARN, CRIT), over(m.load, LOAD_WARN, LOAD_CRIT));
}

const ROW_H = 29; // px, a row with its border: must match fleet.css
const OVERSCAN = 12; // rows drawn beyond the visible ones, each side

const level = (v, w, c) => (v >= c ? ' hot' : v >= w ? ' warm' : '');

const COLUMNS = [
  // key, label, class, title
  ['status', 'Status', 'f-status', 'Online, offline (since when) or no data'],
  ['host', 'Host', 'f-host', 'Host name'],
  ['cpu', 'CPU', 'f-cpu f-bar', 'Whole host CPU use, all logical CPUs'],
  ['mem', 'Memory', 'f-mem f-bar', 'RAM used of total'],
  ['fs', 'Busiest disk', 'f-fs f-bar', 'The filesystem with the highest share used'],
  ['load', 'Load', 'f-load f-bar', 'Load average (1 minute) per logical CPU'],
  ['procs', 'Procs', 'f-procs', 'Processes on the host'],
  ['exporter', 'Exporter', 'f-exp', 'Exporter software and version'],
  ['seen', 'Last seen', 'f-seen', 'When the aggregator last accepted a snapshot'],
];

const SORTERS = {
  problems: (a, b) => b.sev - a.sev || b.w - a.w || byName(a, b),
  status: (a, b) => b.sev - a.sev || byName(a, b),
  host: (a, b) => byName(a, b),
  cpu: (a, b) => numDesc(a.m.cpu, b.m.cpu) || byName(a, b),
  mem: (a, b) => numDesc(a.m.mem, b.m.mem) || byName(a, b),
  fs: (a, b) => numDesc(a.m.fs, b.m.fs) || byName(a, b),
  load: (a, b) => numDesc(a.m.load, b.m.load) || byName(a, b),
  procs: (a, b) => numDesc(a.ho.process_count, b.ho.process_count) || byName(a, b),
  exporter: (a, b) => (a.ho.exporter || '').localeCompare(b.ho.exporter || '') || byName(a, b),
  seen: (a, b) => a.seen - b.seen || byName(a, b),
};
// The first click on these sorts ascending; on the others, biggest first.
const ASC_FIRST = new Set(['host', 'exporter', 'seen']);

/** worst is the highest share of a host (load counted against LOAD_CRIT), -1 when none. */
function worst(m) {
  let w = -1;
  for (const v of [m.cpu, m.mem, m.fs, m.load / LOAD_CRIT]) if (Number.isFinite(v) && v > w) w = v;
  return w;
}
const byName = (a, b) => (a.ho.hostname < b.ho.hostname ? -1 : a.ho.hostname > b.ho.hostname ? 1 : 0);
function numDesc(x, y) {
  const fx = Number.isFinite(x);
  const fy = Number.isFinite(y);
  if (fx !== fy) return fx ? -1 : 1; // unknown last
  return fx ? y - x : 0;
}

/** statusText is what the Status column and the host pages say. */
export function statusText(ho, stale, now = Date.now()) {
  if (stale) return { text: 'unknown', cls: 'unknown', title: 'The server is unreachable: the status is not known' };
  if (ho.latest_snapshot_id == null) return { text: 'no data', cls: 'nodata', title: 'Registered, no snapshot yet' };
  if (!ho.online) {
    return { text: `offline ${shortStart(ho.last_seen, now)}`, cls: 'off', title: `offline since ${localTime(ho.last_seen)} (${ago(ho.last_seen, now)})` };
  }
  return { text: 'online', cls: 'on', title: `last snapshot ${localTime(ho.latest_captured_at)}` };
}

export class FleetView {
  /**
   * @param el the panel
   * @param opts {onOpen(host), onChange()} onChange: sort or filter changed (URL)
   */
  constructor(el, opts) {
    this.el = el;
    this.opts = opts;
    this.hosts = [];
    this.serverNow = 0; // server clock minus ours, ms
    this.stale = false;
    this.sort = 'problems';
    this.desc = true;
    this.filter = '';
    this.only = 'all';
    this.rows = new Map(); // hostname -> row record
    this.order = [];
    this.build();
    // A host's pages hide the panel, and the fleet is fetched there too
    // (host status): the table is drawn when the panel shows again, not
    // with every answer (drawing reads the layout, which a hidden table
    // would make the browser compute for nothing).
    this.unseen = false;
    new MutationObserver(() => {
      if (!this.el.hidden && this.unseen) this.render();
    }).observe(this.el, { attributes: true, attributeFilter: ['hidden'] });
  }

  build() {
    this.filterInput = h('input', {
      type: 'search', id: 'fleet-filter', placeholder: 'Filter: host, OS, exporter, mount', 'aria-label': 'Filter hosts', autocomplete: 'off', spellcheck: 'false',
      oninput: () => { this.filter = this.filterInput.value; this.render(); this.opts.onChange(); },
    });
    this.onlySel = h('select', { id: 'fleet-only', 'aria-label': 'Show', onchange: () => { this.only = this.onlySel.value; this.render(); this.opts.onChange(); } },
      h('option', { value: 'all' }, 'All hosts'),
      h('option', { value: 'problems' }, 'Problems only'),
      h('option', { value: 'offline' }, 'Offline only'),
      h('option', { value: 'online' }, 'Online only'));
    this.summary = h('span', { class: 'fleet-summary', id: 'fleet-summary', 'aria-live': 'polite' });
    this.headCells = {};
    const ths = COLUMNS.map(([key, label, cls, title]) => {
      const b = h('button', { type: 'button', class: 'th', title: `${title}. Sort by ${label}`, onclick: () => this.clickSort(key) }, label);
      const th = h('th', { class: cls, scope: 'col' }, b);
      this.headCells[key] = th;
      return th;
    });
    this.tbody = h('tbody', { id: 'fleet-rows' });
    // The spacers are presentational rows (no cells a reader would visit).
    this.padTop = h('tr', { class: 'pad', 'aria-hidden': 'true' }, h('td', { colspan: String(COLUMNS.length) }));
    this.padBottom = h('tr', { class: 'pad', 'aria-hidden': 'true' }, h('td', { colspan: String(COLUMNS.length) }));
    this.rowH = ROW_H;
    this.empty = h('p', { class: 'muted fleet-empty', hidden: true });
    this.table = h('table', { class: 'fleet', id: 'fleet-table', 'aria-label': 'Hosts' },
      h('thead', null, h('tr', null, ths)), this.tbody);
    this.tbody.addEventListener('click', (e) => {
      const a = e.target.closest('a.fl-host');
      if (!a || e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
      e.preventDefault();
      this.opts.onOpen(a.dataset.host);
    });
    this.wrap = h('div', { class: 'fleet-wrap' }, this.table, this.empty);
    let pending = false;
    this.wrap.addEventListener('scroll', () => {
      if (pending) return;
      pending = true;
      requestAnimationFrame(() => {
        pending = false;
        this.drawWindow();
      });
    }, { passive: true });
    this.el.replaceChildren(
      h('div', { class: 'toolbar fleet-toolbar' }, this.filterInput, this.onlySel, h('span', { class: 'spacer' }), this.summary),
      this.wrap);
    this.updateHead();
  }

  clickSort(key) {
    if (this.sort === key) this.desc = !this.desc;
    else {
      this.sort = key;
      this.desc = !ASC_FIRST.has(key);
    }
    this.updateHead();
    this.render();
    this.opts.onChange();
  }

  setSort(key, desc) {
    this.sort = SORTERS[key] ? key : 'problems';
    this.desc = desc === undefined ? !ASC_FIRST.has(this.sort) : desc;
    this.updateHead();
  }

  setFilter(text, only) {
    this.filter = text || '';
    this.only = ['problems', 'offline', 'online'].includes(only) ? only : 'all';
    this.filterInput.value = this.filter;
    this.onlySel.value = this.only;
  }

  urlParams() {
    const p = {};
    if (this.filter) p.fq = this.filter;
    if (this.only !== 'all') p.fshow = this.only;
    if (this.sort !== 'problems') p.fsort = this.sort;
    if (this.desc !== !ASC_FIRST.has(this.sort)) p.fdir = this.desc ? 'desc' : 'asc';
    return p;
  }

  updateHead() {
    for (const [key, th] of Object.entries(this.headCells)) {
      const on = key === this.sort || (this.sort === 'problems' && key === 'status');
      th.classList.toggle('sorted', on);
      th.classList.toggle('desc', on && this.desc);
      if (on) th.setAttribute('aria-sort', this.desc ? 'descending' : 'ascending');
      else th.removeAttribute('aria-sort');
    }
  }

  /** setData takes a GET /api/v1/fleet answer. */
  setData(fleet) {
    this.hosts = Array.isArray(fleet?.hosts) ? fleet.hosts : [];
    const sn = Date.parse(fleet?.now);
    this.serverNow = Number.isFinite(sn) ? sn - Date.now() : 0;
    this.render();
  }

  setStale(stale) {
    if (stale === this.stale) return;
    this.stale = stale;
    this.el.classList.toggle('stale', stale);
    this.render();
  }

  /** now is the server's clock, so "offline 5m" does not depend on ours. */
  now() {
    return Date.now() + this.serverNow;
  }

  matches(ho, sev) {
    if (this.only === 'problems' && sev === 0) return false;
    if (this.only === 'offline' && ho.online) return false;
    if (this.only === 'online' && !ho.online) return false;
    const q = this.filter.trim().toLowerCase();
    if (!q) return true;
    return ho.hostname.toLowerCase().includes(q) || (ho.os || '').toLowerCase().includes(q)
      || (ho.exporter || '').toLowerCase().includes(q) || (ho.busiest_fs?.mountpoint || '').toLowerCase().includes(q);
  }

  render() {
    this.unseen = this.el.hidden;
    if (this.unseen) return;
    const t0 = performance.now();
    const now = this.now();
    const items = [];
    let online = 0;
    let offline = 0;
    let problems = 0;
    for (const ho of this.hosts) {
      const m = metrics(ho);
      const sev = severity(ho, m, this.stale);
      if (ho.online) online++;
      else offline++;
      if (sev > 0 && !this.stale) problems++;
      // Computed once here, not in every comparison of the sort.
      if (this.matches(ho, sev)) items.push({ ho, m, sev, w: worst(m), seen: Date.parse(ho.last_seen) || 0 });
    }
    // Each sorter gives its natural order (biggest or worst first, names
    // A to Z, oldest first); the other direction reverses it.
    const cmp = SORTERS[this.sort];
    const flip = this.desc === !ASC_FIRST.has(this.sort) ? 1 : -1;
    items.sort((a, b) => cmp(a, b) * flip);

    this.items = items;
    this.table.setAttribute('aria-rowcount', String(items.length + 1));
    this.drawWindow(now);
    const n = this.hosts.length;
    this.summary.textContent = n === 0 ? ''
      : `${n.toLocaleString('en-US')} ${n === 1 ? 'host' : 'hosts'} · ${online.toLocaleString('en-US')} online · ${offline.toLocaleString('en-US')} offline`
        + `${this.stale ? '' : ` · ${problems.toLocaleString('en-US')} with problems`}${items.length !== n ? ` · ${items.length.toLocaleString('en-US')} shown` : ''}`;
    this.empty.textContent = n === 0 ? 'No host has reported yet. Start an exporter pointed at this server (docs/operations.md).'
      : items.length === 0 ? 'No host matches the filter.' : '';
    this.empty.hidden = this.empty.textContent === '';
    this.table.hidden = n === 0;
    performance.measure('fleet-render', { start: t0, end: performance.now() });
  }

  /**
   * drawWindow draws the rows in view and a few around them; spacer rows
   * stand for the others, so 1,000 or 10,000 hosts cost the same to draw
   * and to lay out.
   */
  drawWindow(now = this.now()) {
    const items = this.items || [];
    const rh = this.rowH;
    const top = this.wrap.scrollTop;
    const height = this.wrap.clientHeight || 900;
    const start = Math.max(0, Math.floor(top / rh) - OVERSCAN);
    const end = Math.min(items.length, Math.ceil((top + height) / rh) + OVERSCAN);
    const trs = [];
    const keep = new Set();
    for (let i = start; i < end; i++) {
      const it = items[i];
      let r = this.rows.get(it.ho.hostname);
      if (!r) {
        r = this.makeRow(it.ho.hostname);
        this.rows.set(it.ho.hostname, r);
      }
      this.fillRow(r, it, now);
      setAttr(r, 'ri', r.tr, 'aria-rowindex', String(i + 2));
      keep.add(it.ho.hostname);
      trs.push(r.tr);
    }
    // The CSS sets the row height; measured once, in case zoom or fonts
    // made it differ.
    if (!this.measured && trs.length > 0 && this.wrap.isConnected && !this.el.hidden) {
      const real = trs[0].isConnected ? trs[0].getBoundingClientRect().height : 0;
      if (real > 0) {
        this.measured = true;
        this.rowH = real;
      }
    }
    // Rows out of view are dropped (bounded memory), their DOM reused never.
    for (const name of this.rows.keys()) if (!keep.has(name)) this.rows.delete(name);
    this.padTop.hidden = start === 0;
    this.padTop.firstChild.style.height = `${start * rh}px`;
    this.padBottom.hidden = end === items.length;
    this.padBottom.firstChild.style.height = `${(items.length - end) * rh}px`;
    // Reorder only when the rows or their order changed.
    const same = trs.length === this.order.length && trs.every((tr, i) => tr === this.order[i]);
    if (!same) {
      this.tbody.replaceChildren(this.padTop, ...trs, this.padBottom);
      this.order = trs;
    }
  }

  makeRow(name) {
    const cell = (cls) => h('td', { class: cls });
    const r = {
      tr: h('tr', { dataset: { host: name } }),
      status: cell('f-status'),
      dot: h('span', { class: 'dot', 'aria-hidden': 'true' }),
      stText: h('span', { class: 'st' }),
      host: cell('f-host'),
      link: h('a', { class: 'fl-host', href: `?${new URLSearchParams({ host: name })}`, dataset: { host: name } }, name),
      os: h('span', { class: 'fl-os' }),
      cpu: bar('f-cpu f-bar'),
      mem: bar('f-mem f-bar'),
      fs: bar('f-fs f-bar'),
      load: bar('f-load f-bar'),
      procs: cell('f-procs num'),
      exp: cell('f-exp'),
      seen: cell('f-seen'),
      last: {},
    };
    r.status.append(r.dot, r.stText);
    r.host.append(r.link, r.os);
    r.tr.append(r.status, r.host, r.cpu.td, r.mem.td, r.fs.td, r.load.td, r.procs, r.exp, r.seen);
    return r;
  }

  fillRow(r, { ho, m, sev }, now) {
    const st = statusText(ho, this.stale, now);
    set(r, 'stc', st.cls, () => { r.dot.className = `dot ${st.cls}`; r.tr.className = `sev${sev} ${st.cls}`; });
    set(r, 'sev', sev, () => { r.tr.className = `sev${sev} ${st.cls}`; });
    setText(r, 'st', r.stText, st.text);
    setAttr(r, 'stt', r.status, 'title', st.title);
    setText(r, 'os', r.os, ho.os || '');
    setAttr(r, 'ost', r.host, 'title', `${ho.hostname}${ho.os ? `\n${ho.os}` : ''}`);
    const nodata = ho.latest_snapshot_id == null;
    r.cpu.set(m.cpu, WARN, CRIT, isNum(ho.cpu_percent) ? `${num(ho.cpu_percent, 1)} %` : '—', '',
      isNum(ho.cpu_percent) ? `${num(ho.cpu_percent, 1)} % of ${ho.logical_cpus ? `${ho.logical_cpus} logical CPUs` : 'all CPUs'}` : 'not reported');
    r.mem.set(m.mem, WARN, CRIT, Number.isFinite(m.mem) ? `${num(m.mem * 100, 0)} %` : '—',
      Number.isFinite(m.mem) ? `${bytes(ho.memory_used_bytes)} / ${bytes(ho.memory_total_bytes)}` : '',
      Number.isFinite(m.mem) ? `${bytes(ho.memory_used_bytes)} of ${bytes(ho.memory_total_bytes)} used` : 'not reported');
    const fs = ho.busiest_fs;
    r.fs.set(m.fs, WARN, CRIT, Number.isFinite(m.fs) ? `${num(m.fs * 100, 0)} %` : '—', fs ? fs.mountpoint : '',
      fs ? `${fs.mountpoint}: ${bytes(fs.used_bytes)} of ${bytes(fs.total_bytes)} used` : 'not reported');
    r.load.set(Number.isFinite(m.load) ? m.load / LOAD_CRIT : NaN, LOAD_WARN / LOAD_CRIT, 1, isNum(ho.load1) ? num(ho.load1, 2) : '—',
      ho.logical_cpus ? `/${ho.logical_cpus}` : '',
      isNum(ho.load1) ? `load ${num(ho.load1, 2)} ${num(ho.load5, 2)} ${num(ho.load15, 2)} (1, 5, 15 min)${ho.logical_cpus ? ` on ${ho.logical_cpus} logical CPUs` : ''}` : 'not reported');
    setText(r, 'pc', r.procs, isNum(ho.process_count) ? ho.process_count.toLocaleString('en-US') : nodata ? '' : '—');
    setText(r, 'ex', r.exp, (ho.exporter || '').replace(/^procscope-exporter /, ''));
    setAttr(r, 'ext', r.exp, 'title', ho.exporter || '');
    setText(r, 'sn', r.seen, `${shortStart(ho.last_seen, now)} ago`);
    setAttr(r, 'snt', r.seen, 'title', localTime(ho.last_seen));
  }
}

function set(r, key, v, fn) {
  if (r.last[key] === v) return;
  r.last[key] = v;
  fn();
}
function setText(r, key, el, v) {
  set(r, key, v, () => { el.textContent = v; });
}
function setAttr(r, key, el, attr, v) {
  set(r, key, v, () => el.setAttribute(attr, v));
}

/** bar is a cell with a gauge, its value and a muted note. */
function bar(cls) {
  const fill = h('span', { class: 'fill' });
  const gauge = h('span', { class: 'gauge', 'aria-hidden': 'true' }, fill);
  const val = h('span', { class: 'val' });
  const note = h('span', { class: 'note' });
  const td = h('td', { class: cls }, gauge, val, note);
  const last = {};
  return {
    td,
    set(frac, warn, crit, text, noteText, title) {
      const w = Number.isFinite(frac) ? Math.min(1, frac) : 0;
      const key = `${w.toFixed(3)}|${text}|${noteText}|${title}`;
      if (last.key === key) return;
      last.key = key;
      fill.style.width = `${(w * 100).toFixed(1)}%`;
      fill.className = `fill${Number.isFinite(frac) ? level(frac, warn, crit) : ''}`;
      gauge.classList.toggle('none', !Number.isFinite(frac));
      val.textContent = text;
      note.textContent = noteText;
      td.title = title;
    },
  };
}

