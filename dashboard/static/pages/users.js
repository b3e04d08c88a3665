// Users (oneadmin only: the server answers 403 to anyone else, shown as the page's message).

import { el, table } from '../dom.js';
import * as store from '../store.js';
import { watch, heading } from '../view.js';

const COLUMNS = [
  { title: 'ID', class: 'num', cell: (u) => u.id },
  { title: 'NAME', cell: (u) => u.name },
  { title: 'ENABLED', cell: (u) => (u.enabled ? 'yes' : 'no') },
];

export function users(root) {
  const holder = el('div');
  root.append(heading('Users'), holder);
  return watch(root, ['user'], () => holder.replaceChildren(table(COLUMNS, store.all('user'))));
}
