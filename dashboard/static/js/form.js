// Create and edit forms, and the JSON view/editor, for every kind. The
// Admin API validates; its error_msg is shown next to the field it names.
import {h, mount, flash, dialog} from './ui.js';
import {admin, errorText, fieldOf, session} from './api.js';
import {kinds, fieldText, applyField} from './kinds.js';

// stripTimes drops the fields the gateway sets itself.
function stripTimes(v) {
  const o = structuredClone(v || {});
  delete o.create_time;
  delete o.update_time;
  return o;
}

// readOnlyNotice tells a viewer why writes will be refused.
export function readOnlyNotice() {
  return session.canWrite() ? null
    : h('p', {class: 'notice'}, 'Your key has the viewer role: you can look at everything, and the Admin API refuses every change.');
}

// showErrors puts msg next to the field it names, or in the form's alert.
function showErrors(form, names, msg) {
  const field = fieldOf(msg, names);
  if (field) {
    setFieldError(form, field, msg);
  } else {
    const alert = form.querySelector('.alert');
    alert.textContent = msg;
    alert.focus();
  }
}

function setFieldError(form, name, msg) {
  const input = form.querySelector(`[name="${CSS.escape(name)}"]`);
  const err = form.querySelector(`#err-${CSS.escape(name.replace(/\./g, '-'))}`);
  if (err) err.textContent = msg;
  if (input) {
    input.setAttribute('aria-invalid', 'true');
    input.focus();
  }
}

function clearErrors(form) {
  form.querySelectorAll('.field-error').forEach((e) => { e.textContent = ''; });
  form.querySelectorAll('[aria-invalid]').forEach((e) => e.removeAttribute('aria-invalid'));
  form.querySelector('.alert').textContent = '';
}

function fieldEl(field, value, editing, lists) {
  const f = field.createOnly && editing ? {...field, hint: 'Fixed once created.'} : field;
  const id = 'f-' + f.name.replace(/\./g, '-');
  const errId = 'err-' + f.name.replace(/\./g, '-');
  const hintId = f.hint ? 'hint-' + f.name.replace(/\./g, '-') : null;
  const common = {id, name: f.name, 'aria-describedby': [hintId, errId].filter(Boolean).join(' ')};
  let input;
  switch (f.type) {
    case 'select':
      input = h('select', common, f.options.map((o) => {
        const [v, label] = Array.isArray(o) ? o : [o, o || '(default)'];
        return h('option', {value: v, selected: v === value}, label);
      }));
      break;
    case 'json': case 'textarea': case 'nodes': case 'secret':
      input = h('textarea', {...common, rows: f.type === 'json' ? 4 : 3, spellcheck: 'false',
        autocomplete: f.type === 'secret' ? 'off' : null}, value);
      break;
    default:
      input = h('input', {...common, type: f.type === 'number' ? 'text' : 'text',
        inputmode: f.type === 'number' ? 'numeric' : null, value, autocomplete: 'off',
        readonly: f.createOnly && editing ? true : null, list: f.datalist && lists[f.datalist] ? 'dl-' + f.datalist : null});
  }
  return h('div', {class: 'field' + (f.wide ? ' wide' : '')},
    h('label', {for: id}, f.label),
    input,
    f.hint ? h('p', {class: 'hint', id: hintId}, f.hint) : null,
    h('p', {class: 'field-error', id: errId, role: 'alert'}));
}

// renderForm shows the create (id null) or edit form of a kind.
export async function renderForm(kindName, id) {
  const kind = kinds[kindName];
  const editing = id !== null;
  let original = {};
  if (editing) {
    const res = await admin('GET', `${kind.path}/${encodeURIComponent(id)}`);
    if (!res.ok) {
      mount(h('h1', {}, `Edit ${kind.noun} ${id}`), h('p', {class: 'alert'}, errorText(res)));
      return;
    }
    original = stripTimes(res.data.value);
  }
  if (kindName === 'ssls' && original.sni && !original.snis) {
    original.snis = [original.sni];
    delete original.sni;
  }
  const lists = await datalists(kind);
  const names = kind.fields.map((f) => f.name);
  const title = editing ? `Edit ${kind.noun} ${id}` : `Create ${kind.noun}`;
  const form = h('form', {class: 'obj', novalidate: true, 'aria-labelledby': 'form-title'},
    h('p', {class: 'alert wide', role: 'alert', tabindex: '-1'}),
    kind.fields.map((f) => fieldEl(f, editing && f.name === 'id' ? id : fieldText(f, original), editing, lists)),
    h('div', {class: 'form-actions'},
      h('button', {class: 'primary', type: 'submit'}, editing ? 'Save' : 'Create'),
      h('a', {class: 'button', href: '#/' + kindName}, 'Cancel')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    const obj = structuredClone(original);
    let bad = false;
    for (const f of kind.fields) {
      if (f.name === 'id') continue;
      const el = form.elements.namedItem(f.name);
      const err = applyField(f, obj, el.value);
      if (err) { setFieldError(form, f.name, err); bad = true; }
    }
    if (bad) return;
    delete obj.id;
    const newId = form.elements.namedItem('id').value.trim();
    let res;
    if (editing) {
      // the stored private key is never sent to the browser: an SSL
      // edited without a new key is patched, which keeps it
      const patch = kindName === 'ssls' && !obj.key;
      res = await admin(patch ? 'PATCH' : 'PUT', `${kind.path}/${encodeURIComponent(id)}`, null, obj);
    } else if (newId) {
      res = await admin('PUT', `${kind.path}/${encodeURIComponent(newId)}`, null, obj);
    } else {
      res = await admin('POST', kind.path, null, obj);
    }
    if (!res.ok) {
      showErrors(form, names, errorText(res));
      return;
    }
    const savedId = (res.data && res.data.value && res.data.value.id) || newId || id;
    flash(`${kind.noun} ${savedId} ${editing ? 'saved' : 'created'}`);
    location.hash = '#/' + kindName;
  });
  mount(h('h1', {id: 'form-title'}, title), readOnlyNotice(),
    Object.entries(lists).map(([k, ids]) => h('datalist', {id: 'dl-' + k}, ids.map((v) => h('option', {value: v})))),
    form);
  form.querySelector('input:not([readonly]), select, textarea').focus();
}

// datalists offers the ids of upstreams and services (the first 500)
// for the reference fields.
async function datalists(kind) {
  const want = new Set(kind.fields.map((f) => f.datalist).filter(Boolean));
  const out = {};
  await Promise.all([...want].map(async (k) => {
    const res = await admin('GET', k, {page: 1, page_size: 500});
    if (res.ok && res.data && Array.isArray(res.data.list)) {
      out[k] = res.data.list.map((it) => it.value && it.value.id).filter(Boolean);
    }
  }));
  return out;
}

// jsonDialog shows an object's JSON; an admin may edit and save it (PUT).
// path is the Admin API path of the object ("upstreams/1"); for a new
// object it is the collection and idInput asks for the id.
export function jsonDialog(title, path, value, {isNew = false, onSaved} = {}) {
  const canWrite = session.canWrite();
  const text = h('textarea', {id: 'json-text', class: 'json', spellcheck: 'false', readonly: canWrite ? null : true,
    'aria-describedby': 'json-error'}, JSON.stringify(value, null, 2));
  const idInput = isNew ? h('input', {id: 'json-id', autocomplete: 'off'}) : null;
  const err = h('p', {class: 'field-error', id: 'json-error', role: 'alert'});
  const form = h('form', {novalidate: true},
    isNew ? h('div', {class: 'field'}, h('label', {for: 'json-id'}, 'ID (optional)'), idInput) : null,
    h('div', {class: 'field'}, h('label', {for: 'json-text'}, 'JSON'), text, err),
    h('div', {class: 'form-actions'},
      canWrite ? h('button', {class: 'primary', type: 'submit'}, 'Save') : null,
      h('button', {type: 'button', onclick: () => close()}, 'Close')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    err.textContent = '';
    let body;
    try { body = JSON.parse(text.value); } catch (e) { err.textContent = 'invalid JSON: ' + e.message; text.focus(); return; }
    let res;
    if (isNew) {
      const id = idInput.value.trim();
      res = id ? await admin('PUT', `${path}/${encodeURIComponent(id)}`, null, body) : await admin('POST', path, null, body);
    } else {
      res = await admin('PUT', path, null, body);
    }
    if (!res.ok) { err.textContent = errorText(res); text.focus(); return; }
    close();
    flash('saved');
    if (onSaved) onSaved();
  });
  const close = dialog(title, readOnlyNotice(), form);
  (idInput || text).focus();
}
