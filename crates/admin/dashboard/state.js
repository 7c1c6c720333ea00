// The page's state, shared by its modules.
import { Charts } from './charts.js';

/** How much history the charts show. */
export const RATE_WINDOW_MS = 15 * 60 * 1000;

export const state = {
  me: null,
  topics: new Map(), // topic_id -> api::Topic
  subs: [], // api::Subscription
  stats: null,
  kafka: { enabled: null, note: null },
  totals: new Map(), // topic_name -> total messages
  rates: new Map(), // topic_name -> [[ms, msg/s], ...] over RATE_WINDOW_MS
  expectedRates: new Map(), // topic_name -> the traffic profile's [[ms, msg/s], ...] at the same instants
  lag: new Map(), // "user\0topic" -> lag
  lagHistory: new Map(), // "user\0topic" -> [[ms, lag], ...] over RATE_WINDOW_MS
  lagEnabled: null,
  lagNote: null,
  topicFilter: '',
  audit: { offset: 0, filters: {} },
  events: null,
  eventsRetry: 0,
  abort: new AbortController(),
  timers: [],
  view: 'overview',
};

export const isAdmin = () => state.me && state.me.role === 'admin';
export const colourOf = (() => {
  const assigned = new Map();
  return (name) => {
    if (!assigned.has(name)) assigned.set(name, assigned.size % Charts.COLOURS);
    return assigned.get(name);
  };
})();
