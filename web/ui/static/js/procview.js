// procview.js: the Processes tab. A tree (by PPID) or a flat table of one
// snapshot, virtualised: only the rows in view (plus a margin) exist in the
// DOM, recycled as the list scrolls, so 5,000 or 100,000 processes cost the
// same to draw. The list itself is computed by tree.js.
//
// Expanded state is keyed by pid + start time and kept per host in
// localStorage, so it survives a refresh, a new snapshot and a reload.

import { h, num, bytes, shortStart, localTime } from './util.js';
import {
  buildModel, nextModel, sortSiblings, search, flatten, flatList, highlightParts, depthOf, procKey,
  SORTS, ROOT_CYCLE, ROOT_MISSING_PARENT, ROOT_SELF_PARENT, subtreeTotals, hotPaths, ioValue, groupedModel, GROUP_BY,
} from './tree.js';
import { level, ramOf } from './gauge.js';
import { sameProcess } from './events.js';

const ROW_H = 24; // px; must match --row-h in app.css
const OVERSCAN = 8; // rows drawn above and below the viewport
const MAX_INDENT_LEVELS = 32; // deeper levels stop indenting (the depth is in the title)
const MAX_OVERRIDES = 20000; // bound on stored expand/collapse choices per host
const CMD_PREVIEW = 300; // characters of a command line shown in a row
const QUIET_MS = 300; // a gesture in the list is over after this long without input

// Columns: id, header, sort key, class. The first is the name (tree) column.
const COLUMNS = [
  ['name', 'Name', 'name', 'c-name'],
  ['pid', 'PID', 'pid', 'c-num c-pid'],
  ['ppid', 'PPID', 'ppid', 'c-num c-ppid'],
  ['user', 'User', 'user', 'c-user'],
  ['cpu', 'CPU%', 'cpu', 'c-num c-cpu c-gauge', 'CPU % of one core (100 = one core busy; Σ: the whole branch of a collapsed row)'],
  ['mem', 'Mem MiB', 'mem', 'c-num c-mem c-gauge', 'Resident memory in MiB (Σ: the whole branch of a collapsed row)'],
  ['ram', '%RAM', 'ram', 'c-num c-ram', 'Resident memory as % of the host\'s RAM'],
  ['read', 'Read/s', 'read', 'c-num c-io c-read', 'Storage reads per second since the previous snapshot (— : not sent; Σ: the whole branch of a collapsed row)'],
  ['write', 'Write/s', 'write', 'c-num c-io c-write', 'Storage writes per second since the previous snapshot (— : not sent; Σ: the whole branch of a collapsed row)'],
  ['threads', 'Thr', 'threads', 'c-num c-threads'],
  ['status', 'Status', 'status', 'c-status'],
  ['start', 'Started', 'start', 'c-start'],
];

const HOT_TOP = 3; // the paths to this many top CPU and memory processes open by default

const REASONS = {
  [ROOT_CYCLE]: ['cycle', 'its PPID chain loops back to it; shown as a root'],
  [ROOT_SELF_PARENT]: ['self-parent', 'its PPID is its own PID; shown as a root'],
  [ROOT_MISSING_PARENT]: ['no parent', 'its parent is not in this snapshot; shown as a root'],
};

const lvlClass = (l) => (l ? ` ${l}` : '');

// setText and setTitle write only a changed value: writing the same text
// again still replaces the text node, and the browser lays out and paints
// the row again for nothing. The value written is kept on the element. A
// changed value goes into the element's one text node (its data), which
// the browser lays out again in place; textContent would remove the node
// and insert a new one, which costs a style recalc and new layout objects
// (a live snapshot changes ~150 cells).
function setText(el, s) {
  if (el._t === s) return;
  el._t = s;
  const t = el.firstChild;
  if (t !== null && t === el.lastChild && t.nodeType === Node.TEXT_NODE) t.data = s;
  else el.replaceChildren(document.createTextNode(s));
}

function setTitle(el, s) {
  if (el._ti !== s) el.title = (el._ti = s);
}

/** rate formats bytes per second in the UI's binary units; absent is a dash, never 0. */
export function rate(v) {
  return v === undefined || v === null || v < 0 ? '—' : bytes(v);
}

let measured = 0;
const MAX_MEASURES = 1000; // a live page measures every snapshot: keep the timeline bounded

function measure(name, start) {
  try {
    if (++measured % MAX_MEASURES === 0) performance.clearMeasures();
    performance.measure(name, { start, end: performance.now() });
  } catch {
    // very old browsers lack the options form; the timing is only a diagnostic
  }
}

export class ProcView {
  /**
   * @param els {grid, head, viewport, spacer, empty, detail, matchCount}
   * @param cb {onSort(key, desc), onStatus(text)}
   */
  constructor(els, cb) {
    this.els = els;
    this.cb = cb;
    this.model = buildModel([]);
    this.host = '';
    this.query = '';
    this.found = null;
    this.view = 'tree';
    this.groupBy = 'none'; // or a key of GROUP_BY: unit, container
    this.sortKey = 'cpu';
    this.sortDesc = undefined; // undefined: the key's natural direction
    this.exp = { mode: 'default', ov: new Map() };
    this.sexp = { mode: 'auto', ov: new Map() };
    this.rows = { idx: new Int32Array(0), depth: new Int32Array(0), count: 0 };
    this.rowOf = new Int32Array(0);
    this.pool = [];
    this.version = 0; // bumped when every drawn row must be checked again
    this.dataVersion = 0; // bumped with each snapshot
    // Geometry is cached (ResizeObserver, scroll events) so that drawing
    // never reads layout: a read after DOM writes forces a synchronous
    // layout, and two of those per keystroke cost more than the search.
    this.vpH = 0;
    this.scrollTop = 0;
    this.selKey = null;
    this.detailKey = null;
    this.detailProc = null;
    this.loaded = false;
    this.saveTimer = 0;
    this.rafPending = false;
    this.touchedAt = -Infinity; // last scroll, click or key in the list (performance.now())
    this.buildHeader();
    this.bindEvents();
  }

  // ---- public API used by main.js ----

  /** setHost switches host: its own expanded state, no data until setData. */
  setHost(host) {
    if (host === this.host) return;
    this.flushSave();
    this.host = host;
    this.marks = null; // "what changed" marks belong to the host left
    this.started = null;
    this.baseProcs = null;
    this.exp = this.loadExpansion(host);
    this.selKey = null;
    this.closeDetail();
    this.model = buildModel([]);
    this.loaded = false;
    this.recompute();
  }

  /**
   * setData shows a new snapshot, keeping expansion, selection and scroll.
   * meta (optional) is the snapshot's metadata: its system memory total
   * scales the %RAM column when processes do not send memory_percent.
   */
  setData(procs, meta) {
    const t0 = performance.now();
    if (meta !== undefined) this.meta = meta;
    this.baseProcs = procs;
    this.model = this.build(this.withGhosts(procs));
    this.ramMiB = ramOf(procs, this.meta);
    this.dataVersion++;
    this.prepare();
    this.found = search(this.model, this.query);
    this.pruneOverrides();
    this.loaded = true;
    this.recompute();
    measure('render-tree', t0);
    if (this.detailKey) this.renderDetail();
    if (meta !== undefined && this.onShown) this.onShown(meta);
  }

  // build makes the model shown: the process tree, or the processes
  // grouped by unit or container (tree.js groupedModel).
  build(procs) {
    if (this.groupBy === 'none') return nextModel(this.model, procs);
    return groupedModel(procs, this.groupBy, this.view === 'flat');
  }

  /** isTree: rows nest (the tree view, or any view grouped). */
  isTree() {
    return this.view === 'tree' || this.groupBy !== 'none';
  }

  /** setGroupBy groups the processes by unit or container, or not ('none'). */
  setGroupBy(g) {
    g = GROUP_BY[g] ? g : 'none';
    if (g === this.groupBy) return;
    const t0 = performance.now();
    this.groupBy = g;
    this.applyLayout();
    this.rebuild();
    measure('group-by', t0);
  }

  // rebuild makes the model again from the snapshot in hand (grouping or
  // the view changed what nests under what).
  rebuild() {
    if (this.baseProcs) this.setData(this.baseProcs);
    else this.recompute();
  }

  applyLayout() {
    const tree = this.isTree();
    this.els.grid.classList.toggle('is-flat', !tree);
    this.els.grid.classList.toggle('is-grouped', this.groupBy !== 'none');
    this.els.grid.setAttribute('role', tree ? 'treegrid' : 'grid');
  }

  setQuery(q) {
    q = String(q ?? '');
    if (q === this.query) return;
    const t0 = performance.now();
    this.query = q;
    this.sexp = { mode: 'auto', ov: new Map() };
    this.found = search(this.model, q);
    this.recompute(false);
    // Select the first match and keep it in view, so typing shows results
    // without scrolling; then draw once.
    if (this.found && this.found.count > 0) {
      for (let r = 0; r < this.rows.count; r++) {
        if (this.found.match[this.rows.idx[r]]) {
          this.selKey = this.model.keys[this.rows.idx[r]];
          this.reveal(r);
          break;
        }
      }
    }
    this.render();
    measure('search', t0);
  }

  setView(v) {
    v = v === 'flat' ? 'flat' : 'tree';
    if (v === this.view) return;
    this.view = v;
    this.applyLayout();
    if (this.groupBy !== 'none') {
      // Grouped, flat and tree differ in what nests: build again.
      this.rebuild();
      return;
    }
    this.prepare();
    this.recompute(false);
    // The selected process stays in view: in the tree its ancestors open.
    const i = this.selKey === null ? undefined : this.model.keyIndex.get(this.selKey);
    if (i !== undefined && this.rowOf[i] < 0 && v === 'tree' && !this.found) this.openTo(i);
    this.revealSelection(true);
  }

  setSort(key, desc) {
    if (!SORTS[key]) key = 'cpu';
    const t0 = performance.now();
    // Keep what the eye is on where it is: the selected row when it is on
    // screen, else the first row in view, at the same height.
    const anchor = this.anchor();
    this.sortKey = key;
    this.sortDesc = desc;
    this.prepare();
    this.updateHeader();
    this.recompute(false);
    this.restoreAnchor(anchor);
    this.render();
    measure('sort', t0);
  }

  // prepare sorts the model for the current view and finds the hot paths.
  prepare() {
    const tree = this.isTree();
    sortSiblings(this.model, this.sortKey, this.sortDesc, tree);
    subtreeTotals(this.model);
    this.hot = tree ? hotPaths(this.model, HOT_TOP) : null;
  }

  anchor() {
    const height = this.vpH || 600;
    const sel = this.selectedRow();
    if (sel >= 0 && sel * ROW_H + ROW_H > this.scrollTop && sel * ROW_H < this.scrollTop + height) {
      return { key: this.selKey, off: sel * ROW_H - this.scrollTop };
    }
    const first = Math.min(this.rows.count - 1, Math.floor(this.scrollTop / ROW_H));
    if (first < 0 || this.scrollTop === 0) return null;
    return { key: this.keyOfRow(first), off: first * ROW_H - this.scrollTop };
  }

  restoreAnchor(a) {
    if (!a) return;
    const r = this.rowOfKey(a.key);
    if (r < 0) return;
    const top = Math.max(0, r * ROW_H - a.off);
    this.scrollTop = top;
    this.els.viewport.scrollTop = top;
  }

  /**
   * setRestarts marks processes that restarted lately (events.js): Map
   * pid -> the restarted event; a badge shows when it is the same process
   * (pid and start time: events.js sameProcess).
   */
  setRestarts(map) {
    if ((map && map.size ? map : null) === this.restarts) return; // the cached answer again: nothing to draw
    this.restarts = map && map.size ? map : null;
    this.dataVersion++; // every label is drawn again
    this.version++;
    this.render();
  }

  /** setMarks marks started processes and adds exited ones as ghost rows. */
  setMarks(diff) {
    this.marks = diff || null;
    this.started = diff && Array.isArray(diff.started) ? new Set(diff.started.map(procKey)) : null;
    if (this.baseProcs) this.setData(this.baseProcs);
    else this.recompute();
  }

  // withGhosts appends the exited processes of the shown "what changed" to
  // the snapshot (after it, so a live process wins a reused pid).
  withGhosts(procs) {
    const d = this.marks;
    this.ghosts = 0;
    if (!d || !Array.isArray(d.exited) || d.exited.length === 0) return procs;
    const live = new Set();
    for (const p of procs) live.add(procKey(p));
    const out = procs.slice();
    for (const p of d.exited) if (!live.has(procKey(p))) out.push({ ...p, _exited: true });
    this.ghosts = out.length - procs.length;
    return out;
  }

  expandAll() {
    const t0 = performance.now();
    if (this.found) this.sexp = { mode: 'all', ov: new Map() };
    else this.exp = { mode: 'all', ov: new Map() };
    this.changedExpansion();
    measure('expand-all', t0);
  }

  collapseAll() {
    const t0 = performance.now();
    if (this.found) this.sexp = { mode: 'none', ov: new Map() };
    else this.exp = { mode: 'none', ov: new Map() };
    this.changedExpansion();
    measure('collapse-all', t0);
  }

  /** focus puts keyboard focus on the list (after '/' search, Escape...). */
  focus() {
    this.els.grid.focus({ preventScroll: true });
  }

  /**
   * busyFor says how long (ms) until the user's gesture in the list (a
   * scroll, a click, a key) is over: 0 when none is going on. Live updates
   * wait for it (main.js liveRefresh).
   */
  busyFor(now = performance.now()) {
    return Math.max(0, this.touchedAt + QUIET_MS - now);
  }

  /** resized redraws after the layout changed (tab shown, window resized). */
  resized() {
    this.vpH = this.els.viewport.clientHeight;
    this.version++;
    this.render();
  }

  // ---- expansion ----

  isOpen(i, d) {
    if (i < 0) {
      // A group row: closed until opened, or when a culprit is inside.
      const g = this.model.groups[-i - 1];
      const ov = this.exp.ov.size ? this.exp.ov.get(g.key) : undefined;
      if (ov !== undefined) return ov;
      if (this.exp.mode === 'all') return true;
      if (this.exp.mode === 'none') return false;
      return !!this.hot && this.hot.group[-i - 1] === 1;
    }
    if (this.found) {
      // No string key lookup while nothing was toggled by hand: this runs
      // for every visible process on every keystroke.
      const ov = this.sexp.ov.size ? this.sexp.ov.get(this.model.keys[i]) : undefined;
      if (ov !== undefined) return ov;
      if (this.sexp.mode === 'all') return true;
      if (this.sexp.mode === 'none') return false;
      return this.found.anc[i] === 1;
    }
    const ov = this.exp.ov.size ? this.exp.ov.get(this.model.keys[i]) : undefined;
    if (ov !== undefined) return ov;
    if (this.exp.mode === 'all') return true;
    if (this.exp.mode === 'none') return false;
    // A unit or container group is folded (its sums show) unless a top
    // consumer is inside.
    if (this.model.groupedBy && this.model.procs[i]._group) return !!this.hot && this.hot.proc[i] === 1;
    // By default the roots are open (one level shows at once) and so is
    // the way to the top consumers.
    return d === 0 || (!!this.hot && this.hot.proc[i] === 1);
  }

  hasKids(i) {
    return i < 0 || this.model.children[i].length > 0;
  }

  keyOf(i) {
    return i < 0 ? this.model.groups[-i - 1].key : this.model.keys[i];
  }

  keyOfRow(r) {
    return this.keyOf(this.rows.idx[r]);
  }

  // openTo opens the ancestors (and the group) of process i.
  openTo(i) {
    const m = this.model;
    for (let c = i, g = 0; c !== -1 && g <= m.n; c = m.parent[c], g++) {
      if (c !== i) this.exp.ov.set(m.keys[c], true);
      if (m.groupOf && m.groupOf[c] !== -1) this.exp.ov.set(m.groups[m.groupOf[c]].key, true);
    }
    this.recompute(false);
    this.scheduleSave();
  }

  toggle(i, d) {
    const t0 = performance.now();
    const st = this.found ? this.sexp : this.exp;
    st.ov.set(this.keyOf(i), !this.isOpen(i, d));
    this.changedExpansion();
    measure('toggle', t0);
  }

  changedExpansion() {
    this.recompute(false);
    this.revealSelection();
    if (!this.found) this.scheduleSave();
  }

  storageKey(host) {
    return `procscope.expanded.${host}`;
  }

  loadExpansion(host) {
    try {
      const raw = localStorage.getItem(this.storageKey(host));
      if (raw) {
        const v = JSON.parse(raw);
        const mode = ['default', 'all', 'none'].includes(v.mode) ? v.mode : 'default';
        const ov = new Map();
        if (Array.isArray(v.ov)) {
          for (const e of v.ov.slice(0, MAX_OVERRIDES)) {
            if (Array.isArray(e) && typeof e[0] === 'string') ov.set(e[0], e[1] === true);
          }
        }
        return { mode, ov };
      }
    } catch {
      // storage disabled or corrupt: start fresh
    }
    return { mode: 'default', ov: new Map() };
  }

  scheduleSave() {
    clearTimeout(this.saveTimer);
    this.saveTimer = setTimeout(() => this.flushSave(), 150);
  }

  flushSave() {
    clearTimeout(this.saveTimer);
    this.saveTimer = 0;
    if (!this.host) return;
    try {
      const ov = [...this.exp.ov].slice(-MAX_OVERRIDES);
      localStorage.setItem(this.storageKey(this.host), JSON.stringify({ mode: this.exp.mode, ov }));
    } catch {
      // quota or privacy mode: expansion just is not remembered
    }
  }

  // Choices about processes that exited are dropped once they pile up, so
  // the stored state stays bounded on hosts with short-lived processes.
  pruneOverrides() {
    const ov = this.exp.ov;
    if (ov.size <= Math.max(1000, this.model.n * 2)) return;
    for (const k of ov.keys()) if (!this.model.keyIndex.has(k)) ov.delete(k);
    this.scheduleSave();
  }

  // ---- list computation ----

  recompute(draw = true) {
    const m = this.model;
    if (!this.isTree()) this.rows = flatList(m, this.sortKey, this.sortDesc, this.found);
    else this.rows = flatten(m, (i, d) => this.isOpen(i, d), this.found);
    if (this.noGroupData()) this.rows = { idx: new Int32Array(0), depth: new Int32Array(0), count: 0 };
    const rowOf = new Int32Array(m.n).fill(-1);
    const groupRow = new Int32Array(m.groups ? m.groups.length : 0).fill(-1);
    for (let r = 0; r < this.rows.count; r++) {
      const i = this.rows.idx[r];
      if (i >= 0) rowOf[i] = r;
      else groupRow[-i - 1] = r;
    }
    this.rowOf = rowOf;
    this.groupRow = groupRow;
    if (this.spacerRows !== this.rows.count) {
      this.spacerRows = this.rows.count;
      this.els.spacer.style.height = `${this.rows.count * ROW_H}px`;
      // Only the rows in view exist: aria-rowcount tells assistive technology
      // (and the browser tests) how many the list has in all, header included.
      this.els.grid.setAttribute('aria-rowcount', String(this.rows.count + 1));
    }
    this.version++;
    this.updateCount();
    this.updateEmpty();
    if (draw) this.render();
  }

  // noGroupData: grouped by a field no process of the snapshot has.
  noGroupData() {
    return this.loaded && !!this.model.groupedBy && this.model.n > 0 && !this.model.hasField;
  }

  updateCount() {
    const el = this.els.matchCount;
    const n = (this.model.n - (this.ghosts || 0) - (this.model.nGroups || 0)).toLocaleString('en-US');
    let text;
    if (!this.loaded) text = '';
    else if (this.found) {
      const c = this.found.count;
      text = c === 0 ? 'no matches' : `${c.toLocaleString('en-US')} ${c === 1 ? 'match' : 'matches'} of ${n}`;
    } else if (this.model.groupedBy && this.model.hasField) {
      const g = this.model.nGroups;
      text = `${n} processes in ${g.toLocaleString('en-US')} ${this.model.groupedBy === 'unit' ? 'unit' : 'container'} ${g === 1 ? 'group' : 'groups'}`;
    } else text = `${n} processes`;
    setText(el, text);
    el.classList.toggle('none', !!this.found && this.found.count === 0);
  }

  updateEmpty() {
    const e = this.els.empty;
    let msg = '';
    if (!this.host) msg = 'Select a host on the left.';
    else if (!this.loaded) msg = 'Loading processes…';
    else if (this.model.n === 0) msg = 'This snapshot has no processes.';
    else if (this.noGroupData() && this.groupBy === 'container' && this.model.hasUnit) {
      msg = 'No process of this snapshot runs in a container: this exporter sends cgroup data (units are known), and none names a container. Choose Group: unit or none to see the processes.';
    } else if (this.noGroupData()) {
      msg = `No process of this snapshot has a ${this.groupBy === 'unit' ? 'unit' : 'container id'} to group by: this exporter sends no cgroup data (the original agent, or --collect.cgroup turned off). Choose Group: none to see the processes.`;
    } else if (this.found && this.found.count === 0) msg = 'No process matches the search.';
    setText(e, msg);
    if (e.hidden !== (msg === '')) e.hidden = msg === '';
  }

  // ---- rendering ----

  buildHeader() {
    const head = this.els.head;
    head.replaceChildren();
    this.headCells = {};
    for (const [, label, key, cls, tip] of COLUMNS) {
      const cell = h('span', { class: `c ${cls}`, role: 'columnheader', 'data-sort': key, title: `${tip ? `${tip}. ` : ''}Sort by ${label}` }, label);
      this.headCells[key] = cell;
      head.appendChild(cell);
    }
    this.updateHeader();
  }

  updateHeader() {
    const desc = this.sortDesc === undefined ? SORTS[this.sortKey].desc : this.sortDesc;
    for (const [key, cell] of Object.entries(this.headCells)) {
      const on = key === this.sortKey;
      cell.classList.toggle('sorted', on);
      cell.classList.toggle('desc', on && desc);
      if (on) cell.setAttribute('aria-sort', desc ? 'descending' : 'ascending');
      else cell.removeAttribute('aria-sort');
    }
  }

  scheduleRender() {
    if (this.rafPending) return;
    this.rafPending = true;
    requestAnimationFrame(() => {
      this.rafPending = false;
      this.render();
    });
  }

  makeRow() {
    // tabindex -1: focus stays on the grid (aria-activedescendant), but
    // the scrolling list then holds focusable rows, which is what axe's
    // scrollable-region-focusable rule asks of a scroll container.
    const row = h('div', { class: 'row', role: 'row', tabindex: '-1' });
    const cells = {};
    for (const [id, , , cls] of COLUMNS) {
      const c = h('span', { class: `c ${cls}`, role: 'gridcell' });
      cells[id] = c;
      row.appendChild(c);
    }
    const tog = h('span', { class: 'tog', 'aria-hidden': 'true' });
    const label = h('span', { class: 'label' });
    cells.name.append(tog, label);
    // Gauge cells: a bar under the number, the branch total (Σ) of a
    // collapsed row, then the process's own value.
    for (const id of ['cpu', 'mem']) {
      const bar = h('span', { class: 'bar', 'aria-hidden': 'true' });
      const sum = h('span', { class: 'sum' });
      const v = h('span', { class: 'v' });
      cells[id].append(bar, sum, v);
      cells[id]._bar = bar;
      cells[id]._sum = sum;
      cells[id]._v = v;
    }
    row._cells = cells;
    row._tog = tog;
    row._label = label;
    row._k = -1;
    row._v = -1;
    row._slot = this.pool.length;
    this.els.viewport.appendChild(row);
    return row;
  }

  render() {
    if (this.vpH === 0) this.vpH = this.els.viewport.clientHeight; // before the first resize report
    const height = this.vpH || 600;
    const count = this.rows.count;
    // The browser clamps scrollTop when the list shrinks; clamp the cached
    // value the same way instead of reading it back.
    const top = Math.max(0, Math.min(this.scrollTop, count * ROW_H - height));
    this.scrollTop = top;
    const first = Math.max(0, Math.floor(top / ROW_H) - OVERSCAN);
    const last = Math.min(count, Math.ceil((top + height) / ROW_H) + OVERSCAN);
    const need = last - first;
    if (need > this.pool.length) {
      while (this.pool.length < need) this.pool.push(this.makeRow());
    }
    // A process keeps its row while it stays in view: when a new snapshot
    // reorders the list (sorted by CPU, it does), a row that moved gets a
    // new position and nothing else, instead of another process's name,
    // numbers and label. Rows of processes gone from view take the new ones.
    const len = this.pool.length;
    const used = new Uint8Array(len);
    const at = new Array(last - first);
    const keys = new Array(last - first);
    const next = new Map();
    const prev = this.rowByKey || next;
    for (let r = first; r < last; r++) {
      const key = this.keyOfRow(r);
      keys[r - first] = key;
      const row = prev.get(key);
      if (row !== undefined && !used[row._slot] && !next.has(key)) {
        used[row._slot] = 1;
        at[r - first] = row;
        next.set(key, row);
      }
    }
    let free = 0;
    for (let r = first; r < last; r++) {
      if (at[r - first] !== undefined) continue;
      while (used[free]) free++;
      used[free] = 1;
      at[r - first] = this.pool[free];
      if (!next.has(keys[r - first])) next.set(keys[r - first], this.pool[free]);
    }
    this.rowByKey = next;
    const selRow = this.selKey !== null ? this.rowOfKey(this.selKey) : -1;
    for (let r = first; r < last; r++) {
      const row = at[r - first];
      if (row._k === r && row._v === this.version) continue;
      this.fillRow(row, r, r === selRow);
    }
    for (let s = 0; s < len; s++) {
      const row = this.pool[s];
      if (!used[s] && !row.hidden) {
        row.hidden = true;
        row._k = -1;
        // A hidden row shows nothing: no selection or marks left on it
        // for a selector (or the next process it shows) to pick up.
        if (row._sel || row._mark || row._match || row._dim) {
          row.classList.remove('sel', 'started', 'exited', 'match', 'dim');
          row.setAttribute('aria-selected', 'false');
          row._sel = false;
          row._mark = '';
          row._match = false;
          row._dim = false;
        }
      }
    }
    const active = selRow >= first && selRow < last ? `row-${selRow}` : null;
    if (this.activeId !== active) {
      this.activeId = active;
      if (active) this.els.grid.setAttribute('aria-activedescendant', active);
      else this.els.grid.removeAttribute('aria-activedescendant');
    }
  }

  // fillRow brings one pooled row up to date, touching only what changed:
  // every DOM write costs style, layout and paint work in the next frame,
  // and a live snapshot changes a few numbers of a few rows, not the rows.
  fillRow(row, r, selected) {
    const m = this.model;
    const i = this.rows.idx[r];
    const d = this.rows.depth[r];
    if (i < 0) {
      this.fillGroup(row, r, selected, i, d);
      return;
    }
    const p = m.procs[i];
    if (p._group) {
      this.fillUnitGroup(row, r, selected, i, d, p);
      return;
    }
    const tree = this.isTree();
    this.place(row, r, selected);
    if (row._grp) {
      row._grp = false;
      row.classList.remove('grp', 'ugrp');
    }
    row._i = i;
    const match = !!this.found && this.found.match[i] === 1;
    const dim = !!this.found && !match;
    if (row._match !== match) row.classList.toggle('match', (row._match = match));
    if (row._dim !== dim) row.classList.toggle('dim', (row._dim = dim));
    const hasKids = tree && m.children[i].length > 0;
    const open = hasKids && this.isOpen(i, d);
    this.setTreeState(row, tree ? String(d + 1) : null, hasKids ? (open ? 'true' : 'false') : null);
    this.setIndent(row, tree ? 4 + Math.min(d, MAX_INDENT_LEVELS) * 14 : 4);
    const q = this.found ? this.found.q : '';
    const reason = tree && m.parent[i] === -1 ? REASONS[m.rootReason[i]] : null;
    const mark = p._exited ? 'exited' : this.started && this.started.has(m.keys[i]) ? 'new' : '';
    if (row._mark !== mark) {
      row._mark = mark;
      row.classList.toggle('started', mark === 'new');
      row.classList.toggle('exited', mark === 'exited');
    }
    // The label is drawn again only when something it shows changed.
    const deep = tree && d > MAX_INDENT_LEVELS;
    const rs = this.restarts ? this.restarts.get(p.pid) : undefined;
    const lsig = `p\u0001${p.name}\u0001${p.cmdline}\u0001${q}\u0001${reason ? reason[0] : ''}\u0001${mark}\u0001${deep ? d : ''}\u0001${rs ? `${sameProcess(rs, p)}|${rs.at}|${rs.prev_pid}` : ''}`;
    if (row._lsig !== lsig) {
      row._lsig = lsig;
      row._deep = deep;
      this.fillLabel(row, p, q, reason, d, mark);
    }
    // Σ: a collapsed branch shows what it holds beside the process's own.
    const tot = m.tot;
    const folded = hasKids && !open;
    const ownCpu = Number(p.cpu_percent) || 0;
    const ownMem = Number(p.memory_mb) || 0;
    this.fillGauges(row, ownCpu, ownMem, folded ? tot.cpu[i] : null, folded ? tot.mem[i] : null, p.memory_percent, !!p._exited, folded ? tot.size[i] : 0);
    this.fillIO(row, p._exited ? -1 : ioValue(p, 'read_bytes_per_sec'), p._exited ? -1 : ioValue(p, 'write_bytes_per_sec'),
      folded ? tot.rd[i] : null, folded ? tot.wr[i] : null);
    const c = row._cells;
    setText(c.pid, String(p.pid));
    setText(c.ppid, String(p._ppid ?? p.ppid));
    setText(c.user, p.username ?? '');
    setText(c.threads, p.num_threads ? String(p.num_threads) : '');
    setText(c.status, p.status ?? '');
    if (row._ct !== p.create_time || row._ctAt !== this.dataVersion) {
      // The age ("45s", "3d 4h") moves on: worked out once per snapshot.
      row._ct = p.create_time;
      row._ctAt = this.dataVersion;
      setText(c.start, shortStart(p.create_time));
      setTitle(c.start, p.create_time ? localTime(p.create_time) : '');
    }
  }

  // place puts a pooled row at list position r, selected or not.
  place(row, r, selected) {
    if (row._k !== r) {
      row.id = `row-${r}`;
      row.setAttribute('aria-rowindex', String(r + 2));
      row.style.transform = `translateY(${r * ROW_H}px)`;
    }
    row._k = r;
    row._v = this.version;
    if (row.hidden) row.hidden = false;
    if (row._sel !== selected) {
      row._sel = selected;
      row.classList.toggle('sel', selected);
      row.setAttribute('aria-selected', selected ? 'true' : 'false');
    }
  }

  // setTreeState writes aria-level, aria-expanded and the toggle (null:
  // none, as in the flat list and on leaves).
  setTreeState(row, level, expanded) {
    if (row._level !== level) {
      row._level = level;
      if (level === null) row.removeAttribute('aria-level');
      else row.setAttribute('aria-level', level);
    }
    if (row._expanded !== expanded) {
      row._expanded = expanded;
      if (expanded === null) row.removeAttribute('aria-expanded');
      else row.setAttribute('aria-expanded', expanded);
      setText(row._tog, expanded === null ? '' : expanded === 'true' ? '▼' : '▶');
      row._tog.classList.toggle('leaf', expanded === null);
    }
  }

  setIndent(row, indent) {
    if (row._indent !== indent) {
      row._indent = indent;
      row._cells.name.style.paddingLeft = `${indent}px`;
    }
  }

  // placeGroup draws what the two kinds of group row share: place, no
  // search or "what changed" marks, always a toggle; it returns whether
  // the group is open. unit: a unit or container group, else a group of
  // repeated names.
  placeGroup(row, r, selected, i, d, unit) {
    this.place(row, r, selected);
    if (row._match || row._dim || row._mark) {
      for (const cls of ['match', 'dim', 'started', 'exited']) row.classList.remove(cls);
      row._match = false;
      row._dim = false;
      row._mark = '';
    }
    const kind = unit ? 'ugrp' : 'grp';
    if (row._grp !== kind) {
      row._grp = kind;
      row.classList.add('grp');
      row.classList.toggle('ugrp', unit);
    }
    row._i = -1;
    row._ct = undefined;
    const open = this.isOpen(i, d);
    this.setTreeState(row, String(d + 1), open ? 'true' : 'false');
    this.setIndent(row, unit ? 4 : 4 + Math.min(d, MAX_INDENT_LEVELS) * 14);
    const c = row._cells;
    for (const k of ['pid', 'user', 'threads', 'status', 'start']) setText(c[k], '');
    setTitle(c.start, '');
    return open;
  }

  // fillGauges writes the CPU, memory and %RAM cells: number, Σ of a
  // folded branch, a bar and a warning/critical level (gauge.js), only
  // where something changed.
  fillGauges(row, cpu, mem, sumCpu, sumMem, memPct, exited, size) {
    const c = row._cells;
    const showCpu = sumCpu !== null && Math.abs(sumCpu - cpu) >= 0.05;
    const showMem = sumMem !== null && Math.abs(sumMem - mem) >= 0.05;
    const effCpu = showCpu ? sumCpu : cpu;
    const effMem = showMem ? sumMem : mem;
    const pct = !showMem && Number.isFinite(Number(memPct)) && memPct !== undefined ? Number(memPct) : this.ramMiB > 0 ? (effMem / this.ramMiB) * 100 : NaN;
    const sig = `${cpu}|${mem}|${showCpu ? sumCpu : ''}|${showMem ? sumMem : ''}|${pct}|${exited}|${size}`;
    if (row._gsig === sig) return;
    row._gsig = sig;
    const branch = size > 1 ? `the ${size - 1} processes below it and itself` : '';
    this.gauge(c.cpu, num(cpu, 1), showCpu ? `Σ${num(sumCpu, 1)}` : '', exited ? 0 : effCpu / 100, exited ? '' : level('cpu', effCpu),
      showCpu ? `${num(sumCpu, 1)} % of one core: ${branch}` : '');
    this.gauge(c.mem, num(mem, 1), showMem ? `Σ${num(sumMem, 1)}` : '', exited || !Number.isFinite(pct) ? 0 : pct / 100, exited ? '' : level('ram', pct),
      showMem ? `${num(sumMem, 1)} MiB: ${branch}` : '');
    setText(c.ram, Number.isFinite(pct) ? num(pct, pct >= 10 ? 0 : 1) : '');
    const cls = `c c-num c-ram${exited ? '' : lvlClass(level('ram', pct))}`;
    if (c.ram._cls !== cls) c.ram.className = (c.ram._cls = cls);
  }

  // fillIO writes the Read/s and Write/s cells: the own rate and, on a
  // folded branch, its total (Σ) when that differs.
  fillIO(row, rd, wr, sumRd, sumWr) {
    const sig = `${rd}|${wr}|${sumRd}|${sumWr}`;
    if (row._iosig === sig) return;
    row._iosig = sig;
    const one = (cell, own, sum) => {
      const showSum = sum !== null && sum >= 0 && sum !== own;
      setText(cell, showSum ? `Σ${rate(sum)}` : rate(own));
      cell.classList.toggle('has-sum', showSum);
      cell.classList.toggle('absent', !showSum && own < 0);
      setTitle(cell, showSum ? `${rate(sum)}/s: the whole branch (itself ${rate(own)}/s)` : own < 0 ? 'not sent by the exporter' : '');
    };
    one(row._cells.read, rd, sumRd);
    one(row._cells.write, wr, sumWr);
  }

  gauge(cell, own, sum, frac, lvl, title) {
    setText(cell._v, own);
    setText(cell._sum, sum);
    // Under 5 % a bar would be a speck: none.
    const f = frac >= 0.05 ? Math.min(1, frac) : 0;
    if (cell._f !== f) {
      cell._f = f;
      cell._bar.style.transform = `scaleX(${f})`;
    }
    if (cell._lvl !== lvl) {
      cell._lvl = lvl;
      cell.classList.toggle('warn', lvl === 'warn');
      cell.classList.toggle('crit', lvl === 'crit');
    }
    if (cell._hasSum !== (sum !== '')) cell.classList.toggle('has-sum', (cell._hasSum = sum !== ''));
    setTitle(cell, title);
  }

  // fillGroup draws a group row: "containerd-shim ×120" with the sums.
  fillGroup(row, r, selected, i, d) {
    const g = this.model.groups[-i - 1];
    this.placeGroup(row, r, selected, i, d, false);
    const lsig = `g\u0001${g.name}\u0001${g.members.length}`;
    if (row._lsig !== lsig) {
      row._lsig = lsig;
      row._plain = null;
      row._label.replaceChildren(h('span', { class: 'nm' }, g.name === '' ? '(no name)' : g.name), h('span', { class: 'count' }, `×${g.members.length}`));
      row._label.title = `${g.name} ×${g.members.length}: ${g.members.length} processes with this name under one parent, folded until opened`;
    }
    setText(row._cells.ppid, g.parent === -1 || this.model.procs[g.parent]._group ? '' : String(this.model.procs[g.parent].pid));
    this.fillGauges(row, g.ownCpu, g.ownMem, g.cpu, g.mem, undefined, false, g.size + 1);
    this.fillIO(row, g.ownRd, g.ownWr, g.rd, g.wr);
  }

  // fillUnitGroup draws the row of a unit or container group: its name,
  // how many processes it holds, and their summed CPU, memory and I/O.
  fillUnitGroup(row, r, selected, i, d, p) {
    const m = this.model;
    this.placeGroup(row, r, selected, i, d, true);
    const tot = subtreeTotals(m);
    const count = tot.size[i] - 1;
    const what = p._group === 'unit' ? 'unit' : 'container';
    const q = this.found ? this.found.q : '';
    // Drawn again only when it changed: a label rebuilt between the two
    // clicks of a double click loses the double click.
    const lsig = `u\u0001${p.name}\u0001${count}\u0001${q}\u0001${p._value}\u0001${what}`;
    if (row._lsig !== lsig) {
      row._lsig = lsig;
      row._plain = null;
      const nameKids = [];
      for (const [text, hit] of highlightParts(p.name, q)) nameKids.push(hit ? h('mark', null, text) : text);
      row._label.replaceChildren(h('span', { class: 'nm' }, nameKids), h('span', { class: 'count' }, `×${count}`));
      row._label.title = p._value === ''
        ? `${count} processes without a ${what} (kernel threads, processes outside any ${what}, or not sent)`
        : `${what} ${p._value}: ${count} processes; CPU, memory and I/O are their sums`;
    }
    setText(row._cells.ppid, '');
    this.fillGauges(row, tot.cpu[i], tot.mem[i], null, null, undefined, false, 0);
    this.fillIO(row, tot.rd[i], tot.wr[i], null, null);
  }

  // fillLabel draws the name (with <mark>s around search hits), a tag saying
  // why a process is a root when that is unusual, a started/exited badge
  // while "what changed" is shown, and the command line.
  fillLabel(row, p, q, reason, d, mark) {
    const rs = this.restarts ? this.restarts.get(p.pid) : undefined;
    const restarted = !!rs && sameProcess(rs, p) && !p._group;
    if (!q && !mark && !reason && !restarted) {
      this.fillPlainLabel(row, p, d);
      return;
    }
    row._plain = null;
    const nameKids = [];
    for (const [text, hit] of highlightParts(p.name, q)) nameKids.push(hit ? h('mark', null, text) : text);
    const kids = [h('span', { class: 'nm' }, nameKids)];
    if (mark === 'new') kids.push(h('span', { class: 'badge badge-new', title: 'started since the moment compared with' }, 'new'));
    if (mark === 'exited') kids.push(h('span', { class: 'badge badge-exited', title: 'exited since the moment compared with: shown from its last snapshot' }, 'exited'));
    if (restarted) {
      kids.push(h('span', { class: 'badge badge-restarted', title: `restarted ${localTime(rs.at)}: replaces pid ${rs.prev_pid}, which exited` }, 'restarted'));
    }
    if (reason) kids.push(h('span', { class: `tag tag-${reason[0].replace(/[^a-z]/g, '')}`, title: `${reason[0]}: ${reason[1]}` }, reason[0]));
    if (p.cmdline) {
      const cmd = p.cmdline.length > CMD_PREVIEW ? `${p.cmdline.slice(0, CMD_PREVIEW)}…` : p.cmdline;
      const cmdKids = [];
      for (const [text, hit] of highlightParts(cmd, q)) cmdKids.push(hit ? h('mark', null, text) : text);
      kids.push(h('span', { class: 'cmd' }, cmdKids));
    }
    row._label.replaceChildren(...kids);
    row._label.title = row._deep ? `depth ${d}` : '';
  }

  // fillPlainLabel draws the usual label, a name and a command line, into
  // the same two spans every time (their text nodes' data): when a row
  // shows another process (a live snapshot re-sorts the list), nothing is
  // removed or inserted.
  fillPlainLabel(row, p, d) {
    let pl = row._plain;
    if (!pl) {
      pl = { nm: h('span', { class: 'nm' }), cmd: h('span', { class: 'cmd' }) };
      row._label.replaceChildren(pl.nm, pl.cmd);
      row._plain = pl;
    }
    setText(pl.nm, String(p.name ?? ''));
    const cmd = p.cmdline ? (p.cmdline.length > CMD_PREVIEW ? `${p.cmdline.slice(0, CMD_PREVIEW)}…` : p.cmdline) : '';
    setText(pl.cmd, cmd);
    if (pl.cmd.hidden !== (cmd === '')) pl.cmd.hidden = cmd === '';
    const title = row._deep ? `depth ${d}` : '';
    if (row._label.title !== title) row._label.title = title;
  }

  // ---- selection and keyboard ----

  rowOfKey(key) {
    const i = this.model.keyIndex.get(key);
    if (i !== undefined) return this.rowOf[i];
    const g = this.model.groupIndex ? this.model.groupIndex.get(key) : undefined;
    return g === undefined || g >= this.groupRow.length ? -1 : this.groupRow[g];
  }

  selectedRow() {
    return this.selKey === null ? -1 : this.rowOfKey(this.selKey);
  }

  select(r, reveal = true) {
    if (r < 0 || r >= this.rows.count) return;
    this.selKey = this.keyOfRow(r);
    this.version++;
    if (reveal) this.reveal(r);
    this.render();
    if (this.detailKey && this.detailKey !== this.selKey) this.openDetail();
  }

  reveal(r) {
    const height = this.vpH || 600;
    let top = this.scrollTop;
    if (r * ROW_H < top) top = r * ROW_H;
    else if ((r + 1) * ROW_H > top + height) top = (r + 1) * ROW_H - height;
    if (top !== this.scrollTop) {
      this.scrollTop = top;
      this.els.viewport.scrollTop = top;
    }
  }

  revealSelection(center = false) {
    const r = this.selectedRow();
    if (r >= 0) {
      const height = this.vpH || 600;
      const onScreen = r * ROW_H >= this.scrollTop && (r + 1) * ROW_H <= this.scrollTop + height;
      if (center && !onScreen) {
        const top = Math.max(0, r * ROW_H - Math.floor(height / 2));
        this.scrollTop = top;
        this.els.viewport.scrollTop = top;
      } else this.reveal(r);
    }
    this.render();
  }

  onKey(e) {
    if (e.altKey || e.ctrlKey || e.metaKey) return;
    const count = this.rows.count;
    if (count === 0) return;
    let r = this.selectedRow();
    const page = Math.max(1, Math.floor((this.vpH || 600) / ROW_H) - 1);
    const tree = this.isTree();
    const i = r >= 0 ? this.rows.idx[r] : -1;
    const d = r >= 0 ? this.rows.depth[r] : 0;
    const hasKids = tree && r >= 0 && this.hasKids(i);
    switch (e.key) {
      case 'ArrowDown':
      case 'j':
        this.select(r < 0 ? 0 : Math.min(count - 1, r + 1));
        break;
      case 'ArrowUp':
      case 'k':
        this.select(r < 0 ? 0 : Math.max(0, r - 1));
        break;
      case 'PageDown':
        this.select(r < 0 ? 0 : Math.min(count - 1, r + page));
        break;
      case 'PageUp':
        this.select(r < 0 ? 0 : Math.max(0, r - page));
        break;
      case 'Home':
        this.select(0);
        break;
      case 'End':
        this.select(count - 1);
        break;
      case 'ArrowRight':
      case 'l':
        if (r < 0) this.select(0);
        else if (hasKids && !this.isOpen(i, d)) this.toggle(i, d);
        else if (hasKids && r + 1 < count && this.rows.depth[r + 1] === d + 1) this.select(r + 1);
        break;
      case 'ArrowLeft':
      case 'h':
        if (r < 0) this.select(0);
        else if (hasKids && this.isOpen(i, d)) this.toggle(i, d);
        else if (tree && d > 0) {
          // The row above at a lower depth: the parent, or the group row.
          let pr = r - 1;
          while (pr >= 0 && this.rows.depth[pr] >= d) pr--;
          if (pr >= 0) this.select(pr);
        }
        break;
      case 'Enter':
        if (i < 0 || this.model.procs[i]._group) this.toggle(i, d);
        else if (r >= 0) this.openDetail();
        break;
      case 'Escape':
        if (this.detailKey) this.closeDetail();
        else return;
        break;
      case '*':
        this.expandAll();
        break;
      default:
        return;
    }
    e.preventDefault();
  }

  bindEvents() {
    const { viewport, grid, head } = this.els;
    viewport.addEventListener('scroll', () => {
      this.touchedAt = performance.now();
      this.scrollTop = viewport.scrollTop;
      this.scheduleRender();
    }, { passive: true });
    const touched = () => {
      this.touchedAt = performance.now();
    };
    for (const ev of ['pointerdown', 'wheel', 'keydown']) grid.addEventListener(ev, touched, { passive: true, capture: true });
    grid.addEventListener('keydown', (e) => this.onKey(e));
    viewport.addEventListener('click', (e) => {
      const row = e.target.closest('.row');
      if (!row || row._k < 0) return;
      const r = row._k;
      if (e.target.closest('.tog') && this.isTree()) {
        const i = this.rows.idx[r];
        if (this.hasKids(i)) this.toggle(i, this.rows.depth[r]);
      }
      this.select(r, false);
      this.focus();
    });
    // A double click opens the detail panel; keep it from also selecting
    // a word of the row.
    viewport.addEventListener('mousedown', (e) => {
      if (e.detail > 1) e.preventDefault();
    });
    viewport.addEventListener('dblclick', (e) => {
      const row = e.target.closest('.row');
      if (!row || row._k < 0 || e.target.closest('.tog')) return;
      this.select(row._k, false);
      const i = this.rows.idx[row._k];
      if (i < 0 || this.model.procs[i]._group) this.toggle(i, this.rows.depth[row._k]);
      else this.openDetail();
    });
    head.addEventListener('click', (e) => {
      const cell = e.target.closest('[data-sort]');
      if (!cell) return;
      const key = cell.dataset.sort;
      let desc;
      if (key === this.sortKey) {
        const cur = this.sortDesc === undefined ? SORTS[key].desc : this.sortDesc;
        desc = !cur;
        if (desc === SORTS[key].desc) desc = undefined;
      }
      this.cb.onSort(key, desc);
    });
    if (typeof ResizeObserver !== 'undefined') {
      new ResizeObserver((entries) => {
        const hgt = entries[entries.length - 1].contentRect.height;
        if (hgt === this.vpH) return;
        this.vpH = hgt;
        this.version++;
        this.render();
      }).observe(viewport);
    }
  }

  // ---- detail panel ----

  openDetail() {
    if (this.selKey === null) return;
    const gi = this.model.keyIndex.get(this.selKey);
    if (gi !== undefined && this.model.procs[gi]._group) return; // a unit or container row has no details
    this.detailKey = this.selKey;
    this.els.detail.hidden = false;
    this.renderDetail();
  }

  closeDetail() {
    this.detailKey = null;
    this.detailProc = null;
    this.histKey = null;
    this.histEl = null;
    this.els.detail.hidden = true;
    this.els.detail.replaceChildren();
  }

  renderDetail() {
    const m = this.model;
    const i = m.keyIndex.get(this.detailKey);
    const live = i !== undefined;
    const p = live ? m.procs[i] : this.detailProc;
    if (!p) {
      this.closeDetail();
      return;
    }
    this.detailProc = p;
    const rows = [];
    const add = (label, value, extra) => {
      if (value === undefined || value === null || value === '') return;
      rows.push(h('dt', null, label), h('dd', extra, value));
    };
    add('PID', String(p.pid));
    let parentEl = String(p._ppid ?? p.ppid);
    if (live && m.parent[i] !== -1 && !m.procs[m.parent[i]]._group) {
      const pp = m.procs[m.parent[i]];
      parentEl = h('button', { type: 'button', class: 'link', onclick: () => this.selectProcess(m.parent[i]) }, `${pp.name} (${pp.pid})`);
    }
    add('Parent', parentEl);
    if (live && m.parent[i] === -1 && REASONS[m.rootReason[i]]) add('Root because', REASONS[m.rootReason[i]][1]);
    if (live) add('Children', String(m.children[i].length));
    if (live && this.view === 'tree' && this.groupBy === 'none') add('Depth', String(depthOf(m, i)));
    add('User', p.username);
    add('Status', p.status);
    add('CPU', `${num(p.cpu_percent, 1)} % of one core`);
    add('Memory', `${num(p.memory_mb, 1)} MiB${p.memory_percent !== undefined ? ` (${num(p.memory_percent, 2)} % of RAM)` : ''}`);
    const rd = ioValue(p, 'read_bytes_per_sec');
    const wr = ioValue(p, 'write_bytes_per_sec');
    add('Disk I/O', rd < 0 && wr < 0 ? '— (not sent: first snapshot of the process, no access to /proc/PID/io, or not Linux)'
      : `read ${rate(rd)}/s, write ${rate(wr)}/s`);
    add('Unit', p.unit);
    add('Container', p.container_id);
    add('Pod', p.pod_uid);
    if (live && m.children[i].length > 0 && m.tot) {
      const io = m.tot.rd[i] >= 0 || m.tot.wr[i] >= 0 ? `, read ${rate(m.tot.rd[i])}/s, write ${rate(m.tot.wr[i])}/s` : '';
      add('Branch', `${num(m.tot.cpu[i], 1)} % CPU, ${num(m.tot.mem[i], 1)} MiB${io} in ${m.tot.size[i]} processes (it and all below it)`);
    }
    if (p._exited) add('Exited', 'since the moment compared with; these are its last values');
    add('Threads', p.num_threads !== undefined ? String(p.num_threads) : undefined);
    // One time format: local time, then the age as in the Started column (not the raw RFC 3339).
    add('Started', p.create_time ? `${localTime(p.create_time)} (${shortStart(p.create_time)} ago)` : undefined);
    const cmd = p.cmdline !== undefined
      ? h('div', { class: 'cmdline' }, p.cmdline === '' ? '(empty: kernel thread or hidden)' : p.cmdline)
      : h('div', { class: 'cmdline muted' }, 'not sent (the exporter sends command lines only when asked to)');
    const parts = [
      h('div', { class: 'detail-head' },
        h('h2', null, p.name === '' ? '(no name)' : p.name),
        h('button', { type: 'button', class: 'close', 'aria-label': 'Close details', title: 'Close (Esc)', onclick: () => { this.closeDetail(); this.focus(); } }, '×')),
      live ? null : h('p', { class: 'exited' }, 'Not in the latest snapshot: the process has exited.'),
      h('dl', null, rows),
      h('h3', null, 'Command line'),
      cmd,
      this.cb.processHistory ? h('h3', null, 'Last hour') : null,
      this.cb.processHistory ? this.historyEl(p) : null,
    ];
    this.els.detail.replaceChildren(...parts.filter(Boolean));
  }

  /** selectPid selects a process of the shown snapshot and opens its details. */
  selectPid(pid) {
    const i = this.model.index.get(pid);
    if (i === undefined) return false;
    this.selectProcess(i);
    this.openDetail();
    return true;
  }

  // historyEl keeps one process's charts across redraws of the panel (a
  // live update redraws it every few seconds) and loads them only when the
  // panel shows another process.
  historyEl(p) {
    const key = procKey(p);
    if (this.histKey !== key || !this.histEl) {
      this.histKey = key;
      this.histEl = h('div', { class: 'proc-history' });
      this.cb.processHistory(this.histEl, p.pid, p.create_time);
    }
    return this.histEl;
  }

  selectProcess(i) {
    let r = this.rowOf[i];
    if (r < 0 && this.isTree() && !this.found) {
      // Open the ancestors (and group) so the process becomes visible.
      this.openTo(i);
      r = this.rowOf[i];
    }
    if (r >= 0) this.select(r);
    else {
      this.selKey = this.model.keys[i];
      this.openDetail();
    }
  }
}

