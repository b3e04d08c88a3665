// The banner (oned cannot be reached) and short messages (a refused action shows oned's own).

import { el } from './dom.js';

export function showBanner(message) {
  const banner = document.getElementById('banner');
  banner.textContent = message;
  banner.hidden = false;
}

export function hideBanner() {
  const banner = document.getElementById('banner');
  banner.hidden = true;
  banner.textContent = '';
}

export function bannerShown() {
  return !document.getElementById('banner').hidden;
}

// A message that stays until dismissed (errors) or for a few seconds (info).
export function notify(text, kind = 'error') {
  const box = document.getElementById('messages');
  const close = el('button', { type: 'button', class: 'close', title: 'dismiss' }, '×');
  const node = el('div', { class: `message ${kind}`, role: kind === 'error' ? 'alert' : 'status' },
    el('span', { class: 'text' }, text), close);
  close.addEventListener('click', () => node.remove());
  box.append(node);
  while (box.children.length > 5) box.firstChild.remove();
  if (kind !== 'error') setTimeout(() => node.remove(), 4000);
  return node;
}

export function clearMessages() {
  document.getElementById('messages').replaceChildren();
}
