// The dashboard's HTTP interface (share/doc/dashboard.md): JSON in and out, the CSRF header on
// every POST/DELETE, 401 -> the sign-in page, 502 from an unreachable oned -> the banner.

export const session = { user: '', uid: -1, admin: false, csrf: '' };

// Set by app.js: what a 401 or an oned that cannot be reached does to the page.
export const hooks = {
  unauthorized: () => {},
  onedDown: (_message) => {},
  onedUp: () => {},
  streamLost: () => {},
};

export class ApiError extends Error {
  constructor(status, message, onedDown = false) {
    super(message);
    this.status = status;
    this.onedDown = onedDown;
  }
}

export function setSession(answer) {
  session.user = String(answer.user ?? '');
  session.uid = Number(answer.uid ?? -1);
  session.admin = Boolean(answer.admin);
  session.csrf = String(answer.csrf ?? '');
}

export function clearSession() {
  setSession({});
}

async function body(response) {
  if (response.status === 204) return {};
  const text = await response.text();
  if (!text) return {};
  try {
    return JSON.parse(text);
  } catch {
    return { error: `${response.status} ${response.statusText}: not JSON` };
  }
}

// fetch + JSON; answers the decoded body, throws ApiError with the server's message.
export async function request(method, path, data, { quiet401 = false } = {}) {
  const headers = { Accept: 'application/json' };
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
  if (data !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(data);
  }
  if (method !== 'GET' && session.csrf) headers['X-CSRF-Token'] = session.csrf;
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, `cannot reach the dashboard (${err.message})`);
  }
  const answer = await body(response);
  const message = answer.error || `${response.status} ${response.statusText}`;
  if (response.status === 401 && !quiet401) hooks.unauthorized(message);
  if (response.status === 502 && answer.oned_down) hooks.onedDown(message);
  if (!response.ok) throw new ApiError(response.status, message, Boolean(answer.oned_down));
  if (method === 'GET') hooks.onedUp();
  return answer;
}

export const get = (path) => request('GET', path);
export const post = (path, data = {}) => request('POST', path, data);
