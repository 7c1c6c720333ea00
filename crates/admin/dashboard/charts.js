// Small SVG charts for the dashboard: a time-series line chart and a horizontal bar chart.
// Everything is built with createElementNS and textContent, so labels taken from data
// (topic names, user ids) can never become markup. Colours come from the .c0-.c7 classes.
export const Charts = (() => {
  const NS = 'http://www.w3.org/2000/svg';
  const COLOURS = 8;

  function svgEl(tag, attrs, parent) {
    const node = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (parent) parent.appendChild(node);
    return node;
  }

  function svgText(parent, x, y, text, attrs) {
    const t = svgEl('text', Object.assign({ x, y }, attrs || {}), parent);
    t.textContent = text;
    return t;
  }

  // Round numbers for an axis from 0 to at least max.
  function niceTicks(max, count) {
    if (!(max > 0)) return { top: 1, step: 0.25, ticks: [0, 0.25, 0.5, 0.75, 1] };
    const raw = max / count;
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const norm = raw / mag;
    const step = (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 2.5 ? 2.5 : norm <= 5 ? 5 : 10) * mag;
    const top = Math.ceil(max / step) * step;
    const ticks = [];
    for (let v = 0; v <= top + step / 2; v += step) ticks.push(v);
    return { top, step, ticks };
  }

  function compact(v) {
    if (v === null || v === undefined || Number.isNaN(v)) return '–';
    const a = Math.abs(v);
    if (a >= 1e9) return (v / 1e9).toFixed(a >= 1e10 ? 0 : 1) + 'B';
    if (a >= 1e6) return (v / 1e6).toFixed(a >= 1e7 ? 0 : 1) + 'M';
    if (a >= 1e4) return (v / 1e3).toFixed(0) + 'k';
    if (a >= 1e3) return (v / 1e3).toFixed(1) + 'k';
    if (a >= 100 || Number.isInteger(v)) return String(Math.round(v));
    if (a >= 10) return v.toFixed(1);
    return v.toFixed(2);
  }

  function clockLabel(ms, seconds) {
    const d = new Date(ms);
    const two = (n) => String(n).padStart(2, '0');
    return two(d.getHours()) + ':' + two(d.getMinutes()) + (seconds ? ':' + two(d.getSeconds()) : '');
  }

  function frame(container) {
    container.replaceChildren();
    const width = Math.max(container.clientWidth, 240);
    const height = Math.max(container.clientHeight, 220);
    const svg = svgEl('svg', { viewBox: `0 0 ${width} ${height}` }, container);
    return { svg, width, height };
  }

  function empty(container, message) {
    container.classList.remove('chart-bars');
    container.replaceChildren();
    const div = document.createElement('div');
    div.className = 'chart-empty';
    div.textContent = message;
    container.appendChild(div);
  }

  /**
   * Line chart over a time window ending now; returns the window shown in ms.
   * series: [{ name, colour, points: [[ms, value], ...] }]
   * opts: { windowMs, unit, emptyText }
   */
  function lines(container, series, opts) {
    const now = Date.now();
    const withData = series.filter((s) => s.points.length > 0);
    if (withData.length === 0) return empty(container, opts.emptyText || 'No data yet');
    // The window grows with the history that exists, from one minute up to opts.windowMs,
    // so a page opened a moment ago shows its few points across the chart, not as a sliver.
    let first = now;
    for (const s of withData) if (s.points[0][0] < first) first = s.points[0][0];
    const windowMs = Math.min(opts.windowMs, Math.max(60 * 1000, now - first));
    const start = now - windowMs;
    const { svg, width, height } = frame(container);
    const pad = { l: 44, r: 12, t: 10, b: 24 };
    const w = width - pad.l - pad.r;
    const h = height - pad.t - pad.b;
    let max = 0;
    for (const s of withData) for (const [, v] of s.points.concat(s.expected || [])) if (v > max) max = v;
    const { top, ticks } = niceTicks(max * 1.1, 4);
    const x = (ms) => pad.l + ((ms - start) / windowMs) * w;
    const y = (v) => pad.t + h - (v / top) * h;

    const grid = svgEl('g', { class: 'grid' }, svg);
    const axis = svgEl('g', { class: 'axis' }, svg);
    for (const t of ticks) {
      svgEl('line', { x1: pad.l, x2: pad.l + w, y1: y(t), y2: y(t) }, grid);
      svgText(axis, pad.l - 8, y(t) + 4, compact(t), { 'text-anchor': 'end' });
    }
    // Time labels on round clock times, at most about one per 90 pixels.
    const steps = [10e3, 15e3, 30e3, 60e3, 120e3, 300e3, 600e3];
    const maxLabels = Math.max(2, Math.floor(w / 110));
    const step = steps.find((st) => windowMs / st <= maxLabels) || steps[steps.length - 1];
    for (let t = Math.ceil(start / step) * step; t <= now - step * 0.7; t += step) {
      if (x(t) < pad.l + 20) continue;
      svgText(axis, x(t), height - 6, clockLabel(t, step < 60e3), { 'text-anchor': 'middle' });
    }
    svgText(axis, pad.l + w, height - 6, 'now', { 'text-anchor': 'end' });

    for (const s of withData) {
      const cls = 'c' + (s.colour % COLOURS);
      const pts = s.points.filter(([t]) => t >= start);
      if (pts.length === 0) continue;
      const d = pts.map(([t, v], i) => (i ? 'L' : 'M') + x(t).toFixed(1) + ' ' + y(v).toFixed(1)).join(' ');
      const g = svgEl('g', { class: cls, 'data-series': s.name }, svg);
      if (pts.length > 1) {
        const area = d + ` L${x(pts[pts.length - 1][0]).toFixed(1)} ${y(0)} L${x(pts[0][0]).toFixed(1)} ${y(0)} Z`;
        svgEl('path', { d: area, class: 'area', fill: 'currentColor' }, g);
      }
      const path = svgEl('path', { d, class: 'line', stroke: 'currentColor' }, g);
      const title = svgEl('title', {}, path);
      title.textContent = `${s.name}: ${compact(pts[pts.length - 1][1])} ${opts.unit || ''}`;
      const [lt, lv] = pts[pts.length - 1];
      svgEl('circle', { cx: x(lt), cy: y(lv), r: 3, fill: 'currentColor' }, g);
      // What the series should be (a topic's traffic profile), dashed beside what it is.
      const want = (s.expected || []).filter(([t]) => t >= start);
      if (want.length > 1) {
        const e = want.map(([t, v], i) => (i ? 'L' : 'M') + x(t).toFixed(1) + ' ' + y(v).toFixed(1)).join(' ');
        const curve = svgEl('path', { d: e, class: 'line expected', stroke: 'currentColor', 'stroke-dasharray': '4 3', 'data-expected': s.name }, g);
        svgEl('title', {}, curve).textContent = `${s.name}, profile: ${compact(want[want.length - 1][1])} ${opts.unit || ''}`;
      }
    }
    return windowMs;
  }

  /**
   * Horizontal bars, largest first.
   * items: [{ label, value, colour }]
   */
  function bars(container, items, opts) {
    if (items.length === 0) return empty(container, opts.emptyText || 'No data yet');
    const sorted = items.slice().sort((a, b) => b.value - a.value).slice(0, opts.limit || 12);
    const rowH = 26;
    container.classList.add('chart-bars');
    container.replaceChildren();
    const width = Math.max(container.clientWidth, 240);
    const height = Math.max(sorted.length * rowH + 8, 60);
    const svg = svgEl('svg', { viewBox: `0 0 ${width} ${height}`, height }, container);
    const labelW = Math.min(Math.max(width * 0.38, 90), 220);
    const valueW = 56;
    const w = width - labelW - valueW - 8;
    const max = Math.max(...sorted.map((i) => i.value), 1);
    sorted.forEach((item, i) => {
      const yTop = 4 + i * rowH;
      const g = svgEl('g', { class: 'c' + (item.colour % COLOURS) }, svg);
      const label = svgText(g, labelW - 8, yTop + rowH / 2 + 4, truncate(item.label, labelW / 6.5), { 'text-anchor': 'end', class: 'lbl' });
      const full = svgEl('title', {}, label);
      full.textContent = `${item.label}: ${item.value.toLocaleString()}`;
      svgEl('rect', { x: labelW, y: yTop + 5, width: w, height: rowH - 10, class: 'bar', fill: 'currentColor', opacity: 0.1 }, g);
      const bw = Math.max((item.value / max) * w, item.value > 0 ? 2 : 0);
      svgEl('rect', { x: labelW, y: yTop + 5, width: bw, height: rowH - 10, class: 'bar', fill: 'currentColor' }, g);
      svgText(g, labelW + w + 8, yTop + rowH / 2 + 4, compact(item.value), { class: 'val' });
    });
    return svg;
  }

  function truncate(s, chars) {
    const n = Math.max(4, Math.floor(chars));
    return s.length > n ? s.slice(0, n - 1) + '…' : s;
  }

  return { lines, bars, empty, compact, COLOURS };
})();
