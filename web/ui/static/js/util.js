// util.js: building DOM safely and formatting numbers.
//
// h() is the only way the UI makes elements: text children become text
// nodes, so a process named <img src=x onerror=...> is shown, never parsed.
// There is deliberately no way to pass HTML.

/**
 * h('div', {class: 'x', title: 't', onclick: fn}, 'text', child, ...)
 * Attribute values go through setAttribute (never 'style': the CSP forbids
 * style attributes; set element.style from script instead).
 */
export function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (k === 'class') el.className = v;
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, kids);
  return el;
}

function append(el, kids) {
  for (const k of kids) {
    if (k === undefined || k === null || k === false) continue;
    if (Array.isArray(k)) append(el, k);
    else if (k instanceof Node) el.appendChild(k);
    else el.appendChild(document.createTextNode(String(k)));
  }
}

const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** bytes formats a byte count in binary units: 1536 -> "1.5 KiB". */
export function bytes(n) {
  n = Number(n);
  if (!Number.isFinite(n) || n < 0) return '—';
  let u = 0;
  while (n >= 1024 && u < units.length - 1) {
    n /= 1024;
    u++;
  }
  return `${u === 0 ? n : n.toFixed(n >= 100 ? 0 : 1)} ${units[u]}`;
}

/** num formats a finite number with fixed decimals, else a dash. */
export function num(n, digits = 1) {
  n = Number(n);
  return Number.isFinite(n) ? n.toFixed(digits) : '—';
}

/** duration formats seconds as "3d 4h", "5h 12m", "4m 3s". */
export function duration(sec) {
  sec = Math.floor(Number(sec));
  if (!Number.isFinite(sec) || sec < 0) return '—';
  const d = Math.floor(sec / 86400);
  const hh = Math.floor((sec % 86400) / 3600);
  const m = Math.floor((sec % 3600) / 60);
  const s = sec % 60;
  if (d > 0) return `${d}d ${hh}h`;
  if (hh > 0) return `${hh}h ${m}m`;
  if (m > 0) return `${m}m ${s}s`;
  return `${s}s`;
}

/** ago says how long before now an RFC 3339 time was: "12s ago". */
export function ago(iso, now = Date.now()) {
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) return 'never';
  const s = Math.max(0, (now - t) / 1000);
  return `${duration(s)} ago`;
}

const two = (n) => String(n).padStart(2, '0');

/** localTime formats an RFC 3339 time as local "YYYY-MM-DD HH:MM:SS". */
export function localTime(iso) {
  const t = new Date(iso);
  if (!iso || Number.isNaN(t.getTime())) return '—';
  return `${t.getFullYear()}-${two(t.getMonth() + 1)}-${two(t.getDate())} ${two(t.getHours())}:${two(t.getMinutes())}:${two(t.getSeconds())}`;
}

/** clockTime is the local time of day "HH:MM:SS" of an RFC 3339 time or ms. */
export function clockTime(t) {
  const d = new Date(t);
  if (t === undefined || t === null || t === '' || Number.isNaN(d.getTime())) return '—';
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

/**
 * shortStart shows a process start as its age, short enough for a narrow
 * column: "45s", "12m", "5h 3m", "3d 4h" (the full time goes in a title).
 */
export function shortStart(iso, now = new Date()) {
  const t = Date.parse(iso);
  if (!iso || !Number.isFinite(t)) return '';
  const s = Math.max(0, (Number(now) - t) / 1000);
  if (s < 3600) return s < 60 ? `${Math.floor(s)}s` : `${Math.floor(s / 60)}m`;
  return duration(s);
}
