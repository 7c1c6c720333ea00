// The subscriptions view: the list with each subscription's lag, and the form. An admin
// sees and manages everyone's; a user their own.
import { api } from './api.js';
import { isAdmin, state } from './state.js';
import { lagOf } from './figures.js';
import { $, $$, el, fmtNum, timeEl } from './dom.js';
import { afterWrite, toast } from './ui.js';
import { renderCharts } from './overview.js';

const sameSub = (a, b) => a.user_id === b.user_id && a.topic_name === b.topic_name;

export async function loadSubs() {
  const q = isAdmin() ? '' : '?user_id=' + encodeURIComponent(state.me.username);
  state.subs = await api('GET', '/api/subscriptions' + q);
  renderSubs();
}

/** Applies a `subscription` event; false when it is not this principal's to see. */
export function applySubscriptionEvent(ev) {
  const s = ev.subscription;
  if (!isAdmin() && s.user_id !== state.me.username) return false;
  state.subs = state.subs.filter((x) => !sameSub(x, s));
  if (ev.subscribed) state.subs.push(s);
  renderSubs(ev.subscribed ? s : null);
  return true;
}

/** Whether the signed-in user subscribes to `topicName`. */
export function mySub(topicName) {
  return state.subs.some((s) => s.topic_name === topicName && s.user_id === state.me.username);
}

function lagCell(cell, lag) {
  cell.dataset.lag = lag === null ? '' : String(lag);
  cell.textContent = lag === null ? '–' : fmtNum(lag);
}

export function renderSubs(added) {
  const subs = state.subs.slice().sort((a, b) => Date.parse(b.subscribed_at) - Date.parse(a.subscribed_at));
  const rows = subs.map((s) => {
    const canRemove = isAdmin() || s.user_id === state.me.username;
    const lag = el('td', { class: 'num' });
    lagCell(lag, lagOf(s));
    const tr = el('tr', { 'data-user': s.user_id, 'data-topic': s.topic_name },
      el('td', { class: 'nowrap col-user' }, el('strong', { text: s.user_id })),
      el('td', { class: 'strong-sm', text: s.topic_name }),
      el('td', { class: 'hide-sm' }, timeEl(s.subscribed_at)),
      lag,
      el('td', { class: 'actions' }, canRemove
        ? el('button', { type: 'button', class: 'btn btn-sm btn-ghost btn-danger-text', text: 'Unsubscribe', onclick: () => unsubscribe(s.user_id, s.topic_name) })
        : null),
    );
    if (added && sameSub(added, s)) tr.classList.add('flash');
    return tr;
  });
  $('#subs-body').replaceChildren(...rows);
  $('#subs-empty').hidden = rows.length > 0;
  $('#subs-count').textContent = rows.length ? `${rows.length} total` : '';
  renderCharts();
}

// Refreshes only the lag cells after each sample.
export function updateSubLag() {
  for (const tr of $$('#subs-body tr')) {
    lagCell(tr.cells[3], lagOf({ user_id: tr.dataset.user, topic_name: tr.dataset.topic }));
  }
}

/** The form's choice of topics: those that can be subscribed to. */
export function renderSubForm() {
  const select = $('#sub-topic');
  const current = select.value;
  const active = Array.from(state.topics.values())
    .filter((t) => t.status === 'active')
    .sort((a, b) => a.topic_name.localeCompare(b.topic_name));
  select.replaceChildren(
    el('option', { value: '', text: active.length ? 'Choose a topic' : 'No active topics', disabled: true, selected: !current }),
    ...active.map((t) => el('option', { value: t.topic_name, text: t.topic_name, selected: t.topic_name === current })),
  );
}

/** Subscribes `userId` (the caller when null); true when it worked. */
export async function subscribe(userId, topicName) {
  const body = { topic_name: topicName };
  if (userId) body.user_id = userId;
  try {
    toast((await api('POST', '/api/subscriptions', body)).message);
    afterWrite();
    return true;
  } catch (e) {
    toast(e.message, 'error');
    return false;
  }
}

export async function unsubscribe(userId, topicName) {
  try {
    toast((await api('DELETE', '/api/subscriptions', { user_id: userId, topic_name: topicName })).message);
    afterWrite();
  } catch (e) {
    toast(e.message, 'error');
  }
}

export function wireSubscriptions() {
  $('#sub-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const form = ev.currentTarget;
    const user = isAdmin() ? form.user_id.value.trim() : '';
    if (!form.topic_name.value) return toast('Choose an active topic.', 'error');
    if (await subscribe(user || null, form.topic_name.value)) form.user_id.value = '';
  });
}
