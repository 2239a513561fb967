// Building DOM nodes without innerHTML, so text from the server (model names, error messages)
// is never parsed as markup.

/**
 * h('button', {class: 'primary', onclick: fn, 'data-testid': 'x'}, 'Load')
 * Attributes starting with "on" become listeners; `false`/null attributes are left out;
 * children may be strings, nodes, arrays or null.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith('on') && typeof value === 'function') {
      el.addEventListener(name.slice(2), value);
    } else if (name === 'class') {
      el.className = value;
    } else if (name === 'style' && typeof value === 'object') {
      Object.assign(el.style, value);
    } else if (name === 'value' || name === 'checked' || name === 'selected') {
      el[name] = value; // properties, not attributes, so a re-render shows the current value
    } else {
      el.setAttribute(name, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

/** Replaces every child of `el`. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

export const $ = (selector, root = document) => root.querySelector(selector);

/** Calls `fn` once `ms` have passed without another call (what-if inputs, refetches). */
export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

/** Copies text; falls back to a selection copy where the Clipboard API is absent (plain http on LAN). */
export async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  const area = h('textarea', { style: { position: 'fixed', opacity: '0' } }, text);
  document.body.append(area);
  area.select();
  document.execCommand('copy');
  area.remove();
}

/** A button that copies `getText()` and says so for a moment. */
export function copyButton(getText, label = 'Copy', attrs = {}) {
  const button = h('button', { type: 'button', class: 'small', ...attrs }, label);
  button.addEventListener('click', async () => {
    try {
      await copyText(getText());
      button.textContent = 'Copied';
    } catch {
      button.textContent = 'Copy failed';
    }
    setTimeout(() => (button.textContent = label), 1500);
  });
  return button;
}
