import { CkvcError } from '../../core/errors.js';
import type { RefTip } from '../../api/index.js';
import { addCommand, withStore, type CliParser } from '../context.js';
import { modeOf } from './curate-commands.js';
import { green, info, json, metricValue, metrics, out, short, time } from '../render.js';
import { escaped, firstLine } from '../terminal-text.js';

/** One line per ref; an annotated tag shows its own message instead of its commit's, as `git tag -n` does. */
function listing(tips: RefTip[]): void {
  const width = Math.max(0, ...tips.map((t) => escaped(t.name).length));
  for (const t of tips) {
    const mark = t.current ? green('*') : ' ';
    const facts = [t.step !== undefined ? `step=${t.step}` : '', metrics(t.metrics)].filter(Boolean).join(' ');
    out(
      `${mark} ${escaped(t.name).padEnd(width)}  ${short(t.commit)}  ${time(t.time)}  ${facts ? `${facts}  ` : ''}${firstLine(t.tagMessage ?? t.message)}`,
    );
  }
}

export function refCommands(y: CliParser): void {
  branchCommand(y);
  tagCommand(y);
  switchCommand(y);
  reflogCommand(y);
}

/** `branch NAME (was ID)`, or what a damaged one was. */
function deletedWhat(kind: string, r: { name: string; id?: string; damaged?: true }): string {
  return r.damaged
    ? `damaged ${kind} ${escaped(r.name)} (it held no object ID)`
    : `${kind} ${escaped(r.name)} (was ${short(r.id!)})`;
}

/** A listing names a damaged ref in a warning (with how to repair it) and lists the others, as git does. */
const listedPastDamage = {
  onDamaged: (e: CkvcError) => info(`ckvc: warning: ${escaped(e.message)} [${e.code}]`),
};

function branchCommand(y: CliParser): void {
  addCommand(
    y,
    'branch [name] [start]',
    'List branches with their tips, create one at START (default HEAD), or delete one with -d',
    (a) =>
      a
        .positional('name', { type: 'string' })
        .positional('start', { type: 'string' })
        .option('delete', { alias: 'd', type: 'boolean', describe: 'delete the branch (its reflog keeps the tip)' })
        .option('force', {
          alias: 'f',
          type: 'boolean',
          describe: 'move an existing branch to START, the current one too (its reflog keeps where it was)',
        })
        .option('remotes', {
          alias: 'r',
          type: 'boolean',
          describe: 'list the remote-tracking branches (REMOTE/BRANCH)',
        })
        .option('all', {
          alias: 'a',
          type: 'boolean',
          describe: 'list local and remote-tracking branches (remotes/REMOTE/BRANCH)',
        })
        .conflicts('remotes', 'all'),
    async (args) =>
      withStore(args, async (s) => {
        if ((args.remotes || args.all) && args.name) {
          throw new CkvcError('CKVC_USAGE', `--${args.all ? 'all' : 'remotes'} lists branches; it takes no name`, {});
        }
        // Without a name -d would list, and a script deleting a branch whose name came out empty would go on.
        if (args.delete && !args.name)
          throw new CkvcError('CKVC_USAGE', "branch -d needs the branch to delete: 'ckvc branch -d NAME'", {});
        if (!args.name) {
          // As git shows them: REMOTE/BRANCH with -r, remotes/REMOTE/BRANCH after the local ones with -a.
          const remote = args.remotes || args.all ? await s.remoteBranches(listedPastDamage) : [];
          const tips = args.remotes
            ? remote
            : [...(await s.branches(listedPastDamage)), ...remote.map((t) => ({ ...t, name: `remotes/${t.name}` }))];
          return args.json ? json(tips) : listing(tips);
        }
        if (args.force && args.delete) throw new CkvcError('CKVC_USAGE', 'branch takes -f or -d, not both', {});
        if (args.delete) {
          const r = await s.deleteBranch(args.name);
          if (args.json) return json(r);
          return info(`deleted ${deletedWhat('branch', r)}; 'ckvc reflog ${escaped(r.name)}' keeps its earlier values`);
        }
        const r = await s.createBranch(args.name, args.start, { force: args.force });
        if (args.json) return json(r);
        if (!r.was) return info(`created branch ${escaped(r.name)} at ${short(r.id)}`);
        const was = r.was === 'damaged' ? 'a damaged ref file' : short(r.was);
        info(
          `moved branch ${escaped(r.name)} to ${short(r.id)} (was ${was}; 'ckvc reflog ${escaped(r.name)}' keeps it)`,
        );
      }),
  );
}

function tagCommand(y: CliParser): void {
  addCommand(
    y,
    'tag [name] [rev]',
    "List tags (an annotated tag shows its message, others their commit's), tag REV (default HEAD) with -m for an annotated tag, or delete one with -d",
    (a) =>
      a
        .positional('name', { type: 'string' })
        .positional('rev', { type: 'string' })
        .option('message', { alias: 'm', type: 'string', describe: 'make an annotated tag with this message' })
        .option('delete', { alias: 'd', type: 'boolean', describe: 'delete the tag' })
        .option('best', {
          type: 'string',
          describe: 'tag the best commit of -b BRANCH by this metric (instead of REV)',
        })
        .option('min', { type: 'boolean', describe: 'with --best: lower is better' })
        .option('max', { type: 'boolean', describe: 'with --best: higher is better' })
        .option('branch', {
          alias: 'b',
          type: 'string',
          describe: 'with --best: the branch (default: the current one)',
        })
        .conflicts('min', 'max')
        .conflicts('best', 'rev'),
    async (args) =>
      withStore(args, async (s) => {
        if (args.delete && !args.name)
          throw new CkvcError('CKVC_USAGE', "tag -d needs the tag to delete: 'ckvc tag -d NAME'", {});
        if (!args.name) {
          const tips = await s.tags(listedPastDamage);
          return args.json ? json(tips) : listing(tips);
        }
        if (args.delete) {
          const r = await s.deleteTag(args.name);
          return args.json ? json(r) : info(`deleted ${deletedWhat('tag', r)}`);
        }
        if (args.best !== undefined) {
          const b = await s.tagBest(args.name, {
            metric: args.best,
            mode: modeOf(args),
            branch: args.branch,
            message: args.message,
          });
          return args.json
            ? json(b)
            : info(
                `tagged ${short(b.id)} as ${escaped(b.tag)}: best ${escaped(b.metric)}=${metricValue(b.value)} (${b.mode}${b.modeGuessed ? ', guessed from the name' : ''}) on ${escaped(b.branch)} among ${b.candidates} commit(s)`,
              );
        }
        const r = await s.createTag(args.name, args.rev, args.message);
        return args.json ? json(r) : info(`tagged ${short(r.commit)} as ${escaped(r.name)}`);
      }),
  );
}

function switchCommand(y: CliParser): void {
  addCommand(
    y,
    'switch <name>',
    'Move HEAD to a branch',
    (a) => a.positional('name', { type: 'string', demandOption: true }),
    async (args) => {
      const r = await withStore(args, (s) => s.switch(args.name));
      return args.json ? json(r) : info(`switched to branch ${escaped(r.branch)}`);
    },
  );
}

function reflogCommand(y: CliParser): void {
  addCommand(
    y,
    'reflog <name>',
    'Every move of a branch (or --tag), newest first: how to find a commit a branch has left',
    (a) =>
      a
        .positional('name', { type: 'string', demandOption: true })
        .option('tag', { type: 'boolean', describe: 'NAME is a tag' }),
    async (args) => {
      const entries = await withStore(args, (s) => s.reflog(args.name, args.tag ? 'tag' : 'branch'));
      if (args.json) return json(entries);
      for (const e of entries)
        out(
          `${e.new ? short(e.new) : '(deleted)'.padEnd(12)}  ${time(e.time)}  ${e.old ? `from ${short(e.old)}` : (e.new ? 'created' : 'from (damaged)').padEnd(17)}  ${escaped(e.message)}`,
        );
    },
  );
}
