// gauge.js: warning and critical levels of the process list's CPU and
// memory cells, and the host's RAM that %RAM is a share of. Pure, so node
// tests it (web/tests/tree.test.mjs). The thresholds are documented in
// docs/ui.md; change both together.

/** Levels: [warn, critical] from these values on. */
export const THRESHOLDS = {
  cpu: [50, 90], // % of one core (a branch total too: 90 is one core nearly busy)
  ram: [20, 50], // % of the host's RAM
};

/** level says '' (normal), 'warn' or 'crit' for a value of kind cpu or ram. */
export function level(kind, v) {
  const t = THRESHOLDS[kind];
  v = Number(v);
  if (!t || !Number.isFinite(v)) return '';
  if (v >= t[1]) return 'crit';
  if (v >= t[0]) return 'warn';
  return '';
}

const MiB = 1024 * 1024;

/**
 * ramOf returns the host's RAM in MiB: the snapshot's memory total when
 * known, else derived from a process that sends memory_percent (the
 * largest, for precision), else 0 (unknown: %RAM stays empty).
 */
export function ramOf(procs, meta) {
  const total = Number(meta && meta.system && meta.system.memory && meta.system.memory.total_bytes);
  if (Number.isFinite(total) && total > 0) return total / MiB;
  let best = null;
  for (const p of procs || []) {
    const pct = Number(p.memory_percent);
    const mb = Number(p.memory_mb);
    if (pct > 0 && mb > 0 && (!best || pct > best.pct)) best = { pct, mb };
  }
  return best ? best.mb / (best.pct / 100) : 0;
}
