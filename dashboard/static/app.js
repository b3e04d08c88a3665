// The one-page app: the session, the header, the router (#/page/arg) and the live feed.
// Each page module exports mount(root, arg) -> {unmount()}; see pages/*.js.

import { post, hooks, session, setSession, clearSession, request } from './api.js';
import { showBanner, hideBanner, clearMessages, notify } from './notify.js';
import * as live from './live.js';
import * as store from './store.js';
import { signin } from './pages/signin.js';
import { overview } from './pages/overview.js';
import { hosts } from './pages/hosts.js';
import { vms } from './pages/vms.js';
import { vm } from './pages/vm.js';
import { vnets, vnet } from './pages/vnets.js';
import { users } from './pages/users.js';
import { images } from './pages/images.js';
import { create } from './pages/create.js';

const PAGES = { overview, hosts, vms, vm, vnets, vnet, users, images, create };
const NAV = { vm: 'vms', vnet: 'vnets' };
let current = null;

function route() {
  const [name, arg] = location.hash.replace(/^#\/?/, '').split('/');
  return { name: PAGES[name] ? name : 'overview', arg: arg ? decodeURIComponent(arg) : '' };
}

function show(mountPage, arg) {
  if (current) current.unmount();
  current = null;
  const main = document.getElementById('main');
  main.replaceChildren();
  current = mountPage(main, arg) || { unmount() {} };
}

function render() {
  if (!session.csrf) {
    document.getElementById('top').hidden = true;
    show(signin, '');
    return;
  }
  const { name, arg } = route();
  for (const link of document.querySelectorAll('#nav a')) {
    link.classList.toggle('active', link.dataset.page === (NAV[name] || name));
  }
  show(PAGES[name], arg);
}

function header() {
  document.getElementById('top').hidden = false;
  document.getElementById('who').textContent = session.admin ? `${session.user} (admin)` : session.user;
  for (const node of document.querySelectorAll('.admin-only')) node.hidden = !session.admin;
}

// After sign-in (or a session found at load): the header, the feed, the page asked for.
export function signedIn(answer) {
  setSession(answer);
  header();
  live.start();
  render();
}

function signedOut(message) {
  live.stop();
  clearSession();
  store.forget();
  hideBanner();
  clearMessages();
  render();
  if (message) notify(message, 'info');
}

async function signout() {
  try {
    await post('/api/logout');
  } catch (err) {
    if (err.status !== 401) notify(`sign out: ${err.message}`);
  }
  signedOut('signed out');
}

async function streamLost() {
  try {
    await request('GET', '/api/session', undefined, { quiet401: true });
  } catch (err) {
    if (err.status === 401) signedOut('your session ended: sign in again');
  }
}

hooks.unauthorized = () => {
  if (session.csrf) signedOut('your session ended: sign in again');
};
hooks.onedDown = (message) => showBanner(message);
hooks.onedUp = () => hideBanner();
hooks.streamLost = streamLost;

async function boot() {
  document.getElementById('signout').addEventListener('click', signout);
  window.addEventListener('hashchange', () => render());
  // A page left (or kept in the back-forward cache) holds no stream: browsers allow 6
  // connections per server, and each open stream keeps one.
  window.addEventListener('pagehide', () => live.stop());
  window.addEventListener('pageshow', (event) => {
    if (event.persisted && session.csrf) live.start();
  });
  try {
    signedIn(await request('GET', '/api/session', undefined, { quiet401: true }));
  } catch (err) {
    if (err.status && err.status !== 401) notify(err.message);
    render();
  }
}

window.addEventListener('signedin', (event) => signedIn(event.detail));
boot();
