// Create a VM from a template: pasted, or one of the shipped examples (/api/templates).

import { el } from '../dom.js';
import { get, post } from '../api.js';
import { notify } from '../notify.js';
import { heading } from '../view.js';

export function create(root) {
  const picker = el('select', { id: 'template-pick' }, el('option', { value: '' }, 'paste a template, or pick an example…'));
  const text = el('textarea', { id: 'template-text', rows: '16', spellcheck: 'false', placeholder: 'NAME = ttylinux\nCPU = 0.1\nMEMORY = 64' });
  const error = el('p', { class: 'error', id: 'create-error', role: 'alert', hidden: true });
  const button = el('button', { type: 'submit', id: 'create-submit' }, 'Create');
  const form = el('form', { class: 'create' }, picker, text, error, button);
  root.append(heading('Create a VM'), form);
  let examples = [];
  let alive = true;
  get('/api/templates').then((answer) => {
    if (!alive) return;
    examples = answer.templates || [];
    picker.append(...examples.map((t, i) => el('option', { value: String(i) }, t.name)));
  }, (err) => notify(`examples: ${err.message}`));
  picker.addEventListener('change', () => {
    const chosen = examples[Number(picker.value)];
    if (picker.value !== '' && chosen) text.value = chosen.text;
  });
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    error.hidden = true;
    button.disabled = true;
    try {
      const answer = await post('/api/vms', { template: text.value });
      notify(`VM ${answer.id} created`, 'info');
      location.hash = `#/vm/${Number(answer.id)}`;
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
    } finally {
      button.disabled = false;
    }
  });
  return { unmount() { alive = false; } };
}
