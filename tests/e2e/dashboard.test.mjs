// The dashboard in headless Chromium against a running streamhub (`streamhub up`):
// admin URL and password from STREAMHUB_E2E_URL and STREAMHUB_E2E_PASSWORD.
// Uses Debian's chromium (CHROMIUM_PATH to override) driven by playwright-core;
// no browser is downloaded. Screenshots go to STREAMHUB_E2E_SCREENSHOTS
// (default: ./screenshots beside this file).
//
//   cd tests/e2e && npm ci && STREAMHUB_E2E_URL=http://127.0.0.1:5000 \
//     STREAMHUB_E2E_PASSWORD=... node --test

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import {
  ADMIN_PASSWORD, ADMIN_USER, BASE, LIVE_TIMEOUT, assertNotReloaded, auth, call, closeSessions,
  goTo, openSession, problems, shot, signIn,
} from './support.mjs';

const suffix = crypto.randomBytes(4).toString('hex');
const TOPIC = `e2e_sensor_${suffix}`;
const REJECTED = `e2e_rejected_${suffix}`;
const VIEWER = `e2e_viewer_${suffix}`;
const VIEWER_PASSWORD = crypto.randomBytes(12).toString('base64url');
const XSS = '<img src=x onerror=alert(1)>';

async function topicByName(name) {
  const topics = await call('GET', '/api/topics?limit=1000');
  return topics.find((t) => t.topic_name === name);
}

/** The first event of a topic's tail, or why there is no tail to test. */
async function tailProbe(id) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), 10000);
  try {
    const res = await fetch(`${BASE}/api/topics/${id}/tail`, {
      headers: { Authorization: `Bearer ${auth.token}`, Accept: 'text/event-stream' },
      signal: ctl.signal,
    });
    assert.equal(res.status, 200, `tail answered ${res.status}`);
    const reader = res.body.getReader();
    let text = '';
    while (!text.includes('\n\n')) {
      const { value, done } = await reader.read();
      if (done) break;
      text += Buffer.from(value).toString('utf8');
    }
    ctl.abort();
    const data = /data: (.*)/.exec(text);
    const first = data ? JSON.parse(data[1]) : {};
    if (/event: status/.test(text) && first.enabled === false) return { missing: `the tail is off: ${first.note}` };
    return {};
  } finally {
    clearTimeout(timer);
  }
}

const row = (name) => `#topics-body tr[data-topic="${name}"]`;

async function waitStatus(page, name, status) {
  await page.waitForSelector(`${row(name)}[data-status="${status}"]`, { timeout: LIVE_TIMEOUT });
}

// ---------------------------------------------------------------- the scenario

let admin;
let viewer;

before(async () => {
  const login = await call('POST', '/api/auth/login', { username: ADMIN_USER, password: ADMIN_PASSWORD }, '');
  auth.token = login.token;
  assert.equal(login.role, 'admin');
  await call('POST', '/api/users', { username: VIEWER, password: VIEWER_PASSWORD, role: 'user' });
});

after(async () => {
  await closeSessions();
  try {
    await call('DELETE', '/api/users/' + encodeURIComponent(VIEWER));
  } catch {
    // best effort: the server's data directory is temporary anyway
  }
});

test('an admin drives a topic through its life on a live page', async (t) => {
  admin = await openSession('admin');

  await t.test('sign in shows the stat cards', async () => {
    await admin.goto(BASE + '/');
    await admin.waitForSelector('#login-form:visible');
    await shot(admin, '01-login');
    await signIn(admin, ADMIN_USER, ADMIN_PASSWORD);
    await admin.waitForFunction(() => /^\d/.test(document.querySelector('#stat-total').textContent));
    await admin.waitForSelector('#conn[data-state="live"]', { timeout: 10000 });
  });

  await t.test('a topic created in the form appears as pending, its description as text', async () => {
    await goTo(admin, 'topics');
    await admin.click('#open-create');
    await admin.fill('#create-form [name=name]', TOPIC);
    await admin.selectOption('#create-form [name=data_type]', 'sensor');
    await admin.fill('#create-form [name=rate_per_second]', '20');
    await admin.fill('#create-form [name=description]', XSS);
    await admin.click('#create-form button[type=submit]');
    await waitStatus(admin, TOPIC, 'pending');
    const shown = await admin.textContent(`${row(TOPIC)} .cell-sub`);
    assert.equal(shown, XSS, 'the description is shown as typed');
    assert.equal(await admin.locator('img[src="x"]').count(), 0, 'no <img> was created from the description');
    assert.equal(await admin.evaluate(() => document.querySelectorAll('#topics-body img').length), 0);
  });

  await t.test('approving it makes it active and its message rate rise, without a reload', async () => {
    await admin.click(`${row(TOPIC)} button[data-action="approve"]`);
    await waitStatus(admin, TOPIC, 'active');
    await admin.waitForFunction(
      (sel) => {
        const cell = document.querySelector(sel);
        return cell && Number(cell.dataset.rate) > 0;
      },
      `${row(TOPIC)} td.c-rate`,
      { timeout: LIVE_TIMEOUT },
    );
    await assertNotReloaded(admin);
  });

  await t.test('a subscription made through the API appears live', async () => {
    await goTo(admin, 'subscriptions');
    const before = Number((await admin.textContent('#stat-subs')).replace(/\D/g, '')) || 0;
    await call('POST', '/api/subscriptions', { user_id: VIEWER, topic_name: TOPIC });
    await admin.waitForSelector(`#subs-body tr[data-user="${VIEWER}"][data-topic="${TOPIC}"]`, { timeout: 5000 });
    // Kafka security is off under this `streamhub up`: the page says the broker is open.
    await admin.waitForFunction(() => /broker is open/.test(document.querySelector('#ka-state').textContent));
    assert.equal(await admin.isVisible('#ka-issue'), false);
    await admin.waitForFunction(
      (n) => Number(document.querySelector('#stat-subs').textContent.replace(/\D/g, '')) > n,
      before,
      { timeout: 5000 },
    );
    await assertNotReloaded(admin);
  });

  await t.test('the overview charts show the topic', async () => {
    await goTo(admin, 'overview');
    await admin.waitForSelector(`#chart-rate-legend [data-topic="${TOPIC}"]`, { timeout: LIVE_TIMEOUT });
    // The topic's line has at least two measured points and its latest rate is above zero.
    // (Not a visibility check: a steady rate draws a flat line, whose box has no height.)
    await admin.waitForFunction(
      (name) => {
        const line = document.querySelector(`#chart-rate svg g[data-series="${name}"] path.line`);
        const latest = document.querySelector(`#chart-rate-legend [data-topic="${name}"] b`);
        return line && / L/.test(line.getAttribute('d')) && latest && parseFloat(latest.textContent) > 0;
      },
      TOPIC,
      { timeout: LIVE_TIMEOUT },
    );
    await admin.waitForSelector('#chart-totals svg rect.bar');
    await admin.waitForFunction(() => /^\d/.test(document.querySelector('#stat-messages').textContent));
    assert.equal(await admin.isVisible('#kafka-banner'), false, 'Kafka figures are on under streamhub up');
    await shot(admin, '02-overview-live');
  });

  await t.test('a topic with a traffic profile draws the curve it follows beside its rate', async () => {
    const shaped = `e2e_shaped_${suffix}`;
    await goTo(admin, 'topics');
    await admin.click('#open-create');
    await admin.fill('#create-form [name=name]', shaped);
    // A bad profile is refused with the reason, and nothing is created. The browser logs
    // the refused request (a 422) as a console error: that one, and only it, is expected.
    const before = problems.length;
    await admin.fill('#create-form [name=traffic_profile]', 'daily:peak=20,trough=2,tz=Mars/Olympus');
    await admin.click('#create-form button[type=submit]');
    await admin.waitForSelector('#create-form .form-error:visible');
    assert.match(await admin.textContent('#create-form .form-error'), /tz must be a zone name/);
    const refused = problems.splice(before);
    assert.ok(refused.length <= 1 && refused.every((p) => / 422 /.test(p)), refused.join('; '));
    await admin.fill('#create-form [name=traffic_profile]', 'ramp:from=5,to=30,over=2m');
    await admin.click('#create-form button[type=submit]');
    await waitStatus(admin, shaped, 'pending');
    await admin.click(`${row(shaped)} button[data-action="approve"]`);
    await waitStatus(admin, shaped, 'active');
    await goTo(admin, 'overview');
    // The dashed curve has at least two points, and so does the measured line.
    await admin.waitForFunction(
      (name) => {
        const g = document.querySelector(`#chart-rate svg g[data-series="${name}"]`);
        const curve = g && g.querySelector('path.expected');
        const line = g && g.querySelector('path.line:not(.expected)');
        return curve && / L/.test(curve.getAttribute('d')) && line && / L/.test(line.getAttribute('d'));
      },
      shaped,
      { timeout: LIVE_TIMEOUT },
    );
    // The server's curve and the measured rate agree within the ramp's own rise per sample.
    const figures = await call('GET', '/api/metrics/rates');
    const topic = figures.topics.find((x) => x.topic_name === shaped);
    const [, measured] = topic.points[topic.points.length - 1];
    const [, expected] = topic.expected[topic.expected.length - 1];
    assert.ok(expected >= 5 && expected <= 30, `expected ${expected}`);
    assert.ok(Math.abs(measured - expected) <= 0.5 * expected, `measured ${measured} vs expected ${expected}`);
    await shot(admin, '02b-overview-profile');
  });

  await t.test('the lag of a subscription is charted over time and shown in the topics view', async () => {
    // Nobody consumes for the viewer: their group is behind by every message of the topic.
    await goTo(admin, 'overview');
    await admin.waitForFunction(
      (key) => {
        const latest = document.querySelector(`#chart-lag-history-legend [data-subscription="${key}"] b`);
        return latest && Number(latest.textContent.replace(/\D/g, '')) > 0
          && document.querySelector('#chart-lag-history svg path.line');
      },
      `${VIEWER}/${TOPIC}`,
      { timeout: LIVE_TIMEOUT },
    );
    await goTo(admin, 'topics');
    await admin.waitForFunction(
      (sel) => {
        const cell = document.querySelector(sel);
        return cell && Number(cell.dataset.lag) > 0;
      },
      `${row(TOPIC)} td.c-lag`,
      { timeout: LIVE_TIMEOUT },
    );
    await assertNotReloaded(admin);
  });

  await t.test('a 249-character topic name does not widen the overview', async () => {
    const long = `e2e_long_${suffix}_`.padEnd(249, 'x');
    const created = await call('POST', '/api/topics', { name: long, description: 'the longest name Kafka takes' });
    await call('POST', `/api/topics/${created.topic_id}/approve`);
    await goTo(admin, 'topics');
    await waitStatus(admin, long, 'active');
    await goTo(admin, 'overview');
    await admin.waitForSelector(`#chart-rate-legend [data-topic="${long}"]`, { timeout: LIVE_TIMEOUT });
    const widths = await admin.evaluate(() => ({
      page: document.documentElement.scrollWidth,
      window: document.documentElement.clientWidth,
    }));
    assert.ok(widths.page <= widths.window, `the overview is ${widths.page} px wide in a ${widths.window} px window`);
    await shot(admin, '02b-overview-long-name');
    await call('POST', `/api/topics/${created.topic_id}/deactivate`);
    await call('DELETE', `/api/topics/${created.topic_id}`);
  });

  await t.test("the open topic's message count follows the samples", async () => {
    await goTo(admin, 'topics');
    await admin.click(`${row(TOPIC)} .topic-link`);
    await admin.waitForSelector('#topic-dialog[open]');
    await admin.waitForFunction(() => /^\d/.test(document.querySelector('#td-messages').textContent), null, {
      timeout: LIVE_TIMEOUT,
    });
    const first = Number(await admin.getAttribute('#td-messages', 'data-total'));
    // The topic publishes 20 msg/s: a later sample shows more, without reopening.
    await admin.waitForFunction((n) => Number(document.querySelector('#td-messages').dataset.total) > n, first, {
      timeout: LIVE_TIMEOUT,
    });
    await admin.keyboard.press('Escape');
    await admin.waitForSelector('#topic-dialog', { state: 'hidden' });
  });

  await t.test('the live tail shows messages and pauses', async () => {
    // streamhub up always has a cluster reader: a tail that is missing or off is a failure.
    const topic = await topicByName(TOPIC);
    assert.equal(topic.in_kafka, true, 'an active topic is in Kafka');
    const probe = await tailProbe(topic.topic_id);
    assert.equal(probe.missing, undefined, `the live tail is unavailable: ${probe.missing}`);
    await goTo(admin, 'topics');
    await admin.click(`${row(TOPIC)} .topic-link`);
    await admin.waitForSelector('#topic-dialog[open]');
    await admin.waitForSelector('#tail .msg', { timeout: LIVE_TIMEOUT });
    assert.match(await admin.textContent('#tail .msg pre'), new RegExp(TOPIC));
    await shot(admin, '03-topic-tail');
    await admin.click('#tail-toggle');
    const frozen = await admin.locator('#tail .msg').count();
    await admin.waitForFunction(() => /paused · \d+ new/.test(document.querySelector('#tail-state').textContent), null, {
      timeout: LIVE_TIMEOUT,
    });
    assert.equal(await admin.locator('#tail .msg').count(), frozen, 'no message is added while paused');
    await admin.click('#tail-toggle');
    await admin.waitForFunction((n) => document.querySelectorAll('#tail .msg').length > n, Math.min(frozen, 199));
    await admin.keyboard.press('Escape');
    await admin.waitForSelector('#topic-dialog', { state: 'hidden' });
  });

  await t.test('a user sees the topic and their subscription but no admin actions', async () => {
    viewer = await openSession('viewer', { width: 390, height: 844 });
    await signIn(viewer, VIEWER, VIEWER_PASSWORD);
    assert.equal(await viewer.textContent('#who-role'), 'user');
    assert.equal(await viewer.isVisible('#tabs a[data-view="audit"]'), false);
    assert.equal(await viewer.isVisible('#tabs a[data-view="users"]'), false);
    await goTo(viewer, 'topics');
    await viewer.waitForSelector(row(TOPIC));
    for (const action of ['approve', 'reject', 'deactivate', 'reactivate', 'delete']) {
      assert.equal(await viewer.locator(`#topics-body [data-action="${action}"]`).count(), 0, `no ${action} button`);
    }
    await goTo(viewer, 'subscriptions');
    await viewer.waitForSelector(`#subs-body tr[data-user="${VIEWER}"][data-topic="${TOPIC}"]`);
    await shot(viewer, '04-user-phone');
  });

  await t.test('the user unsubscribes and subscribes themselves', async () => {
    await goTo(viewer, 'topics');
    await viewer.click(`${row(TOPIC)} button[data-action="unsubscribe"]`);
    await viewer.waitForSelector(`${row(TOPIC)} button[data-action="subscribe"]`, { timeout: 5000 });
    await admin.waitForFunction(
      ([u, tn]) => !document.querySelector(`#subs-body tr[data-user="${u}"][data-topic="${tn}"]`),
      [VIEWER, TOPIC],
      { timeout: 5000 },
    );
    await viewer.click(`${row(TOPIC)} button[data-action="subscribe"]`);
    await viewer.waitForSelector(`${row(TOPIC)} button[data-action="unsubscribe"]`, { timeout: 5000 });
    // The admin's page shows another view: the row only has to be there.
    await admin.waitForSelector(`#subs-body tr[data-user="${VIEWER}"][data-topic="${TOPIC}"]`, {
      state: 'attached',
      timeout: 5000,
    });
  });

  await t.test('deactivating shows on both pages without a reload', async () => {
    await goTo(admin, 'topics');
    await admin.click(`${row(TOPIC)} button[data-action="deactivate"]`);
    await waitStatus(admin, TOPIC, 'inactive');
    await waitStatus(viewer, TOPIC, 'inactive');
    await assertNotReloaded(admin);
    await assertNotReloaded(viewer);
    await shot(admin, '05-topics');
  });

  await t.test('an admin brings the deactivated topic back, live on both pages', async () => {
    await admin.click(`${row(TOPIC)} button[data-action="reactivate"]`);
    await waitStatus(admin, TOPIC, 'active');
    await waitStatus(viewer, TOPIC, 'active');
  });

  await t.test('a request is rejected with a reason the details show', async () => {
    await call('POST', '/api/topics', { name: REJECTED, description: 'rejected by the browser test' });
    await waitStatus(admin, REJECTED, 'pending');
    await admin.click(`${row(REJECTED)} button[data-action="reject"]`);
    await admin.waitForSelector('#confirm-dialog[open]');
    await admin.fill('#confirm-form [name=reason]', `duplicate of ${TOPIC} ${XSS}`);
    await admin.click('#confirm-ok');
    await waitStatus(admin, REJECTED, 'rejected');
    await admin.click(`${row(REJECTED)} .topic-link`);
    await admin.waitForSelector('#td-reason:visible');
    assert.equal(await admin.textContent('#td-reason'), `Rejected: duplicate of ${TOPIC} ${XSS}`);
    // The server says the topic is not in Kafka: the drawer opens no tail for it.
    assert.equal((await topicByName(REJECTED)).in_kafka, false);
    assert.equal(await admin.textContent('#tail'), 'No messages: the topic is rejected.');
    assert.equal(await admin.isDisabled('#tail-toggle'), true);
    assert.equal(await admin.locator('img[src="x"]').count(), 0);
    await admin.keyboard.press('Escape');
  });

  await t.test('the audit log lists what happened, filtered by topic', async () => {
    await goTo(admin, 'audit');
    await admin.fill('#audit-filters [name=topic]', TOPIC);
    await admin.click('#audit-filters button[type=submit]');
    await admin.waitForFunction(() => document.querySelectorAll("#audit-body tr").length >= 2);
    const actions = await admin.$$eval('#audit-body tr td:nth-child(3)', (tds) => tds.map((td) => td.textContent));
    for (const a of ['approve', 'deactivate']) {
      assert.ok(actions.some((x) => x.includes(a)), `audit has ${a}: ${actions.join(', ')}`);
    }
  });

  await t.test('a topic without subscribers can be deleted', async () => {
    await call('DELETE', '/api/subscriptions', { user_id: VIEWER, topic_name: TOPIC });
    await goTo(admin, 'topics');
    await admin.click(`${row(REJECTED)} button[data-action="delete"]`);
    await admin.waitForSelector('#confirm-dialog[open]');
    await admin.click('#confirm-ok');
    await admin.waitForSelector(row(REJECTED), { state: 'detached', timeout: 5000 });
  });

  await t.test('an admin adds and removes a user', async () => {
    const name = `e2e_added_${suffix}`;
    await goTo(admin, 'users');
    await admin.fill('#user-form [name=username]', name);
    await admin.fill('#user-form [name=password]', crypto.randomBytes(12).toString('base64url'));
    await admin.selectOption('#user-form [name=role]', 'user');
    await admin.click('#user-form button[type=submit]');
    await admin.waitForSelector(`#users-body tr[data-user="${name}"]`);
    await admin.click(`#users-body tr[data-user="${name}"] button`);
    await admin.waitForSelector('#confirm-dialog[open]');
    await admin.click('#confirm-ok');
    await admin.waitForSelector(`#users-body tr[data-user="${name}"]`, { state: 'detached' });
  });

  await t.test('signing out returns to the sign-in form', async () => {
    await admin.click('#logout');
    await admin.waitForSelector('#login-form:visible');
    await admin.reload();
    await admin.waitForSelector('#login-form:visible');
  });

  await t.test('no console error, page error or dialog on any page', () => {
    assert.deepEqual(problems, []);
  });
});
