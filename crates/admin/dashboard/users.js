// The users view (admins): accounts, adding and deleting them.
import { api } from './api.js';
import { state } from './state.js';
import { $, el, timeEl } from './dom.js';
import { confirmDialog, toast } from './ui.js';

export async function loadUsers() {
  let users;
  try {
    users = await api('GET', '/api/users');
  } catch (e) {
    toast(e.message, 'error');
    return;
  }
  const rows = users.map((u) => el('tr', { 'data-user': u.username },
    el('td', {}, el('strong', { text: u.username })),
    el('td', {}, el('span', { class: 'role-chip', text: u.role })),
    el('td', {}, timeEl(u.created_at)),
    el('td', { class: 'actions' }, u.username === state.me.username ? null
      : el('button', { type: 'button', class: 'btn btn-sm btn-ghost btn-danger-text', text: 'Delete', onclick: () => deleteUser(u.username) })),
  ));
  $('#users-body').replaceChildren(...rows);
}

async function deleteUser(username) {
  const ok = await confirmDialog({ title: `Delete user ${username}?`, text: 'Their sessions and tokens stop working.', ok: 'Delete' });
  if (ok === null) return;
  try {
    await api('DELETE', '/api/users/' + encodeURIComponent(username));
    toast(`Deleted ${username}`);
    loadUsers();
  } catch (e) {
    toast(e.message, 'error');
  }
}

async function submitUser(ev) {
  ev.preventDefault();
  const form = ev.currentTarget;
  const username = form.username.value.trim();
  try {
    await api('POST', '/api/users', { username, password: form.password.value, role: form.role.value });
    toast(`Added ${username}`);
    form.reset();
    loadUsers();
  } catch (e) {
    toast(e.message, 'error');
  }
}

export function wireUsers() {
  $('#user-form').addEventListener('submit', submitUser);
}
