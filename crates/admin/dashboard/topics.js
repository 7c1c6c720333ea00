// The topics view: the table with each topic's figures and the actions the signed-in
// principal may take on it.
import { api } from './api.js';
import { isAdmin, state } from './state.js';
import { currentRate, topicLag } from './figures.js';
import { $, $$, el, fmtNum, fmtRate, timeEl, chip } from './dom.js';
import { afterWrite, confirmDialog, toast } from './ui.js';
import { mySub, renderSubForm, subscribe, unsubscribe } from './subscriptions.js';
import { openTopic } from './topic-dialog.js';

const ORDER = { pending: 0, approved: 1, active: 2, inactive: 3, rejected: 4 };

export async function loadTopics() {
  const list = await api('GET', '/api/topics?limit=1000');
  state.topics.clear();
  for (const t of list) state.topics.set(t.topic_id, t);
  renderTopics();
  renderSubForm();
}

/** Applies a `topic` event to the list. */
export function applyTopicEvent(t) {
  if (t.status === 'deleted') state.topics.delete(t.topic_id);
  else state.topics.set(t.topic_id, t);
  renderTopics(t.topic_id);
  renderSubForm();
}

function visibleTopics() {
  const list = Array.from(state.topics.values());
  const f = state.topicFilter;
  const shown = f ? list.filter((t) => t.status === f) : list;
  return shown.sort((a, b) => (ORDER[a.status] - ORDER[b.status]) || b.topic_id - a.topic_id);
}

function topicActions(t) {
  const cell = el('td', { class: 'actions c-actions' });
  const btn = (label, cls, action, handler) =>
    el('button', { type: 'button', class: 'btn btn-sm ' + cls, 'data-action': action, text: label, onclick: handler });
  if (isAdmin()) {
    // The server lists what the lifecycle allows now; activation is the producer's.
    const ADMIN_BUTTONS = {
      approve: () => btn('Approve', 'btn-approve', 'approve', () => topicAction(t, 'approve')),
      reject: () => btn('Reject', 'btn-danger-text', 'reject', () => rejectTopic(t)),
      deactivate: () => btn('Deactivate', '', 'deactivate', () => topicAction(t, 'deactivate')),
      reactivate: () => btn('Reactivate', '', 'reactivate', () => topicAction(t, 'reactivate')),
      delete: () => btn('Delete', 'btn-ghost btn-danger-text', 'delete', () => deleteTopic(t)),
    };
    for (const action of t.actions) if (ADMIN_BUTTONS[action]) cell.append(ADMIN_BUTTONS[action]());
  } else if (t.status === 'active') {
    if (mySub(t.topic_name)) cell.append(btn('Unsubscribe', '', 'unsubscribe', () => unsubscribe(state.me.username, t.topic_name)));
    else cell.append(btn('Subscribe', 'btn-primary', 'subscribe', () => subscribe(null, t.topic_name)));
  }
  return cell;
}

/** Fills a row's rate, total and lag cells. Only a topic in Kafka has figures. */
function fillFigures(t, [rateCell, totalCell, lagCell]) {
  const rate = t.in_kafka ? currentRate(t.topic_name) : null;
  const total = t.in_kafka ? state.totals.get(t.topic_name) : undefined;
  const lag = t.in_kafka ? topicLag(t.topic_name) : null;
  rateCell.dataset.rate = rate === null ? '' : String(rate);
  rateCell.textContent = fmtRate(rate);
  totalCell.dataset.total = total === undefined ? '' : String(total);
  totalCell.textContent = fmtNum(total);
  lagCell.dataset.lag = lag === null ? '' : String(lag);
  lagCell.textContent = fmtNum(lag);
}

export function renderTopics(changedId) {
  const rows = visibleTopics().map((t) => {
    const name = el('button', { type: 'button', class: 'topic-link', text: t.topic_name, onclick: () => openTopic(t.topic_id) });
    const figures = [
      el('td', { class: 'num c-rate', 'data-label': 'msg/s' }),
      el('td', { class: 'num c-total', 'data-label': 'messages' }),
      el('td', { class: 'num c-lag', 'data-label': 'lag' }),
    ];
    fillFigures(t, figures);
    const tr = el('tr', { 'data-topic': t.topic_name, 'data-id': t.topic_id, 'data-status': t.status },
      el('td', { class: 'c-name' }, name, t.description ? el('span', { class: 'cell-sub', text: t.description, title: t.description }) : null),
      el('td', { class: 'c-status' }, chip(t.status), t.provisioning_error
        ? el('span', { class: 'cell-sub cell-error', text: 'not provisioned', title: t.provisioning_error })
        : null),
      el('td', { class: 'c-type' }, el('span', { class: 'tag', text: t.data_type })),
      el('td', { class: 'num c-parts', text: `${t.partitions} × ${t.replication_factor}`, title: 'partitions × replication factor' }),
      ...figures,
      el('td', { class: 'c-req' }, el('span', { class: 'nowrap', text: t.created_by }), el('span', { class: 'cell-sub' }, timeEl(t.created_at))),
      topicActions(t),
    );
    if (changedId !== undefined && t.topic_id === changedId) tr.classList.add('flash');
    return tr;
  });
  $('#topics-body').replaceChildren(...rows);
  const empty = $('#topics-empty');
  empty.hidden = rows.length > 0;
  empty.textContent = state.topicFilter && state.topics.size ? `No ${state.topicFilter} topics.` : 'No topics yet. Request one with “New topic”.';
}

// Refreshes only the figure cells, so a sample every few seconds does not rebuild the table.
export function updateTopicFigures() {
  for (const tr of $$('#topics-body tr')) {
    const t = state.topics.get(Number(tr.dataset.id));
    if (t) fillFigures(t, [tr.cells[4], tr.cells[5], tr.cells[6]]);
  }
}

async function topicAction(t, action, body) {
  try {
    toast((await api('POST', `/api/topics/${t.topic_id}/${action}`, body)).message);
    afterWrite();
  } catch (e) {
    toast(e.message, 'error');
  }
}

async function rejectTopic(t) {
  const reason = await confirmDialog({
    title: `Reject ${t.topic_name}?`,
    text: 'The requester can read the reason.',
    ok: 'Reject',
    reason: true,
  });
  if (reason !== null) topicAction(t, 'reject', { reason });
}

async function deleteTopic(t) {
  const ok = await confirmDialog({
    title: `Delete ${t.topic_name}?`,
    text: 'The topic leaves the registry. A topic with subscribers cannot be deleted.',
    ok: 'Delete',
  });
  if (ok === null) return;
  try {
    toast((await api('DELETE', `/api/topics/${t.topic_id}`)).message);
    afterWrite();
  } catch (e) {
    toast(e.message, 'error');
  }
}

export function wireTopics() {
  for (const b of $$('#topic-filter button')) {
    b.addEventListener('click', () => {
      state.topicFilter = b.dataset.status;
      for (const o of $$('#topic-filter button')) o.classList.toggle('on', o === b);
      renderTopics();
    });
  }
}
