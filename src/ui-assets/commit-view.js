// One commit: what `ckvc show` and `ckvc ls --tensors` report, its config snapshot, and a download per file
// (streamed and verified by the server as `ckvc cat` does).
import { bytes, commitLink, compareHref, el, getJson, num, section, table, when } from './dom.js';

function metaTable(c) {
  const labels = Object.entries(c.labels ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');
  const rows = [
    ['commit', el('code', {}, c.id)],
    ['author', c.author],
    ['time', when(c.time)],
    ['branch', c.branch ?? ''],
    ['step', num(c.step)],
    ['epoch', num(c.epoch)],
    ['run', c.run ?? ''],
    ['labels', labels],
    ['refs', c.refs.join(', ')],
    ['size', `${bytes(c.totalBytes)} in ${c.files.length} file(s), ${c.tensorCount} tensor(s)`],
  ];
  if (c.pruned)
    rows.push([
      'pruned',
      `${when(c.pruned.time)}: ${c.pruned.tensors ? c.pruned.tensors.length : 'all'} tensor(s) released`,
    ]);
  if (c.code)
    rows.push([
      'code',
      `${c.code.commit}${c.code.branch ? ` (${c.code.branch})` : ''}${c.code.dirty ? ', uncommitted changes' : ''}`,
    ]);
  return table(
    ['', ''],
    rows.filter((r) => r[1] !== ''),
    { class: 'narrow', id: 'meta' },
  );
}

function parentsSection(c) {
  if (!c.parents.length)
    return section('Parents', el('p', { class: 'muted' }, 'none: the first commit of its history'));
  return section(
    'Parents',
    el(
      'ul',
      { id: 'parents' },
      c.parents.map((p) =>
        el(
          'li',
          {},
          p.warmStart ? el('span', { class: 'warm' }, 'warm start from ') : 'previous: ',
          commitLink(p.id),
          ` ${p.branch ?? ''} `,
          p.step !== undefined ? `step ${p.step} ` : '',
          el('span', { class: 'msg' }, p.message),
          ' ',
          el('a', { href: compareHref(p.id, c.id) }, 'compare'),
        ),
      ),
    ),
  );
}

function configSection(cfg) {
  if (!cfg) return section('Config', el('p', { class: 'muted' }, 'committed without --config'));
  return section(
    'Config',
    el(
      'p',
      {},
      `${cfg.name} (${cfg.format}, ${bytes(cfg.bytes)}) hash `,
      el('code', {}, cfg.hash),
      cfg.label ? el('span', { class: 'badge' }, cfg.label) : '',
    ),
    el('pre', { id: 'config-text' }, cfg.text),
    cfg.truncated ? el('p', { class: 'muted' }, "(cut; download the commit's files for all of it)") : '',
  );
}

function metricsSection(metrics) {
  const rows = Object.entries(metrics ?? {})
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([k, v]) => [k, num(v)]);
  return section(
    'Metrics',
    rows.length
      ? table(['metric', 'value'], rows, { class: 'narrow', id: 'metrics' })
      : el('p', { class: 'muted' }, 'none'),
  );
}

function filesSection(c) {
  const download = (f) =>
    el(
      'a',
      { href: `/api/file?rev=${encodeURIComponent(c.id)}&path=${encodeURIComponent(f.path)}`, download: '' },
      'download',
    );
  const files = table(
    ['path', 'format', 'size', 'tensors', ''],
    c.files.map((f) => [f.path, f.format, bytes(f.size), String(f.tensorCount), download(f)]),
    { id: 'files' },
  );
  const tensorRows = c.files.flatMap((f) =>
    (f.tensors ?? []).map((t) => [
      f.path,
      t.name,
      t.dtype,
      `[${t.shape.join(', ')}]`,
      bytes(t.bytes),
      [t.tiedTo !== undefined ? `tied to ${t.tiedTo}` : '', t.pruned ? 'pruned' : t.deflated ? 'deflated' : '']
        .filter(Boolean)
        .join(', '),
    ]),
  );
  return [
    section('Files', files),
    section('Tensors', table(['file', 'name', 'dtype', 'shape', 'bytes', ''], tensorRows, { id: 'tensors' })),
  ];
}

export async function renderCommit(main, rev) {
  const c = await getJson(`/api/commit?rev=${encodeURIComponent(rev)}`);
  document.title = `ckvc: ${c.id.slice(0, 12)}`;
  main.replaceChildren(
    el('h1', { id: 'message' }, c.message),
    metaTable(c),
    parentsSection(c),
    metricsSection(c.metrics),
    configSection(c.config),
    ...filesSection(c),
  );
}
