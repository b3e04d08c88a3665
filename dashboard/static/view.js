// What every list page shares: fetch the kinds it shows, render when they arrive and again (once
// per frame at most, only while the page is mounted and visible) after each change of them.
// A failed fetch shows its message under the page's heading until a later fetch succeeds.

import * as store from './store.js';
import { el } from './dom.js';

export function watch(root, kinds, render) {
  let frame = 0;
  let alive = true;
  let error = null;
  const draw = () => {
    frame = 0;
    if (!alive || !kinds.every(store.loaded)) return;
    if (error) error.remove();
    error = null;
    render();
  };
  const schedule = () => {
    if (alive && !frame) frame = requestAnimationFrame(draw);
  };
  const off = store.subscribe((kind) => {
    if (kind === null || kinds.includes(kind)) schedule();
  });
  Promise.all(kinds.map(store.ensure)).then(schedule, (err) => {
    if (!alive) return;
    if (error) error.remove();
    error = failure(err);
    const head = root.querySelector('.page-head');
    if (head) head.after(error);
    else root.prepend(error);
  });
  return {
    refresh: schedule,
    unmount() {
      alive = false;
      off();
      cancelAnimationFrame(frame);
    },
  };
}

// A page that could not load: the server's message, as text.
export function failure(err) {
  return el('p', { class: 'error page-error', role: 'alert' }, err.message);
}

export function heading(text, ...extra) {
  return el('div', { class: 'page-head' }, el('h1', {}, text), ...extra);
}
