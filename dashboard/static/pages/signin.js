// Sign in with the onecloud user name and password; the wrong ones get the server's message.

import { el } from '../dom.js';
import { request } from '../api.js';

export function signin(root) {
  const user = el('input', { id: 'signin-user', name: 'user', autocomplete: 'username', required: true });
  const password = el('input', {
    id: 'signin-password', name: 'password', type: 'password', autocomplete: 'current-password', required: true,
  });
  const error = el('p', { id: 'signin-error', class: 'error', role: 'alert', hidden: true });
  const button = el('button', { type: 'submit', id: 'signin-submit' }, 'Sign in');
  const form = el('form', { class: 'signin', id: 'signin' },
    el('h1', {}, 'onecloud'),
    el('label', {}, 'User', user),
    el('label', {}, 'Password', password),
    error, button);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    button.disabled = true;
    error.hidden = true;
    try {
      const answer = await request('POST', '/api/login',
        { user: user.value, password: password.value }, { quiet401: true });
      window.dispatchEvent(new CustomEvent('signedin', { detail: answer }));
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
      password.select();
    } finally {
      button.disabled = false;
    }
  });
  root.append(form);
  user.focus();
  return { unmount() {} };
}
