// Small DOM helpers. Text always goes in as text nodes, never as HTML, so
// object values cannot inject markup.

// h builds an element: h('a', {href: '#x', class: 'b'}, 'text', child).
// Attributes starting with "on" are listeners; null/false ones are skipped.
export function h(tag, attrs, ...children) {
  const el = tag === 'svg' || SVG.has(tag)
    ? document.createElementNS('http://www.w3.org/2000/svg', tag)
    : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'value' && 'value' in el) el.value = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

const SVG = new Set(['polyline', 'line', 'text', 'g', 'title', 'rect']);

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// mount replaces the content of the page's main element.
export function mount(...children) {
  const main = document.getElementById('main');
  main.replaceChildren();
  append(main, children);
  return main;
}

// flash shows a short status message in the page's live region.
export function flash(text) {
  const box = document.getElementById('flash');
  const item = h('div', {}, text);
  box.append(item);
  setTimeout(() => item.remove(), 4000);
}

// dialog opens the page's modal dialog with a title and content; it
// returns a function that closes it. Escape closes it too (native).
export function dialog(title, ...content) {
  const d = document.getElementById('dialog');
  d.replaceChildren(h('h2', {id: 'dialog-title'}, title), ...content.flat());
  if (!d.open) d.showModal();
  return () => d.close();
}

// confirmDialog asks a yes/no question; it resolves true on confirm.
export function confirmDialog(title, text, confirmLabel) {
  return new Promise((resolve) => {
    let done = false;
    const finish = (v) => { if (!done) { done = true; close(); resolve(v); } };
    const close = dialog(title, h('p', {}, text), h('div', {class: 'form-actions'},
      h('button', {class: 'danger', type: 'button', id: 'confirm-yes', onclick: () => finish(true)}, confirmLabel),
      h('button', {type: 'button', onclick: () => finish(false)}, 'Cancel')));
    document.getElementById('dialog').addEventListener('close', () => finish(false), {once: true});
    document.getElementById('confirm-yes').focus();
  });
}

// formatBytes renders a byte count with a binary unit.
export function formatBytes(n) {
  if (!isFinite(n)) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (Math.abs(n) >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? Math.round(n) : n.toFixed(1)) + ' ' + units[i];
}

// formatRate renders a per-second figure with at most one decimal.
export function formatRate(n) {
  if (!isFinite(n)) return '–';
  return n >= 10 ? String(Math.round(n)) : n.toFixed(1).replace(/\.0$/, '');
}
