// Actions on VMs and hosts. A refused action shows oned's own message; nothing is changed in
// the lists here: the change feed brings the new state.

import { post, session } from './api.js';
import { notify } from './notify.js';
import { el } from './dom.js';
import * as store from './store.js';

export const VM_ACTIONS = ['shutdown', 'suspend', 'resume', 'stop', 'delete'];

export async function vmAction(id, action, host) {
  const data = host === undefined ? { action } : { action, host: Number(host) };
  try {
    await post(`/api/vms/${Number(id)}/action`, data);
    notify(`VM ${id}: ${action} requested`, 'info');
    return true;
  } catch (err) {
    notify(`VM ${id}: ${action} refused: ${err.message}`);
    return false;
  }
}

export async function hostAction(id, enable) {
  const verb = enable ? 'enable' : 'disable';
  try {
    await post(`/api/hosts/${Number(id)}/${verb}`);
    notify(`host ${id}: ${verb}d`, 'info');
  } catch (err) {
    notify(`host ${id}: ${verb} refused: ${err.message}`);
  }
}

// The buttons of a VM; the VM is the data-id of the nearest element that has one (the VM page,
// or the row of a list, which keeps its buttons when it is refilled with another VM).
export function vmButtons() {
  const names = session.admin ? [...VM_ACTIONS, 'migrate'] : VM_ACTIONS;
  return el('span', { class: 'actions' }, names.map((name) => el('button', {
    type: 'button', class: `act act-${name}`, dataset: { action: name },
  }, name)));
}

// Click handler for a container of vmButtons.
export function onVmButton(event) {
  const button = event.target.closest('button[data-action]');
  const holder = button && button.closest('[data-id]');
  if (!holder) return;
  const { action } = button.dataset;
  const { id } = holder.dataset;
  if (action === 'migrate') migrateDialog(id);
  else vmAction(id, action);
}

// oneadmin picks the host to migrate to (hosts that are on), and live or not.
export async function migrateDialog(id) {
  const dialog = document.getElementById('migrate-dialog');
  const select = document.getElementById('migrate-host');
  try {
    await store.ensure('host');
  } catch (err) {
    notify(`hosts: ${err.message}`);
    return;
  }
  const current = store.item('vm', id);
  select.replaceChildren(...store.all('host')
    .filter((h) => h.state === 'on' && (!current || h.name !== current.host))
    .map((h) => el('option', { value: String(h.id) }, `${h.id}: ${h.name}`)));
  document.getElementById('migrate-title').textContent = `Migrate VM ${id}`;
  document.getElementById('migrate-live').checked = false;
  dialog.returnValue = '';
  dialog.onclose = () => {
    if (dialog.returnValue !== 'ok' || !select.value) return;
    const live = document.getElementById('migrate-live').checked;
    vmAction(id, live ? 'livemigrate' : 'migrate', select.value);
  };
  dialog.showModal();
}
