// events.js: the Events tab, a timeline of the host's process starts, exits
// and restarts (GET /api/v1/hosts/{hostname}/events), newest first. Each
// entry opens the process tree at that moment with the process selected.
// It also answers which processes restarted in the last hour, for the
// "restarted" badge of the Processes tab: one request per host, cached,
// asked again at most once a minute.
//
// The filters (kind, text, window) live in the URL as ekind, eq and ewin
// (main.js writes it through onFilter), so a link or a reload shows the
// same list and back/forward step through filter changes; a run of
// keystrokes in the text box is one step.

import { h, localTime, ago, duration } from './util.js';
import { getJSON, latestURL } from './api.js';

const enc = encodeURIComponent;
export const eventsURL = (host, from, to, q, limit, kind = '') =>
  `api/v1/hosts/${enc(host)}/events?from=${from}&to=${to}&limit=${limit}${q ? `&q=${enc(q)}` : ''}${kind ? `&kind=${enc(kind)}` : ''}`;

const WINDOWS = [['15m', 900], ['1h', 3600], ['6h', 21600], ['24h', 86400], ['7d', 7 * 86400]];
const DEFAULT_WIN = 3600;
const KINDS = ['all', 'started', 'exited', 'restarted'];
const MAX_Q = 256; // the API refuses longer
const LIMIT = 1000; // entries shown at most (the API's default)
const BADGE_WINDOW_S = 3600;
const BADGE_EVERY_MS = 60000;
const BADGE_LIMIT = 5000;

export class EventsView {
  /**
   * @param cb {onOpen(unixSeconds, pid)} opens the tree at a moment;
   *   {onFilter(push)} a filter changed (main.js writes the URL)
   */
  constructor(el, cb) {
    this.el = el;
    this.cb = cb;
    this.host = '';
    this.q = '';
    this.kind = 'all';
    this.win = DEFAULT_WIN;
    this.typing = false; // the text box changed since the last other step
    this.seq = 0;
    this.data = null;
    this.error = '';
    this.badge = { host: '', at: 0, map: new Map(), pending: null };
    this.build();
  }

  build() {
    this.qEl = h('input', { type: 'search', class: 'ev-q', placeholder: 'Filter by name, unit or container', 'aria-label': 'Filter events', autocomplete: 'off', spellcheck: 'false', maxlength: String(MAX_Q) });
    this.qTimer = 0;
    this.qEl.addEventListener('input', () => {
      clearTimeout(this.qTimer);
      this.qTimer = setTimeout(() => {
        const q = this.qEl.value.trim();
        if (q === this.q) return;
        this.q = q;
        this.filtered(!this.typing);
        this.typing = true;
        this.load();
      }, 250);
    });
    this.qEl.addEventListener('change', () => { this.typing = false; });
    this.kindEl = h('select', { class: 'ev-kind', 'aria-label': 'Kind of event', onchange: () => { this.kind = this.kindEl.value; this.filtered(true); this.load(); } },
      KINDS.map((k) => h('option', { value: k }, k === 'all' ? 'all kinds' : k)));
    this.winEl = h('select', { class: 'ev-window', 'aria-label': 'Time window', onchange: () => { this.win = Number(this.winEl.value); this.filtered(true); this.load(); } },
      WINDOWS.map(([label, s]) => h('option', { value: String(s), selected: s === this.win }, `last ${label}`)));
    this.countEl = h('span', { class: 'match-count ev-count', 'aria-live': 'polite' });
    this.listEl = h('ol', { class: 'ev-list', 'aria-label': 'Process events, newest first' });
    this.emptyEl = h('p', { class: 'ev-empty muted', hidden: true });
    this.el.replaceChildren(
      h('div', { class: 'toolbar' }, this.qEl, this.countEl, h('span', { class: 'spacer' }), this.kindEl, this.winEl,
        h('button', { type: 'button', class: 'ev-refresh', onclick: () => this.load() }, 'Refresh')),
      h('div', { class: 'ev-box' }, this.emptyEl, this.listEl));
  }

  // filtered tells main.js a filter changed: push a history entry, or
  // replace the current one (the keystrokes after the first of a run).
  filtered(push) {
    if (push) this.typing = false;
    this.cb.onFilter?.(push);
  }

  /** urlParams names the filters for the URL; the defaults add nothing. */
  urlParams() {
    const o = {};
    if (this.kind !== 'all') o.ekind = this.kind;
    if (this.q) o.eq = this.q;
    if (this.win !== DEFAULT_WIN) o.ewin = WINDOWS.find(([, s]) => s === this.win)[0];
    return o;
  }

  /**
   * setURLParams restores the filters from the URL (a load, back or
   * forward) without loading; what it does not know is the default.
   */
  setURLParams(p) {
    const kind = p.get('ekind');
    this.kind = KINDS.includes(kind) ? kind : 'all';
    this.q = (p.get('eq') ?? '').trim().slice(0, MAX_Q);
    this.win = WINDOWS.find(([label]) => label === p.get('ewin'))?.[1] ?? DEFAULT_WIN;
    clearTimeout(this.qTimer); // a pending keystroke would undo the step
    this.typing = false;
    this.kindEl.value = this.kind;
    this.winEl.value = String(this.win);
    if (this.qEl.value.trim() !== this.q) this.qEl.value = this.q;
    if (this.data) this.render(); // the kind at once; the rest when loaded
  }

  setHost(host) {
    if (host === this.host) return;
    this.host = host;
    this.data = null;
    this.latest = null;
    this.error = '';
    this.seq++;
    this.render();
  }

  /** load asks for the events of the window (the tab shown, a filter changed). */
  async load() {
    if (!this.host) return;
    const host = this.host;
    const seq = ++this.seq;
    const to = Date.now() / 1000;
    try {
      // The kind is filtered by the server, so that the limit counts only
      // that kind (render filters again: an older server ignores kind).
      const kind = this.kind === 'all' ? '' : this.kind;
      const res = await getJSON(eventsURL(host, (to - this.win).toFixed(3), (to + 60).toFixed(3), this.q, LIMIT, kind));
      // Nothing: the latest snapshot may say why (none in the window, or
      // only the top N processes sent). One small request, only then.
      const latest = Array.isArray(res.events) && res.events.length === 0
        ? await getJSON(latestURL(host)).catch(() => null) : null;
      if (seq !== this.seq) return;
      this.data = res;
      this.latest = latest;
      this.error = '';
    } catch (err) {
      if (seq !== this.seq) return;
      this.data = null;
      this.error = err.status === 404 ? 'This host is not known to the server (deleted?), or the server has no events route (an older aggregator).'
        : err.status === 503 ? 'The server\'s storage is still opening: try again in a moment.'
          : `Cannot load the events: ${err.message}`;
    }
    this.render();
  }

  render() {
    const d = this.data;
    const all = d && Array.isArray(d.events) ? d.events : [];
    const shown = this.kind === 'all' ? all : all.filter((e) => e.kind === this.kind);
    const winLabel = WINDOWS.find(([, s]) => s === this.win)?.[0] ?? `${this.win}s`;
    let empty = '';
    if (!this.host) empty = 'Select a host on the left.';
    else if (this.error) empty = this.error;
    else if (!d) empty = 'Loading events…';
    else if (shown.length === 0) empty = (all.length === 0 && this.whyNone(winLabel)) || this.noMatch(winLabel);
    this.emptyEl.textContent = empty;
    this.emptyEl.hidden = empty === '';
    this.countEl.textContent = d && !this.error ? `${shown.length.toLocaleString('en-US')} ${shown.length === 1 ? 'event' : 'events'}${d.truncated ? ` (the newest ${LIMIT}: narrow the window or filter)` : ''}` : '';
    const now = Date.now();
    this.listEl.replaceChildren(...shown.map((e) => this.entry(e, now)));
  }

  // noMatch says that nothing matched the filters, or that nothing
  // happened in the window.
  noMatch(winLabel) {
    if (this.kind !== 'all') return `No ${this.kind} event in the last ${winLabel}${this.q ? ` matching "${this.q}"` : ''}.`;
    if (this.q) return `No event in the last ${winLabel} matches "${this.q}" (name, unit or container).`;
    return `No process started, exited or restarted in the last ${winLabel}. Events come from comparing consecutive snapshots: a host needs two.`;
  }

  // whyNone says why a window holds no event at all whatever the filters
  // ('' when nothing says): the host sent no snapshot in it, or sends only
  // its top N processes (an exit cannot be told from a process left out).
  whyNone(winLabel) {
    const l = this.latest;
    const at = l ? Date.parse(l.captured_at) : NaN;
    if (Number.isFinite(at) && at < Date.now() - this.win * 1000) {
      return `This host sent no snapshot in the last ${winLabel} (its latest is from ${localTime(l.captured_at)}, ${ago(l.captured_at, Date.now())}): there was nothing to compare. Choose a longer window.`;
    }
    const onHost = l && l.system ? Number(l.system.process_count) : NaN;
    if (l && Number.isFinite(onHost) && onHost > Number(l.process_count)) {
      return `No events: this host's exporter sends only its top ${Number(l.process_count).toLocaleString('en-US')} of ${onHost.toLocaleString('en-US')} processes (--collect.top-n), and a process left out cannot be told from one that exited, so its snapshots are not compared. Send every process to see starts, exits and restarts.`;
    }
    return '';
  }

  entry(e, now) {
    const where = e.container_id ? `container ${String(e.container_id).slice(0, 12)}` : e.unit || '';
    let detail = '';
    if (e.kind === 'restarted') detail = `replaces pid ${e.prev_pid}`;
    else if (e.kind === 'exited') {
      detail = `${e.lifetime_seconds !== undefined ? `ran ${duration(e.lifetime_seconds)}, ` : ''}last ${Number(e.cpu_percent ?? 0).toFixed(1)} % CPU, ${Number(e.memory_mb ?? 0).toFixed(1)} MiB`;
    }
    // An exited process is in the snapshot before the one that saw it go.
    const t = Date.parse(e.at) / 1000 - (e.kind === 'exited' ? 0.001 : 0);
    const verb = e.kind === 'exited' ? 'before it exited' : 'at that moment';
    return h('li', { class: `ev ev-${e.kind}` }, h('button', {
      type: 'button',
      class: 'ev-open',
      title: `Open the process tree ${verb} (${localTime(e.at)}) with ${e.name} (${e.pid}) selected`,
      dataset: { pid: String(e.pid), kind: e.kind },
      onclick: () => this.cb.onOpen(t, e.pid),
    },
    h('time', { datetime: e.at, class: 'ev-at' }, localTime(e.at)),
    h('span', { class: 'ev-ago muted' }, ago(e.at, now)),
    h('span', { class: `badge ev-kind-${e.kind}` }, e.kind),
    h('span', { class: 'ev-name' }, e.name === '' ? '(no name)' : e.name),
    h('span', { class: 'ev-pid muted' }, `pid ${e.pid}`),
    h('span', { class: 'ev-where muted', title: e.container_id || e.unit || '' }, where),
    h('span', { class: 'ev-detail muted' }, detail)));
  }

  /**
   * restarts resolves to the processes of host that restarted in the last
   * hour: Map pid -> the newest restarted event of that pid (sameProcess
   * says whether it is still the process shown with that pid). Cached per host for a minute; failures give an
   * empty map (the badge is a hint, never an error).
   */
  restarts(host) {
    const b = this.badge;
    const now = Date.now();
    if (b.host === host && b.pending) return b.pending;
    if (b.host === host && now - b.at < BADGE_EVERY_MS) return Promise.resolve(b.map);
    b.host = host;
    b.at = now;
    const to = now / 1000;
    b.pending = getJSON(eventsURL(host, (to - BADGE_WINDOW_S).toFixed(3), (to + 60).toFixed(3), '', BADGE_LIMIT, 'restarted'))
      .then((res) => {
        const map = new Map();
        for (const e of Array.isArray(res.events) ? res.events : []) {
          if (e.kind === 'restarted' && !map.has(e.pid)) map.set(e.pid, e);
        }
        return map;
      })
      .catch(() => new Map())
      .then((map) => {
        if (b.host === host) {
          b.map = map;
          b.pending = null;
        }
        return map;
      });
    return b.pending;
  }
}

/**
 * sameProcess says whether event e (restarted, started) is about process p
 * of a snapshot: the same pid and start time (the event's started_at, the
 * process's create_time, both at millisecond precision), so a pid reused
 * by a later process is another process. Without both times (an older
 * aggregator or exporter) the same pid and name count.
 */
export function sameProcess(e, p) {
  if (!e || !p || e.pid !== p.pid) return false;
  const a = e.started_at ? Date.parse(e.started_at) : NaN;
  const b = p.create_time ? Date.parse(p.create_time) : NaN;
  if (Number.isFinite(a) && Number.isFinite(b)) return a === b;
  return e.name === p.name;
}
