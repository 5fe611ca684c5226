// Unit tests of the tree logic (web/ui/static/js/tree.js), run by node
// directly: no browser needed, so these run even where Chromium is missing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  buildModel, sortSiblings, search, flatten, flatList, highlightParts, procKey,
  ROOT_CYCLE, ROOT_SELF_PARENT, ROOT_MISSING_PARENT, ROOT_NORMAL,
} from '../ui/static/js/tree.js';

const P = (pid, ppid, name = `p${pid}`, extra = {}) => ({ pid, ppid, name, cpu_percent: 0, memory_mb: 0, ...extra });
const all = () => true;
const pidsOf = (m, rows) => Array.from(rows.idx.subarray(0, rows.count), (i) => m.procs[i].pid);

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
