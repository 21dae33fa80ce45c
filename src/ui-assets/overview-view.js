// Overview: every branch, tag and alias with its tip; store statistics; a metric picker leading to the
// curves; a compare form; and the history graph of all branches (the lanes of `ckvc log --graph --all`).
import { bytes, commitHref, commitLink, compareHref, el, getJson, num, section, table, when } from './dom.js';

/** For each metric key, the tip value the branches table marks as best (by the key's min/max mode). */
function bestTips(branches, modes) {
  // Keys are metric names: no prototype, so that one named like an Object method (toString) starts unset.
  const best = Object.create(null);
  for (const [key, mode] of Object.entries(modes)) {
    for (const b of branches) {
      const v = own(b.metrics, key);
      if (typeof v !== 'number' || !Number.isFinite(v)) continue;
      if (best[key] === undefined || (mode === 'max' ? v > best[key] : v < best[key])) best[key] = v;
    }
  }
  return best;
}

/** A branch's own value of metric `key`: not a member of Object's prototype of the same name. */
function own(metrics, key) {
  return metrics && Object.hasOwn(metrics, key) ? metrics[key] : undefined;
}

function metricCells(metrics, keys, best) {
  return keys.map((k) => {
    const v = own(metrics, k);
    if (v === undefined) return '';
    const isBest = best && best[k] === v;
    return el(
      'span',
      { class: isBest ? 'best' : '', title: isBest ? `best ${k} among the branch tips` : '' },
      num(v),
      isBest ? ' ★' : '',
    );
  });
}

function refsSection(o) {
  const keys = Object.keys(o.modes);
  const best = bestTips(o.branches, o.modes);
  const head = ['branch', 'tip', 'time', 'step', 'message', ...keys.map((k) => `${k} (${o.modes[k]})`)];
  const rows = o.branches.map((b) => [
    el('a', { href: commitHref(b.name), class: 'ref' }, b.name, b.current ? ' (HEAD)' : ''),
    commitLink(b.commit),
    when(b.time),
    num(b.step),
    b.message,
    ...metricCells(b.metrics, keys, best),
  ]);
  const parts = [table(head, rows, { id: 'branches' })];
  if (o.tags.length) {
    parts.push(
      el('h3', {}, 'Tags'),
      table(
        ['tag', 'commit', 'time', 'step', 'message'],
        o.tags.map((t) => [
          el('a', { href: commitHref(t.name), class: 'ref' }, t.name),
          commitLink(t.commit),
          when(t.time),
          num(t.step),
          t.tagMessage ?? t.message,
        ]),
        { id: 'tags' },
      ),
    );
  }
  if (o.aliases.length) {
    parts.push(
      el('h3', {}, 'Aliases'),
      table(
        ['alias', 'tracks', 'branch', 'commit', 'value', 'step'],
        o.aliases.map((a) => [
          a.id ? el('a', { href: commitHref(a.name), class: 'ref' }, a.name) : a.name,
          a.received ? 'received' : `${a.mode} ${a.track}`,
          a.received ? '' : a.branch,
          a.id ? commitLink(a.id) : '(none yet)',
          num(a.value),
          num(a.step),
        ]),
        { id: 'aliases' },
      ),
    );
  }
  return section('Branches', ...parts);
}

function statsSection(s) {
  const rows = [
    ['commits', String(s.commits)],
    ['logical bytes', bytes(s.logicalBytes)],
    ['stored bytes', bytes(s.storedBytes)],
    ['deduplication', `${s.dedupRatio.toFixed(2)}×`],
    ['compression', `${s.compressionRatio.toFixed(2)}×`],
    ['total', `${s.totalRatio.toFixed(2)}×`],
  ];
  return section('Store', table(['', ''], rows, { id: 'stats', class: 'narrow' }));
}

function metricPicker(modes) {
  const keys = Object.keys(modes);
  if (!keys.length) return section('Curves', el('p', { class: 'muted' }, 'No branch tip records a metric.'));
  const form = el(
    'form',
    { id: 'metric-picker', action: '/metrics', method: 'get' },
    keys.map((k, i) =>
      el('label', {}, el('input', { type: 'checkbox', name: 'key', value: k, checked: i === 0 }), ` ${k}`),
    ),
    el('button', { type: 'submit' }, 'Show curves'),
  );
  return section('Curves', form);
}

function compareForm(o) {
  const names = [...o.branches.map((b) => b.name), ...o.tags.map((t) => t.name)];
  const pick = (id, at) =>
    el(
      'select',
      { id },
      names.map((n, i) => el('option', { value: n, selected: i === at }, n)),
    );
  const a = pick('compare-a', 0);
  const b = pick('compare-b', Math.min(1, names.length - 1));
  const go = el('button', { type: 'button' }, 'Compare');
  go.addEventListener('click', () => location.assign(compareHref(a.value, b.value)));
  return section('Compare', el('div', { class: 'row' }, a, ' with ', b, ' ', go));
}

function graphRow(c) {
  const warm = c.warmStarts;
  return el(
    'div',
    { class: 'graph-row', dataset: { id: c.id } },
    el('span', { class: 'lanes' }, c.graph),
    commitLink(c.id),
    c.refs.map((r) => el('span', { class: 'badge' }, r)),
    el('span', { class: 'msg' }, c.message),
    c.step !== undefined ? el('span', { class: 'muted' }, ` step ${c.step}`) : '',
    warm.map((p) => el('span', { class: 'warm' }, ' warm start from ', commitLink(p))),
  );
}

async function historySection() {
  const list = el('div', { id: 'graph', class: 'graph' });
  const more = el('button', { type: 'button', id: 'graph-more' }, 'Load more');
  let offset = 0;
  const load = async () => {
    const page = await getJson(`/api/log?all=1&offset=${offset}&limit=200`);
    for (const c of page.commits) {
      list.append(graphRow(c));
      for (const line of c.after) list.append(el('div', { class: 'graph-row' }, el('span', { class: 'lanes' }, line)));
    }
    offset = page.next ?? offset;
    more.hidden = page.next === null;
  };
  more.addEventListener('click', () => void load());
  await load();
  return section('History', list, more);
}

export async function renderOverview(main) {
  // Statistics walk the whole history (seconds on 10,000 commits): the rest of the page does not wait for them,
  // though the view counts as rendered (body[data-ready]) only once they are in.
  const stats = getJson('/api/stats');
  const [o, history] = await Promise.all([getJson('/api/overview'), historySection()]);
  document.title = 'ckvc: overview';
  const statsBox = el('div', {}, section('Store', el('p', { class: 'muted' }, 'counting…')));
  main.replaceChildren(
    refsSection(o),
    el('div', { class: 'columns' }, statsBox, metricPicker(o.modes), compareForm(o)),
    history,
  );
  statsBox.replaceChildren(statsSection(await stats));
}
