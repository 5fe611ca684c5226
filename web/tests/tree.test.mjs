// Unit tests of the tree logic (web/ui/static/js/tree.js), run by node
// directly: no browser needed, so these run even where Chromium is missing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  buildModel, nextModel, sortSiblings, search, flatten, flatList, highlightParts, procKey, subtreeTotals, arrange, hotPaths,
  groupedModel, ioValue,
  ROOT_CYCLE, ROOT_SELF_PARENT, ROOT_MISSING_PARENT, ROOT_NORMAL,
} from '../ui/static/js/tree.js';

const P = (pid, ppid, name = `p${pid}`, extra = {}) => ({ pid, ppid, name, cpu_percent: 0, memory_mb: 0, ...extra });
const all = () => true;
const pidsOf = (m, rows) => Array.from(rows.idx.subarray(0, rows.count), (i) => (i < 0 ? `group:${m.groups[-i - 1].name}` : m.procs[i].pid));

test('tree by ppid, roots open by the caller', () => {
  const m = buildModel([P(1, 0), P(2, 1), P(3, 1), P(4, 2)]);
  sortSiblings(m, 'pid');
  const rows = flatten(m, all, null);
  assert.deepEqual(pidsOf(m, rows), [1, 2, 4, 3]);
  assert.deepEqual(Array.from(rows.depth.subarray(0, rows.count)), [0, 1, 2, 1]);
  const closed = flatten(m, (i, d) => d === 0, null);
  assert.deepEqual(pidsOf(m, closed), [1, 2, 3]);
});

test('ppid cycles, pid == ppid and missing parents become roots, nothing lost', () => {
  const procs = [
    P(10, 11), P(11, 12), P(12, 10), // three-process cycle
    P(20, 20), // its own parent
    P(30, 999), P(31, 30), // parent not in the snapshot, with a child
    P(40, 41), P(41, 40), // two-process cycle
    P(1, 0),
  ];
  const m = buildModel(procs);
  sortSiblings(m, 'pid');
  const rows = flatten(m, all, null);
  assert.equal(rows.count, procs.length);
  assert.deepEqual(pidsOf(m, rows).sort((a, b) => a - b), procs.map((p) => p.pid).sort((a, b) => a - b));
  const reason = (pid) => m.rootReason[m.index.get(pid)];
  const roots = m.roots.map((i) => m.procs[i].pid).sort((a, b) => a - b);
  assert.equal(reason(20), ROOT_SELF_PARENT);
  assert.equal(reason(30), ROOT_MISSING_PARENT);
  assert.equal(reason(1), ROOT_NORMAL);
  // exactly one member of each cycle is cut, and it is marked as such
  assert.equal([10, 11, 12].filter((p) => roots.includes(p)).length, 1);
  assert.equal([40, 41].filter((p) => roots.includes(p)).length, 1);
  assert.equal([10, 11, 12].filter((p) => reason(p) === ROOT_CYCLE).length, 1);
  assert.ok(!roots.includes(31));
});

test('a 100,000-long ppid chain and a 100,000 cycle do not overflow the stack', () => {
  const n = 100000;
  const chain = [];
  for (let i = 1; i <= n; i++) chain.push(P(i, i - 1));
  const m = buildModel(chain);
  const rows = flatten(m, all, null);
  assert.equal(rows.count, n);
  assert.equal(rows.depth[n - 1], n - 1);
  const cyc = [];
  for (let i = 1; i <= n; i++) cyc.push(P(i, i === n ? 1 : i + 1));
  const mc = buildModel(cyc);
  assert.equal(mc.roots.length, 1);
  assert.equal(flatten(mc, all, null).count, n);
  const f = search(mc, `p${n}`);
  assert.equal(f.count, 1);
});

test('search keeps ancestors, counts matches, matches pid/ppid/user/cmdline', () => {
  const m = buildModel([
    P(1, 0, 'systemd'),
    P(2, 1, 'sshd', { username: 'root' }),
    P(3, 2, 'bash', { username: 'alice', cmdline: '/bin/bash --login' }),
    P(4, 1, 'nginx', { username: 'www-data' }),
    P(5, 4, 'nginx', { username: 'www-data', cmdline: 'nginx: worker process' }),
    P(6, 1, 'cron'),
  ]);
  sortSiblings(m, 'pid');
  const f = search(m, 'BASH');
  assert.equal(f.count, 1);
  const rows = flatten(m, (i) => f.anc[i] === 1, f);
  assert.deepEqual(pidsOf(m, rows), [1, 2, 3]); // cron, nginx collapsed away
  assert.equal(search(m, 'nginx').count, 2);
  assert.equal(search(m, 'worker').count, 1); // command line
  assert.equal(search(m, 'alice').count, 1); // user
  assert.equal(search(m, '4').count, 2); // pid 4 and its child ppid 4
  assert.equal(search(m, '  '), null); // blank: no search at all
  assert.equal(search(m, 'zzz').count, 0);
  assert.equal(flatten(m, all, search(m, 'zzz')).count, 0);
});

test('search: an opened match shows all its children', () => {
  const m = buildModel([P(1, 0, 'init'), P(2, 1, 'target'), P(3, 2, 'child-a'), P(4, 2, 'child-b')]);
  sortSiblings(m, 'pid');
  const f = search(m, 'target');
  assert.deepEqual(pidsOf(m, flatten(m, (i) => f.anc[i] === 1, f)), [1, 2]);
  assert.deepEqual(pidsOf(m, flatten(m, all, f)), [1, 2, 3, 4]);
});

test('sorting siblings keeps the tree; flat list sorts everything', () => {
  const m = buildModel([
    P(1, 0, 'init', { cpu_percent: 1 }),
    P(2, 1, 'b', { cpu_percent: 5, memory_mb: 1 }),
    P(3, 1, 'a', { cpu_percent: 9, memory_mb: 3 }),
    P(4, 2, 'c', { cpu_percent: 50, memory_mb: 2 }),
  ]);
  sortSiblings(m, 'cpu');
  assert.deepEqual(pidsOf(m, flatten(m, all, null)), [1, 3, 2, 4]);
  sortSiblings(m, 'name');
  assert.deepEqual(pidsOf(m, flatten(m, all, null)), [1, 3, 2, 4]);
  sortSiblings(m, 'pid', true);
  assert.deepEqual(pidsOf(m, flatten(m, all, null)), [1, 3, 2, 4]);
  sortSiblings(m, 'pid', false);
  assert.deepEqual(pidsOf(m, flatten(m, all, null)), [1, 2, 4, 3]);
  assert.deepEqual(pidsOf(m, flatList(m, 'cpu', undefined, null)), [4, 3, 2, 1]);
  assert.deepEqual(pidsOf(m, flatList(m, 'mem', false, null)), [1, 2, 4, 3]);
  assert.deepEqual(pidsOf(m, flatList(m, 'name', undefined, search(m, 'a'))), [3]);
});

test('highlight splits on every case-insensitive occurrence, never loses text', () => {
  const f = (text, q, want) => assert.deepEqual(highlightParts(text, q), want);
  f('nginx', '', [['nginx', false]]);
  f('NgInx-nginx', 'nginx', [['NgInx', true], ['-', false], ['nginx', true]]);
  f('<img src=x onerror=alert(1)>', 'img', [['<', false], ['img', true], [' src=x onerror=alert(1)>', false]]);
  f('aaa', 'a', [['a', true], ['a', true], ['a', true]]);
  f('İstanbul', 'i', [['İstanbul', false]]); // lowercasing changes the length
});

test('process keys use the start time when sent', () => {
  assert.equal(procKey({ pid: 7 }), '7');
  assert.equal(procKey({ pid: 7, create_time: '2026-01-01T00:00:00Z' }), '7@2026-01-01T00:00:00Z');
});

// ---- culprits: subtree totals, grouping, hot paths (issue 13) ----

test('subtree totals sum each branch; exited ghosts count nothing', () => {
  const m = buildModel([
    P(1, 0, 'init', { cpu_percent: 1, memory_mb: 10 }),
    P(2, 1, 'sh', { cpu_percent: 0, memory_mb: 2 }),
    P(3, 2, 'loop', { cpu_percent: 92, memory_mb: 1 }),
    P(4, 2, 'loop', { cpu_percent: 91, memory_mb: 1 }),
    P(5, 1, 'gone', { cpu_percent: 50, memory_mb: 500, _exited: true }),
    P(6, 9999, 'orphan', { cpu_percent: 3, memory_mb: 4 }),
  ]);
  const t = subtreeTotals(m);
  const at = (pid) => m.index.get(pid);
  assert.equal(t.cpu[at(2)], 183);
  assert.equal(t.cpu[at(1)], 184);
  assert.equal(t.mem[at(1)], 14);
  assert.equal(t.size[at(1)], 5);
  assert.equal(t.cpu[at(5)], 0);
  assert.equal(t.cpu[at(6)], 3);
  // 100,000-deep chain: no recursion
  const chain = [];
  for (let i = 1; i <= 100000; i++) chain.push(P(i, i - 1, 'x', { cpu_percent: 1 }));
  assert.equal(subtreeTotals(buildModel(chain)).cpu[0], 100000);
});

test('tree sort by CPU uses subtree totals: a busy loop lifts its idle parent', () => {
  const m = buildModel([
    P(1, 0, 'init'),
    P(10, 1, 'busy-app', { cpu_percent: 2 }),
    P(20, 1, 'shell', { cpu_percent: 0 }),
    P(21, 20, 'loop', { cpu_percent: 92 }),
  ]);
  sortSiblings(m, 'cpu', undefined, true);
  assert.deepEqual(pidsOf(m, flatten(m, all, null)), [1, 20, 21, 10]);
  sortSiblings(m, 'cpu', false, true); // ascending
  assert.deepEqual(pidsOf(m, flatten(m, all, null)), [1, 10, 20, 21]);
  sortSiblings(m, 'cpu'); // own values (flat semantics)
  assert.deepEqual(pidsOf(m, flatten(m, all, null)), [1, 10, 20, 21]);
});

test('repeated siblings fold into one group row with sums, placed by the sum', () => {
  const procs = [P(1, 0, 'init'), P(2, 1, 'containerd', { cpu_percent: 1 }), P(3, 1, 'sshd', { cpu_percent: 5 })];
  for (let k = 0; k < 120; k++) procs.push(P(100 + k, 2, 'containerd-shim', { cpu_percent: 0.5, memory_mb: 10 }));
  procs.push(P(400, 2, 'other', { cpu_percent: 70 }));
  procs.push(P(500, 100, 'app', { cpu_percent: 3, memory_mb: 100 })); // under the first shim
  for (let k = 0; k < 4; k++) procs.push(P(600 + k, 3, 'sshd-child')); // 4 < GROUP_MIN: no group
  const m = buildModel(procs);
  sortSiblings(m, 'cpu', undefined, true);
  arrange(m);
  assert.equal(m.groups.length, 1);
  const g = m.groups[0];
  assert.equal(g.name, 'containerd-shim');
  assert.equal(g.members.length, 120);
  assert.equal(g.ownCpu, 60);
  assert.equal(g.cpu, 63); // members' subtrees: the app below a shim counts
  assert.equal(g.mem, 1300);
  assert.equal(g.size, 121);
  const c = m.index.get(2);
  // other 70 > shims 63 (sum, not one shim's 0.5)
  assert.deepEqual(m.kids[c].map((x) => (x < 0 ? `group:${m.groups[-x - 1].name}` : m.procs[x].pid)), [400, 'group:containerd-shim']);
  // closed group: one row; open: its members one level deeper
  const closed = flatten(m, (i) => i >= 0, null);
  assert.equal(closed.count, 3 + 1 + 1 + 4); // init, containerd, sshd, other, group, 4 sshd-child
  const open = flatten(m, all, null);
  assert.equal(open.count, procs.length + 1);
  const gr = Array.from(open.idx.subarray(0, open.count)).indexOf(-1);
  assert.equal(open.depth[gr], 2);
  assert.equal(open.depth[gr + 1], 3);
  // sorted by name, the group sits where its first member would
  sortSiblings(m, 'name', undefined, true);
  arrange(m);
  assert.deepEqual(m.kids[c].map((x) => (x < 0 ? 'group' : m.procs[x].name)), ['group', 'other']);
  assert.equal(m.groups[0].key, `g:${m.keys[c]}:containerd-shim`);
});

test('hot paths open the ancestors and groups of the top CPU and memory processes', () => {
  const procs = [P(1, 0, 'init'), P(2, 1, 'sh'), P(3, 2, 'bash'), P(4, 3, 'loop', { cpu_percent: 92 })];
  procs.push(P(5, 1, 'idle'), P(6, 5, 'idle-child'));
  procs.push(P(7, 1, 'pool'));
  for (let k = 0; k < 6; k++) procs.push(P(70 + k, 7, 'worker', { memory_mb: k === 3 ? 900 : 1 }));
  procs.push(P(80, 73, 'leak', { memory_mb: 5000 }));
  procs.push(P(90, 1, 'ghost', { cpu_percent: 500, _exited: true }));
  const m = buildModel(procs);
  sortSiblings(m, 'cpu', undefined, true);
  const hot = hotPaths(m, 1);
  const on = (pid) => hot.proc[m.index.get(pid)] === 1;
  assert.deepEqual([1, 2, 3, 7, 73].map(on), [true, true, true, true, true]);
  assert.deepEqual([4, 5, 80, 90].map(on), [false, false, false, false]);
  assert.equal(hot.group[0], 1, 'the group holding the leak opens');
  assert.deepEqual(hot.top.map((i) => m.procs[i].pid), [4, 80]);
  const rows = flatten(m, (i, d) => (i < 0 ? hot.group[-i - 1] === 1 : d === 0 || hot.proc[i] === 1), null);
  const pids = pidsOf(m, rows);
  assert.ok(pids.includes(4) && pids.includes(80), 'both culprits visible');
  assert.ok(!pids.includes(6), 'other branches stay closed');
});

test('gauge levels and the RAM %RAM is a share of', async () => {
  const { level, ramOf, THRESHOLDS } = await import('../ui/static/js/gauge.js');
  assert.deepEqual(THRESHOLDS, { cpu: [50, 90], ram: [20, 50] }); // docs/ui.md says so
  assert.deepEqual([0, 49.9, 50, 89.9, 90, 400, NaN].map((v) => level('cpu', v)), ['', '', 'warn', 'warn', 'crit', 'crit', '']);
  assert.deepEqual([19.9, 20, 50].map((v) => level('ram', v)), ['', 'warn', 'crit']);
  assert.equal(ramOf([], { system: { memory: { total_bytes: 32 * 1024 * 1024 * 1024 } } }), 32768);
  assert.equal(ramOf([{ memory_mb: 100, memory_percent: 0.5 }, { memory_mb: 1000, memory_percent: 5 }], null), 20000);
  assert.equal(ramOf([{ memory_mb: 100 }], {}), 0);
});

test('I/O totals: absent rates stay unknown (-1), 0 is a rate, sums skip the unknown', () => {
  const m = buildModel([
    P(1, 0, 'a', { read_bytes_per_sec: 0 }),
    P(2, 1, 'b', { read_bytes_per_sec: 100, write_bytes_per_sec: 5 }),
    P(3, 1, 'c'),
    P(4, 3, 'd'),
  ]);
  const t = subtreeTotals(m);
  assert.deepEqual(Array.from(t.rd), [100, 100, -1, -1]);
  assert.deepEqual(Array.from(t.wr), [5, 5, -1, -1]);
  assert.equal(ioValue({ read_bytes_per_sec: null }, 'read_bytes_per_sec'), -1);
  assert.equal(ioValue({ read_bytes_per_sec: 0 }, 'read_bytes_per_sec'), 0);
  // the tree by write totals: b's branch, then c's unknown one
  sortSiblings(m, 'write', undefined, true);
  assert.deepEqual(m.children[0].map((i) => m.procs[i].pid), [2, 3]);
  const flat = flatList(m, 'read');
  assert.deepEqual(pidsOf(m, flat), [2, 1, 3, 4]);
});

test('groupedModel: one synthetic root per unit; a parent in another unit is replaced by the group; flat hangs all from it', () => {
  const procs = [
    P(1, 0, 'systemd', { unit: 'init.scope' }),
    P(10, 1, 'nginx', { unit: 'nginx.service', cpu_percent: 1 }),
    P(11, 10, 'nginx', { unit: 'nginx.service', cpu_percent: 2 }),
    P(20, 1, 'bash'),
    P(21, 20, 'vim', { unit: 'nginx.service', cpu_percent: 4 }),
  ];
  const m = groupedModel(procs, 'unit', false);
  assert.equal(m.nGroups, 3);
  assert.ok(m.hasField);
  const g = (name) => m.procs.findIndex((p) => p._group && p.name === name);
  const ng = g('nginx.service');
  assert.deepEqual(m.children[ng].map((i) => m.procs[i].pid).sort(), [10, 21], 'vim hangs from the group: its parent is in none');
  assert.equal(m.procs[m.parent[m.index.get(11)]].pid, 10, 'a worker stays under its master');
  assert.equal(m.procs[m.index.get(21)]._ppid, 20, 'the real ppid is kept');
  assert.equal(m.keys[ng], 'grp:unit:nginx.service');
  const t = subtreeTotals(m);
  assert.equal(t.cpu[ng], 7);
  assert.equal(t.size[ng], 4);
  assert.ok(g('(no unit)') >= 0);
  const f = groupedModel(procs, 'unit', true);
  const fg = f.procs.findIndex((p) => p._group && p.name === 'nginx.service');
  assert.deepEqual(f.children[fg].map((i) => f.procs[i].pid).sort(), [10, 11, 21]);
  assert.equal(groupedModel(procs.map(({ unit, ...p }) => p), 'container', false).hasField, false);
  assert.deepEqual(procs[2], P(11, 10, 'nginx', { unit: 'nginx.service', cpu_percent: 2 }), 'the input is not changed');
});

test('search in a grouped model counts processes only; the group is the way to them', () => {
  const m = groupedModel([P(1, 0, 'systemd'), P(10, 1, 'nginx', { unit: 'nginx.service' }), P(11, 10, 'nginx', { unit: 'nginx.service' })], 'unit', false);
  const f = search(m, 'nginx');
  assert.equal(f.count, 2);
  const g = m.procs.findIndex((p) => p._group && p.name === 'nginx.service');
  assert.equal(f.match[g], 0);
  assert.equal(f.anc[g], 1);
});

// The view a live update shows: rows (pid, depth) and branch totals.
function liveView(m) {
  sortSiblings(m, 'cpu', undefined, true);
  const hot = hotPaths(m, 3);
  const rows = flatten(m, (i, d) => (i < 0 ? hot.group[-i - 1] === 1 : d === 0 || hot.proc[i] === 1), null);
  const tot = subtreeTotals(m);
  return {
    rows: pidsOf(m, rows),
    depth: Array.from(rows.depth.subarray(0, rows.count)),
    cpu: Array.from(tot.cpu),
    groups: m.groups.map((g) => `${g.name}:${g.members.length}:${g.cpu.toFixed(3)}`),
  };
}

test('nextModel: a live snapshot with the same processes reuses the tree and shows what a fresh build shows', () => {
  const base = [P(1, 0, 'init'), P(2, 1, 'sh', { cmdline: 'sh -c x' })];
  for (let k = 0; k < 6; k++) base.push(P(10 + k, 2, 'worker', { cpu_percent: k }));
  base.push(P(30, 1, 'db', { cpu_percent: 1, username: 'pg' }), P(31, 30, 'db-writer', { cpu_percent: 3 }));
  let m = buildModel(base);
  liveView(m);
  search(m, 'sh'); // the haystacks exist
  // New numbers, same processes: the order changes (the workers overtake db).
  const next = base.map((p) => ({ ...p, cpu_percent: p.name === 'worker' ? 20 + p.pid : p.cpu_percent }));
  const m2 = nextModel(m, next);
  assert.equal(m2.parent, m.parent, 'the parents are the previous model\'s');
  assert.equal(m2.keyIndex, m.keyIndex);
  assert.equal(m2.hay, m.hay, 'names, users and command lines did not change: the search haystacks stay');
  assert.equal(m2.procs, next);
  assert.equal(m2.tot, null, 'totals are summed again');
  assert.deepEqual(liveView(m2), liveView(buildModel(next)));
  assert.equal(liveView(m2).rows[1], 2, 'sh (the workers\' branch) now leads');
  // A changed command line keeps the tree but drops the haystacks.
  const cmd = next.map((p) => (p.pid === 2 ? { ...p, cmdline: 'sh -c y' } : p));
  const m3 = nextModel(m2, cmd);
  assert.equal(m3.parent, m.parent);
  assert.equal(m3.hay, null);
  assert.equal(search(m3, 'sh -c y').count, 1);
});

test('nextModel: another process, parent, name or order builds from scratch', () => {
  const base = [P(1, 0, 'init'), P(2, 1, 'a'), P(3, 1, 'b'), P(4, 3, 'c')];
  const m = buildModel(base);
  sortSiblings(m, 'pid');
  const cases = {
    started: [...base, P(5, 4, 'd')],
    exited: base.slice(0, 3),
    reparented: base.map((p) => (p.pid === 4 ? { ...p, ppid: 2 } : p)),
    renamed: base.map((p) => (p.pid === 3 ? { ...p, name: 'b2' } : p)),
    reordered: [base[0], base[2], base[1], base[3]],
    'pid reused': base.map((p) => (p.pid === 4 ? { ...p, create_time: '2026-12-01T00:00:00Z' } : p)),
    ghost: base.map((p) => (p.pid === 4 ? { ...p, _exited: true } : p)),
  };
  for (const [what, procs] of Object.entries(cases)) {
    const m2 = nextModel(m, procs);
    assert.notEqual(m2.parent, m.parent, what);
    sortSiblings(m2, 'pid');
    const fresh = buildModel(procs);
    sortSiblings(fresh, 'pid');
    assert.deepEqual(pidsOf(m2, flatten(m2, all, null)), pidsOf(fresh, flatten(fresh, all, null)), what);
  }
  assert.notEqual(nextModel(null, base).parent, m.parent);
  assert.equal(nextModel(buildModel([]), []).n, 0);
});
