// bench-group.mjs: CPU time of building the model for 5,000 processes,
// grouped by unit (groupedModel) against the plain tree (buildModel), and
// of the whole page pipeline (totals, sort by them, groups, hot paths, the
// open rows) for both. The two alternate in one process so they meet the
// same conditions; CPU time (process.cpuUsage), not wall time.
//
//   node web/tests/bench-group.mjs [passes]
import { bigProcesses } from './fixtures.mjs';
import { buildModel, groupedModel, sortSiblings, flatten, hotPaths } from '../ui/static/js/tree.js';

const passes = Math.max(5, Math.min(500, Number(process.argv[2]) || 40));
// ~60 services and 12 containers, kernel threads without a unit.
const procs = bigProcesses(5000).map((p) => {
  if (p.ppid === 2 || p.pid <= 2) return p;
  const k = p.pid % 73;
  return k < 12 ? { ...p, unit: `docker-${k}.scope`, container_id: String(k).padStart(64, 'c') } : { ...p, unit: `svc-${k % 60}.service`, read_bytes_per_sec: p.pid % 1000 };
});
const cpuMs = (f) => {
  const t0 = process.cpuUsage();
  f();
  const d = process.cpuUsage(t0);
  return (d.user + d.system) / 1000;
};
const page = (m) => {
  sortSiblings(m, 'cpu', undefined, true);
  const hot = hotPaths(m, 3);
  flatten(m, (i, d) => (i < 0 ? hot.group[-i - 1] === 1 : m.procs[i]._group ? hot.proc[i] === 1 : d === 0 || hot.proc[i] === 1), null);
};
const runs = { build: [], grouped: [], pagePlain: [], pageGrouped: [] };
for (let k = 0; k < passes; k++) {
  runs.build.push(cpuMs(() => buildModel(procs)));
  runs.grouped.push(cpuMs(() => groupedModel(procs, 'unit', false)));
  runs.pagePlain.push(cpuMs(() => page(buildModel(procs))));
  runs.pageGrouped.push(cpuMs(() => page(groupedModel(procs, 'unit', false))));
}
const median = (a) => a.slice(1).sort((x, y) => x - y)[Math.floor((a.length - 1) / 2)];
for (const [k, v] of Object.entries(runs)) console.log(`${k}: median ${median(v).toFixed(1)} ms CPU over ${passes} passes`);
