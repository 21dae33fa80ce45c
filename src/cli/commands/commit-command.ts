import { CkvcError } from '../../core/errors.js';
import type { CommitDryRunResult, CommitOptions } from '../../api/index.js';
import { addCommand, withStore, type CliParser } from '../context.js';
import { onFirstSignal } from '../interruption.js';
import { bytes, info, json, metrics, out, short } from '../render.js';
import { escaped } from '../terminal-text.js';

function reportDryRun(r: CommitDryRunResult, asJson: boolean): void {
  for (const w of r.warnings ?? []) info(`ckvc: warning: ${escaped(w)}`);
  if (asJson) return json(r);
  const onto = r.newBranch ? `a new branch ${escaped(r.branch)}` : `${escaped(r.branch)} after ${short(r.parents[0]!)}`;
  out(
    `dry run: would commit ${r.files} file(s), ${r.tensors} tensor(s), ${bytes(r.bytes)} onto ${onto}; ${bytes(r.newBytes)} new in ${r.newObjects} object(s)`,
  );
  const facts = [
    r.step !== undefined ? `step=${r.step}` : '',
    r.epoch !== undefined ? `epoch=${r.epoch}` : '',
    metrics(r.metrics),
  ]
    .filter(Boolean)
    .join(' ');
  if (facts) out(`metrics: ${facts}`);
  if (r.config) {
    const vs =
      r.config.changes === undefined
        ? ''
        : r.config.changes.length === 0
          ? ", same as the parent's"
          : `, ${r.config.changes.length} key(s) differ from the parent's: ${r.config.changes
              .slice(0, 10)
              .map((c) => escaped(c.path))
              .join(', ')}`;
    out(`config: ${escaped(r.config.name)} ${short(r.config.hash)}${vs}`);
  }
  info('nothing was written');
}

/** --epoch as typed: a number (fractions allowed: an epoch can be part-way), quoted back when it is not one. */
function epochOf(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n))
    throw new CkvcError('CKVC_BAD_ARGUMENT', `--epoch must be a number, got ${JSON.stringify(text)}`, { epoch: text });
  return n;
}

export function commitCommand(y: CliParser): void {
  addCommand(
    y,
    'commit <paths..>',
    'Commit checkpoint files or folders (prints the new commit ID)',
    (a) =>
      a
        .positional('paths', {
          type: 'string',
          array: true,
          demandOption: true,
          describe: 'files or folders to commit',
        })
        .option('message', { alias: 'm', type: 'string', demandOption: true, describe: 'what this checkpoint is' })
        .option('branch', {
          alias: 'b',
          type: 'string',
          describe: 'branch to commit to (created if new; default: current)',
        })
        .option('config', { type: 'string', describe: 'YAML/JSON config to snapshot and hash' })
        .option('metric', { type: 'string', array: true, describe: 'KEY=NUMBER (nan, inf allowed), repeatable' })
        .option('metrics-file', {
          type: 'string',
          describe: 'FILE[:KEY]: metrics from a JSON object or the last line of a JSONL log',
        })
        .option('step', { type: 'string', describe: 'training step' })
        .option('epoch', { type: 'string', describe: 'training epoch' })
        .option('run', { type: 'string', describe: 'run ID' })
        .option('label', { type: 'string', array: true, describe: 'KEY=VALUE, repeatable' })
        .option('parent', {
          type: 'string',
          array: true,
          describe: 'warm-start parent revision (another branch), repeatable',
        })
        .option('author', { type: 'string', describe: 'author (default: $CKVC_AUTHOR or user@host)' })
        .option('reread', {
          type: 'boolean',
          describe: 'read every file, also those unchanged since this store took them (the files cache)',
        })
        .option('dry-run', {
          type: 'boolean',
          describe: 'check every input and report what would be stored and how much is new; write nothing',
        })
        .option('allow-empty', {
          type: 'boolean',
          describe: 'commit even when the paths hold no file (refused otherwise: a failed save leaves an empty folder)',
        }),
    async (args) => {
      const ac = new AbortController();
      const stopListening = onFirstSignal(() => ac.abort());
      try {
        const opts: CommitOptions = {
          paths: args.paths,
          message: args.message,
          branch: args.branch,
          config: args.config,
          metrics: args.metric ?? [],
          metricsFile: args.metricsFile,
          step: args.step,
          epoch: epochOf(args.epoch),
          run: args.run,
          labels: args.label ?? [],
          parents: args.parent ?? [],
          author: args.author,
          signal: ac.signal,
          reread: args.reread,
          allowEmpty: args.allowEmpty,
          progress:
            process.stderr.isTTY && !args.json ? (e) => info(`  ${escaped(e.path)} (${bytes(e.bytes)})`) : undefined,
        };
        if (args.dryRun) return reportDryRun(await withStore(args, (s) => s.commitDryRun(opts)), Boolean(args.json));
        const r = await withStore(args, (s) => s.commit(opts));
        for (const w of r.warnings ?? []) info(`ckvc: warning: ${escaped(w)}`);
        if (args.json) return json(r);
        out(r.id);
        info(
          `[${escaped(r.branch)}${r.newBranch ? ' (new branch)' : ''} ${short(r.id)}] ${r.files} file(s), ${r.tensors} tensor(s), ${bytes(r.bytes)}; ${bytes(r.newBytes)} new${r.unreadFiles ? ` (${r.unreadFiles} file(s) unchanged since stored, not read)` : ''}${r.aliases ? `; new best for alias ${r.aliases.map(escaped).join(', ')}` : ''}`,
        );
        if (r.similarBranches)
          info(
            `ckvc: note: branch ${escaped(r.branch)} did not exist; this commit started it (close to ${r.similarBranches.map((b) => `'${escaped(b)}'`).join(', ')}: a typo? 'ckvc branch -d ${escaped(r.branch)}' drops it, then commit again)`,
          );
      } finally {
        stopListening();
      }
    },
  );
}
