// tree.js: the process tree as data, with no DOM. Everything here is pure so
// node's test runner checks it directly (web/tests/tree.test.mjs) and the
// browser only renders what it returns.
//
// Processes come from hosts we do not control: PPID cycles, pid == ppid and
// parents missing from the snapshot all happen (API.md accepts them). Every
// walk here is iterative and visits each process a bounded number of times,
// so no input can hang the page or lose a process: a process whose parent
// cannot be used becomes a root, and the reason is kept for the detail panel.

/** Why a process is a root. */
export const ROOT_NORMAL = 0; // ppid 0 (or a pid with no parent by design)
export const ROOT_MISSING_PARENT = 1; // ppid names a process not in the snapshot
export const ROOT_SELF_PARENT = 2; // pid == ppid
export const ROOT_CYCLE = 3; // following ppid leads back here: cycle broken here

const collator = (a, b) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Stable identity of a process across snapshots: pid alone is reused by the
 * kernel, pid + start time is not.
 */
export function procKey(p) {
  return p.create_time ? `${p.pid}@${p.create_time}` : `${p.pid}`;
}

/**
 * buildModel turns one snapshot's process list into a tree.
 * @param {Array<object>} procs as returned by /api/v1/snapshots/{id}/processes
 */
export function buildModel(procs) {
  const n = procs.length;
  const index = new Map();
  for (let i = 0; i < n; i++) {
    // Duplicate pids are rejected at ingest; if one slipped through, the
    // first wins as a parent and the second still shows (as a root or child).
    if (!index.has(procs[i].pid)) index.set(procs[i].pid, i);
  }
  const parent = new Int32Array(n).fill(-1);
  const rootReason = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const p = procs[i];
    const j = index.get(p.ppid);
    if (j === undefined) {
      if (p.ppid !== 0 && p.ppid !== p.pid) rootReason[i] = ROOT_MISSING_PARENT;
      if (p.ppid === p.pid) rootReason[i] = ROOT_SELF_PARENT;
    } else if (j === i) {
      rootReason[i] = ROOT_SELF_PARENT;
    } else {
      parent[i] = j;
    }
  }
  // Break cycles: walk up from each unvisited process, marking the path.
  // Reaching a process already on this path means a cycle; it becomes a
  // root, so the rest of the cycle hangs below it and nothing is lost.
  const state = new Uint8Array(n); // 0 unvisited, 1 on current path, 2 done
  const path = [];
  for (let i = 0; i < n; i++) {
    if (state[i] !== 0) continue;
    let c = i;
    while (c !== -1 && state[c] === 0) {
      state[c] = 1;
      path.push(c);
      c = parent[c];
    }
    if (c !== -1 && state[c] === 1) {
      parent[c] = -1;
      rootReason[c] = ROOT_CYCLE;
    }
    for (let k = 0; k < path.length; k++) state[path[k]] = 2;
    path.length = 0;
  }
  const children = new Array(n);
  for (let i = 0; i < n; i++) children[i] = [];
  const roots = [];
  for (let i = 0; i < n; i++) {
    if (parent[i] === -1) roots.push(i);
    else children[parent[i]].push(i);
  }
  const keys = new Array(n);
  for (let i = 0; i < n; i++) keys[i] = procKey(procs[i]);
  const keyIndex = new Map();
  for (let i = 0; i < n; i++) if (!keyIndex.has(keys[i])) keyIndex.set(keys[i], i);
  // The lowercased search haystacks are made by the first search, not here:
  // most snapshots (a live view refreshing) are never searched.
  return { procs, n, parent, children, roots, rootReason, hay: null, keys, keyIndex, index, tot: null, kids: null, sortedBy: null };
}

/**
 * nextModel is buildModel for the next snapshot of a live host. Most
 * snapshots hold the same processes in the same order with new numbers:
 * then the tree (parents, children in their last sorted order, keys) is
 * the previous one's, and only what depends on the numbers (totals, the
 * order, groups) is computed again; sorting lists that are still in order
 * is one pass. Any other change builds from scratch.
 * @param prev the model shown, or null
 */
export function nextModel(prev, procs) {
  if (!sameShape(prev, procs)) return buildModel(procs);
  const texts = sameTexts(prev.procs, procs);
  return {
    ...prev,
    procs,
    hay: texts ? prev.hay : null,
    tot: null,
    kids: null,
    sortedBy: null,
    groups: undefined,
    groupOf: undefined,
    groupIndex: undefined,
    rootKids: undefined,
  };
}

// sameShape: the same processes (pid, parent, start, name, ghost or not)
// at the same indexes, so every structure built from those still holds.
function sameShape(prev, procs) {
  if (!prev || prev.groupedBy || prev.n !== procs.length || prev.n === 0) return false;
  const old = prev.procs;
  for (let i = 0; i < procs.length; i++) {
    const a = old[i];
    const b = procs[i];
    if (a.pid !== b.pid || a.ppid !== b.ppid || a.create_time !== b.create_time || a.name !== b.name || !a._exited !== !b._exited) return false;
  }
  return true;
}

// sameTexts: the search haystacks (user, command line) still hold.
function sameTexts(old, procs) {
  for (let i = 0; i < procs.length; i++) {
    if (old[i].username !== procs[i].username || old[i].cmdline !== procs[i].cmdline) return false;
  }
  return true;
}

// haystacks lowercases names, users and command lines once per snapshot, so
// each keystroke costs one pass of indexOf and no allocation.
function haystacks(model) {
  if (model.hay) return model.hay;
  const { n, procs } = model;
  const nameL = new Array(n);
  const userL = new Array(n);
  const cmdL = new Array(n);
  for (let i = 0; i < n; i++) {
    const p = procs[i];
    nameL[i] = String(p.name ?? '').toLowerCase();
    userL[i] = p.username ? String(p.username).toLowerCase() : '';
    cmdL[i] = p.cmdline ? String(p.cmdline).toLowerCase() : '';
  }
  model.hay = { nameL, userL, cmdL };
  return model.hay;
}

// Comparators read sort keys from arrays made once per sort: a property
// lookup by a variable name on every comparison costs several times more.
const numeric = (field, desc) => (procs) => {
  const v = new Float64Array(procs.length);
  for (let i = 0; i < procs.length; i++) v[i] = Number(procs[i][field]) || 0;
  const sign = desc ? -1 : 1;
  return (a, b) => (v[a] !== v[b] ? sign * (v[a] - v[b]) : procs[a].pid - procs[b].pid);
};
// optional reads a rate that may be absent (I/O the kernel did not show):
// an absent value sorts below 0, so "no I/O" and "unknown" stay apart.
const optional = (field, desc) => (procs) => {
  const v = new Float64Array(procs.length);
  for (let i = 0; i < procs.length; i++) v[i] = ioValue(procs[i], field);
  const sign = desc ? -1 : 1;
  return (a, b) => (v[a] !== v[b] ? sign * (v[a] - v[b]) : procs[a].pid - procs[b].pid);
};

/** ioValue is a process's rate of one I/O field, or -1 when it was not sent. */
export function ioValue(p, field) {
  const x = p[field];
  if (x === undefined || x === null || x === '') return -1;
  const n = Number(x);
  return Number.isFinite(n) && n >= 0 ? n : -1;
}

const textual = (field, desc) => (procs) => {
  const v = new Array(procs.length);
  for (let i = 0; i < procs.length; i++) v[i] = String(procs[i][field] ?? '').toLowerCase();
  const sign = desc ? -1 : 1;
  return (a, b) => {
    const c = collator(v[a], v[b]);
    return c !== 0 ? sign * c : procs[a].pid - procs[b].pid;
  };
};

/** Sort keys, the field they read and their natural direction. */
export const SORTS = {
  cpu: { field: 'cpu_percent', kind: numeric, desc: true },
  mem: { field: 'memory_mb', kind: numeric, desc: true },
  pid: { field: 'pid', kind: numeric, desc: false },
  ppid: { field: 'ppid', kind: numeric, desc: false },
  name: { field: 'name', kind: textual, desc: false },
  user: { field: 'username', kind: textual, desc: false },
  threads: { field: 'num_threads', kind: numeric, desc: true },
  status: { field: 'status', kind: textual, desc: false },
  start: { field: 'create_time', kind: textual, desc: true },
  read: { field: 'read_bytes_per_sec', kind: optional, desc: true },
  write: { field: 'write_bytes_per_sec', kind: optional, desc: true },
};

/** isTotalKey: keys whose tree order follows the subtree total. */
export const isTotalKey = (key) => key === 'cpu' || key === 'mem' || key === 'read' || key === 'write';

/** totalOf is the subtree total array a total key sorts by. */
export function totalOf(tot, key) {
  if (key === 'mem') return tot.mem;
  if (key === 'read') return tot.rd;
  if (key === 'write') return tot.wr;
  return tot.cpu;
}

/**
 * comparator returns (a, b) => order for process indexes.
 * @param {string} key one of SORTS
 * @param {boolean|undefined} desc undefined means the key's natural direction
 * @param {boolean} byTotal cpu and mem compare subtree totals (tree view)
 */
export function comparator(model, key, desc, byTotal = false) {
  const s = SORTS[key] || SORTS.cpu;
  const d = desc === undefined ? s.desc : desc;
  if (byTotal && isTotalKey(key)) {
    const v = totalOf(subtreeTotals(model), key);
    const sign = d ? -1 : 1;
    const procs = model.procs;
    return (a, b) => (v[a] !== v[b] ? sign * (v[a] - v[b]) : procs[a].pid - procs[b].pid);
  }
  return s.kind(s.field, d)(model.procs);
}

/**
 * sortSiblings orders every children list and the roots in place. In the
 * tree (byTotal) a parent sorts by its subtree's CPU or memory, so a busy
 * child lifts its whole branch: sorted by CPU, the loop hidden under an
 * idle shell shows at the top, not after every 2 % process.
 */
export function sortSiblings(model, key, desc, byTotal = false) {
  const cmp = comparator(model, key, desc, byTotal);
  model.roots.sort(cmp);
  for (let i = 0; i < model.n; i++) if (model.children[i].length > 1) model.children[i].sort(cmp);
  model.kids = null;
  model.sortedBy = { key, desc, byTotal };
}

/**
 * subtreeTotals sums CPU and memory of each process and its descendants
 * (once per snapshot, O(n), no recursion). Processes marked _exited (ghost
 * rows of "what changed") count 0: they no longer use anything.
 * Read and write rates (rd, wr) sum what was sent; a branch where no
 * process sent one totals -1 (unknown, sorted below 0), not 0.
 * @returns {{cpu: Float64Array, mem: Float64Array, rd: Float64Array, wr: Float64Array, size: Int32Array}}
 */
export function subtreeTotals(model) {
  if (model.tot) return model.tot;
  const { n, procs, parent, roots, children } = model;
  const cpu = new Float64Array(n);
  const mem = new Float64Array(n);
  const size = new Int32Array(n);
  const rd = new Float64Array(n).fill(-1);
  const wr = new Float64Array(n).fill(-1);
  // Parents before children (breadth first from the roots); summing in
  // reverse order then adds every child into its parent once.
  const order = new Int32Array(n);
  let len = 0;
  for (const r of roots) order[len++] = r;
  for (let k = 0; k < len; k++) {
    const ch = children[order[k]];
    for (let j = 0; j < ch.length; j++) order[len++] = ch[j];
  }
  for (let k = len - 1; k >= 0; k--) {
    const i = order[k];
    const p = procs[i];
    if (!p._exited) {
      cpu[i] += Number(p.cpu_percent) || 0;
      mem[i] += Number(p.memory_mb) || 0;
      const r = ioValue(p, 'read_bytes_per_sec');
      const w = ioValue(p, 'write_bytes_per_sec');
      if (r >= 0) rd[i] = Math.max(rd[i], 0) + r;
      if (w >= 0) wr[i] = Math.max(wr[i], 0) + w;
    }
    size[i] += 1;
    const up = parent[i];
    if (up !== -1) {
      cpu[up] += cpu[i];
      mem[up] += mem[i];
      size[up] += size[i];
      if (rd[i] >= 0) rd[up] = Math.max(rd[up], 0) + rd[i];
      if (wr[i] >= 0) wr[up] = Math.max(wr[up], 0) + wr[i];
    }
  }
  model.tot = { cpu, mem, rd, wr, size };
  return model.tot;
}

/** Siblings sharing a name are grouped from this many on. */
export const GROUP_MIN = 5;

/**
 * arrange makes the display list of every parent: siblings sorted, and
 * runs of GROUP_MIN or more siblings with one name (120 containerd-shim,
 * 12 chromium renderers) folded into one group row that sums them. Groups
 * sit where their sum sorts (CPU, memory) or where their first member
 * would (other keys). Call after sortSiblings; flatten uses the result
 * when there is no search.
 *
 * Rows of a group are encoded as negative indexes: -(g + 1).
 */
export function arrange(model) {
  if (model.kids) return model;
  const { n, procs, children, roots } = model;
  const tot = subtreeTotals(model);
  const key = model.sortedBy ? model.sortedBy.key : 'cpu';
  const s = SORTS[key] || SORTS.cpu;
  const desc = model.sortedBy && model.sortedBy.desc !== undefined ? model.sortedBy.desc : s.desc;
  const totalKey = isTotalKey(key);
  const groups = [];
  const groupOf = new Int32Array(n).fill(-1);
  const kids = new Array(n);
  const byName = new Map();
  const one = (parentIdx, list) => {
    if (list.length < GROUP_MIN) return list;
    byName.clear();
    for (const c of list) {
      const nm = procs[c].name;
      const e = byName.get(nm);
      if (e) e.push(c);
      else byName.set(nm, [c]);
    }
    let any = false;
    for (const members of byName.values()) if (members.length >= GROUP_MIN) any = true;
    if (!any) return list;
    const items = [];
    const val = [];
    const pos = [];
    const seen = new Set();
    for (let k = 0; k < list.length; k++) {
      const c = list[k];
      const members = byName.get(procs[c].name);
      if (members.length < GROUP_MIN) {
        items.push(c);
        val.push(totalOf(tot, key)[c]);
        pos.push(k);
        continue;
      }
      if (seen.has(members)) continue;
      seen.add(members);
      const g = groups.length;
      let cpu = 0;
      let mem = 0;
      let ownCpu = 0;
      let ownMem = 0;
      let size = 0;
      let rd = -1;
      let wr = -1;
      let ownRd = -1;
      let ownWr = -1;
      for (const m of members) {
        if (tot.rd[m] >= 0) rd = Math.max(rd, 0) + tot.rd[m];
        if (tot.wr[m] >= 0) wr = Math.max(wr, 0) + tot.wr[m];
        const r = procs[m]._exited ? -1 : ioValue(procs[m], 'read_bytes_per_sec');
        const w = procs[m]._exited ? -1 : ioValue(procs[m], 'write_bytes_per_sec');
        if (r >= 0) ownRd = Math.max(ownRd, 0) + r;
        if (w >= 0) ownWr = Math.max(ownWr, 0) + w;
        groupOf[m] = g;
        cpu += tot.cpu[m];
        mem += tot.mem[m];
        size += tot.size[m];
        if (!procs[m]._exited) {
          ownCpu += Number(procs[m].cpu_percent) || 0;
          ownMem += Number(procs[m].memory_mb) || 0;
        }
      }
      const pkey = parentIdx === -1 ? '' : model.keys[parentIdx];
      groups.push({ parent: parentIdx, name: procs[c].name, members, cpu, mem, ownCpu, ownMem, rd, wr, ownRd, ownWr, size, key: `g:${pkey}:${procs[c].name}` });
      items.push(-(g + 1));
      val.push(key === 'cpu' ? cpu : key === 'mem' ? mem : key === 'read' ? rd : wr);
      pos.push(k);
    }
    const order = items.map((_, k) => k);
    const sign = desc ? -1 : 1;
    order.sort((a, b) => {
      if (totalKey && val[a] !== val[b]) return sign * (val[a] - val[b]);
      return pos[a] - pos[b];
    });
    return order.map((k) => items[k]);
  };
  for (let i = 0; i < n; i++) kids[i] = one(i, children[i]);
  model.rootKids = one(-1, roots);
  model.kids = kids;
  model.groups = groups;
  model.groupOf = groupOf;
  model.groupIndex = new Map(groups.map((g, k) => [g.key, k]));
  return model;
}

/**
 * hotPaths marks what must be open for the top `top` processes by own CPU
 * and by own memory to show: their ancestors and the groups they are in.
 * The default tree opens these, so the culprits are on screen without a
 * click. Needs arrange (groups).
 * @returns {{proc: Uint8Array, group: Uint8Array, top: number[]}}
 */
export function hotPaths(model, top = 3) {
  arrange(model);
  const { n, procs, parent, groupOf, groups } = model;
  const proc = new Uint8Array(n);
  const group = new Uint8Array(groups.length);
  const picks = [];
  for (const field of ['cpu_percent', 'memory_mb']) {
    const best = topBy(procs, field, top);
    for (const i of best) if (!picks.includes(i)) picks.push(i);
  }
  for (const i of picks) {
    for (let c = i, g = 0; c !== -1 && g <= n; c = parent[c], g++) {
      if (c !== i) proc[c] = 1;
      if (groupOf[c] !== -1) group[groupOf[c]] = 1;
    }
  }
  return { proc, group, top: picks };
}

// topBy returns the indexes of the k largest positive values of a field
// (ties to the lower pid), skipping exited ghosts: one pass, no full sort.
function topBy(procs, field, k) {
  const out = [];
  for (let i = 0; i < procs.length; i++) {
    const p = procs[i];
    const v = Number(p[field]) || 0;
    if (v <= 0 || p._exited) continue;
    if (out.length === k) {
      const last = procs[out[k - 1]];
      const lv = Number(last[field]) || 0;
      if (v < lv || (v === lv && p.pid > last.pid)) continue;
      out.pop();
    }
    let j = out.length;
    while (j > 0) {
      const q = procs[out[j - 1]];
      const qv = Number(q[field]) || 0;
      if (qv > v || (qv === v && q.pid < p.pid)) break;
      j--;
    }
    out.splice(j, 0, i);
  }
  return out;
}

/**
 * search marks the processes matching q and their ancestors.
 * A query of digits also matches pid and ppid exactly; text matches name,
 * user and command line, case-insensitively.
 * @returns null for an empty query, else {match, anc, count}
 */
export function search(model, q) {
  q = String(q ?? '').trim().toLowerCase();
  if (!q) return null;
  const n = model.n;
  const match = new Uint8Array(n);
  const anc = new Uint8Array(n); // 1: some descendant matches
  const num = /^\d+$/.test(q) ? Number(q) : -1;
  const { procs, parent } = model;
  const { nameL, userL, cmdL } = haystacks(model);
  let count = 0;
  for (let i = 0; i < n; i++) {
    if (procs[i]._group) continue; // a unit/container row is shown as the way to its matches
    if (
      nameL[i].includes(q) ||
      (num >= 0 && (procs[i].pid === num || procs[i].ppid === num)) ||
      (userL[i] && userL[i].includes(q)) ||
      (cmdL[i] && cmdL[i].includes(q))
    ) {
      match[i] = 1;
      count++;
    }
  }
  // Mark ancestors; stop at the first already marked, so each process is
  // marked once and the whole pass is O(n) (parent has no cycles left).
  for (let i = 0; i < n; i++) {
    if (!match[i]) continue;
    let c = parent[i];
    while (c !== -1 && !anc[c]) {
      anc[c] = 1;
      c = parent[c];
    }
  }
  return { q, num, match, anc, count };
}

/**
 * flatten lists the visible rows of the tree in display order.
 * @param model from buildModel (siblings already sorted)
 * @param isOpen (i, depth) => whether process i shows its children
 * @param found result of search, or null
 * @returns {{idx: Int32Array, depth: Int32Array, count: number}}
 */
export function flatten(model, isOpen, found) {
  // Without a search, the display lists of arrange() (with groups) when
  // it ran; a search lists the plain children (matches are few).
  const grouped = !found && model.kids;
  const nGroups = grouped ? model.groups.length : 0;
  const n = model.n;
  const cap = n + nGroups;
  const idx = new Int32Array(cap);
  const depth = new Int32Array(cap);
  let count = 0;
  const children = grouped ? model.kids : model.children;
  const roots = grouped ? model.rootKids : model.roots;
  const groups = grouped ? model.groups : null;
  const keep = found ? (i) => found.match[i] || found.anc[i] : null;
  const stack = [];
  for (let r = roots.length - 1; r >= 0; r--) {
    if (!keep || keep(roots[r])) stack.push(roots[r], 0);
  }
  // The tree is acyclic (buildModel broke cycles), so each process is pushed
  // at most once; the count bound is a second guard, not the logic.
  while (stack.length > 0 && count < cap) {
    const d = stack.pop();
    const i = stack.pop();
    idx[count] = i;
    depth[count] = d;
    count++;
    const ch = i < 0 ? groups[-i - 1].members : children[i];
    if (ch.length === 0 || !isOpen(i, d)) continue;
    // During a search, a process on the way to a match shows only the
    // branches leading to matches; a match opened by hand shows everything.
    const filter = found && found.anc[i];
    for (let k = ch.length - 1; k >= 0; k--) {
      const c = ch[k];
      if (filter && !keep(c)) continue;
      stack.push(c, d + 1);
    }
  }
  return { idx, depth, count };
}

/** flatList lists processes (all, or only matches) sorted by one column. */
export function flatList(model, key, desc, found) {
  const out = [];
  for (let i = 0; i < model.n; i++) if (!found || found.match[i]) out.push(i);
  out.sort(comparator(model, key, desc));
  const idx = Int32Array.from(out);
  return { idx, depth: new Int32Array(idx.length), count: idx.length };
}

/** depthOf counts ancestors of i (bounded by n: the tree has no cycles). */
export function depthOf(model, i) {
  let d = 0;
  for (let c = model.parent[i]; c !== -1 && d < model.n; c = model.parent[c]) d++;
  return d;
}

/**
 * highlightParts splits text around case-insensitive occurrences of q:
 * [[text, isMatch], ...]. The caller builds text nodes and <mark> elements
 * from it, never HTML. When lowercasing changes the length (some non-ASCII
 * letters do), offsets would not line up, so the text stays unmarked.
 */
export function highlightParts(text, q) {
  text = String(text ?? '');
  if (!q) return [[text, false]];
  const lower = text.toLowerCase();
  if (lower.length !== text.length) return [[text, false]];
  const parts = [];
  let from = 0;
  for (let guard = 0; guard < text.length + 1; guard++) {
    const at = lower.indexOf(q, from);
    if (at < 0) break;
    if (at > from) parts.push([text.slice(from, at), false]);
    parts.push([text.slice(at, at + q.length), true]);
    from = at + q.length;
  }
  if (from < text.length || parts.length === 0) parts.push([text.slice(from), false]);
  return parts;
}

/** Fields processes can be grouped by, and the name of the group of those without it. */
export const GROUP_BY = {
  unit: { field: 'unit', none: '(no unit)' },
  container: { field: 'container_id', none: '(no container)' },
};

/**
 * groupedModel builds the tree of processes grouped by unit or container:
 * one synthetic root per value (marked _group, a negative pid, key
 * `grp:<by>:<value>`) holding its processes. In the tree (flat false) a
 * process stays under its parent when the parent is in the same group,
 * else it hangs from the group; flat, every process hangs from its group.
 * The rest of this file (totals, sorting by them, folding, search) then
 * works unchanged, and a group's totals are its subtree's.
 * Rewired processes are copies keeping the real ppid in _ppid.
 * @returns the model, with groupedBy, hasField (some process had the field), hasUnit and nGroups
 */
export function groupedModel(procs, by, flat) {
  const g = GROUP_BY[by];
  const field = g.field;
  const byPid = new Map();
  for (const p of procs) if (!byPid.has(p.pid)) byPid.set(p.pid, p);
  const gid = new Map(); // value -> synthetic pid
  const synth = [];
  let hasField = false;
  const valueOf = (p) => {
    const v = p[field];
    if (typeof v === 'string' && v !== '') {
      hasField = true;
      return v;
    }
    return '';
  };
  // hasUnit tells "no cgroup data" from "no container on this host".
  let hasUnit = false;
  const out = new Array(procs.length);
  for (let k = 0; k < procs.length; k++) {
    const p = procs[k];
    if (!hasUnit && typeof p.unit === 'string' && p.unit !== '') hasUnit = true;
    const v = valueOf(p);
    let gp = gid.get(v);
    if (gp === undefined) {
      gp = -(synth.length + 1);
      gid.set(v, gp);
      synth.push({ pid: gp, ppid: 0, name: v === '' ? g.none : v, _group: by, _value: v });
    }
    const parent = flat ? undefined : byPid.get(p.ppid);
    const keep = parent !== undefined && parent !== p && valueOf(parent) === v;
    out[k] = keep ? p : { ...p, ppid: gp, _ppid: p.ppid };
  }
  const model = buildModel(out.concat(synth));
  for (let i = procs.length; i < model.n; i++) {
    const key = `grp:${by}:${model.procs[i]._value}`;
    model.keys[i] = key;
    model.keyIndex.set(key, i);
  }
  model.groupedBy = by;
  model.hasField = hasField;
  model.hasUnit = hasUnit;
  model.nGroups = synth.length;
  return model;
}
