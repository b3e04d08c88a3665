// The in-memory lists (VMs, hosts, networks, images, users) the pages render, kept current by the
// change feed (live.js). A kind is fetched when a page first needs it; events that arrive while
// its fetch is in flight are kept and applied after it, in order, so the newest state wins.
// Every `reset` of the feed starts a new generation: a list fetched before it is fetched again.
// Fetches wait for the first `reset` of a new stream (or GATE_MS), so a page load fetches its
// lists once, not once before and once after the feed's first `reset`.

import { get } from './api.js';

const SOURCES = {
  vm: ['/api/vms', 'vms'],
  host: ['/api/hosts', 'hosts'],
  vnet: ['/api/vnets', 'vnets'],
  image: ['/api/images', 'images'],
  user: ['/api/users', 'users'],
};

export const KINDS = Object.keys(SOURCES);

const GATE_MS = 1000;

function fresh() {
  return { items: new Map(), loaded: false, loading: null, pending: null, order: null, gen: -1, token: null, failed: false };
}

let generation = 0;
let openGate = () => {};
let gate = Promise.resolve();

// A new stream opens (live.js): fetches wait for its first `reset`, GATE_MS at most.
export function closeGate() {
  openGate();
  gate = new Promise((resolve) => {
    openGate = resolve;
    setTimeout(resolve, GATE_MS);
  });
}

// `reset` from the feed: a new generation; lists fetched (or fetching) before it, or whose
// fetch failed (oned was out of reach), again.
export function reset() {
  generation += 1;
  openGate();
  heard('reset', -1, null);
  const stale = KINDS.filter((kind) => {
    const list = lists[kind];
    return list.failed || ((list.loaded || list.loading) && list.gen >= 0 && list.gen < generation);
  });
  for (const kind of stale) {
    lists[kind].loaded = false;
    lists[kind].loading = null;
  }
  return Promise.allSettled(stale.map(ensure));
}

const lists = Object.fromEntries(KINDS.map((kind) => [kind, fresh()]));
const listeners = new Set();
const feed = new Set();

// fn(kind, id|null): called after a change (id null: the whole list changed).
export function subscribe(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

function changed(kind, id) {
  for (const fn of [...listeners]) fn(kind, id);
}

// fn(kind, id, item): called for every event of the feed, loaded list or not (the overview, one
// VM's page); item is null for a removal; kind 'reset' after a reset (fetch what you show).
export function subscribeFeed(fn) {
  feed.add(fn);
  return () => feed.delete(fn);
}

function heard(kind, id, item) {
  for (const fn of [...feed]) fn(kind, Number(id), item);
}

export function loaded(kind) {
  return lists[kind].loaded;
}

// The list of `kind`, fetched once; later calls answer at once.
export function ensure(kind) {
  const list = lists[kind];
  if (list.loaded) return Promise.resolve(list);
  if (!list.loading) list.loading = fetchList(kind);
  return list.loading;
}

async function fetchList(kind) {
  const list = lists[kind];
  const [path, key] = SOURCES[kind];
  const token = {};
  list.token = token;
  list.gen = -1;
  list.pending = list.pending || [];
  await gate;
  if (list.token !== token) return list;
  list.gen = generation;
  try {
    const answer = await get(path);
    if (list.token !== token) return list; // a reset asked again meanwhile
    list.items = new Map((answer[key] || []).map((item) => [Number(item.id), item]));
    list.loaded = true;
    list.failed = false;
    list.order = null;
    // Replayed from a detached copy: put and drop queue to `list.pending` while it is set, and
    // a loop over the array they push to would never end (the page froze).
    const pending = list.pending;
    list.pending = null;
    for (const [op, value] of pending) op === 'put' ? put(kind, value) : drop(kind, value);
    changed(kind, null);
    return list;
  } catch (err) {
    if (list.token === token) list.failed = true; // fetched again at the next reset
    throw err;
  } finally {
    if (list.token === token) {
      list.loading = null;
      list.pending = null;
    }
  }
}

// One object as it is now (event `vm`, `host`...).
export function put(kind, item) {
  const list = lists[kind];
  if (!list || !item || item.id === undefined) return;
  heard(kind, item.id, item);
  if (list.pending) list.pending.push(['put', item]);
  if (!list.loaded) return;
  const id = Number(item.id);
  if (!list.items.has(id)) list.order = null;
  list.items.set(id, item);
  changed(kind, id);
}

// An object that left (event `removed`).
export function drop(kind, id) {
  const list = lists[kind];
  if (!list) return;
  heard(kind, id, null);
  if (list.pending) list.pending.push(['drop', id]);
  if (!list.loaded || !list.items.delete(Number(id))) return;
  list.order = null;
  changed(kind, Number(id));
}

export function item(kind, id) {
  return lists[kind].items.get(Number(id));
}

// Items sorted by id (as the CLI lists them); the sort is cached until the set of ids changes.
export function all(kind) {
  const list = lists[kind];
  if (!list.order) list.order = [...list.items.keys()].sort((a, b) => a - b);
  return list.order.map((id) => list.items.get(id));
}

export function count(kind) {
  return lists[kind].items.size;
}

// Signing out forgets everything.
export function forget() {
  for (const kind of KINDS) {
    lists[kind].token = null;
    lists[kind] = fresh();
  }
  changed(null, null);
}
