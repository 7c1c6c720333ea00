// What the browser tests share: the server's address and admin password from the
// environment, an API client, Chromium sessions that record every console error, page error
// and dialog, and the page helpers.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
export const BASE = (process.env.STREAMHUB_E2E_URL || '').replace(/\/+$/, '');
export const ADMIN_PASSWORD = process.env.STREAMHUB_E2E_PASSWORD || '';
export const ADMIN_USER = process.env.STREAMHUB_E2E_USER || 'admin';
const SHOTS = process.env.STREAMHUB_E2E_SCREENSHOTS || path.join(here, 'screenshots');
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
// Activation by the producer and the first measured rate take a few seconds; these bound
// how long the test waits, they are not speed assertions.
export const LIVE_TIMEOUT = Number(process.env.STREAMHUB_E2E_TIMEOUT_MS || 60000);

if (!BASE || !ADMIN_PASSWORD) {
  throw new Error('set STREAMHUB_E2E_URL and STREAMHUB_E2E_PASSWORD (see the top of this file)');
}

// ---------------------------------------------------------------- API client (bearer token)

/** The admin's bearer token, once signed in. */
export const auth = { token: '' };

export async function call(method, route, body, token = auth.token) {
  const res = await fetch(BASE + route, {
    method,
    headers: {
      Accept: 'application/json',
      ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
      ...(token ? { Authorization: `Bearer ${token}` } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = text;
  }
  if (!res.ok) throw new Error(`${method} ${route}: ${res.status} ${text}`);
  return data;
}

// ---------------------------------------------------------------- browser

export const problems = []; // console errors, page errors and dialogs: each fails the test
export const sessions = [];
export const browserDirs = [];

export async function openSession(label, viewport = { width: 1440, height: 900 }) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'streamhub-e2e-chromium-'));
  browserDirs.push(dir);
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  const page = context.pages()[0] || (await context.newPage());
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`${label} console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`${label} page error: ${e.message}`));
  // An alert would mean injected markup ran.
  page.on('dialog', async (d) => {
    problems.push(`${label} unexpected ${d.type()} dialog: ${d.message()}`);
    await d.dismiss();
  });
  sessions.push(context);
  return page;
}

export async function shot(page, name) {
  fs.mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

export async function signIn(page, username, password) {
  await page.goto(BASE + '/');
  await page.waitForSelector('#login-form:visible');
  await page.fill('#login-username', username);
  await page.fill('#login-password', password);
  await page.click('#login-submit');
  await page.waitForSelector('#app-view:visible');
  // Marks this document: if it survives, nothing below reloaded the page.
  await page.evaluate(() => {
    window.__noReload = true;
  });
}

export async function assertNotReloaded(page) {
  assert.equal(await page.evaluate(() => window.__noReload === true), true, 'the page was reloaded');
}

export async function goTo(page, view) {
  await page.click(`#tabs a[data-view="${view}"]`);
  await page.waitForSelector(`#view-${view}:visible`);
}

/** Closes every browser session and removes their profiles. */
export async function closeSessions() {
  for (const c of sessions) await c.close().catch(() => {});
  for (const d of browserDirs) fs.rmSync(d, { recursive: true, force: true });
}
