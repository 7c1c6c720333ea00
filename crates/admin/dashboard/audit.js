// The audit log view (admins): filters and pages of /api/audit.
import { api } from './api.js';
import { state } from './state.js';
import { $, el, timeEl } from './dom.js';
import { toast } from './ui.js';

const PAGE = 50;

let timer = null;
/** After a change, when the first page is shown: reload it once the burst is over. */
export function loadAuditSoon() {
  if (state.view !== 'audit' || state.audit.offset !== 0) return;
  clearTimeout(timer);
  timer = setTimeout(loadAudit, 250);
}

export async function loadAudit() {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(state.audit.filters)) if (v) q.set(k, v);
  q.set('limit', String(PAGE));
  q.set('offset', String(state.audit.offset));
  let entries;
  try {
    entries = await api('GET', '/api/audit?' + q);
  } catch (e) {
    toast(e.message, 'error');
    return;
  }
  const rows = entries.map((a) => {
    const states = a.before || a.after ? `${a.before || '∅'} → ${a.after || '∅'}` : '';
    // A rejection's reason, a provisioning failure.
    const change = a.detail ? (states ? `${states}: ${a.detail}` : a.detail) : states;
    return el('tr', {},
      el('td', {}, timeEl(a.at)),
      el('td', { class: 'nowrap', text: a.actor }),
      el('td', {}, el('span', { class: 'tag', text: a.action })),
      el('td', { text: a.target }),
      el('td', { class: 'change', text: change }),
    );
  });
  $('#audit-body').replaceChildren(...rows);
  $('#audit-empty').hidden = rows.length > 0;
  $('#audit-page').textContent = rows.length ? `${state.audit.offset + 1}–${state.audit.offset + rows.length}` : '';
  $('#audit-prev').disabled = state.audit.offset === 0;
  $('#audit-next').disabled = rows.length < PAGE;
}

function goTo(offset) {
  state.audit.offset = Math.max(0, offset);
  loadAudit();
}

export function wireAudit() {
  const form = $('#audit-filters');
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    state.audit.filters = { actor: form.actor.value.trim(), topic: form.topic.value.trim(), action: form.action.value.trim() };
    goTo(0);
  });
  form.addEventListener('reset', () => {
    state.audit.filters = {};
    // After the reset has cleared the fields.
    setTimeout(() => goTo(0), 0);
  });
  $('#audit-prev').addEventListener('click', () => goTo(state.audit.offset - PAGE));
  $('#audit-next').addEventListener('click', () => goTo(state.audit.offset + PAGE));
}
