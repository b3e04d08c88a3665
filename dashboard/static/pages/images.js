// Images of the repository the user may see.

import { el, table, mem } from '../dom.js';
import * as store from '../store.js';
import { watch, heading } from '../view.js';

const yes = (v) => (v ? 'yes' : 'no');

const COLUMNS = [
  { title: 'ID', class: 'num', cell: (i) => i.id },
  { title: 'USER', cell: (i) => i.owner },
  { title: 'NAME', cell: (i) => i.name },
  { title: 'TYPE', cell: (i) => i.type },
  { title: 'STAT', cell: (i) => el('span', { class: `st st-${String(i.state).replace(/[^a-z]/g, '')}` }, i.state) },
  { title: 'SIZE', class: 'num', cell: (i) => mem((Number(i.size) || 0) * 1024) },
  { title: 'PUBLIC', cell: (i) => yes(i.public) },
  { title: 'PERSISTENT', cell: (i) => yes(i.persistent) },
  { title: 'RVMS', class: 'num', cell: (i) => i.running_vms },
];

export function images(root) {
  const holder = el('div');
  root.append(heading('Images'), holder);
  return watch(root, ['image'], () => {
    const all = store.all('image');
    holder.replaceChildren(all.length ? table(COLUMNS, all) : el('p', { class: 'muted' }, 'no images'));
  });
}
