// DOM helpers. Every value from the server goes in as text: el() turns string children into text
// nodes and sets attributes one by one; nothing here parses HTML.

export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else if (key in node && typeof value !== 'string') node[key] = value;
    else node.setAttribute(key, String(value));
  }
  append(node, children);
  return node;
}

export function append(node, children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function clear(node) {
  while (node.firstChild) node.firstChild.remove();
  return node;
}

export function setText(node, value) {
  const text = value === undefined || value === null ? '' : String(value);
  if (node.textContent !== text) node.textContent = text;
}

// A bar of used/total: the fill's width is set through the CSSOM (CSP allows it, not style="").
export function bar(used, total, label) {
  const fill = el('span', { class: 'fill' });
  const node = el('span', { class: 'bar' }, fill, el('span', { class: 'label' }));
  updateBar(node, used, total, label);
  return node;
}

export function updateBar(node, used, total, label) {
  const ratio = total > 0 ? Math.min(Math.max(used / total, 0), 1) : 0;
  const fill = node.firstChild;
  fill.style.width = `${(ratio * 100).toFixed(1)}%`;
  fill.className = ratio > 0.9 ? 'fill high' : ratio > 0.7 ? 'fill mid' : 'fill';
  setText(node.lastChild, label ?? `${Math.round(ratio * 100)}%`);
}

// Memory in KB, as onevm/onehost list show it: 512M, 1.5G.
export function mem(kb) {
  const n = Number(kb) || 0;
  if (n >= 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)}G`;
  if (n >= 1024) return `${Math.round(n / 1024)}M`;
  return `${n}K`;
}

// onevm list's TIME: days, then hh:mm:ss since start (to the end for a finished VM).
export function duration(stime, etime, now = Date.now() / 1000) {
  if (!stime) return '';
  let s = Math.max(0, Math.floor((etime > 0 ? etime : now) - stime));
  const d = Math.floor(s / 86400);
  s %= 86400;
  const pad = (v) => String(v).padStart(2, '0');
  return `${d}d ${pad(Math.floor(s / 3600))}:${pad(Math.floor((s % 3600) / 60))}:${pad(s % 60)}`;
}

export function when(epoch) {
  if (!epoch) return '-';
  return new Date(epoch * 1000).toLocaleString();
}

// A plain table: columns [{title, cell: (row) => text|Node, class}]; tbody rows keyed by id.
export function table(columns, rows, rowProps = () => ({})) {
  const head = el('tr', {}, columns.map((c) => el('th', { class: c.class }, c.title)));
  const body = el('tbody', {}, rows.map((row) => el('tr', rowProps(row),
    columns.map((c) => el('td', { class: c.class }, c.cell(row))))));
  return el('table', { class: 'list' }, el('thead', {}, head), body);
}
