// Feedback shared by the views: toasts, the confirmation dialog, and the refresh after a
// write when the event stream that would bring its result is down.
import { state } from './state.js';
import { $, el } from './dom.js';

let reload = () => Promise.resolve();

/** Sets what reloads every list (the app wires it to the loaders of its views). */
export function onReload(f) {
  reload = f;
}

let pending = null;
/** Reloads every list once, however many callers ask while it runs. */
export function reloadAll() {
  if (pending) return pending;
  pending = reload()
    .catch((e) => toast(e.message, 'error'))
    .finally(() => {
      pending = null;
    });
  return pending;
}

/** After a write: the event stream brings the new state, or a reload does when it is down. */
export function afterWrite() {
  if (!state.events || state.events.readyState !== EventSource.OPEN) reloadAll();
}

export function toast(message, kind) {
  if (!state.me) return; // signed out meanwhile: nothing to report on
  const error = kind === 'error';
  const t = el('div', { class: 'toast' + (error ? ' toast-error' : ''), role: error ? 'alert' : 'status', text: message });
  $('#toasts').appendChild(t);
  setTimeout(() => t.remove(), error ? 7000 : 3500);
}

/** Resolves to the reason ('' when none is asked) or null when cancelled. */
export function confirmDialog({ title, text, ok, reason }) {
  const dialog = $('#confirm-dialog');
  const form = $('#confirm-form');
  $('#confirm-title').textContent = title;
  $('#confirm-text').textContent = text;
  $('#confirm-ok').textContent = ok;
  $('#confirm-reason-label').hidden = !reason;
  form.reason.required = !!reason;
  form.reason.value = '';
  dialog.returnValue = '';
  return new Promise((resolve) => {
    const done = () => {
      dialog.removeEventListener('close', done);
      resolve(dialog.returnValue === 'ok' ? form.reason.value.trim() : null);
    };
    dialog.addEventListener('close', done);
    dialog.showModal();
    if (reason) form.reason.focus();
  });
}

export function wireConfirm() {
  $('#confirm-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const form = e.currentTarget;
    if (!$('#confirm-reason-label').hidden && !form.reason.value.trim()) {
      form.reason.focus();
      return;
    }
    $('#confirm-dialog').close('ok');
  });
}
