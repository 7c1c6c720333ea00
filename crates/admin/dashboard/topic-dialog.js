// A topic's details drawer and the live tail of its messages (/api/topics/<id>/tail).
import { parseEventData } from './api.js';
import { isAdmin, state } from './state.js';
import { loadTopicAccess } from './access.js';
import { currentRate, kafkaOff } from './figures.js';
import { $, el, fmtNum, fmtRate, fmtWhen, chip } from './dom.js';

const TAIL_KEEP = 200;

const tail = { id: null, es: null, paused: false, buffered: [], count: 0 };

export function openTopic(id) {
  const t = state.topics.get(id);
  if (!t) return;
  tail.id = id;
  fillTopicDialog(t);
  $('#topic-dialog').showModal();
  startTail(t);
  if (isAdmin()) loadTopicAccess(id);
}

/** Follows a change of the open topic; its tail starts when it comes into Kafka. */
export function refreshTopicDialog(t) {
  if (tail.id !== t.topic_id || !$('#topic-dialog').open) return;
  const hadTail = tail.es !== null;
  fillTopicDialog(t);
  if (!hadTail && t.in_kafka) startTail(t);
  if (isAdmin()) loadTopicAccess(t.topic_id);
}

export function closeTopicDialog() {
  stopTail();
  tail.id = null;
  const d = $('#topic-dialog');
  if (d.open) d.close();
}

function fillTopicDialog(t) {
  $('#td-name').textContent = t.topic_name;
  $('#td-meta').replaceChildren(chip(t.status), el('span', { class: 'tag', text: t.data_type }), el('span', { class: 'muted small', text: `#${t.topic_id}` }));
  $('#td-description').textContent = t.description;
  const reason = $('#td-reason');
  reason.hidden = !t.rejection_reason;
  reason.textContent = t.rejection_reason ? 'Rejected: ' + t.rejection_reason : '';
  const failure = $('#td-provisioning');
  failure.hidden = !t.provisioning_error;
  failure.textContent = t.provisioning_error ? 'Kafka cannot create it: ' + t.provisioning_error : '';
  const kv = (k, v, id) => el('div', {}, el('dt', { text: k }), el('dd', { text: v, id }));
  $('#td-kv').replaceChildren(
    kv('Partitions', String(t.partitions)),
    kv('Replication factor', String(t.replication_factor)),
    kv('Rate', t.traffic_profile ? `profile ${t.traffic_profile}`
      : t.rate_per_second ? `${t.rate_per_second} msg/s` : 'default (~1 msg/s)'),
    kv('Requested by', t.created_by),
    kv('Requested', fmtWhen(t.created_at)),
    kv('Activated', t.activated_at ? fmtWhen(t.activated_at) : '–'),
    kv('Messages', '', 'td-messages'),
    kv('Now', '', 'td-rate'),
  );
  updateTopicDialogFigures();
}

// The open drawer's figures follow each Kafka sample, as the table's do.
export function updateTopicDialogFigures() {
  const t = tail.id === null ? null : state.topics.get(tail.id);
  const messages = $('#td-messages');
  if (!t || !messages) return;
  const total = state.totals.get(t.topic_name);
  messages.dataset.total = total === undefined ? '' : String(total);
  messages.textContent = fmtNum(total);
  $('#td-rate').textContent = `${fmtRate(currentRate(t.topic_name))} msg/s`;
}

function tailNote(text) {
  $('#tail').replaceChildren(el('div', { class: 'tail-note', text }));
}

function tailOver(text) {
  tailNote(text);
  $('#tail-state').textContent = '';
  $('#tail-toggle').disabled = true;
}

function stopTail() {
  if (tail.es) tail.es.close();
  tail.es = null;
}

function startTail(t) {
  stopTail();
  tail.paused = false;
  tail.buffered = [];
  tail.count = 0;
  $('#tail-toggle').textContent = 'Pause';
  $('#tail-toggle').disabled = false;
  if (!t.in_kafka) return tailOver(`No messages: the topic is ${t.status}.`);
  tailNote('Waiting for messages…');
  $('#tail-state').textContent = 'connecting';
  const url = `/api/topics/${t.topic_id}/tail`;
  const es = new EventSource(url);
  tail.es = es;
  es.onopen = () => {
    if (tail.es === es) $('#tail-state').textContent = 'live';
  };
  es.addEventListener('status', (e) => {
    const s = parseEventData(e);
    if (s && s.enabled === false) {
      es.close();
      tailOver(kafkaOff(s.note));
    }
  });
  es.addEventListener('message', (e) => {
    const m = parseEventData(e);
    if (!m) return;
    if (tail.count === 0) $('#tail').replaceChildren();
    tail.count++;
    if (tail.paused) {
      tail.buffered.push(m);
      if (tail.buffered.length > TAIL_KEEP) tail.buffered.shift();
      $('#tail-state').textContent = `paused · ${tail.buffered.length} new`;
    } else {
      appendTail(m);
    }
  });
  es.onerror = async () => {
    if (tail.es !== es || es.readyState !== EventSource.CLOSED) {
      if (tail.es === es) $('#tail-state').textContent = 'reconnecting';
      return;
    }
    // The server refused the stream (EventSource does not expose why): ask again for
    // its JSON error.
    $('#tail-state').textContent = '';
    let why = 'The message tail is not available.';
    try {
      const ctl = new AbortController();
      setTimeout(() => ctl.abort(), 3000);
      const res = await fetch(url, { headers: { Accept: 'application/json' }, signal: ctl.signal, credentials: 'same-origin' });
      why = (await res.json()).error || why;
    } catch (err) {
      // keep the generic text
    }
    if (tail.es === es) tailOver(why);
  };
}

function toggleTail() {
  tail.paused = !tail.paused;
  $('#tail-toggle').textContent = tail.paused ? 'Resume' : 'Pause';
  if (tail.paused) {
    $('#tail-state').textContent = 'paused';
  } else {
    const pending = tail.buffered;
    tail.buffered = [];
    for (const m of pending) appendTail(m);
    $('#tail-state').textContent = tail.es ? 'live' : '';
  }
}

function appendTail(m) {
  const box = $('#tail');
  const atTop = box.scrollTop < 8;
  const head = el('div', { class: 'msg-head' },
    el('span', { text: `p${m.partition}` }),
    el('span', { text: `@${m.offset}` }));
  if (m.key !== null && m.key !== undefined) head.append(el('span', { text: `key ${m.key}` }));
  if (m.timestamp) head.append(el('span', { text: fmtWhen(m.timestamp) }));
  // Where the value breaks its data type's schema (GET /api/schemas/<data_type>).
  const errors = (m.schema_errors || []).map((e) => (e.path ? `${e.path}: ${e.message}` : e.message));
  if (errors.length) {
    head.append(el('span', { class: 'schema-badge', title: errors.join('\n'), text: `invalid (${errors.length})` }));
  }
  const msg = el('div', { class: errors.length ? 'msg msg-invalid' : 'msg' }, head, prettyJson(m.value));
  if (errors.length) msg.append(el('ul', { class: 'schema-errors' }, ...errors.map((text) => el('li', { text }))));
  box.prepend(msg); // newest first
  while (box.childElementCount > TAIL_KEEP) box.lastElementChild.remove();
  if (atTop) box.scrollTop = 0;
}

/** Pretty-printed, coloured JSON built from text nodes only. */
function prettyJson(value) {
  const pre = el('pre');
  const text = JSON.stringify(value, null, 2);
  const token = /("(?:\\.|[^"\\])*")(\s*:)?|\b(true|false|null)\b|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)/g;
  let last = 0;
  let m;
  while ((m = token.exec(text))) {
    if (m.index > last) pre.append(text.slice(last, m.index));
    if (m[1]) {
      pre.append(el('span', { class: m[2] ? 'k' : 's', text: m[1] }));
      if (m[2]) pre.append(m[2]);
    } else if (m[3]) {
      pre.append(el('span', { class: 'b', text: m[3] }));
    } else {
      pre.append(el('span', { class: 'n', text: m[4] }));
    }
    last = token.lastIndex;
  }
  if (last < text.length) pre.append(text.slice(last));
  return pre;
}

export function wireTopicDialog() {
  $('#tail-toggle').addEventListener('click', toggleTail);
  $('#topic-dialog').addEventListener('close', closeTopicDialog);
}
