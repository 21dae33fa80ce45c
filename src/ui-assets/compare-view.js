// Two revisions side by side: what `ckvc diff A B` reports, with each changed tensor's relative change
// ||b - a|| / ||a|| as a bar (largest first) and dtype or shape changes flagged.
import { bytes, commitLink, el, getJson, num, section, table } from './dom.js';

const show = (v) => (v === undefined ? '' : JSON.stringify(v));

function sidesTable(d) {
  const row = (name, s) => [
    name,
    s.rev,
    commitLink(s.id),
    num(s.step),
    s.configLabel ?? (s.configHash ? s.configHash.slice(0, 12) : ''),
    s.message,
  ];
  return table(['', 'revision', 'commit', 'step', 'config', 'message'], [row('A', d.a), row('B', d.b)], {
    id: 'sides',
  });
}

function configSection(c) {
  if (c.note) return section('Config', el('p', { class: 'muted' }, c.note));
  if (c.same) return section('Config', el('p', { class: 'muted' }, 'same config (equal hash)'));
  return section(
    'Config',
    table(
      ['key', 'change', 'A', 'B'],
      c.changes.map((x) => [el('code', {}, x.path), x.kind, show(x.old), show(x.new)]),
      { id: 'config-changes' },
    ),
  );
}

function metricsSection(ms) {
  const rows = ms.map((m) => [
    m.key,
    num(m.old),
    num(m.new),
    m.delta === undefined ? '' : `${m.delta > 0 ? '+' : ''}${num(m.delta)}`,
    m.percent === undefined || m.percent === null ? '' : `${m.percent > 0 ? '+' : ''}${m.percent.toFixed(2)}%`,
  ]);
  return section(
    'Metrics',
    rows.length
      ? table(['metric', 'A', 'B', 'Δ', 'Δ%'], rows, { id: 'metric-deltas' })
      : el('p', { class: 'muted' }, 'none'),
  );
}

function filesSection(f) {
  const rows = [
    ...f.added.map((x) => ['added', x.path, x.format, '', bytes(x.sizeB)]),
    ...f.removed.map((x) => ['removed', x.path, x.format, bytes(x.sizeA), '']),
    // A file saved under a new name (step_1000 -> step_2000) is one renamed file (`ckvc diff`'s renamedFrom).
    ...f.changed.map((x) =>
      x.renamedFrom
        ? ['renamed', `${x.renamedFrom} → ${x.path}`, x.format, bytes(x.sizeA), bytes(x.sizeB)]
        : ['changed', x.path, x.format, bytes(x.sizeA), bytes(x.sizeB)],
    ),
  ];
  return section(
    'Files',
    rows.length
      ? table(['', 'path', 'format', 'A', 'B'], rows, { id: 'file-changes' })
      : el('p', { class: 'muted' }, 'no file changed'),
    el('p', { class: 'muted' }, `${f.unchanged} unchanged`),
  );
}

function tensorBars(changed) {
  const sorted = [...changed].sort((p, q) => (q.delta?.relative ?? -1) - (p.delta?.relative ?? -1));
  const top = Math.max(1e-30, ...sorted.map((t) => t.delta?.relative ?? 0));
  return el(
    'div',
    { id: 'tensor-bars', class: 'bars' },
    sorted.map((t) => {
      const rel = t.delta?.relative;
      const flagged = t.dtypeA !== t.dtypeB || t.shapeA.join() !== t.shapeB.join();
      const bar = el('span', { class: 'bar' });
      bar.style.width = `${rel === undefined || rel === null ? 0 : Math.max(0.5, (100 * rel) / top)}%`;
      return el(
        'div',
        { class: 'bar-row' + (flagged ? ' flagged' : '') },
        el('span', { class: 'bar-name', title: `${t.file}:${t.name}` }, t.name),
        el('span', { class: 'bar-track' }, bar),
        el('span', { class: 'bar-value' }, rel === undefined || rel === null ? (t.note ?? 'no figure') : num(rel)),
        flagged ? el('span', { class: 'flag' }, ` ${t.dtypeA}[${t.shapeA}] → ${t.dtypeB}[${t.shapeB}]`) : '',
      );
    }),
  );
}

function tensorsSection(t) {
  const list = (what, xs) =>
    xs.length
      ? [
          el('h3', {}, `${what} (${xs.length})`),
          table(
            ['file', 'name', 'dtype', 'shape', 'bytes'],
            xs.map((x) => [x.file, x.name, x.dtype, `[${x.shape.join(', ')}]`, bytes(x.bytes)]),
          ),
        ]
      : [];
  return section(
    'Tensors',
    el(
      'p',
      { class: 'muted' },
      `${t.changed.length} changed, ${t.added.length} added, ${t.removed.length} removed, ${t.unchanged} unchanged; ` +
        'bar: relative change ||B − A|| / ||A||',
    ),
    t.changed.length ? tensorBars(t.changed) : '',
    ...list('added', t.added),
    ...list('removed', t.removed),
  );
}

export async function renderCompare(main, a, b) {
  const d = await getJson(`/api/compare?a=${encodeURIComponent(a)}&b=${encodeURIComponent(b)}`);
  document.title = `ckvc: ${a} vs ${b}`;
  main.replaceChildren(
    el('h1', {}, 'Compare ', el('code', {}, a), ' with ', el('code', {}, b)),
    sidesTable(d),
    configSection(d.config),
    metricsSection(d.metrics),
    filesSection(d.files),
    tensorsSection(d.tensors),
  );
}
