// The VM list, as onevm list: ID USER NAME STAT CPU MEM HOSTNAME TIME, plus IP and actions.
// Virtual scrolling: with 10,000 VMs only the rows in sight are in the DOM. The first full
// render sets the performance mark `vms-ready`, and `vms-painted` after the next frame
// (bench/dashboard.py reads both).

import { el, setText, mem, duration } from '../dom.js';
import { VirtualList } from '../vlist.js';
import { vmButtons, onVmButton } from '../actions.js';
import * as store from '../store.js';
import { watch, heading } from '../view.js';

const COLUMNS = [
  { title: 'ID', class: 'c-id num' },
  { title: 'USER', class: 'c-user' },
  { title: 'NAME', class: 'c-name' },
  { title: 'STAT', class: 'c-stat' },
  { title: 'CPU', class: 'c-cpu num' },
  { title: 'MEM', class: 'c-mem num' },
  { title: 'HOSTNAME', class: 'c-host' },
  { title: 'TIME', class: 'c-time num' },
  { title: 'IP', class: 'c-ip' },
  { title: '', class: 'c-actions' },
];

function makeRow() {
  const cells = COLUMNS.slice(0, -1).map((c) => el('div', { class: `vcell ${c.class}`, role: 'cell' }));
  const link = el('a');
  cells[2].append(link);
  const actions = el('div', { class: 'vcell c-actions', role: 'cell' }, vmButtons());
  return { node: el('div', { class: 'vm-row', role: 'row' }, cells, actions), cells, link, id: null };
}

function fillRow(row, vm) {
  const [id, user, , stat, cpu, memory, host, time, ip] = row.cells;
  if (row.id !== vm.id) {
    row.id = vm.id;
    row.node.dataset.id = String(vm.id);
    row.link.href = `#/vm/${Number(vm.id)}`;
  }
  setText(id, vm.id);
  setText(user, vm.owner);
  setText(row.link, vm.name);
  setText(stat, vm.state);
  stat.className = `vcell c-stat st st-${String(vm.state).replace(/[^a-z]/g, '')}`;
  stat.title = vm.reason || '';
  setText(cpu, vm.cpu);
  setText(memory, mem(vm.memory));
  setText(host, vm.host);
  setText(time, duration(vm.stime, vm.etime));
  setText(ip, vm.ip);
}

function matches(vm, words) {
  const text = `${vm.id} ${vm.owner} ${vm.name} ${vm.state} ${vm.host} ${vm.ip}`.toLowerCase();
  return words.every((w) => text.includes(w));
}

let readyMarked = false;

export function vms(root) {
  const list = new VirtualList(COLUMNS, { make: makeRow, fill: fillRow, className: 'vms' });
  const filter = el('input', { type: 'search', id: 'vm-filter', placeholder: 'filter: name, user, state, host, IP' });
  const total = el('span', { class: 'muted', id: 'vm-count' });
  list.port.addEventListener('click', onVmButton);
  root.append(heading('Virtual machines', total, filter), list.node);

  const render = () => {
    const words = filter.value.toLowerCase().split(/\s+/).filter(Boolean);
    const items = store.all('vm');
    const shown = words.length ? items.filter((vm) => matches(vm, words)) : items;
    setText(total, words.length ? `${shown.length} of ${items.length}` : `${items.length}`);
    list.setItems(shown);
    if (!readyMarked) {
      readyMarked = true;
      performance.mark('vms-ready');
      requestAnimationFrame(() => setTimeout(() => performance.mark('vms-painted')));
      document.documentElement.dataset.vmsReady = String(items.length);
    }
  };
  const view = watch(root, ['vm'], render);
  filter.addEventListener('input', () => { list.scrollToTop(); view.refresh(); });
  const tick = setInterval(() => list.render(), 1000); // TIME of the rows in sight
  return {
    unmount() {
      clearInterval(tick);
      view.unmount();
      list.destroy();
    },
  };
}
