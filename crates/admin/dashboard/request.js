// The "New topic" request form. Its bounds (rate, partitions) are the page's attributes,
// which the server fills from the model's rules.
import { api } from './api.js';
import { state } from './state.js';
import { $ } from './dom.js';
import { afterWrite, toast } from './ui.js';

function openCreate() {
  const form = $('#create-form');
  form.reset();
  form.created_by.value = state.me.username;
  $('.form-error', form).hidden = true;
  $('#create-dialog').showModal();
  form.name.focus();
}

async function submitCreate(ev) {
  ev.preventDefault();
  const form = ev.currentTarget;
  const err = $('.form-error', form);
  const body = {
    name: form.name.value.trim(),
    partitions: Number(form.partitions.value),
    replication_factor: Number(form.replication_factor.value),
    description: form.description.value,
  };
  if (form.created_by.value.trim()) body.created_by = form.created_by.value.trim();
  if (form.data_type.value) body.data_type = form.data_type.value;
  if (form.rate_per_second.value !== '') body.rate_per_second = Number(form.rate_per_second.value);
  if (form.traffic_profile.value.trim()) body.traffic_profile = form.traffic_profile.value.trim();
  const submit = $('button[type=submit]', form);
  submit.disabled = true;
  try {
    const res = await api('POST', '/api/topics', body);
    $('#create-dialog').close();
    toast(res.message);
    afterWrite();
  } catch (e) {
    err.hidden = false;
    err.textContent = e.message;
  } finally {
    submit.disabled = false;
  }
}

export function wireRequestForm() {
  $('#open-create').addEventListener('click', openCreate);
  $('#create-form').addEventListener('submit', submitCreate);
}
