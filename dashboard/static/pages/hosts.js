// Hosts, as onehost list: ID NAME RVM TCPU FCPU ACPU TMEM FMEM AMEM STAT, with CPU and memory
// bars (allocated of total), the last monitoring, a failed host's message, enable/disable for
// oneadmin.

import { el, bar, mem, when } from '../dom.js';
import { session } from '../api.js';
import { hostAction } from '../actions.js';
import * as store from '../store.js';
import { watch, heading } from '../view.js';

const n = (v) => Number(v) || 0;

const COLUMNS = [
  { title: 'ID', class: 'num', cell: (h) => h.id },
  { title: 'NAME', cell: (h) => h.name },
  { title: 'RVM', class: 'num', cell: (h) => h.rvm },
  { title: 'TCPU', class: 'num', cell: (h) => h.cpu_total },
  { title: 'FCPU', class: 'num', cell: (h) => n(h.cpu_total) - n(h.cpu_used) },
  { title: 'ACPU', class: 'num', cell: (h) => n(h.cpu_total) - n(h.cpu_alloc) },
  { title: 'TMEM', class: 'num', cell: (h) => mem(h.mem_total) },
  { title: 'FMEM', class: 'num', cell: (h) => mem(n(h.mem_total) - n(h.mem_used)) },
  { title: 'AMEM', class: 'num', cell: (h) => mem(n(h.mem_total) - n(h.mem_alloc)) },
  { title: 'STAT', cell: (h) => el('span', { class: `st st-${String(h.state).replace(/[^a-z]/g, '')}` }, h.state) },
  { title: 'CPU', class: 'c-bar', cell: (h) => bar(n(h.cpu_alloc), n(h.cpu_total), `${n(h.cpu_alloc)} / ${n(h.cpu_total)}`) },
  { title: 'MEM', class: 'c-bar', cell: (h) => bar(n(h.mem_alloc), n(h.mem_total), `${mem(h.mem_alloc)} / ${mem(h.mem_total)}`) },
  { title: 'LAST MON', cell: (h) => when(h.last_mon) },
];

function buttons(h) {
  const enabled = h.state !== 'dsbl' && h.state !== 'off';
  return el('button', {
    type: 'button', class: `act act-${enabled ? 'disable' : 'enable'}`, dataset: { action: enabled ? 'disable' : 'enable' },
  }, enabled ? 'disable' : 'enable');
}

function rows(hosts, columns) {
  return hosts.flatMap((h) => {
    const row = el('tr', { dataset: { id: String(h.id), name: String(h.name) }, class: 'host-row' },
      columns.map((c) => el('td', { class: c.class }, c.cell(h))));
    if (!h.error) return [row];
    const span = columns.length;
    return [row, el('tr', { class: 'host-error' }, el('td', { colspan: String(span), class: 'error' }, h.error))];
  });
}

export function hosts(root) {
  const columns = session.admin ? [...COLUMNS, { title: '', class: 'c-actions', cell: buttons }] : COLUMNS;
  const body = el('tbody');
  const head = el('tr', {}, columns.map((c) => el('th', { class: c.class }, c.title)));
  const count = el('span', { class: 'muted' });
  root.append(heading('Hosts', count), el('table', { class: 'list', id: 'hosts' }, el('thead', {}, head), body));
  body.addEventListener('click', (event) => {
    const button = event.target.closest('button[data-action]');
    if (button) hostAction(button.closest('tr').dataset.id, button.dataset.action === 'enable');
  });
  return watch(root, ['host'], () => {
    const all = store.all('host');
    count.textContent = String(all.length);
    body.replaceChildren(...rows(all, columns));
    if (!all.length) body.append(el('tr', {}, el('td', { colspan: String(columns.length), class: 'muted' }, 'no hosts')));
  });
}
