// Server-Sent Events from /api/events: apply each object to the store, `reset` -> fetch again
// (every new stream's first event is one, so a reconnect fetches what may have been missed),
// `oned` -> the banner. On an error the stream is closed and opened again with backoff (1 s,
// doubling to 30 s).

import * as store from './store.js';
import { hooks } from './api.js';

const KINDS = ['vm', 'host', 'vnet', 'image', 'user'];
let source = null;
let timer = null;
let delay = 1000;

function parse(event) {
  try {
    return JSON.parse(event.data);
  } catch {
    return null;
  }
}

function listen(es) {
  for (const kind of KINDS) {
    es.addEventListener(kind, (event) => store.put(kind, parse(event)));
  }
  es.addEventListener('removed', (event) => {
    const data = parse(event);
    if (data) store.drop(data.kind, data.id);
  });
  es.addEventListener('reset', () => store.reset());
  es.addEventListener('oned', (event) => {
    const data = parse(event) || {};
    if (data.up) {
      hooks.onedUp();
    } else {
      hooks.onedDown(data.error || 'cannot reach oned');
    }
  });
  es.addEventListener('open', () => {
    delay = 1000;
  });
  es.addEventListener('error', () => {
    es.close();
    if (source !== es) return;
    source = null;
    timer = setTimeout(start, delay);
    delay = Math.min(delay * 2, 30000);
    hooks.streamLost();
  });
}

export function start() {
  stop();
  store.closeGate();
  source = new EventSource('/api/events');
  listen(source);
}

export function stop() {
  clearTimeout(timer);
  timer = null;
  if (source) source.close();
  source = null;
}
