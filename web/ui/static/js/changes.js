// changes.js: "what changed", offered where the question is asked: on the
// Processes tab (in the last minute / 10 minutes / hour before the snapshot
// shown) and in the time-travel banner (since the moment shown, up to the
// latest). The server ranks and groups the movers (GET
// /api/v1/snapshots/{id}/diff, docs/api.md); this draws them, marks
// started processes in the tree and adds the exited ones as ghost rows.

import { h, num, bytes, localTime, duration } from './util.js';
import { getJSON } from './api.js';

const enc = encodeURIComponent;
const diffURL = (id, against) => `api/v1/snapshots/${enc(id)}/diff?against=${enc(against)}&limit=1000`;
const atURL = (host, t) => `api/v1/snapshots/at?hostname=${enc(host)}&time=${enc(t)}`;
const firstURL = (host, from, to) => `api/v1/hosts/${enc(host)}/snapshots?from=${enc(from)}&to=${enc(to)}&limit=1`;

// [seconds, option, title phrase]
const WINDOWS = [['', 'What changed?', ''], ['60', '…in 1 min', 'in the minute'], ['600', '…in 10 min', 'in the 10 minutes'], ['3600', '…in 1 hour', 'in the hour']];
const SHOWN = 12; // movers listed before "more"
const BANNER_TOP = 3; // movers named in the banner

const pct = (v) => `${v > 0 ? '+' : v < 0 ? '−' : ''}${num(Math.abs(v), 1)} %`;
const mib = (v) => `${v > 0 ? '+' : v < 0 ? '−' : ''}${bytes(Math.abs(v) * 1048576)}`;
const who = (m) => `${m.name === '' ? '(no name)' : m.name}${m.count > 1 ? ` ×${m.count}` : ''}`;

/**
 * summary: "3 started, 2 exited; top: java −40.0 %, chromium ×12 +24.0 %".
 * Pure (the node tests check it).
 */
export function summary(d, top = BANNER_TOP) {
  const parts = [`${d.started_total} started, ${d.exited_total} exited`];
  const movers = Array.isArray(d.movers) ? d.movers.slice(0, top) : [];
  if (movers.length) {
    parts.push(`top: ${movers.map((m) => `${who(m)} ${Math.abs(m.cpu_delta) >= 0.05 ? pct(m.cpu_delta) : mib(m.memory_delta)}`).join(', ')}`);
  }
  return parts.join('; ');
}

/**
 * resolveBase finds the snapshot to compare with: the one at or before t
 * (Unix seconds), or, on a host younger than that, its first snapshot.
 */
export async function resolveBase(host, t, toTime) {
  // The host's first snapshot first: asking for a moment before it would
  // be a 404, which browsers log as an error.
  const list = await getJSON(firstURL(host, 0, (toTime + 1).toFixed(3)));
  if (!Array.isArray(list) || list.length === 0) throw new Error('no snapshot is stored before this one');
  if (Date.parse(list[0].captured_at) / 1000 > t) return { meta: list[0], first: true };
  return { meta: await getJSON(atURL(host, t.toFixed(3))), first: false };
}

export class Changes {
  /**
   * @param view the ProcView (marks and selection)
   * @param cb {host(), backToLive()}
   */
  constructor(view, cb) {
    this.view = view;
    this.cb = cb;
    this.mode = null; // {win: seconds} or {baseId, baseMeta}
    this.shown = null; // snapshot meta shown in the tree
    this.seq = 0;
    this.pastSeq = 0;
    this.expanded = false;
    this.build();
  }

  build() {
    const toolbar = document.querySelector('#panel-processes .toolbar');
    this.sel = h('select', { id: 'changes-win', 'aria-label': 'What changed in the processes', title: 'What changed before the snapshot shown: started (new), exited, the biggest movers' },
      WINDOWS.map(([v, label]) => h('option', { value: v }, label)));
    this.sel.addEventListener('change', () => this.setWindow(this.sel.value));
    const count = document.getElementById('match-count');
    if (toolbar && count) count.after(this.sel);
    this.panel = h('section', { class: 'changes', id: 'changes', 'aria-label': 'What changed', 'aria-live': 'polite', hidden: true });
    const procs = document.querySelector('#panel-processes .procs');
    if (procs) procs.before(this.panel);
    this.pastEl = h('span', { class: 'past-changes', id: 'past-changes' });
    const live = document.getElementById('past-live');
    if (live) live.before(this.pastEl);
  }

  setWindow(v) {
    const win = Number(v);
    this.sel.value = v;
    if (!win) {
      this.off();
      return;
    }
    this.mode = { win };
    this.update();
  }

  off() {
    this.mode = null;
    this.seq++;
    this.sel.value = '';
    this.panel.hidden = true;
    this.panel.replaceChildren();
    this.view.setMarks(null);
  }

  /** shownChanged: the tree now shows this snapshot (live or past). */
  shownChanged(meta) {
    if (!meta || (this.shown && this.shown.snapshot_id === meta.snapshot_id)) return;
    this.shown = meta;
    if (this.mode) this.update();
  }

  /**
   * pastChanged: the time-travel banner shows past (null: live). The
   * banner says what changed from that moment to latest.
   */
  async pastChanged(past, latest) {
    const seq = ++this.pastSeq;
    this.pastEl.replaceChildren();
    // "Since that moment" compares with the live tree: going to the past
    // again ends it (the window modes follow the snapshot shown instead).
    if (past && this.mode && this.mode.baseId) this.off();
    if (!past || !latest || past.snapshot_id === latest.snapshot_id) return;
    try {
      const d = await getJSON(diffURL(latest.snapshot_id, past.snapshot_id));
      if (seq !== this.pastSeq) return;
      this.pastEl.replaceChildren(
        h('span', { class: 'past-sum' }, `Since this moment: ${summary(d)}.`), ' ',
        h('button', {
          type: 'button',
          id: 'past-changes-show',
          title: 'Back to the live tree with what changed since this moment marked (new, exited) and listed',
          onclick: () => this.sinceMoment(past),
        }, 'Show in the live tree'));
    } catch (err) {
      if (seq !== this.pastSeq) return;
      this.pastEl.replaceChildren(h('span', { class: 'muted' }, `(what changed since: ${err.message})`));
    }
  }

  /** sinceMoment compares a past snapshot with the latest, in the live tree. */
  sinceMoment(meta) {
    this.mode = { baseId: meta.snapshot_id, baseMeta: meta };
    this.sel.value = '';
    this.shown = null;
    this.cb.backToLive();
  }

  async update() {
    const to = this.shown;
    const mode = this.mode;
    const host = this.cb.host();
    if (!mode || !to || !host) return;
    if (mode.baseMeta && mode.baseMeta.hostname !== undefined && mode.baseMeta.hostname !== host) {
      this.off(); // the moment compared with belongs to the host left
      return;
    }
    const seq = ++this.seq;
    this.panel.hidden = false;
    if (!this.panel.firstChild) this.panel.replaceChildren(h('p', { class: 'note' }, 'Comparing…'));
    try {
      let base = mode.baseMeta;
      let first = false;
      const toTime = Date.parse(to.captured_at) / 1000;
      if (mode.win) {
        const r = await resolveBase(host, toTime - mode.win, toTime);
        base = r.meta;
        first = r.first;
      }
      if (seq !== this.seq) return;
      if (!base || base.snapshot_id === to.snapshot_id) {
        this.view.setMarks(null);
        this.render(null, base, to, first);
        return;
      }
      const d = await getJSON(diffURL(to.snapshot_id, base.snapshot_id));
      if (seq !== this.seq) return;
      // Marks belong to the newer snapshot of the two: the one shown.
      this.view.setMarks(d.to === to.snapshot_id ? d : null);
      this.render(d, base, to, first);
    } catch (err) {
      if (seq !== this.seq) return;
      this.view.setMarks(null);
      this.panel.replaceChildren(this.head('What changed'), h('p', { class: 'note form-error' }, `Cannot compare: ${err.message}`));
    }
  }

  head(title, sum) {
    return h('div', { class: 'changes-head' },
      h('h2', null, title),
      sum ? h('span', { class: 'sum' }, sum) : null,
      h('button', { type: 'button', class: 'close', 'aria-label': 'Close what changed', title: 'Close (the tree loses its new/exited marks)', onclick: () => this.off() }, '×'));
  }

  render(d, base, to, first) {
    const since = base ? `${localTime(base.captured_at)} (${duration(Math.max(0, (Date.parse(to.captured_at) - Date.parse(base.captured_at)) / 1000))} before)` : '';
    const title = this.mode.win
      ? `What changed ${(WINDOWS.find(([v]) => Number(v) === this.mode.win) || WINDOWS[2])[2]} before ${localTime(to.captured_at)}`
      : `What changed since ${localTime(base.captured_at)}`;
    if (!d) {
      this.panel.replaceChildren(this.head(title), h('p', { class: 'note' }, first || !base
        ? 'This is the host\'s first snapshot: there is nothing before it to compare with.'
        : 'Both ends fall on the same snapshot: nothing changed.'));
      return;
    }
    const s = `${d.started_total} started (${pct(d.started_cpu_percent)} CPU, ${mib(d.started_memory_mb)}), ${d.exited_total} exited (${pct(-d.exited_cpu_percent)} CPU, ${mib(-d.exited_memory_mb)})`;
    const movers = Array.isArray(d.movers) ? d.movers : [];
    const shown = this.expanded ? movers : movers.slice(0, SHOWN);
    const item = (m) => {
      const badge = m.kind === 'started' ? h('span', { class: 'badge badge-new' }, 'new')
        : m.kind === 'exited' ? h('span', { class: 'badge badge-exited' }, 'exited') : null;
      const dir = (v) => (v > 0 ? ' up' : v < 0 ? ' down' : '');
      return h('li', { dataset: { kind: m.kind, name: m.name } },
        h('button', {
          type: 'button', class: 'link who', title: `${who(m)}: PIDs ${m.pids.join(', ')}${m.count > m.pids.length ? ', …' : ''}. Select it in the tree`,
          onclick: () => this.view.selectPid(m.pids[0]),
        }, who(m)),
        badge,
        h('span', { class: `d${dir(m.cpu_delta)}`, title: `CPU % of one core: ${num(m.cpu_before, 1)} → ${num(m.cpu_after, 1)}` }, pct(m.cpu_delta)),
        h('span', { class: `d${dir(m.memory_delta)}`, title: `memory: ${bytes(m.memory_before * 1048576)} → ${bytes(m.memory_after * 1048576)}` }, mib(m.memory_delta)));
    };
    const notes = [];
    if (first) notes.push(h('p', { class: 'note' }, `The host is younger than that: compared with its first snapshot, ${since}.`));
    else notes.push(h('p', { class: 'note' }, `From ${since} (snapshot ${d.from}) to snapshot ${d.to}. Ranked by impact: CPU change plus memory change as a share of RAM; repeats grouped.`));
    const kids = [
      this.head(title, s),
      movers.length ? h('ol', { class: 'movers' }, shown.map(item)) : h('p', { class: 'note' }, 'No process changed its CPU or memory.'),
      movers.length > SHOWN ? h('button', { type: 'button', class: 'link more', onclick: () => { this.expanded = !this.expanded; this.render(d, base, to, first); } },
        this.expanded ? 'fewer' : `${movers.length - SHOWN} more`) : null,
      ...notes,
    ];
    this.panel.replaceChildren(...kids.filter(Boolean));
  }
}
