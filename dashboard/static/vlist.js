// A virtual list: a header and a scrolling viewport holding only the rows in sight (plus a few
// either side). Rows are kept in a pool and refilled, so scrolling creates no elements.
// columns: [{title, class}]; fill(rowNode, cells[], item) writes one item into a row.
// The list's node keeps the durations (ms) of its last renders as `renderTimes` (the benchmark
// reads them: what scrolling costs in script, apart from the browser's paint).

import { el } from './dom.js';

const OVERSCAN = 8;
const KEEP = 600;

export class VirtualList {
  constructor(columns, { rowHeight = 28, make, fill, className = '' }) {
    this.rowHeight = rowHeight;
    this.make = make;
    this.fill = fill;
    this.items = [];
    this.pool = [];
    this.frame = 0;
    this.head = el('div', { class: 'vrow vhead', role: 'row' },
      columns.map((c) => el('div', { class: `vcell ${c.class || ''}`, role: 'columnheader' }, c.title)));
    this.sizer = el('div', { class: 'vsizer' });
    this.port = el('div', { class: 'vport', role: 'rowgroup' }, this.sizer);
    this.node = el('div', { class: `vlist ${className}`, role: 'table' }, this.head, this.port);
    this.node.renderTimes = [];
    this.port.addEventListener('scroll', () => this.schedule(), { passive: true });
    this.resize = () => this.schedule();
    window.addEventListener('resize', this.resize);
  }

  setItems(items) {
    this.items = items;
    this.sizer.style.height = `${items.length * this.rowHeight}px`;
    this.render();
  }

  schedule() {
    if (!this.frame) this.frame = requestAnimationFrame(() => { this.frame = 0; this.render(); });
  }

  render() {
    const start = performance.now();
    this.fillRows();
    const times = this.node.renderTimes;
    times.push(performance.now() - start);
    if (times.length > KEEP) times.splice(0, times.length - KEEP);
  }

  // Fill the rows in sight; rows of the pool not needed are hidden.
  fillRows() {
    const height = this.port.clientHeight || window.innerHeight;
    const first = Math.max(0, Math.floor(this.port.scrollTop / this.rowHeight) - OVERSCAN);
    const last = Math.min(this.items.length, Math.ceil((this.port.scrollTop + height) / this.rowHeight) + OVERSCAN);
    const needed = Math.max(0, last - first);
    while (this.pool.length < needed) {
      const row = this.make();
      row.node.classList.add('vrow');
      this.sizer.append(row.node);
      this.pool.push(row);
    }
    this.pool.forEach((row, i) => {
      const index = first + i;
      if (i >= needed) {
        row.node.hidden = true;
        return;
      }
      row.node.hidden = false;
      row.node.style.transform = `translateY(${index * this.rowHeight}px)`;
      this.fill(row, this.items[index], index);
    });
  }

  scrollToTop() {
    this.port.scrollTop = 0;
  }

  destroy() {
    cancelAnimationFrame(this.frame);
    window.removeEventListener('resize', this.resize);
  }
}
