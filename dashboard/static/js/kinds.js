// The object kinds the dashboard edits: their Admin API collection, the
// form fields (named by their JSON path in the object, so APISIX's
// validation errors map back to them) and how a field's text becomes a
// value.

const idField = {name: 'id', label: 'ID', type: 'text', createOnly: true,
  hint: 'Optional: empty lets the gateway pick one.'};
const nameField = {name: 'name', label: 'Name', type: 'text'};
const descField = {name: 'desc', label: 'Description', type: 'text'};
const pluginsField = {name: 'plugins', label: 'Plugins (JSON)', type: 'json', wide: true,
  hint: 'An object by plugin name, e.g. {"ip-restriction": {"whitelist": ["127.0.0.0/24"]}}.'};

export const kinds = {
  stream_routes: {
    path: 'stream_routes', title: 'Stream routes', noun: 'stream route', plural: 'stream routes',
    fields: [
      idField, nameField, descField,
      {name: 'remote_addr', label: 'Client address (remote_addr)', type: 'text', hint: 'IP or CIDR, e.g. 10.0.0.0/8.'},
      {name: 'server_addr', label: 'Server address (server_addr)', type: 'text', hint: 'IP or CIDR the client connected to.'},
      {name: 'server_port', label: 'Server port (server_port)', type: 'number'},
      {name: 'sni', label: 'TLS SNI (sni)', type: 'text'},
      {name: 'upstream_id', label: 'Upstream ID (upstream_id)', type: 'text', datalist: 'upstreams'},
      {name: 'service_id', label: 'Service ID (service_id)', type: 'text', datalist: 'services'},
      {name: 'upstream', label: 'Inline upstream (JSON)', type: 'json', wide: true,
        hint: 'Instead of upstream_id, e.g. {"type": "roundrobin", "nodes": {"127.0.0.1:1995": 1}}.'},
      pluginsField,
    ],
  },
  services: {
    path: 'services', title: 'Services', noun: 'service', plural: 'services',
    fields: [
      idField, nameField, descField,
      {name: 'upstream_id', label: 'Upstream ID (upstream_id)', type: 'text', datalist: 'upstreams'},
      {name: 'upstream', label: 'Inline upstream (JSON)', type: 'json', wide: true},
      pluginsField,
    ],
  },
  upstreams: {
    path: 'upstreams', title: 'Upstreams', noun: 'upstream', plural: 'upstreams',
    fields: [
      idField, nameField, descField,
      {name: 'type', label: 'Balancer (type)', type: 'select', options: ['roundrobin', 'chash', 'least_conn', 'ewma'], def: 'roundrobin'},
      {name: 'key', label: 'Hash key (chash only)', type: 'text', hint: 'e.g. remote_addr.'},
      {name: 'scheme', label: 'Scheme', type: 'select', options: ['', 'tcp', 'udp', 'tls']},
      {name: 'nodes', label: 'Nodes', type: 'nodes', wide: true,
        hint: 'One node a line: host:port weight [priority], e.g. 127.0.0.1:1995 1.'},
      {name: 'retries', label: 'Retries', type: 'number'},
      {name: 'retry_timeout', label: 'Retry timeout (s)', type: 'number'},
      {name: 'timeout.connect', label: 'Connect timeout (s)', type: 'number'},
      {name: 'timeout.send', label: 'Send timeout (s)', type: 'number'},
      {name: 'timeout.read', label: 'Read timeout (s)', type: 'number'},
      {name: 'checks', label: 'Health checks (JSON)', type: 'json', wide: true,
        hint: 'e.g. {"active": {"type": "tcp", "healthy": {"interval": 1, "successes": 1}, "unhealthy": {"interval": 1, "tcp_failures": 1}}}.'},
    ],
  },
  ssls: {
    path: 'ssls', title: 'SSLs', noun: 'SSL', plural: 'SSLs',
    fields: [
      idField,
      {name: 'snis', label: 'SNIs', type: 'list', wide: true, hint: 'Comma-separated host names, e.g. db.example.com, *.example.org.'},
      {name: 'type', label: 'Type', type: 'select', options: ['server', 'client'], def: 'server'},
      {name: 'status', label: 'Status', type: 'select', options: [['1', 'enabled'], ['0', 'disabled']], num: true, def: '1'},
      {name: 'desc', label: 'Description', type: 'text', wide: true},
      {name: 'cert', label: 'Certificate (PEM)', type: 'textarea', wide: true},
      {name: 'key', label: 'Private key (PEM)', type: 'secret', wide: true,
        hint: 'Write-only: never shown. When editing, leave it empty to keep the stored key.'},
    ],
  },
};

// getPath reads a dotted path of obj.
export function getPath(obj, path) {
  return path.split('.').reduce((o, k) => (o && typeof o === 'object' ? o[k] : undefined), obj);
}

// setPath sets a dotted path, creating objects on the way.
export function setPath(obj, path, v) {
  const ks = path.split('.');
  let o = obj;
  for (const k of ks.slice(0, -1)) {
    if (!o[k] || typeof o[k] !== 'object') o[k] = {};
    o = o[k];
  }
  o[ks[ks.length - 1]] = v;
}

// delPath removes a dotted path and the objects it leaves empty.
export function delPath(obj, path) {
  const ks = path.split('.');
  const parents = [];
  let o = obj;
  for (const k of ks.slice(0, -1)) {
    if (!o || typeof o !== 'object') return;
    parents.push([o, k]);
    o = o[k];
  }
  if (o && typeof o === 'object') delete o[ks[ks.length - 1]];
  for (const [p, k] of parents.reverse()) {
    if (p[k] && typeof p[k] === 'object' && !Array.isArray(p[k]) && Object.keys(p[k]).length === 0) delete p[k];
  }
}

// nodesText renders upstream nodes (a hash or an array) one a line.
export function nodesText(nodes) {
  if (!nodes) return '';
  if (Array.isArray(nodes)) {
    return nodes.map((n) => `${hostPort(n.host, n.port)} ${n.weight ?? 1}${n.priority ? ' ' + n.priority : ''}`).join('\n');
  }
  return Object.entries(nodes).map(([a, w]) => `${a} ${w}`).join('\n');
}

// nodeList is the nodes as [{host, port, weight, priority}] for display.
export function nodeList(nodes) {
  if (!nodes) return [];
  if (Array.isArray(nodes)) return nodes;
  return Object.entries(nodes).map(([a, w]) => {
    const m = a.match(/^\[?([^\]]*?)\]?(?::(\d+))?$/);
    return {host: m ? m[1] : a, port: m && m[2] ? Number(m[2]) : undefined, weight: w};
  });
}

export function hostPort(host, port) {
  const h = String(host).includes(':') ? `[${host}]` : host;
  return port === undefined ? h : `${h}:${port}`;
}

// parseNodes turns the nodes text into APISIX's array form. Lines it
// cannot read are returned in errors (with their line number).
export function parseNodes(text) {
  const nodes = [];
  const errors = [];
  text.split('\n').forEach((line, i) => {
    const parts = line.trim().split(/\s+/).filter(Boolean);
    if (!parts.length) return;
    const m = parts[0].match(/^(\[[^\]]+\]|[^:\s]+):(\d+)$/);
    if (!m || parts.length > 3 || parts.slice(1).some((p) => !/^-?\d+$/.test(p))) {
      errors.push(`line ${i + 1}: expected host:port weight [priority], got "${line.trim()}"`);
      return;
    }
    const node = {host: m[1].replace(/^\[|\]$/g, ''), port: Number(m[2]), weight: parts[1] ? Number(parts[1]) : 1};
    if (parts[2]) node.priority = Number(parts[2]);
    nodes.push(node);
  });
  return {nodes, errors};
}

// fieldText is the text a field shows for an object's value.
export function fieldText(f, obj) {
  const v = getPath(obj, f.name);
  if (f.type === 'secret') return '';
  if (v === undefined || v === null) return f.def ?? '';
  switch (f.type) {
    case 'json': return JSON.stringify(v, null, 2);
    case 'nodes': return nodesText(v);
    case 'list': return Array.isArray(v) ? v.join(', ') : String(v);
    default: return String(v);
  }
}

// applyField sets (or, when empty, removes) one field's value in obj.
// It returns an error text for input the browser can tell is wrong.
export function applyField(f, obj, text) {
  const t = text.trim();
  if (t === '') { delPath(obj, f.name); return ''; }
  switch (f.type) {
    case 'number': {
      const n = Number(t);
      setPath(obj, f.name, Number.isFinite(n) ? n : t); // APISIX names a non-number
      return '';
    }
    case 'json':
      try { setPath(obj, f.name, JSON.parse(t)); return ''; } catch (e) { return 'invalid JSON: ' + e.message; }
    case 'nodes': {
      const {nodes, errors} = parseNodes(t);
      if (errors.length) return errors.join('; ');
      setPath(obj, f.name, nodes);
      return '';
    }
    case 'list':
      setPath(obj, f.name, t.split(/[\s,]+/).filter(Boolean));
      return '';
    case 'select':
      setPath(obj, f.name, f.num ? Number(t) : t);
      return '';
    default:
      setPath(obj, f.name, t);
      return '';
  }
}
