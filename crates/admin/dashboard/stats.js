// The stat cards: counts from /api/stats, messages and rate from the sampled figures.
import { api } from './api.js';
import { state } from './state.js';
import { currentRate } from './figures.js';
import { setText, fmtNum, fmtRate } from './dom.js';

export async function loadStats() {
  state.stats = await api('GET', '/api/stats');
  renderStats();
}

let timer = null;
/** Several events in a row ask once. */
export function loadStatsSoon() {
  clearTimeout(timer);
  timer = setTimeout(() => loadStats().catch(() => {}), 120);
}

export function renderStats() {
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
  setText('stat-subs-sub', `${fmtNum(s.total_users)} ${s.total_users === 1 ? 'user' : 'users'}`);
  if (state.kafka.enabled) {
    let sum = 0;
    for (const v of state.totals.values()) sum += v;
    setText('stat-messages', fmtNum(sum));
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
