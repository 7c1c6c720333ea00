// The Kafka figures of the page, as the server samples them: the page draws, never measures.
import { api } from './api.js';
import { state } from './state.js';

/**
 * Reads the server's figures into the state: totals, rates, lag and the lag history.
 * False when there is nothing to draw (signed out meanwhile).
 */
export async function readFigures() {
  if (!state.me) return false;
  const [m, r, l, lh] = await Promise.allSettled([
    api('GET', '/api/metrics/topics'),
    api('GET', '/api/metrics/rates'),
    api('GET', '/api/metrics/lag'),
    api('GET', '/api/metrics/lag/history'),
  ]);
  // Signed out meanwhile (the requests were cancelled), or the session ended.
  if (!state.me || [m, r, l, lh].some((x) => x.status === 'rejected' && x.reason.status === 401)) return false;
  if (m.status === 'fulfilled') {
    state.kafka = { enabled: m.value.enabled, note: m.value.note || null };
    if (m.value.enabled) {
      state.totals.clear();
      for (const t of m.value.topics) state.totals.set(t.topic_name, t.total_messages);
    }
  } else {
    state.kafka = { enabled: false, note: m.reason.message };
  }
  if (r.status === 'fulfilled' && r.value.enabled) {
    state.rates.clear();
    state.expectedRates.clear();
    for (const t of r.value.topics) {
      state.rates.set(t.topic_name, t.points);
      if (t.expected) state.expectedRates.set(t.topic_name, t.expected);
    }
  }
  if (l.status === 'fulfilled') {
    state.lagEnabled = l.value.enabled;
    state.lagNote = l.value.note || null;
    state.lag.clear();
    for (const s of l.value.subscriptions) state.lag.set(s.user_id + '\u0000' + s.topic_name, s.lag);
  } else {
    state.lagEnabled = false;
    state.lagNote = l.reason.message;
  }
  if (lh.status === 'fulfilled' && lh.value.enabled) {
    state.lagHistory.clear();
    for (const s of lh.value.subscriptions) state.lagHistory.set(s.user_id + '\u0000' + s.topic_name, s.points);
  }
  return true;
}

/** "Kafka figures are off: <why>", whether or not the server's note already says the first part. */
export function kafkaOff(note) {
  const lead = 'Kafka figures are off';
  if (!note) return lead + '.';
  const text = /^kafka figures are off/i.test(note) ? note : `${lead}: ${note}`;
  return /[.!]$/.test(text) ? text : text + '.';
}

export function currentRate(name) {
  const ring = state.rates.get(name);
  return ring && ring.length ? ring[ring.length - 1][1] : null;
}

/** Messages behind on `name`, summed over the subscriptions this principal sees. */
export function topicLag(name) {
  let sum = null;
  for (const [key, v] of state.lag) if (key.slice(key.indexOf('\u0000') + 1) === name) sum = (sum || 0) + v;
  return sum;
}

export function lagOf(s) {
  const v = state.lag.get(s.user_id + '\u0000' + s.topic_name);
  return v === undefined ? null : v;
}
