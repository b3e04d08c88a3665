// What every list page shares: fetch the kinds it shows, render when they arrive and again (once
// per frame at most, only while the page is mounted and visible) after each change of them.

import * as store from './store.js';
import { el } from './dom.js';

export function watch(root, kinds, render) {
  let frame = 0;
  let alive = true;
  const draw = () => {
    frame = 0;
    if (alive && kinds.every(store.loaded)) render();
  };
  const schedule = () => {
    if (alive && !frame) frame = requestAnimationFrame(draw);
  };
  const off = store.subscribe((kind) => {
    if (kind === null || kinds.includes(kind)) schedule();
  });
  Promise.all(kinds.map(store.ensure)).then(schedule, (err) => {
    if (alive) root.replaceChildren(failure(err));
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
