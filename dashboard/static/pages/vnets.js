// Virtual networks, and one network's leases.

import { el, table } from '../dom.js';
import { get } from '../api.js';
import * as store from '../store.js';
import { watch, heading, failure } from '../view.js';

const yes = (v) => (v ? 'yes' : 'no');

const COLUMNS = [
  { title: 'ID', class: 'num', cell: (v) => v.id },
  { title: 'USER', cell: (v) => v.owner },
  { title: 'NAME', cell: (v) => el('a', { href: `#/vnet/${Number(v.id)}` }, v.name) },
  { title: 'TYPE', cell: (v) => v.type },
  { title: 'BRIDGE', cell: (v) => v.bridge },
  { title: 'PUBLIC', cell: (v) => yes(v.public) },
  { title: 'LEASES', class: 'num', cell: (v) => `${v.leases_used ?? 0}${v.size ? ` / ${v.size}` : ''}` },
];

export function vnets(root) {
  const holder = el('div');
  root.append(heading('Virtual networks'), holder);
  return watch(root, ['vnet'], () => {
    const all = store.all('vnet');
    holder.replaceChildren(all.length ? table(COLUMNS, all) : el('p', { class: 'muted' }, 'no networks'));
  });
}

const LEASES = [
  { title: 'IP', cell: (l) => l.ip },
  { title: 'MAC', cell: (l) => l.mac },
  { title: 'VM', class: 'num', cell: (l) => (l.vid === undefined || l.vid === null || l.vid < 0 ? '' : el('a', { href: `#/vm/${Number(l.vid)}` }, String(l.vid))) },
];

export function vnet(root, arg) {
  const holder = el('div');
  const title = el('h1', {}, `Network ${arg}`);
  root.append(el('div', { class: 'page-head' }, title), holder);
  let alive = true;
  get(`/api/vnets/${encodeURIComponent(arg)}`).then((v) => {
    if (!alive) return;
    title.textContent = `Network ${v.id}: ${v.name}`;
    holder.replaceChildren(table(COLUMNS.filter((c) => c.title !== 'NAME'), [v]),
      el('h2', {}, 'Leases'), (v.leases || []).length ? table(LEASES, v.leases) : el('p', { class: 'muted' }, 'no leases'));
  }, (err) => alive && holder.replaceChildren(failure(err)));
  return { unmount() { alive = false; } };
}
