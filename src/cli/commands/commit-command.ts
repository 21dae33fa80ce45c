import type { Argv } from 'yargs';
import { withStore, type GlobalArgs } from '../context.js';
import { bytes, info, json, out, short } from '../render.js';
import { escaped } from '../terminal-text.js';

interface CommitArgs extends GlobalArgs {
  paths: string[];
  message: string;
  branch?: string;
  config?: string;
  metric?: string[];
  metricsFile?: string;
  step?: string;
  epoch?: number;
  run?: string;
  label?: string[];
  parent?: string[];
  author?: string;
}

export function commitCommand(y: Argv<GlobalArgs>): Argv<GlobalArgs> {
  return y.command<CommitArgs>(
    'commit <paths..>',
    'Commit checkpoint files or folders (prints the new commit ID)',
    (a) => a
      .positional('paths', { type: 'string', array: true, demandOption: true, describe: 'files or folders to commit' })
      .option('message', { alias: 'm', type: 'string', demandOption: true, describe: 'what this checkpoint is' })
      .option('branch', { alias: 'b', type: 'string', describe: 'branch to commit to (created if new; default: current)' })
      .option('config', { type: 'string', describe: 'YAML/JSON config to snapshot and hash' })
      .option('metric', { type: 'string', array: true, describe: 'KEY=NUMBER (nan, inf allowed), repeatable' })
      .option('metrics-file', { type: 'string', describe: 'FILE[:KEY]: metrics from a JSON object or the last line of a JSONL log' })
      .option('step', { type: 'string', describe: 'training step' })
      .option('epoch', { type: 'number', describe: 'training epoch' })
      .option('run', { type: 'string', describe: 'run ID' })
      .option('label', { type: 'string', array: true, describe: 'KEY=VALUE, repeatable' })
      .option('parent', { type: 'string', array: true, describe: 'warm-start parent revision (another branch), repeatable' })
      .option('author', { type: 'string', describe: 'author (default: $CKVC_AUTHOR or user@host)' }) as unknown as Argv<CommitArgs>,
    async (args) => {
      const ac = new AbortController();
      const onSignal = () => ac.abort();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      try {
        const r = await withStore(args, (s) => s.commit({
          paths: args.paths, message: args.message, branch: args.branch, config: args.config, metrics: args.metric ?? [], metricsFile: args.metricsFile,
          step: args.step, epoch: args.epoch, run: args.run, labels: args.label ?? [], parents: args.parent ?? [],
          author: args.author, signal: ac.signal,
          progress: process.stderr.isTTY && !args.json ? (e) => info(`  ${escaped(e.path)} (${bytes(e.bytes)})`) : undefined,
        }));
        for (const w of r.warnings ?? []) info(`ckvc: warning: ${escaped(w)}`);
        if (args.json) return json(r);
        out(r.id);
        info(`[${escaped(r.branch)} ${short(r.id)}] ${r.files} file(s), ${r.tensors} tensor(s), ${bytes(r.bytes)}; ${bytes(r.newBytes)} new${r.aliases ? `; new best for alias ${r.aliases.map(escaped).join(', ')}` : ''}`);
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    },
  );
}
