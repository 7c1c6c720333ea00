// DOM and formatting helpers of the dashboard. Text only ever goes in as textContent or
// attribute values, never as markup.

export const $ = (sel, root) => (root || document).querySelector(sel);
export const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));

/** Builds an element. `attrs.text` becomes textContent, `on*` functions become listeners. */
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'text') node.textContent = String(v);
    else if (k === 'class') node.className = v;
    else if (k.startsWith('on') && typeof v === 'function') node.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    node.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }
  return node;
}

export function setText(id, value) {
  const node = document.getElementById(id);
  const text = String(value);
  if (node.textContent !== text) {
    const bump = node.classList.contains('stat-value') && node.textContent !== '–';
    node.textContent = text;
    if (bump) {
      node.classList.remove('bump');
      void node.offsetWidth; // restart the animation
      node.classList.add('bump');
    }
  }
}

const numberFmt = new Intl.NumberFormat();
export const fmtNum = (n) => (n === null || n === undefined ? '–' : numberFmt.format(n));

export function fmtRate(r) {
  if (r === null || r === undefined) return '–';
  if (r === 0) return '0';
  return r >= 100 ? numberFmt.format(Math.round(r)) : r >= 10 ? r.toFixed(1) : r.toFixed(2);
}

export function fmtAgo(iso) {
  if (!iso) return '–';
  const ms = Date.now() - Date.parse(iso);
  if (Number.isNaN(ms)) return String(iso);
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 45) return 'just now';
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min ago`;
  const h = Math.round(m / 60);
  if (h < 24) return `${h} h ago`;
  return new Date(iso).toLocaleDateString();
}

export function fmtTime(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleString();
}

/** Short local time: the clock alone today, with the date otherwise. */
export function fmtWhen(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  if (d.toDateString() === new Date().toDateString()) return d.toLocaleTimeString();
  return d.toLocaleString(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
}

export function timeEl(iso) {
  return el('time', { datetime: iso || '', title: iso ? fmtTime(iso) : '', text: fmtAgo(iso), class: 'nowrap' });
}

export function chip(status) {
  return el('span', { class: `chip chip-${status}`, 'data-status': status, text: status });
}
