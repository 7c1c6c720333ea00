// The live event stream /api/events: topic and subscription changes as they happen, and a
// reload when events were missed or the stream comes back.
import { api, parseEventData } from './api.js';
import { state } from './state.js';
import { $ } from './dom.js';
import { reloadAll } from './ui.js';
import { applyTopicEvent, renderTopics } from './topics.js';
import { applySubscriptionEvent } from './subscriptions.js';
import { refreshTopicDialog } from './topic-dialog.js';
import { loadStatsSoon } from './stats.js';
import { loadAuditSoon } from './audit.js';
import { sessionEnded } from './session.js';

function setConn(kind, text) {
  const c = $('#conn');
  c.className = 'conn conn-' + kind;
  c.dataset.state = kind;
  $('#conn-text').textContent = text;
}

export function connectEvents() {
  if (state.events) state.events.close();
  setConn('connecting', 'Connecting');
  const es = new EventSource('/api/events');
  state.events = es;
  es.onopen = () => {
    state.eventsRetry = 0;
    setConn('live', 'Live');
    // Catch up on whatever happened while the stream was down.
    reloadAll();
  };
  es.onerror = () => {
    if (state.events !== es) return;
    if (es.readyState === EventSource.CONNECTING) {
      setConn('connecting', 'Reconnecting');
      return;
    }
    // The browser gave up (the server answered with an error): retry with backoff,
    // after checking that the session is still valid.
    setConn('offline', 'Offline');
    es.close();
    const delay = Math.min(30000, 1000 * 2 ** state.eventsRetry++);
    setTimeout(async () => {
      if (!state.me || state.events !== es) return;
      try {
        await api('GET', '/api/auth/me');
        connectEvents();
      } catch (e) {
        if (e.status === 401) sessionEnded();
        else if (e.code !== 'aborted') connectEvents();
      }
    }, delay);
  };
  es.addEventListener('topic', (e) => onTopic(parseEventData(e)));
  es.addEventListener('subscription', (e) => onSubscription(parseEventData(e)));
  es.addEventListener('resync', () => reloadAll());
}

function onTopic(ev) {
  if (!ev) return;
  applyTopicEvent(ev.topic);
  refreshTopicDialog(ev.topic);
  loadStatsSoon();
  loadAuditSoon();
}

function onSubscription(ev) {
  if (!ev || !applySubscriptionEvent(ev)) return;
  renderTopics(); // a user's Subscribe / Unsubscribe buttons depend on their subscriptions
  loadStatsSoon();
  loadAuditSoon();
}
