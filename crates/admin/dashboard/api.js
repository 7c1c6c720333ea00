// Requests to the admin service's JSON API.
import { state } from './state.js';

let sessionEnded = () => {};

/** What to do when the session ends under a request (a 401 outside /api/auth/). */
export function onSessionEnded(f) {
  sessionEnded = f;
}

export class ApiError extends Error {
  constructor(status, message, code) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function cookie(name) {
  for (const part of document.cookie.split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return decodeURIComponent(v.join('='));
  }
  return '';
}

/**
 * One JSON request. Requests of a signed-in page share an AbortController, so signing out
 * cancels whatever is still in flight instead of letting it come back as a 401.
 */
export async function api(method, path, body, opts) {
  const o = opts || {};
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && method !== 'HEAD') headers['X-CSRF-Token'] = cookie('streamhub_csrf');
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
      signal: o.signal === undefined ? state.abort.signal : o.signal,
    });
  } catch (e) {
    if (e.name === 'AbortError') throw new ApiError(0, 'cancelled', 'aborted');
    throw new ApiError(0, 'The admin service cannot be reached.', 'network');
  }
  let data = null;
  const text = await res.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch (e) {
      data = null;
    }
  }
  if (!res.ok) {
    const message = (data && data.error) || `${res.status} ${res.statusText}`;
    const err = new ApiError(res.status, message, data && data.code);
    if (res.status === 401 && state.me && !path.startsWith('/api/auth/')) sessionEnded();
    throw err;
  }
  return data;
}

/** The JSON data of a server-sent event, or null when it does not parse. */
export function parseEventData(e) {
  try {
    return JSON.parse(e.data);
  } catch (err) {
    return null;
  }
}
