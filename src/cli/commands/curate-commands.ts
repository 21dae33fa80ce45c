// Comparing and curating: diff, best, alias (prune, unprune and gc: retention-commands.ts).
import type { DiffResult } from '../../api/index.js';
import { CkvcError } from '../../core/errors.js';
import type { MetricMode } from '../../core/metric-mode.js';
import { addCommand, withStore, type CliParser } from '../context.js';
import { bytes, dim, info, json, metricValue, out, short } from '../render.js';
import { escaped, firstLine } from '../terminal-text.js';

/** --min / --max, or undefined to let the metric's name decide. */
export function modeOf(args: { min?: boolean; max?: boolean }): MetricMode | undefined {
  return args.min ? 'min' : args.max ? 'max' : undefined;
}

// JSON.stringify escapes C0 but not C1 or bidi overrides, hence the escaping on top.
const fmt = (v: unknown) => escaped(JSON.stringify(v) ?? 'undefined');
const num = (v: number) =>
  Number.isInteger(v)
    ? String(v)
    : Math.abs(v) >= 1e-3 && Math.abs(v) < 1e6
      ? v.toPrecision(6).replace(/\.?0+$/, '')
      : v.toExponential(3);
const pct = (f: number) => `${(f * 100).toFixed(f > 0 && f < 0.001 ? 3 : 1)}%`;

/** Why an alias names no commit yet: what its branch's tip records (a mistyped metric shows), or no commit. */
function notYet(r: { branch: string; tipMetrics?: string[] }): string {
  if (!r.tipMetrics) return `(branch ${escaped(r.branch)} has no commit yet)`;
  const list = r.tipMetrics.map(escaped).join(', ');
  return `(the tip of ${escaped(r.branch)} records ${list || 'no metrics'})`;
}

/** A renamed file's old name (core/diff/renamed-files.ts), after its line. */
const renamed = (f: { renamedFrom?: string }) => (f.renamedFrom ? `  (was ${escaped(f.renamedFrom)})` : '');

function renderDiff(r: DiffResult, stat: boolean): void {
  const sideText = (s: DiffResult['a']) =>
    `${escaped(s.rev)} ${short(s.id)}${s.step !== undefined ? ` step=${s.step}` : ''}`;
  if (stat) {
    // Padded by the escaped names: those are what the columns are made of.
    const width = Math.max(
      0,
      ...[...r.files.changed, ...r.files.added, ...r.files.removed].map((f) => escaped(f.path).length),
    );
    const col = (p: string) => escaped(p).padEnd(width);
    for (const f of r.files.changed) {
      const t =
        f.tensorsChanged !== undefined
          ? `${f.tensorsChanged} tensor(s) changed, ${f.tensorsAdded} added, ${f.tensorsRemoved} removed`
          : `changed`;
      out(` ${col(f.path)} | ${t} (${bytes(f.sizeA!)} -> ${bytes(f.sizeB!)})${renamed(f)}`);
    }
    for (const f of r.files.added) out(` ${col(f.path)} | added (${bytes(f.sizeB!)})`);
    for (const f of r.files.removed) out(` ${col(f.path)} | removed (${bytes(f.sizeA!)})`);
    const chunks = r.tensors.changed.reduce((a, t) => a + t.changedChunks, 0);
    const total = r.tensors.changed.reduce((a, t) => a + t.chunks, 0);
    out(
      ` ${r.files.changed.length} file(s) changed, ${r.files.added.length} added, ${r.files.removed.length} removed, ${r.files.unchanged} unchanged; ` +
        `${r.tensors.changed.length} tensor(s) changed (${chunks}/${total} chunks), ${r.tensors.added.length} added, ${r.tensors.removed.length} removed, ${r.tensors.unchanged} unchanged; ` +
        `config ${r.config.same ? 'same' : `${r.config.changes.length} key(s) changed`}; ${r.metrics.filter((m) => m.delta !== 0).length} metric(s) differ`,
    );
    return;
  }
  out(`diff ${sideText(r.a)} -> ${sideText(r.b)}`);
  const label = (h?: string, l?: string) => (h ? `${short(h)}${l ? ` "${escaped(l)}"` : ''}` : 'none');
  out(
    `\nconfig: ${r.config.same ? `same (${label(r.config.a, r.a.configLabel)})` : `${label(r.config.a, r.a.configLabel)} -> ${label(r.config.b, r.b.configLabel)}, ${r.config.changes.length} key(s) differ`}${r.config.note ? dim(` (${escaped(r.config.note)})`) : ''}`,
  );
  for (const c of r.config.changes) {
    if (c.kind === 'added') out(`  + ${escaped(c.path)}: ${fmt(c.new)}`);
    else if (c.kind === 'removed') out(`  - ${escaped(c.path)}: ${fmt(c.old)}`);
    else out(`  ~ ${escaped(c.path)}: ${fmt(c.old)} -> ${fmt(c.new)}`);
  }
  out(`\nmetrics:${r.metrics.length ? '' : ' none'}`);
  const kw = Math.max(0, ...r.metrics.map((m) => escaped(m.key).length));
  for (const m of r.metrics) {
    const key = escaped(m.key).padEnd(kw);
    if (m.old === undefined) out(`  + ${key}  ${num(m.new!)}`);
    else if (m.new === undefined) out(`  - ${key}  ${num(m.old)}`);
    else
      out(
        `  ${m.delta === 0 ? ' ' : '~'} ${key}  ${num(m.old)} -> ${num(m.new)}  (${m.delta! >= 0 ? '+' : ''}${num(m.delta!)}${m.percent === null || m.percent === undefined ? '' : `, ${m.percent >= 0 ? '+' : ''}${m.percent.toFixed(2)}%`})`,
      );
  }
  out(
    `\nfiles: ${r.files.changed.length} changed, ${r.files.added.length} added, ${r.files.removed.length} removed, ${r.files.unchanged} unchanged`,
  );
  for (const f of r.files.added) out(`  + ${escaped(f.path)}  ${bytes(f.sizeB!)}`);
  for (const f of r.files.removed) out(`  - ${escaped(f.path)}  ${bytes(f.sizeA!)}`);
  for (const f of r.files.changed)
    out(
      `  ~ ${escaped(f.path)}  ${bytes(f.sizeA!)} -> ${bytes(f.sizeB!)}${f.tensorsChanged !== undefined ? `  (${f.tensorsChanged} tensor(s) changed)` : ''}${renamed(f)}`,
    );
  out(
    `\ntensors: ${r.tensors.changed.length} changed, ${r.tensors.added.length} added, ${r.tensors.removed.length} removed, ${r.tensors.unchanged} unchanged`,
  );
  for (const t of r.tensors.added)
    out(`  + ${escaped(t.file)}:${escaped(t.name)}  ${escaped(t.dtype)} [${t.shape.join(', ')}]`);
  for (const t of r.tensors.removed)
    out(`  - ${escaped(t.file)}:${escaped(t.name)}  ${escaped(t.dtype)} [${t.shape.join(', ')}]`);
  for (const t of r.tensors.changed) {
    const type =
      t.dtypeA === t.dtypeB && t.shapeA.join() === t.shapeB.join()
        ? `${escaped(t.dtypeA)} [${t.shapeA.join(', ')}]`
        : `${escaped(t.dtypeA)} [${t.shapeA.join(', ')}] -> ${escaped(t.dtypeB)} [${t.shapeB.join(', ')}]`;
    const d = t.delta;
    // NaN or inf where there was none is often the news (a run diverged): said first, since the figures leave
    // those elements out and can read 0.
    const nonFinite = d?.nonFinite ? `  NaN/inf in ${d.nonFinite} element(s), left out of:` : '';
    const figures = d
      ? `${nonFinite}  ||a-b||=${num(d.l2Diff)}  rel=${d.relative === null ? 'n/a' : num(d.relative)}  max|a-b|=${num(d.maxAbsDiff)}`
      : t.note
        ? dim(`  (${escaped(t.note)})`)
        : '';
    out(
      `  ~ ${escaped(t.file)}:${escaped(t.name)}  ${type}  chunks ${t.changedChunks}/${t.chunks} (${pct(t.chunkFraction)})${figures}`,
    );
  }
}

export function curateCommands(y: CliParser): void {
  diffCommand(y);
  bestCommand(y);
  aliasCommand(y);
}

function diffCommand(y: CliParser): void {
  addCommand(
    y,
    'diff <a> <b>',
    'Compare two commits: config keys, metric deltas, files, and tensors (with ||a-b||, relative change, max |a-b|); or two files of them, as REV:PATH REV:PATH',
    (a) =>
      a
        .positional('a', { type: 'string', demandOption: true })
        .positional('b', { type: 'string', demandOption: true })
        .option('stat', { type: 'boolean', describe: 'one line per file and a summary; reads no tensor data' })
        .option('tensor', {
          type: 'string',
          array: true,
          describe: 'only tensors matching this glob (name or FILE:NAME), repeatable',
        }),
    async (args) => {
      const r = await withStore(args, (s) =>
        s.diff({ a: args.a, b: args.b, tensors: args.tensor, numeric: !args.stat }),
      );
      if (args.json) return json(r);
      renderDiff(r, Boolean(args.stat));
    },
  );
}

function bestCommand(y: CliParser): void {
  addCommand(
    y,
    'best',
    'Print the best commit of a branch by a metric',
    (a) =>
      a
        .option('metric', { type: 'string', demandOption: true, describe: 'metric to rank by' })
        .option('min', { type: 'boolean', describe: 'lower is better' })
        .option('max', {
          type: 'boolean',
          describe: 'higher is better (default unless the name says loss, error, ...)',
        })
        .option('branch', { alias: 'b', type: 'string', describe: 'branch (default: the current one)' })
        .conflicts('min', 'max'),
    async (args) => {
      const r = await withStore(args, (s) => s.best({ metric: args.metric, mode: modeOf(args), branch: args.branch }));
      if (args.json) return json(r);
      out(r.id);
      info(
        `best ${escaped(r.metric)}=${metricValue(r.value)} (${r.mode === 'min' ? 'lowest' : 'highest'}${r.modeGuessed ? `, guessed from the name; --${r.mode === 'min' ? 'max' : 'min'} to flip` : ''}) on ${escaped(r.branch)} among ${r.candidates} commit(s): ${short(r.id)}${r.step !== undefined ? ` step=${r.step}` : ''} ${firstLine(r.message)}`,
      );
    },
  );
}

function aliasCommand(y: CliParser): void {
  addCommand(
    y,
    'alias [name]',
    'List moving aliases, or create one that every later commit to BRANCH moves when it beats the best KEY',
    (a) =>
      a
        .positional('name', { type: 'string' })
        .option('track', { type: 'string', describe: 'metric to track' })
        .option('min', { type: 'boolean', describe: 'lower is better' })
        .option('max', { type: 'boolean', describe: 'higher is better' })
        .option('branch', { alias: 'b', type: 'string', describe: 'branch to follow (default: the current one)' })
        .option('force', { type: 'boolean', describe: 'redefine an existing alias' })
        .option('delete', { alias: 'd', type: 'boolean', describe: 'delete the alias' })
        .conflicts('min', 'max'),
    async (args) =>
      withStore(args, async (s) => {
        if (!args.name) {
          const list = await s.aliases();
          if (args.json) return json(list);
          const w = Math.max(0, ...list.map((l) => escaped(l.name).length));
          for (const l of list) {
            const step = l.step !== undefined ? `  step=${l.step}` : '';
            const what =
              'received' in l
                ? 'received (pulled or fetched: not moved by commits here)'
                : `${escaped(l.mode)} ${escaped(l.track)}${l.value !== undefined ? `=${metricValue(l.value)}` : ''} on ${escaped(l.branch)}`;
            out(`${escaped(l.name).padEnd(w)}  ${l.id ? short(l.id) : '(none yet)'.padEnd(12)}  ${what}${step}`);
          }
          return;
        }
        if (args.delete) {
          const r = await s.deleteAlias(args.name);
          return args.json ? json(r) : info(`deleted alias ${escaped(r.name)}${r.id ? ` (was ${short(r.id)})` : ''}`);
        }
        if (!args.track) {
          throw new CkvcError(
            'CKVC_USAGE',
            `creating alias '${args.name}' needs --track KEY (and -b BRANCH unless it is the current branch); 'ckvc alias' alone lists aliases`,
            {},
          );
        }
        const r = await s.createAlias({
          name: args.name,
          track: args.track,
          mode: modeOf(args),
          branch: args.branch,
          force: args.force,
        });
        if (args.json) return json(r);
        info(
          `alias ${escaped(r.name)} tracks the ${r.mode === 'min' ? 'lowest' : 'highest'} ${escaped(r.track)} on ${escaped(r.branch)}: ${r.id ? `now ${short(r.id)} (${escaped(r.track)}=${metricValue(r.value!)})` : `no commit has it yet ${notYet(r)}`}`,
        );
      }),
  );
}
