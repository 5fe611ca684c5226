// api.js: the read API of API.md, relative to the page so the UI also works
// behind a reverse proxy that mounts it under a sub-path.

const TIMEOUT_MS = 15000;

/** ApiError carries the HTTP status and the server's {"error": ...} text. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

let reachListener = () => {};

/**
 * onReachability registers fn(ok) to hear, after every request, whether
 * the server answered: false when the network failed or a proxy said the
 * aggregator is gone (502, 503, 504), true for any other answer.
 */
export function onReachability(fn) {
  reachListener = fn;
}

/** UNREACHABLE is the message of a request the server never answered. */
export const UNREACHABLE = 'the server is unreachable';

/** getJSON fetches one endpoint; signal aborts it (e.g. on host switch). */
export async function getJSON(path, signal, timeoutMs = TIMEOUT_MS) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(new ApiError(0, `${UNREACHABLE} (no answer in ${timeoutMs / 1000} s)`)), timeoutMs);
  const onAbort = () => ctl.abort(signal.reason);
  if (signal) signal.addEventListener('abort', onAbort, { once: true });
  try {
    let res;
    try {
      res = await fetch(path, { signal: ctl.signal, headers: { Accept: 'application/json' }, cache: 'no-store' });
    } catch (err) {
      if (signal && signal.aborted) throw err;
      // fetch says "Failed to fetch" and nothing more: say what it means.
      reachListener(false);
      throw ctl.signal.aborted && ctl.signal.reason instanceof ApiError ? ctl.signal.reason : new ApiError(0, UNREACHABLE);
    }
    reachListener(![502, 503, 504].includes(res.status));
    if (!res.ok) {
      let msg = `${res.status} ${res.statusText}`;
      try {
        const body = await res.json();
        if (body && typeof body.error === 'string') msg = body.error;
      } catch {
        // not JSON: keep the status line
      }
      throw new ApiError(res.status, msg);
    }
    return await res.json();
  } finally {
    clearTimeout(timer);
    if (signal) signal.removeEventListener('abort', onAbort);
  }
}

const q = encodeURIComponent;

export const hostsURL = () => 'api/v1/hosts';
export const fleetURL = () => 'api/v1/fleet';
export const latestURL = (host) => `api/v1/snapshots/latest?hostname=${q(host)}`;
export const processesURL = (id) => `api/v1/snapshots/${q(id)}/processes`;
export const streamURL = (host) => (host ? `api/v1/stream?hostname=${q(host)}` : 'api/v1/stream');
export const processesSinceURL = (id, since) => `api/v1/snapshots/${q(id)}/processes?since=${q(since)}`;

/**
 * applyDelta rebuilds a snapshot's process list from the list of an older
 * snapshot (held) and the answer of processes?since= (docs/api.md): the
 * held rows by pid, those gone removed, those changed replaced or added,
 * in the order of `pids` when sent, else by ascending pid. Rows that did
 * not change are the held objects themselves. It returns null when the
 * answer does not fit what is held (the caller then fetches the list
 * whole), so what it returns is what the full answer would have been.
 */
export function applyDelta(held, d) {
  if (!Array.isArray(held) || !d || !Array.isArray(d.changed) || !Array.isArray(d.gone) || !Number.isSafeInteger(d.process_count)) return null;
  const byPid = new Map();
  for (const p of held) byPid.set(p.pid, p);
  if (byPid.size !== held.length) return null;
  for (const pid of d.gone) if (!byPid.delete(pid)) return null;
  for (const p of d.changed) {
    if (!p || !Number.isSafeInteger(p.pid)) return null;
    byPid.set(p.pid, p);
  }
  if (byPid.size !== d.process_count) return null;
  if (Array.isArray(d.pids)) {
    if (d.pids.length !== byPid.size) return null;
    const out = new Array(d.pids.length);
    for (let k = 0; k < d.pids.length; k++) {
      const p = byPid.get(d.pids[k]);
      if (p === undefined) return null;
      byPid.delete(d.pids[k]); // a pid listed twice is then missing
      out[k] = p;
    }
    return out;
  }
  // Ascending pids: the held list mostly is already, so this sort is
  // about one pass.
  return Array.from(byPid.values()).sort((a, b) => a.pid - b.pid);
}
