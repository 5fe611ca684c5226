// bench-tree.mjs: CPU time of the tree logic for 5,000 processes, the
// pipeline before issue 13 (build, sort siblings by own values, list the
// open rows) against the one the page runs now (plus branch totals, the
// tree sorted by them, groups of repeated names, hot paths). CPU time
// (process.cpuUsage), not wall time, so other load on a shared machine
// weighs less; both alternate in one process so they meet the same
// conditions.
//
//   node web/tests/bench-tree.mjs [passes]
import { bigProcesses } from './fixtures.mjs';
import { buildModel, sortSiblings, flatten, subtreeTotals, arrange, hotPaths } from '../ui/static/js/tree.js';

const passes = Math.max(5, Math.min(500, Number(process.argv[2]) || 40));
const procs = bigProcesses(5000);
const cpuMs = (f) => {
  const t0 = process.cpuUsage();
  f();
  const d = process.cpuUsage(t0);
  return (d.user + d.system) / 1000;
};
const before = () => {
  const m = buildModel(procs);
  sortSiblings(m, 'cpu');
  return flatten(m, (i, d) => d === 0, null).count;
};
const now = () => {
  const m = buildModel(procs);
  sortSiblings(m, 'cpu', undefined, true);
  subtreeTotals(m);
  arrange(m);
  const hot = hotPaths(m, 3);
  return flatten(m, (i, d) => (i < 0 ? hot.group[-i - 1] === 1 : d === 0 || hot.proc[i] === 1), null).count;
};
const a = [];
const b = [];
for (let k = 0; k < passes; k++) {
  a.push(cpuMs(before));
  b.push(cpuMs(now));
}
const med = (xs) => xs.slice(5).sort((x, y) => x - y)[Math.floor((xs.length - 5) / 2)]; // 5 warm-up passes left out
console.log(`5,000 processes, ${passes} passes (median CPU ms after 5 warm-up passes):`);
console.log(`  before issue 13 (build, sort, list):                         ${med(a).toFixed(2)} ms`);
console.log(`  now (+ branch totals, sort by them, groups, hot paths):      ${med(b).toFixed(2)} ms`);
