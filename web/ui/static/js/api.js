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

/** getJSON fetches one endpoint; signal aborts it (e.g. on host switch). */
export async function getJSON(path, signal) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(new Error('request timed out')), TIMEOUT_MS);
  const onAbort = () => ctl.abort(signal.reason);
  if (signal) signal.addEventListener('abort', onAbort, { once: true });
  try {
    const res = await fetch(path, { signal: ctl.signal, headers: { Accept: 'application/json' }, cache: 'no-store' });
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
export const latestURL = (host) => `api/v1/snapshots/latest?hostname=${q(host)}`;
export const processesURL = (id) => `api/v1/snapshots/${q(id)}/processes`;
export const streamURL = (host) => `api/v1/stream?hostname=${q(host)}`;
