// main.js: wires the page. State that names a view (host, tab, search,
// view, sort, the fleet's filter and sort) lives in the URL, so a link
// opens the same view; preferences (auto refresh, interval, theme) live in
// localStorage. Without a host in the URL the page is the fleet overview.
//
// Reachability: every API answer tells api.js whether the server is there;
// when it is not, the page says so at once, greys what it shows (data from
// the last answer), marks host status unknown and retries every 2 s.
//
// Live updates: an EventSource on /api/v1/stream tells us a host has a new
// snapshot and we fetch it at once. When the stream fails (an older server,
// a proxy that buffers), we poll the latest snapshot at the chosen interval.

import { h, ago, localTime, clockTime, shortStart } from './util.js';
import { getJSON, fleetURL, latestURL, processesURL, processesSinceURL, applyDelta, streamURL, onReachability } from './api.js';
import { FleetView, statusText } from './fleet.js';
import { ProcView } from './procview.js';
import { Changes } from './changes.js';
import { renderSystem } from './system.js';
import { SORTS } from './tree.js';
import { HistoryView, atURL, snapshotsURL, snapshotURL, processHistory } from './history.js';
import { EventsView } from './events.js';

const $ = (id) => document.getElementById(id);
const HOSTS_EVERY_MS = 15000; // online/offline and last-seen refresh
const FLEET_MIN_GAP_MS = 2000; // live fleet updates: at most one fetch per gap
const RETRY_MS = 2000; // server unreachable: try again this often
const SIDEBAR_MAX = 200; // host switcher rows drawn; the filter finds the rest
const MIN_INTERVAL = 1;
const MAX_INTERVAL = 3600;
const LIVE_DEFER_MAX_MS = 2000; // a live update waits for the user's gesture this long at most

const state = {
  host: '',
  tab: 'processes',
  q: '',
  view: 'tree',
  group: 'none', // group by: none, unit, container
  sort: 'cpu',
  desc: undefined,
  hosts: [],
  latest: null,
  procSnapshot: 0, // snapshot id whose processes are shown
  held: null, // {host, id, procs}: the process list last shown, the base of the next delta
  auto: true,
  interval: 5,
  loadSeq: 0,
  loadCtl: null,
  es: null,
  streamOK: false,
  pollTimer: 0,
  hostsTimer: 0,
  lastError: '',
  past: null, // snapshot meta shown instead of the latest ("time travel"), or null
  atId: 0, // snapshot id asked for by the URL, opened once the host is known
  pendingSelect: null, // pid to select once the next process list is shown
  pastSeq: 0,
  pauseLatest: null, // latest snapshot id known when the past was opened
  conn: { text: '', cls: 'off' }, // what the live connection is doing
  fleet: null, // the last GET /api/v1/fleet answer
  fleetSeq: 0,
  fleetTimer: 0,
  fleetLast: 0, // when the last fleet fetch started (ms)
  server: { ok: true, dataAt: 0, retry: 0 }, // reachability; dataAt: last answer
  host404: false, // the selected host has no latest snapshot
  system: null, // the snapshot meta the System tab shows
  systemDrawn: false, // the System tab shows state.system
  missed: false, // a live update came while the tab was hidden
  deferTimer: 0, // a live update waiting for the user's gesture to end
  deferSince: 0, // when it started waiting (performance.now())
};

const view = new ProcView({
  grid: $('grid'),
  head: $('grid-head'),
  viewport: $('viewport'),
  spacer: $('spacer'),
  empty: $('grid-empty'),
  detail: $('detail'),
  matchCount: $('match-count'),
}, {
  onSort: (key, desc) => setSort(key, desc),
  processHistory: (el, pid, createTime) => processHistory(el, state.host, pid, createTime),
});

// What changed (Processes tab and time-travel banner): changes.js.
const changes = new Changes(view, { host: () => state.host, backToLive: () => backToLive() });
view.onShown = (meta) => changes.shownChanged(meta);

const fleetView = new FleetView($('panel-fleet'), {
  onOpen: (host) => selectHost(host, true),
  onChange: () => writeURL(false),
});

const hist = new HistoryView($('panel-history'), {
  onPick: (t) => pickTime(t),
  onOpen: (snapshotId, pid) => openFromDiff(snapshotId, pid),
  onRange: () => writeURL(true),
});

// Events tab (events.js): an entry opens the tree at its moment.
const events = new EventsView($('panel-events'), {
  onOpen: (t, pid) => {
    state.pendingSelect = pid;
    setTab('processes', true);
    pickTime(t);
  },
  onFilter: (push) => writeURL(push),
});

// ---- URL state ----

function readURL() {
  const p = new URLSearchParams(location.search);
  state.host = p.get('host') ?? '';
  state.tab = ['system', 'history', 'events'].includes(p.get('tab')) ? p.get('tab') : 'processes';
  const at = Number(p.get('at'));
  state.atId = Number.isSafeInteger(at) && at > 0 ? at : 0;
  state.q = p.get('q') ?? '';
  state.view = p.get('view') === 'flat' ? 'flat' : 'tree';
  state.group = ['unit', 'container'].includes(p.get('group')) ? p.get('group') : 'none';
  const sort = p.get('sort');
  state.sort = sort && SORTS[sort] ? sort : 'cpu';
  const dir = p.get('dir');
  state.desc = dir === 'desc' ? true : dir === 'asc' ? false : undefined;
  hist.setURLParams(p);
  events.setURLParams(p);
  const fdir = p.get('fdir');
  fleetView.setSort(p.get('fsort') ?? 'problems', fdir === 'desc' ? true : fdir === 'asc' ? false : undefined);
  fleetView.setFilter(p.get('fq') ?? '', p.get('fshow') ?? 'all');
}

function writeURL(push) {
  const p = new URLSearchParams();
  if (state.host) p.set('host', state.host);
  if (state.tab !== 'processes') p.set('tab', state.tab);
  if (state.past) p.set('at', String(state.past.snapshot_id));
  if (state.q) p.set('q', state.q);
  if (state.view !== 'tree') p.set('view', state.view);
  if (state.group !== 'none') p.set('group', state.group);
  if (state.sort !== 'cpu') p.set('sort', state.sort);
  if (state.desc !== undefined) p.set('dir', state.desc ? 'desc' : 'asc');
  if (state.host) for (const [k, v] of Object.entries({ ...hist.urlParams(), ...events.urlParams() })) p.set(k, v);
  else for (const [k, v] of Object.entries(fleetView.urlParams())) p.set(k, v);
  const s = p.toString();
  const url = `${location.pathname}${s ? `?${s}` : ''}`;
  if (url === `${location.pathname}${location.search}`) return;
  if (push) history.pushState(null, '', url);
  else history.replaceState(null, '', url);
}

function readPrefs() {
  try {
    const v = JSON.parse(localStorage.getItem('procscope.prefs') || '{}');
    if (typeof v.auto === 'boolean') state.auto = v.auto;
    if (['light', 'dark'].includes(v.theme)) state.theme = v.theme;
    const n = Number(v.interval);
    if (Number.isInteger(n) && n >= MIN_INTERVAL && n <= MAX_INTERVAL) state.interval = n;
  } catch {
    // defaults
  }
}

function savePrefs() {
  try {
    localStorage.setItem('procscope.prefs', JSON.stringify({ auto: state.auto, interval: state.interval, theme: state.theme }));
  } catch {
    // not remembered
  }
}

// ---- errors ----

function showError(msg) {
  const el = $('error-banner');
  state.lastError = msg;
  el.textContent = msg;
  el.hidden = !msg;
}

// ---- hosts ----

/** loadHosts fetches the fleet: the home table, the switcher, host status. */
async function loadHosts() {
  const seq = ++state.fleetSeq;
  state.fleetLast = Date.now();
  try {
    const fleet = await getJSON(fleetURL(), undefined, 8000);
    if (seq !== state.fleetSeq) return;
    state.fleet = fleet;
    state.hosts = Array.isArray(fleet?.hosts) ? fleet.hosts : [];
    fleetView.setData(fleet);
    renderHosts();
    renderHostState();
    if (state.lastError.startsWith('hosts:')) showError('');
  } catch (err) {
    if (seq !== state.fleetSeq || err.status === 0) return; // unreachable: the banner says it
    showError(`hosts: cannot load the host list: ${err.message}`);
  }
}

/** scheduleFleet fetches the fleet soon, at most once per FLEET_MIN_GAP_MS. */
function scheduleFleet() {
  if (state.fleetTimer) return;
  const wait = Math.max(0, state.fleetLast + FLEET_MIN_GAP_MS - Date.now());
  state.fleetTimer = setTimeout(() => {
    state.fleetTimer = 0;
    loadHosts();
  }, wait);
}

const hostEntry = (name) => state.hosts.find((ho) => ho.hostname === name);

function renderHosts() {
  const ul = $('hosts');
  const now = fleetView.now();
  const stale = !state.server.ok;
  $('host-count').textContent = state.hosts.length ? `(${state.hosts.length.toLocaleString('en-US')})` : '';
  if (state.hosts.length === 0) {
    ul.replaceChildren(h('li', { class: 'muted' }, state.fleet ? 'No host has reported yet. Start an exporter pointed at this server.' : 'Loading hosts…'));
    $('hosts-more').hidden = true;
    return;
  }
  const q = $('host-filter').value.trim().toLowerCase();
  const match = q ? state.hosts.filter((ho) => ho.hostname.toLowerCase().includes(q)) : state.hosts;
  // Drawn: the first SIDEBAR_MAX matches, and the selected host wherever it is.
  let shown = match.slice(0, SIDEBAR_MAX);
  if (state.host && !shown.some((ho) => ho.hostname === state.host)) {
    const sel = hostEntry(state.host);
    if (sel && (!q || sel.hostname.toLowerCase().includes(q))) shown = [sel, ...shown];
  }
  const more = match.length - shown.length;
  $('hosts-more').hidden = more <= 0 && match.length > 0;
  $('hosts-more').textContent = match.length === 0 ? 'No host matches.' : `${more.toLocaleString('en-US')} more: type to narrow the list`;
  // The list is redrawn every few seconds (relative times): each host keeps
  // its row, and a redraw writes only what changed (mostly the "ago" text),
  // so a 200-host list costs no new nodes and no layout of whole rows every
  // 5 s; rows move only when the drawn set or its order changed (keyboard
  // focus then stays on the same host).
  const rows = [];
  const alive = new Set();
  for (const ho of shown) {
    const st = statusText(ho, stale, now);
    const sel = ho.hostname === state.host;
    let r = sidebarRows.get(ho.hostname);
    if (!r) {
      const dot = h('span', { role: 'img' });
      const seen = h('span');
      const btn = h('button', { type: 'button', dataset: { host: ho.hostname }, onclick: () => selectHost(ho.hostname, true) },
        dot, h('span', { class: 'hn' }, ho.hostname), seen);
      r = { li: h('li', null, btn), btn, dot, seen, k: {} };
      sidebarRows.set(ho.hostname, r);
    }
    alive.add(ho.hostname);
    patch(r, 'btnClass', `host${sel ? ' sel' : ''}`, (v) => { r.btn.className = v; });
    patch(r, 'current', sel ? 'true' : '', (v) => { if (v) r.btn.setAttribute('aria-current', v); else r.btn.removeAttribute('aria-current'); });
    patch(r, 'title', `${ho.hostname}\n${st.title}\nlast seen ${localTime(ho.last_seen)}${ho.os ? `\n${ho.os}` : ''}`, (v) => { r.btn.title = v; });
    patch(r, 'dotClass', `dot ${st.cls}`, (v) => { r.dot.className = v; });
    patch(r, 'dotLabel', st.text, (v) => { r.dot.setAttribute('aria-label', v); });
    patch(r, 'seenClass', `seen${ho.online || stale ? '' : ' off'}`, (v) => { r.seen.className = v; });
    patch(r, 'seenText', `${shortStart(ho.last_seen, now)} ago`, (v) => {
      const t = r.seen.firstChild;
      if (t && t.nodeType === Node.TEXT_NODE) t.data = v;
      else r.seen.replaceChildren(document.createTextNode(v));
    });
    rows.push(r.li);
  }
  for (const name of sidebarRows.keys()) if (!alive.has(name)) sidebarRows.delete(name);
  const kids = ul.children;
  let same = kids.length === rows.length;
  for (let i = 0; same && i < rows.length; i++) same = kids[i] === rows[i];
  if (!same) {
    const focused = ul.contains(document.activeElement) ? document.activeElement.dataset.host : undefined;
    ul.replaceChildren(...rows);
    if (focused !== undefined) sidebarRows.get(focused)?.btn.focus();
  }
}

// The host switcher's rows by hostname (renderHosts), and patch, which
// writes a row's property only when its value changed.
const sidebarRows = new Map();
function patch(r, key, v, write) {
  if (r.k[key] === v) return;
  r.k[key] = v;
  write(v);
}

/**
 * renderHostState says, on a host's pages, what is known of the host:
 * offline since when (not "live"), unknown while the server is
 * unreachable, and one empty state per situation (unknown host, no
 * snapshot yet) instead of empty panels.
 */
function renderHostState() {
  const badge = $('host-state');
  const ho = state.host ? hostEntry(state.host) : null;
  if (!state.host || !ho) badge.hidden = true;
  else if (!state.server.ok) {
    badge.hidden = false;
    badge.className = 'host-state unknown';
    badge.textContent = 'status unknown';
    badge.title = 'The server is unreachable';
  } else if (!ho.online) {
    badge.hidden = false;
    badge.className = 'host-state off';
    badge.textContent = `offline since ${clockTime(ho.last_seen)}`;
    badge.title = `offline since ${localTime(ho.last_seen)} (${ago(ho.last_seen, fleetView.now())}): no snapshot accepted since`;
  } else badge.hidden = true;
  let msg = '';
  if (state.host && state.host404) {
    if (state.fleet && !ho) msg = `Unknown host “${state.host}”: no exporter has reported under this name. Pick a host from the list or the fleet overview.`;
    else msg = `No snapshot of ${state.host} yet: the host is registered but its exporter has not pushed one. This page fills in when it does.`;
  }
  const el = $('host-empty');
  el.textContent = msg;
  state.hostEmpty = msg !== '';
  showPanels();
  renderLive();
}

function selectHost(name, push) {
  if (name === state.host && (state.latest || !name)) {
    closeDrawer();
    return;
  }
  state.host = name;
  state.past = null;
  state.atId = 0;
  state.latest = null;
  state.procSnapshot = 0;
  state.host404 = false;
  writeURL(push);
  applyHost();
  closeDrawer();
}

function applyHost() {
  renderHosts();
  $('host-title').textContent = state.host || 'Fleet';
  document.title = state.host ? `${state.host} · procscope` : 'Fleet · procscope';
  $('snap-meta').textContent = '';
  view.setHost(state.host);
  hist.setHost(state.host);
  events.setHost(state.host);
  showSystem(null);
  renderPast();
  renderHostState();
  connectLive();
  if (!state.host) return;
  if (state.atId) openSnapshotId(state.atId);
  else refresh();
  if (state.tab === 'history') hist.load();
  if (state.tab === 'events') events.load();
}

/** showPanels shows the fleet, a host's empty state or its current tab. */
function showPanels() {
  const fleet = !state.host;
  const empty = !fleet && state.hostEmpty;
  $('panel-fleet').hidden = !fleet;
  $('app').classList.toggle('is-fleet', fleet);
  document.querySelector('.tabs').hidden = fleet || empty;
  $('host-empty').hidden = !empty;
  $('panel-system').hidden = fleet || empty || state.tab !== 'system';
  $('panel-processes').hidden = fleet || empty || state.tab !== 'processes';
  $('panel-history').hidden = fleet || empty || state.tab !== 'history';
  $('panel-events').hidden = fleet || empty || state.tab !== 'events';
}

// ---- reachability ----

function markReachable(ok) {
  if (ok) {
    state.server.dataAt = Date.now();
    if (state.server.ok) return;
    state.server.ok = true;
    clearInterval(state.server.retry);
    state.server.retry = 0;
    $('conn-banner').hidden = true;
    document.body.classList.remove('stale');
    fleetView.setStale(false);
    renderHosts();
    renderHostState();
    connectLive();
    loadHosts();
    if (state.host && !state.past) refresh();
    return;
  }
  if (!state.server.ok) return;
  state.server.ok = false;
  const el = $('conn-banner');
  const from = state.server.dataAt ? clockTime(state.server.dataAt) : '—';
  el.textContent = `Server unreachable, showing data from ${from}, retrying every ${RETRY_MS / 1000} s…`;
  el.title = state.server.dataAt ? `last answer at ${localTime(new Date(state.server.dataAt).toISOString())}` : '';
  el.hidden = false;
  document.body.classList.add('stale');
  fleetView.setStale(true);
  renderHosts();
  renderHostState();
  state.server.retry = setInterval(loadHosts, RETRY_MS);
}

// ---- snapshots ----

/** refresh fetches the latest snapshot and, when it is new, its processes. */
async function refresh() {
  if (!state.host) return;
  const host = state.host;
  const seq = ++state.loadSeq;
  if (state.loadCtl) state.loadCtl.abort();
  const ctl = new AbortController();
  state.loadCtl = ctl;
  try {
    const latest = await getJSON(latestURL(host), ctl.signal);
    if (seq !== state.loadSeq) return;
    state.latest = latest;
    // Looking at the past (or about to, from an ?at= link): the view stays put.
    if (state.past) noteNewData();
    if (state.past || state.atId) return;
    let shown = false;
    const show = () => {
      if (shown || seq !== state.loadSeq || state.past || state.atId) return;
      shown = true;
      showLatest(latest);
    };
    if (latest.snapshot_id !== state.procSnapshot) {
      // A live update's snapshot line, System tab and process list change
      // together once the list is here: one frame to lay out and paint,
      // not two. A first list may take long to come: its line shows now.
      if (!state.held || state.held.host !== host) show();
      let procs;
      try {
        procs = await fetchProcesses(latest.snapshot_id, ctl.signal);
      } finally {
        show();
      }
      if (seq !== state.loadSeq || state.past || state.atId) return;
      state.procSnapshot = latest.snapshot_id;
      state.held = { host, id: latest.snapshot_id, procs };
      view.setData(procs, latest);
      // A host said offline that just sent a snapshot is back: say so soon.
      const ho = hostEntry(host);
      if (ho && !ho.online) scheduleFleet();
      takePendingSelect();
      events.restarts(host).then((m) => {
        if (host === state.host) view.setRestarts(m);
      });
    } else show();
    showError('');
  } catch (err) {
    if (ctl.signal.aborted || seq !== state.loadSeq) return;
    if (err.status === 404) {
      view.setData([]);
      state.host404 = true;
      renderHostState();
    } else if (err.status === 0) {
      // unreachable: the connection banner says it
    } else {
      showError(`${host}: cannot load the latest snapshot: ${err.message}`);
    }
  } finally {
    if (state.loadCtl === ctl) state.loadCtl = null;
  }
}

// showLatest shows what the latest snapshot's metadata says: its line and
// the System tab.
function showLatest(latest) {
  if (state.host404) {
    state.host404 = false;
    renderHostState();
  }
  renderMeta();
  showSystem(latest);
}

/**
 * fetchProcesses gets the process list of snapshot id. With a list of an
 * older snapshot of the host in hand (a live page), only what changed
 * since is fetched (processes?since=, docs/api.md) and applied to it: the
 * whole list of a big host costs the page more to download and decode
 * than to draw. Any refusal (the held snapshot deleted, another host...)
 * or an answer that does not fit falls back to the whole list.
 */
async function fetchProcesses(id, signal) {
  const held = state.held;
  if (held && held.host === state.host && held.id < id) {
    try {
      const d = await getJSON(processesSinceURL(id, held.id), signal);
      // An older server ignores since and sends the whole list.
      const procs = Array.isArray(d) ? d : applyDelta(held.procs, d);
      if (procs) return procs;
    } catch (err) {
      if (signal.aborted || err.status === 0) throw err;
    }
  }
  const procs = await getJSON(processesURL(id), signal);
  return Array.isArray(procs) ? procs : [];
}

/**
 * showSystem gives the System tab the snapshot shown. It is drawn when the
 * tab is open, else when it opens: a live host would otherwise rebuild a
 * hidden panel with every snapshot.
 */
function showSystem(meta) {
  state.system = meta;
  state.systemDrawn = false;
  if (state.tab === 'system') drawSystem();
}

function drawSystem() {
  if (state.systemDrawn) return;
  state.systemDrawn = true;
  renderSystem($('panel-system'), state.system);
}

function renderMeta() {
  const l = state.latest;
  if (!l) {
    $('snap-meta').textContent = '';
    return;
  }
  setMeta(l, true);
}

/** setMeta: "snapshot 42 · captured 17:00:02 (12s ago)", the full time on hover. */
function setMeta(l, withAgo) {
  const el = $('snap-meta');
  el.textContent = `snapshot ${l.snapshot_id} · captured ${clockTime(l.captured_at)}${withAgo ? ` (${ago(l.captured_at)})` : ''}`;
  el.title = `captured ${localTime(l.captured_at)} (${l.captured_at})`;
}

// ---- live updates ----

function setLive(text, cls) {
  state.conn = { text, cls };
  renderLive();
}

// renderLive shows the connection state, except while the page shows the
// past: then nothing on screen is live, whatever the stream is doing.
function renderLive() {
  const el = $('live');
  const ho = state.host ? hostEntry(state.host) : null;
  let { text, cls } = state.conn;
  let title = '';
  if (state.past) ({ text, cls } = { text: 'paused (viewing the past)', cls: 'paused' });
  else if (!state.server.ok) ({ text, cls } = { text: 'server unreachable', cls: 'down' });
  else if (ho && !ho.online) {
    ({ text, cls } = { text: `host offline since ${clockTime(ho.last_seen)}`, cls: 'off' });
    title = localTime(ho.last_seen);
  }
  el.title = title;
  hist.setOffline(ho && !ho.online && state.server.ok ? clockTime(ho.last_seen) : '');
  // What the connection itself does, whatever the text says about the host.
  el.dataset.stream = state.conn.cls;
  el.dataset.conn = state.past ? text : state.conn.text;
  el.textContent = text;
  el.className = `live ${cls}`;
}

function connectLive() {
  disconnectLive();
  if (!state.auto) {
    setLive('auto refresh off', 'off');
    return;
  }
  if (typeof EventSource === 'undefined') {
    startPolling();
    return;
  }
  const es = new EventSource(streamURL(state.host));
  state.es = es;
  setLive('connecting…', 'wait');
  es.onopen = () => {
    if (state.es !== es) return;
    state.streamOK = true;
    stopPolling();
    setLive('live', 'on');
    // catch up on anything ingested while not connected
    if (state.host) liveRefresh();
    else scheduleFleet();
  };
  es.onmessage = (ev) => {
    if (state.es !== es) return;
    let msg = null;
    try {
      msg = JSON.parse(ev.data);
    } catch {
      return;
    }
    if (!state.host) {
      if (document.visibilityState === 'hidden') state.missed = true;
      else scheduleFleet(); // the fleet view hears every host
      return;
    }
    if (msg && msg.hostname !== undefined && msg.hostname !== state.host) return;
    if (msg && msg.snapshot_id !== undefined && msg.snapshot_id === state.procSnapshot) return;
    liveRefresh();
  };
  es.onerror = () => {
    if (state.es !== es) return;
    state.streamOK = false;
    // The stream breaks first when the server goes away: ask at once
    // whether it is still there (the banner shows within a second).
    if (state.server.ok && Date.now() - state.fleetLast > 500) loadHosts();
    // CONNECTING: the browser retries by itself; poll meanwhile so nothing
    // waits on it. CLOSED (e.g. the server has no stream endpoint): poll.
    startPolling();
  };
}

/**
 * liveRefresh is refresh for a live update, coalesced: while the tab is
 * hidden nothing is fetched or drawn (one refresh when it shows again),
 * and while the user scrolls or clicks in the process list the update
 * waits until they pause (at most LIVE_DEFER_MAX_MS), so a snapshot never
 * lands mid-gesture and several land as one.
 */
function liveRefresh() {
  if (document.visibilityState === 'hidden') {
    state.missed = true;
    return;
  }
  const now = performance.now();
  const wait = view.busyFor(now);
  if (wait > 0 && (!state.deferSince || now - state.deferSince < LIVE_DEFER_MAX_MS)) {
    if (!state.deferSince) state.deferSince = now;
    clearTimeout(state.deferTimer);
    state.deferTimer = setTimeout(liveRefresh, wait);
    return;
  }
  clearTimeout(state.deferTimer);
  state.deferTimer = 0;
  state.deferSince = 0;
  refresh();
}

// The tab shows again: catch up with what was missed while hidden.
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'hidden' || !state.missed) return;
  state.missed = false;
  if (!state.auto) return;
  loadHosts();
  if (state.host && !state.past) refresh();
});

function disconnectLive() {
  if (state.es) {
    state.es.close();
    state.es = null;
  }
  state.streamOK = false;
  stopPolling();
}

function startPolling() {
  if (state.pollTimer || !state.auto) return;
  setLive(`polling every ${state.interval} s`, 'poll');
  state.pollTimer = setInterval(() => (state.host ? liveRefresh() : loadHosts()), state.interval * 1000);
}

function stopPolling() {
  clearInterval(state.pollTimer);
  state.pollTimer = 0;
}

function restartPolling() {
  if (!state.pollTimer) return;
  stopPolling();
  startPolling();
}

// ---- time travel ----

function renderPast() {
  const el = $('past');
  renderLive();
  changes.pastChanged(state.past, state.latest);
  if (!state.past) {
    el.hidden = true;
    $('past-new').hidden = true;
    return;
  }
  el.hidden = false;
  $('past-text').textContent = `You are looking at the past: snapshot ${state.past.snapshot_id}, captured ${localTime(state.past.captured_at)} (${ago(state.past.captured_at)}).`;
  $('past-text').title = state.past.captured_at;
}

// noteNewData shows the "new data" hint when the latest snapshot is no
// longer the one that was latest when the past was opened.
function noteNewData() {
  if (!state.latest) return;
  if (state.pauseLatest === null) state.pauseLatest = state.latest.snapshot_id;
  else if (state.latest.snapshot_id !== state.pauseLatest) $('past-new').hidden = false;
}

/**
 * openPast shows one stored snapshot instead of the latest. keepDiff keeps
 * the History tab's comparison (the snapshot was opened from it).
 */
async function openPast(meta, push = true, keepDiff = false) {
  const host = state.host;
  const seq = ++state.pastSeq;
  state.loadSeq++; // a refresh in flight must not replace the past view
  if (state.latest && meta.snapshot_id === state.latest.snapshot_id) {
    backToLive();
    return;
  }
  try {
    const procs = await getJSON(processesURL(meta.snapshot_id));
    if (seq !== state.pastSeq || host !== state.host) return;
    if (!state.past) state.pauseLatest = state.latest ? state.latest.snapshot_id : null;
    state.past = meta;
    state.atId = 0;
    state.procSnapshot = meta.snapshot_id;
    state.held = Array.isArray(procs) ? { host, id: meta.snapshot_id, procs } : null;
    view.setData(Array.isArray(procs) ? procs : [], meta);
    showSystem(meta);
    setMeta(meta, false);
    renderPast();
    takePendingSelect();
    writeURL(push);
    showError('');
    // The History tab says what changed from this moment to the latest.
    if (!keepDiff) hist.showDiff(meta, state.latest);
  } catch (err) {
    state.atId = 0;
    state.pendingSelect = null;
    showError(`${host}: cannot open snapshot ${meta.snapshot_id}: ${err.message}`);
  }
}

async function openSnapshotId(id, push = false, keepDiff = false) {
  try {
    const meta = await getJSON(snapshotURL(id));
    if (meta.hostname !== undefined && meta.hostname !== state.host) throw new Error('it belongs to another host');
    state.latest = await getJSON(latestURL(state.host)).catch(() => state.latest);
    await openPast(meta, push, keepDiff);
  } catch (err) {
    state.atId = 0;
    showError(`cannot open snapshot ${id}: ${err.message}`);
    refresh();
  }
}

/** pickTime opens the snapshot at or before a moment picked on a chart. */
async function pickTime(t) {
  try {
    const meta = await getJSON(atURL(state.host, t.toFixed(3)));
    await openPast(meta);
    if (state.past) setTab('processes', false);
  } catch (err) {
    showError(err.status === 404 ? 'no snapshot at or before that moment' : `cannot open that moment: ${err.message}`);
  }
}

async function stepPast(dir) {
  if (!state.past) return;
  const t = Date.parse(state.past.captured_at);
  try {
    if (dir < 0) {
      await openPast(await getJSON(atURL(state.host, ((t - 1) / 1000).toFixed(3))));
    } else {
      const now = Date.now() / 1000 + 60;
      const list = await getJSON(snapshotsURL(state.host, ((t + 1) / 1000).toFixed(3), now.toFixed(3), 1));
      if (!Array.isArray(list) || list.length === 0) backToLive();
      else await openPast(list[0]);
    }
  } catch (err) {
    showError(err.status === 404 ? 'no earlier snapshot is stored' : `cannot step: ${err.message}`);
  }
}

function backToLive() {
  state.past = null;
  state.atId = 0;
  state.procSnapshot = 0;
  state.pauseLatest = null;
  renderPast();
  hist.clearPastDiff();
  writeURL(true);
  refresh();
}

/**
 * openFromDiff shows a process named in "what changed" selected (details
 * open, scrolled into view) in the tree of the snapshot it is in: the live
 * tree when that is the latest, else that moment of the past.
 */
function openFromDiff(snapshotId, pid) {
  state.pendingSelect = pid;
  setTab('processes', true);
  const isLatest = state.latest && state.latest.snapshot_id === snapshotId;
  if (state.past && state.past.snapshot_id === snapshotId) takePendingSelect();
  else if (isLatest && state.past) backToLive();
  else if (isLatest && state.procSnapshot === snapshotId) takePendingSelect();
  else if (isLatest) refresh();
  else openSnapshotId(snapshotId, true, true);
}

function takePendingSelect() {
  if (state.pendingSelect === null) return;
  view.selectPid(state.pendingSelect);
  state.pendingSelect = null;
}

// ---- tabs, search, sort ----

function setTab(tab, push) {
  state.tab = ['system', 'history', 'events'].includes(tab) ? tab : 'processes';
  for (const b of document.querySelectorAll('[role=tab]')) {
    const on = b.dataset.tab === state.tab;
    b.setAttribute('aria-selected', on ? 'true' : 'false');
    b.tabIndex = on ? 0 : -1;
  }
  showPanels();
  if (state.tab === 'system') drawSystem();
  if (state.tab === 'events' && state.host) events.load();
  if (state.tab === 'processes') view.resized();
  if (state.tab === 'history' && state.host && hist.host === state.host) hist.load();
  writeURL(push);
}

function setSort(key, desc) {
  state.sort = key;
  state.desc = desc;
  $('sort').value = key;
  view.setSort(key, desc);
  writeURL(false);
}

function setView(v) {
  state.view = v;
  $('view-tree').setAttribute('aria-pressed', v === 'tree' ? 'true' : 'false');
  $('view-flat').setAttribute('aria-pressed', v === 'flat' ? 'true' : 'false');
  view.setView(v);
  writeURL(false);
}

function setGroup(g) {
  state.group = ['unit', 'container'].includes(g) ? g : 'none';
  $('groupby').value = state.group;
  view.setGroupBy(state.group);
  writeURL(false);
}

function applyURL() {
  readURL();
  state.past = null; // the URL's `at` (if any) decides, in applyHost
  state.procSnapshot = 0;
  $('search').value = state.q;
  $('sort').value = state.sort;
  view.setQuery(state.q);
  view.setSort(state.sort, state.desc);
  setView(state.view);
  setGroup(state.group);
  setTab(state.tab, false);
  applyHost();
}

// ---- wiring ----

function bind() {
  $('refresh').addEventListener('click', () => {
    loadHosts();
    refresh();
  });
  const auto = $('auto');
  auto.checked = state.auto;
  auto.addEventListener('change', () => {
    state.auto = auto.checked;
    savePrefs();
    connectLive();
  });
  const iv = $('interval');
  iv.value = String(state.interval);
  iv.addEventListener('change', () => {
    const n = Math.round(Number(iv.value));
    if (!Number.isFinite(n) || n < MIN_INTERVAL || n > MAX_INTERVAL) {
      iv.setCustomValidity(`between ${MIN_INTERVAL} and ${MAX_INTERVAL} seconds`);
      iv.reportValidity();
      return;
    }
    iv.setCustomValidity('');
    state.interval = n;
    iv.value = String(n);
    savePrefs();
    restartPolling();
  });
  for (const b of document.querySelectorAll('[role=tab]')) {
    b.addEventListener('click', () => setTab(b.dataset.tab, true));
    b.addEventListener('keydown', (e) => {
      if (e.key === 'ArrowRight' || e.key === 'ArrowLeft') {
        const tabs = ['system', 'processes', 'history', 'events'];
        const next = tabs[(tabs.indexOf(state.tab) + (e.key === 'ArrowRight' ? 1 : tabs.length - 1)) % tabs.length];
        setTab(next, true);
        $(`tab-${next}`).focus();
        e.preventDefault();
      }
    });
  }
  const search = $('search');
  // The URL follows the search a moment later: replaceState costs a few
  // milliseconds, too much to pay on every keystroke of a 50 ms budget.
  let urlTimer = 0;
  const flushURL = () => {
    clearTimeout(urlTimer);
    urlTimer = 0;
    writeURL(false);
  };
  search.addEventListener('input', () => {
    state.q = search.value;
    view.setQuery(state.q);
    clearTimeout(urlTimer);
    urlTimer = setTimeout(flushURL, 200);
  });
  window.addEventListener('pagehide', flushURL);
  search.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') {
      if (search.value) {
        search.value = '';
        search.dispatchEvent(new Event('input'));
      } else view.focus();
      e.preventDefault();
    } else if (e.key === 'ArrowDown' || e.key === 'Enter') {
      view.focus();
      e.preventDefault();
    }
  });
  $('sort').addEventListener('change', (e) => setSort(e.target.value, undefined));
  $('view-tree').addEventListener('click', () => setView('tree'));
  $('view-flat').addEventListener('click', () => setView('flat'));
  $('groupby').addEventListener('change', (e) => setGroup(e.target.value));
  $('expand-all').addEventListener('click', () => view.expandAll());
  $('past-live').addEventListener('click', () => backToLive());
  $('past-prev').addEventListener('click', () => stepPast(-1));
  $('past-next').addEventListener('click', () => stepPast(1));
  $('collapse-all').addEventListener('click', () => view.collapseAll());
  document.addEventListener('keydown', (e) => {
    const t = e.target;
    const typing = t instanceof HTMLInputElement || t instanceof HTMLSelectElement || t instanceof HTMLTextAreaElement;
    // defaultPrevented: the process list used the key (h, j, k, l...).
    if (typing || e.ctrlKey || e.metaKey || e.altKey || e.defaultPrevented || $('help').open) return;
    if (e.key === '/') {
      if (!state.host) {
        $('fleet-filter').focus();
      } else {
        setTab('processes', false);
        search.focus();
        search.select();
      }
      e.preventDefault();
    } else if (e.key === 'r') {
      if (state.host) refresh();
      else loadHosts();
    } else if (e.key === '?') {
      $('help').showModal();
      e.preventDefault();
    } else if (e.key === '+' && state.host && state.tab === 'processes') {
      view.expandAll();
      e.preventDefault();
    } else if (e.key === '-' && state.host && state.tab === 'processes') {
      view.collapseAll();
      e.preventDefault();
    } else if (e.key === 'g') {
      selectHost('', true);
    } else if (e.key === 'h' && !t.closest?.('#grid')) {
      openDrawer();
      $('host-filter').focus();
      e.preventDefault();
    }
  });
  bindHostSwitcher();
  bindTheme();
  bindDrawer();
  bindSortableHead();
  for (const id of ['brand', 'nav-fleet']) {
    $(id).addEventListener('click', (e) => {
      if (e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
      e.preventDefault();
      selectHost('', true);
    });
  }
  window.addEventListener('popstate', applyURL);
  window.addEventListener('resize', () => {
    if (state.tab === 'history') hist.resized();
  });
  window.addEventListener('pagehide', () => view.flushSave());
  // Relative times ("12s ago") age even when nothing new arrives.
  // Hidden, the page neither draws them nor asks for the host list (it
  // does both when it shows again).
  setInterval(() => {
    if (document.visibilityState === 'hidden') return;
    renderHosts();
    renderMeta();
    if (!state.host && state.fleet) fleetView.render();
  }, 5000);
  // Online/offline needs a fresh host list now and then; with Auto off the
  // page fetches nothing by itself, as before.
  state.hostsTimer = setInterval(() => {
    if (!state.auto) return;
    if (document.visibilityState === 'hidden') state.missed = true;
    else loadHosts();
  }, HOSTS_EVERY_MS);
}

// ---- host switcher, theme, phone drawer, sortable headers ----

function bindHostSwitcher() {
  const f = $('host-filter');
  f.addEventListener('input', () => renderHosts());
  f.addEventListener('keydown', (e) => {
    const first = $('hosts').querySelector('button.host');
    if (e.key === 'Enter' && first) {
      first.click();
      e.preventDefault();
    } else if (e.key === 'ArrowDown' && first) {
      first.focus();
      e.preventDefault();
    } else if (e.key === 'Escape') {
      if (f.value) {
        f.value = '';
        renderHosts();
      } else closeDrawer();
      e.preventDefault();
    }
  });
  // Up and down move between hosts in the list.
  $('hosts').addEventListener('keydown', (e) => {
    if (e.key !== 'ArrowDown' && e.key !== 'ArrowUp') return;
    const all = [...$('hosts').querySelectorAll('button.host')];
    const i = all.indexOf(document.activeElement);
    if (i < 0) return;
    if (e.key === 'ArrowUp' && i === 0) f.focus();
    else all[Math.min(all.length - 1, Math.max(0, i + (e.key === 'ArrowDown' ? 1 : -1)))].focus();
    e.preventDefault();
  });
}

const THEMES = ['auto', 'light', 'dark'];

/** applyTheme: "auto" follows the OS (prefers-color-scheme); the others win over it. */
function applyTheme() {
  const t = state.theme || 'auto';
  if (t === 'auto') delete document.documentElement.dataset.theme;
  else document.documentElement.dataset.theme = t;
  const b = $('theme');
  b.textContent = `Theme: ${t}`;
  b.title = t === 'auto' ? 'Colours follow the system setting; click for light, then dark' : `Colours: ${t}, remembered; click for the next (auto follows the system)`;
  hist.resized?.();
}

function bindTheme() {
  applyTheme();
  $('theme').addEventListener('click', () => {
    state.theme = THEMES[(THEMES.indexOf(state.theme || 'auto') + 1) % THEMES.length];
    if (state.theme === 'auto') state.theme = undefined;
    savePrefs();
    applyTheme();
    if (state.tab === 'history' && state.host) hist.load();
  });
}

// On phones (<= 600 px, fleet.css) the host list is a drawer.
function openDrawer() {
  $('app').classList.add('drawer-open');
  $('drawer-btn').setAttribute('aria-expanded', 'true');
  $('scrim').hidden = !matchMedia('(max-width: 600px)').matches;
}

function closeDrawer() {
  if (!$('app').classList.contains('drawer-open')) return;
  $('app').classList.remove('drawer-open');
  $('drawer-btn').setAttribute('aria-expanded', 'false');
  $('scrim').hidden = true;
}

function bindDrawer() {
  $('drawer-btn').addEventListener('click', () => {
    if ($('app').classList.contains('drawer-open')) closeDrawer();
    else {
      openDrawer();
      $('host-filter').focus();
    }
  });
  $('scrim').addEventListener('click', closeDrawer);
  $('sidebar').addEventListener('keydown', (e) => {
    if (e.key === 'Escape') closeDrawer();
  });
}

/**
 * bindSortableHead makes the process list's column headers reachable by
 * Tab and sortable with Enter or Space, as a click sorts them. The headers
 * are redrawn by procview.js, so they are marked up whenever they change.
 */
function bindSortableHead() {
  const head = $('grid-head');
  const mark = () => {
    for (const c of head.querySelectorAll('[data-sort]')) {
      if (c.tabIndex !== 0) c.tabIndex = 0;
    }
  };
  mark();
  new MutationObserver(mark).observe(head, { childList: true });
  head.addEventListener('keydown', (e) => {
    const c = e.target.closest('[data-sort]');
    if (!c || (e.key !== 'Enter' && e.key !== ' ')) return;
    c.click();
    e.preventDefault();
    e.stopPropagation();
  });
}

onReachability(markReachable);
readPrefs();
bind();
applyURL();
loadHosts();
