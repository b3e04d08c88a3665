// One VM: its state, actions, the reason it waits, its template, history and vm.log. Kept live
// from the feed; the template, history and log are fetched again after a change (at most once
// a second).

import { el, setText, mem, duration, when } from '../dom.js';
import { get } from '../api.js';
import { vmButtons, onVmButton } from '../actions.js';
import * as store from '../store.js';

const FIELDS = [
  ['owner', 'Owner', (vm) => vm.owner],
  ['state', 'State', (vm) => vm.state],
  ['reason', 'Waits because', (vm) => vm.reason],
  ['host', 'Host', (vm) => vm.host],
  ['ip', 'IP', (vm) => vm.ip],
  ['cpu', 'CPU', (vm) => vm.cpu],
  ['memory', 'Memory', (vm) => mem(vm.memory)],
  ['stime', 'Started', (vm) => when(vm.stime)],
  ['etime', 'Ended', (vm) => (vm.etime ? when(vm.etime) : '')],
  ['time', 'Time', (vm) => duration(vm.stime, vm.etime)],
];

function details() {
  const values = FIELDS.map(([key]) => el('dd', { id: `vm-${key}` }));
  const labels = FIELDS.map(([, label]) => el('dt', {}, label));
  const node = el('dl', { class: 'details', id: 'vm-details' }, labels.flatMap((dt, i) => [dt, values[i]]));
  return {
    node,
    update(vm) {
      FIELDS.forEach(([, , value], i) => {
        const text = value(vm) ?? '';
        setText(values[i], text);
        labels[i].hidden = values[i].hidden = text === '' || text === undefined;
      });
      values[1].className = `st st-${String(vm.state).replace(/[^a-z]/g, '')}`;
    },
  };
}

// History REASON, as onevm show words OpenNebula's numbers (a text reason is shown as it is).
const REASONS = ['none', 'error', 'stop/resume', 'user', 'cancel'];
const reason = (r) => (typeof r === 'number' ? REASONS[r] ?? String(r) : r);

function historyTable(rows) {
  const head = el('tr', {}, ['SEQ', 'HOST', 'START', 'END', 'REASON'].map((t) => el('th', {}, t)));
  return el('table', { class: 'list', id: 'vm-history' }, el('thead', {}, head),
    el('tbody', {}, rows.map((h) => el('tr', {},
      el('td', { class: 'num' }, h.seq), el('td', {}, h.host), el('td', {}, when(h.stime)),
      el('td', {}, h.etime ? when(h.etime) : ''), el('td', {}, reason(h.reason))))));
}

export function vm(root, arg) {
  const id = Number.parseInt(arg, 10);
  const title = el('h1', {}, `VM ${Number.isNaN(id) ? arg : id}`);
  const info = details();
  const error = el('p', { class: 'error page-error', role: 'alert', hidden: true });
  const history = el('div');
  const template = el('pre', { class: 'text', id: 'vm-template' });
  const log = el('pre', { class: 'text log', id: 'vm-log' });
  const actions = el('div', { class: 'vm-actions', dataset: { id: String(id) } }, vmButtons());
  actions.addEventListener('click', onVmButton);
  root.append(el('div', { class: 'page-head' }, title, actions), error, info.node,
    el('h2', {}, 'History'), history, el('h2', {}, 'Template'), template,
    el('h2', {}, 'vm.log'), log);
  if (Number.isNaN(id)) {
    error.textContent = `no such VM: ${arg}`;
    error.hidden = false;
    return { unmount() {} };
  }

  let alive = true;
  let timer = null;
  const show = (vm) => {
    setText(title, `VM ${vm.id}: ${vm.name}`);
    info.update(vm);
  };
  const load = async () => {
    timer = null;
    try {
      const full = await get(`/api/vms/${id}`);
      if (!alive) return;
      error.hidden = true;
      show(full);
      history.replaceChildren(historyTable(full.history || []));
      setText(template, full.template);
      setText(log, full.log || '(empty)');
    } catch (err) {
      if (!alive) return;
      error.textContent = err.message;
      error.hidden = false;
    }
  };
  const known = store.loaded('vm') && store.item('vm', id);
  if (known) show(known);
  load();
  const off = store.subscribeFeed((kind, changed, item) => {
    if (!alive) return;
    if (kind === 'reset' && !timer) timer = setTimeout(load, 0);
    if (kind !== 'vm' || changed !== id) return;
    if (item) show(item);
    if (!timer) timer = setTimeout(load, 1000);
  });
  return {
    unmount() {
      alive = false;
      off();
      clearTimeout(timer);
    },
  };
}
