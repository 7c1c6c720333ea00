// Dashboard figures for BENCHMARKS.md, against a running streamhub:
//   1. first load: bytes transferred and time until the stat cards show numbers;
//   2. approval latency: from `POST /api/topics/<id>/approve` to the new status on an
//      open page, over 20 approvals (median and worst);
//   3. the admin service's resident memory with 100 open dashboards' event streams
//      (STREAMHUB_BENCH_PID: the admin process; skipped without it).
//
//   STREAMHUB_E2E_URL=http://127.0.0.1:5000 STREAMHUB_E2E_PASSWORD=... \
//     [STREAMHUB_BENCH_PID=1234] node bench.mjs

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { chromium } from 'playwright-core';

const BASE = (process.env.STREAMHUB_E2E_URL || '').replace(/\/+$/, '');
const PASSWORD = process.env.STREAMHUB_E2E_PASSWORD || '';
const PID = process.env.STREAMHUB_BENCH_PID;
const APPROVALS = Number(process.env.STREAMHUB_BENCH_APPROVALS || 20);
const DASHBOARDS = Number(process.env.STREAMHUB_BENCH_DASHBOARDS || 100);
if (!BASE || !PASSWORD) throw new Error('set STREAMHUB_E2E_URL and STREAMHUB_E2E_PASSWORD');

const { token } = await (await fetch(`${BASE}/api/auth/login`, {
  method: 'POST',
  headers: { 'Content-Type': 'application/json' },
  body: JSON.stringify({ username: 'admin', password: PASSWORD }),
})).json();
const call = async (method, route, body) => {
  const res = await fetch(BASE + route, {
    method,
    headers: { Authorization: `Bearer ${token}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  if (!res.ok) throw new Error(`${method} ${route}: ${res.status} ${await res.text()}`);
  return res.json();
};

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'streamhub-bench-chromium-'));
const context = await chromium.launchPersistentContext(dir, {
  executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
  headless: true,
  viewport: { width: 1440, height: 900 },
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const page = context.pages()[0] || (await context.newPage());
const results = {};
try {
  // 1. First load, signed in (the session cookie is set), with an empty cache.
  await page.goto(BASE + '/');
  await page.fill('#login-username', 'admin');
  await page.fill('#login-password', PASSWORD);
  await page.click('#login-submit');
  await page.waitForSelector('#app-view:visible');
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.clearBrowserCache');
  await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });
  let bytes = 0;
  cdp.on('Network.loadingFinished', (e) => {
    bytes += e.encodedDataLength;
  });
  await page.reload();
  const cardsAt = await page.waitForFunction(
    () => /^\d/.test(document.querySelector('#stat-total').textContent) && performance.now(),
  );
  results.first_load_ms_to_stat_cards = Math.round(await cardsAt.jsonValue());
  await page.waitForLoadState('networkidle').catch(() => {});
  // Event streams never finish loading: count what did, which is the page and its assets
  // plus the JSON of the first requests.
  results.first_load_bytes = bytes;
  await cdp.send('Network.setCacheDisabled', { cacheDisabled: false });

  // 2. Approval latency.
  await page.click('#tabs a[data-view="topics"]');
  const tag = crypto.randomBytes(3).toString('hex');
  const ids = [];
  for (let i = 0; i < APPROVALS; i++) {
    ids.push((await call('POST', '/api/topics', { name: `bench_${tag}_${i}` })).topic_id);
  }
  await page.waitForSelector(`#topics-body tr[data-topic="bench_${tag}_${APPROVALS - 1}"]`);
  const latencies = [];
  for (let i = 0; i < APPROVALS; i++) {
    const selector = `#topics-body tr[data-topic="bench_${tag}_${i}"]:not([data-status="pending"])`;
    const seen = page.waitForSelector(selector, { state: 'attached', timeout: 10000 });
    const t0 = performance.now();
    await call('POST', `/api/topics/${ids[i]}/approve`);
    await seen;
    latencies.push(performance.now() - t0);
  }
  latencies.sort((a, b) => a - b);
  results.approval_to_page_ms = {
    n: latencies.length,
    median: Math.round(latencies[Math.floor(latencies.length / 2)]),
    max: Math.round(latencies[latencies.length - 1]),
  };
  for (const id of ids) await call('DELETE', `/api/topics/${id}`).catch(() => {});

  // 3. Memory with open dashboards: each holds /api/events and samples the metrics.
  if (PID) {
    const rss = () => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${PID}/status`, 'utf8'))[1]) / 1024;
    results.admin_rss_mb_before = Math.round(rss());
    const streams = [];
    for (let i = 0; i < DASHBOARDS; i++) {
      const ctl = new AbortController();
      const res = await fetch(`${BASE}/api/events`, { headers: { Authorization: `Bearer ${token}` }, signal: ctl.signal });
      streams.push({ ctl, reader: res.body.getReader() });
    }
    for (let round = 0; round < 3; round++) {
      await Promise.all(streams.map(() => call('GET', '/api/metrics/topics')));
      await call('POST', '/api/topics', { name: `bench_${tag}_mem_${round}` });
      await new Promise((r) => setTimeout(r, 1000));
    }
    results.open_dashboards = DASHBOARDS;
    results.admin_rss_mb_with_dashboards = Math.round(rss());
    for (const s of streams) s.ctl.abort();
  }
} finally {
  await context.close();
  fs.rmSync(dir, { recursive: true, force: true });
}
console.log(JSON.stringify(results, null, 2));
