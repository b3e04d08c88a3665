// The overview: hosts on/off/err, VMs by state, capacity used vs total. Fetched again (at most
// once a second) after a VM or host event, so the page never loads the whole VM list.

import { el, bar, mem } from '../dom.js';
import { get } from '../api.js';
import * as store from '../store.js';
import { heading, failure } from '../view.js';

function counts(title, id, values) {
  const entries = Object.entries(values || {}).filter(([, v]) => Number(v) > 0);
  return el('section', { class: 'card', id },
    el('h2', {}, title),
    entries.length
      ? el('ul', { class: 'counts' }, entries.map(([state, v]) => el('li', {},
        el('span', { class: `st st-${state.replace(/[^a-z]/g, '')}` }, state), el('b', {}, String(v)))))
      : el('p', { class: 'muted' }, 'none'));
}

function capacity(c = {}) {
  const cpu = [Number(c.cpu_used) || 0, Number(c.cpu_total) || 0];
  const memory = [Number(c.mem_used) || 0, Number(c.mem_total) || 0];
  return el('section', { class: 'card wide', id: 'capacity' },
    el('h2', {}, 'Capacity'),
    el('div', { class: 'cap' }, el('span', {}, 'CPU'), bar(...cpu, `${cpu[0]} / ${cpu[1]}`)),
    el('div', { class: 'cap' }, el('span', {}, 'Memory'), bar(...memory, `${mem(memory[0])} / ${mem(memory[1])}`)));
}

export function overview(root) {
  const body = el('div', { class: 'cards' });
  root.append(heading('Overview'), body);
  let alive = true;
  let timer = null;
  const load = async () => {
    timer = null;
    try {
      const o = await get('/api/overview');
      if (alive) body.replaceChildren(counts('Hosts', 'host-counts', o.hosts), counts('VMs', 'vm-counts', o.vms), capacity(o.capacity));
    } catch (err) {
      if (alive) body.replaceChildren(failure(err));
    }
  };
  load();
  const off = store.subscribeFeed((kind) => {
    if (alive && ['vm', 'host', 'reset'].includes(kind) && !timer) timer = setTimeout(load, 1000);
  });
  return {
    unmount() {
      alive = false;
      off();
      clearTimeout(timer);
    },
  };
}
