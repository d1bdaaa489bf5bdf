// Live figures: /metrics (Prometheus text format) is polled every few
// seconds and turned into per-route rates; listeners get the new figures
// without any page reload.

// parseProm parses the Prometheus text exposition format into samples
// {name, labels, value}; comments and malformed lines are skipped.
export function parseProm(text) {
  const out = [];
  for (const line of text.split('\n')) {
    if (!line || line[0] === '#') continue;
    const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/);
    if (!m) continue;
    const labels = {};
    if (m[3]) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
      let l;
      while ((l = re.exec(m[3])) !== null) {
        labels[l[1]] = l[2].replace(/\\n/g, '\n').replace(/\\(["\\])/g, '$1');
      }
    }
    const special = {'+Inf': Infinity, '-Inf': -Infinity, 'NaN': NaN};
    const value = m[4] in special ? special[m[4]] : Number(m[4]);
    if (!Number.isNaN(value) || m[4] === 'NaN') out.push({name: m[1], labels, value});
  }
  return out;
}

// routeTotals sums the stream metrics by route id.
export function routeTotals(samples) {
  const by = new Map();
  const get = (id) => {
    let r = by.get(id);
    if (!r) { r = {active: 0, conns: 0, bytes: 0}; by.set(id, r); }
    return r;
  };
  for (const s of samples) {
    const id = s.labels.route;
    if (id === undefined) continue;
    switch (s.name) {
      case 'apisix_stream_active_connections': get(id).active += s.value; break;
      case 'apisix_stream_connection_total': get(id).conns += s.value; break;
      case 'apisix_stream_bandwidth': get(id).bytes += s.value; break;
    }
  }
  return by;
}

export const POLL_MS = 2000;
// HISTORY points are kept per route: five minutes at POLL_MS.
const HISTORY = 150;
// MAX_ROUTES bounds the routes with a history (the busiest stay).
const MAX_ROUTES = 2000;

// live holds the latest figures and a short history per route.
export const live = {
  ok: null,       // true once /metrics answered, false when it failed
  error: '',
  now: new Map(), // route id → {active, conns, bytes, cps, bps}
  history: new Map(), // route id → [{t, active, cps, bps}]
  listeners: new Set(),
  prev: null, prevT: 0,
  timer: null,
};

// subscribe registers fn(live) after every poll; it returns the
// unsubscribe function.
export function subscribe(fn) {
  live.listeners.add(fn);
  return () => live.listeners.delete(fn);
}

export function startPolling() {
  if (live.timer) return;
  const tick = async () => {
    await pollOnce();
    live.timer = setTimeout(tick, POLL_MS);
  };
  live.timer = setTimeout(tick, 0);
}

export function stopPolling() {
  clearTimeout(live.timer);
  live.timer = null;
}

async function pollOnce() {
  let text;
  try {
    const r = await fetch('/metrics', {cache: 'no-store', credentials: 'omit'});
    if (!r.ok) throw new Error('HTTP ' + r.status);
    text = await r.text();
  } catch (e) {
    live.ok = false;
    live.error = '/metrics: ' + e.message;
    notify();
    return;
  }
  live.ok = true;
  live.error = '';
  update(routeTotals(parseProm(text)), performance.now());
  notify();
}

function update(totals, t) {
  const dt = live.prev ? (t - live.prevT) / 1000 : 0;
  const now = new Map();
  for (const [id, cur] of totals) {
    const was = live.prev && live.prev.get(id);
    // a counter that went down was reset (a restart): no rate this time
    const cps = was && dt > 0 && cur.conns >= was.conns ? (cur.conns - was.conns) / dt : 0;
    const bps = was && dt > 0 && cur.bytes >= was.bytes ? (cur.bytes - was.bytes) / dt : 0;
    now.set(id, {...cur, cps, bps});
    let hist = live.history.get(id);
    if (!hist) {
      if (live.history.size >= MAX_ROUTES && cur.active === 0 && cps === 0) continue;
      hist = [];
      live.history.set(id, hist);
    }
    hist.push({t: Date.now(), active: cur.active, cps, bps});
    if (hist.length > HISTORY) hist.splice(0, hist.length - HISTORY);
  }
  live.prev = totals;
  live.prevT = t;
  live.now = now;
}

function notify() {
  for (const fn of live.listeners) {
    try { fn(live); } catch (e) { console.error(e); }
  }
}

// routeTotalsList is routeTotals as [[id, totals]] sorted by id, for tests.
export function routeTotalsList(samples) {
  return [...routeTotals(samples)].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}
