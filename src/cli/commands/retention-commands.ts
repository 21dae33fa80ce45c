// Retention: prune (release old commits' data), unprune (take it back), gc (free what nothing needs).
import type { GcReport, PruneResult } from '../../api/index.js';
import { releasedWording } from '../../core/released-wording.js';
import { DEFAULT_GC_GRACE, DEFAULT_REFLOG_EXPIRY } from '../../core/retention-defaults.js';
import { addCommand, withStore, type CliParser } from '../context.js';
import { bytes, dim, info, json, out, short } from '../render.js';
import { escaped, firstLine } from '../terminal-text.js';
import { modeOf } from './curate-commands.js';

/** A duration in the largest unit that divides it (the grace period as the user would have typed it). */
function durationText(ms: number): string {
  for (const [unit, size] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const) {
    if (ms > 0 && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

/** What the prune will free and what it will not, and why: never "released" for what frees nothing. */
function reportPrune(r: PruneResult): void {
  for (const k of r.kept)
    out(
      `keep   ${short(k.id)}${k.step !== undefined ? ` step=${k.step}` : ''}  ${dim(escaped(k.reasons.join(', ')))}  ${firstLine(k.message)}`,
    );
  for (const p of r.pruned)
    out(
      `${r.dryRun ? 'would prune' : 'prune '} ${short(p.id)}${p.step !== undefined ? ` step=${p.step}` : ''}${p.names ? `  ${dim(`${escaped(p.names.join(', '))}: its bytes stay while named`)}` : ''}  ${firstLine(p.message)}`,
    );
  const where = r.branches.length === 1 ? escaped(r.branch) : `${r.branches.length} branches`;
  if (r.pruned.length === 0) {
    info(`nothing to prune on ${where}: all ${r.kept.length} commit(s) are kept`);
    return;
  }
  const verb = r.dryRun ? 'would mark' : 'marked';
  info(
    `${verb} ${escaped(releasedWording(r))} of ${r.pruned.length} commit(s) on ${where} as released, ` +
      `keeping ${r.kept.length}`,
  );
  if (r.releasedBytes > 0) {
    const undo = r.dryRun ? '' : "; 'ckvc unprune REV' takes a prune back until then";
    info(
      `${r.dryRun ? 'would free' : 'will free'} ${bytes(r.releasedBytes)} in ${r.releasedObjects} object(s) once ` +
        `'ckvc gc' runs (data older than its grace period, ${DEFAULT_GC_GRACE} by default)${undo}`,
    );
  } else {
    info('frees nothing: no stored byte is needed only by the pruned commits');
  }
  const why: string[] = [];
  if (r.stillNeededBytes > 0) {
    why.push(
      `${bytes(r.stillNeededBytes)} in ${r.stillNeededObjects} object(s) are shared with commits that keep them ` +
        '(unchanged data, or a tag naming a pruned commit)',
    );
  }
  if (r.notSelectedBytes > 0) {
    why.push(
      `${bytes(r.notSelectedBytes)} in ${r.notSelectedObjects} object(s) of the pruned commits are outside ` +
        '--tensors / --files, and stay',
    );
  }
  if (r.alreadyReleasedObjects > 0) why.push(`${r.alreadyReleasedObjects} object(s) were released by an earlier prune`);
  if (why.length) info(`not freed: ${why.join('; ')}`);
}

function reportGc(r: GcReport): void {
  info(
    `${r.dryRun ? 'dry run: would free' : 'freed'} ${bytes(r.bytesFreed)} (${bytes(r.bytesBefore)} -> ${bytes(r.bytesAfter)}): ${r.deadObjects} dead object(s) ${r.dryRun ? 'to delete' : 'deleted'}, ${r.liveObjects} live; packs ${r.packsBefore} -> ${r.packsAfter} (${r.packsDeleted} deleted, ${r.packsRewritten} rewritten)`,
  );
  if (r.reflogLinesExpired) {
    info(
      `${r.dryRun ? 'would expire' : 'expired'} ${r.reflogLinesExpired} reflog line(s) naming commits ` +
        'no branch, tag or alias reaches',
    );
  }
  if (r.youngDeadObjects) {
    const grace = durationText(r.graceMs);
    const all = r.bytesFreed === 0 ? 'the grace period kept everything: ' : '';
    info(
      `${all}${r.youngDeadObjects} dead object(s) (${bytes(r.youngDeadBytes)}) are in packs younger than the grace ` +
        `period (${grace}) and were kept; run 'ckvc gc' again later, or 'ckvc gc --grace 0' to free them now ` +
        '(only when no other host is writing to this store)',
    );
  }
  if (r.tempsRemoved)
    info(
      `${r.dryRun ? 'would remove' : 'removed'} ${r.tempsRemoved} leftover(s) of interrupted commands (${bytes(r.tempBytesRemoved)})`,
    );
  if (r.tempsKept)
    info(
      `kept ${r.tempsKept} temp file(s) or folder(s): younger than the grace period, or their command is still running`,
    );
}

export function retentionCommands(y: CliParser): void {
  pruneCommand(y);
  unpruneCommand(y);
  gcCommand(y);
}

function pruneCommand(y: CliParser): void {
  addCommand(
    y,
    'prune',
    'Release the data of old commits (every file, or --tensors/--files); commits, configs and metrics stay (then ckvc gc)',
    (a) =>
      a
        .option('keep-last', { type: 'string', describe: 'keep the newest N commits of the branch' })
        .option('keep-within', {
          type: 'string',
          describe: "keep commits made within DURATION of the branch's newest (e.g. 30d)",
        })
        .option('branch', { alias: 'b', type: 'string', describe: 'branch (default: the current one)' })
        .option('all-branches', { type: 'boolean', describe: 'apply the policy to every branch' })
        .option('include-tagged', { type: 'boolean', describe: 'prune commits a tag names too (kept by default)' })
        .option('keep-tagged', { type: 'boolean', hidden: true, describe: 'the default: commits a tag names are kept' })
        .conflicts('include-tagged', 'keep-tagged')
        .conflicts('branch', 'all-branches')
        .option('keep-best', { type: 'string', describe: 'keep the best K by --metric' })
        .option('metric', { type: 'string', describe: 'metric for --keep-best' })
        .option('min', { type: 'boolean', describe: 'lower is better' })
        .option('max', { type: 'boolean', describe: 'higher is better' })
        .option('tensors', {
          type: 'string',
          array: true,
          describe: 'release only tensors matching this glob (e.g. "optimizer.*"), repeatable',
        })
        .option('files', {
          type: 'string',
          array: true,
          describe: 'release only files whose path matches this glob (e.g. "*.pkl"), whole; repeatable',
        })
        .option('dry-run', { type: 'boolean', describe: 'say what would be released; change nothing' })
        .conflicts('min', 'max'),
    async (args) => {
      const r = await withStore(args, (s) =>
        s.prune({
          keepLast: args.keepLast,
          keepWithin: args.keepWithin,
          branch: args.branch,
          allBranches: args.allBranches,
          includeTagged: args.includeTagged,
          keepBest: args.keepBest,
          metric: args.metric,
          mode: modeOf(args),
          tensors: args.tensors,
          files: args.files,
          dryRun: args.dryRun,
        }),
      );
      if (args.json) return json(r);
      reportPrune(r);
    },
  );
}

function unpruneCommand(y: CliParser): void {
  addCommand(
    y,
    'unprune <revs..>',
    'Take prune records back while gc has not deleted the data they released',
    (a) => a.positional('revs', { type: 'string', array: true, demandOption: true, describe: 'pruned commits' }),
    async (args) => {
      const r = await withStore(args, (s) => s.unprune(args.revs));
      if (args.json) return json(r);
      for (const u of r.restored) out(`unpruned ${short(u.id)}  ${escaped(releasedWording(u))} checks out again`);
      for (const n of r.notPruned) info(`${escaped(n.rev)} (${short(n.id)}) was not pruned; nothing to take back`);
    },
  );
}

function gcCommand(y: CliParser): void {
  addCommand(
    y,
    'gc',
    'Delete data that no branch, tag, alias, reflog or unpruned commit needs, once older than the grace period; repack',
    (a) =>
      a
        .option('dry-run', { type: 'boolean', describe: 'report what would be freed; change nothing' })
        .option('grace', {
          type: 'string',
          describe: `leave data younger than this alone (default ${DEFAULT_GC_GRACE}; e.g. 30m, 2h, 0)`,
        })
        .option('expire-reflog', {
          type: 'string',
          describe: `drop reflog lines older than this that name commits no ref reaches (default ${DEFAULT_REFLOG_EXPIRY}; 0, 7d, never)`,
        }),
    async (args) => {
      const r = await withStore(args, (s) =>
        s.gc({ dryRun: args.dryRun, grace: args.grace, expireReflog: args.expireReflog }),
      );
      if (args.json) return json(r);
      reportGc(r);
    },
  );
}
