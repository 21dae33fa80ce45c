import type { Argv } from 'yargs';
import { parseCount, type CommitInfo } from '../../api/index.js';
import { withStore, type GlobalArgs } from '../context.js';
import { bytes, dim, json, metrics, out, short, time, yellow } from '../render.js';

interface LogArgs extends GlobalArgs {
  rev?: string;
  n?: string;
  firstParent?: boolean;
}

interface ShowArgs extends GlobalArgs {
  rev: string;
}

function header(c: CommitInfo): void {
  const refs = c.refs.length ? ` (${c.refs.join(', ')})` : '';
  out(`${yellow(`commit ${c.id}`)}${refs}`);
  if (c.parents.length > 1) out(`Parents: ${c.parents.map(short).join(' ')}`);
  out(`Branch:  ${c.branch ?? '-'}`);
  out(`Author:  ${c.author}`);
  out(`Date:    ${time(c.time)}`);
  const facts = [c.step !== undefined ? `step=${c.step}` : '', c.epoch !== undefined ? `epoch=${c.epoch}` : '', metrics(c.metrics)].filter(Boolean).join(' ');
  if (facts) out(`Metrics: ${facts}`);
  if (c.config) out(`Config:  ${c.config.name} ${short(c.config.hash)}`);
  if (c.code) out(`Code:    ${c.code.commit.slice(0, 12)}${c.code.branch ? ` (${c.code.branch})` : ''}${c.code.dirty ? ' dirty' : ''}`);
  if (c.run) out(`Run:     ${c.run}`);
  if (Object.keys(c.labels).length) out(`Labels:  ${Object.entries(c.labels).map(([k, v]) => `${k}=${v}`).join(' ')}`);
  out();
  for (const line of c.message.split('\n')) out(`    ${line}`);
}

export function historyCommands(y: Argv<GlobalArgs>): Argv<GlobalArgs> {
  return y
    .command<LogArgs>(
      'log [rev]',
      'List commits, newest first',
      (a) => a
        .positional('rev', { type: 'string', describe: 'start here (default HEAD)' })
        .option('n', { alias: 'max-count', type: 'string', describe: 'show at most N commits' })
        .option('first-parent', { type: 'boolean', describe: 'follow only the branch line, not warm-start parents' }) as unknown as Argv<LogArgs>,
      async (args) => {
        const list = await withStore(args, (s) => s.log({ rev: args.rev, limit: parseCount(args.n, 'n'), firstParent: args.firstParent }));
        if (args.json) return json(list);
        list.forEach((c, i) => {
          if (i) out();
          header(c);
        });
      },
    )
    .command<ShowArgs>(
      'show [rev]',
      'Show one commit: provenance, metrics and files',
      (a) => a.positional('rev', { type: 'string', default: 'HEAD' }) as unknown as Argv<ShowArgs>,
      async (args) => {
        const r = await withStore(args, (s) => s.show(args.rev));
        if (args.json) return json(r);
        header(r);
        if (r.config) out(dim(`\nconfig hash ${r.config.hash}`));
        out(`\n${r.files.length} file(s), ${bytes(r.totalBytes)}, ${r.tensorCount} tensor(s):`);
        for (const f of r.files) out(`  ${f.path}  ${bytes(f.size)}  ${f.format}${f.tensors ? `  ${f.tensors} tensors` : ''}`);
      },
    );
}
