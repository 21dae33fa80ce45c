import type { CommitInfo } from '../../api/index.js';
import { releasedWording } from '../../core/released-wording.js';
import { parseCount } from '../../api/commit-input.js';
import { drawGraph } from '../../core/history-graph.js';
import { addCommand, withStore, type CliParser } from '../context.js';
import { bytes, dim, json, metricValue, metrics, out, short, time, yellow } from '../render.js';
import { escaped, escapedLines, firstLine } from '../terminal-text.js';

/** Writes to stdout, waiting when the pipe is full (a checkpoint is bigger than any pipe buffer). */
async function toStdout(bytes: Uint8Array): Promise<void> {
  if (!process.stdout.write(Buffer.from(bytes))) await new Promise((r) => process.stdout.once('drain', r));
}

/** ` (main, tag: v1)`: the names pointing at a commit, escaped (they may come from someone else's bundle). */
const refList = (refs: string[]) => (refs.length ? ` (${refs.map(escaped).join(', ')})` : '');

/** One line per commit: id, refs, step, the chosen metric columns (or all metrics), message. */
function oneLine(c: CommitInfo, columns: string[] | undefined, widths: number[]): string {
  const refs = refList(c.refs);
  const cols = columns
    ? columns
        .map((k, i) => (!Object.hasOwn(c.metrics, k) ? '-' : metricValue(c.metrics[k]!)).padEnd(widths[i]!))
        .join('  ')
    : metrics(c.metrics);
  // A message that already says the step ("step 1000", as the Python helper writes) does not get it twice.
  const saysStep =
    c.step !== undefined && new RegExp(`\\bstep[ =_]?${c.step}\\b`, 'i').test(c.message.split('\n')[0] ?? '');
  const step = c.step !== undefined && !saysStep ? `step=${c.step} ` : '';
  const pruned = c.pruned ? dim(' [pruned]') : '';
  const stops = c.shallow ? dim(' [history stops here (shallow)]') : '';
  return `${yellow(short(c.id))}  ${cols ? `${cols}  ` : ''}${dim(step)}${firstLine(c.message)}${refs}${pruned}${stops}`;
}

function header(c: CommitInfo): void {
  const refs = refList(c.refs);
  out(`${yellow(`commit ${c.id}`)}${refs}`);
  if (c.parents.length > 0) out(`Parents: ${c.parents.map(short).join(' ')}`);
  out(`Branch:  ${c.branch !== undefined ? escaped(c.branch) : '-'}`);
  out(`Author:  ${escaped(c.author)}`);
  out(`Date:    ${time(c.time)}`);
  const facts = [
    c.step !== undefined ? `step=${c.step}` : '',
    c.epoch !== undefined ? `epoch=${c.epoch}` : '',
    metrics(c.metrics),
  ]
    .filter(Boolean)
    .join(' ');
  if (facts) out(`Metrics: ${facts}`);
  if (c.config)
    out(
      `Config:  ${escaped(c.config.name)} ${short(c.config.hash)}${c.configLabel ? ` "${escaped(c.configLabel)}"` : ''}`,
    );
  if (c.pruned) out(`Pruned:  ${escaped(releasedWording(c.pruned))} released ${time(c.pruned.time)}`);
  if (c.shallow)
    out(`Shallow: history stops here (parents ${c.shallow.parents.map(short).join(' ')} are not in this store)`);
  // Tag names and messages may come from someone else's bundle: escaped, one line each.
  for (const t of c.tags ?? []) {
    out(`Tag:     ${escaped(t.name)}${t.message !== undefined ? `: ${firstLine(t.message)}` : ''}`);
  }
  if (c.code)
    out(
      `Code:    ${escaped(c.code.commit.slice(0, 12))}${c.code.branch ? ` (${escaped(c.code.branch)})` : ''}${c.code.dirty ? ' dirty' : ''}`,
    );
  if (c.run) out(`Run:     ${escaped(c.run)}`);
  if (Object.keys(c.labels).length)
    out(
      `Labels:  ${Object.entries(c.labels)
        .map(([k, v]) => `${escaped(k)}=${escaped(v)}`)
        .join(' ')}`,
    );
  out();
  for (const line of escapedLines(c.message)) out(`    ${line}`);
}

export function historyCommands(y: CliParser): void {
  logCommand(y);
  lsCommand(y);
  catCommand(y);
  showCommand(y);
}

function logCommand(y: CliParser): void {
  addCommand(
    y,
    'log [rev]',
    'List commits, newest first',
    (a) =>
      a
        .positional('rev', { type: 'string', describe: 'start here (default HEAD)' })
        .option('n', { alias: 'max-count', type: 'string', describe: 'show at most N commits' })
        .option('first-parent', {
          type: 'boolean',
          describe:
            "follow only each commit's first parent (the branch line; a branch's first commit continues into its first warm-start origin, as a branch made with `ckvc branch NAME START` continues into START)",
        })
        .option('all', { type: 'boolean', describe: 'every branch, tag and alias, not just REV' })
        .option('graph', {
          type: 'boolean',
          describe: 'draw branches, merges and warm-start parents (one line per commit)',
        })
        .option('oneline', { type: 'boolean', describe: 'one line per commit' })
        .option('metric', {
          type: 'string',
          array: true,
          describe: 'show this metric as a column (one line per commit), repeatable',
        }),
    async (args) => {
      const list = await withStore(args, (s) =>
        s.log({ rev: args.rev, all: args.all, limit: parseCount(args.n, 'n'), firstParent: args.firstParent }),
      );
      if (args.json) return json(list);
      const columns = args.metric?.length ? args.metric : undefined;
      const widths = (columns ?? []).map((k) =>
        Math.max(
          escaped(k).length,
          ...list.map((c) => (!Object.hasOwn(c.metrics, k) ? 1 : metricValue(c.metrics[k]!).length)),
        ),
      );
      const compact = args.oneline || args.graph || columns !== undefined;
      const rows = args.graph ? drawGraph(list.map((c) => ({ id: c.id, parents: c.parents }))) : undefined;
      if (compact && columns)
        out(
          dim(
            `${rows ? ' '.repeat(rows[0]?.node.length ?? 0) : ''}${'commit'.padEnd(12)}  ${columns.map((k, i) => escaped(k).padEnd(widths[i]!)).join('  ')}`,
          ),
        );
      list.forEach((c, i) => {
        if (compact) {
          out(`${rows ? rows[i]!.node : ''}${oneLine(c, columns, widths)}`);
          for (const line of rows ? rows[i]!.after : []) out(line);
          return;
        }
        if (i) out();
        header(c);
      });
    },
  );
}

function lsCommand(y: CliParser): void {
  addCommand(
    y,
    'ls <rev> [path]',
    'List the files of a commit (or under PATH); --tensors lists each tensor with dtype, shape and bytes',
    (a) =>
      a
        .positional('rev', { type: 'string', demandOption: true })
        .positional('path', { type: 'string' })
        .option('tensors', { type: 'boolean', describe: 'list the tensors of each file' }),
    async (args) => {
      const r = await withStore(args, (s) => s.ls(args.rev, { path: args.path, tensors: args.tensors }));
      if (args.json) return json(r);
      for (const f of r.files) {
        out(
          `${escaped(f.path)}  ${bytes(f.size)}  ${escaped(f.format)}${f.tensorCount ? `  ${f.tensorCount} tensor${f.tensorCount === 1 ? '' : 's'}` : ''}${f.tiedNames ? ` (+${f.tiedNames} tied name${f.tiedNames === 1 ? '' : 's'})` : ''}`,
        );
        for (const t of f.tensors ?? [])
          out(
            `  ${escaped(t.name)}  ${escaped(t.dtype)}  [${t.shape.join(', ')}]  ${bytes(t.bytes)}${t.order === 'F' ? '  (Fortran order)' : ''}${t.deflated ? '  (deflated in the archive)' : ''}${t.tiedTo !== undefined ? `  (tied to ${escaped(t.tiedTo)})` : ''}${t.pruned ? '  (pruned)' : ''}`,
          );
      }
    },
  );
}

function catCommand(y: CliParser): void {
  addCommand(
    y,
    'cat <spec>',
    "Stream REV:PATH to stdout, or with --tensor NAME one tensor's raw bytes; every chunk verified",
    (a) =>
      a
        .positional('spec', { type: 'string', demandOption: true, describe: 'REV:PATH, e.g. main:model.safetensors' })
        .option('tensor', { type: 'string', describe: "only this tensor's bytes (little-endian, as stored)" }),
    async (args) => {
      await withStore(args, (s) => s.cat(args.spec, toStdout, { tensor: args.tensor }));
    },
  );
}

function showCommand(y: CliParser): void {
  addCommand(
    y,
    'show [rev]',
    'Show one commit: provenance, metrics and files',
    (a) => a.positional('rev', { type: 'string', default: 'HEAD' }),
    async (args) => {
      const r = await withStore(args, (s) => s.show(args.rev));
      if (args.json) return json(r);
      header(r);
      if (r.config) out(dim(`\nconfig hash ${r.config.hash}`));
      out(`\n${r.files.length} file(s), ${bytes(r.totalBytes)}, ${r.tensorCount} tensor(s):`);
      for (const f of r.files)
        out(
          `  ${escaped(f.path)}  ${bytes(f.size)}  ${escaped(f.format)}${f.tensors ? `  ${f.tensors} tensor${f.tensors === 1 ? '' : 's'}` : ''}`,
        );
    },
  );
}
