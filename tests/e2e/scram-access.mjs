// The dashboard's Kafka access under `streamhub up --kafka-security scram --sample-topics`:
// a user sees their principal and the topics the broker lets them read, gets a password
// shown once, and an admin sees who may read and write a topic. Run on its own (it is not
// a *.test.mjs file, so a plain `node --test` leaves it out):
//
//   STREAMHUB_E2E_URL=... STREAMHUB_E2E_PASSWORD=... node --test scram-access.mjs

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import {
  ADMIN_PASSWORD, ADMIN_USER, LIVE_TIMEOUT, auth, call, closeSessions, goTo, openSession,
  problems, shot, signIn,
} from './support.mjs';

const USER = `e2e_reader_${crypto.randomBytes(4).toString('hex')}`;
const PASSWORD = crypto.randomBytes(12).toString('base64url');
const TOPIC = 'sensor_data';

before(async () => {
  const login = await call('POST', '/api/auth/login', { username: ADMIN_USER, password: ADMIN_PASSWORD }, '');
  auth.token = login.token;
  await call('POST', '/api/users', { username: USER, password: PASSWORD, role: 'user' });
  // The sample topic becomes active once the producer has created it.
  const deadline = Date.now() + LIVE_TIMEOUT;
  while (!(await call('GET', '/api/topics/active')).some((t) => t.topic_name === TOPIC)) {
    assert.ok(Date.now() < deadline, `${TOPIC} did not become active`);
    await new Promise((r) => setTimeout(r, 250));
  }
  await call('POST', '/api/subscriptions', { user_id: USER, topic_name: TOPIC });
});

after(closeSessions);

test('a user sees their Kafka access and gets credentials once; an admin sees a topic\'s readers', async (t) => {
  const user = await openSession('user');
  await signIn(user, USER, PASSWORD);

  await t.test('the Subscriptions page shows the principal and what the broker lets it read', async () => {
    await goTo(user, 'subscriptions');
    await user.waitForSelector('#ka-detail:visible');
    assert.equal(await user.textContent('#ka-principal'), `User:${USER}`);
    assert.match(await user.textContent('#ka-topics'), new RegExp(`\\b${TOPIC}\\b`));
    assert.match(await user.textContent('#ka-bootstrap'), /sasl_plaintext, SCRAM-SHA-512/);
  });

  await t.test('a new password is shown once, in a client configuration', async () => {
    await user.click('#ka-issue');
    await user.waitForSelector('#ka-dialog[open]');
    const config = await user.textContent('#ka-config');
    assert.match(config, new RegExp(`^sasl.username=${USER}$`, 'm'));
    assert.match(config, /^sasl\.password=\S{16,}$/m);
    await shot(user, '10-kafka-credentials');
    await user.click('#ka-dialog [data-close]');
    // Closed: the password is no longer in the page.
    await user.waitForFunction(() => document.querySelector('#ka-config').textContent === '');
  });

  await t.test('an admin sees who may read and write the topic, as the broker reports it', async () => {
    const admin = await openSession('admin');
    await signIn(admin, ADMIN_USER, ADMIN_PASSWORD);
    await goTo(admin, 'topics');
    await admin.click(`#topics-body tr[data-topic="${TOPIC}"] .topic-link`);
    await admin.waitForSelector('#td-access:visible');
    const text = await admin.textContent('#td-access');
    assert.match(text, new RegExp(`User:${USER}`));
    assert.match(text, /User:streamhub-producer/);
  });

  await t.test('no console error, page error or dialog', () => {
    assert.deepEqual(problems, []);
  });
});
