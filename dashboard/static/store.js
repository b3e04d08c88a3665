// The in-memory lists (VMs, hosts, networks, images, users) the pages render, kept current by the
// change feed (live.js). A kind is fetched when a page first needs it; events that arrive while
// its fetch is in flight are kept and applied after it, in order, so the newest state wins.

import { get } from './api.js';

const SOURCES = {
  vm: ['/api/vms', 'vms'],
  host: ['/api/hosts', 'hosts'],
  vnet: ['/api/vnets', 'vnets'],
  image: ['/api/images', 'images'],
  user: ['/api/users', 'users'],
};

export const KINDS = Object.keys(SOURCES);

function fresh() {
  return { items: new Map(), loaded: false, loading: null, pending: null, order: null };
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
// VM's page); item is null for a removal.
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
  list.pending = [];
  try {
    const answer = await get(path);
    list.items = new Map((answer[key] || []).map((item) => [Number(item.id), item]));
    list.loaded = true;
    list.order = null;
    for (const [op, value] of list.pending) op === 'put' ? put(kind, value) : drop(kind, value);
    changed(kind, null);
    return list;
  } finally {
    list.loading = null;
    list.pending = null;
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

// `reset` from the feed (or a reconnect): fetch again what was loaded; the rest stays unloaded.
export function refetch() {
  const again = KINDS.filter((kind) => lists[kind].loaded || lists[kind].loading);
  for (const kind of again) {
    lists[kind].loaded = false;
    lists[kind].loading = null;
  }
  return Promise.allSettled(again.map(ensure));
}

// Signing out forgets everything.
export function forget() {
  for (const kind of KINDS) lists[kind] = fresh();
  changed(null, null);
}
