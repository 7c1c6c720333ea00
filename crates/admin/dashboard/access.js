// Kafka access (with --kafka-security scram): the signed-in user's principal, the topics
// the broker lets them read, and new credentials shown once; for admins, who may read and
// write a topic, as the broker reports it.
import { api } from './api.js';
import { state } from './state.js';
import { $ } from './dom.js';
import { toast } from './ui.js';

/** Reads the user's access from the broker into the Subscriptions view. */
export async function loadMyAccess() {
  const stateText = $('#ka-state');
  const detail = $('#ka-detail');
  try {
    const a = await api('GET', `/api/users/${encodeURIComponent(state.me.username)}/kafka-access`);
    if (!a.enabled) {
      stateText.textContent = 'The broker is open: any client reads any topic.';
      detail.hidden = true;
      return;
    }
    $('#ka-principal').textContent = a.principal;
    const c = a.connection;
    $('#ka-bootstrap').textContent = `${c.bootstrap_servers} (${c.security_protocol}, ${c.sasl_mechanism})`;
    $('#ka-topics').textContent = a.readable_topics.length ? a.readable_topics.join(', ') : 'none yet: subscribe to a topic';
    stateText.textContent = 'As the broker enforces it: subscribing grants, unsubscribing revokes.';
    detail.hidden = false;
  } catch (e) {
    stateText.textContent = e.message;
    detail.hidden = true;
  }
}

async function issue() {
  try {
    const c = await api('POST', `/api/users/${encodeURIComponent(state.me.username)}/kafka-credentials`);
    $('#ka-config').textContent = [
      `bootstrap.servers=${c.bootstrap_servers}`,
      `security.protocol=${c.security_protocol}`,
      `sasl.mechanism=${c.sasl_mechanism}`,
      `sasl.username=${c.username}`,
      `sasl.password=${c.password}`,
    ].join('\n');
    $('#ka-dialog').showModal();
  } catch (e) {
    toast(e.message, 'error');
  }
}

/** Fills the topic drawer's readers and writers (admins). */
export async function loadTopicAccess(topicId) {
  const box = $('#td-access');
  box.hidden = true;
  try {
    const a = await api('GET', `/api/topics/${topicId}/kafka-access`);
    if (!a.enabled) return;
    const row = (k, v) => {
      const d = document.createElement('div');
      const dt = document.createElement('dt');
      const dd = document.createElement('dd');
      dt.textContent = k;
      dd.textContent = v.length ? v.join(', ') : 'nobody';
      d.append(dt, dd);
      return d;
    };
    box.replaceChildren(row('Kafka readers', a.readers), row('Kafka writers', a.writers));
    box.hidden = false;
  } catch {
    // The broker did not answer: the drawer shows the rest.
  }
}

export function wireAccess() {
  $('#ka-issue').addEventListener('click', issue);
  $('#ka-dialog').addEventListener('close', () => { $('#ka-config').textContent = ''; });
}
