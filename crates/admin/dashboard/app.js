// streamhub dashboard. No framework: the DOM is built with createElement and textContent,
// so nothing a user typed (topic names, descriptions, reasons, payloads) is ever parsed as
// HTML. Live state comes from the server-sent event stream /api/events; Kafka figures
// (totals, rates, lag and their 15-minute histories) are read from /api/metrics/* every few
// seconds: the server samples them, the page only draws them.
import { Charts } from './charts.js';
import { api, asList, cookie, onSessionEnded } from './api.js';
import { RATE_WINDOW_MS, colourOf, isAdmin, state } from './state.js';
import { currentRate, kafkaOff, lagOf, readFigures, topicLag } from './figures.js';
import { $, $$, el, setText, fmtNum, fmtRate, fmtAgo, fmtTime, fmtWhen, timeEl, chip } from './dom.js';

{
  const SAMPLE_MS = 3000;
  const TAIL_KEEP = 200;
  const AUDIT_PAGE = 50;

  function toast(message, kind) {
    if (!state.me) return; // signed out meanwhile: nothing to report on
    const t = el('div', { class: 'toast' + (kind === 'error' ? ' toast-error' : ''), role: kind === 'error' ? 'alert' : 'status', text: message });
    $('#toasts').appendChild(t);
    setTimeout(() => t.remove(), kind === 'error' ? 7000 : 3500);
  }

  // ---------------------------------------------------------------- sign in / out

  async function boot() {
    wireStatic();
    // The readable CSRF cookie comes with every session: without it there is no session
    // to resume, so the sign-in form shows without a request that would only answer 401.
    if (!cookie('streamhub_csrf')) return showLogin('');
    try {
      state.me = await api('GET', '/api/auth/me');
      startApp();
    } catch (e) {
      showLogin(e.status === 401 || e.status === 403 ? '' : e.message);
    }
  }

  function showLogin(message) {
    $('#app-view').hidden = true;
    $('#login-view').hidden = false;
    const err = $('#login-error');
    err.hidden = !message;
    err.textContent = message || '';
    $('#login-username').focus();
  }

  async function login(ev) {
    ev.preventDefault();
    const form = ev.currentTarget;
    const button = $('#login-submit');
    button.disabled = true;
    $('#login-error').hidden = true;
    try {
      await api('POST', '/api/auth/login', {
        username: form.username.value.trim(),
        password: form.password.value,
      }, { signal: null });
      state.me = await api('GET', '/api/auth/me', undefined, { signal: null });
      form.password.value = '';
      startApp();
    } catch (e) {
      showLogin(e.status === 401 ? 'Wrong username or password.' : e.message);
    } finally {
      button.disabled = false;
    }
  }

  async function logout() {
    stopApp();
    try {
      // The server checks the CSRF cookie against the header, so it is dropped only after.
      await api('POST', '/api/auth/logout', undefined, { signal: null });
    } catch (e) {
      // The page forgets the session either way.
    }
    forgetSession();
    showLogin('');
  }

  /** The server clears the cookies too; dropping the readable one here keeps a reload
   * from probing a session that is gone. */
  function forgetSession() {
    document.cookie = 'streamhub_csrf=; Max-Age=0; Path=/; SameSite=Strict';
  }

  function sessionEnded() {
    stopApp();
    forgetSession();
    showLogin('Your session has ended. Please sign in again.');
  }

  function stopApp() {
    state.me = null;
    state.abort.abort();
    if (state.events) state.events.close();
    state.events = null;
    for (const t of state.timers) clearInterval(t);
    state.timers = [];
    closeTopicDialog();
    state.topics.clear();
    state.subs = [];
    state.rates.clear();
    state.lagHistory.clear();
  }

  function startApp() {
    state.abort = new AbortController();
    $('#login-view').hidden = true;
    $('#app-view').hidden = false;
    $('#who-name').textContent = state.me.username;
    $('#who-role').textContent = state.me.role;
    document.body.classList.toggle('is-admin', isAdmin());
    for (const n of $$('[data-admin]')) n.hidden = !isAdmin();
    $('#subs-title').textContent = isAdmin() ? 'Subscriptions' : 'My subscriptions';
    route();
    reloadAll();
    connectEvents();
    sampleMetrics();
    state.timers.push(setInterval(sampleMetrics, SAMPLE_MS));
    // Keeps the relative times ("2 min ago") and the chart's time axis moving.
    state.timers.push(setInterval(() => {
      for (const t of $$('time[datetime]')) if (t.dateTime) t.textContent = fmtAgo(t.dateTime);
    }, 30000));
  }

  // ---------------------------------------------------------------- routing

  const VIEWS = ['overview', 'topics', 'subscriptions', 'audit', 'users'];

  function route() {
    let view = location.hash.replace(/^#/, '') || 'overview';
    if (!VIEWS.includes(view) || ((view === 'audit' || view === 'users') && !isAdmin())) view = 'overview';
    state.view = view;
    for (const v of VIEWS) $('#view-' + v).hidden = v !== view;
    for (const a of $$('#tabs a')) a.classList.toggle('on', a.dataset.view === view);
    if (view === 'overview') renderCharts();
    if (view === 'audit') loadAudit();
    if (view === 'users') loadUsers();
  }

  // ---------------------------------------------------------------- loading

  let reloadPending = null;
  function reloadAll() {
    if (reloadPending) return reloadPending;
    reloadPending = Promise.all([loadTopics(), loadSubs(), loadStats()])
      .catch((e) => toast(e.message, 'error'))
      .finally(() => {
        reloadPending = null;
      });
    return reloadPending;
  }

  async function loadTopics() {
    const list = asList(await api('GET', '/api/topics?limit=1000'), 'topics');
    state.topics.clear();
    for (const t of list) state.topics.set(t.topic_id, t);
    renderTopics();
    renderSubForm();
  }

  async function loadSubs() {
    const q = isAdmin() ? '' : '?user_id=' + encodeURIComponent(state.me.username);
    state.subs = asList(await api('GET', '/api/subscriptions' + q), 'subscriptions');
    renderSubs();
    renderTopics(); // a user's Subscribe / Unsubscribe buttons depend on their subscriptions
  }

  let statsTimer = null;
  function loadStatsSoon() {
    clearTimeout(statsTimer);
    statsTimer = setTimeout(() => loadStats().catch(() => {}), 120);
  }

  async function loadStats() {
    state.stats = await api('GET', '/api/stats');
    renderStats();
  }

  // ---------------------------------------------------------------- live events

  function setConn(kind, text) {
    const c = $('#conn');
    c.className = 'conn conn-' + kind;
    c.dataset.state = kind;
    $('#conn-text').textContent = text;
  }

  function connectEvents() {
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
    es.addEventListener('topic', (e) => onTopicEvent(parseEvent(e)));
    es.addEventListener('subscription', (e) => onSubscriptionEvent(parseEvent(e)));
    es.addEventListener('resync', () => reloadAll());
  }

  function parseEvent(e) {
    try {
      return JSON.parse(e.data);
    } catch (err) {
      return null;
    }
  }

  function onTopicEvent(ev) {
    if (!ev || !ev.topic) return;
    const t = ev.topic;
    if (t.status === 'deleted') state.topics.delete(t.topic_id);
    else state.topics.set(t.topic_id, t);
    renderTopics(t.topic_id);
    renderSubForm();
    loadStatsSoon();
    refreshTopicDialog(t);
    if (state.view === 'audit') loadAuditSoon();
  }

  function onSubscriptionEvent(ev) {
    if (!ev || !ev.subscription) return;
    const s = ev.subscription;
    if (!isAdmin() && s.user_id !== state.me.username) return;
    const same = (x) => x.user_id === s.user_id && x.topic_name === s.topic_name;
    state.subs = state.subs.filter((x) => !same(x));
    if (ev.subscribed) state.subs.push(s);
    renderSubs(ev.subscribed ? s : null);
    renderTopics();
    loadStatsSoon();
    if (state.view === 'audit') loadAuditSoon();
  }

  // ---------------------------------------------------------------- Kafka figures

  async function sampleMetrics() {
    if (await readFigures()) renderKafka();
  }

  function renderKafka() {
    const banner = $('#kafka-banner');
    if (state.kafka.enabled === false) {
      banner.hidden = false;
      banner.textContent = kafkaOff(state.kafka.note) + ' Topic states and subscriptions are still live.';
    } else {
      banner.hidden = true;
    }
    renderStats();
    updateTopicFigures();
    updateTopicDialogFigures();
    updateSubLag();
    if (state.view === 'overview') renderCharts();
  }

  // ---------------------------------------------------------------- stat cards

  function renderStats() {
    const s = state.stats;
    if (!s) return;
    setText('stat-total', fmtNum(s.total_topics));
    const rest = [];
    if (s.approved_topics) rest.push(`${s.approved_topics} approved`);
    if (s.inactive_topics) rest.push(`${s.inactive_topics} inactive`);
    if (s.rejected_topics) rest.push(`${s.rejected_topics} rejected`);
    setText('stat-total-sub', rest.join(' · ') || 'all states');
    setText('stat-pending', fmtNum(s.pending_topics));
    setText('stat-active', fmtNum(s.active_topics));
    setText('stat-subs', fmtNum(s.total_subscriptions));
    setText('stat-subs-sub', s.total_users !== undefined ? `${fmtNum(s.total_users)} ${s.total_users === 1 ? 'user' : 'users'}` : '');
    if (state.kafka.enabled) {
      let sum = 0;
      for (const v of state.totals.values()) sum += v;
      const total = state.totals.size ? sum : s.kafka && s.kafka.total_messages;
      setText('stat-messages', fmtNum(total));
      let rate = 0;
      let any = false;
      for (const name of state.totals.keys()) {
        const r = currentRate(name);
        if (r !== null) {
          rate += r;
          any = true;
        }
      }
      setText('stat-rate', any ? `${fmtRate(rate)} msg/s now` : 'measuring rate…');
    } else if (state.kafka.enabled === false) {
      setText('stat-messages', 'off');
      setText('stat-rate', 'Kafka figures are off');
    }
  }

  // ---------------------------------------------------------------- topics

  function visibleTopics() {
    const list = Array.from(state.topics.values()).filter((t) => t.status !== 'deleted');
    const f = state.topicFilter;
    const shown = f ? list.filter((t) => t.status === f) : list;
    const order = { pending: 0, approved: 1, active: 2, inactive: 3, rejected: 4 };
    return shown.sort((a, b) => (order[a.status] - order[b.status]) || b.topic_id - a.topic_id);
  }

  function mySub(topicName) {
    return state.subs.some((s) => s.topic_name === topicName && s.user_id === state.me.username);
  }

  function topicActions(t) {
    const cell = el('td', { class: 'actions c-actions' });
    const btn = (label, cls, action, handler) =>
      el('button', { type: 'button', class: 'btn btn-sm ' + cls, 'data-action': action, text: label, onclick: handler });
    if (isAdmin()) {
      if (t.status === 'pending') {
        cell.append(
          btn('Approve', 'btn-approve', 'approve', () => topicAction(t, 'approve')),
          btn('Reject', 'btn-danger-text', 'reject', () => rejectTopic(t)),
        );
      }
      // The producer reported that Kafka cannot hold it: the server allows rejecting it.
      if (t.status === 'approved' && t.provisioning_error) cell.append(btn('Reject', 'btn-danger-text', 'reject', () => rejectTopic(t)));
      if (t.status === 'active') cell.append(btn('Deactivate', '', 'deactivate', () => topicAction(t, 'deactivate')));
      if (t.status === 'inactive') cell.append(btn('Reactivate', '', 'reactivate', () => topicAction(t, 'reactivate')));
      cell.append(btn('Delete', 'btn-ghost btn-danger-text', 'delete', () => deleteTopic(t)));
    } else if (t.status === 'active') {
      if (mySub(t.topic_name)) cell.append(btn('Unsubscribe', '', 'unsubscribe', () => unsubscribe(state.me.username, t.topic_name)));
      else cell.append(btn('Subscribe', 'btn-primary', 'subscribe', () => subscribe(null, t.topic_name)));
    }
    return cell;
  }

  function renderTopics(changedId) {
    const body = $('#topics-body');
    const rows = visibleTopics().map((t) => {
      const name = el('button', { type: 'button', class: 'topic-link', text: t.topic_name, onclick: () => openTopic(t.topic_id) });
      const rate = currentRate(t.topic_name);
      const total = state.totals.get(t.topic_name);
      const lag = topicLag(t.topic_name);
      const tr = el('tr', { 'data-topic': t.topic_name, 'data-id': t.topic_id, 'data-status': t.status },
        el('td', { class: 'c-name' }, name, t.description ? el('span', { class: 'cell-sub', text: t.description, title: t.description }) : null),
        el('td', { class: 'c-status' }, chip(t.status), t.provisioning_error
          ? el('span', { class: 'cell-sub cell-error', text: 'not provisioned', title: t.provisioning_error })
          : null),
        el('td', { class: 'c-type' }, el('span', { class: 'tag', text: t.data_type })),
        el('td', { class: 'num c-parts', text: `${t.partitions} × ${t.replication_factor}`, title: 'partitions × replication factor' }),
        el('td', { class: 'num c-rate', 'data-label': 'msg/s', 'data-rate': rate === null ? '' : String(rate), text: t.status === 'active' || rate ? fmtRate(rate) : '–' }),
        el('td', { class: 'num c-total', 'data-label': 'messages', 'data-total': total === undefined ? '' : String(total), text: total === undefined ? '–' : fmtNum(total) }),
        el('td', { class: 'num c-lag', 'data-label': 'lag', 'data-lag': lag === null ? '' : String(lag), text: lag === null ? '–' : fmtNum(lag) }),
        el('td', { class: 'c-req' }, el('span', { class: 'nowrap', text: t.created_by }), el('span', { class: 'cell-sub' }, timeEl(t.created_at))),
        topicActions(t),
      );
      if (changedId !== undefined && t.topic_id === changedId) tr.classList.add('flash');
      return tr;
    });
    body.replaceChildren(...rows);
    $('#topics-empty').hidden = rows.length > 0;
    $('#topics-empty').textContent = state.topicFilter && state.topics.size ? `No ${state.topicFilter} topics.` : 'No topics yet. Request one with “New topic”.';
  }

  // Refreshes only the figure cells, so a sample every few seconds does not rebuild the table.
  function updateTopicFigures() {
    for (const tr of $$('#topics-body tr')) {
      const name = tr.dataset.topic;
      const rate = currentRate(name);
      const total = state.totals.get(name);
      const lag = topicLag(name);
      const [rateCell, totalCell, lagCell] = [tr.cells[4], tr.cells[5], tr.cells[6]];
      lagCell.dataset.lag = lag === null ? '' : String(lag);
      lagCell.textContent = lag === null ? '–' : fmtNum(lag);
      rateCell.dataset.rate = rate === null ? '' : String(rate);
      rateCell.textContent = tr.dataset.status === 'active' || rate ? fmtRate(rate) : '–';
      totalCell.dataset.total = total === undefined ? '' : String(total);
      totalCell.textContent = total === undefined ? '–' : fmtNum(total);
    }
  }

  async function topicAction(t, action, body) {
    try {
      const res = await api('POST', `/api/topics/${t.topic_id}/${action}`, body);
      toast((res && res.message) || `${action} ${t.topic_name}: done`);
      // The event stream brings the new state; refresh at once in case it is down.
      if (!state.events || state.events.readyState !== EventSource.OPEN) reloadAll();
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
    if (reason === null) return;
    topicAction(t, 'reject', { reason });
  }

  async function deleteTopic(t) {
    const ok = await confirmDialog({
      title: `Delete ${t.topic_name}?`,
      text: 'The topic leaves the registry. A topic with subscribers cannot be deleted.',
      ok: 'Delete',
    });
    if (ok === null) return;
    try {
      const res = await api('DELETE', `/api/topics/${t.topic_id}`);
      toast((res && res.message) || `Deleted ${t.topic_name}`);
      if (!state.events || state.events.readyState !== EventSource.OPEN) reloadAll();
    } catch (e) {
      toast(e.message, 'error');
    }
  }

  /** Resolves to the reason ('' when none is asked) or null when cancelled. */
  function confirmDialog({ title, text, ok, reason }) {
    const dialog = $('#confirm-dialog');
    const form = $('#confirm-form');
    $('#confirm-title').textContent = title;
    $('#confirm-text').textContent = text;
    $('#confirm-ok').textContent = ok;
    $('#confirm-reason-label').hidden = !reason;
    form.reason.required = !!reason;
    form.reason.value = '';
    dialog.returnValue = '';
    return new Promise((resolve) => {
      const done = () => {
        dialog.removeEventListener('close', done);
        resolve(dialog.returnValue === 'ok' ? form.reason.value.trim() : null);
      };
      dialog.addEventListener('close', done);
      dialog.showModal();
      if (reason) form.reason.focus();
    });
  }

  // ---------------------------------------------------------------- create topic

  function openCreate() {
    const form = $('#create-form');
    form.reset();
    form.created_by.value = state.me.username;
    $('.form-error', form).hidden = true;
    $('#create-dialog').showModal();
    form.name.focus();
  }

  async function submitCreate(ev) {
    ev.preventDefault();
    const form = ev.currentTarget;
    const err = $('.form-error', form);
    const body = {
      name: form.name.value.trim(),
      partitions: Number(form.partitions.value),
      replication_factor: Number(form.replication_factor.value),
      description: form.description.value,
    };
    if (form.created_by.value.trim()) body.created_by = form.created_by.value.trim();
    if (form.data_type.value) body.data_type = form.data_type.value;
    if (form.rate_per_second.value !== '') body.rate_per_second = Number(form.rate_per_second.value);
    const submit = $('button[type=submit]', form);
    submit.disabled = true;
    try {
      const res = await api('POST', '/api/topics', body);
      $('#create-dialog').close();
      toast((res && res.message) || `Requested ${body.name}`);
      if (!state.events || state.events.readyState !== EventSource.OPEN) reloadAll();
    } catch (e) {
      err.hidden = false;
      err.textContent = e.message;
    } finally {
      submit.disabled = false;
    }
  }

  // ---------------------------------------------------------------- topic details and tail

  const tail = { id: null, es: null, paused: false, buffered: [], count: 0 };

  function openTopic(id) {
    const t = state.topics.get(id);
    if (!t) return;
    tail.id = id;
    fillTopicDialog(t);
    $('#topic-dialog').showModal();
    startTail(t);
  }

  function refreshTopicDialog(t) {
    if (tail.id !== t.topic_id || !$('#topic-dialog').open) return;
    const wasActive = $('#td-meta .chip') && $('#td-meta .chip').dataset.status === 'active';
    fillTopicDialog(t);
    if (!wasActive && t.status === 'active') startTail(t);
  }

  function fillTopicDialog(t) {
    $('#td-name').textContent = t.topic_name;
    $('#td-meta').replaceChildren(chip(t.status), el('span', { class: 'tag', text: t.data_type }), el('span', { class: 'muted small', text: `#${t.topic_id}` }));
    $('#td-description').textContent = t.description || '';
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
      kv('Rate', t.rate_per_second ? `${t.rate_per_second} msg/s` : 'default (~1 msg/s)'),
      kv('Requested by', t.created_by),
      kv('Requested', t.created_at ? fmtWhen(t.created_at) : '–'),
      kv('Activated', t.activated_at ? fmtWhen(t.activated_at) : '–'),
      kv('Messages', '', 'td-messages'),
      kv('Now', '', 'td-rate'),
    );
    updateTopicDialogFigures();
  }

  // The open drawer's figures follow each Kafka sample, as the table's do.
  function updateTopicDialogFigures() {
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
    if (t.status !== 'active' && t.status !== 'inactive') {
      tailNote(`No messages: the topic is ${t.status}.`);
      $('#tail-state').textContent = '';
      $('#tail-toggle').disabled = true;
      return;
    }
    tailNote('Waiting for messages…');
    $('#tail-state').textContent = 'connecting';
    const url = `/api/topics/${t.topic_id}/tail`;
    const es = new EventSource(url);
    tail.es = es;
    es.onopen = () => {
      if (tail.es === es) $('#tail-state').textContent = 'live';
    };
    es.addEventListener('status', (e) => {
      const s = parseEvent(e);
      if (s && s.enabled === false) {
        es.close();
        tailNote(kafkaOff(s.note));
        $('#tail-state').textContent = '';
        $('#tail-toggle').disabled = true;
      }
    });
    es.addEventListener('message', (e) => {
      const m = parseEvent(e);
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
      // The server refused the stream: read its JSON error to say why.
      $('#tail-state').textContent = '';
      let why = 'The message tail is not available.';
      try {
        const ctl = new AbortController();
        setTimeout(() => ctl.abort(), 3000);
        const res = await fetch(url, { headers: { Accept: 'application/json' }, signal: ctl.signal, credentials: 'same-origin' });
        const body = await res.json();
        if (body && body.error) why = body.error;
      } catch (err) {
        // keep the generic text
      }
      if (tail.es === es) {
        tailNote(why);
        $('#tail-toggle').disabled = true;
      }
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
    const head = el('div', { class: 'msg-head' });
    if (m.partition !== undefined) head.append(el('span', { text: `p${m.partition}` }));
    if (m.offset !== undefined) head.append(el('span', { text: `@${m.offset}` }));
    if (m.key !== undefined && m.key !== null) head.append(el('span', { text: `key ${m.key}` }));
    if (m.timestamp) head.append(el('span', { text: fmtWhen(typeof m.timestamp === 'number' ? new Date(m.timestamp).toISOString() : m.timestamp) }));
    const value = m.value !== undefined ? m.value : m;
    const row = el('div', { class: 'msg' }, head, prettyJson(value));
    box.prepend(row); // newest first
    while (box.childElementCount > TAIL_KEEP) box.lastElementChild.remove();
    if (atTop) box.scrollTop = 0;
  }

  /** Pretty-printed, coloured JSON built from text nodes only. */
  function prettyJson(value) {
    const pre = el('pre');
    if (typeof value === 'string') {
      try {
        value = JSON.parse(value);
      } catch (e) {
        pre.textContent = value;
        return pre;
      }
    }
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

  function closeTopicDialog() {
    stopTail();
    tail.id = null;
    const d = $('#topic-dialog');
    if (d.open) d.close();
  }

  // ---------------------------------------------------------------- subscriptions

  function renderSubs(added) {
    const subs = state.subs.slice().sort((a, b) => Date.parse(b.subscribed_at) - Date.parse(a.subscribed_at));
    const rows = subs.map((s) => {
      const lag = lagOf(s);
      const canRemove = isAdmin() || s.user_id === state.me.username;
      const tr = el('tr', { 'data-user': s.user_id, 'data-topic': s.topic_name },
        el('td', { class: 'nowrap col-user' }, el('strong', { text: s.user_id })),
        el('td', { class: 'strong-sm', text: s.topic_name }),
        el('td', { class: 'hide-sm' }, timeEl(s.subscribed_at)),
        el('td', { class: 'num', 'data-lag': lag === null ? '' : String(lag), text: lag === null ? '–' : fmtNum(lag) }),
        el('td', { class: 'actions' }, canRemove
          ? el('button', { type: 'button', class: 'btn btn-sm btn-ghost btn-danger-text', text: 'Unsubscribe', onclick: () => unsubscribe(s.user_id, s.topic_name) })
          : null),
      );
      if (added && added.user_id === s.user_id && added.topic_name === s.topic_name) tr.classList.add('flash');
      return tr;
    });
    $('#subs-body').replaceChildren(...rows);
    $('#subs-empty').hidden = rows.length > 0;
    $('#subs-count').textContent = rows.length ? `${rows.length} total` : '';
    if (state.view === 'overview') renderCharts();
  }

  function updateSubLag() {
    for (const tr of $$('#subs-body tr')) {
      const lag = state.lag.get(tr.dataset.user + '\u0000' + tr.dataset.topic);
      const cell = tr.cells[3];
      cell.dataset.lag = lag === undefined ? '' : String(lag);
      cell.textContent = lag === undefined ? '–' : fmtNum(lag);
    }
  }

  function renderSubForm() {
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

  async function subscribe(userId, topicName) {
    const body = { topic_name: topicName };
    if (userId) body.user_id = userId;
    try {
      const res = await api('POST', '/api/subscriptions', body);
      toast((res && res.message) || `Subscribed to ${topicName}`);
      if (!state.events || state.events.readyState !== EventSource.OPEN) reloadAll();
      return true;
    } catch (e) {
      toast(e.message, 'error');
      return false;
    }
  }

  async function unsubscribe(userId, topicName) {
    try {
      const res = await api('DELETE', '/api/subscriptions', { user_id: userId, topic_name: topicName });
      toast((res && res.message) || `Unsubscribed from ${topicName}`);
      if (!state.events || state.events.readyState !== EventSource.OPEN) reloadAll();
    } catch (e) {
      toast(e.message, 'error');
    }
  }

  async function submitSub(ev) {
    ev.preventDefault();
    const form = ev.currentTarget;
    const user = isAdmin() ? form.user_id.value.trim() : '';
    if (!form.topic_name.value) return toast('Choose an active topic.', 'error');
    if (await subscribe(user || null, form.topic_name.value)) form.user_id.value = '';
  }

  // ---------------------------------------------------------------- charts

  let chartFrame = 0;
  function renderCharts() {
    if (chartFrame) return;
    chartFrame = requestAnimationFrame(() => {
      chartFrame = 0;
      drawCharts();
    });
  }

  function drawCharts() {
    if (state.view !== 'overview' || $('#view-overview').hidden) return;
    const off = state.kafka.enabled === false;
    // The banner says why; the charts only say that they are empty for that reason.
    const offText = 'Kafka figures are off';
    const active = Array.from(state.topics.values()).filter((t) => t.status === 'active');
    const names = new Set(active.map((t) => t.topic_name));
    for (const [name, ring] of state.rates) if (ring.some(([, v]) => v > 0)) names.add(name);
    const series = Array.from(names).sort().map((name) => ({
      name,
      colour: colourOf(name),
      points: state.rates.get(name) || [],
    }));
    const rateBox = $('#chart-rate');
    const legend = $('#chart-rate-legend');
    if (off) {
      Charts.empty(rateBox, offText);
      legend.replaceChildren();
    } else {
      const shown = Charts.lines(rateBox, series, {
        windowMs: RATE_WINDOW_MS,
        unit: 'msg/s',
        emptyText: active.length ? 'Measuring… the first rates appear within seconds.' : 'No active topics yet.',
      });
      const minutes = shown ? Math.round(shown / 60000) : 15;
      $('#chart-rate-span').textContent = minutes >= 15 ? 'active topics · last 15 minutes'
        : `active topics · last ${Math.max(1, minutes)} min`;
      legend.replaceChildren(...series.map((s) =>
        el('span', { class: 'c' + (s.colour % Charts.COLOURS), 'data-topic': s.name },
          el('i'), el('span', { class: 'muted legend-name', text: s.name, title: s.name }), el('b', { text: fmtRate(currentRate(s.name)) }))));
    }

    const lagBox = $('#chart-lag');
    if (state.lagEnabled === false) {
      Charts.empty(lagBox, state.kafka.enabled === false ? offText : kafkaOff(state.lagNote));
    } else {
      const items = state.subs.map((s) => ({ label: `${s.user_id} → ${s.topic_name}`, value: lagOf(s) || 0, colour: colourOf(s.topic_name) }));
      Charts.bars(lagBox, items, { emptyText: 'No subscriptions yet.' });
    }

    const lagHistoryBox = $('#chart-lag-history');
    const lagLegend = $('#chart-lag-history-legend');
    if (state.lagEnabled === false) {
      Charts.empty(lagHistoryBox, state.kafka.enabled === false ? offText : kafkaOff(state.lagNote));
      lagLegend.replaceChildren();
    } else {
      const lagSeries = Array.from(state.lagHistory.keys()).sort().map((key) => {
        const [user, topic] = key.split('\u0000');
        return { name: `${user} → ${topic}`, key, colour: colourOf(key), points: state.lagHistory.get(key) };
      });
      Charts.lines(lagHistoryBox, lagSeries, {
        windowMs: RATE_WINDOW_MS,
        unit: 'behind',
        emptyText: state.subs.length ? 'Measuring… the first lag appears within seconds.' : 'No subscriptions yet.',
      });
      lagLegend.replaceChildren(...lagSeries.map((s) => {
        const last = s.points.length ? s.points[s.points.length - 1][1] : null;
        return el('span', { class: 'c' + (s.colour % Charts.COLOURS), 'data-subscription': s.key.replace('\u0000', '/') },
          el('i'), el('span', { class: 'muted legend-name', text: s.name, title: s.name }), el('b', { text: last === null ? '–' : fmtNum(last) }));
      }));
    }

    const totalsBox = $('#chart-totals');
    if (off) {
      Charts.empty(totalsBox, offText);
    } else {
      const items = Array.from(state.totals.entries()).map(([name, v]) => ({ label: name, value: v, colour: colourOf(name) }));
      Charts.bars(totalsBox, items, { emptyText: 'No messages yet.' });
    }
  }

  // ---------------------------------------------------------------- audit log

  let auditTimer = null;
  function loadAuditSoon() {
    if (state.audit.offset !== 0) return;
    clearTimeout(auditTimer);
    auditTimer = setTimeout(loadAudit, 250);
  }

  async function loadAudit() {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(state.audit.filters)) if (v) q.set(k, v);
    q.set('limit', String(AUDIT_PAGE));
    q.set('offset', String(state.audit.offset));
    let entries;
    try {
      entries = asList(await api('GET', '/api/audit?' + q), 'entries');
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
    const from = state.audit.offset + 1;
    $('#audit-page').textContent = rows.length ? `${from}–${state.audit.offset + rows.length}` : '';
    $('#audit-prev').disabled = state.audit.offset === 0;
    $('#audit-next').disabled = rows.length < AUDIT_PAGE;
  }

  // ---------------------------------------------------------------- users

  async function loadUsers() {
    let users;
    try {
      users = asList(await api('GET', '/api/users'), 'users');
    } catch (e) {
      toast(e.message, 'error');
      return;
    }
    const rows = users.map((u) => el('tr', { 'data-user': u.username },
      el('td', {}, el('strong', { text: u.username })),
      el('td', {}, el('span', { class: 'role-chip', text: u.role })),
      el('td', {}, timeEl(u.created_at)),
      el('td', { class: 'actions' }, u.username === state.me.username ? null
        : el('button', { type: 'button', class: 'btn btn-sm btn-ghost btn-danger-text', text: 'Delete', onclick: () => deleteUser(u.username) })),
    ));
    $('#users-body').replaceChildren(...rows);
  }

  async function deleteUser(username) {
    const ok = await confirmDialog({ title: `Delete user ${username}?`, text: 'Their sessions and tokens stop working.', ok: 'Delete' });
    if (ok === null) return;
    try {
      await api('DELETE', '/api/users/' + encodeURIComponent(username));
      toast(`Deleted ${username}`);
      loadUsers();
    } catch (e) {
      toast(e.message, 'error');
    }
  }

  async function submitUser(ev) {
    ev.preventDefault();
    const form = ev.currentTarget;
    try {
      await api('POST', '/api/users', { username: form.username.value.trim(), password: form.password.value, role: form.role.value });
      toast(`Added ${form.username.value.trim()}`);
      form.reset();
      loadUsers();
    } catch (e) {
      toast(e.message, 'error');
    }
  }

  // ---------------------------------------------------------------- wiring

  function wireStatic() {
    $('#login-form').addEventListener('submit', login);
    $('#logout').addEventListener('click', logout);
    window.addEventListener('hashchange', () => state.me && route());
    $('#open-create').addEventListener('click', openCreate);
    $('#create-form').addEventListener('submit', submitCreate);
    $('#sub-form').addEventListener('submit', submitSub);
    $('#user-form').addEventListener('submit', submitUser);
    $('#tail-toggle').addEventListener('click', toggleTail);
    $('#topic-dialog').addEventListener('close', closeTopicDialog);
    $('#confirm-form').addEventListener('submit', (e) => {
      e.preventDefault();
      const form = e.currentTarget;
      if (!$('#confirm-reason-label').hidden && !form.reason.value.trim()) {
        form.reason.focus();
        return;
      }
      $('#confirm-dialog').close('ok');
    });
    for (const b of $$('[data-close]')) b.addEventListener('click', () => b.closest('dialog').close());
    for (const b of $$('#topic-filter button')) {
      b.addEventListener('click', () => {
        state.topicFilter = b.dataset.status;
        for (const o of $$('#topic-filter button')) o.classList.toggle('on', o === b);
        renderTopics();
      });
    }
    $('#audit-filters').addEventListener('submit', (e) => {
      e.preventDefault();
      const f = e.currentTarget;
      state.audit.filters = { actor: f.actor.value.trim(), topic: f.topic.value.trim(), action: f.action.value.trim() };
      state.audit.offset = 0;
      loadAudit();
    });
    $('#audit-filters').addEventListener('reset', () => {
      state.audit.filters = {};
      state.audit.offset = 0;
      setTimeout(loadAudit, 0);
    });
    $('#audit-prev').addEventListener('click', () => {
      state.audit.offset = Math.max(0, state.audit.offset - AUDIT_PAGE);
      loadAudit();
    });
    $('#audit-next').addEventListener('click', () => {
      state.audit.offset += AUDIT_PAGE;
      loadAudit();
    });
    let resizeFrame = 0;
    new ResizeObserver(() => {
      cancelAnimationFrame(resizeFrame);
      resizeFrame = requestAnimationFrame(() => state.me && renderCharts());
    }).observe($('#view-overview'));
  }

  onSessionEnded(sessionEnded);
  boot();
}
