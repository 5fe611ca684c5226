// events.js: the Events tab, a timeline of the host's process starts, exits
// and restarts (GET /api/v1/hosts/{hostname}/events), newest first. Each
// entry opens the process tree at that moment with the process selected.
// It also answers which processes restarted in the last hour, for the
// "restarted" badge of the Processes tab: one request per host, cached,
// asked again at most once a minute.

import { h, localTime, ago, duration } from './util.js';
import { getJSON } from './api.js';

const enc = encodeURIComponent;
export const eventsURL = (host, from, to, q, limit) =>
  `api/v1/hosts/${enc(host)}/events?from=${from}&to=${to}&limit=${limit}${q ? `&q=${enc(q)}` : ''}`;

const WINDOWS = [['15m', 900], ['1h', 3600], ['6h', 21600], ['24h', 86400], ['7d', 7 * 86400]];
const KINDS = ['all', 'started', 'exited', 'restarted'];
const LIMIT = 1000; // entries shown at most (the API's default)
const BADGE_WINDOW_S = 3600;
const BADGE_EVERY_MS = 60000;
const BADGE_LIMIT = 5000;

export class EventsView {
  /** @param cb {onOpen(unixSeconds, pid)} opens the tree at a moment */
  constructor(el, cb) {
    this.el = el;
    this.cb = cb;
    this.host = '';
    this.q = '';
    this.kind = 'all';
    this.win = 3600;
    this.seq = 0;
    this.data = null;
    this.error = '';
    this.badge = { host: '', at: 0, map: new Map(), pending: null };
    this.build();
  }

  build() {
    this.qEl = h('input', { type: 'search', class: 'ev-q', placeholder: 'Filter by name, unit or container', 'aria-label': 'Filter events', autocomplete: 'off', spellcheck: 'false' });
    let timer = 0;
    this.qEl.addEventListener('input', () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        this.q = this.qEl.value.trim();
        this.load();
      }, 250);
    });
    this.kindEl = h('select', { class: 'ev-kind', 'aria-label': 'Kind of event', onchange: () => { this.kind = this.kindEl.value; this.render(); } },
      KINDS.map((k) => h('option', { value: k }, k === 'all' ? 'all kinds' : k)));
    this.winEl = h('select', { class: 'ev-window', 'aria-label': 'Time window', onchange: () => { this.win = Number(this.winEl.value); this.load(); } },
      WINDOWS.map(([label, s]) => h('option', { value: String(s), selected: s === this.win }, `last ${label}`)));
    this.countEl = h('span', { class: 'match-count ev-count', 'aria-live': 'polite' });
    this.listEl = h('ol', { class: 'ev-list', 'aria-label': 'Process events, newest first' });
    this.emptyEl = h('p', { class: 'ev-empty muted', hidden: true });
    this.el.replaceChildren(
      h('div', { class: 'toolbar' }, this.qEl, this.countEl, h('span', { class: 'spacer' }), this.kindEl, this.winEl,
        h('button', { type: 'button', class: 'ev-refresh', onclick: () => this.load() }, 'Refresh')),
      h('div', { class: 'ev-box' }, this.emptyEl, this.listEl));
  }

  setHost(host) {
    if (host === this.host) return;
    this.host = host;
    this.data = null;
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
      const res = await getJSON(eventsURL(host, (to - this.win).toFixed(3), (to + 60).toFixed(3), this.q, LIMIT));
      if (seq !== this.seq) return;
      this.data = res;
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
    else if (all.length === 0 && this.q) empty = `No event in the last ${winLabel} matches "${this.q}" (name, unit or container).`;
    else if (all.length === 0) {
      empty = `No process started, exited or restarted in the last ${winLabel}. Events come from comparing consecutive snapshots: a host needs two, and a snapshot cut to the top N processes is not compared.`;
    } else if (shown.length === 0) empty = `No ${this.kind} event in the last ${winLabel}${this.q ? ` matching "${this.q}"` : ''}.`;
    this.emptyEl.textContent = empty;
    this.emptyEl.hidden = empty === '';
    this.countEl.textContent = d && !this.error ? `${shown.length.toLocaleString('en-US')} ${shown.length === 1 ? 'event' : 'events'}${d.truncated ? ` (the newest ${LIMIT}: narrow the window or filter)` : ''}` : '';
    const now = Date.now();
    this.listEl.replaceChildren(...shown.map((e) => this.entry(e, now)));
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
   * hour: Map pid -> event. Cached per host for a minute; failures give an
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
    b.pending = getJSON(eventsURL(host, (to - BADGE_WINDOW_S).toFixed(3), (to + 60).toFixed(3), '', BADGE_LIMIT))
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
