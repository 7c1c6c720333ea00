// streamhub dashboard: this module only wires the views together. No framework: the DOM is
// built with createElement and textContent (dom.js), so nothing a user typed is ever parsed
// as HTML. Live state comes from the server-sent event stream /api/events (events.js);
// Kafka figures (totals, rates, lag and their 15-minute histories) are read from
// /api/metrics/* every few seconds (figures.js): the server samples them, the page only
// draws them. The page is served by the admin service it talks to, so it expects exactly
// that service's API.
import { onSessionEnded } from './api.js';
import { isAdmin, state } from './state.js';
import { kafkaOff, readFigures } from './figures.js';
import { $, $$, fmtAgo } from './dom.js';
import { onReload, reloadAll, wireConfirm } from './ui.js';
import { boot, sessionEnded } from './session.js';
import { connectEvents } from './events.js';
import { loadStats, renderStats } from './stats.js';
import { renderCharts } from './overview.js';
import { loadTopics, renderTopics, updateTopicFigures, wireTopics } from './topics.js';
import { closeTopicDialog, updateTopicDialogFigures, wireTopicDialog } from './topic-dialog.js';
import { loadSubs, updateSubLag, wireSubscriptions } from './subscriptions.js';
import { wireRequestForm } from './request.js';
import { loadAudit, wireAudit } from './audit.js';
import { loadUsers, wireUsers } from './users.js';
import { loadMyAccess, wireAccess } from './access.js';

const SAMPLE_MS = 3000;

// ---------------------------------------------------------------- views

const VIEWS = ['overview', 'topics', 'subscriptions', 'audit', 'users'];
const ADMIN_VIEWS = ['audit', 'users'];
const ON_SHOW = { overview: renderCharts, subscriptions: loadMyAccess, audit: loadAudit, users: loadUsers };

function route() {
  let view = location.hash.replace(/^#/, '') || 'overview';
  if (!VIEWS.includes(view) || (ADMIN_VIEWS.includes(view) && !isAdmin())) view = 'overview';
  state.view = view;
  for (const v of VIEWS) $('#view-' + v).hidden = v !== view;
  for (const a of $$('#tabs a')) a.classList.toggle('on', a.dataset.view === view);
  if (ON_SHOW[view]) ON_SHOW[view]();
}

// ---------------------------------------------------------------- Kafka figures

async function sampleFigures() {
  if (!(await readFigures())) return;
  const banner = $('#kafka-banner');
  banner.hidden = state.kafka.enabled !== false;
  banner.textContent = banner.hidden ? '' : kafkaOff(state.kafka.note) + ' Topic states and subscriptions are still live.';
  renderStats();
  updateTopicFigures();
  updateTopicDialogFigures();
  updateSubLag();
  renderCharts();
}

// ---------------------------------------------------------------- signed in / out

function startApp() {
  state.abort = new AbortController();
  document.body.classList.toggle('is-admin', isAdmin());
  for (const n of $$('[data-admin]')) n.hidden = !isAdmin();
  $('#subs-title').textContent = isAdmin() ? 'Subscriptions' : 'My subscriptions';
  route();
  reloadAll();
  connectEvents();
  sampleFigures();
  state.timers.push(setInterval(sampleFigures, SAMPLE_MS));
  // Keeps the relative times ("2 min ago") moving.
  state.timers.push(setInterval(() => {
    for (const t of $$('time[datetime]')) if (t.dateTime) t.textContent = fmtAgo(t.dateTime);
  }, 30000));
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

// ---------------------------------------------------------------- wiring

// A user's Subscribe / Unsubscribe buttons depend on their subscriptions: the table is
// drawn again once both lists are in.
onReload(() => Promise.all([loadTopics(), loadSubs(), loadStats()]).then(() => renderTopics()));
onSessionEnded(sessionEnded);
wireConfirm();
wireTopics();
wireTopicDialog();
wireSubscriptions();
wireRequestForm();
wireAudit();
wireUsers();
wireAccess();
window.addEventListener('hashchange', () => state.me && route());
for (const b of $$('[data-close]')) b.addEventListener('click', () => b.closest('dialog').close());
let resizeFrame = 0;
new ResizeObserver(() => {
  cancelAnimationFrame(resizeFrame);
  resizeFrame = requestAnimationFrame(() => state.me && renderCharts());
}).observe($('#view-overview'));
boot(startApp, stopApp);
