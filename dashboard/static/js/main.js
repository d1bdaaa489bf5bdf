// The dashboard's entry: the login form, the navigation and the router
// (#/<page>[/new|/edit/<id>|/view/<id>][?query]).
import {h, mount} from './ui.js';
import {call, errorText, session} from './api.js';
import {renderForm} from './form.js';
import {overview, listPage, routeView, pluginMetadata, leavePage} from './pages.js';
import {startPolling, stopPolling} from './prom.js';

const sections = [
  ['overview', 'Overview'], ['stream_routes', 'Stream routes'], ['services', 'Services'],
  ['upstreams', 'Upstreams'], ['ssls', 'SSLs'], ['plugin_metadata', 'Plugin metadata'],
];
const editable = new Set(['stream_routes', 'services', 'upstreams', 'ssls']);

// loadInfo checks the key against the gateway and learns its role.
async function loadInfo() {
  const res = await call('GET', '/apisix/dashboard/api/info');
  if (res.ok) {
    session.info = res.data;
    session.role = res.data.role;
  }
  return res;
}

function renderLogin(message) {
  document.getElementById('nav').hidden = true;
  document.getElementById('who').replaceChildren();
  stopPolling();
  const input = h('input', {id: 'key', name: 'key', type: 'password', autocomplete: 'current-password', required: true,
    'aria-describedby': 'key-hint login-error'});
  const err = h('p', {class: 'field-error', id: 'login-error', role: 'alert'}, message || '');
  const form = h('form', {class: 'card'},
    h('h1', {}, 'Sign in'),
    h('div', {}, h('label', {for: 'key'}, 'Admin API key'), input,
      h('p', {class: 'hint', id: 'key-hint'}, 'An admin_key of this gateway. It is kept in this browser tab only (sessionStorage).')),
    err,
    h('button', {class: 'primary', type: 'submit'}, 'Sign in'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    session.login(input.value);
    const res = await loadInfo();
    if (!res.ok) {
      session.logout();
      err.textContent = errorText(res);
      input.setAttribute('aria-invalid', 'true');
      input.focus();
      return;
    }
    queue();
  });
  mount(h('div', {class: 'login'}, form));
  input.focus();
}

function renderChrome(current) {
  const nav = document.getElementById('nav');
  nav.hidden = false;
  nav.replaceChildren(...sections.map(([id, label]) =>
    h('a', {href: '#/' + id, 'aria-current': id === current ? 'page' : null}, label)));
  document.getElementById('who').replaceChildren(
    h('span', {id: 'role'}, session.role === 'viewer' ? 'viewer (read-only)' : session.role),
    h('button', {type: 'button', id: 'logout', onclick: () => { session.logout(); location.hash = ''; renderLogin(); }}, 'Sign out'));
}

let rendering = 0;
async function render() {
  leavePage();
  const seq = ++rendering;
  document.getElementById('main').dataset.ready = '';
  if (session.key() === null) { renderLogin(); return; }
  if (!session.info) {
    const res = await loadInfo();
    if (!res.ok) {
      session.logout();
      renderLogin(res.status === 401 ? errorText(res) : 'The dashboard cannot reach the gateway: ' + errorText(res));
      return;
    }
  }
  startPolling();
  const raw = location.hash.replace(/^#\/?/, '');
  const [path, qs] = raw.split('?');
  const query = new URLSearchParams(qs || '');
  const parts = path.split('/').map(decodeURIComponent);
  const page = sections.some(([id]) => id === parts[0]) ? parts[0] : 'overview';
  renderChrome(page);
  document.title = `${sections.find(([id]) => id === page)[1]} · APISIX stream dashboard`;
  if (page === 'overview') await overview();
  else if (page === 'plugin_metadata') await pluginMetadata();
  else if (editable.has(page) && parts[1] === 'new') await renderForm(page, null);
  else if (editable.has(page) && parts[1] === 'edit' && parts[2]) await renderForm(page, parts[2]);
  else if (page === 'stream_routes' && parts[1] === 'view' && parts[2]) await routeView(parts[2]);
  else await listPage(page, query);
  document.getElementById('main').dataset.page = page;
  document.getElementById('main').dataset.ready = String(seq);
  performance.mark('dashboard-ready');
}

// renders run one after the other, so a slow page never mounts over the
// page the user moved to
let chain = Promise.resolve();
const queue = () => { chain = chain.then(render, render); };
window.addEventListener('hashchange', queue);
queue();
