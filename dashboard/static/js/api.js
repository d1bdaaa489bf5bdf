// The Admin API client: every call carries the key the user typed, kept
// in sessionStorage only (gone when the browser tab closes).

const KEY = 'apisix-dashboard-key';

export const session = {
  key: () => sessionStorage.getItem(KEY),
  role: 'viewer',
  info: null,
  login(key) { sessionStorage.setItem(KEY, key); },
  logout() { sessionStorage.removeItem(KEY); session.info = null; },
  canWrite: () => session.role !== 'viewer',
};

// call sends one request and returns {status, ok, data}; data is the
// decoded JSON body, or {error_msg: text} for a body that is not JSON.
export async function call(method, url, body) {
  const headers = {};
  const key = session.key();
  if (key !== null) headers['X-API-KEY'] = key;
  let payload;
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  let r;
  try {
    r = await fetch(url, {method, headers, body: payload, cache: 'no-store', credentials: 'omit'});
  } catch (e) {
    return {status: 0, ok: false, data: {error_msg: 'network error: ' + e.message}};
  }
  const text = await r.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = {error_msg: text.replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').trim()}; }
  }
  return {status: r.status, ok: r.ok, data};
}

// admin calls the Admin API: admin('GET', 'stream_routes', {page: 1}).
export function admin(method, path, query, body) {
  const qs = query ? '?' + new URLSearchParams(query) : '';
  return call(method, '/apisix/admin/' + path + qs, body);
}

// errorText is the text of a failed answer, as the Admin API put it:
// "failed to check token: invalid method for role viewer".
export function errorText(res) {
  const d = res.data || {};
  let msg = d.error_msg || d.message || d.error || ('HTTP ' + res.status);
  if (d.description) msg += ': ' + d.description;
  return msg;
}

// fieldOf finds the form field an APISIX validation error is about:
// 'property "remote_addr" validation failed: ...' names remote_addr, a
// nested 'property "timeout" validation failed: property "send" is
// required' names timeout.send when the form has it, else timeout.
export function fieldOf(msg, names) {
  const path = [...msg.matchAll(/property "([^"]+)" validation failed/g)].map((m) => m[1]);
  const req = msg.match(/property "([^"]+)" is required/);
  const candidates = [];
  if (req) candidates.push([...path, req[1]].join('.'));
  for (let i = path.length; i > 0; i--) candidates.push(path.slice(0, i).join('.'));
  if (/upstream id/i.test(msg)) candidates.push('upstream_id');
  if (/service id/i.test(msg)) candidates.push('service_id');
  if (/\bsnis?\b/.test(msg) && !path.length) candidates.push('snis');
  return candidates.find((c) => names.includes(c)) || null;
}
