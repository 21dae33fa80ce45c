// Building blocks of every view. Store data (names, messages, labels, config values) arrives from other
// people's bundles: it only ever reaches the page as text nodes (textContent), never as markup.

/** el('a', { href, class }, child, ...): children are nodes or strings (strings become text nodes). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else node.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    node.append(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }
  return node;
}

export const short = (id) => (id ? id.slice(0, 12) : '');

export const commitHref = (rev) => `/commit/${encodeURIComponent(rev)}`;

export const compareHref = (a, b) => `/compare/${encodeURIComponent(a)}/${encodeURIComponent(b)}`;

export function commitLink(rev, text = short(rev)) {
  return el('a', { href: commitHref(rev), class: 'id' }, text);
}

export function bytes(n) {
  if (n === undefined || n === null) return '';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(1)} ${units[u]}`;
}

export function when(ms) {
  return ms === undefined
    ? ''
    : new Date(ms)
        .toISOString()
        .replace('T', ' ')
        .replace(/\.\d+Z$/, 'Z');
}

export function num(v) {
  if (typeof v !== 'number') return v === undefined || v === null ? '' : String(v);
  if (Number.isInteger(v)) return String(v);
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e6) ? v.toExponential(4) : String(Number(v.toPrecision(6)));
}

/** A table from a header list and rows of cells (nodes or strings). */
export function table(head, rows, attrs = {}) {
  return el(
    'table',
    attrs,
    el(
      'thead',
      {},
      el(
        'tr',
        {},
        head.map((h) => el('th', {}, h)),
      ),
    ),
    el(
      'tbody',
      {},
      rows.map((r) =>
        el(
          'tr',
          {},
          r.map((c) => el('td', {}, c)),
        ),
      ),
    ),
  );
}

export function section(title, ...children) {
  return el('section', {}, el('h2', {}, title), ...children);
}

export async function getJson(url) {
  const res = await fetch(url, { headers: { accept: 'application/json' } });
  const body = await res.json().catch(() => ({ error: { message: `${res.status} ${res.statusText}` } }));
  if (!res.ok) throw new Error(body.error?.message ?? `${res.status}`);
  return body;
}

export function showError(main, e) {
  main.replaceChildren(el('p', { class: 'error' }, String(e.message ?? e)));
}
