// The overview's charts: message rates, totals and consumer lag, drawn from the figures the
// server samples (see figures.js). Redrawn at most once a frame.
import { Charts } from './charts.js';
import { RATE_WINDOW_MS, colourOf, state } from './state.js';
import { currentRate, kafkaOff, lagOf } from './figures.js';
import { $, el, fmtNum, fmtRate } from './dom.js';

// The banner says why; the charts only say that they are empty for that reason.
const OFF_TEXT = 'Kafka figures are off';

let frame = 0;
export function renderCharts() {
  if (frame || state.view !== 'overview') return;
  frame = requestAnimationFrame(() => {
    frame = 0;
    drawCharts();
  });
}

function drawCharts() {
  if (state.view !== 'overview' || $('#view-overview').hidden) return;
  drawRates();
  drawLag();
  drawLagHistory();
  drawTotals();
}

function legendEntry(colour, attrs, name, value) {
  return el('span', { class: 'c' + (colour % Charts.COLOURS), ...attrs },
    el('i'), el('span', { class: 'muted legend-name', text: name, title: name }), el('b', { text: value }));
}

function drawRates() {
  const box = $('#chart-rate');
  const legend = $('#chart-rate-legend');
  if (state.kafka.enabled === false) {
    Charts.empty(box, OFF_TEXT);
    legend.replaceChildren();
    return;
  }
  const active = Array.from(state.topics.values()).filter((t) => t.status === 'active');
  const names = new Set(active.map((t) => t.topic_name));
  for (const [name, ring] of state.rates) if (ring.some(([, v]) => v > 0)) names.add(name);
  const series = Array.from(names).sort().map((name) => ({
    name,
    colour: colourOf(name),
    points: state.rates.get(name) || [],
    expected: state.expectedRates.get(name),
  }));
  const shown = Charts.lines(box, series, {
    windowMs: RATE_WINDOW_MS,
    unit: 'msg/s',
    emptyText: active.length ? 'Measuring… the first rates appear within seconds.' : 'No active topics yet.',
  });
  const minutes = shown ? Math.round(shown / 60000) : 15;
  const span = minutes >= 15 ? 'last 15 minutes' : `last ${Math.max(1, minutes)} min`;
  const dashed = series.some((s) => s.expected) ? ' · dashed: the rate asked for' : '';
  $('#chart-rate-span').textContent = `active topics${dashed} · ${span}`;
  legend.replaceChildren(...series.map((s) =>
    legendEntry(s.colour, { 'data-topic': s.name }, s.name, fmtRate(currentRate(s.name)))));
}

/** Why there is no lag to draw, or null when there is. */
function lagOffText() {
  if (state.lagEnabled !== false) return null;
  return state.kafka.enabled === false ? OFF_TEXT : kafkaOff(state.lagNote);
}

function drawLag() {
  const box = $('#chart-lag');
  const off = lagOffText();
  if (off) return Charts.empty(box, off);
  const items = state.subs.map((s) => ({ label: `${s.user_id} → ${s.topic_name}`, value: lagOf(s) || 0, colour: colourOf(s.topic_name) }));
  Charts.bars(box, items, { emptyText: 'No subscriptions yet.' });
}

function drawLagHistory() {
  const box = $('#chart-lag-history');
  const legend = $('#chart-lag-history-legend');
  const off = lagOffText();
  if (off) {
    Charts.empty(box, off);
    legend.replaceChildren();
    return;
  }
  const series = Array.from(state.lagHistory.keys()).sort().map((key) => {
    const [user, topic] = key.split('\u0000');
    return { name: `${user} → ${topic}`, key, colour: colourOf(key), points: state.lagHistory.get(key) };
  });
  Charts.lines(box, series, {
    windowMs: RATE_WINDOW_MS,
    unit: 'behind',
    emptyText: state.subs.length ? 'Measuring… the first lag appears within seconds.' : 'No subscriptions yet.',
  });
  legend.replaceChildren(...series.map((s) => {
    const last = s.points.length ? s.points[s.points.length - 1][1] : null;
    return legendEntry(s.colour, { 'data-subscription': s.key.replace('\u0000', '/') }, s.name, last === null ? '–' : fmtNum(last));
  }));
}

function drawTotals() {
  const box = $('#chart-totals');
  if (state.kafka.enabled === false) return Charts.empty(box, OFF_TEXT);
  const items = Array.from(state.totals.entries()).map(([name, v]) => ({ label: name, value: v, colour: colourOf(name) }));
  Charts.bars(box, items, { emptyText: 'No messages yet.' });
}
