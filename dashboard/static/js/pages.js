// The pages: overview, one list page per kind, a route's live view and
// plugin metadata. Lists page on the server (the Admin API's page and
// page_size), so 10,000 routes cost one page of rows.
import {h, mount, flash, confirmDialog, formatBytes, formatRate} from './ui.js';
import {admin, call, errorText, session} from './api.js';
import {kinds, nodeList, hostPort} from './kinds.js';
import {jsonDialog, readOnlyNotice} from './form.js';
import {live, subscribe, POLL_MS} from './prom.js';
import {chart} from './chart.js';
import {certInfo, daysLeft} from './cert.js';

// cleanup holds what the current page must undo when the user leaves it.
let cleanup = [];
export function leavePage() {
  for (const fn of cleanup) fn();
  cleanup = [];
}

const PAGE_SIZES = [10, 20, 50, 100];

function emptyRow(cols, text) {
  return h('tr', {}, h('td', {colspan: cols, class: 'empty'}, text));
}

function tags(list) {
  return list.length ? list.map((t) => h('span', {class: 'tag'}, t)) : h('span', {class: 'muted'}, '—');
}

// ---------- overview ----------

export async function overview() {
  const info = session.info || {};
  // /v1/cluster (role, provider, etcd's view) where the gateway has it
  const [health, cluster, ...counts] = await Promise.all([call('GET', '/v1/healthcheck'), call('GET', '/v1/cluster'),
    ...['stream_routes', 'services', 'upstreams', 'ssls'].map(async (k) => {
      const res = await admin('GET', k, {page: 1, page_size: 10});
      return [k, res.ok ? res.data.total : null];
    })]);
  let unhealthy = 0;
  let checked = 0;
  if (health.ok && Array.isArray(health.data)) {
    for (const r of health.data) {
      for (const n of r.nodes || []) { checked++; if (n.status !== 'healthy') unhealthy++; }
    }
  }
  const stat = (label, value, href) => h('div', {class: 'card stat'},
    h('div', {class: 'num'}, href ? h('a', {href}, value) : value), h('div', {class: 'lbl'}, label));
  const liveCards = h('div', {class: 'cards', id: 'live-totals'});
  const drawLive = () => {
    let active = 0, cps = 0, bps = 0;
    for (const v of live.now.values()) { active += v.active; cps += v.cps; bps += v.bps; }
    liveCards.replaceChildren(
      stat('Active connections', live.ok === false ? 'n/a' : String(active)),
      stat('Connections / s', live.ok === false ? 'n/a' : formatRate(cps)),
      stat('Bandwidth', live.ok === false ? 'n/a' : formatBytes(bps) + '/s'),
      stat('Unhealthy nodes', health.ok ? `${unhealthy} / ${checked}` : 'n/a', '#/upstreams'));
  };
  drawLive();
  cleanup.push(subscribe(drawLive));
  const listeners = info.listeners || [];
  mount(
    h('h1', {}, 'Overview'),
    h('div', {class: 'cards'}, counts.map(([k, n]) =>
      stat(kinds[k].title, n === null ? 'n/a' : String(n), '#/' + k))),
    h('h2', {}, 'Live'),
    liveCards,
    live.error ? h('p', {class: 'muted'}, live.error) : null,
    h('div', {class: 'grid2'},
      h('section', {'aria-labelledby': 'h-listeners'},
        h('h2', {id: 'h-listeners'}, 'Listeners'),
        h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'Protocol'), h('th', {}, 'Address'), h('th', {}, 'Options'))),
          h('tbody', {}, listeners.length ? listeners.map((l) => h('tr', {},
            h('td', {}, l.network.toUpperCase()), h('td', {class: 'mono'}, l.addr),
            h('td', {}, tags([l.tls && 'TLS', l.tls_passthrough && 'TLS passthrough', l.proxy_protocol && 'PROXY protocol'].filter(Boolean)))))
            : emptyRow(3, info.stream_enabled === false ? 'Stream mode is off (no stream_proxy).' : 'No listeners.')))),
      h('section', {'aria-labelledby': 'h-store'},
        h('h2', {id: 'h-store'}, 'Store'),
        storeCard(info, cluster.ok ? cluster.data : null))));
}

// storeCard shows where the objects live: /v1/cluster's view when the
// gateway has it (with etcd: connected, revision, last sync, last error),
// else the dashboard's info.
function storeCard(info, cluster) {
  const row = (label, value, id) => h('p', {}, label + ': ', h('strong', {id}, value));
  const rows = [];
  if (cluster) {
    rows.push(row('Deployment role', cluster.role || 'traditional'), row('Provider', cluster.config_provider || 'embedded'));
    const e = cluster.etcd;
    if (e) {
      rows.push(row('Status', e.connected ? 'ok' : 'etcd unreachable' + (e.last_error ? ': ' + e.last_error : ''), 'store-status'),
        row('etcd revision', String(e.revision)),
        row('Last sync', e.last_sync ? new Date(e.last_sync).toLocaleString() : 'never'));
      if (e.connected && e.last_error) rows.push(row('Last error', e.last_error));
    } else {
      rows.push(row('Status', (info.store && info.store.status) || 'ok', 'store-status'));
    }
  } else {
    rows.push(row('Provider', (info.store && info.store.provider) || 'unknown'),
      row('Status', (info.store && info.store.status) || 'unknown', 'store-status'));
  }
  rows.push(row('Your role', session.role));
  return h('div', {class: 'card'}, rows);
}

// ---------- lists ----------

// listState reads page, size and q from the hash's query.
function listState(query) {
  const page = Math.max(1, parseInt(query.get('page') || '1', 10) || 1);
  let size = parseInt(query.get('size') || '20', 10);
  if (!PAGE_SIZES.includes(size)) size = 20;
  return {page, size, q: query.get('q') || ''};
}

function listHash(kindName, st) {
  const p = new URLSearchParams();
  if (st.page > 1) p.set('page', st.page);
  if (st.size !== 20) p.set('size', st.size);
  if (st.q) p.set('q', st.q);
  const qs = p.toString();
  return '#/' + kindName + (qs ? '?' + qs : '');
}

// escapeRegex makes a search text a literal for the ?name= regex filter.
function escapeRegex(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

// fetchPage asks the Admin API for one page; a search is a name match
// (?name=, APISIX's filter) plus, first, the object whose id it is.
async function fetchPage(kind, st) {
  const query = {page: st.page, page_size: st.size};
  if (st.q) query.name = escapeRegex(st.q);
  const [res, byId] = await Promise.all([
    admin('GET', kind.path, query),
    st.q && /^[\w.-]+$/.test(st.q) && st.page === 1 ? admin('GET', `${kind.path}/${encodeURIComponent(st.q)}`) : null,
  ]);
  if (!res.ok) return {res};
  let items = res.data.list.map((it) => it.value);
  let total = res.data.total;
  if (byId && byId.ok && byId.data && byId.data.value && !items.some((v) => v.id === byId.data.value.id)) {
    items = [byId.data.value, ...items];
    total++;
  }
  return {res, items, total};
}

const columns = {
  stream_routes: {
    head: ['ID', 'Name', 'Filters', 'Upstream', 'Plugins', 'Active', 'Conn/s', 'Bytes/s', 'Last minutes'],
    row: (v) => [
      h('td', {class: 'mono'}, h('a', {href: '#/stream_routes/view/' + encodeURIComponent(v.id)}, v.id)),
      h('td', {}, v.name || h('span', {class: 'muted'}, '—')),
      h('td', {}, tags([
        v.remote_addr && 'remote_addr ' + v.remote_addr, v.server_addr && 'server_addr ' + v.server_addr,
        v.server_port && 'server_port ' + v.server_port, v.sni && 'sni ' + v.sni,
        ...(v.snis || []).map((s) => 'sni ' + s)].filter(Boolean))),
      h('td', {}, upstreamCell(v)),
      h('td', {}, tags(Object.keys(v.plugins || {}))),
      h('td', {class: 'num', 'data-live': 'active'}, '–'),
      h('td', {class: 'num', 'data-live': 'cps'}, '–'),
      h('td', {class: 'num', 'data-live': 'bps'}, '–'),
      h('td', {'data-live': 'chart'}),
    ],
  },
  services: {
    head: ['ID', 'Name', 'Upstream', 'Plugins'],
    row: (v) => [h('td', {class: 'mono'}, v.id), h('td', {}, v.name || '—'), h('td', {}, upstreamCell(v)),
      h('td', {}, tags(Object.keys(v.plugins || {})))],
  },
  upstreams: {
    head: ['ID', 'Name', 'Balancer', 'Nodes (weight, health)', 'Checks'],
    row: (v) => [h('td', {class: 'mono'}, v.id), h('td', {}, v.name || '—'),
      h('td', {}, v.type || 'roundrobin', v.key ? h('span', {class: 'muted'}, ' on ' + v.key) : null),
      h('td', {}, h('ul', {class: 'nodes', style: null}, nodeList(v.nodes).map((n) => h('li', {'data-node': hostPort(n.host, n.port)},
        h('span', {class: 'mono'}, hostPort(n.host, n.port)), ` weight ${n.weight}`, n.priority ? ` priority ${n.priority}` : '', ' ',
        h('span', {class: 'tag health', 'data-health': ''}, v.checks ? 'checking…' : 'no checks'))))),
      h('td', {}, v.checks ? tags(Object.keys(v.checks).map((k) => k + (v.checks[k].type ? ' ' + v.checks[k].type : ''))) : '—')],
  },
  ssls: {
    head: ['ID', 'SNIs', 'Type', 'Subject CN', 'Expires', 'Days left', 'Status'],
    row: (v) => {
      const c = certInfo(v.cert);
      const days = c.notAfter ? daysLeft(c.notAfter) : null;
      return [h('td', {class: 'mono'}, v.id), h('td', {}, tags(v.snis || (v.sni ? [v.sni] : []))), h('td', {}, v.type || 'server'),
        h('td', {}, c.cn || (c.error ? h('span', {class: 'muted'}, c.error) : '—')),
        h('td', {class: 'num'}, c.notAfter ? c.notAfter.toISOString().slice(0, 10) : '—'),
        h('td', {class: 'num ' + (days === null ? '' : days < 0 ? 'days-bad' : days < 30 ? 'days-warn' : ''), 'data-days': days ?? ''},
          days === null ? '—' : days < 0 ? `expired ${-days} d ago` : String(days)),
        h('td', {}, v.status === 0 ? 'disabled' : 'enabled')];
    },
  },
};

function upstreamCell(v) {
  const parts = [];
  if (v.upstream_id !== undefined) parts.push(h('a', {href: '#/upstreams?q=' + encodeURIComponent(v.upstream_id)}, 'upstream ' + v.upstream_id));
  if (v.service_id !== undefined) parts.push(h('a', {href: '#/services?q=' + encodeURIComponent(v.service_id)}, 'service ' + v.service_id));
  if (v.upstream) {
    parts.push(h('span', {}, (v.upstream.type || 'roundrobin') + ': ',
      nodeList(v.upstream.nodes).map((n) => h('span', {class: 'tag mono'}, `${hostPort(n.host, n.port)} ×${n.weight}`))));
  }
  return parts.length ? parts : h('span', {class: 'muted'}, '—');
}

export async function listPage(kindName, query) {
  const kind = kinds[kindName];
  const st = listState(query);
  const {res, items, total} = await fetchPage(kind, st);
  const cols = columns[kindName];
  const canWrite = session.canWrite();
  const reload = () => window.dispatchEvent(new HashChangeEvent('hashchange'));
  const heading = h('h1', {}, kind.title);
  if (!res.ok) {
    // a gateway without this collection answers 404: an empty state
    mount(heading, h('div', {class: 'card empty', id: 'empty-state'}, res.status === 404
      ? `No ${kind.plural}: this gateway's Admin API has no /apisix/admin/${kind.path} (${errorText(res)}).`
      : errorText(res)));
    return;
  }
  const search = h('form', {class: 'toolbar', role: 'search'},
    h('div', {class: 'grow'}, h('label', {for: 'search'}, 'Search by name or ID'),
      h('input', {id: 'search', type: 'search', value: st.q, autocomplete: 'off'})),
    h('div', {}, h('label', {for: 'page-size'}, 'Per page'),
      h('select', {id: 'page-size'}, PAGE_SIZES.map((n) => h('option', {value: n, selected: n === st.size}, n)))),
    h('button', {type: 'submit'}, 'Search'),
    canWrite ? h('a', {class: 'button primary', href: `#/${kindName}/new`, id: 'create'}, 'Create ' + kind.noun) : null,
    canWrite ? h('button', {type: 'button', id: 'create-json', onclick: () =>
      jsonDialog(`New ${kind.noun} (JSON)`, kind.path, {}, {isNew: true, onSaved: reload})}, 'Create from JSON') : null);
  search.addEventListener('submit', (ev) => {
    ev.preventDefault();
    location.hash = listHash(kindName, {page: 1, size: Number(search.querySelector('#page-size').value), q: search.querySelector('#search').value.trim()});
  });
  search.querySelector('#page-size').addEventListener('change', () => search.requestSubmit());

  const rows = items.map((v) => {
    const tr = h('tr', {'data-id': v.id}, cols.row(v), h('td', {class: 'actions'},
      h('button', {type: 'button', 'aria-label': `JSON of ${kind.noun} ${v.id}`,
        onclick: () => openJSON(kind, v.id, reload)}, 'JSON'),
      canWrite ? h('a', {class: 'button', href: `#/${kindName}/edit/${encodeURIComponent(v.id)}`, 'aria-label': `Edit ${kind.noun} ${v.id}`}, 'Edit') : null,
      canWrite ? h('button', {type: 'button', class: 'danger', 'aria-label': `Delete ${kind.noun} ${v.id}`,
        onclick: () => remove(kind, v.id, reload)}, 'Delete') : null));
    return tr;
  });
  const pages = Math.max(1, Math.ceil(total / st.size));
  const pager = h('nav', {class: 'pager', 'aria-label': 'Pages'},
    h('a', {class: 'button', href: listHash(kindName, {...st, page: st.page - 1}), 'aria-disabled': st.page <= 1 ? 'true' : null,
      hidden: st.page <= 1 ? true : null}, '← Previous'),
    h('span', {id: 'page-info'}, `Page ${st.page} of ${pages} · ${total} ${total === 1 ? kind.noun : kind.plural}`),
    h('a', {class: 'button', href: listHash(kindName, {...st, page: st.page + 1}), hidden: st.page >= pages ? true : null}, 'Next →'));
  const table = h('table', {id: 'list'},
    h('thead', {}, h('tr', {}, cols.head.map((c) => h('th', {scope: 'col'}, c)), h('th', {scope: 'col'}, 'Actions'))),
    h('tbody', {}, rows.length ? rows : emptyRow(cols.head.length + 1, st.q ? `No ${kind.plural} match “${st.q}”.` : `No ${kind.plural} yet.`)));
  mount(heading, readOnlyNotice(), search, table, pager);

  if (kindName === 'stream_routes') {
    const draw = () => drawRouteLive(table);
    draw();
    cleanup.push(subscribe(draw));
  }
  if (kindName === 'upstreams') {
    await pollHealth(table);
  }
}

async function openJSON(kind, id, reload) {
  const res = await admin('GET', `${kind.path}/${encodeURIComponent(id)}`);
  if (!res.ok) { flash(errorText(res)); return; }
  jsonDialog(`${kind.noun} ${id} (JSON)`, `${kind.path}/${encodeURIComponent(id)}`, res.data.value, {onSaved: reload});
}

async function remove(kind, id, reload) {
  if (!await confirmDialog(`Delete ${kind.noun} ${id}?`, 'The gateway stops using it at once.', 'Delete')) return;
  const res = await admin('DELETE', `${kind.path}/${encodeURIComponent(id)}`);
  if (!res.ok) { flash(errorText(res)); return; }
  flash(`${kind.noun} ${id} deleted`);
  reload();
}

// drawRouteLive fills the live cells of the visible route rows.
function drawRouteLive(table) {
  for (const tr of table.querySelectorAll('tbody tr[data-id]')) {
    const id = tr.dataset.id;
    const now = live.now.get(id);
    const set = (k, t) => { const td = tr.querySelector(`[data-live="${k}"]`); if (td.textContent !== t) td.textContent = t; };
    if (live.ok === false) { set('active', 'n/a'); continue; }
    set('active', now ? String(now.active) : '0');
    set('cps', now ? formatRate(now.cps) : '0');
    set('bps', now ? formatBytes(now.bps) : '0 B');
    const hist = live.history.get(id) || [];
    tr.querySelector('[data-live="chart"]').replaceChildren(chart(hist, 140, 30, false));
  }
}

// pollHealth shows the control API's node health in the upstream rows,
// refreshed while the page is shown.
async function pollHealth(table) {
  let timer = null;
  let stopped = false;
  const tick = async () => {
    const res = await call('GET', '/v1/healthcheck');
    if (stopped) return;
    const by = new Map();
    if (res.ok && Array.isArray(res.data)) {
      for (const r of res.data) {
        const m = String(r.name).match(/\/upstreams\/(.+)$/);
        if (m) by.set(m[1], r.nodes || []);
      }
    }
    for (const tr of table.querySelectorAll('tbody tr[data-id]')) {
      const nodes = by.get(tr.dataset.id);
      for (const li of tr.querySelectorAll('li[data-node]')) {
        const tag = li.querySelector('[data-health]');
        if (!nodes) continue;
        const n = nodes.find((x) => hostPort(x.hostname, x.port) === li.dataset.node || hostPort(x.ip, x.port) === li.dataset.node);
        const status = n ? n.status : 'unknown';
        tag.textContent = status.replace('_', ' ');
        tag.className = 'tag health health-' + status;
        tag.dataset.health = status;
      }
    }
    timer = setTimeout(tick, POLL_MS);
  };
  cleanup.push(() => { stopped = true; clearTimeout(timer); });
  await tick();
}

// ---------- one route, live ----------

export async function routeView(id) {
  const res = await admin('GET', 'stream_routes/' + encodeURIComponent(id));
  if (!res.ok) { mount(h('h1', {}, 'Stream route ' + id), h('p', {class: 'alert'}, errorText(res))); return; }
  const box = h('div', {class: 'card'});
  const figures = h('p', {id: 'route-figures'});
  const draw = () => {
    const now = live.now.get(id);
    figures.textContent = live.ok === false ? live.error
      : `${now ? now.active : 0} active · ${formatRate(now ? now.cps : 0)} connections/s · ${formatBytes(now ? now.bps : 0)}/s`;
    box.replaceChildren(chart(live.history.get(id) || [], 900, 200, true),
      h('p', {class: 'muted'}, h('span', {class: 'legend-conn'}, '■ connections/s'), '   ', h('span', {class: 'legend-bytes'}, '■ bytes/s'),
        ` · refreshed every ${POLL_MS / 1000} s`));
  };
  draw();
  cleanup.push(subscribe(draw));
  mount(h('h1', {}, 'Stream route ' + id),
    h('p', {}, h('a', {href: '#/stream_routes'}, '← All stream routes'),
      session.canWrite() ? ['  ', h('a', {class: 'button', href: '#/stream_routes/edit/' + encodeURIComponent(id)}, 'Edit')] : null),
    figures, box,
    h('h2', {}, 'JSON'), h('pre', {class: 'card mono'}, JSON.stringify(res.data.value, null, 2)));
}

// ---------- plugin metadata ----------

export async function pluginMetadata() {
  const list = await admin('GET', 'plugins/list', {subsystem: 'stream'});
  const names = list.ok && Array.isArray(list.data) ? list.data : [];
  const metas = await Promise.all(names.map((n) => admin('GET', 'plugin_metadata/' + encodeURIComponent(n))));
  const heading = h('h1', {}, 'Plugin metadata');
  const unsupported = metas.length > 0 && metas.every((r) => r.status === 404 && /Unsupported resource type/.test(errorText(r)));
  if (!list.ok || unsupported || !names.length) {
    mount(heading, h('div', {class: 'card empty', id: 'empty-state'}, !list.ok ? errorText(list)
      : 'No plugin metadata: this gateway\'s Admin API has no /apisix/admin/plugin_metadata.'));
    return;
  }
  const reload = () => window.dispatchEvent(new HashChangeEvent('hashchange'));
  const canWrite = session.canWrite();
  mount(heading, readOnlyNotice(), h('table', {id: 'list'},
    h('thead', {}, h('tr', {}, h('th', {scope: 'col'}, 'Plugin'), h('th', {scope: 'col'}, 'Metadata'), h('th', {scope: 'col'}, 'Actions'))),
    h('tbody', {}, names.map((n, i) => {
      const r = metas[i];
      const value = r.ok && r.data ? r.data.value : null;
      return h('tr', {'data-id': n}, h('td', {class: 'mono'}, n),
        h('td', {class: 'mono'}, value ? JSON.stringify(value) : h('span', {class: 'muted'}, r.status === 404 ? 'not set' : errorText(r))),
        h('td', {class: 'actions'},
          h('button', {type: 'button', 'aria-label': `JSON of the ${n} metadata`, onclick: () =>
            jsonDialog(`${n} metadata (JSON)`, 'plugin_metadata/' + encodeURIComponent(n), value || {}, {onSaved: reload})}, canWrite ? 'Edit JSON' : 'JSON'),
          canWrite && value ? h('button', {type: 'button', class: 'danger', 'aria-label': `Delete the ${n} metadata`, onclick: async () => {
            if (!await confirmDialog(`Delete the ${n} metadata?`, 'The plugin falls back to its defaults.', 'Delete')) return;
            const d = await admin('DELETE', 'plugin_metadata/' + encodeURIComponent(n));
            flash(d.ok ? `${n} metadata deleted` : errorText(d));
            reload();
          }}, 'Delete') : null));
    }))));
}
