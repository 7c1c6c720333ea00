// Signing in and out. The session is the server's cookie; the page holds who is signed in.
import { api, cookie } from './api.js';
import { state } from './state.js';
import { $ } from './dom.js';

let app = { start() {}, stop() {} };

/**
 * Shows the app for a session that exists (the readable CSRF cookie comes with every
 * session: without it the sign-in form shows without a request that would only answer
 * 401), or the sign-in form. `start` and `stop` bring the signed-in page up and down.
 */
export async function boot(start, stop) {
  app = { start, stop };
  $('#login-form').addEventListener('submit', login);
  $('#logout').addEventListener('click', logout);
  if (!cookie('streamhub_csrf')) return showLogin('');
  try {
    state.me = await api('GET', '/api/auth/me');
    showApp();
  } catch (e) {
    showLogin(e.status === 401 || e.status === 403 ? '' : e.message);
  }
}

function showApp() {
  $('#login-view').hidden = true;
  $('#app-view').hidden = false;
  $('#who-name').textContent = state.me.username;
  $('#who-role').textContent = state.me.role;
  app.start();
}

function showLogin(message) {
  $('#app-view').hidden = true;
  $('#login-view').hidden = false;
  const err = $('#login-error');
  err.hidden = !message;
  err.textContent = message || '';
  $('#login-username').focus();
}

async function login(ev) {
  ev.preventDefault();
  const form = ev.currentTarget;
  const button = $('#login-submit');
  button.disabled = true;
  $('#login-error').hidden = true;
  try {
    await api('POST', '/api/auth/login', {
      username: form.username.value.trim(),
      password: form.password.value,
    }, { signal: null });
    state.me = await api('GET', '/api/auth/me', undefined, { signal: null });
    form.password.value = '';
    showApp();
  } catch (e) {
    showLogin(e.status === 401 ? 'Wrong username or password.' : e.message);
  } finally {
    button.disabled = false;
  }
}

async function logout() {
  app.stop();
  try {
    // The server checks the CSRF cookie against the header, so it is dropped only after.
    await api('POST', '/api/auth/logout', undefined, { signal: null });
  } catch (e) {
    // The page forgets the session either way.
  }
  forgetSession();
  showLogin('');
}

/** The server clears the cookies too; dropping the readable one here keeps a reload
 * from probing a session that is gone. */
function forgetSession() {
  document.cookie = 'streamhub_csrf=; Max-Age=0; Path=/; SameSite=Strict';
}

/** A request answered 401: the session expired or was revoked. */
export function sessionEnded() {
  app.stop();
  forgetSession();
  showLogin('Your session has ended. Please sign in again.');
}
